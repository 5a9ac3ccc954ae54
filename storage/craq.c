/*
 * craq.c - chain replication of chunk updates (CRAQ, DESIGN.md section 6).
 *
 * DESIGN
 * A client sends an update (write, truncate, remove) to the head of the chunk's chain with
 * its routing's chain id and version and a request tag. Every member runs the same steps:
 *
 *   1. check the chain: the target is in that chain at that version (else
 *      SLUICE_EROUTING / SLUICE_ECHAINVER, and the client refreshes its routing), it is the
 *      head for a client's update (SLUICE_ENOTHEAD), serving or syncing for a forwarded one;
 *   2. look up the tag: a retry of an update already applied here gets the remembered
 *      result, a retry of one still running waits for it, an older seq of the channel is
 *      answered as applied (superseded), never redone;
 *   3. prepare the update in the engine (two-phase, stor_update with `prepared`): the new
 *      content is written and durable, the metadata not committed, and the chunk's lock is
 *      held, so later updates of the chunk wait and strict reads of it here answer
 *      SLUICE_ENOTCOMMIT. The head's engine picks the version (commit_ver + 1); later
 *      members are told it (update_ver) and refuse with SLUICE_ECHUNKVER if their chunk is
 *      not at the version before;
 *   4. forward to the successor (the next serving or syncing member) with the version and
 *      the same tag; the tail has no successor and commits at once;
 *   5. when the successor acks, cross-check: its resulting chunk must have the same
 *      version, length and CRC as ours. Then commit and ack to the predecessor (or the
 *      client). So the tail commits first and the head last, and an ack to the client
 *      means every member has committed.
 *
 * Divergence is repaired, never left standing: when the successor refuses the version or
 * its result differs (it missed an update, or applied one our side aborted), we send it our
 * whole prepared content as a full replace at our version, which it applies whatever it
 * holds. A syncing successor always gets full replaces (its copy may be stale). Any other
 * failure down the chain aborts our prepared update and fails the request; the client
 * retries with the same tag, and the members that already applied it answer from their
 * tag table instead of applying it twice.
 *
 * The tag table keeps, per (client id, channel), the last seq seen and, once it succeeded,
 * its result. Failed updates are forgotten, so a retry runs again. Bounded by
 * SLUICE_STOR_TAGS_MAX entries; the oldest finished one goes first.
 *
 * Not here yet: resync of a returning target (its predecessor copying the chunks it
 * missed) - until it exists a syncing member only gets the full replaces of new writes.
 *
 * Threads: the daemon's reactor thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "storage/craq.h"
#include "storage/daemon.h"
#include "storage/resync.h"
#include "storage/routing.h"

LOG_FACILITY("craq");

/* ---- the tag table ------------------------------------------------------------------------ */

struct craq_op;

struct tag_entry {
	uint64_t client_id, seq;
	uint32_t channel;
	bool done; /* the update with `seq` succeeded; result below */
	int status;
	bool has_m, existed;
	struct chunk_meta m;	     /* sector CRCs not kept */
	struct craq_op *owner;	     /* running update with `seq`, if any */
	struct craq_waiter *waiters; /* retries of it that arrived while it runs */
	struct tag_entry *hnext;
	struct tag_entry *older, *newer; /* age list: oldest first */
};

struct craq_waiter {
	struct rpc_req *req;
	enum stor_update_kind kind;
	struct craq_waiter *next;
};

struct craq {
	struct tag_entry **buckets;
	size_t nbuckets, n;
	struct tag_entry *oldest, *newest;
	/* updates in flight per target index, oldest first, for resync.c */
	struct craq_op *ihead[SLUICE_STOR_TARGETS_MAX], *itail[SLUICE_STOR_TARGETS_MAX];
	uint64_t next_seq[SLUICE_STOR_TARGETS_MAX];
};

static size_t tag_hash(const struct craq *c, uint64_t client_id, uint32_t channel)
{
	uint64_t h = client_id * 0x9E3779B97F4A7C15ull ^ (channel + 0x632BE59BD9B4E019ull);

	h ^= h >> 29;
	return (size_t)(h % c->nbuckets);
}

int craq_create(struct craq **out)
{
	struct craq *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -ENOMEM;
	c->nbuckets = SLUICE_STOR_TAGS_MAX;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void craq_destroy(struct craq *c)
{
	if (c == NULL)
		return;
	for (struct tag_entry *e = c->oldest, *next; e != NULL; e = next) {
		next = e->newer;
		ASSERT(e->owner == NULL && e->waiters == NULL);
		free(e);
	}
	free(c->buckets);
	free(c);
}

static struct tag_entry *tag_find(struct craq *c, const Sluice__UpdateTag *t)
{
	for (struct tag_entry *e = c->buckets[tag_hash(c, t->client_id, t->channel)]; e;
	     e = e->hnext)
		if (e->client_id == t->client_id && e->channel == t->channel)
			return e;
	return NULL;
}

static void age_unlink(struct craq *c, struct tag_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	e->older = e->newer = NULL;
}

static void age_push(struct craq *c, struct tag_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

static void tag_remove(struct craq *c, struct tag_entry *e)
{
	struct tag_entry **pp = &c->buckets[tag_hash(c, e->client_id, e->channel)];

	ASSERT(e->owner == NULL && e->waiters == NULL);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	age_unlink(c, e);
	c->n--;
	free(e);
}

/* A new entry for the tag's channel, evicting the oldest finished one when full. */
static struct tag_entry *tag_add(struct craq *c, const Sluice__UpdateTag *t)
{
	struct tag_entry *e;
	size_t b;

	if (c->n >= SLUICE_STOR_TAGS_MAX) {
		for (e = c->oldest; e != NULL && e->owner != NULL; e = e->newer)
			;
		if (e == NULL)
			return NULL; /* every entry is running: the daemon is overloaded */
		tag_remove(c, e);
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->client_id = t->client_id;
	e->channel = t->channel;
	e->seq = t->seq;
	b = tag_hash(c, t->client_id, t->channel);
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	age_push(c, e);
	c->n++;
	return e;
}

/* ---- one replicated update ------------------------------------------------------------------ */

struct craq_op {
	struct stor_daemon *d;
	struct rpc_req *req;
	struct craq_req r;
	struct stor_target *t;
	struct tag_entry *tag; /* the entry this op owns, or NULL (untagged) */
	struct buf *data;      /* write data: the engine's once submitted, valid until op_done */
	struct stor_pending *pending;
	struct chunk_meta pm; /* prepared metadata (no sector CRCs) */
	bool has_pm;
	bool existed;
	bool replace_sent;
	struct buf *replace; /* our whole prepared content, for a full replace */
	uint32_t replace_off, replace_len;
	uint64_t chain_ver; /* the chain version the update runs under */
	uint64_t succ_target;
	bool succ_syncing;
	char why[SLUICE_RPC_ERROR_DETAIL_MAX]; /* why the chain below failed, for the reply */
	char succ_addr[SLUICE_NET_ADDR_MAX];
	unsigned ti;	       /* our target's index in the daemon */
	uint64_t seq;	       /* craq_next_seq when it started */
	uint64_t reached;      /* the successor that acked it (0: none) */
	struct chunk_meta dup; /* has_dup: the result the update had when applied before */
	bool has_dup;
	bool before; /* the chunk's metadata says the update was applied here before */
	struct craq_op *iprev, *inext; /* in flight on ti, oldest first */
};

static void inflight_add(struct craq *c, struct craq_op *op)
{
	op->seq = c->next_seq[op->ti]++;
	op->iprev = c->itail[op->ti];
	op->inext = NULL;
	if (op->iprev)
		op->iprev->inext = op;
	else
		c->ihead[op->ti] = op;
	c->itail[op->ti] = op;
}

static void inflight_del(struct craq *c, struct craq_op *op)
{
	if (op->iprev)
		op->iprev->inext = op->inext;
	else
		c->ihead[op->ti] = op->inext;
	if (op->inext)
		op->inext->iprev = op->iprev;
	else
		c->itail[op->ti] = op->iprev;
}

uint64_t craq_next_seq(const struct craq *c, unsigned ti)
{
	return c->next_seq[ti];
}

uint64_t craq_oldest_inflight(const struct craq *c, unsigned ti)
{
	return c->ihead[ti] ? c->ihead[ti]->seq : UINT64_MAX;
}

/* why: the reason of a failure further down the chain ("" if none). before: m is the
 * result the update's tag had when it was applied here before (ChunkUpdateResp). */
static void reply_result(struct rpc_req *req, enum stor_update_kind kind, int status,
			 const struct chunk_meta *m, bool existed, const char *why, bool before)
{
	Sluice__ChunkUpdateResp up = SLUICE__CHUNK_UPDATE_RESP__INIT;
	Sluice__ChunkRemoveResp rm = SLUICE__CHUNK_REMOVE_RESP__INIT;
	Sluice__ChunkMeta cm;

	if (status != 0 && why[0]) {
		rpc_reply_error(req, status, why);
		return;
	}
	if (status != 0) {
		rpc_reply(req, status, NULL, NULL, 0, NULL, NULL);
		return;
	}
	if (kind == STOR_UPD_REMOVE) {
		rm.existed = existed;
		rpc_reply(req, 0, &rm.base, NULL, 0, NULL, NULL);
		return;
	}
	if (m != NULL) {
		stor_meta_to_msg(m, false, &cm);
		up.chunk = &cm;
	}
	up.already_applied = before && m != NULL;
	rpc_reply(req, 0, &up.base, NULL, 0, NULL, NULL);
}

/* The engine finished the update (committed, aborted, or failed before preparing). */
static void op_done(void *arg, int status, const struct chunk_meta *m)
{
	struct craq_op *op = arg;
	struct tag_entry *e = op->tag;
	struct craq_waiter *w = NULL;

	if (status == -EALREADY && op->has_dup) { /* see forwarded(): applied before */
		status = 0;
		m = &op->dup;
	}
	reply_result(op->req, op->r.kind, status, status == 0 ? m : NULL, op->existed, op->why,
		     m == &op->dup || op->before);
	if (e != NULL) {
		e->owner = NULL;
		w = e->waiters;
		e->waiters = NULL;
		e->done = status == 0;
		e->status = status;
		e->existed = op->existed;
		e->has_m = status == 0 && m != NULL;
		if (e->has_m) {
			e->m = *m;
			e->m.sector_crc = NULL;
		}
	}
	while (w != NULL) {
		struct craq_waiter *next = w->next;

		reply_result(w->req, w->kind, status, status == 0 ? m : NULL, op->existed, op->why,
			     false);
		free(w);
		w = next;
	}
	if (e != NULL && status != 0)
		tag_remove(op->d->craq, e); /* a failed update is forgotten: a retry runs again */
	inflight_del(op->d->craq, op);
	resync_update_ended(op->d, op->ti, &op->r.id, status == 0, op->reached);
	buf_put(op->replace);
	free(op);
}

static void op_abort(struct craq_op *op, int status)
{
	stor_pending_abort(op->pending, status);
}

static void forward(struct craq_op *op);

static void replace_read(void *arg, int status, struct buf *data, uint32_t off, uint32_t len,
			 const struct chunk_meta *m)
{
	struct craq_op *op = arg;

	(void)m;
	if (status != 0) {
		buf_put(data);
		op_abort(op, status);
		return;
	}
	op->replace = data;
	op->replace_off = off;
	op->replace_len = len;
	forward(op);
}

/* Send the successor our whole prepared content instead of the update itself. */
static void start_replace(struct craq_op *op, const char *why)
{
	int rc;

	log_info("chunk %" PRIu64 ":%u v%" PRIu64 ": full replace to target %" PRIu64 " (%s)",
		 op->r.id.inode, op->r.id.index, op->pm.commit_ver, op->succ_target, why);
	op->replace_sent = true;
	rc = stor_pending_read(op->pending, replace_read, op);
	if (rc != 0)
		op_abort(op, rc);
}

static bool same_result(const struct craq_op *op, const Sluice__ChunkUpdateResp *resp)
{
	const Sluice__ChunkMeta *c = resp ? resp->chunk : NULL;

	return c != NULL && c->commit_ver == op->pm.commit_ver && c->length == op->pm.length &&
	       c->crc == op->pm.crc;
}

/*
 * The successor answered from its tag table (already_applied) with a result equal to our
 * own committed chunk: the update is in our committed state as well, and what we
 * prepared would apply it a second time. Keeps that result in op->dup.
 */
static bool applied_before(struct craq_op *op, const ProtobufCMessage *msg)
{
	const Sluice__ChunkUpdateResp *resp = (const void *)msg;
	const Sluice__ChunkMeta *c = resp ? resp->chunk : NULL;
	struct chunk_meta mine;

	if (c == NULL || !resp->already_applied || op->r.kind == STOR_UPD_REMOVE ||
	    !stor_chunk_committed(op->t, &op->r.id, &mine) || mine.commit_ver != c->commit_ver ||
	    mine.length != c->length || mine.crc != c->crc)
		return false;
	op->dup = mine;
	op->has_dup = true;
	return true;
}

static void forwarded(struct rpc_result *res, void *arg)
{
	struct craq_op *op = arg;
	int status = res->status;
	bool match = status == 0 &&
		     (op->r.kind == STOR_UPD_REMOVE ||
		      same_result(op, (const Sluice__ChunkUpdateResp *)(const void *)res->resp));
	bool before = !match && status == 0 && applied_before(op, res->resp);

	if (status != 0 && status != -SLUICE_ECHUNKVER)
		log_info("chunk %" PRIu64 ":%u: forward to target %" PRIu64 " at %s failed: %s%s%s",
			 op->r.id.inode, op->r.id.index, op->succ_target, op->succ_addr,
			 sluice_strerror(status), res->error_detail ? ": " : "",
			 res->error_detail ? res->error_detail : "");
	if (status != 0) /* the caller hears where it failed, not only the error */
		snprintf(op->why, sizeof(op->why), "target %" PRIu64 ": %s", op->succ_target,
			 res->error_detail ? res->error_detail : sluice_strerror(status));
	rpc_result_release(res);
	if (before) {
		/* We applied this update before too (we lost its tag in a restart) and the
		 * successor remembers it: drop our second application. */
		op->reached = op->succ_target;
		op_abort(op, -EALREADY);
		return;
	}
	if (match) {
		op->reached = op->succ_target;
		stor_pending_commit(op->pending);
	} else if ((status == 0 || status == -SLUICE_ECHUNKVER) && !op->replace_sent) {
		start_replace(op, status ? "its version differs" : "its result differs");
	} else if (status == 0) {
		snprintf(op->why, sizeof(op->why),
			 "target %" PRIu64 " still differs after a full replace", op->succ_target);
		log_err("chunk %" PRIu64 ":%u v%" PRIu64 ": target %" PRIu64
			" still differs after a full replace: update failed",
			op->r.id.inode, op->r.id.index, op->pm.commit_ver, op->succ_target);
		op_abort(op, -EIO);
	} else {
		op_abort(op, status);
	}
}

/* The request fields every forwarded update carries. */
#define FILL_CHAIN_FIELDS(m, op)                                         \
	do {                                                             \
		(m).target_id = (op)->succ_target;                       \
		(m).inode = (op)->r.id.inode;                            \
		(m).index = (op)->r.id.index;                            \
		(m).chain_id = (op)->r.chain_id;                         \
		(m).chain_ver = (op)->chain_ver;                         \
		(m).tag = (Sluice__UpdateTag *)(op)->r.tag;              \
		(m).forwarded = true;                                    \
		(m).update_ver = (op)->has_pm ? (op)->pm.commit_ver : 0; \
	} while (0)

static void forward(struct craq_op *op)
{
	struct stor_daemon *d = op->d;
	struct rpc_call_opts o = {.timeout_ms = SLUICE_STOR_FORWARD_TIMEOUT_MS, .retries = 0};
	struct iovec iov;
	int rc;

	if (op->r.kind == STOR_UPD_REMOVE) {
		Sluice__ChunkRemoveReq m = SLUICE__CHUNK_REMOVE_REQ__INIT;

		FILL_CHAIN_FIELDS(m, op);
		rc = storagec_remove_async(d->peer_rpc, op->succ_addr, &m, &o, forwarded, op, NULL);
	} else if (op->r.kind == STOR_UPD_TRUNCATE && !op->replace_sent) {
		Sluice__ChunkTruncateReq m = SLUICE__CHUNK_TRUNCATE_REQ__INIT;

		FILL_CHAIN_FIELDS(m, op);
		m.chunk_size = op->r.chunk_size;
		m.length = op->r.length;
		rc = storagec_truncate_async(d->peer_rpc, op->succ_addr, &m, &o, forwarded, op,
					     NULL);
	} else {
		Sluice__ChunkWriteReq m = SLUICE__CHUNK_WRITE_REQ__INIT;

		FILL_CHAIN_FIELDS(m, op);
		m.chunk_size = op->r.chunk_size;
		if (op->replace_sent) {
			m.full_replace = true;
			m.offset = 0;
			m.length = op->replace_len;
			m.data_crc = op->pm.crc;
			iov = (struct iovec){.iov_base = op->replace
								 ? (uint8_t *)op->replace->data +
									   op->replace_off
								 : NULL,
					     .iov_len = op->replace_len};
		} else {
			m.full_replace = op->r.full_replace; /* passing one on */
			m.offset = op->r.offset;
			m.length = op->r.length;
			m.data_crc = op->r.data_crc;
			iov = (struct iovec){.iov_base = op->data->data, .iov_len = op->r.length};
		}
		o.bulk = &iov;
		o.nbulk = iov.iov_len ? 1 : 0;
		rc = storagec_write_async(d->peer_rpc, op->succ_addr, &m, &o, forwarded, op, NULL);
	}
	if (rc != 0)
		op_abort(op, rc);
}

/* The successor of op's target in the current routing, into op; false for the tail. */
static bool find_successor(struct craq_op *op)
{
	const struct stor_rt_chain *ch =
		op->d->routing ? stor_rt_chain_of_target(op->d->routing, op->r.target_id, NULL)
			       : NULL;
	const struct stor_rt_member *s;

	if (ch == NULL)
		return false;
	s = stor_rt_successor(ch, op->r.target_id);
	if (s == NULL)
		return false;
	op->succ_target = s->target_id;
	op->succ_syncing = s->state == SLUICE__TARGET_STATE__TS_SYNCING;
	snprintf(op->succ_addr, sizeof(op->succ_addr), "%s", s->addr);
	return true;
}

/* Current chain version of op's target, 0 if it is no longer in op's chain. */
static uint64_t current_chain_ver(const struct craq_op *op)
{
	const struct stor_rt_chain *ch =
		op->d->routing ? stor_rt_chain_of_target(op->d->routing, op->r.target_id, NULL)
			       : NULL;

	return ch != NULL && ch->id == op->r.chain_id ? ch->version : 0;
}

static void op_prepared(void *arg, struct stor_pending *p, const struct chunk_meta *m, bool changed)
{
	struct craq_op *op = arg;

	op->pending = p;
	op->has_pm = m != NULL;
	if (m) {
		op->pm = *m;
		op->pm.sector_crc = NULL;
	}
	/* Nothing new to tell the chain: a truncate to the current length, or a retry of the
	 * update that made the chunk's version (its tag is in the chunk's metadata: we
	 * applied it before, perhaps before a restart, or got it by resync). A remove is
	 * absolute and always goes on, so a successor that still has the chunk loses it. */
	if (!changed && op->r.kind != STOR_UPD_REMOVE) {
		op->before = op->r.tag != NULL;
		stor_pending_commit(p);
		return;
	}
	if (current_chain_ver(op) != op->chain_ver) {
		snprintf(op->why, sizeof(op->why), "chain %u changed while the update was prepared",
			 op->r.chain_id);
		op_abort(op, -SLUICE_ECHAINVER);
		return;
	}
	if (!find_successor(op)) { /* we became the tail */
		stor_pending_commit(p);
		return;
	}
	if (op->succ_syncing && op->r.kind != STOR_UPD_REMOVE) {
		start_replace(op, "it is syncing");
		return;
	}
	forward(op);
}

/* ---- entry ------------------------------------------------------------------------------------
 */

/* Check the chain fields of r against our routing; reply and return false if they fail. */
static bool chain_ok(struct stor_daemon *d, struct rpc_req *req, const struct craq_req *r,
		     uint64_t *chain_ver)
{
	const struct stor_rt_chain *ch;
	const struct stor_rt_member *me = NULL;
	char why[160];

	if (d->routing == NULL) {
		rpc_reply_error(req, -SLUICE_EROUTING, "no routing table from mgmtd yet");
		return false;
	}
	ch = stor_rt_chain_of_target(d->routing, r->target_id, NULL);
	if (ch == NULL || ch->id != r->chain_id) {
		snprintf(why, sizeof(why), "target %" PRIu64 " is not in chain %u", r->target_id,
			 r->chain_id);
		rpc_reply_error(req, -SLUICE_EROUTING, why);
		return false;
	}
	if (ch->version != r->chain_ver) {
		snprintf(why, sizeof(why), "chain %u is at version %" PRIu64 ", not %" PRIu64,
			 ch->id, ch->version, r->chain_ver);
		rpc_reply_error(req, -SLUICE_ECHAINVER, why);
		return false;
	}
	for (unsigned i = 0; i < ch->n; i++)
		if (ch->m[i].target_id == r->target_id)
			me = &ch->m[i];
	ASSERT(me != NULL);
	if (!r->forwarded && !stor_rt_is_head(ch, r->target_id)) {
		snprintf(why, sizeof(why), "target %" PRIu64 " is not the head of chain %u",
			 r->target_id, ch->id);
		rpc_reply_error(req, -SLUICE_ENOTHEAD, why);
		return false;
	}
	if (!stor_rt_writable(me)) {
		snprintf(why, sizeof(why), "target %" PRIu64 " is not serving or syncing",
			 r->target_id);
		rpc_reply_error(req, -SLUICE_EROUTING, why);
		return false;
	}
	*chain_ver = ch->version;
	return true;
}

/* Answer a retry from the tag table; false when the update must run (and *entry then is
 * the entry it must own, or NULL for an untagged update). */
static bool tag_answered(struct stor_daemon *d, struct rpc_req *req, const struct craq_req *r,
			 struct tag_entry **entry)
{
	const Sluice__UpdateTag *t = r->tag;
	struct tag_entry *e;

	*entry = NULL;
	if (t == NULL)
		return false;
	e = tag_find(d->craq, t);
	if (r->full_replace) {
		/* A predecessor's repair or a resync: it is applied whatever the table says, and
		 * its tag only goes into the chunk's metadata (the table is for client updates). */
		return false;
	}
	if (e != NULL && t->seq < e->seq) {
		/* superseded: the client only moves on once an update is acked */
		reply_result(req, r->kind, 0, NULL, false, "", false);
		return true;
	}
	if (e != NULL && t->seq == e->seq && e->owner != NULL) {
		struct craq_waiter *w = calloc(1, sizeof(*w));

		if (w == NULL) {
			rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
			return true;
		}
		w->req = req;
		w->kind = r->kind;
		w->next = e->waiters;
		e->waiters = w;
		return true;
	}
	if (e != NULL && e->owner != NULL) {
		/* an older seq still runs: a client sends the next only after an ack */
		rpc_reply_error(req, -EAGAIN, "the channel's previous update is still running");
		return true;
	}
	if (e != NULL && t->seq == e->seq && e->done) {
		reply_result(req, r->kind, 0, e->has_m ? &e->m : NULL, e->existed, "", true);
		return true;
	}
	if (e == NULL) {
		e = tag_add(d->craq, t);
		if (e == NULL) {
			rpc_reply_error(req, -EAGAIN, "too many updates in flight");
			return true;
		}
	}
	e->seq = t->seq;
	e->done = false;
	age_unlink(d->craq, e);
	age_push(d->craq, e);
	*entry = e;
	return false;
}

void craq_update(struct stor_daemon *d, struct rpc_req *req, const struct craq_req *r)
{
	struct stor_target *t;
	struct craq_op *op;
	struct stor_update_args a;
	struct tag_entry *e;
	uint64_t chain_ver;
	int rc;

	if (r->tag != NULL && (r->tag->client_id == 0 || r->tag->seq == 0)) {
		rpc_reply_error(req, -EINVAL, "a request tag needs a client id and a seq");
		return;
	}
	if (!r->forwarded && (r->update_ver != 0 || r->full_replace)) {
		rpc_reply_error(req, -EINVAL,
				"update_ver and full_replace are for forwarded updates");
		return;
	}
	if (r->forwarded && r->kind != STOR_UPD_REMOVE && r->update_ver == 0) {
		rpc_reply_error(req, -EINVAL, "a forwarded update needs its update_ver");
		return;
	}
	t = stor_daemon_target(d, r->target_id);
	ASSERT(t != NULL); /* the handler checked */
	if (!chain_ok(d, req, r, &chain_ver) || tag_answered(d, req, r, &e))
		return;
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		if (e)
			tag_remove(d->craq, e);
		rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	*op = (struct craq_op){
		.d = d, .req = req, .r = *r, .t = t, .tag = e, .chain_ver = chain_ver};
	while (d->targets[op->ti] != t)
		op->ti++;
	if (r->kind == STOR_UPD_WRITE) {
		op->data = rpc_req_bulk(req);
		if ((op->data ? op->data->len : 0) != r->length) {
			if (e)
				tag_remove(d->craq, e);
			free(op);
			rpc_reply_error(req, -EINVAL, "write length must equal the bulk length");
			return;
		}
	}
	a = (struct stor_update_args){
		.kind = r->kind,
		.id = r->id,
		.chunk_size = r->chunk_size,
		.offset = r->offset,
		.length = r->length,
		.data = op->data,
		.data_crc = r->data_crc,
		.existed = &op->existed,
		.update_ver = r->update_ver,
		.full_replace = r->full_replace,
		.chain_ver = chain_ver,
		.tag = r->tag ? (struct stor_tag){r->tag->client_id, r->tag->channel, r->tag->seq}
			      : (struct stor_tag){0, 0, 0},
		/* two-phase unless we are the tail now (checked again once prepared) */
		.prepared = find_successor(op) ? op_prepared : NULL,
	};
	/* The engine may complete (and op_done free op) before stor_update returns: everything
	 * op_done relies on is set first, and op is not touched after a successful submit. */
	if (e)
		e->owner = op;
	if (op->data)
		(void)rpc_req_take_bulk(req); /* the engine's once submitted */
	inflight_add(d->craq, op);
	rc = stor_update(t, &a, op_done, op);
	if (rc != 0) {
		inflight_del(d->craq, op);
		buf_put(op->data);
		if (e) {
			e->owner = NULL;
			tag_remove(d->craq, e);
		}
		free(op);
		if (rc == -EINVAL)
			rpc_reply_error(req, rc, "bad update: chunk_size or range");
		else if (rc == -SLUICE_ECHECKSUM)
			rpc_reply_error(req, rc, "data CRC does not match the data received");
		else
			rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
	}
}
