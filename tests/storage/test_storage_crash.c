/*
 * test_storage_crash.c - sluice-storage SIGKILLed with many updates in flight: after each
 * restart, no chunk is torn and no acknowledged update is lost.
 *
 * A writer on the client's reactor thread keeps INFLIGHT updates in flight across NCHUNKS
 * chunks on two targets (48 of 64 KiB, 16 of 1 MiB), at most one per chunk, so the
 * expected outcome of each is well defined: whole-chunk writes, partial overwrites,
 * appends (some past the end, leaving a zero gap) and a few truncates, each with fresh
 * pattern bytes. One call in five is instead a whole-chunk read of any chunk, also one with
 * an update in flight (no new update starts on a chunk while it is read): it must return
 * the acked content or, if an update was in flight, that update's result - never a mix.
 * Every update is sent once (retries 0). When it is acknowledged its result
 * becomes the chunk's "acked" content, and the reply's length and CRC are checked against
 * it. The main thread SIGKILLs the daemon at a random moment (10-300 ms into a round), lets
 * the failed calls drain, restarts the daemon on the same directories and port, and checks
 * every chunk: a chunk with no unacknowledged update must equal its acked content; a chunk
 * whose update failed must equal either the acked content or the acked content with that
 * one update applied - never a mix of the two, never anything else. Its bytes (read whole)
 * must match the CRC and length that QUERY_CHUNKS reports, LIST_CHUNKS must list exactly
 * the existing chunks, and commit_ver must not go backwards. The chunk then adopts what was
 * found and the next round starts. KILLS rounds (default 24), then a clean SIGTERM restart
 * and a last check.
 *
 * Usage: test_storage_crash PATH_TO_sluice-storage [SEED [KILLS]]; SLUICE_TEST_SEED too.
 *
 * THREADS: the client reactor issues updates and runs their callbacks (chunk state and
 * counters are written there while a round runs); main kills, restarts and verifies, and
 * touches chunk state only once every call has drained (inflight == 0 under mu).
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "tests/storage/storclient.h"

#define NTARGETS      2
#define NCHUNKS	      64
#define NBIG	      16 /* chunks of 1 MiB; the rest are 64 KiB */
#define INFLIGHT      32
#define KILLS_DEFAULT 24
#define ROUND_MIN_MS  10
#define ROUND_MAX_MS  300
#define DRAIN_MS      60000u
#define INODE0	      5001
#define FAILS_MAX     30

enum op_kind { OP_WHOLE, OP_OVERWRITE, OP_APPEND, OP_TRUNCATE };
static const char *const op_names[] = {"whole write", "overwrite", "append", "truncate"};

struct cchunk {
	uint64_t inode;
	uint32_t index, cs;
	unsigned target;
	/* acknowledged state */
	bool exists;
	uint32_t len;
	uint8_t *acked; /* cs bytes, zero past len */
	uint64_t commit_ver;
	/* the one update in flight, or failed and not resolved yet */
	bool busy, uncertain;
	enum op_kind kind;
	uint32_t off, n; /* write range, or truncate length in n */
	uint32_t next_len;
	bool next_exists; /* false only for a truncate to 0 of a missing chunk */
	uint8_t *next;	  /* acked with the update applied */
	/* a read in flight: what it may return (the acked state when it was issued, and the
	 * result of the update then in flight, if any; no update starts while it reads) */
	bool reading, r_has_b;
	bool r_exists_a, r_exists_b;
	uint32_t r_len_a, r_len_b;
	const uint8_t *r_a, *r_b;
};

struct read_ctx {
	struct cchunk *c;
	uint8_t *buf;
};

static struct tstor_daemon dmn;
static struct tstor_client cl;
static struct cchunk chunks[NCHUNKS];
static struct tstor_rng rng;  /* main thread: round timing */
static struct tstor_rng wrng; /* reactor thread: the writer's choices */
static uint64_t seed;
static uint8_t *readbuf;

/* Shared between the reactor (callbacks) and main. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards the fields below */
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned inflight;
static bool stopping;
static uint64_t acks, fails, reply_mismatches, start_failures;
static uint64_t reads_ok, reads_saw_update, reads_failed, read_mismatches;

static uint64_t resolved_old, resolved_new, rounds;

#define FAIL(...)                                                                           \
	do {                                                                                \
		fprintf(stderr, "%s:%d: round %" PRIu64 " (seed %#" PRIx64 "): ", __FILE__, \
			__LINE__, rounds, seed);                                            \
		fprintf(stderr, __VA_ARGS__);                                               \
		fprintf(stderr, "\n");                                                      \
		test_failures++;                                                            \
	} while (0)

static uint32_t rand_len(struct tstor_rng *r, uint32_t max)
{
	unsigned bits = 32 - (unsigned)__builtin_clz(max);
	uint32_t v = (uint32_t)tstor_rng_below(r, 1ull << (1 + tstor_rng_below(r, bits)));

	v = v ? v : 1;
	return v > max ? max : v;
}

/* ---- the writer (client reactor thread) ------------------------------------------------ */

static void issue_more(void);

static void update_cb(int status, const struct tstor_chunk *got, void *arg)
{
	struct cchunk *c = arg;
	uint8_t *t;

	pthread_mutex_lock(&mu);
	c->busy = false;
	if (status == 0) {
		if (!c->next_exists && got->chunk_size != 0) {
			fprintf(stderr,
				"FAIL: truncate to 0 of missing chunk %" PRIu64 "/%u returned a "
				"chunk of length %u\n",
				c->inode, c->index, got->length);
			reply_mismatches++;
		} else if (c->next_exists && (got->length != c->next_len ||
					      got->crc != crc32c(0, c->next, c->next_len))) {
			fprintf(stderr,
				"FAIL: %s of chunk %" PRIu64 "/%u [%u, +%u) acked with length %u "
				"crc %#x, expected length %u crc %#x\n",
				op_names[c->kind], c->inode, c->index, c->off, c->n, got->length,
				got->crc, c->next_len, crc32c(0, c->next, c->next_len));
			reply_mismatches++;
		}
		t = c->acked; /* the update is now the acknowledged state */
		c->acked = c->next;
		c->next = t;
		c->len = c->next_len;
		c->exists = c->next_exists;
		c->commit_ver = c->exists ? got->commit_ver : 0;
		acks++;
	} else {
		c->uncertain = true;
		fails++;
	}
	inflight--;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	issue_more();
}

/* Choose an update for c and compute its expected result in c->next. */
static void plan(struct cchunk *c)
{
	uint32_t cs = c->cs, len = c->exists ? c->len : 0;
	unsigned p = (unsigned)tstor_rng_below(&wrng, 100);

	if (p < 10) {
		c->kind = OP_TRUNCATE;
		c->n = tstor_rng_below(&wrng, 3)
			       ? (uint32_t)tstor_rng_below(&wrng, len + 1)
			       : len + (uint32_t)tstor_rng_below(&wrng, cs - len + 1);
	} else if (p < 35 || (p < 65 && len == 0) || (p >= 65 && len == cs)) {
		c->kind = OP_WHOLE;
		c->off = 0;
		c->n = cs;
	} else if (p < 65) {
		c->kind = OP_OVERWRITE;
		c->off = (uint32_t)tstor_rng_below(&wrng, len);
		c->n = rand_len(&wrng, len - c->off);
	} else {
		c->kind = OP_APPEND;
		c->off = len;
		if (tstor_rng_below(&wrng, 4) == 0 && len + 1 < cs) /* leave a gap of zeros */
			c->off = len + 1 + (uint32_t)tstor_rng_below(&wrng, cs - len - 1);
		c->n = rand_len(&wrng, cs - c->off);
	}
	memcpy(c->next, c->acked, cs);
	c->next_exists = c->exists || c->kind != OP_TRUNCATE || c->n > 0;
	if (c->kind == OP_TRUNCATE) {
		if (c->n < len)
			memset(c->next + c->n, 0, len - c->n);
		c->next_len = c->n;
	} else {
		pattern_fill(c->next + c->off, c->n, tstor_rng_next(&wrng));
		c->next_len = c->off + c->n > len ? c->off + c->n : len;
	}
}

static bool issue_one(struct cchunk *c)
{
	int rc;

	plan(c);
	if (c->kind == OP_TRUNCATE)
		rc = tstor_truncate_async(&cl, c->target, c->inode, c->index, c->cs, c->n, 0,
					  update_cb, c);
	else
		rc = tstor_write_async(&cl, c->target, c->inode, c->index, c->cs, c->off,
				       c->next + c->off, c->n, 0, update_cb, c);
	if (rc != 0) {
		fprintf(stderr, "FAIL: starting an update: %s (%d)\n", sluice_errname(rc), rc);
		return false;
	}
	return true;
}

/* A read's result must be one of the states the chunk could have had meanwhile. */
static void read_cb(int status, const struct tstor_read_result *res, unsigned n, void *arg)
{
	struct read_ctx *x = arg;
	struct cchunk *c = x->c;
	bool got_exists = false;
	uint32_t got_len = 0;

	pthread_mutex_lock(&mu);
	if (status == 0 && n == 1 && (res[0].status == 0 || res[0].status == -ENOENT)) {
		got_exists = res[0].status == 0;
		got_len = got_exists ? res[0].length : 0;
		if (got_exists == c->r_exists_a &&
		    (!got_exists ||
		     (got_len == c->r_len_a && memcmp(x->buf, c->r_a, got_len) == 0))) {
			reads_ok++;
		} else if (c->r_has_b && got_exists == c->r_exists_b &&
			   (!got_exists ||
			    (got_len == c->r_len_b && memcmp(x->buf, c->r_b, got_len) == 0))) {
			reads_ok++;
			reads_saw_update++;
		} else {
			fprintf(stderr,
				"FAIL: concurrent read of chunk %" PRIu64 "/%u: %s length %u; "
				"acked %s length %u%s (diff at %ld)",
				c->inode, c->index, got_exists ? "exists," : "missing,", got_len,
				c->r_exists_a ? "exists," : "missing,", c->r_len_a,
				c->r_has_b ? ", or the update in flight" : "",
				got_exists && c->r_exists_a
					? tstor_memdiff(x->buf, c->r_a,
							got_len < c->r_len_a ? got_len : c->r_len_a)
					: -1);
			if (c->r_has_b)
				fprintf(stderr, " -> %s length %u (diff at %ld)",
					c->r_exists_b ? "exists," : "missing,", c->r_len_b,
					got_exists && c->r_exists_b
						? tstor_memdiff(x->buf, c->r_b,
								got_len < c->r_len_b ? got_len
										     : c->r_len_b)
						: -1);
			fprintf(stderr, "\n");
			read_mismatches++;
		}
	} else {
		/* the daemon was killed under it (any other error is counted as a mismatch) */
		int e = status ? status : n == 1 ? res[0].status : -SLUICE_EPROTO;

		if (e == -ECONNREFUSED || e == -ECONNRESET || e == -EPIPE ||
		    e == -SLUICE_ECONNLOST || e == -SLUICE_EDEADLINE) {
			reads_failed++;
		} else {
			fprintf(stderr, "FAIL: concurrent read of chunk %" PRIu64 "/%u: %s (%d)\n",
				c->inode, c->index, sluice_errname(e), e);
			read_mismatches++;
		}
	}
	c->reading = false;
	inflight--;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	free(x->buf);
	free(x);
	issue_more();
}

static bool issue_read(struct cchunk *c)
{
	struct read_ctx *x = malloc(sizeof(*x));
	struct tstor_range r = {c->inode, c->index, 0, c->cs};
	int rc;

	if (!x)
		return false;
	x->c = c;
	x->buf = malloc(c->cs);
	if (!x->buf) {
		free(x);
		return false;
	}
	rc = tstor_batch_read_async(&cl, c->target, &r, 1, x->buf, c->cs, read_cb, x);
	if (rc != 0) {
		fprintf(stderr, "FAIL: starting a read: %s (%d)\n", sluice_errname(rc), rc);
		free(x->buf);
		free(x);
		return false;
	}
	return true;
}

/* Fill the in-flight window with updates to idle chunks, and some reads of any chunk (also
 * one being updated). Reactor thread. */
static void issue_more(void)
{
	for (unsigned tries = 0; tries < 4 * NCHUNKS; tries++) {
		struct cchunk *c = &chunks[tstor_rng_below(&wrng, NCHUNKS)];
		bool full, go, rd = tstor_rng_below(&wrng, 5) == 0;

		pthread_mutex_lock(&mu);
		full = stopping || inflight >= INFLIGHT;
		go = !full && !c->uncertain && !c->reading && (rd || !c->busy);
		if (go && rd) {
			c->reading = true;
			c->r_exists_a = c->exists;
			c->r_len_a = c->len;
			c->r_a = c->acked;
			c->r_has_b = c->busy;
			c->r_exists_b = c->next_exists;
			c->r_len_b = c->next_len;
			c->r_b = c->next;
			inflight++;
		} else if (go) {
			c->busy = true;
			inflight++;
		}
		pthread_mutex_unlock(&mu);
		if (full)
			return;
		if (go && !(rd ? issue_read(c) : issue_one(c))) {
			pthread_mutex_lock(&mu);
			if (rd)
				c->reading = false;
			else
				c->busy = false;
			inflight--;
			stopping = true; /* give up: the round ends */
			start_failures++;
			pthread_cond_broadcast(&cv);
			pthread_mutex_unlock(&mu);
			return;
		}
	}
}

static void start_fn(void *arg)
{
	(void)arg;
	issue_more();
}

/* ---- rounds (main thread) ---------------------------------------------------------------- */

static bool drain(void)
{
	struct timespec ts;
	bool ok = true;

	pthread_mutex_lock(&mu);
	stopping = true;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += DRAIN_MS / 1000;
	while (inflight > 0 && ok)
		ok = pthread_cond_timedwait(&cv, &mu, &ts) == 0 || inflight == 0;
	pthread_mutex_unlock(&mu);
	if (!ok)
		FAIL("%u updates still in flight %u ms after the kill", inflight, DRAIN_MS);
	return ok;
}

/* Compare what the daemon has for c (exists/len/bytes) with one expected state. */
static bool same(const struct cchunk *c, bool exists, uint32_t len, const uint8_t *bytes,
		 bool got_exists, uint32_t got_len)
{
	if (exists != got_exists)
		return false;
	return !exists || (len == got_len && memcmp(readbuf, bytes, len) == 0);
}

static void describe(const struct cchunk *c, bool got_exists, uint32_t got_len)
{
	long d_old = c->exists && got_exists
			     ? tstor_memdiff(readbuf, c->acked, got_len < c->len ? got_len : c->len)
			     : -1;
	long d_new = got_exists ? tstor_memdiff(readbuf, c->next,
						got_len < c->next_len ? got_len : c->next_len)
				: -1;

	FAIL("chunk %" PRIu64 "/%u (t%u, cs %u) after the crash: %s length %u; acked: %s length "
	     "%u (first diff %ld); %s: %s [%u, +%u) -> length %u (first diff %ld)",
	     c->inode, c->index, c->target, c->cs, got_exists ? "exists," : "missing,", got_len,
	     c->exists ? "exists," : "missing,", c->len, d_old,
	     c->uncertain ? "unacked update" : "no update pending", op_names[c->kind], c->off, c->n,
	     c->next_len, d_new);
}

static void verify_chunk(struct cchunk *c)
{
	struct tstor_chunk meta;
	uint32_t got_len = 0;
	bool got_exists;
	int rc = tstor_read_chunk(&cl, c->target, c->inode, c->index, c->cs, readbuf, &got_len);
	int qrc;

	if (rc != 0 && rc != -ENOENT) {
		FAIL("read of chunk %" PRIu64 "/%u: %s (%d) %s", c->inode, c->index,
		     sluice_errname(rc), rc, cl.detail);
		return;
	}
	got_exists = rc == 0;
	qrc = tstor_stat_chunk(&cl, c->target, c->inode, c->index, &meta);
	if (qrc != (got_exists ? 0 : -ENOENT))
		FAIL("chunk %" PRIu64 "/%u: read %s but QUERY_CHUNKS %s", c->inode, c->index,
		     sluice_errname(rc), sluice_errname(qrc));
	else if (got_exists && (meta.length != got_len || meta.crc != crc32c(0, readbuf, got_len)))
		FAIL("chunk %" PRIu64 "/%u: QUERY_CHUNKS length %u crc %#x, bytes read: length %u "
		     "crc %#x",
		     c->inode, c->index, meta.length, meta.crc, got_len,
		     crc32c(0, readbuf, got_len));
	else if (got_exists && meta.commit_ver < c->commit_ver)
		FAIL("chunk %" PRIu64 "/%u: commit_ver %" PRIu64 " went back from %" PRIu64,
		     c->inode, c->index, meta.commit_ver, c->commit_ver);
	if (same(c, c->exists, c->len, c->acked, got_exists, got_len)) {
		resolved_old += c->uncertain;
	} else if (c->uncertain &&
		   same(c, c->next_exists, c->next_len, c->next, got_exists, got_len)) {
		uint8_t *t = c->acked; /* the unacknowledged update did land: adopt it */

		c->acked = c->next;
		c->next = t;
		c->len = c->next_len;
		c->exists = c->next_exists;
		resolved_new++;
	} else {
		describe(c, got_exists, got_len);
		/* adopt what is there so later rounds test from a known state */
		c->exists = got_exists;
		c->len = got_len;
		memset(c->acked, 0, c->cs);
		memcpy(c->acked, readbuf, got_len);
	}
	if (got_exists && qrc == 0)
		c->commit_ver = meta.commit_ver;
	c->uncertain = false;
}

static void verify_all(void)
{
	for (unsigned k = 0; k < NCHUNKS; k++)
		verify_chunk(&chunks[k]);
	for (unsigned t = 1; t <= NTARGETS; t++) {
		struct tstor_chunk *all = NULL;
		unsigned n = 0, want = 0;
		int rc = tstor_list_all(&cl, t, 0, &all, &n);

		if (rc != 0) {
			FAIL("LIST_CHUNKS t%u: %s (%d)", t, sluice_errname(rc), rc);
			continue;
		}
		for (unsigned k = 0; k < NCHUNKS; k++)
			want += chunks[k].target == t && chunks[k].exists;
		if (n != want)
			FAIL("LIST_CHUNKS t%u: %u chunks, %u exist", t, n, want);
		for (unsigned i = 0; i < n; i++) {
			uint64_t k = all[i].inode - INODE0;

			if (all[i].inode < INODE0 || k >= NCHUNKS || all[i].index != 0 ||
			    !chunks[k].exists || chunks[k].target != t ||
			    all[i].length != chunks[k].len ||
			    all[i].crc != crc32c(0, chunks[k].acked, chunks[k].len))
				FAIL("LIST_CHUNKS t%u: chunk %" PRIu64
				     "/%u length %u crc %#x is not "
				     "what the reads found",
				     t, all[i].inode, all[i].index, all[i].length, all[i].crc);
		}
		free(all);
	}
}

static void round_once(void)
{
	uint64_t ms = ROUND_MIN_MS + tstor_rng_below(&rng, ROUND_MAX_MS - ROUND_MIN_MS + 1);
	uint64_t a0, f0;
	int rc;

	pthread_mutex_lock(&mu);
	stopping = false;
	a0 = acks;
	f0 = fails;
	pthread_mutex_unlock(&mu);
	tstor_on_reactor(&cl, start_fn, NULL);
	env_sleep_ms((uint32_t)ms);
	rc = tstor_daemon_stop(&dmn, SIGKILL);
	if (rc != 0)
		FAIL("killing the daemon: %s (%d) - did it die on its own?", sluice_errname(rc),
		     rc);
	if (!drain())
		return;
	rc = tstor_daemon_start(&dmn);
	if (rc != 0) {
		FAIL("restart after SIGKILL: %s (%d)", sluice_errname(rc), rc);
		return;
	}
	verify_all();
	printf("round %" PRIu64 ": killed after %" PRIu64 " ms, %" PRIu64 " acked, %" PRIu64
	       " unacked\n",
	       rounds, ms, acks - a0, fails - f0);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *bin = tstor_daemon_path(argc, argv);
	unsigned long kills = argc > 3 ? strtoul(argv[3], NULL, 0) : KILLS_DEFAULT;
	int rc;

	seed = tstor_seed(argc, argv, 2);
	rng.s = seed;
	wrng.s = seed ^ 0xC0FFEEull;
	printf("test_storage_crash: seed %#" PRIx64 ", %lu kills\n", seed, kills);
	for (unsigned k = 0; k < NCHUNKS; k++) {
		struct cchunk *c = &chunks[k];

		c->inode = INODE0 + k;
		c->index = 0;
		c->cs = k < NBIG ? SLUICE_MiB : 64u * SLUICE_KiB;
		c->target = 1 + k % NTARGETS;
		c->acked = calloc(1, c->cs);
		c->next = calloc(1, c->cs);
		ASSERT(c->acked && c->next);
	}
	readbuf = malloc(SLUICE_MiB);
	ASSERT(readbuf);
	rc = tstor_daemon_init(&dmn, bin, "crash", NTARGETS);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_daemon_start(&dmn);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_client_start(&cl, &dmn);
	if (rc == 0) {
		for (rounds = 1; rounds <= kills && test_failures < FAILS_MAX; rounds++)
			round_once();
		rc = tstor_daemon_restart(&dmn, SIGTERM);
		if (rc != 0)
			FAIL("restart after SIGTERM: %s (%d)", sluice_errname(rc), rc);
		else
			verify_all();
		CHECK_EQ(reply_mismatches, 0);
		CHECK_EQ(start_failures, 0);
		CHECK_EQ(read_mismatches, 0);
		printf("%" PRIu64 " concurrent reads ok (%" PRIu64 " saw the update in flight), "
		       "%" PRIu64 " cut by kills\n",
		       reads_ok, reads_saw_update, reads_failed);
		printf("%" PRIu64 " updates acked, %" PRIu64 " unacked: %" PRIu64
		       " found not applied, %" PRIu64 " found applied\n",
		       acks, fails, resolved_old, resolved_new);
		if (acks == 0)
			FAIL("no update was ever acknowledged");
	}
	tstor_client_stop(&cl);
	tstor_daemon_finish(&dmn, test_failures == 0);
	for (unsigned k = 0; k < NCHUNKS; k++) {
		free(chunks[k].acked);
		free(chunks[k].next);
	}
	free(readbuf);
	if (test_failures)
		fprintf(stderr, "FAILED (%d checks), seed %#" PRIx64 "\n", test_failures, seed);
	return test_result();
}
