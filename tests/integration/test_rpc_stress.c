/*
 * test_rpc_stress.c - many RPCs of random sizes, many in flight, every byte verified.
 *
 * An in-process echo server and a client, each on its own reactor thread, talk over loopback
 * TCP. The client keeps STRESS_INFLIGHT calls in flight: they are started on its reactor
 * (run_on_reactor) and each done callback verifies its response and issues the next call
 * from the same slot until the count is reached; the main thread only waits on a condvar
 * (with a watchdog that fails the test if no call completes for a long time instead of
 * hanging until the meson timeout).
 *
 * Every call's shape is a pure function of (seed, call index), so a failure names the call
 * and reproduces with the same seed: payload `data` of 0..64 KiB, a request bulk and a
 * response bulk of 0 B..16 MiB. Sizes are log-uniform within three tiers - 95% up to
 * 64 KiB, 4.7% up to 1 MiB, 0.3% up to 16 MiB - which keeps the total traffic near 6 GB per
 * 100,000 calls; a fixed list of edge cases (0, 1, 4 KiB +- 1, 64 KiB, 1 MiB, exactly 16 MiB)
 * is replayed every EDGE_PERIOD calls. Half the calls receive the response bulk into a
 * buffer of exactly its size (opts.resp_bulk), half into a pool buffer; half ask the
 * transport for a bulk CRC; the request bulk is a window at a random offset of one prepared
 * pattern buffer, split into 1..4 iovecs (some of length 0).
 *
 * Checks per call: status 0, echoed data equal, the server's request bulk length and CRC32C
 * equal to ours, response bulk length and pattern(seed) equal. At the end: every call
 * completed exactly once, no failures. The first half of the calls uses one connection,
 * the second half a fresh client with conns_per_peer = 4.
 *
 * Usage: test_rpc_stress [CALLS [SEED]]; or SLUICE_STRESS_CALLS / SLUICE_STRESS_SEED.
 *
 * THREADS: main (setup, waiting), the client reactor (issuing and verifying), the server
 * reactor (echo handlers).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "tests/lib/testlib.h"

#define STRESS_CALLS_DEFAULT 100000u
#define STRESS_SEED_DEFAULT  0x5EED2024ull
#define STRESS_INFLIGHT	     64
#define STRESS_POOL_BYTES    (1024ull * SLUICE_MiB)
#define STRESS_TIMEOUT_MS    120000u /* per call: generous for sanitizer builds */
#define STRESS_STALL_S	     90	     /* watchdog: no completion for this long fails the run */
#define DATA_MAX	     (64u * SLUICE_KiB)
#define BULK_MAX	     (16u * SLUICE_MiB)
#define PATTERN_SLACK	     (64u * SLUICE_KiB) /* request windows start anywhere in here */
#define EDGE_PERIOD	     4096u
#define FAILS_PRINTED	     20

/* One call's shape, derived from (seed, index) alone. */
struct shape {
	uint32_t data_len, req_len, resp_len;
	uint32_t req_off; /* window start in the pattern buffer */
	unsigned niov;	  /* 0..4 request bulk vectors */
	uint32_t cut[3];  /* split points inside the window, ascending */
	bool into_caller, bulk_crc;
	uint64_t data_seed, resp_seed;
};

struct stress;

struct slot {
	struct stress *st;
	uint64_t idx;
	struct shape sh;
	uint32_t req_crc;
	struct iovec iov[4];
	uint8_t data[DATA_MAX];
	void *resp_buf; /* malloc'd per call in into_caller mode */
};

struct stress {
	struct test_client tc;
	const char *uri;
	uint64_t seed;
	uint64_t first, end; /* call indexes of this phase: [first, end) */
	uint64_t next;	     /* next index to issue */
	uint8_t *pattern;    /* BULK_MAX + PATTERN_SLACK bytes of pattern(seed) */
	struct slot *slots;
	/* counters: written on the client reactor only, read by main after `finished` */
	uint64_t issued, completed, failed, bytes;
	uint64_t done_runs; /* done callbacks: must equal issued */
	/* guards finished and progress, shared between the reactor and main */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished;
	uint64_t progress;
};

/* ---- call shapes ------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	r->s += 0x9E3779B97F4A7C15ull;
	return mix64(r->s);
}

static uint64_t rng_below(struct rng *r, uint64_t bound)
{
	return rng_next(r) % bound; /* bias is irrelevant here */
}

/*
 * Roughly log-uniform in (lo, hi]: a bit length k is uniform, then the value is uniform
 * below 2^k, so every magnitude is visited without the traffic of a uniform draw. Values
 * past hi are clamped to hi, which makes the tier's upper edge a frequent case on purpose.
 */
static uint32_t log_uniform(struct rng *r, uint32_t lo, uint32_t hi)
{
	uint64_t span = hi - lo;
	unsigned k = (unsigned)rng_below(r, 65 - (unsigned)__builtin_clzll(span));
	uint64_t x = rng_below(r, 1ull << k);

	return lo + 1 + (uint32_t)(x < span ? x : span - 1);
}

static uint32_t bulk_size(struct rng *r)
{
	uint64_t tier = rng_below(r, 1000);

	if (tier < 950)
		return rng_below(r, 20) == 0 ? 0 : log_uniform(r, 0, 64u * SLUICE_KiB);
	if (tier < 997)
		return log_uniform(r, 64u * SLUICE_KiB, SLUICE_MiB);
	return log_uniform(r, SLUICE_MiB, BULK_MAX);
}

/* {data, request bulk, response bulk}: the sizes most likely to break framing. */
static const uint32_t edges[][3] = {
	{0, 0, 0},
	{1, 1, 1},
	{0, BULK_MAX, BULK_MAX},
	{DATA_MAX, BULK_MAX, 0},
	{0, 0, BULK_MAX},
	{DATA_MAX, DATA_MAX, DATA_MAX},
	{1, 4095, 4097},
	{4096, 4096, 4096},
	{DATA_MAX - 1, SLUICE_MiB, SLUICE_MiB},
	{3, SLUICE_MiB + 1, SLUICE_MiB - 1},
	{0, 1, 0},
	{0, 0, 1},
};

static void shape_of(uint64_t seed, uint64_t idx, struct shape *sh)
{
	struct rng r = {mix64(seed ^ mix64(idx + 1))};
	uint64_t e = idx % EDGE_PERIOD;

	memset(sh, 0, sizeof(*sh));
	if (e < SLUICE_ARRAY_SIZE(edges)) {
		sh->data_len = edges[e][0];
		sh->req_len = edges[e][1];
		sh->resp_len = edges[e][2];
	} else {
		sh->data_len = rng_below(&r, 8) == 0 ? 0 : log_uniform(&r, 0, DATA_MAX);
		sh->req_len = bulk_size(&r);
		sh->resp_len = bulk_size(&r);
	}
	sh->req_off = (uint32_t)rng_below(&r, PATTERN_SLACK + 1);
	/* A zero-length bulk is sent both as no vectors and as empty vectors. */
	sh->niov = (unsigned)(sh->req_len == 0 && rng_below(&r, 2) ? 0 : 1 + rng_below(&r, 4));
	for (unsigned i = 0; i + 1 < sh->niov; i++)
		sh->cut[i] = (uint32_t)rng_below(&r, (uint64_t)sh->req_len + 1);
	for (unsigned i = 1; i + 1 < sh->niov; i++) /* insertion sort of <= 3 cuts */
		for (unsigned j = i; j > 0 && sh->cut[j - 1] > sh->cut[j]; j--) {
			uint32_t t = sh->cut[j];

			sh->cut[j] = sh->cut[j - 1];
			sh->cut[j - 1] = t;
		}
	sh->into_caller = rng_below(&r, 2);
	sh->bulk_crc = rng_below(&r, 2);
	sh->data_seed = rng_next(&r) | 1;
	sh->resp_seed = rng_next(&r) | 1; /* 0 would mean "any bytes" to the server */
}

/* ---- issuing and verifying (client reactor) ------------------------------------------ */

static void call_done(struct rpc_result *res, void *arg);

static void fail(struct stress *st, const struct slot *s, const char *what, long a, long b)
{
	if (st->failed++ < FAILS_PRINTED)
		fprintf(stderr,
			"FAIL call %" PRIu64 " (seed %#" PRIx64 "): %s (%ld vs %ld); data %u, "
			"req bulk %u in %u iov, resp bulk %u %s, crc %d\n",
			s->idx, st->seed, what, a, b, s->sh.data_len, s->sh.req_len, s->sh.niov,
			s->sh.resp_len, s->sh.into_caller ? "caller" : "pool", s->sh.bulk_crc);
}

/* Start call s->idx from slot s. False when it could not be started (counted failed). */
static bool slot_issue(struct slot *s)
{
	struct stress *st = s->st;
	const struct shape *sh = &s->sh;
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = STRESS_TIMEOUT_MS};
	const uint8_t *win;
	uint32_t prev = 0;
	int rc;

	shape_of(st->seed, s->idx, &s->sh);
	win = st->pattern + sh->req_off;
	for (unsigned i = 0; i < sh->niov; i++) {
		uint32_t end = i + 1 < sh->niov ? sh->cut[i] : sh->req_len;

		s->iov[i] = (struct iovec){(void *)(win + prev), end - prev};
		prev = end;
	}
	o.bulk = s->iov;
	o.nbulk = sh->niov;
	o.bulk_crc = sh->bulk_crc;
	s->req_crc = crc32c(0, win, sh->req_len);
	pattern_fill(s->data, sh->data_len, sh->data_seed);
	s->resp_buf = NULL;
	if (sh->into_caller) {
		s->resp_buf = malloc(sh->resp_len ? sh->resp_len : 1);
		ASSERT(s->resp_buf);
		o.resp_bulk = s->resp_buf;
		o.resp_bulk_cap = sh->resp_len; /* exactly: ASan sees a byte written past it */
	}
	req.data.data = s->data;
	req.data.len = sh->data_len;
	req.resp_bulk_len = sh->resp_len;
	req.seed = sh->resp_seed;
	req.req_bulk_crc = s->req_crc;
	rc = echoc_echo_async(st->tc.rpc, st->uri, &req, &o, call_done, s, NULL);
	if (rc) {
		fail(st, s, "rpc_call refused", rc, 0);
		free(s->resp_buf);
		s->resp_buf = NULL;
		return false;
	}
	st->issued++;
	return true;
}

static void verify(struct slot *s, const struct rpc_result *res)
{
	struct stress *st = s->st;
	const struct shape *sh = &s->sh;
	const Sluice__Test__EchoResp *resp = (const Sluice__Test__EchoResp *)res->resp;
	uint64_t failed = st->failed;
	long off;

	if (res->status != 0) {
		fail(st, s, sluice_strerror(res->status), res->status, 0);
		return;
	}
	if (!resp) {
		fail(st, s, "no response message", 0, 0);
		return;
	}
	if (resp->data.len != sh->data_len)
		fail(st, s, "echoed data length", (long)resp->data.len, sh->data_len);
	else if (sh->data_len && memcmp(resp->data.data, s->data, sh->data_len) != 0)
		fail(st, s, "echoed data differs", 0, 0);
	if (resp->req_bulk_len != sh->req_len)
		fail(st, s, "server's request bulk length", resp->req_bulk_len, sh->req_len);
	if (resp->req_bulk_crc != s->req_crc)
		fail(st, s, "server's request bulk crc", resp->req_bulk_crc, s->req_crc);
	if (res->resp_bulk_len != sh->resp_len)
		fail(st, s, "response bulk length", (long)res->resp_bulk_len, sh->resp_len);
	if (sh->into_caller) {
		if (res->resp_bulk)
			fail(st, s, "pool buffer despite a caller buffer", 0, 0);
		off = pattern_check(s->resp_buf, sh->resp_len, sh->resp_seed);
		if (off >= 0)
			fail(st, s, "response bulk (caller buffer) differs at", off, -1);
	} else if (sh->resp_len) {
		if (!res->resp_bulk || res->resp_bulk->len != sh->resp_len) {
			fail(st, s, "pool response bulk length",
			     res->resp_bulk ? (long)res->resp_bulk->len : -1, sh->resp_len);
		} else {
			off = pattern_check(res->resp_bulk->data, sh->resp_len, sh->resp_seed);
			if (off >= 0)
				fail(st, s, "response bulk (pool buffer) differs at", off, -1);
		}
	} else if (res->resp_bulk) {
		fail(st, s, "pool buffer for an empty response bulk", 0, 0);
	}
	if (st->failed == failed)
		st->bytes += 2ull * sh->data_len + sh->req_len + sh->resp_len;
}

static void finish_phase(struct stress *st)
{
	pthread_mutex_lock(&st->mu);
	st->finished = true;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

static void call_done(struct rpc_result *res, void *arg)
{
	struct slot *s = arg;
	struct stress *st = s->st;

	st->done_runs++;
	verify(s, res);
	rpc_result_release(res);
	free(s->resp_buf);
	s->resp_buf = NULL;
	st->completed++;
	/* Refill the slot; a call that cannot start counts as completed (and failed). */
	while (st->next < st->end) {
		s->idx = st->next++;
		if (slot_issue(s))
			break;
		st->completed++;
	}
	pthread_mutex_lock(&st->mu);
	st->progress++;
	pthread_mutex_unlock(&st->mu);
	if (st->completed == st->end - st->first)
		finish_phase(st);
}

static void start_fn(void *arg)
{
	struct stress *st = arg;

	for (unsigned i = 0; i < STRESS_INFLIGHT && st->next < st->end; i++) {
		struct slot *s = &st->slots[i];

		s->st = st;
		while (st->next < st->end) {
			s->idx = st->next++;
			if (slot_issue(s))
				break;
			st->completed++;
		}
	}
	if (st->completed == st->end - st->first)
		finish_phase(st);
}

/* ---- phases (main thread) ------------------------------------------------------------- */

/* Wait for the phase to finish; false if it made no progress for STRESS_STALL_S. */
static bool wait_phase(struct stress *st)
{
	uint64_t seen = UINT64_MAX;
	bool ok = true;

	pthread_mutex_lock(&st->mu);
	while (!st->finished) {
		struct timespec ts;

		if (st->progress == seen) {
			ok = false;
			break;
		}
		seen = st->progress;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += STRESS_STALL_S;
		while (!st->finished && st->progress == seen &&
		       pthread_cond_timedwait(&st->cv, &st->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&st->mu);
	return ok;
}

static void run_phase(struct stress *st, unsigned conns, uint64_t first, uint64_t end)
{
	struct rpc_client_cfg cfg = {.conns_per_peer = conns};
	uint64_t t0, ns;
	int rc;

	st->first = st->next = first;
	st->end = end;
	st->issued = st->completed = st->failed = st->bytes = st->done_runs = 0;
	st->finished = false;
	st->progress = 0;
	rc = test_client_start(&st->tc, &cfg, STRESS_POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc)
		return;
	t0 = env_now_ns();
	run_on_reactor(st->tc.r, start_fn, st);
	if (!wait_phase(st)) {
		fprintf(stderr,
			"FAIL: no call completed for %d s (%" PRIu64 " of %" PRIu64
			" done); aborting\n",
			STRESS_STALL_S, st->completed, end - first);
		_exit(1); /* the reactor still owns the slots: no clean way out */
	}
	ns = env_now_ns() - t0;
	test_client_stop(&st->tc);
	printf("phase conns_per_peer=%u: %" PRIu64 " calls in %.2f s: %.0f calls/s, %.1f MB/s "
	       "(%.2f GB verified), %" PRIu64 " failed\n",
	       conns, end - first, (double)ns / 1e9, (double)(end - first) * 1e9 / (double)ns,
	       (double)st->bytes * 1e3 / (double)ns, (double)st->bytes / 1e9, st->failed);
	CHECK_EQ(st->completed, end - first);
	CHECK_EQ(st->done_runs, st->issued); /* each started call called back exactly once */
	CHECK_EQ(st->failed, 0);
}

static uint64_t arg_u64(int argc, char **argv, int i, const char *env, uint64_t dflt)
{
	const char *s = argc > i ? argv[i] : getenv(env);

	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

int main(int argc, char **argv)
{
	static struct stress st;
	struct echo_server *srv = NULL;
	struct rpc_server_stats ss;
	uint64_t calls = arg_u64(argc, argv, 1, "SLUICE_STRESS_CALLS", STRESS_CALLS_DEFAULT);
	int rc;

	st.seed = arg_u64(argc, argv, 2, "SLUICE_STRESS_SEED", STRESS_SEED_DEFAULT);
	printf("rpc stress: %" PRIu64 " calls, %d in flight, seed %#" PRIx64
	       " (rerun: test_rpc_stress %" PRIu64 " %#" PRIx64 ")\n",
	       calls, STRESS_INFLIGHT, st.seed, calls, st.seed);
	if (calls == 0)
		test_skip("no calls requested");
	pthread_mutex_init(&st.mu, NULL);
	pthread_cond_init(&st.cv, NULL);
	st.pattern = malloc(BULK_MAX + PATTERN_SLACK);
	st.slots = calloc(STRESS_INFLIGHT, sizeof(*st.slots));
	ASSERT(st.pattern && st.slots);
	pattern_fill(st.pattern, BULK_MAX + PATTERN_SLACK, st.seed);

	rc = echo_server_start("tcp://127.0.0.1:0", STRESS_POOL_BYTES, &srv);
	CHECK_EQ(rc, 0);
	if (rc)
		return 1;
	st.uri = echo_server_uri(srv);
	run_phase(&st, 1, 0, calls / 2);
	run_phase(&st, 4, calls / 2, calls);
	echo_server_stats(srv, &ss);
	/* Nothing failed, so no call was retried: the server saw each exactly once. */
	CHECK_EQ(ss.requests, calls);
	CHECK_EQ(ss.errors_sent, 0);
	CHECK_EQ(ss.bad_frames, 0);
	echo_server_stop(srv);
	free(st.pattern);
	free(st.slots);
	pthread_mutex_destroy(&st.mu);
	pthread_cond_destroy(&st.cv);
	return test_result();
}
