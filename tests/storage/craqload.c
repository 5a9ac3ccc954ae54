/*
 * craqload.c - replicated-update load with a model of every acknowledged update, and the
 * check of every replica against it (see craqload.h).
 *
 * DESIGN
 * Writers are threads making synchronous calls (rpc_call_sync) on one shared rpc client;
 * its reactor thread multiplexes them, so cfg.writers updates are in flight at once. A
 * thread per writer keeps each writer's logic a straight loop - pick a chunk, build an
 * update, send it until it is acked, apply it to the model - which is what a test of the
 * retry rules has to be easy to read for.
 *
 * The model is one chunk_size buffer per chunk plus its length, version and existence. A
 * chunk's entry is written only by its writer while the writers run, and read by the
 * control thread only after they are joined, so it needs no lock.
 *
 * Routing: one snapshot of our chains (members head .. tail then the rest, states,
 * addresses) under rt_mu. A writer copies its chain's entry, sends to the first serving
 * member, and after a failure asks for a refresh naming the chain version it used: if the
 * snapshot already moved on, it just retries; otherwise one GET_ROUTING runs (under the
 * lock, so the other writers wait for its result instead of asking too), at most every
 * RT_MIN_INTERVAL_MS. mgmtd only changes the chain once a lease runs out, so for a second
 * or so after a member dies the retries hit the same head; the backoff keeps that cheap.
 *
 * Threads: see craqload.h. Counters are atomics; the first error is kept under err_mu.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "proto/mgmt_ops.h"
#include "tests/storage/craqload.h"
#include "tests/storage/storclient.h"

#define DEF_WRITERS	    32
#define DEF_CHUNKS	    64
#define DEF_CHUNK_SIZE	    (64u * 1024u)
#define DEF_INODE	    4242
#define DEF_RETRY_MS	    60000u
#define DEF_CALL_TIMEOUT_MS 15000u
#define RT_TIMEOUT_MS	    5000u
#define RT_MIN_INTERVAL_MS  20
#define BACKOFF_MIN_MS	    5
#define BACKOFF_MAX_MS	    200
#define VERIFY_NOTCOMMIT_MS 10000u
#define VERIFY_PRINT_MAX    40 /* differences printed in full; the rest only counted */
#define POOL_BYTES	    (64ull * SLUICE_MiB)
#define DETAIL_MAX	    160
#define HIST_MAX	    32 /* attempts of the current update kept for error messages */

struct member {
	uint64_t target;
	Sluice__TargetState state;
	char addr[SLUICE_NET_ADDR_MAX];
};

struct chain {
	uint32_t id;
	uint64_t version;
	unsigned n;
	struct member m[SLUICE_CHAIN_LEN_MAX]; /* mgmtd's order: head .. tail, then the rest */
};

struct chunk {
	uint32_t length;
	uint64_t ver; /* version of the last acked update; 0 = never written */
};

struct update {
	unsigned k; /* chunk number */
	bool truncate;
	uint32_t offset, length; /* write range, or the new length of a truncate */
	uint64_t seq;
};

/* Result of an update as a member reported it. */
struct result {
	bool has;
	uint64_t ver;
	uint32_t length, crc;
};

struct writer {
	struct craqload *l;
	unsigned idx;
	pthread_t th;
	bool started;
	struct tstor_rng rng;
	uint64_t seq;
	uint8_t *data; /* the current write's bytes */
	uint8_t *rbuf; /* read-back buffer */
	unsigned *own; /* chunk numbers this writer owns */
	unsigned nown;
	char detail[DETAIL_MAX]; /* the last error's reason from the server */
	/* The current update's attempts (the last HIST_MAX), printed when it goes wrong. */
	struct attempt_rec {
		uint64_t wall_ns, target, chain_ver;
		int rc;
		char detail[DETAIL_MAX];
	} hist[HIST_MAX];
	unsigned nattempts;
};

/* Errors counted by name in the statistics; the last slot is "other". */
static const int counted_errors[] = {
	-SLUICE_ECHAINVER,
	-SLUICE_ENOTHEAD,
	-SLUICE_EROUTING,
	-SLUICE_ECONNLOST,
	-SLUICE_EDEADLINE,
	-SLUICE_ENOTCOMMIT,
	-EAGAIN,
	-SLUICE_ETARGET_OFFLINE,
	-SLUICE_ESTALE_LEASE,
	-SLUICE_ESHUTDOWN,
	-SLUICE_ECHUNKVER,
	-ECONNREFUSED,
	-ECONNRESET,
	-EPIPE,
	-ETIMEDOUT,
	-ENOTCONN,
};
#define NCOUNTED (sizeof(counted_errors) / sizeof(counted_errors[0]))

struct craqload {
	struct craqload_cfg cfg;
	FILE *log;
	struct test_client tc;
	uint64_t client_id;
	unsigned nchains;
	uint32_t chain_ids[CRAQLOAD_CHAINS_MAX];

	pthread_mutex_t rt_mu; /* guards rt, rt_version, rt_fetched_ms */
	struct chain rt[CRAQLOAD_CHAINS_MAX];
	uint64_t rt_version, rt_fetched_ms;

	unsigned nchunks;
	uint8_t *model; /* chunk k at k * chunk_size */
	struct chunk *chunks;

	struct writer *w;
	unsigned nwriters;
	bool running;
	atomic_bool stop;

	pthread_mutex_t err_mu; /* guards first_error */
	int first_error;

	_Atomic uint64_t acked, bytes, truncates, attempts_failed, refreshes, reads_checked,
		reads_skipped, max_ack_ms, errors;
	_Atomic uint64_t errcount[NCOUNTED + 1];
	_Atomic uint64_t chain_acked[CRAQLOAD_CHAINS_MAX];
};

/* ---- errors --------------------------------------------------------------------------------- */

/* Record a failure of the run; the first one is what craqload_stop returns. */
static void run_error(struct craqload *l, int rc, bool stop, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void run_error(struct craqload *l, int rc, bool stop, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(l->log, "craqload: ERROR: %s\n", msg);
	atomic_fetch_add(&l->errors, 1);
	pthread_mutex_lock(&l->err_mu);
	if (l->first_error == 0)
		l->first_error = rc ? rc : -EIO;
	pthread_mutex_unlock(&l->err_mu);
	if (stop)
		atomic_store(&l->stop, true);
}

static void count_error(struct craqload *l, int rc)
{
	unsigned i = 0;

	while (i < NCOUNTED && counted_errors[i] != rc)
		i++;
	atomic_fetch_add(&l->errcount[i], 1);
}

/* The errors a chain member or the network gives while the chain changes: retry them. */
static bool retryable(int rc)
{
	for (unsigned i = 0; i < NCOUNTED; i++)
		if (counted_errors[i] == rc)
			return true;
	return rc == -ECONNABORTED || rc == -EHOSTUNREACH || rc == -ENETUNREACH;
}

/* ---- routing -------------------------------------------------------------------------------- */

static const Sluice__TargetInfo *rt_target(const Sluice__RoutingTable *rt, uint64_t id)
{
	for (size_t i = 0; i < rt->n_targets; i++)
		if (rt->targets[i]->id == id)
			return rt->targets[i];
	return NULL;
}

static const Sluice__ChainInfo *rt_chain(const Sluice__RoutingTable *rt, uint32_t id)
{
	for (size_t i = 0; i < rt->n_chains; i++)
		if (rt->chains[i]->id == id)
			return rt->chains[i];
	return NULL;
}

static void member_from(const Sluice__RoutingTable *rt, uint64_t tid, struct member *out)
{
	const Sluice__TargetInfo *t = rt_target(rt, tid);

	memset(out, 0, sizeof(*out));
	out->target = tid;
	out->state = t ? t->state : SLUICE__TARGET_STATE__TS_OFFLINE;
	for (size_t i = 0; t != NULL && i < rt->n_nodes; i++)
		if (rt->nodes[i]->id == t->node_id && rt->nodes[i]->n_addrs > 0)
			snprintf(out->addr, sizeof(out->addr), "%s", rt->nodes[i]->addrs[0]);
}

/* Our chain list from cfg: the given ids, the table's chains, or every chain by id. */
static int pick_chains(struct craqload *l, const Sluice__RoutingTable *rt)
{
	const struct craqload_cfg *c = &l->cfg;
	size_t n = 0;

	if (c->table_id != 0) {
		const Sluice__ChainTableInfo *t = NULL;

		for (size_t i = 0; i < rt->n_tables; i++)
			if (rt->tables[i]->id == c->table_id)
				t = rt->tables[i];
		if (t == NULL)
			return -ENOENT;
		for (n = 0; n < t->n_chains && n < CRAQLOAD_CHAINS_MAX; n++)
			l->chain_ids[n] = t->chains[n];
	} else if (c->nchains != 0) {
		for (n = 0; n < c->nchains && n < CRAQLOAD_CHAINS_MAX; n++)
			l->chain_ids[n] = c->chain_ids[n];
	} else {
		for (n = 0; n < rt->n_chains && n < CRAQLOAD_CHAINS_MAX; n++)
			l->chain_ids[n] = rt->chains[n]->id;
	}
	l->nchains = (unsigned)n;
	return n > 0 ? 0 : -ENOENT;
}

/* GET_ROUTING and rebuild the snapshot of our chains. Caller holds rt_mu (or no writer
 * runs yet). */
static int rt_fetch_locked(struct craqload *l)
{
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = RT_TIMEOUT_MS, .retries = -1};
	struct rpc_result res = {0};
	const Sluice__RoutingTable *rt;
	int rc = mgmtc_get_routing(l->tc.rpc, l->cfg.mgmtd, &req, &o, &res);

	l->rt_fetched_ms = tstor_now_ms();
	atomic_fetch_add(&l->refreshes, 1);
	if (rc != 0)
		goto out;
	rt = ((const Sluice__GetRoutingResp *)(const void *)res.resp)->routing;
	rc = -SLUICE_EPROTO;
	if (rt == NULL)
		goto out;
	if (l->nchains == 0 && (rc = pick_chains(l, rt)) != 0)
		goto out;
	for (unsigned ci = 0; ci < l->nchains; ci++) {
		const Sluice__ChainInfo *ch = rt_chain(rt, l->chain_ids[ci]);
		struct chain *c = &l->rt[ci];

		rc = -ENOENT;
		if (ch == NULL || ch->n_targets == 0 || ch->n_targets > SLUICE_CHAIN_LEN_MAX)
			goto out;
		c->id = ch->id;
		c->version = ch->version;
		c->n = (unsigned)ch->n_targets;
		for (unsigned i = 0; i < c->n; i++)
			member_from(rt, ch->targets[i], &c->m[i]);
	}
	l->rt_version = rt->version;
	rc = 0;
out:
	rpc_result_release(&res);
	return rc;
}

static void rt_copy(struct craqload *l, unsigned ci, struct chain *out)
{
	pthread_mutex_lock(&l->rt_mu);
	*out = l->rt[ci];
	pthread_mutex_unlock(&l->rt_mu);
}

/* A writer's update failed under chain version `used`: fetch a new table unless one
 * newer than that is here already or one was fetched moments ago. */
static void rt_refresh(struct craqload *l, unsigned ci, uint64_t used)
{
	int rc = 0;

	pthread_mutex_lock(&l->rt_mu);
	if (l->rt[ci].version == used && tstor_now_ms() - l->rt_fetched_ms >= RT_MIN_INTERVAL_MS)
		rc = rt_fetch_locked(l);
	pthread_mutex_unlock(&l->rt_mu);
	if (rc != 0)
		count_error(l, rc); /* mgmtd unreachable: the next retry asks again */
}

static const struct member *head_of(const struct chain *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->m[i].state == SLUICE__TARGET_STATE__TS_SERVING)
			return &c->m[i];
	return NULL;
}

/* ---- updates -------------------------------------------------------------------------------- */

static uint8_t *model_of(struct craqload *l, unsigned k)
{
	return l->model + (size_t)k * l->cfg.chunk_size;
}

static void fill_random(struct tstor_rng *rng, uint8_t *p, uint32_t len)
{
	uint32_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t v = tstor_rng_next(rng);

		memcpy(p + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = tstor_rng_next(rng);

		memcpy(p + i, &v, len - i);
	}
}

/* The next update of writer w: a chunk it owns, a truncate to another length now and
 * then, else a write - whole chunk, sector-aligned or unaligned, past the end sometimes. */
static void next_update(struct writer *w, struct update *u)
{
	struct craqload *l = w->l;
	uint32_t cs = l->cfg.chunk_size;
	const struct chunk *c;
	uint64_t shape;

	memset(u, 0, sizeof(*u));
	u->k = w->own[tstor_rng_below(&w->rng, w->nown)];
	u->seq = ++w->seq;
	c = &l->chunks[u->k];
	if (c->ver > 0 && tstor_rng_below(&w->rng, 100) < l->cfg.truncate_pct) {
		u->truncate = true;
		do
			u->length = (uint32_t)tstor_rng_below(&w->rng, cs + 1);
		while (u->length ==
		       c->length); /* a truncate that changes nothing bumps no version */
		return;
	}
	shape = tstor_rng_below(&w->rng, 10);
	if (shape < 2) { /* the whole chunk */
		u->offset = 0;
		u->length = cs;
	} else if (shape < 5) { /* sector-aligned */
		u->offset = (uint32_t)tstor_rng_below(&w->rng, cs / 4096) * 4096;
		u->length =
			4096 * (1 + (uint32_t)tstor_rng_below(&w->rng, (cs - u->offset) / 4096));
	} else { /* anywhere, any length: unaligned, appends, holes past the end */
		u->offset = (uint32_t)tstor_rng_below(&w->rng, cs);
		u->length = 1 + (uint32_t)tstor_rng_below(&w->rng, cs - u->offset);
	}
	fill_random(&w->rng, w->data, u->length);
}

static void model_apply(struct craqload *l, const struct update *u, const uint8_t *data)
{
	struct chunk *c = &l->chunks[u->k];
	uint8_t *m = model_of(l, u->k);

	if (u->truncate) {
		if (u->length > c->length)
			memset(m + c->length, 0, u->length - c->length);
		c->length = u->length;
	} else {
		if (u->offset > c->length)
			memset(m + c->length, 0, u->offset - c->length);
		memcpy(m + u->offset, data, u->length);
		if (u->offset + u->length > c->length)
			c->length = u->offset + u->length;
	}
	c->ver++;
}

static Sluice__UpdateTag tag_of(const struct writer *w, uint64_t seq)
{
	Sluice__UpdateTag t = SLUICE__UPDATE_TAG__INIT;

	t.client_id = w->l->client_id;
	t.channel = w->idx;
	t.seq = seq;
	return t;
}

static void result_from(const struct rpc_result *res, struct result *out)
{
	const Sluice__ChunkUpdateResp *r = (const Sluice__ChunkUpdateResp *)(const void *)res->resp;

	memset(out, 0, sizeof(*out));
	if (r != NULL && r->chunk != NULL) {
		out->has = true;
		out->ver = r->chunk->commit_ver;
		out->length = r->chunk->length;
		out->crc = r->chunk->crc;
	}
}

/* One attempt of update u at member h of chain c. */
static int attempt(struct writer *w, const struct update *u, const struct chain *c,
		   const struct member *h, struct result *out)
{
	struct craqload *l = w->l;
	Sluice__UpdateTag tag = tag_of(w, u->seq);
	struct rpc_call_opts o = {.timeout_ms = l->cfg.call_timeout_ms, .retries = 0};
	struct rpc_result res = {0};
	int rc;

	if (u->truncate) {
		Sluice__ChunkTruncateReq t = SLUICE__CHUNK_TRUNCATE_REQ__INIT;

		t.target_id = h->target;
		t.inode = l->cfg.inode;
		t.index = u->k;
		t.chunk_size = l->cfg.chunk_size;
		t.length = u->length;
		t.chain_id = c->id;
		t.chain_ver = c->version;
		t.tag = &tag;
		rc = storagec_truncate(l->tc.rpc, h->addr, &t, &o, &res);
	} else {
		Sluice__ChunkWriteReq m = SLUICE__CHUNK_WRITE_REQ__INIT;
		struct iovec iov = {w->data, u->length};

		m.target_id = h->target;
		m.inode = l->cfg.inode;
		m.index = u->k;
		m.chunk_size = l->cfg.chunk_size;
		m.offset = u->offset;
		m.length = u->length;
		m.data_crc = crc32c(0, w->data, u->length);
		m.chain_id = c->id;
		m.chain_ver = c->version;
		m.tag = &tag;
		o.bulk = &iov;
		o.nbulk = 1;
		rc = storagec_write(l->tc.rpc, h->addr, &m, &o, &res);
	}
	snprintf(w->detail, sizeof(w->detail), "%s",
		 rc && res.error_detail ? res.error_detail : "");
	w->hist[w->nattempts % HIST_MAX] = (struct attempt_rec){
		.wall_ns = env_wall_ns(), .target = h->target, .chain_ver = c->version, .rc = rc};
	snprintf(w->hist[w->nattempts % HIST_MAX].detail, DETAIL_MAX, "%s", w->detail);
	w->nattempts++;
	if (rc == 0)
		result_from(&res, out);
	rpc_result_release(&res);
	return rc;
}

/* The current update's last attempts, UTC wall clock like the daemons' logs. */
static void print_attempts(struct writer *w)
{
	unsigned first = w->nattempts > HIST_MAX ? w->nattempts - HIST_MAX : 0;

	for (unsigned i = first; i < w->nattempts; i++) {
		const struct attempt_rec *a = &w->hist[i % HIST_MAX];
		time_t sec = (time_t)(a->wall_ns / 1000000000u);
		struct tm tm;

		gmtime_r(&sec, &tm);
		fprintf(w->l->log,
			"craqload:   attempt %u at %02d:%02d:%02d.%06u to target %" PRIu64
			" chain v%" PRIu64 ": %s%s%s\n",
			i + 1, tm.tm_hour, tm.tm_min, tm.tm_sec,
			(unsigned)(a->wall_ns % 1000000000u / 1000u), a->target, a->chain_ver,
			a->rc ? sluice_errname(a->rc) : "acked", a->detail[0] ? ": " : "",
			a->detail);
	}
}

static const char *upd_name(const struct update *u)
{
	return u->truncate ? "truncate" : "write";
}

/* Send u until a member acks it (0), it is refused for good, or retry_ms pass. */
static int send_until_acked(struct writer *w, const struct update *u, struct result *out)
{
	struct craqload *l = w->l;
	unsigned ci = u->k % l->nchains;
	uint64_t t0 = tstor_now_ms(), took;
	int rc;

	w->nattempts = 0;
	for (unsigned n = 0;; n++) {
		struct chain c;
		const struct member *h;
		uint32_t backoff;

		rt_copy(l, ci, &c);
		h = head_of(&c);
		rc = h ? attempt(w, u, &c, h, out) : -SLUICE_EROUTING;
		if (rc == 0)
			break;
		if (!retryable(rc)) {
			run_error(l, rc, true,
				  "chunk %u %s seq %" PRIu64 " to target %" PRIu64
				  " (chain %u v%" PRIu64 "): %s (%s)",
				  u->k, upd_name(u), u->seq, h ? h->target : 0, c.id, c.version,
				  sluice_errname(rc), w->detail);
			print_attempts(w);
			return rc;
		}
		count_error(l, rc);
		atomic_fetch_add(&l->attempts_failed, 1);
		if (tstor_now_ms() - t0 > l->cfg.retry_ms) {
			run_error(l, -ETIMEDOUT, true,
				  "chunk %u %s seq %" PRIu64 " not acked in %u ms (%u attempts); "
				  "last: %s (%s) from target %" PRIu64 " (chain %u v%" PRIu64 ")",
				  u->k, upd_name(u), u->seq, l->cfg.retry_ms, n + 1,
				  sluice_errname(rc), w->detail, h ? h->target : 0, c.id,
				  c.version);
			print_attempts(w);
			return -ETIMEDOUT;
		}
		backoff = BACKOFF_MIN_MS << (n < 6 ? n : 6);
		backoff = backoff < BACKOFF_MAX_MS ? backoff : BACKOFF_MAX_MS;
		env_sleep_ms(backoff / 2 + (uint32_t)tstor_rng_below(&w->rng, backoff / 2 + 1));
		rt_refresh(l, ci, c.version);
	}
	took = tstor_now_ms() - t0;
	for (uint64_t m = atomic_load(&l->max_ack_ms);
	     took > m && !atomic_compare_exchange_weak(&l->max_ack_ms, &m, took);)
		;
	return 0;
}

/* The ack must describe the chunk exactly as the model has it now; prev_crc is the model's
 * CRC before the update (to tell an ack of the old state from one of other bytes). */
static void check_ack(struct writer *w, const struct update *u, const struct result *r,
		      uint32_t prev_crc)
{
	struct craqload *l = w->l;
	const struct chunk *c = &l->chunks[u->k];
	uint32_t crc = crc32c(0, model_of(l, u->k), c->length);

	if (!r->has) {
		run_error(l, -SLUICE_EPROTO, false,
			  "chunk %u %s seq %" PRIu64 ": acked without the chunk's state "
			  "(answered as superseded by a later seq?)",
			  u->k, upd_name(u), u->seq);
		print_attempts(w);
		return;
	}
	if (r->ver == c->ver && r->length == c->length && r->crc == crc)
		return;
	run_error(l, -EIO, false,
		  "chunk %u %s seq %" PRIu64 " (offset %u length %u): ack says v%" PRIu64
		  " length %u crc %08x, model v%" PRIu64
		  " length %u crc %08x (before it: crc %08x)%s",
		  u->k, upd_name(u), u->seq, u->offset, u->length, r->ver, r->length, r->crc,
		  c->ver, c->length, crc, prev_crc,
		  r->crc == prev_crc ? " - the state before the update"
		  : r->ver > c->ver  ? " - applied twice?"
				     : "");
	print_attempts(w);
}

/* ---- read-back ------------------------------------------------------------------------------ */

/* Read chunk k from member m strictly: the call status, or the range's status with out
 * filled (data in buf). */
static int read_chunk(struct craqload *l, const struct member *m, const unsigned *ks, unsigned n,
		      uint8_t *buf, struct tstor_read_result *out)
{
	Sluice__ChunkBatchReadReq q = SLUICE__CHUNK_BATCH_READ_REQ__INIT;
	Sluice__ChunkReadRange rr[TSTOR_READ_RANGES], *rp[TSTOR_READ_RANGES];
	struct rpc_call_opts o = {.timeout_ms = l->cfg.call_timeout_ms,
				  .retries = 0,
				  .resp_bulk = buf,
				  .resp_bulk_cap = (size_t)n * l->cfg.chunk_size};
	struct rpc_result res = {0};
	const Sluice__ChunkBatchReadResp *r;
	size_t at = 0;
	int rc;

	ASSERT(n >= 1 && n <= TSTOR_READ_RANGES);
	for (unsigned i = 0; i < n; i++) {
		sluice__chunk_read_range__init(&rr[i]);
		rr[i].inode = l->cfg.inode;
		rr[i].index = ks[i];
		rr[i].length = l->cfg.chunk_size;
		rp[i] = &rr[i];
	}
	q.target_id = m->target;
	q.ranges = rp;
	q.n_ranges = n;
	rc = storagec_batch_read(l->tc.rpc, m->addr, &q, &o, &res);
	if (rc != 0)
		goto out;
	r = (const Sluice__ChunkBatchReadResp *)(const void *)res.resp;
	rc = -SLUICE_EPROTO;
	if (r->n_results != n || res.resp_bulk != NULL)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		const Sluice__ChunkReadResult *x = r->results[i];

		out[i] = (struct tstor_read_result){.status = x->status,
						    .length = x->status == 0 ? x->length : 0,
						    .chunk_length = x->chunk_length,
						    .commit_ver = x->commit_ver};
		if (x->status == 0) {
			if (x->length > l->cfg.chunk_size)
				goto out;
			out[i].data = buf + at;
			at += x->length;
		}
	}
	rc = at == res.resp_bulk_len ? 0 : -SLUICE_EPROTO;
out:
	rpc_result_release(&res);
	return rc;
}

/* What a replica's copy of chunk k (read result x) gets wrong against the model, into why;
 * false if nothing. */
static bool differs(struct craqload *l, unsigned k, const struct tstor_read_result *x, char *why,
		    size_t cap)
{
	const struct chunk *c = &l->chunks[k];
	long at;

	if (c->ver == 0) {
		if (x->status == -ENOENT)
			return false;
		snprintf(why, cap, "never written, read gives %s length %u v%" PRIu64,
			 sluice_errname(x->status), x->length, x->commit_ver);
		return true;
	}
	if (x->status != 0) {
		snprintf(why, cap, "read gives %s, model v%" PRIu64 " length %u",
			 sluice_errname(x->status), c->ver, c->length);
		return true;
	}
	at = x->length == c->length ? tstor_memdiff(x->data, model_of(l, k), c->length) : -1;
	if (x->length == c->length && x->chunk_length == c->length && x->commit_ver == c->ver &&
	    at < 0)
		return false;
	snprintf(why, cap,
		 "v%" PRIu64 " length %u (chunk length %u), model v%" PRIu64
		 " length %u; first differing byte %ld",
		 x->commit_ver, x->length, x->chunk_length, c->ver, c->length, at);
	return true;
}

/* After an ack: read chunk k back from a random serving member. */
static void read_back(struct writer *w, unsigned k)
{
	struct craqload *l = w->l;
	struct chain c;
	const struct member *s[SLUICE_CHAIN_LEN_MAX], *m;
	struct tstor_read_result x;
	unsigned ns = 0;
	char why[256];
	int rc;

	rt_copy(l, k % l->nchains, &c);
	for (unsigned i = 0; i < c.n; i++)
		if (c.m[i].state == SLUICE__TARGET_STATE__TS_SERVING)
			s[ns++] = &c.m[i];
	if (ns == 0)
		return;
	m = s[tstor_rng_below(&w->rng, ns)];
	rc = read_chunk(l, m, &k, 1, w->rbuf, &x);
	if (rc == 0 && x.status != 0 && x.status != -ENOENT)
		rc = x.status;
	if (rc == -SLUICE_ENOTCOMMIT || (rc != 0 && retryable(rc))) {
		atomic_fetch_add(&l->reads_skipped, 1); /* a resync holds it, or it moved */
		return;
	}
	if (rc != 0) {
		run_error(l, rc, false, "read-back of chunk %u from target %" PRIu64 ": %s", k,
			  m->target, sluice_errname(rc));
		return;
	}
	atomic_fetch_add(&l->reads_checked, 1);
	if (differs(l, k, &x, why, sizeof(why)))
		run_error(l, -EIO, false,
			  "stale read: chunk %u from target %" PRIu64 " (%s, chain %u v%" PRIu64
			  ", serving in our routing) after its ack: %s",
			  k, m->target, m->addr, c.id, c.version, why);
}

/* ---- writers -------------------------------------------------------------------------------- */

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct craqload *l = w->l;

	while (!atomic_load(&l->stop)) {
		struct update u;
		struct result r;
		uint32_t prev_crc;

		next_update(w, &u);
		if (send_until_acked(w, &u, &r) != 0)
			break;
		prev_crc = crc32c(0, model_of(l, u.k), l->chunks[u.k].length);
		model_apply(l, &u, w->data);
		check_ack(w, &u, &r, prev_crc);
		atomic_fetch_add(&l->acked, 1);
		atomic_fetch_add(&l->chain_acked[u.k % l->nchains], 1);
		if (u.truncate)
			atomic_fetch_add(&l->truncates, 1);
		else
			atomic_fetch_add(&l->bytes, u.length);
		if (tstor_rng_below(&w->rng, 100) < l->cfg.read_pct)
			read_back(w, u.k);
	}
	return NULL;
}

static int writers_alloc(struct craqload *l)
{
	/* rows of nchains chunks are dealt to the writers in turn */
	size_t own_cap = ((size_t)l->cfg.chunks_per_chain / l->cfg.writers + 1) * l->nchains;

	l->nwriters = l->cfg.writers;
	l->w = calloc(l->nwriters, sizeof(*l->w));
	if (l->w == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < l->nwriters; i++) {
		struct writer *w = &l->w[i];

		w->l = l;
		w->idx = i;
		w->rng.s = l->cfg.seed * 0x9E3779B97F4A7C15ull + i + 1;
		w->data = malloc(l->cfg.chunk_size);
		w->rbuf = malloc(l->cfg.chunk_size);
		w->own = calloc(own_cap, sizeof(*w->own));
		if (w->data == NULL || w->rbuf == NULL || w->own == NULL)
			return -ENOMEM;
	}
	for (unsigned k = 0; k < l->nchunks; k++) {
		struct writer *w = &l->w[(k / l->nchains) % l->nwriters];

		w->own[w->nown++] = k;
	}
	for (unsigned i = 0; i < l->nwriters; i++)
		if (l->w[i].nown == 0)
			return -EINVAL; /* more writers than chunk rows */
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int cfg_check(struct craqload_cfg *c)
{
	if (c->mgmtd == NULL || c->nchains > CRAQLOAD_CHAINS_MAX || c->truncate_pct > 100 ||
	    c->read_pct > 100)
		return -EINVAL;
	if (c->writers == 0)
		c->writers = DEF_WRITERS;
	if (c->chunks_per_chain == 0)
		c->chunks_per_chain = DEF_CHUNKS;
	if (c->chunk_size == 0)
		c->chunk_size = DEF_CHUNK_SIZE;
	if (c->inode == 0)
		c->inode = DEF_INODE;
	if (c->retry_ms == 0)
		c->retry_ms = DEF_RETRY_MS;
	if (c->call_timeout_ms == 0)
		c->call_timeout_ms = DEF_CALL_TIMEOUT_MS;
	if (c->writers > CRAQLOAD_WRITERS_MAX || c->chunk_size < SLUICE_CHUNK_SIZE_MIN ||
	    (c->chunk_size & (c->chunk_size - 1)) != 0 ||
	    (uint64_t)c->chunk_size * TSTOR_READ_RANGES > SLUICE_FRAME_BULK_MAX)
		return -EINVAL;
	return 0;
}

/* First routing table: retried until mgmtd answers with our chains, up to retry_ms. */
static int first_routing(struct craqload *l)
{
	uint64_t t0 = tstor_now_ms();
	int rc;

	while ((rc = rt_fetch_locked(l)) != 0 && tstor_now_ms() - t0 < l->cfg.retry_ms) {
		l->nchains = 0;
		env_sleep_ms(100);
	}
	if (rc != 0)
		fprintf(l->log, "craqload: no routing with our chains from %s: %s\n", l->cfg.mgmtd,
			sluice_errname(rc));
	return rc;
}

int craqload_create(const struct craqload_cfg *cfg, struct craqload **out)
{
	struct rpc_client_cfg rcfg = {.max_calls = 4096, .default_timeout_ms = RT_TIMEOUT_MS};
	struct craqload *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL)
		return -ENOMEM;
	l->cfg = *cfg;
	l->log = cfg->log ? cfg->log : stderr;
	pthread_mutex_init(&l->rt_mu, NULL);
	pthread_mutex_init(&l->err_mu, NULL);
	if ((rc = cfg_check(&l->cfg)) != 0) {
		free(l);
		return rc;
	}
	env_random_bytes(&l->client_id, sizeof(l->client_id));
	l->client_id |= 1;
	rc = test_client_start(&l->tc, &rcfg, POOL_BYTES);
	if (rc == 0)
		rc = first_routing(l);
	if (rc == 0) {
		l->nchunks = l->nchains * l->cfg.chunks_per_chain;
		l->model = calloc(l->nchunks, l->cfg.chunk_size);
		l->chunks = calloc(l->nchunks, sizeof(*l->chunks));
		rc = l->model && l->chunks ? writers_alloc(l) : -ENOMEM;
	}
	if (rc != 0) {
		craqload_destroy(l);
		return rc;
	}
	fprintf(l->log,
		"craqload: client %016" PRIx64 ", %u writers, %u chains, %u chunks of %u bytes "
		"(inode %" PRIu64 "), seed %" PRIu64 "\n",
		l->client_id, l->nwriters, l->nchains, l->nchunks, l->cfg.chunk_size, l->cfg.inode,
		l->cfg.seed);
	*out = l;
	return 0;
}

int craqload_start(struct craqload *l)
{
	ASSERT(!l->running);
	l->running = true;
	for (unsigned i = 0; i < l->nwriters; i++) {
		int rc = pthread_create(&l->w[i].th, NULL, writer_main, &l->w[i]);

		if (rc != 0) {
			(void)craqload_stop(l); /* reports -rc below instead */
			return -rc;
		}
		l->w[i].started = true;
	}
	return 0;
}

int craqload_stop(struct craqload *l)
{
	int rc;

	atomic_store(&l->stop, true);
	for (unsigned i = 0; i < l->nwriters; i++)
		if (l->w[i].started) {
			pthread_join(l->w[i].th, NULL);
			l->w[i].started = false;
		}
	l->running = false;
	pthread_mutex_lock(&l->err_mu);
	rc = l->first_error;
	pthread_mutex_unlock(&l->err_mu);
	return rc;
}

void craqload_stats(struct craqload *l, struct craqload_stats *out)
{
	out->acked = atomic_load(&l->acked);
	out->bytes = atomic_load(&l->bytes);
	out->truncates = atomic_load(&l->truncates);
	out->attempts_failed = atomic_load(&l->attempts_failed);
	out->refreshes = atomic_load(&l->refreshes);
	out->reads_checked = atomic_load(&l->reads_checked);
	out->reads_skipped = atomic_load(&l->reads_skipped);
	out->max_ack_ms = atomic_load(&l->max_ack_ms);
	out->errors = atomic_load(&l->errors);
	pthread_mutex_lock(&l->err_mu);
	out->failed = l->first_error != 0;
	pthread_mutex_unlock(&l->err_mu);
}

unsigned craqload_chains(const struct craqload *l, const uint32_t **ids)
{
	*ids = l->chain_ids;
	return l->nchains;
}

uint64_t craqload_chain_acked(struct craqload *l, unsigned i)
{
	ASSERT(i < l->nchains);
	return atomic_load(&l->chain_acked[i]);
}

void craqload_print_stats(struct craqload *l)
{
	struct craqload_stats s;
	char errs[1024];
	size_t at = 0;

	craqload_stats(l, &s);
	errs[0] = 0;
	for (unsigned i = 0; i <= NCOUNTED && at < sizeof(errs); i++) {
		uint64_t n = atomic_load(&l->errcount[i]);

		if (n)
			at += (size_t)snprintf(
				errs + at, sizeof(errs) - at, " %s=%" PRIu64,
				i < NCOUNTED ? sluice_errname(counted_errors[i]) : "other", n);
	}
	fprintf(l->log,
		"craqload: acked %" PRIu64 " (%" PRIu64 " truncates, %" PRIu64
		" bytes written), retried attempts %" PRIu64 ", routing fetches %" PRIu64
		", read-backs %" PRIu64 " checked %" PRIu64 " skipped, longest ack %" PRIu64
		" ms, errors %" PRIu64 "; retried errors:%s\n",
		s.acked, s.truncates, s.bytes, s.attempts_failed, s.refreshes, s.reads_checked,
		s.reads_skipped, s.max_ack_ms, s.errors, at ? errs : " none");
}

/* ---- verify --------------------------------------------------------------------------------- */

/* Wait until every member of every chain serves (routing refreshed every 200 ms). */
static int wait_all_serving(struct craqload *l, uint32_t wait_ms)
{
	uint64_t t0 = tstor_now_ms();

	for (;;) {
		bool all = true;
		int rc;

		pthread_mutex_lock(&l->rt_mu);
		rc = rt_fetch_locked(l);
		for (unsigned ci = 0; rc == 0 && ci < l->nchains; ci++)
			for (unsigned i = 0; i < l->rt[ci].n; i++)
				all &= l->rt[ci].m[i].state == SLUICE__TARGET_STATE__TS_SERVING;
		pthread_mutex_unlock(&l->rt_mu);
		if (rc == 0 && all)
			return 0;
		if (tstor_now_ms() - t0 > wait_ms) {
			fprintf(l->log,
				"craqload: verify: not every member serving after %u ms%s\n",
				wait_ms, rc ? " (no routing from mgmtd)" : ":");
			for (unsigned ci = 0; rc == 0 && ci < l->nchains; ci++) {
				fprintf(l->log, "  chain %u v%" PRIu64 ":", l->rt[ci].id,
					l->rt[ci].version);
				for (unsigned i = 0; i < l->rt[ci].n; i++)
					fprintf(l->log, " %" PRIu64 "(%s)", l->rt[ci].m[i].target,
						mgmt_target_state_name(l->rt[ci].m[i].state));
				fprintf(l->log, "\n");
			}
			return -ETIMEDOUT;
		}
		env_sleep_ms(200);
	}
}

/* Read chunks ks[0..n) from member m, retrying the call while it fails for a moment and
 * ranges that answer SLUICE_ENOTCOMMIT; compare each with the model. */
static int verify_batch(struct craqload *l, const struct chain *c, unsigned mi, const unsigned *ks,
			unsigned n, uint8_t *buf, unsigned *ndiff)
{
	const struct member *m = &c->m[mi];
	struct tstor_read_result x[TSTOR_READ_RANGES];
	uint64_t t0 = tstor_now_ms();
	char why[256];
	int rc;

	for (;;) {
		bool again = false;

		rc = read_chunk(l, m, ks, n, buf, x);
		for (unsigned i = 0; rc == 0 && i < n; i++)
			again |= x[i].status == -SLUICE_ENOTCOMMIT;
		if ((rc == 0 && !again) || (rc != 0 && !retryable(rc)) ||
		    tstor_now_ms() - t0 > VERIFY_NOTCOMMIT_MS)
			break;
		env_sleep_ms(50);
	}
	if (rc != 0) {
		fprintf(l->log, "craqload: verify: reading target %" PRIu64 " (%s): %s\n",
			m->target, m->addr, sluice_errname(rc));
		return rc;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!differs(l, ks[i], &x[i], why, sizeof(why)))
			continue;
		if (++*ndiff <= VERIFY_PRINT_MAX)
			fprintf(l->log,
				"craqload: verify: chunk %u (inode %" PRIu64 ") chain %u v%" PRIu64
				" member %u target %" PRIu64 " (%s): %s\n",
				ks[i], l->cfg.inode, c->id, c->version, mi, m->target, m->addr,
				why);
	}
	return 0;
}

int craqload_verify(struct craqload *l, uint32_t wait_ms)
{
	unsigned batch = TSTOR_READ_RANGES, ks[TSTOR_READ_RANGES], ndiff = 0, nread = 0;
	uint8_t *buf;
	int rc;

	ASSERT(!l->running);
	rc = wait_all_serving(l, wait_ms);
	if (rc != 0)
		return rc;
	buf = malloc((size_t)batch * l->cfg.chunk_size);
	if (buf == NULL)
		return -ENOMEM;
	for (unsigned ci = 0; ci < l->nchains && rc == 0; ci++) {
		const struct chain *c = &l->rt[ci];

		for (unsigned mi = 0; mi < c->n && rc == 0; mi++) {
			unsigned n = 0;

			for (unsigned k = ci; k < l->nchunks && rc == 0; k += l->nchains) {
				ks[n++] = k;
				if (n == batch || k + l->nchains >= l->nchunks) {
					rc = verify_batch(l, c, mi, ks, n, buf, &ndiff);
					nread += n;
					n = 0;
				}
			}
		}
	}
	free(buf);
	if (rc != 0)
		return rc;
	fprintf(l->log, "craqload: verify: %u chunk copies on %u chains read, %u differ%s\n", nread,
		l->nchains, ndiff,
		ndiff > VERIFY_PRINT_MAX ? " (only the first ones printed)" : "");
	return (int)ndiff;
}

void craqload_destroy(struct craqload *l)
{
	if (l == NULL)
		return;
	if (l->running)
		(void)craqload_stop(l); /* the caller did not stop it: its result is not asked */
	if (l->tc.r)
		test_client_stop(&l->tc);
	for (unsigned i = 0; l->w && i < l->nwriters; i++) {
		free(l->w[i].data);
		free(l->w[i].rbuf);
		free(l->w[i].own);
	}
	free(l->w);
	free(l->model);
	free(l->chunks);
	pthread_mutex_destroy(&l->rt_mu);
	pthread_mutex_destroy(&l->err_mu);
	free(l);
}
