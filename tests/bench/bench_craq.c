/*
 * bench_craq.c - replicated (R = 3) sequential write and read throughput through a CRAQ
 * chain on a local cluster, against one target's numbers from the same run, and the resync
 * rate of a member that missed data (tests/bench/run craq).
 *
 * The cluster, all child processes in one temp dir on one disk (-d, default $TMPDIR or
 * /var/tmp): sluice-mgmtd (heartbeat 100 ms, lease 3 s) and four sluice-storage daemons
 * with one target each, s0..s3 on 127.0.0.10..13. s0, s1, s2 form the only chain of the
 * chain table; s3 stays in no chain, so it takes local (chain_id 0) updates: it gives the
 * single-target limit on the same disk, under the same daemon settings.
 *
 * Phases, each S MiB of whole 1 MiB chunks, Q calls in flight (Q slots on one client
 * reactor, each issuing its next call from the previous one's completion):
 *   single write   local writes to s3                       -> W1
 *   single read    the same chunks from s3                  -> R1
 *   chain write    tagged writes to the head (slot i is tag channel i, seq rising), which
 *                  the chain replicates to the other two    -> W3, limit W1 / 3 (three
 *                  copies on one disk), ratio target >= 0.7
 *   chain read     the same chunks, chunk k from member k % 3 (round robin over the
 *                  serving members)                         -> R3, limit R1, target >= 0.9
 *   resync         SIGKILL the middle member, wait until mgmtd takes it out of the chain,
 *                  write M MiB (-m) through the remaining two, restart it and time from the
 *                  restart until mgmtd lists it serving again: rate = bytes written while it
 *                  was down / that time. The time includes the daemon's start, registration
 *                  and the heartbeats that move it from waiting to syncing to serving; the
 *                  predecessor's own copy time (from its log) is printed too.
 * Before each measured phase one probe update is retried until the chain takes it (every
 * member has fetched the routing table the client uses); it is not timed.
 *
 * Besides the ratios it prints, per phase, the mean call latency (with Q in flight,
 * throughput = Q MiB / latency), each process's CPU use (bench client, mgmtd, daemons, in %
 * of one core) and the disk's throughput and busy time (/proc/diskstats, when the dir's
 * device is listed there), and the group commit batching of every target: enough to tell
 * a CPU-bound run from a disk- or latency-bound one.
 *
 * The last line is the JSON every benchmark ends with: value = chain write GB/s, limit =
 * single write / 3, then read_gbs, read_limit, read_ratio, resync_gbs and the raw numbers.
 *
 * Cleanup: the daemons get SIGTERM at the end and SIGKILL on failure or on SIGINT/SIGTERM/
 * SIGHUP of the bench (and PR_SET_PDEATHSIG if the bench dies), and the temp dir is removed
 * either way (the daemons' log tails are printed first on failure). Only the pids started
 * here are signalled.
 *
 * Usage: bench_craq [-d DIR] [-S MIB] [-m MIB] [-q QD] [-M SLUICE_MGMTD] [-s SLUICE_STORAGE]
 *        (defaults $TMPDIR or /var/tmp, 1024, 1024, 16, <bench dir>/../../mgmtd/sluice-mgmtd,
 *        <bench dir>/../../storage/sluice-storage)
 *
 * THREADS: main runs the cluster, samples and polls mgmtd; the slots run on the client
 * reactor and share only the atomic counters with main.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "proto/mgmt_ops.h"
#include "proto/storage_ops.h"
#include "tests/lib/testlib.h"
#include "tests/meta/meta_procs.h"

#define CHUNK	     (1u << 20)
#define SLOTS_MAX    256
#define R	     3 /* chain length */
#define NSTOR	     4 /* s0..s2 the chain, s3 the single target in no chain */
#define SINGLE	     3
#define TABLE_ID     1
#define CHECK_BYTES  4096u /* reads compare this much at each end of the chunk */
#define INODE_SINGLE 1
#define INODE_CHAIN  2
#define INODE_DOWN   3
#define INODE_PROBE  9
#define NPROC	     (2 + NSTOR) /* CPU sampled for: bench, mgmtd, s0..s3 */

/* What the slots do in a phase (set by main before the slots start). */
struct phase {
	const char *name;
	bool read;
	bool chained; /* tagged writes through the chain */
	uint64_t inode;
	uint32_t count;	   /* chunks 0 .. count-1 */
	unsigned nmembers; /* reads: round robin over members 0 .. n-1; writes go to 0 */
	uint64_t targets[R];
	const char *uris[R];
	uint32_t chain_id;
	uint64_t chain_ver;
};

struct slot {
	unsigned i; /* also the slot's tag channel */
	uint8_t *rbuf;
	uint64_t seq; /* last tag seq used on the channel, rising across phases */
	uint64_t started_ns;
};

/* Counters of one process or of the disk, to tell what a phase was bound by. */
struct sample {
	uint64_t ns;
	pid_t pid[NPROC];
	uint64_t ticks[NPROC]; /* utime + stime, clock ticks */
	bool disk;
	uint64_t rd_sect, wr_sect, io_ms;
};

static struct bench {
	const char *base, *mgmtd_bin, *stor_bin;
	unsigned qd, nchunks, down_chunks;
	char dir[160];
	bool dir_made;
	struct mp_daemon mgmtd, stor[NSTOR];
	uint64_t tid[NSTOR]; /* target id of each daemon's target */
	uint32_t chain_id;
	struct test_client tc;
	bool tc_started;
	uint64_t client_id;
	uint8_t *wdata; /* the chunk every write sends */
	uint32_t wcrc;
	unsigned disk_major, disk_minor;
	/* the running phase: ph and the cursor are the reactor's while slots run */
	struct phase ph;
	uint32_t next;
	unsigned active;
	atomic_uint_fast64_t done_ops, done_bytes, errors, lat_ns;
} B;

static struct slot slots[SLOTS_MAX];

/* ---- cleanup ----------------------------------------------------------------------------- */

static void print_log_tails(void)
{
	struct mp_daemon *all[] = {&B.mgmtd, &B.stor[0], &B.stor[1], &B.stor[2], &B.stor[3]};
	char cmd[400];

	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(all); i++) {
		if (all[i]->name[0] == '\0')
			continue;
		fprintf(stderr, "--- %s.log (last lines)\n", all[i]->name);
		snprintf(cmd, sizeof(cmd), "tail -n 15 %s/%s.log 1>&2", B.dir, all[i]->name);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	}
}

static void remove_dir(void)
{
	char cmd[256];

	if (!B.dir_made)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", B.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_craq: cleanup of %s failed\n", B.dir);
	B.dir_made = false;
}

static void kill_daemons(void)
{
	struct mp_daemon *all[] = {&B.stor[0], &B.stor[1], &B.stor[2], &B.stor[3], &B.mgmtd};

	mp_kill_all(all, SLUICE_ARRAY_SIZE(all));
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_craq: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (B.dir_made)
		print_log_tails();
	kill_daemons();
	remove_dir();
	exit(1);
}

/* SIGINT/SIGTERM/SIGHUP: kill our daemons and remove the dir with async-signal-safe calls
 * only (the pids are ours; a daemon forked a moment ago dies by its PDEATHSIG). */
static void on_signal(int sig)
{
	pid_t pid;

	for (int i = 0; i < NSTOR; i++)
		if (B.stor[i].pid > 0)
			kill(B.stor[i].pid, SIGKILL);
	if (B.mgmtd.pid > 0)
		kill(B.mgmtd.pid, SIGKILL);
	if (B.dir_made) {
		pid = fork();
		if (pid == 0) {
			execl("/bin/rm", "rm", "-rf", B.dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	_exit(128 + sig);
}

/* ---- samples ------------------------------------------------------------------------------- */

static uint64_t proc_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime */
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

static void take_sample(struct sample *s)
{
	const pid_t pids[NPROC] = {getpid(),	  B.mgmtd.pid,	 B.stor[0].pid,
				   B.stor[1].pid, B.stor[2].pid, B.stor[3].pid};
	char line[512];
	FILE *f;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < NPROC; i++) {
		s->pid[i] = pids[i];
		s->ticks[i] = pids[i] > 0 ? proc_ticks(pids[i]) : 0;
	}
	f = fopen("/proc/diskstats", "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned ma, mi;
		unsigned long long rs, ws, io;

		/* major minor name reads merged sectors ms writes merged sectors ms inflight
		 * io_ms */
		if (sscanf(line, " %u %u %*s %*u %*u %llu %*u %*u %*u %llu %*u %*u %llu", &ma, &mi,
			   &rs, &ws, &io) == 5 &&
		    ma == B.disk_major && mi == B.disk_minor) {
			s->disk = true;
			s->rd_sect = rs;
			s->wr_sect = ws;
			s->io_ms = io;
		}
	}
	if (f)
		fclose(f);
	s->ns = env_now_ns();
}

/* One line of CPU use (% of one core) per process and one of disk use between a and b. */
static void print_usage(const struct sample *a, const struct sample *b)
{
	static const char *const names[NPROC] = {"bench", "mgmtd", "s0", "s1", "s2", "s3"};
	double secs = (double)(b->ns - a->ns) / 1e9, hz = (double)sysconf(_SC_CLK_TCK), sum = 0;

	if (secs < 0.2) { /* CPU time comes in clock ticks (10 ms): too coarse */
		printf("%16s(too short to sample CPU and disk use)\n", "");
		return;
	}
	printf("%16scpu %% of a core:", "");
	for (int i = 0; i < NPROC; i++) {
		uint64_t t;

		if (b->pid[i] <= 0 && a->pid[i] <= 0)
			continue;
		/* a process (re)started in between: all its CPU time is in the interval */
		t = b->pid[i] <= 0	     ? 0
		    : a->pid[i] == b->pid[i] ? b->ticks[i] - a->ticks[i]
					     : b->ticks[i];
		printf(" %s %.0f", names[i], 100.0 * (double)t / hz / secs);
		sum += 100.0 * (double)t / hz / secs;
	}
	printf(" (sum %.0f of %ld)\n", sum, 100 * sysconf(_SC_NPROCESSORS_ONLN));
	if (a->disk && b->disk)
		printf("%16sdisk: write %.2f GB/s, read %.2f GB/s, busy %.0f%%\n", "",
		       (double)(b->wr_sect - a->wr_sect) * 512 / secs / 1e9,
		       (double)(b->rd_sect - a->rd_sect) * 512 / secs / 1e9,
		       100.0 * (double)(b->io_ms - a->io_ms) / 1e3 / secs);
}

/* ---- mgmtd's view ---------------------------------------------------------------------------- */

struct view {
	uint64_t tid[NSTOR]; /* target of daemon k as mgmtd lists it (0: not yet, or node dead) */
	int state[NSTOR];
	bool chain; /* B.chain_id is listed */
	uint64_t chain_ver;
	unsigned nmembers;
	int member[R]; /* daemon index of each member, head first, then non-serving ones */
};

static const struct rpc_call_opts ctl_opts = {.timeout_ms = 10000, .retries = 2};

/* Which daemon a target path belongs to: ".../s<k>-t0" (mp_storage_init's naming). */
static int daemon_of_path(const char *path)
{
	const char *s = strrchr(path, '/');

	if (s && s[1] == 's' && s[2] >= '0' && s[2] < '0' + NSTOR && strcmp(s + 3, "-t0") == 0)
		return s[2] - '0';
	return -1;
}

static int get_view(struct view *v)
{
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_result res = {0};
	const Sluice__RoutingTable *rt;
	int rc;

	memset(v, 0, sizeof(*v));
	rc = mgmtc_get_routing(B.tc.rpc, B.mgmtd.uri, &req, &ctl_opts, &res);
	if (rc != 0)
		goto out;
	rt = ((const Sluice__GetRoutingResp *)(const void *)res.resp)->routing;
	for (size_t t = 0; rt && t < rt->n_targets; t++) {
		const Sluice__TargetInfo *ti = rt->targets[t];
		int k = daemon_of_path(ti->path);

		for (size_t n = 0; k >= 0 && n < rt->n_nodes; n++) {
			if (rt->nodes[n]->id == ti->node_id && rt->nodes[n]->alive) {
				v->tid[k] = ti->id;
				v->state[k] = ti->state;
			}
		}
	}
	for (size_t c = 0; rt && B.chain_id && c < rt->n_chains; c++) {
		const Sluice__ChainInfo *ch = rt->chains[c];

		if (ch->id != B.chain_id)
			continue;
		v->chain = true;
		v->chain_ver = ch->version;
		for (size_t m = 0; m < ch->n_targets && v->nmembers < R; m++) {
			int k = -1;

			for (int i = 0; i < NSTOR; i++)
				if (B.tid[i] == ch->targets[m])
					k = i;
			if (k < 0) {
				rc = -SLUICE_EPROTO;
				goto out;
			}
			v->member[v->nmembers++] = k;
		}
	}
out:
	rpc_result_release(&res);
	return rc;
}

/* Whether every chain member is listed, alive and serving. */
static bool chain_serving(const struct view *v)
{
	if (!v->chain || v->nmembers != R)
		return false;
	for (unsigned m = 0; m < R; m++)
		if (v->tid[v->member[m]] == 0 ||
		    v->state[v->member[m]] != SLUICE__TARGET_STATE__TS_SERVING)
			return false;
	return true;
}

static void wait_registered(void)
{
	struct view v;

	for (int i = 0; i < 600; i++) {
		int n = 0;

		if (get_view(&v) == 0)
			for (int k = 0; k < NSTOR; k++)
				n += v.tid[k] != 0;
		if (n == NSTOR) {
			memcpy(B.tid, v.tid, sizeof(B.tid));
			return;
		}
		env_sleep_ms(50);
	}
	die("the storage targets did not register with mgmtd");
}

static void set_chain_table(void)
{
	Sluice__SetChainTableReq req = SLUICE__SET_CHAIN_TABLE_REQ__INIT;
	Sluice__ChainSpec spec = SLUICE__CHAIN_SPEC__INIT, *sp = &spec;
	struct rpc_result res = {0};
	uint64_t targets[R] = {B.tid[0], B.tid[1], B.tid[2]};
	int rc;

	spec.targets = targets;
	spec.n_targets = R;
	req.table_id = TABLE_ID;
	req.chains = &sp;
	req.n_chains = 1;
	rc = mgmtc_set_chain_table(B.tc.rpc, B.mgmtd.uri, &req, &ctl_opts, &res);
	if (rc == 0) {
		const Sluice__SetChainTableResp *r = (const void *)res.resp;

		if (r->n_chain_ids == 1)
			B.chain_id = r->chain_ids[0];
	}
	rpc_result_release(&res);
	if (rc != 0 || B.chain_id == 0)
		die("SET_CHAIN_TABLE failed: %s", sluice_strerror(rc));
}

/* The chain's current members in ph (head first; reads use the serving ones). */
static void chain_phase(const struct view *v, struct phase *ph)
{
	ph->chain_id = B.chain_id;
	ph->chain_ver = v->chain_ver;
	ph->nmembers = 0;
	for (unsigned m = 0; m < v->nmembers; m++) {
		int k = v->member[m];

		if (v->tid[k] == 0 || v->state[k] != SLUICE__TARGET_STATE__TS_SERVING)
			continue;
		ph->targets[ph->nmembers] = B.tid[k];
		ph->uris[ph->nmembers++] = B.stor[k].uri;
	}
}

/* ---- the slots (client reactor) ------------------------------------------------------------- */

static void slot_next(struct slot *s);

static void count_error(const char *what, int status, const char *detail)
{
	if (atomic_fetch_add(&B.errors, 1) < 5)
		fprintf(stderr, "bench_craq: %s: %s %s\n", what, sluice_strerror(status),
			detail ? detail : "");
}

/* A read must return the whole chunk as written (both ends compared, cheaply). */
static bool read_ok(const struct rpc_result *res, const struct slot *s)
{
	const Sluice__ChunkBatchReadResp *r = (const void *)res->resp;

	return r->n_results == 1 && r->results[0]->status == 0 && r->results[0]->length == CHUNK &&
	       res->resp_bulk_len == CHUNK && memcmp(s->rbuf, B.wdata, CHECK_BYTES) == 0 &&
	       memcmp(s->rbuf + CHUNK - CHECK_BYTES, B.wdata + CHUNK - CHECK_BYTES, CHECK_BYTES) ==
		       0;
}

static void slot_done(struct rpc_result *res, void *arg)
{
	struct slot *s = arg;

	if (res->status != 0) {
		count_error(B.ph.name, res->status, res->error_detail);
	} else if (B.ph.read && !read_ok(res, s)) {
		count_error(B.ph.name, -SLUICE_EPROTO, "(short or wrong read)");
	} else {
		atomic_fetch_add(&B.lat_ns, env_now_ns() - s->started_ns);
		atomic_fetch_add(&B.done_bytes, CHUNK);
		atomic_fetch_add(&B.done_ops, 1);
	}
	rpc_result_release(res);
	slot_next(s);
}

static int slot_write(struct slot *s, uint32_t index)
{
	Sluice__ChunkWriteReq req = SLUICE__CHUNK_WRITE_REQ__INIT;
	Sluice__UpdateTag tag = SLUICE__UPDATE_TAG__INIT;
	struct iovec iov = {.iov_base = B.wdata, .iov_len = CHUNK};
	struct rpc_call_opts opts = {.timeout_ms = 60000, .bulk = &iov, .nbulk = 1};

	req.target_id = B.ph.targets[0];
	req.inode = B.ph.inode;
	req.index = index;
	req.chunk_size = CHUNK;
	req.length = CHUNK;
	req.data_crc = B.wcrc;
	if (B.ph.chained) {
		tag.client_id = B.client_id;
		tag.channel = s->i;
		tag.seq = ++s->seq;
		req.chain_id = B.ph.chain_id;
		req.chain_ver = B.ph.chain_ver;
		req.tag = &tag;
	}
	return storagec_write_async(B.tc.rpc, B.ph.uris[0], &req, &opts, slot_done, s, NULL);
}

static int slot_read(struct slot *s, uint32_t index)
{
	Sluice__ChunkBatchReadReq req = SLUICE__CHUNK_BATCH_READ_REQ__INIT;
	Sluice__ChunkReadRange rg = SLUICE__CHUNK_READ_RANGE__INIT, *rgp = &rg;
	struct rpc_call_opts opts = {
		.timeout_ms = 60000, .resp_bulk = s->rbuf, .resp_bulk_cap = CHUNK};
	unsigned m = index % B.ph.nmembers;

	rg.inode = B.ph.inode;
	rg.index = index;
	rg.length = CHUNK;
	req.target_id = B.ph.targets[m];
	req.n_ranges = 1;
	req.ranges = &rgp;
	return storagec_batch_read_async(B.tc.rpc, B.ph.uris[m], &req, &opts, slot_done, s, NULL);
}

static void slot_next(struct slot *s)
{
	int rc;

	if (B.next == B.ph.count) {
		B.active--;
		return;
	}
	s->started_ns = env_now_ns();
	rc = B.ph.read ? slot_read(s, B.next) : slot_write(s, B.next);
	B.next++;
	if (rc != 0) {
		count_error("cannot start a call", rc, NULL);
		B.active--;
	}
}

static void start_slots(void *arg)
{
	(void)arg;
	B.next = 0;
	B.active = B.qd;
	for (unsigned i = 0; i < B.qd; i++)
		slot_next(&slots[i]);
}

/* Run ph to the end: bytes per second; fails the bench on any error. */
static double run_phase(const struct phase *ph)
{
	struct sample a, b;
	double secs;

	B.ph = *ph;
	atomic_store(&B.done_ops, 0);
	atomic_store(&B.done_bytes, 0);
	atomic_store(&B.lat_ns, 0);
	take_sample(&a);
	run_on_reactor(B.tc.r, start_slots, NULL);
	while (atomic_load(&B.done_ops) + atomic_load(&B.errors) < ph->count)
		env_sleep_ms(1);
	take_sample(&b);
	if (atomic_load(&B.errors) != 0)
		die("%s: %" PRIuFAST64 " calls failed", ph->name, atomic_load(&B.errors));
	secs = (double)(b.ns - a.ns) / 1e9;
	printf("%-14s %7.3f GB/s  %u MiB in %.2f s, mean latency %.2f ms at %u in flight\n",
	       ph->name, (double)atomic_load(&B.done_bytes) / secs / 1e9, ph->count, secs,
	       (double)atomic_load(&B.lat_ns) / (double)ph->count / 1e6, B.qd);
	print_usage(&a, &b);
	return (double)atomic_load(&B.done_bytes) / secs;
}

/* ---- probes and counters -----------------------------------------------------------------------
 */

/*
 * One whole-chunk update of inode:index retried until it succeeds, for up to 30 s: until
 * every member has fetched the routing table the client uses, and has a lease, updates are
 * refused (EROUTING, ECHAINVER, ESTALE_LEASE). For a chain, ph is refreshed from mgmtd
 * before each attempt; the tag stays the same (applied once).
 */
static void probe_write(struct phase *ph, uint64_t inode, uint32_t index)
{
	static uint64_t probe_seq;
	Sluice__UpdateTag tag = SLUICE__UPDATE_TAG__INIT;
	struct iovec iov = {.iov_base = B.wdata, .iov_len = CHUNK};
	struct rpc_call_opts opts = {.timeout_ms = 10000, .bulk = &iov, .nbulk = 1};
	int rc = -1;

	tag.client_id = B.client_id;
	tag.channel = SLOTS_MAX; /* no slot's channel */
	tag.seq = ++probe_seq;
	for (int attempt = 0; attempt < 600 && rc != 0; attempt++) {
		Sluice__ChunkWriteReq req = SLUICE__CHUNK_WRITE_REQ__INIT;
		struct rpc_result res = {0};
		struct view v;

		if (attempt > 0)
			env_sleep_ms(50);
		if (ph->chained) {
			if (get_view(&v) != 0 || !v.chain)
				continue;
			chain_phase(&v, ph);
			if (ph->nmembers == 0)
				continue;
			req.chain_id = ph->chain_id;
			req.chain_ver = ph->chain_ver;
			req.tag = &tag;
		}
		req.target_id = ph->targets[0];
		req.inode = inode;
		req.index = index;
		req.chunk_size = CHUNK;
		req.length = CHUNK;
		req.data_crc = B.wcrc;
		rc = storagec_write(B.tc.rpc, ph->uris[0], &req, &opts, &res);
		rpc_result_release(&res);
	}
	if (rc != 0)
		die("%s: the probe update was never taken: %s", ph->name, sluice_strerror(rc));
}

/* Group commit of daemon k's target: chunk updates committed and synced batches. */
static void commit_counters(int k, uint64_t *commits, uint64_t *batches)
{
	Sluice__TargetStatfsReq req = SLUICE__TARGET_STATFS_REQ__INIT;
	struct rpc_result res = {0};

	*commits = *batches = 0;
	req.target_id = B.tid[k];
	if (storagec_statfs(B.tc.rpc, B.stor[k].uri, &req, &ctl_opts, &res) == 0) {
		const Sluice__TargetStatfsResp *r = (const void *)res.resp;

		for (size_t i = 0; i < r->n_targets; i++) {
			if (r->targets[i]->target_id == B.tid[k] && r->targets[i]->counters) {
				*commits = r->targets[i]->counters->commits;
				*batches = r->targets[i]->counters->commit_batches;
			}
		}
	}
	rpc_result_release(&res);
}

static void print_batching(const int *ks, int n)
{
	printf("%16sgroup commit (updates per synced batch):", "");
	for (int i = 0; i < n; i++) {
		uint64_t c, b;

		commit_counters(ks[i], &c, &b);
		printf(" s%d %.1f", ks[i], b ? (double)c / (double)b : 0.0);
	}
	printf("\n");
}

/* ---- resync ---------------------------------------------------------------------------------- */

struct resync_result {
	double secs, ready_secs, syncing_secs; /* restart -> serving, -> ready file, -> syncing */
	uint64_t bytes;			       /* written while the member was down */
	double copy_secs;		       /* the predecessor's pass, from its log (0: none) */
	uint64_t copy_mib;
};

/* The predecessor's "resync of target T from S (...) done: ... sent (X MiB) in Y ms" line. */
static void resync_log_line(uint64_t victim, struct resync_result *out)
{
	char path[300], line[1024], want[64];

	snprintf(want, sizeof(want), "resync of target %" PRIu64 " from", victim);
	for (int k = 0; k < R; k++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.log", B.dir, B.stor[k].name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			const char *p = strstr(line, want), *q;
			unsigned long long mib, ms;

			q = p ? strstr(p, ") done:") : NULL;
			q = q ? strstr(q, " sent (") : NULL;
			if (q && sscanf(q, " sent (%llu MiB) in %llu ms", &mib, &ms) == 2) {
				out->copy_mib = mib;
				out->copy_secs = (double)ms / 1e3;
				printf("  predecessor: %s", p);
			}
		}
		if (f)
			fclose(f);
	}
}

static void wait_member_out(int victim, uint64_t ver_before)
{
	struct view v;

	for (int i = 0; i < 1200; i++) {
		if (get_view(&v) == 0 && v.chain && v.chain_ver != ver_before &&
		    v.state[victim] != SLUICE__TARGET_STATE__TS_SERVING)
			return;
		env_sleep_ms(25);
	}
	die("mgmtd did not take the killed member out of the chain");
}

static struct resync_result run_resync(void)
{
	struct resync_result rr = {0};
	struct phase ph = {.name = "write, 1 down", .chained = true, .inode = INODE_DOWN};
	struct sample a, b;
	struct view v;
	uint64_t t0;
	int victim;

	if (get_view(&v) != 0 || !chain_serving(&v))
		die("the chain is not serving before the resync phase");
	victim = v.member[1]; /* the middle: not the head */
	printf("resync: SIGKILL of s%d (target %" PRIu64 "), the chain's middle member\n", victim,
	       B.tid[victim]);
	(void)mp_stop(&B.stor[victim], SIGKILL);
	wait_member_out(victim, v.chain_ver);
	/* the probe writes the phase's first chunk, the slots the rest */
	probe_write(&ph, INODE_DOWN, B.down_chunks - 1);
	ph.count = B.down_chunks - 1;
	if (ph.count > 0)
		run_phase(&ph);
	rr.bytes = (uint64_t)B.down_chunks * CHUNK;

	take_sample(&a);
	t0 = env_now_ns();
	if (mp_start(&B.stor[victim], B.dir) != 0)
		die("s%d did not restart", victim);
	rr.ready_secs = (double)(env_now_ns() - t0) / 1e9;
	for (;;) {
		double secs = (double)(env_now_ns() - t0) / 1e9;

		if (get_view(&v) == 0) {
			if (rr.syncing_secs == 0 &&
			    v.state[victim] == SLUICE__TARGET_STATE__TS_SYNCING)
				rr.syncing_secs = secs;
			if (chain_serving(&v)) {
				rr.secs = secs;
				break;
			}
		}
		if (secs > 600)
			die("s%d was not serving again 600 s after its restart", victim);
		env_sleep_ms(5);
	}
	take_sample(&b);
	printf("resync         %7.3f GB/s  %" PRIu64
	       " MiB missed, serving %.2f s after the restart "
	       "(ready file %.2f s, syncing seen %.2f s)\n",
	       (double)rr.bytes / rr.secs / 1e9, rr.bytes >> 20, rr.secs, rr.ready_secs,
	       rr.syncing_secs);
	print_usage(&a, &b);
	resync_log_line(B.tid[victim], &rr);

	/* the member serves what it missed: the first and last chunks it got back */
	chain_phase(&v, &ph);
	for (unsigned m = 0; m < ph.nmembers; m++) {
		if (ph.targets[m] != B.tid[victim])
			continue;
		ph.name = "read of resynced chunks";
		ph.read = true;
		ph.targets[0] = ph.targets[m];
		ph.uris[0] = ph.uris[m];
		ph.nmembers = 1;
		break;
	}
	if (!ph.read)
		die("s%d is not among the chain's serving members after the resync", victim);
	for (int e = 0; e < 2; e++) {
		uint32_t idx = e == 0 ? 0 : B.down_chunks - 1;
		Sluice__ChunkBatchReadReq req = SLUICE__CHUNK_BATCH_READ_REQ__INIT;
		Sluice__ChunkReadRange rg = SLUICE__CHUNK_READ_RANGE__INIT, *rgp = &rg;
		struct rpc_call_opts o = {
			.timeout_ms = 10000, .resp_bulk = slots[0].rbuf, .resp_bulk_cap = CHUNK};
		struct rpc_result res = {0};
		bool ok;

		rg.inode = INODE_DOWN;
		rg.index = idx;
		rg.length = CHUNK;
		req.target_id = ph.targets[0];
		req.n_ranges = 1;
		req.ranges = &rgp;
		ok = storagec_batch_read(B.tc.rpc, ph.uris[0], &req, &o, &res) == 0 &&
		     read_ok(&res, &slots[0]);
		rpc_result_release(&res);
		if (!ok)
			die("chunk %u is not on s%d after its resync", idx, victim);
	}
	return rr;
}

/* ---- main -------------------------------------------------------------------------------------
 */

static void usage(void)
{
	fprintf(stderr, "usage: bench_craq [-d DIR] [-S MIB] [-m MIB] [-q QD] [-M SLUICE_MGMTD] "
			"[-s SLUICE_STORAGE]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static char self[4096], mgmtd_path[4200], stor_path[4200];
	const char *tmp = getenv("TMPDIR");
	int opt;

	B.base = tmp && tmp[0] ? tmp : "/var/tmp";
	B.nchunks = 1024;
	B.down_chunks = 1024;
	B.qd = 16;
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(mgmtd_path, sizeof(mgmtd_path), "%s/../../mgmtd/sluice-mgmtd", dirname(self));
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(stor_path, sizeof(stor_path), "%s/../../storage/sluice-storage", dirname(self));
	B.mgmtd_bin = mgmtd_path;
	B.stor_bin = stor_path;
	while ((opt = getopt(argc, argv, "d:S:m:q:M:s:")) != -1) {
		switch (opt) {
		case 'd':
			B.base = optarg;
			break;
		case 'S':
			B.nchunks = (unsigned)atoi(optarg);
			break;
		case 'm':
			B.down_chunks = (unsigned)atoi(optarg);
			break;
		case 'q':
			B.qd = (unsigned)atoi(optarg);
			break;
		case 'M':
			B.mgmtd_bin = optarg;
			break;
		case 's':
			B.stor_bin = optarg;
			break;
		default:
			usage();
		}
	}
	if (B.qd == 0 || B.qd > SLOTS_MAX || B.nchunks == 0 || B.down_chunks == 0 ||
	    B.nchunks > (1u << 20) || B.down_chunks > (1u << 20))
		usage();
	if (access(B.mgmtd_bin, X_OK) != 0 || access(B.stor_bin, X_OK) != 0)
		die("sluice-mgmtd (-M %s) or sluice-storage (-s %s) not found", B.mgmtd_bin,
		    B.stor_bin);
}

static void start_cluster(void)
{
	char kv[64];
	struct stat st;
	/* data files grow in steps of a quarter of a phase, 16 .. 256 MiB */
	unsigned group_mib = B.nchunks / 4 < 16 ? 16 : B.nchunks / 4 > 256 ? 256 : B.nchunks / 4;

	if (snprintf(B.dir, sizeof(B.dir), "%s/sluice-bench-craq-XXXXXX", B.base) >=
		    (int)sizeof(B.dir) - 32 ||
	    !mkdtemp(B.dir))
		die("cannot make a temp dir under %s", B.base);
	B.dir_made = true;
	if (stat(B.dir, &st) == 0) {
		B.disk_major = major(st.st_dev);
		B.disk_minor = minor(st.st_dev);
	}
	mp_mgmtd_init(&B.mgmtd, B.mgmtd_bin, B.dir);
	mp_set(&B.mgmtd, "mgmtd.lease_ms=3s"); /* a loaded 2-core box must not lose leases */
	if (mp_start(&B.mgmtd, B.dir) != 0)
		die("sluice-mgmtd did not start");
	for (int k = 0; k < NSTOR; k++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", k);
		mp_storage_init(&B.stor[k], B.stor_bin, B.dir, name, k, B.mgmtd.uri, 1);
		/* bench_chunk's settings, so the single target here is that benchmark's */
		snprintf(kv, sizeof(kv), "storage.group_bytes=%uMiB", group_mib);
		mp_set(&B.stor[k], kv);
		mp_set(&B.stor[k], "storage.buffer_bytes=1GiB");
		mp_set(&B.stor[k], "storage.reserve_bytes=64MiB");
		if (mp_start(&B.stor[k], B.dir) != 0)
			die("sluice-storage %s did not start", name);
	}
	if (test_client_start(&B.tc, NULL, 512u << 20) != 0)
		die("client start failed");
	B.tc_started = true;
}

static void stop_cluster(void)
{
	struct mp_daemon *all[] = {&B.stor[0], &B.stor[1], &B.stor[2], &B.stor[3], &B.mgmtd};

	if (B.tc_started)
		test_client_stop(&B.tc);
	B.tc_started = false;
	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(all); i++)
		if (all[i]->pid > 0 && mp_stop(all[i], SIGTERM) != 0)
			fprintf(stderr, "bench_craq: %s did not exit cleanly\n", all[i]->name);
	remove_dir();
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct phase ph;
	struct view v;
	double w1, r1, w3, r3;
	struct resync_result rr;
	const int all3[R] = {0, 1, 2}, single[1] = {SINGLE};

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	B.client_id = (env_now_ns() ^ ((uint64_t)getpid() << 40)) | 1;
	B.wdata = aligned_alloc(4096, CHUNK);
	if (!B.wdata)
		die("out of memory");
	pattern_fill(B.wdata, CHUNK, 7);
	B.wcrc = crc32c(0, B.wdata, CHUNK);
	for (unsigned i = 0; i < B.qd; i++) {
		slots[i].i = i;
		slots[i].rbuf = aligned_alloc(4096, CHUNK);
		if (!slots[i].rbuf)
			die("out of memory");
		memset(slots[i].rbuf, 0, CHUNK);
	}

	start_cluster();
	wait_registered();
	printf("cluster: mgmtd + 4 sluice-storage (1 target each) in %s, %u MiB per phase, "
	       "%u in flight, %ld cores\n",
	       B.dir, B.nchunks, B.qd, sysconf(_SC_NPROCESSORS_ONLN));

	/* 1. the single-target limit: s3, in no chain, takes local updates */
	ph = (struct phase){.name = "single write",
			    .inode = INODE_SINGLE,
			    .count = B.nchunks,
			    .nmembers = 1,
			    .targets = {B.tid[SINGLE]},
			    .uris = {B.stor[SINGLE].uri}};
	probe_write(&ph, INODE_PROBE, 0);
	w1 = run_phase(&ph);
	print_batching(single, 1);
	ph.name = "single read";
	ph.read = true;
	r1 = run_phase(&ph);
	(void)mp_stop(&B.stor[SINGLE], SIGTERM); /* done: idle from here on */

	/* 2. the chain s0 -> s1 -> s2 */
	set_chain_table();
	for (int i = 0; i < 600; i++) {
		if (get_view(&v) == 0 && chain_serving(&v))
			break;
		if (i == 599)
			die("chain %u did not serve", B.chain_id);
		env_sleep_ms(50);
	}
	ph = (struct phase){
		.name = "chain write", .chained = true, .inode = INODE_CHAIN, .count = B.nchunks};
	probe_write(&ph, INODE_PROBE, 1);
	printf("chain %u v%" PRIu64 ": s%d (head) -> s%d -> s%d\n", B.chain_id, ph.chain_ver,
	       v.member[0], v.member[1], v.member[2]);
	w3 = run_phase(&ph);
	print_batching(all3, R);
	ph.name = "chain read";
	ph.read = true;
	r3 = run_phase(&ph);

	/* 3. resync of a member that missed -m MiB */
	rr = run_resync();
	stop_cluster();

	printf("write: chain %.3f GB/s, limit single/3 = %.3f GB/s (single %.3f): ratio %.3f "
	       "(target >= 0.7)\n",
	       w3 / 1e9, w1 / 3 / 1e9, w1 / 1e9, w3 / (w1 / 3));
	printf("read:  chain %.3f GB/s, limit single   = %.3f GB/s: ratio %.3f (target >= 0.9)\n",
	       r3 / 1e9, r1 / 1e9, r3 / r1);
	printf("resync: %.3f GB/s (%" PRIu64 " MiB in %.2f s from restart to serving; the copy "
	       "itself %.3f GB/s)\n",
	       (double)rr.bytes / rr.secs / 1e9, rr.bytes >> 20, rr.secs,
	       rr.copy_secs > 0 ? (double)(rr.copy_mib << 20) / rr.copy_secs / 1e9 : 0.0);
	printf("{\"bench\":\"craq\",\"value\":%.3g,\"unit\":\"GB/s\",\"limit\":%.3g,\"ratio\":%.3f,"
	       "\"read_gbs\":%.3g,\"read_limit\":%.3g,\"read_ratio\":%.3f,\"resync_gbs\":%.3g,"
	       "\"resync_s\":%.3f,\"resync_mib\":%" PRIu64 ",\"resync_copy_gbs\":%.3g,"
	       "\"single_write_gbs\":%.3g,\"single_read_gbs\":%.3g,\"replicas\":%d,\"qd\":%u,"
	       "\"mib\":%u}\n",
	       w3 / 1e9, w1 / 3 / 1e9, w3 / (w1 / 3), r3 / 1e9, r1 / 1e9, r3 / r1,
	       (double)rr.bytes / rr.secs / 1e9, rr.secs, rr.bytes >> 20,
	       rr.copy_secs > 0 ? (double)(rr.copy_mib << 20) / rr.copy_secs / 1e9 : 0.0, w1 / 1e9,
	       r1 / 1e9, R, B.qd, B.nchunks);
	return 0;
}
