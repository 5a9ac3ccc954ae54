/*
 * bench_chunk.c - the chunk store through its RPC over loopback, next to fio on the same
 * disk (tests/bench/run chunk).
 *
 * In one run, on one directory (-d, default /var/tmp):
 *   seq write   whole 1 MiB chunks, Q in flight, S MiB in total    vs fio write  bs=1M iodepth=Q
 *   seq read    the same chunks, one 1 MiB range per request      vs fio read   bs=1M iodepth=Q
 *   rand read   4 KiB ranges at random 4 KiB offsets of them       vs fio randread bs=4k iodepth=Q
 * fio uses io_uring with O_DIRECT on a file of the same size. The write limit is fio with
 * O_DSYNC (sync=dsync) because the store acknowledges a write only once it is durable (data
 * fdatasynced, metadata in a synced RocksDB batch); fio without it is printed too.
 *
 * The store is a real sluice-storage process (standalone, one target in DIR) and the client
 * one reactor with an rpc_client, driving Q call slots (each issues its next call from the
 * previous one's completion). Client, daemon and fio share the machine's cores, so the
 * ratios include the CPU cost of the RPC and the engine per byte and per I/O.
 *
 * The last line is the JSON every benchmark ends with: value = seq write GB/s, limit = fio
 * durable write GB/s; seq and random read ratios follow as extras, and fixed_io_share: the
 * share of the daemon's disk I/Os that used registered (fixed) io_uring buffers.
 *
 * Usage: bench_chunk [-d DIR] [-S MIB] [-q QD] [-t SECONDS] [-s PATH_TO_SLUICE_STORAGE]
 *        (defaults /var/tmp, 1024, 16, 5, <bench dir>/../../storage/sluice-storage)
 *
 * THREADS: main drives and samples; the slots run on the client reactor.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/layout.h"
#include "proto/storage_ops.h"
#include "tests/lib/testlib.h"

#define CHUNK	  (1u << 20)
#define SMALL	  4096u
#define SLOTS_MAX 256

struct bench {
	const char *dir, *daemon;
	unsigned qd, nchunks;
	double seconds;
	char uri[SLUICE_NET_ADDR_MAX];
	char tdir[256];
	pid_t pid;
	struct test_client tc;
	uint8_t *wdata; /* one chunk of data, sent by every write */
	uint32_t wcrc;
	/* the running phase, touched by slots on the reactor */
	int phase; /* 0 write, 1 seq read, 2 random read */
	atomic_uint_fast64_t done_ops, done_bytes, errors;
	uint64_t next_chunk;
	bool stop;
	unsigned active;
	uint64_t rng;
};

struct slot {
	struct bench *b;
	uint8_t *rbuf;
};

static struct bench B;
static struct slot slots[SLOTS_MAX];

static void die(const char *what)
{
	fprintf(stderr, "bench_chunk: %s\n", what);
	if (B.pid > 0)
		kill(B.pid, SIGKILL);
	exit(1);
}

/* ---- fio ------------------------------------------------------------------------------- */

/* Run fio and return its bandwidth (bytes/s) or IOPS for section "read"/"write". */
static double fio_run(const char *rw, const char *bs, bool dsync, bool iops)
{
	char cmd[1024], out[1 << 16];
	size_t n;
	FILE *p;
	/* the job's result objects, not the "rw" option's value */
	const char *sec = strstr(rw, "write") ? "\"write\" : {" : "\"read\" : {";
	const char *key = iops ? "\"iops\"" : "\"bw_bytes\"";

	snprintf(cmd, sizeof(cmd),
		 "fio --name=raw --filename=%s/fio.dat --size=%uM --rw=%s --bs=%s --direct=1 "
		 "--ioengine=io_uring --iodepth=%u %s %s --output-format=json 2>/dev/null",
		 B.dir, B.nchunks, rw, bs, B.qd, dsync ? "--sync=dsync" : "",
		 strcmp(rw, "randread") == 0 ? "--time_based --runtime=5" : "");
	p = popen(cmd, "r");
	if (!p)
		die("cannot run fio");
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	if (pclose(p) != 0)
		die("fio failed (is fio installed?)");
	const char *s = strstr(out, "\"jobs\"");

	s = s ? strstr(s, sec) : NULL;
	s = s ? strstr(s, key) : NULL;
	if (!s)
		die("cannot parse fio output");
	s = strchr(s, ':');
	return s ? strtod(s + 1, NULL) : 0;
}

/* ---- the daemon ------------------------------------------------------------------------- */

static void start_daemon(void)
{
	char ready[300], uri_opt[64], target[300], readyopt[320];
	FILE *f;

	snprintf(B.tdir, sizeof(B.tdir), "%s/bench_chunk.XXXXXX", B.dir);
	if (!mkdtemp(B.tdir))
		die("mkdtemp failed");
	snprintf(ready, sizeof(ready), "%s/ready", B.tdir);
	snprintf(readyopt, sizeof(readyopt), "storage.ready_file=%s", ready);
	snprintf(target, sizeof(target), "storage.targets=%s/target", B.tdir);
	snprintf(uri_opt, sizeof(uri_opt), "storage.listen=tcp://127.0.0.1:0");
	B.pid = fork();
	if (B.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(B.daemon, B.daemon, "--set", uri_opt, "--set", readyopt, "--set", target,
		      "--set", "storage.group_bytes=256MiB", "--set", "storage.buffer_bytes=1GiB",
		      "--set", "log.level=warn", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		f = fopen(ready, "r");
		if (f) {
			bool ok = fgets(B.uri, sizeof(B.uri), f) != NULL;

			fclose(f);
			if (ok) {
				B.uri[strcspn(B.uri, "\n")] = 0;
				return;
			}
		}
		if (waitpid(B.pid, NULL, WNOHANG) == B.pid)
			die("sluice-storage exited at start");
		usleep(10000);
	}
	die("sluice-storage did not get ready");
}

/* ---- the client slots (reactor thread) ----------------------------------------------- */

static void slot_next(struct slot *s);

static void slot_done(struct rpc_result *res, void *arg)
{
	struct slot *s = arg;
	struct bench *b = s->b;

	if (res->status != 0) {
		atomic_fetch_add(&b->errors, 1);
		fprintf(stderr, "call failed: %s %s\n", sluice_strerror(res->status),
			res->error_detail ? res->error_detail : "");
	} else {
		atomic_fetch_add(&b->done_ops, 1);
		atomic_fetch_add(&b->done_bytes, b->phase == 2 ? SMALL : CHUNK);
	}
	rpc_result_release(res);
	slot_next(s);
}

static void slot_next(struct slot *s)
{
	struct bench *b = s->b;
	struct rpc_call_opts opts = {.timeout_ms = 60000};
	int rc;

	if (b->stop || (b->phase < 2 && b->next_chunk == b->nchunks)) {
		b->active--;
		return;
	}
	if (b->phase == 0) {
		Sluice__ChunkWriteReq req = SLUICE__CHUNK_WRITE_REQ__INIT;
		struct iovec iov = {.iov_base = b->wdata, .iov_len = CHUNK};

		req.target_id = 1;
		req.inode = 1;
		req.index = (uint32_t)b->next_chunk++;
		req.chunk_size = CHUNK;
		req.length = CHUNK;
		req.data_crc = b->wcrc;
		opts.bulk = &iov;
		opts.nbulk = 1;
		rc = storagec_write_async(b->tc.rpc, b->uri, &req, &opts, slot_done, s, NULL);
	} else {
		Sluice__ChunkBatchReadReq req = SLUICE__CHUNK_BATCH_READ_REQ__INIT;
		Sluice__ChunkReadRange rg = SLUICE__CHUNK_READ_RANGE__INIT, *rgp = &rg;

		rg.inode = 1;
		if (b->phase == 1) {
			rg.index = (uint32_t)b->next_chunk++;
			rg.length = CHUNK;
		} else {
			uint64_t r = layout_splitmix64_next(&b->rng);

			rg.index = (uint32_t)(r % b->nchunks);
			rg.offset = (uint32_t)((r >> 32) % (CHUNK / SMALL)) * SMALL;
			rg.length = SMALL;
		}
		req.target_id = 1;
		req.n_ranges = 1;
		req.ranges = &rgp;
		opts.resp_bulk = s->rbuf;
		opts.resp_bulk_cap = CHUNK;
		rc = storagec_batch_read_async(b->tc.rpc, b->uri, &req, &opts, slot_done, s, NULL);
	}
	if (rc != 0) {
		fprintf(stderr, "cannot start a call: %s\n", sluice_strerror(rc));
		atomic_fetch_add(&b->errors, 1);
		b->active--;
	}
}

static void start_slots(void *arg)
{
	struct bench *b = arg;

	b->stop = false;
	b->next_chunk = 0;
	b->active = b->qd;
	for (unsigned i = 0; i < b->qd; i++)
		slot_next(&slots[i]);
}

static void stop_slots(void *arg)
{
	((struct bench *)arg)->stop = true;
}

struct active_probe {
	struct bench *b;
	unsigned active;
};

/* Read the slot count on the reactor, which owns it. */
static void read_active(void *arg)
{
	struct active_probe *p = arg;

	p->active = p->b->active;
}

struct target_ctrs {
	uint64_t commits, batches, ios_fixed, ios_plain;
};

/* The target's counters from STATFS (zeros if the call fails). */
static struct target_ctrs target_counters(void)
{
	Sluice__TargetStatfsReq sreq = SLUICE__TARGET_STATFS_REQ__INIT;
	struct target_ctrs c = {0};
	struct rpc_result res;

	sreq.target_id = 1;
	if (storagec_statfs(B.tc.rpc, B.uri, &sreq, NULL, &res) == 0) {
		Sluice__TargetStatfsResp *sr = (Sluice__TargetStatfsResp *)res.resp;

		if (sr->n_targets == 1 && sr->targets[0]->counters) {
			const Sluice__TargetCounters *tc = sr->targets[0]->counters;

			c = (struct target_ctrs){tc->commits, tc->commit_batches, tc->ios_fixed,
						 tc->ios_plain};
		}
	}
	rpc_result_release(&res);
	return c;
}

/* Run a phase; returns bytes per second (or ops per second for random reads). */
static double run_phase(int phase)
{
	uint64_t t0, t1, ops0, bytes0;

	B.phase = phase;
	atomic_store(&B.done_ops, 0);
	atomic_store(&B.done_bytes, 0);
	t0 = env_now_ns();
	run_on_reactor(B.tc.r, start_slots, &B);
	if (phase == 2) {
		usleep(500000); /* warm-up */
		ops0 = atomic_load(&B.done_ops);
		bytes0 = atomic_load(&B.done_bytes);
		t0 = env_now_ns();
		usleep((useconds_t)(B.seconds * 1e6));
		t1 = env_now_ns();
		uint64_t ops = atomic_load(&B.done_ops) - ops0;

		(void)bytes0;
		run_on_reactor(B.tc.r, stop_slots, &B);
		for (;;) { /* drain */
			struct active_probe p = {.b = &B};

			run_on_reactor(B.tc.r, read_active, &p);
			if (p.active == 0)
				break;
			usleep(1000);
		}
		return (double)ops / ((double)(t1 - t0) / 1e9);
	}
	while (atomic_load(&B.done_ops) + atomic_load(&B.errors) < B.nchunks)
		usleep(1000);
	t1 = env_now_ns();
	return (double)atomic_load(&B.done_bytes) / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
	static char self[4096], daemon_path[4200];
	int opt;

	B.dir = "/var/tmp";
	B.nchunks = 1024;
	B.qd = 16;
	B.seconds = 5;
	B.rng = 12345;
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(daemon_path, sizeof(daemon_path), "%s/../../storage/sluice-storage",
		 dirname(self));
	B.daemon = daemon_path;
	while ((opt = getopt(argc, argv, "d:S:q:t:s:")) != -1) {
		switch (opt) {
		case 'd':
			B.dir = optarg;
			break;
		case 'S':
			B.nchunks = (unsigned)atoi(optarg);
			break;
		case 'q':
			B.qd = (unsigned)atoi(optarg);
			break;
		case 't':
			B.seconds = atof(optarg);
			break;
		case 's':
			B.daemon = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench_chunk [-d DIR] [-S MIB] [-q QD] [-t SECONDS] "
					"[-s SLUICE_STORAGE]\n");
			return 2;
		}
	}
	if (B.qd == 0 || B.qd > SLOTS_MAX || B.nchunks == 0 || access(B.daemon, X_OK) != 0)
		die("bad arguments, or sluice-storage not found (-s)");

	/* the raw limits first, on the same disk */
	double fio_w = fio_run("write", "1M", true, false);
	double fio_w_nosync = fio_run("write", "1M", false, false);
	double fio_r = fio_run("read", "1M", false, false);
	double fio_rr = fio_run("randread", "4k", false, true);
	char rm[300];

	snprintf(rm, sizeof(rm), "%s/fio.dat", B.dir);
	unlink(rm);

	start_daemon();
	if (test_client_start(&B.tc, NULL, 512u << 20) != 0)
		die("client start failed");
	B.wdata = aligned_alloc(4096, CHUNK);
	for (unsigned i = 0; i < B.qd; i++) {
		slots[i].b = &B;
		slots[i].rbuf = aligned_alloc(4096, CHUNK);
		memset(slots[i].rbuf, 0, CHUNK);
	}
	pattern_fill(B.wdata, CHUNK, 7);
	B.wcrc = crc32c(0, B.wdata, CHUNK);

	double w = run_phase(0);
	struct target_ctrs cw = target_counters(); /* how well group commit batched the writes */
	uint64_t commits = cw.commits, batches = cw.batches;
	double r = run_phase(1);
	double rr = run_phase(2);
	struct target_ctrs ce = target_counters(); /* and which disk I/Os used fixed buffers */
	uint64_t ios = ce.ios_fixed + ce.ios_plain;

	test_client_stop(&B.tc);
	kill(B.pid, SIGTERM);
	waitpid(B.pid, NULL, 0);
	snprintf(rm, sizeof(rm), "rm -rf %s", B.tdir);
	if (system(rm) != 0)
		fprintf(stderr, "cleanup of %s failed\n", B.tdir);
	if (atomic_load(&B.errors) != 0)
		die("calls failed");

	printf("disk: %s, %u MiB, queue depth %u\n", B.dir, B.nchunks, B.qd);
	printf("seq write 1 MiB:  %6.2f GB/s   fio (dsync) %6.2f GB/s  ratio %.3f\n", w / 1e9,
	       fio_w / 1e9, w / fio_w);
	printf("                  (fio without sync %.2f GB/s, ratio %.3f)\n", fio_w_nosync / 1e9,
	       w / fio_w_nosync);
	printf("group commit: %" PRIu64 " chunk updates in %" PRIu64 " synced batches\n", commits,
	       batches);
	printf("seq read 1 MiB:   %6.2f GB/s   fio         %6.2f GB/s  ratio %.3f\n", r / 1e9,
	       fio_r / 1e9, r / fio_r);
	printf("rand read 4 KiB:  %6.0f IOPS   fio         %6.0f IOPS  ratio %.3f\n", rr, fio_rr,
	       rr / fio_rr);
	printf("fixed buffers: %" PRIu64 " of %" PRIu64 " disk I/Os (write phase %" PRIu64
	       " of %" PRIu64 ")\n",
	       ce.ios_fixed, ios, cw.ios_fixed, cw.ios_fixed + cw.ios_plain);
	printf("{\"bench\":\"chunk\",\"value\":%.3g,\"unit\":\"GB/s\",\"limit\":%.3g,"
	       "\"ratio\":%.3f,\"seqwrite_gbs\":%.3g,\"fio_write_dsync_gbs\":%.3g,"
	       "\"fio_write_gbs\":%.3g,\"seqwrite_ratio_nosync\":%.3f,\"seqread_gbs\":%.3g,"
	       "\"fio_read_gbs\":%.3g,\"seqread_ratio\":%.3f,\"randread_iops\":%.0f,"
	       "\"fio_randread_iops\":%.0f,\"randread_ratio\":%.3f,\"commits_per_batch\":%.1f,"
	       "\"fixed_io_share\":%.3f,\"qd\":%u,\"mib\":%u}\n",
	       w / 1e9, fio_w / 1e9, w / fio_w, w / 1e9, fio_w / 1e9, fio_w_nosync / 1e9,
	       w / fio_w_nosync, r / 1e9, fio_r / 1e9, r / fio_r, rr, fio_rr, rr / fio_rr,
	       batches ? (double)commits / (double)batches : 0.0,
	       ios ? (double)ce.ios_fixed / (double)ios : 0.0, B.qd, B.nchunks);
	return 0;
}
