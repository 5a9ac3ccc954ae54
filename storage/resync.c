/*
 * resync.c - the predecessor's side of a resync, and the synced flags (resync.h).
 *
 * DESIGN
 * One struct resync per local target whose successor is syncing. It merges two sorted
 * chunk lists a page at a time: ours (stor_scan) and the successor's (LIST_CHUNKS), both
 * in chunk id order, so memory stays at two pages plus the chunks in flight whatever the
 * target holds. For each id:
 *   - on both sides with the same commit version, length and CRC: nothing to do;
 *   - otherwise (missing there, differing, or only there): "sync" it - take the chunk's
 *     lock here (a HOLD update), then send what we have: a full replace at our committed
 *     version, or a remove if we have no such chunk. The lock orders this against live
 *     updates of the chunk, which this member forwards to the syncing one as full replaces
 *     under the same lock.
 * When both lists are done and nothing is in flight, SYNC_STATUS finished goes to the
 * target. Progress (chunks and bytes compared, against our totals at the start) goes with
 * SYNC_STATUS every SLUICE_STOR_RESYNC_REPORT_MS, and the target reports it to mgmtd.
 *
 * A resync whose chain version or successor changed is stopped (the calls in flight would
 * be refused anyway) and, if the routing still asks for one, a new one starts. A failed one
 * (a call failed, our disk failed) waits SLUICE_STOR_RESYNC_RETRY_MS and starts over.
 *
 * Lifetimes: `busy` counts what is in flight (chunk syncs, page fetches, a status call); a
 * stopped resync is freed when busy drops to 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/reactor.h"
#include "storage/craq.h"
#include "storage/daemon.h"
#include "storage/resync.h"
#include "storage/routing.h"

LOG_FACILITY("resync");

/* What the merge needs of one chunk of either list. */
struct entry {
	struct layout_chunk_id id;
	uint64_t ver;
	uint32_t length, crc;
};

struct page {
	struct entry *e;
	unsigned n, i;
	bool started, more, fetching;
	struct layout_chunk_id last; /* id of the last entry fetched */
};

struct resync {
	struct stor_daemon *d;
	unsigned ti; /* index of our target in d */
	struct stor_target *t;
	uint64_t src, dst;
	uint32_t chain_id;
	uint64_t chain_ver;
	char dst_addr[SLUICE_NET_ADDR_MAX];
	struct page local, remote;
	unsigned busy;	  /* chunk syncs + page fetches + status call in flight */
	unsigned syncing; /* chunk syncs in flight */
	bool stopped;	  /* detached from d: free when busy reaches 0 */
	bool failed;	  /* this pass failed: start over after the retry delay */
	bool finished;	  /* the target was told, and accepted */
	bool status_inflight;
	bool pumping, repump; /* pump runs; a completion inside it asked for another round */
	/* Updates that committed here without reaching the target since the pass started
	 * (they began before it): their chunks are sent again at the end. */
	uint64_t start_seq; /* craq_next_seq at the start: older updates may not reach it */
	struct layout_chunk_id *redo;
	unsigned redo_n, redo_cap;
	uint64_t chunks_done, chunks_total, bytes_done, bytes_total, chunks_sent, bytes_sent;
	uint64_t started_ns;
	struct reactor_timer timer; /* progress reports while running; the retry after a failure */
	/* bandwidth cap (storage.resync_bytes_per_s): a token bucket of bytes */
	int64_t tokens;
	uint64_t tokens_ns;
	struct reactor_timer pace_timer; /* resumes the merge once tokens are back */
};

struct sync_op {
	struct resync *rs;
	struct layout_chunk_id id;
	struct stor_pending *held;
	struct chunk_meta m; /* committed metadata while held (no sector CRCs) */
	bool has_m;
	struct buf *data;
	uint32_t off, len;
};

static void pump(struct resync *rs);
static void pump_round(struct resync *rs);
static void send_status(struct resync *rs, bool finished);

static int id_cmp(const struct layout_chunk_id *a, const struct layout_chunk_id *b)
{
	if (a->inode != b->inode)
		return a->inode < b->inode ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

static struct reactor *rs_reactor(const struct resync *rs)
{
	return rpc_client_reactor(rs->d->peer_rpc);
}

static void rs_free(struct resync *rs)
{
	free(rs->redo);
	free(rs->local.e);
	free(rs->remote.e);
	free(rs);
}

/* Something in flight finished: free a stopped resync once nothing is left. True when rs
 * is still there and running (the caller may go on with it). */
static bool rs_unbusy(struct resync *rs)
{
	ASSERT(rs->busy > 0);
	if (--rs->busy == 0 && rs->stopped) {
		rs_free(rs);
		return false;
	}
	return !rs->stopped;
}

static void rs_stop(struct resync *rs)
{
	rs->d->resyncs[rs->ti] = NULL;
	rs->stopped = true;
	reactor_timer_cancel(rs_reactor(rs), &rs->timer);
	reactor_timer_cancel(rs_reactor(rs), &rs->pace_timer);
	if (rs->busy == 0)
		rs_free(rs);
}

/* The retry timer of target ti fired: drop the failed pass (it frees itself once its calls
 * are back) and start a new one if the routing still asks for it. */
static void retry_fired(struct reactor_timer *tm)
{
	struct stor_resync_retry *r = SLUICE_CONTAINER_OF(tm, struct stor_resync_retry, timer);
	struct resync *rs = r->d->resyncs[r->ti];

	if (rs != NULL && rs->failed)
		rs_stop(rs);
	resync_routing_changed(r->d);
}

/* The pass failed: it does nothing more, and a fresh one starts after the retry delay. */
static void rs_fail(struct resync *rs, int err, const char *what)
{
	struct stor_resync_retry *r = &rs->d->resync_retry[rs->ti];

	if (rs->failed || rs->stopped)
		return;
	log_warn_rl("resync of target %" PRIu64 " from %" PRIu64 " (chain %u v%" PRIu64
		    "): %s: %s; starting over in %u ms",
		    rs->dst, rs->src, rs->chain_id, rs->chain_ver, what, sluice_strerror(err),
		    SLUICE_STOR_RESYNC_RETRY_MS);
	rs->failed = true;
	r->d = rs->d;
	r->ti = rs->ti;
	if (r->timer.cb == NULL)
		reactor_timer_init(&r->timer, retry_fired);
	if (!reactor_timer_armed(&r->timer) &&
	    reactor_timer_arm(rs_reactor(rs), &r->timer,
			      (uint64_t)SLUICE_STOR_RESYNC_RETRY_MS * ENV_NS_PER_MS) != 0)
		log_err("resync of target %" PRIu64 ": cannot arm the retry timer", rs->dst);
}

/* After anything completes. A failed pass stops its own timers (the daemon's retry timer
 * starts the next one); a running pass keeps its progress timer even while nothing is in
 * flight (the bandwidth cap paces it). */
static void rs_pass_over(struct resync *rs)
{
	if (rs->stopped || !rs->failed)
		return;
	reactor_timer_cancel(rs_reactor(rs), &rs->timer);
	reactor_timer_cancel(rs_reactor(rs), &rs->pace_timer);
}

/* ---- syncing one chunk ---------------------------------------------------------------------- */

static void sync_released(void *arg, int status, const struct chunk_meta *m)
{
	struct sync_op *op = arg;
	struct resync *rs = op->rs;

	(void)m;
	if (status != 0)
		rs_fail(rs, status, "chunk lock");
	buf_put(op->data);
	free(op);
	rs->syncing--;
	if (rs_unbusy(rs)) {
		pump(rs);
		rs_pass_over(rs);
	}
}

static void sync_sent(struct rpc_result *res, void *arg)
{
	struct sync_op *op = arg;
	struct resync *rs = op->rs;

	if (res->status != 0) {
		rs_fail(rs, res->status, "sending a chunk");
	} else {
		rs->chunks_sent++;
		rs->bytes_sent += op->len;
	}
	rpc_result_release(res);
	stor_pending_commit(op->held); /* releases the chunk: sync_released runs */
}

static void sync_send(struct sync_op *op)
{
	struct resync *rs = op->rs;
	struct rpc_call_opts o = {.timeout_ms = SLUICE_STOR_FORWARD_TIMEOUT_MS, .retries = 0};
	struct iovec iov;
	int rc;

	if (!op->has_m) { /* we have no such chunk: neither may the target */
		Sluice__ChunkRemoveReq r = SLUICE__CHUNK_REMOVE_REQ__INIT;

		r.target_id = rs->dst;
		r.inode = op->id.inode;
		r.index = op->id.index;
		r.chain_id = rs->chain_id;
		r.chain_ver = rs->chain_ver;
		r.forwarded = true;
		rc = storagec_remove_async(rs->d->peer_rpc, rs->dst_addr, &r, &o, sync_sent, op,
					   NULL);
	} else {
		Sluice__ChunkWriteReq w = SLUICE__CHUNK_WRITE_REQ__INIT;
		Sluice__UpdateTag tag = SLUICE__UPDATE_TAG__INIT;

		w.target_id = rs->dst;
		w.inode = op->id.inode;
		w.index = op->id.index;
		w.chunk_size = op->m.chunk_size;
		w.length = op->len;
		w.data_crc = op->m.crc;
		w.chain_id = rs->chain_id;
		w.chain_ver = rs->chain_ver;
		w.forwarded = true;
		w.update_ver = op->m.commit_ver;
		w.full_replace = true;
		if (op->m.tag.client != 0) { /* the chunk's tag goes with it: retries stay once */
			tag.client_id = op->m.tag.client;
			tag.channel = op->m.tag.channel;
			tag.seq = op->m.tag.seq;
			w.tag = &tag;
		}
		iov = (struct iovec){.iov_base =
					     op->data ? (uint8_t *)op->data->data + op->off : NULL,
				     .iov_len = op->len};
		o.bulk = &iov;
		o.nbulk = op->len ? 1 : 0;
		rc = storagec_write_async(rs->d->peer_rpc, rs->dst_addr, &w, &o, sync_sent, op,
					  NULL);
	}
	if (rc != 0) {
		rs_fail(rs, rc, "sending a chunk");
		stor_pending_commit(op->held);
	}
}

static void sync_read(void *arg, int status, struct buf *data, uint32_t off, uint32_t len,
		      const struct chunk_meta *m)
{
	struct sync_op *op = arg;

	(void)m;
	if (status != 0) {
		buf_put(data);
		rs_fail(op->rs, status, "reading a chunk");
		stor_pending_commit(op->held);
		return;
	}
	op->data = data;
	op->off = off;
	op->len = len;
	sync_send(op);
}

static void sync_held(void *arg, struct stor_pending *p, const struct chunk_meta *m, bool changed)
{
	struct sync_op *op = arg;
	int rc;

	(void)changed;
	op->held = p;
	op->has_m = m != NULL;
	if (m == NULL || m->length == 0) {
		if (m)
			op->m = *m;
		op->m.sector_crc = NULL;
		sync_send(op);
		return;
	}
	op->m = *m;
	op->m.sector_crc = NULL;
	rc = stor_read(op->rs->t, &op->id, 0, m->length, sync_read, op);
	if (rc != 0) {
		rs_fail(op->rs, rc, "reading a chunk");
		stor_pending_commit(p);
	}
}

static void sync_chunk(struct resync *rs, const struct layout_chunk_id *id)
{
	struct sync_op *op = calloc(1, sizeof(*op));
	struct stor_update_args a = {.kind = STOR_UPD_HOLD, .prepared = sync_held};
	int rc;

	if (op == NULL) {
		rs_fail(rs, -ENOMEM, "starting a chunk");
		return;
	}
	op->rs = rs;
	op->id = *id;
	a.id = *id;
	rs->busy++;
	rs->syncing++;
	rc = stor_update(rs->t, &a, sync_released, op);
	if (rc != 0) {
		free(op);
		rs->syncing--;
		rs->busy--;
		rs_fail(rs, rc, "locking a chunk");
	}
}

/* ---- the two lists ------------------------------------------------------------------------------
 */

static void next_id(struct layout_chunk_id *id)
{
	if (id->index == UINT32_MAX) {
		id->inode++;
		id->index = 0;
	} else {
		id->index++;
	}
}

static void local_paged(void *arg, int status, const struct chunk_meta *metas, unsigned n,
			bool more)
{
	struct resync *rs = arg;
	struct page *pg = &rs->local;

	pg->fetching = false;
	if (status == 0 && n > 0) {
		struct entry *e = realloc(pg->e, n * sizeof(*e));

		if (e == NULL) {
			status = -ENOMEM;
		} else {
			pg->e = e;
			for (unsigned i = 0; i < n; i++)
				e[i] = (struct entry){metas[i].id, metas[i].commit_ver,
						      metas[i].length, metas[i].crc};
			pg->last = metas[n - 1].id;
		}
	}
	if (status != 0) {
		rs_fail(rs, status, "listing our chunks");
	} else {
		pg->n = n;
		pg->i = 0;
		pg->more = more && n > 0;
		pg->started = true;
	}
	if (rs_unbusy(rs)) {
		pump(rs);
		rs_pass_over(rs);
	}
}

static void fetch_local(struct resync *rs)
{
	struct layout_chunk_id begin = {0, 0};
	int rc;

	if (rs->local.started) {
		begin = rs->local.last;
		next_id(&begin);
	}
	rs->local.fetching = true;
	rs->busy++;
	rc = stor_scan(rs->t, &begin, NULL, SLUICE_STOR_RESYNC_PAGE, local_paged, rs);
	if (rc != 0) {
		rs->local.fetching = false;
		rs->busy--;
		rs_fail(rs, rc, "listing our chunks");
	}
}

static void remote_paged(struct rpc_result *res, void *arg)
{
	struct resync *rs = arg;
	struct page *pg = &rs->remote;
	const Sluice__ListChunksResp *resp = (const void *)res->resp;
	int status = res->status;

	pg->fetching = false;
	if (status == 0 && resp->n_chunks > SLUICE_STOR_RESYNC_PAGE)
		status = -SLUICE_EPROTO;
	if (status == 0 && resp->n_chunks > 0) {
		struct entry *e = realloc(pg->e, resp->n_chunks * sizeof(*e));

		if (e == NULL)
			status = -ENOMEM;
		for (size_t i = 0; status == 0 && i < resp->n_chunks; i++) {
			const Sluice__ChunkMeta *c = resp->chunks[i];

			e[i] = (struct entry){
				{c->inode, c->index}, c->commit_ver, c->length, c->crc};
			/* the merge relies on the order: a page out of order is refused */
			if ((i > 0 && id_cmp(&e[i - 1].id, &e[i].id) >= 0) ||
			    (i == 0 && pg->started && id_cmp(&pg->last, &e[0].id) >= 0))
				status = -SLUICE_EPROTO;
		}
		if (e != NULL)
			pg->e = e;
		if (status == 0)
			pg->last = e[resp->n_chunks - 1].id;
	}
	if (status != 0) {
		rs_fail(rs, status, "listing the target's chunks");
	} else {
		pg->n = (unsigned)resp->n_chunks;
		pg->i = 0;
		pg->more = resp->more && resp->n_chunks > 0;
		pg->started = true;
	}
	rpc_result_release(res);
	if (rs_unbusy(rs)) {
		pump(rs);
		rs_pass_over(rs);
	}
}

static void fetch_remote(struct resync *rs)
{
	Sluice__ListChunksReq req = SLUICE__LIST_CHUNKS_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = SLUICE_STOR_FORWARD_TIMEOUT_MS};
	int rc;

	req.target_id = rs->dst;
	req.limit = SLUICE_STOR_RESYNC_PAGE;
	if (rs->remote.started) {
		req.start_after = true;
		req.after_inode = rs->remote.last.inode;
		req.after_index = rs->remote.last.index;
	}
	rs->remote.fetching = true;
	rs->busy++;
	rc = storagec_list_chunks_async(rs->d->peer_rpc, rs->dst_addr, &req, &o, remote_paged, rs,
					NULL);
	if (rc != 0) {
		rs->remote.fetching = false;
		rs->busy--;
		rs_fail(rs, rc, "listing the target's chunks");
	}
}

/* ---- the merge
 * ----------------------------------------------------------------------------------- */

/*
 * The bandwidth cap: true when a chunk of `cost` bytes must wait (the pace timer then
 * resumes the merge). Tokens refill at the configured rate, at most a tenth of a second's
 * worth banked; a chunk may take them below zero, so chunks bigger than that still go.
 */
static bool paced(struct resync *rs, uint32_t cost)
{
	uint64_t rate = rs->d->resync_bytes_per_s, now = env_now_ns(), dt;
	int64_t burst = (int64_t)(rate / 10);

	if (rate == 0)
		return false;
	dt = now - rs->tokens_ns;
	if (dt > ENV_NS_PER_S)
		dt = ENV_NS_PER_S;
	rs->tokens += (int64_t)(dt * rate / ENV_NS_PER_S);
	rs->tokens_ns = now;
	if (rs->tokens > burst)
		rs->tokens = burst;
	if (rs->tokens < 0) {
		uint64_t wait_ns = (uint64_t)(-rs->tokens) * ENV_NS_PER_S / rate + 1;

		if (!reactor_timer_armed(&rs->pace_timer) &&
		    reactor_timer_arm(rs_reactor(rs), &rs->pace_timer, wait_ns) != 0)
			rs_fail(rs, -EAGAIN, "arming the pace timer");
		return true;
	}
	rs->tokens -= cost;
	return false;
}

static void pace_fired(struct reactor_timer *tm)
{
	struct resync *rs = SLUICE_CONTAINER_OF(tm, struct resync, pace_timer);

	pump(rs);
	rs_pass_over(rs);
}

static bool page_needs_fetch(const struct page *pg)
{
	return pg->i == pg->n && (!pg->started || pg->more);
}

/*
 * Advance the merge as far as the in-flight window and the pages allow. A chunk sync can
 * complete inside sync_chunk (a call that fails at once), which calls pump again: that
 * inner call only asks the running loop for another round, so the pages are never
 * changed under it.
 */
static void pump(struct resync *rs)
{
	if (rs->pumping) {
		rs->repump = true;
		return;
	}
	rs->pumping = true;
	do {
		rs->repump = false;
		pump_round(rs);
	} while (rs->repump && !rs->stopped);
	rs->pumping = false;
}

static void pump_round(struct resync *rs)
{
	while (!rs->stopped && !rs->failed && !rs->finished &&
	       rs->syncing < SLUICE_STOR_RESYNC_INFLIGHT) {
		struct page *l = &rs->local, *r = &rs->remote;
		const struct entry *le, *re;
		struct layout_chunk_id id;
		bool need;
		int c;

		if (l->fetching || r->fetching)
			return;
		if (page_needs_fetch(l) || page_needs_fetch(r)) {
			if (page_needs_fetch(l))
				fetch_local(rs);
			if (page_needs_fetch(r) && !rs->failed)
				fetch_remote(rs);
			return;
		}
		le = l->i < l->n ? &l->e[l->i] : NULL;
		re = r->i < r->n ? &r->e[r->i] : NULL;
		if (le == NULL && re == NULL) { /* both lists done */
			if (rs->redo_n > 0) {	/* chunks updated behind the merge */
				if (paced(rs, 0))
					return;
				id = rs->redo[--rs->redo_n];
				sync_chunk(rs, &id);
				continue;
			}
			/* An update that began before this pass may still commit here without
			 * reaching the target: wait for it (it ends in resync_update_ended). */
			if (craq_oldest_inflight(rs->d->craq, rs->ti) < rs->start_seq)
				return;
			if (rs->syncing == 0 && !rs->status_inflight)
				send_status(rs, true);
			return;
		}
		c = le == NULL ? 1 : re == NULL ? -1 : id_cmp(&le->id, &re->id);
		/* the target lacks it, only the target has it, or both differ */
		need = c != 0 || le->ver != re->ver || le->length != re->length ||
		       le->crc != re->crc;
		if (need && paced(rs, c <= 0 ? le->length : 0))
			return;
		id = c <= 0 ? le->id : re->id;
		if (c <= 0) {
			rs->chunks_done++;
			rs->bytes_done += le->length;
			l->i++;
		}
		if (c >= 0)
			r->i++;
		if (need) /* last: it may complete at once (le and re are stale from here) */
			sync_chunk(rs, &id);
	}
}

/* ---- status to the target
 * ------------------------------------------------------------------------- */

static void status_sent(struct rpc_result *res, void *arg)
{
	struct resync *rs = arg;

	rs->status_inflight = false;
	if (res->status != 0 && !rs->finished) {
		rs_fail(rs, res->status, "reporting progress");
	} else if (res->status == 0 && rs->finished) {
		uint64_t ms = (env_now_ns() - rs->started_ns) / ENV_NS_PER_MS;

		log_notice("resync of target %" PRIu64 " from %" PRIu64 " (chain %u v%" PRIu64
			   ") done: %" PRIu64 " chunks compared, %" PRIu64 " sent (%" PRIu64
			   " MiB) in %" PRIu64 " ms",
			   rs->dst, rs->src, rs->chain_id, rs->chain_ver, rs->chunks_done,
			   rs->chunks_sent, rs->bytes_sent >> 20, ms);
	} else if (res->status != 0) {
		rs->finished = false;
		rs_fail(rs, res->status, "reporting the end");
	}
	rpc_result_release(res);
	if (rs_unbusy(rs)) {
		pump(rs); /* the end may have waited for this progress report */
		rs_pass_over(rs);
	}
}

static void send_status(struct resync *rs, bool finished)
{
	Sluice__SyncStatusReq req = SLUICE__SYNC_STATUS_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = SLUICE_STOR_FORWARD_TIMEOUT_MS};
	int rc;

	req.target_id = rs->dst;
	req.chain_id = rs->chain_id;
	req.chain_ver = rs->chain_ver;
	req.chunks_done = rs->chunks_done;
	req.chunks_total = rs->chunks_total > rs->chunks_done ? rs->chunks_total : rs->chunks_done;
	req.bytes_done = rs->bytes_done;
	req.bytes_total = rs->bytes_total > rs->bytes_done ? rs->bytes_total : rs->bytes_done;
	req.finished = finished;
	rs->finished = finished;
	rs->status_inflight = true;
	rs->busy++;
	rc = storagec_sync_status_async(rs->d->peer_rpc, rs->dst_addr, &req, &o, status_sent, rs,
					NULL);
	if (rc != 0) {
		rs->status_inflight = false;
		rs->finished = false;
		rs->busy--;
		rs_fail(rs, rc, "reporting progress");
	}
}

/* ---- starting, stopping
 * ------------------------------------------------------------------------------ */

static void pass_start(struct resync *rs)
{
	struct stor_space sp;

	stor_target_space(rs->t, &sp);
	free(rs->local.e);
	free(rs->remote.e);
	rs->local = (struct page){0};
	rs->remote = (struct page){0};
	rs->failed = rs->finished = false;
	rs->chunks_done = rs->bytes_done = rs->chunks_sent = rs->bytes_sent = 0;
	rs->chunks_total = sp.chunks;
	rs->bytes_total = sp.used_bytes;
	rs->redo_n = 0;
	rs->start_seq = craq_next_seq(rs->d->craq, rs->ti);
	rs->started_ns = env_now_ns();
	rs->tokens = 0;
	rs->tokens_ns = rs->started_ns;
	log_info("resync of target %" PRIu64 " (%s) from %" PRIu64 " starts: chain %u v%" PRIu64
		 ", %" PRIu64 " chunks here",
		 rs->dst, rs->dst_addr, rs->src, rs->chain_id, rs->chain_ver, rs->chunks_total);
	if (reactor_timer_arm(rs_reactor(rs), &rs->timer,
			      (uint64_t)SLUICE_STOR_RESYNC_REPORT_MS * ENV_NS_PER_MS) != 0)
		rs_fail(rs, -EAGAIN, "arming the progress timer");
	pump(rs);
	rs_pass_over(rs);
}

/* Progress report while running; the next pass after a failure. */
static void rs_timer(struct reactor_timer *tm)
{
	struct resync *rs = SLUICE_CONTAINER_OF(tm, struct resync, timer);

	if (rs->failed) /* the daemon's retry timer takes it from here */
		return;
	if (rs->finished)
		return;
	if (!rs->status_inflight)
		send_status(rs, false);
	if (reactor_timer_arm(rs_reactor(rs), tm,
			      (uint64_t)SLUICE_STOR_RESYNC_REPORT_MS * ENV_NS_PER_MS) != 0)
		rs_fail(rs, -EAGAIN, "arming the progress timer");
}

/* The resync target i owes now: its successor if that is syncing, and we serve. */
static const struct stor_rt_member *owed(const struct stor_daemon *d, unsigned i,
					 const struct stor_rt_chain **chain)
{
	const struct stor_rt_chain *ch;
	const struct stor_rt_member *s;
	unsigned pos;

	if (d->routing == NULL || d->targets[i] == NULL || d->target_ids[i] == 0 || d->fenced)
		return NULL;
	ch = stor_rt_chain_of_target(d->routing, d->target_ids[i], &pos);
	if (ch == NULL || ch->m[pos].state != SLUICE__TARGET_STATE__TS_SERVING)
		return NULL;
	s = stor_rt_successor(ch, d->target_ids[i]);
	if (s == NULL || s->state != SLUICE__TARGET_STATE__TS_SYNCING)
		return NULL;
	*chain = ch;
	return s;
}

static void update_synced(struct stor_daemon *d)
{
	for (unsigned i = 0; i < d->ntargets; i++) {
		const struct stor_rt_chain *ch;
		unsigned pos;
		Sluice__TargetState st;

		if (d->target_ids[i] == 0)
			continue;
		ch = stor_rt_chain_of_target(d->routing, d->target_ids[i], &pos);
		if (ch == NULL)
			continue;
		st = ch->m[pos].state;
		/* Serving under our current registration: in sync. Serving under an older one
		 * is a table from before we re-registered: proves nothing. */
		if (st == SLUICE__TARGET_STATE__TS_SERVING &&
		    ch->m[pos].node_incarnation == d->incarnation && d->incarnation != 0)
			d->sync[i].synced = true;
		else if (st != SLUICE__TARGET_STATE__TS_SYNCING)
			d->sync[i].synced = false;
		if (st != SLUICE__TARGET_STATE__TS_SYNCING)
			d->sync[i] = (struct stor_sync_state){.synced = d->sync[i].synced};
	}
}

void resync_routing_changed(struct stor_daemon *d)
{
	if (d->routing == NULL)
		return;
	update_synced(d);
	for (unsigned i = 0; i < d->ntargets; i++) {
		const struct stor_rt_chain *ch = NULL;
		const struct stor_rt_member *s = d->stopping ? NULL : owed(d, i, &ch);
		struct resync *rs = d->resyncs[i];

		if (rs != NULL && (s == NULL || s->target_id != rs->dst ||
				   ch->version != rs->chain_ver || strcmp(s->addr, rs->dst_addr))) {
			if (!rs->finished)
				log_info("resync of target %" PRIu64 " from %" PRIu64
					 " stopped: the chain changed",
					 rs->dst, rs->src);
			rs_stop(rs);
			rs = NULL;
		}
		if (rs != NULL || s == NULL)
			continue;
		rs = calloc(1, sizeof(*rs));
		if (rs == NULL) {
			log_err("resync of target %" PRIu64 ": out of memory", s->target_id);
			continue;
		}
		rs->d = d;
		rs->ti = i;
		rs->t = d->targets[i];
		rs->src = d->target_ids[i];
		rs->dst = s->target_id;
		rs->chain_id = ch->id;
		rs->chain_ver = ch->version;
		snprintf(rs->dst_addr, sizeof(rs->dst_addr), "%s", s->addr);
		reactor_timer_init(&rs->timer, rs_timer);
		reactor_timer_init(&rs->pace_timer, pace_fired);
		d->resyncs[i] = rs;
		pass_start(rs);
	}
}

void resync_update_ended(struct stor_daemon *d, unsigned ti, const struct layout_chunk_id *id,
			 bool committed, uint64_t reached)
{
	struct resync *rs = d->resyncs[ti];

	if (rs == NULL || rs->stopped)
		return;
	if (committed && reached != rs->dst) {
		if (rs->finished) { /* cannot happen: everything it waited for had ended */
			log_warn("resync of target %" PRIu64 ": chunk %" PRIu64 ":%u changed after "
				 "the end was sent",
				 rs->dst, id->inode, id->index);
			rs_fail(rs, -EAGAIN, "a chunk changed after the end");
		} else if (rs->redo_n == rs->redo_cap) {
			unsigned cap = rs->redo_cap ? 2 * rs->redo_cap : 64;
			struct layout_chunk_id *r = cap <= SLUICE_STOR_RESYNC_REDO_MAX
							    ? realloc(rs->redo, cap * sizeof(*r))
							    : NULL;

			if (r == NULL) {
				rs_fail(rs, -ENOMEM, "too many chunks updated during the pass");
			} else {
				rs->redo = r;
				rs->redo_cap = cap;
			}
		}
		if (!rs->failed && !rs->finished && rs->redo_n < rs->redo_cap)
			rs->redo[rs->redo_n++] = *id;
	}
	pump(rs);
	rs_pass_over(rs);
}

void resync_fenced(struct stor_daemon *d)
{
	for (unsigned i = 0; i < d->ntargets; i++)
		d->sync[i].synced = false;
}

void resync_stop_all(struct stor_daemon *d)
{
	for (unsigned i = 0; i < d->ntargets; i++) {
		if (d->resyncs[i] != NULL)
			rs_stop(d->resyncs[i]);
		if (d->resync_retry[i].timer.cb != NULL && d->peer_rpc != NULL)
			reactor_timer_cancel(rpc_client_reactor(d->peer_rpc),
					     &d->resync_retry[i].timer);
	}
}
