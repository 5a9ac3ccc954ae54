/*
 * bench_meta.c - the metadata server over RPC next to raw RocksDB transactions on the same
 * disk (tests/bench/run meta).
 *
 * In one run, on one directory (-d, default /var/tmp):
 *   raw   meta/txn.c's TransactionDB (the seam sluice-meta uses, same options) in this
 *         process: N transactions of one put each (a dentry-sized key and an inode-sized
 *         value), then N point gets of those keys, from 1 and from 16 threads;
 *   meta  a standalone sluice-meta (meta.mgmtd empty) in a temp dir: CREATE, GETATTR
 *         (stat), RENAME and UNLINK of N files, all in one directory and spread over 100
 *         directories, from 1 and from 16 concurrent clients (each its own client id, one
 *         request in flight each, over one connection of one client reactor).
 * The limit of every mutation is the raw put-transaction rate and that of stat the raw get
 * rate, at the same concurrency. Targets (the issue): stat >= 0.5 of raw get, create >= 0.3
 * of raw transaction.
 *
 * Both sides use the same durability: by default meta.sync=false and unsynced raw commits
 * (the WAL reaches the kernel before the reply: safe against a process crash, not a power
 * loss), because this disk's fdatasync takes ~3 ms and 100,000 synced single-client
 * creates would take minutes; -s syncs both. GC is pushed out of the run (1 h delay) so
 * unlinked inodes are not deleted while later phases are timed.
 *
 * Client, daemon and the raw threads share the machine's cores: the ratios include the cost
 * of the RPC (framing, a reactor hop, and for mutations and cold reads a worker hop per
 * request) as well as the store's.
 *
 * The last line is the JSON every benchmark ends with: value = create ops/s with 16 clients
 * over 100 directories, limit = raw put transactions/s with 16 threads; every other rate
 * and ratio follows as extras.
 *
 * Usage: bench_meta [-d DIR] [-n FILES] [-s] [-m PATH_TO_SLUICE_META] [-c 1|16]
 *                   [-x one|dirs] [-l create|stat|rename|unlink]
 *        (defaults /var/tmp, 100000, no sync, <bench dir>/../../meta/sluice-meta, both
 *        concurrencies, both shapes, all phases). -c, -x and -l narrow the run for
 *        profiling one case: only that concurrency, only that shape, phases up to and
 *        including -l (each phase needs the files of the one before); the rates not run
 *        print as 0.
 *
 * THREADS: main drives phases; client slots run on the client reactor; raw phases run
 * their own threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "meta/txn.h"
#include "proto/meta_ops.h"
#include "tests/lib/testlib.h"

#define CONC_MAX 16
#define NDIRS	 100

enum phase { PH_CREATE, PH_STAT, PH_RENAME, PH_UNLINK, PH_N };

static const char *const phase_names[] = {"create", "stat", "rename", "unlink"};

struct bench {
	const char *dir, *daemon;
	unsigned n;
	bool sync;
	char tdir[256], uri[SLUICE_NET_ADDR_MAX];
	pid_t pid;
	struct test_client tc;
	uint64_t *inos;	      /* per file, from create */
	uint64_t dirs[NDIRS]; /* the spread directories */
	uint64_t one;	      /* the single directory */
	/* the running phase (slots on the reactor; counters read by main) */
	enum phase ph, last;
	unsigned conc, ndirs, round;
	unsigned only_conc, only_shape; /* 0: all */
	uint64_t next_req;
	atomic_uint_fast64_t done, errors;
};

struct slot {
	struct bench *b;
	unsigned idx;
	uint64_t next; /* file index */
};

static struct bench B;
static struct slot slots[CONC_MAX];

static void die(const char *what)
{
	fprintf(stderr, "bench_meta: %s\n", what);
	if (B.pid > 0)
		kill(B.pid, SIGKILL);
	exit(1);
}

static double secs(uint64_t t0)
{
	return (double)(env_now_ns() - t0) / 1e9;
}

/* ---- raw RocksDB through meta/txn.c ------------------------------------------------------ */

struct raw {
	struct meta_db *db;
	unsigned n, threads;
	bool get;
	atomic_uint errors;
};

struct raw_thread {
	struct raw *r;
	unsigned idx;
	pthread_t th;
};

/* A dentry-shaped key: 'D' + parent (8) + a name like the benchmark's files. */
static size_t raw_key(uint8_t *k, unsigned i)
{
	k[0] = 'D';
	memset(k + 1, 0, 7);
	k[8] = (uint8_t)(i % NDIRS);
	return 9 + (size_t)snprintf((char *)k + 9, 32, "f%08u", i);
}

static void *raw_run(void *arg)
{
	struct raw_thread *t = arg;
	struct raw *r = t->r;
	uint8_t key[48], val[96];

	memset(val, 0x5a, sizeof(val)); /* about an encoded Inode */
	for (unsigned i = t->idx; i < r->n; i += r->threads) {
		size_t klen = raw_key(key, i);
		int rc;

		if (r->get) {
			struct meta_val v;

			rc = meta_db_get(r->db, key, klen, &v);
			meta_val_release(&v);
		} else {
			struct meta_txn *txn;

			rc = meta_txn_begin(r->db, &txn);
			if (rc == 0)
				rc = meta_txn_put(txn, key, klen, val, sizeof(val));
			if (rc == 0)
				rc = meta_txn_commit(txn);
			meta_txn_free(txn);
		}
		if (rc)
			atomic_fetch_add(&r->errors, 1);
	}
	return NULL;
}

static double raw_phase(struct meta_db *db, unsigned threads, bool get)
{
	struct raw r = {.db = db, .n = B.n, .threads = threads, .get = get};
	struct raw_thread th[CONC_MAX];
	uint64_t t0 = env_now_ns();

	for (unsigned i = 0; i < threads; i++) {
		th[i] = (struct raw_thread){&r, i, 0};
		if (pthread_create(&th[i].th, NULL, raw_run, &th[i]))
			die("pthread_create failed");
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i].th, NULL);
	if (atomic_load(&r.errors))
		die("raw RocksDB calls failed");
	return B.n / secs(t0);
}

/* Raw put-transaction and get rates with 1 and 16 threads (fresh store for each). */
static void raw_limits(double txn[2], double get[2])
{
	static const unsigned threads[2] = {1, CONC_MAX};
	struct meta_db_opts o = {
		.sync = B.sync, .lock_timeout_ms = 1000, .cache_bytes = 256u << 20};

	for (int c = 0; c < 2; c++) {
		char path[300], why[256] = "", cmd[320];
		struct meta_db *db;

		snprintf(path, sizeof(path), "%s/raw%d", B.tdir, c);
		if (meta_db_open(path, &o, &db, why, sizeof(why)))
			die(why);
		txn[c] = raw_phase(db, threads[c], false);
		get[c] = raw_phase(db, threads[c], true);
		meta_db_close(db);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", path);
	}
}

/* ---- the daemon ------------------------------------------------------------------------- */

static void start_daemon(void)
{
	char ready[300], data[300], readyopt[320], sync[32];

	snprintf(ready, sizeof(ready), "%s/ready", B.tdir);
	snprintf(readyopt, sizeof(readyopt), "meta.ready_file=%s", ready);
	snprintf(data, sizeof(data), "meta.data_dir=%s/meta", B.tdir);
	snprintf(sync, sizeof(sync), "meta.sync=%s", B.sync ? "true" : "false");
	B.pid = fork();
	if (B.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(B.daemon, B.daemon, "--set", "meta.listen=tcp://127.0.0.1:0", "--set",
		      readyopt, "--set", data, "--set", "meta.mgmtd=", "--set", sync, "--set",
		      "meta.gc_delay_ms=1h", "--set", "meta.gc_skip_chunks=true", "--set",
		      "log.level=warn", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		FILE *f = fopen(ready, "r");

		if (f) {
			bool ok = fgets(B.uri, sizeof(B.uri), f) != NULL;

			fclose(f);
			if (ok) {
				B.uri[strcspn(B.uri, "\n")] = 0;
				return;
			}
		}
		if (waitpid(B.pid, NULL, WNOHANG) == B.pid)
			die("sluice-meta exited at start");
		usleep(10000);
	}
	die("sluice-meta did not get ready");
}

/* ---- meta calls ------------------------------------------------------------------------- */

struct hdr {
	Sluice__ReqHdr h;
	Sluice__Creds c;
};

static Sluice__ReqHdr *mkhdr(struct hdr *b, uint64_t client, uint64_t req)
{
	sluice__req_hdr__init(&b->h);
	sluice__creds__init(&b->c);
	b->h.creds = &b->c;
	b->h.client_id = client;
	b->h.request_id = req;
	return &b->h;
}

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static void make_dirs(void)
{
	static const struct rpc_call_opts o = {.timeout_ms = 10000};

	for (int d = 0; d <= NDIRS; d++) {
		Sluice__MkdirReq req = SLUICE__MKDIR_REQ__INIT;
		struct rpc_result res = {0};
		struct hdr hb;
		char name[16];
		int rc;

		snprintf(name, sizeof(name), d == NDIRS ? "one" : "d%d", d);
		req.hdr = mkhdr(&hb, 999, (uint64_t)d + 1);
		req.parent = 1;
		req.name = bin(name);
		req.mode = 0755;
		rc = metac_mkdir(B.tc.rpc, B.uri, &req, &o, &res);
		if (rc == 0) {
			uint64_t ino = ((Sluice__AttrResp *)(void *)res.resp)->attr->ino;

			if (d == NDIRS)
				B.one = ino;
			else
				B.dirs[d] = ino;
		}
		rpc_result_release(&res);
		if (rc)
			die("mkdir failed");
	}
}

/* ---- client slots (reactor thread) -------------------------------------------------------- */

static void slot_next(struct slot *s);

static void slot_done(struct rpc_result *res, void *arg)
{
	struct slot *s = arg;
	struct bench *b = s->b;

	if (res->status) {
		if (atomic_fetch_add(&b->errors, 1) == 0)
			fprintf(stderr, "%s failed: %s\n", phase_names[b->ph],
				sluice_strerror(res->status));
	} else if (b->ph == PH_CREATE) {
		b->inos[s->next] = ((Sluice__OpenResp *)(void *)res->resp)->attr->ino;
	}
	rpc_result_release(res);
	atomic_fetch_add(&b->done, 1);
	s->next += b->conc;
	slot_next(s);
}

static void slot_next(struct slot *s)
{
	struct bench *b = s->b;
	static const struct rpc_call_opts o = {.timeout_ms = 60000};
	uint64_t i = s->next, parent;
	char name[32], name2[32];
	struct hdr hb;
	Sluice__ReqHdr *h;
	int rc;

	if (i >= b->n)
		return;
	parent = b->ndirs == 1 ? b->one : b->dirs[i % NDIRS];
	h = mkhdr(&hb, (uint64_t)s->idx + 1, ++b->next_req);
	snprintf(name, sizeof(name), "r%u.f%08" PRIu64, b->round, i);
	snprintf(name2, sizeof(name2), "r%u.g%08" PRIu64, b->round, i);
	switch (b->ph) {
	case PH_CREATE: {
		Sluice__CreateReq req = SLUICE__CREATE_REQ__INIT;

		req.hdr = h;
		req.parent = parent;
		req.name = bin(name);
		req.mode = 0644;
		req.flags = O_CREAT | O_EXCL | O_RDONLY;
		rc = metac_create_async(b->tc.rpc, b->uri, &req, &o, slot_done, s, NULL);
		break;
	}
	case PH_STAT: {
		Sluice__GetattrReq req = SLUICE__GETATTR_REQ__INIT;

		req.hdr = h;
		req.ino = b->inos[i];
		rc = metac_getattr_async(b->tc.rpc, b->uri, &req, &o, slot_done, s, NULL);
		break;
	}
	case PH_RENAME: {
		Sluice__RenameReq req = SLUICE__RENAME_REQ__INIT;

		req.hdr = h;
		req.parent = req.new_parent = parent;
		req.name = bin(name);
		req.new_name = bin(name2);
		rc = metac_rename_async(b->tc.rpc, b->uri, &req, &o, slot_done, s, NULL);
		break;
	}
	default: {
		Sluice__RemoveReq req = SLUICE__REMOVE_REQ__INIT;

		req.hdr = h;
		req.parent = parent;
		req.name = bin(name2);
		rc = metac_unlink_async(b->tc.rpc, b->uri, &req, &o, slot_done, s, NULL);
		break;
	}
	}
	if (rc) {
		fprintf(stderr, "cannot start a call: %s\n", sluice_strerror(rc));
		atomic_fetch_add(&b->errors, 1);
		atomic_fetch_add(&b->done, b->n); /* ends the phase */
	}
}

static void start_slots(void *arg)
{
	struct bench *b = arg;

	for (unsigned i = 0; i < b->conc; i++) {
		slots[i] = (struct slot){b, i, i};
		slot_next(&slots[i]);
	}
}

static double meta_phase(enum phase ph, unsigned conc, unsigned ndirs)
{
	uint64_t t0 = env_now_ns();

	B.ph = ph;
	B.conc = conc;
	B.ndirs = ndirs;
	atomic_store(&B.done, 0);
	run_on_reactor(B.tc.r, start_slots, &B);
	while (atomic_load(&B.done) < B.n)
		usleep(500);
	if (atomic_load(&B.errors))
		die("meta calls failed");
	return B.n / secs(t0);
}

int main(int argc, char **argv)
{
	static char self[4096], daemon_path[4200];
	static const unsigned concs[2] = {1, CONC_MAX}, shapes[2] = {1, NDIRS};
	double raw_txn[2], raw_get[2], rate[2][2][PH_N] = {0};
	int opt;

	B.dir = "/var/tmp";
	B.n = 100000;
	B.last = PH_UNLINK;
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(daemon_path, sizeof(daemon_path), "%s/../../meta/sluice-meta", dirname(self));
	B.daemon = daemon_path;
	while ((opt = getopt(argc, argv, "d:n:sm:c:x:l:")) != -1) {
		switch (opt) {
		case 'd':
			B.dir = optarg;
			break;
		case 'n':
			B.n = (unsigned)atoi(optarg);
			break;
		case 's':
			B.sync = true;
			break;
		case 'm':
			B.daemon = optarg;
			break;
		case 'c':
			B.only_conc = (unsigned)atoi(optarg);
			if (B.only_conc != 1 && B.only_conc != CONC_MAX)
				die("-c takes 1 or 16");
			break;
		case 'x':
			if (strcmp(optarg, "one") && strcmp(optarg, "dirs"))
				die("-x takes one or dirs");
			B.only_shape = strcmp(optarg, "one") == 0 ? 1 : NDIRS;
			break;
		case 'l': {
			int p = 0;

			while (p < PH_N && strcmp(optarg, phase_names[p]))
				p++;
			if (p == PH_N)
				die("-l takes create, stat, rename or unlink");
			B.last = (enum phase)p;
			break;
		}
		default:
			fprintf(stderr,
				"usage: bench_meta [-d DIR] [-n FILES] [-s] [-m SLUICE_META] "
				"[-c 1|16] [-x one|dirs] [-l PHASE]\n");
			return 2;
		}
	}
	if (B.n < CONC_MAX || access(B.daemon, X_OK) != 0)
		die("bad arguments, or sluice-meta not found (-m)");
	snprintf(B.tdir, sizeof(B.tdir), "%s/bench_meta.XXXXXX", B.dir);
	if (!mkdtemp(B.tdir))
		die("mkdtemp failed");
	B.inos = calloc(B.n, sizeof(*B.inos));
	if (!B.inos)
		die("out of memory");

	raw_limits(raw_txn, raw_get); /* first, on the same disk */
	start_daemon();
	if (test_client_start(&B.tc, NULL, 256u << 20) != 0)
		die("client start failed");
	make_dirs();
	for (int s = 0; s < 2; s++) {
		for (int c = 0; c < 2; c++) {
			if ((B.only_shape && B.only_shape != shapes[s]) ||
			    (B.only_conc && B.only_conc != concs[c]))
				continue;
			B.round = (unsigned)(s * 2 + c);
			for (int p = 0; p <= (int)B.last; p++)
				rate[s][c][p] = meta_phase((enum phase)p, concs[c], shapes[s]);
		}
	}
	test_client_stop(&B.tc);
	kill(B.pid, SIGTERM);
	waitpid(B.pid, NULL, 0);
	{
		char rm[300];

		snprintf(rm, sizeof(rm), "rm -rf %s", B.tdir);
		if (system(rm) != 0)
			fprintf(stderr, "cleanup of %s failed\n", B.tdir);
	}

	printf("disk: %s, %u files, sync %s\n", B.dir, B.n, B.sync ? "on" : "off");
	for (int c = 0; c < 2; c++)
		printf("raw RocksDB, %2u thread(s): put txn %8.0f/s   get %9.0f/s\n", concs[c],
		       raw_txn[c], raw_get[c]);
	for (int s = 0; s < 2; s++)
		for (int c = 0; c < 2; c++)
			printf("meta %-8s %2u client(s): create %7.0f/s (%.3f)  stat %7.0f/s "
			       "(%.3f)  "
			       "rename %7.0f/s (%.3f)  unlink %7.0f/s (%.3f)\n",
			       s ? "100 dirs" : "one dir", concs[c], rate[s][c][PH_CREATE],
			       rate[s][c][PH_CREATE] / raw_txn[c], rate[s][c][PH_STAT],
			       rate[s][c][PH_STAT] / raw_get[c], rate[s][c][PH_RENAME],
			       rate[s][c][PH_RENAME] / raw_txn[c], rate[s][c][PH_UNLINK],
			       rate[s][c][PH_UNLINK] / raw_txn[c]);
	printf("(ratios: create/rename/unlink to the raw put txn rate, stat to the raw get rate; "
	       "targets: stat >= 0.5, create >= 0.3)\n");
	printf("{\"bench\":\"meta\",\"value\":%.0f,\"unit\":\"creates/s\",\"limit\":%.0f,"
	       "\"ratio\":%.3f,\"files\":%u,\"sync\":%s,"
	       "\"raw_txn_1\":%.0f,\"raw_txn_16\":%.0f,\"raw_get_1\":%.0f,\"raw_get_16\":%.0f",
	       rate[1][1][PH_CREATE], raw_txn[1], rate[1][1][PH_CREATE] / raw_txn[1], B.n,
	       B.sync ? "true" : "false", raw_txn[0], raw_txn[1], raw_get[0], raw_get[1]);
	for (int s = 0; s < 2; s++)
		for (int c = 0; c < 2; c++)
			for (int p = 0; p < PH_N; p++)
				printf(",\"%s_%s_%u\":%.0f,\"%s_%s_%u_ratio\":%.3f", phase_names[p],
				       s ? "dirs" : "onedir", concs[c], rate[s][c][p],
				       phase_names[p], s ? "dirs" : "onedir", concs[c],
				       rate[s][c][p] / (p == PH_STAT ? raw_get[c] : raw_txn[c]));
	printf("}\n");
	return 0;
}
