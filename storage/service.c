/*
 * service.c - the storage service's RPC handlers (proto/storage_ops.h) on top of the
 * chunk engine (target.h).
 *
 * Every handler runs on the daemon's reactor thread, validates the request (every field
 * from the wire is checked before use; the engine checks again what it owns), starts the
 * engine operation and replies from its completion. A request whose target is unknown gets
 * -SLUICE_EROUTING (the caller's routing is stale or the daemon has not registered yet).
 * Write data is the request's bulk, handed to the engine without a copy; read data goes
 * back as the response bulk straight from the engine's buffers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "proto/storage_ops.h"
#include "storage/craq.h"
#include "storage/daemon.h"
#include "storage/routing.h"

LOG_FACILITY("storsvc");

static int find_target(const struct stor_daemon *d, uint64_t id);

struct stor_target *stor_daemon_target(const struct stor_daemon *d, uint64_t id)
{
	int i = find_target(d, id);

	return i < 0 ? NULL : d->targets[i];
}

/* Index of target id in d, or -1. */
static int find_target(const struct stor_daemon *d, uint64_t id)
{
	if (id == 0)
		return -1;
	for (unsigned i = 0; i < d->ntargets; i++)
		if (d->target_ids[i] == id)
			return (int)i;
	return -1;
}

/* The target named by a request, or a reply saying why not (and NULL). */
static struct stor_target *target_or_reply(struct stor_daemon *d, struct rpc_req *req, uint64_t id,
					   bool update)
{
	int i = find_target(d, id);
	char why[96];

	if (i < 0) {
		snprintf(why, sizeof(why), "no target %" PRIu64 " on this node", id);
		rpc_reply_error(req, -SLUICE_EROUTING, why);
		return NULL;
	}
	if (d->targets[i] == NULL) {
		rpc_reply_error(req, -SLUICE_ETARGET_OFFLINE, "target did not open (see its log)");
		return NULL;
	}
	if (update && d->fenced) {
		rpc_reply_error(req, -SLUICE_ESTALE_LEASE, "node lost its mgmtd lease: fenced");
		return NULL;
	}
	return d->targets[i];
}

void stor_meta_to_msg(const struct chunk_meta *m, bool with_pos, Sluice__ChunkMeta *out)
{
	sluice__chunk_meta__init(out);
	out->inode = m->id.inode;
	out->index = m->id.index;
	out->length = m->length;
	out->chunk_size = m->chunk_size;
	out->commit_ver = m->commit_ver;
	out->update_ver = m->update_ver;
	out->chain_ver = m->chain_ver;
	out->crc = m->crc;
	if (with_pos && m->has_block) {
		out->block_size = stor_class_bytes(m->pos.cls);
		out->file = m->pos.file;
		out->block = m->pos.block;
	}
}

/* ---- updates ------------------------------------------------------------------------- */

/* The chain fields every update request has (proto/storage.proto, fields 16-20). */
#define CHAIN_FIELDS(msg)                                                                    \
	.target_id = (msg)->target_id, .id = {.inode = (msg)->inode, .index = (msg)->index}, \
	.chain_id = (msg)->chain_id, .chain_ver = (msg)->chain_ver, .tag = (msg)->tag,       \
	.forwarded = (msg)->forwarded, .update_ver = (msg)->update_ver

/*
 * An update naming a chain goes to craq.c. A local one (chain_id 0) is only for a target
 * in no chain - with a chain it would make this replica differ from the others - unless
 * debug.fault_injection is on (tests make replicas differ on purpose). True when the
 * request was taken (handed on or refused).
 */
static bool chain_update(struct stor_daemon *d, struct rpc_req *req, const struct craq_req *r)
{
	const struct stor_rt_chain *ch;
	char why[128];

	if (r->chain_id != 0) {
		craq_update(d, req, r);
		return true;
	}
	if (r->forwarded || r->update_ver || r->full_replace || r->tag) {
		rpc_reply_error(req, -EINVAL, "chain fields in an update without a chain_id");
		return true;
	}
	ch = d->routing ? stor_rt_chain_of_target(d->routing, r->target_id, NULL) : NULL;
	if (ch == NULL || d->fault_injection)
		return false;
	snprintf(why, sizeof(why), "target %" PRIu64 " is in chain %u: updates name the chain",
		 r->target_id, ch->id);
	rpc_reply_error(req, -SLUICE_EROUTING, why);
	return true;
}

static void update_replied(void *arg, int status, const struct chunk_meta *m)
{
	struct rpc_req *req = arg;
	Sluice__ChunkUpdateResp resp = SLUICE__CHUNK_UPDATE_RESP__INIT;
	Sluice__ChunkMeta cm;

	if (status != 0) {
		rpc_reply(req, status, NULL, NULL, 0, NULL, NULL);
		return;
	}
	if (m != NULL) {
		stor_meta_to_msg(m, false, &cm);
		resp.chunk = &cm;
	}
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

void storage_h_write(struct rpc_req *req, const Sluice__ChunkWriteReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, true);
	struct buf *data;
	int rc;

	if (t == NULL)
		return;
	struct craq_req cr = {CHAIN_FIELDS(msg),
			      .kind = STOR_UPD_WRITE,
			      .chunk_size = msg->chunk_size,
			      .offset = msg->offset,
			      .length = msg->length,
			      .data_crc = msg->data_crc,
			      .full_replace = msg->full_replace};
	if (chain_update(d, req, &cr))
		return;
	data = rpc_req_bulk(req);
	if (msg->length == 0 || data == NULL || data->len != msg->length) {
		rpc_reply_error(req, -EINVAL, "write length must be > 0 and equal the bulk length");
		return;
	}
	struct stor_write_args a = {
		.id = {.inode = msg->inode, .index = msg->index},
		.chunk_size = msg->chunk_size,
		.offset = msg->offset,
		.data = data,
		.data_crc = msg->data_crc,
	};
	rc = stor_write(t, &a, update_replied, req);
	if (rc == 0) {
		(void)rpc_req_take_bulk(req); /* the engine owns it now */
		return;
	}
	if (rc == -EINVAL || rc == -SLUICE_ECHECKSUM)
		log_warn_rl("write of chunk %" PRIu64 ":%u from %s refused: %s", msg->inode,
			    msg->index, rpc_req_peer(req), sluice_strerror(rc));
	if (rc == -SLUICE_ECHECKSUM)
		rpc_reply_error(req, rc, "data CRC does not match the data received");
	else if (rc == -EINVAL)
		rpc_reply_error(req, rc,
				"bad range: chunk_size must be a power of two in 64KiB..64MiB "
				"and offset + length <= chunk_size");
	else
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
}

void storage_h_truncate(struct rpc_req *req, const Sluice__ChunkTruncateReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, true);
	struct layout_chunk_id id = {.inode = msg->inode, .index = msg->index};
	int rc;

	if (t == NULL)
		return;
	struct craq_req cr = {CHAIN_FIELDS(msg), .kind = STOR_UPD_TRUNCATE,
			      .chunk_size = msg->chunk_size, .length = msg->length};
	if (chain_update(d, req, &cr))
		return;
	rc = stor_truncate(t, &id, msg->chunk_size, msg->length, update_replied, req);
	if (rc == -EINVAL)
		rpc_reply_error(req, rc, "bad chunk_size or length past chunk_size");
	else if (rc != 0)
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
}

struct remove_ctx {
	struct rpc_req *req;
	bool existed;
};

static void remove_replied(void *arg, int status, const struct chunk_meta *m)
{
	struct remove_ctx *rc = arg;
	Sluice__ChunkRemoveResp resp = SLUICE__CHUNK_REMOVE_RESP__INIT;

	(void)m;
	resp.existed = rc->existed;
	rpc_reply(rc->req, status, status == 0 ? &resp.base : NULL, NULL, 0, NULL, NULL);
	free(rc);
}

void storage_h_remove(struct rpc_req *req, const Sluice__ChunkRemoveReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, true);
	struct layout_chunk_id id = {.inode = msg->inode, .index = msg->index};
	struct remove_ctx *rc;
	int err;

	if (t == NULL)
		return;
	struct craq_req cr = {CHAIN_FIELDS(msg), .kind = STOR_UPD_REMOVE};
	if (chain_update(d, req, &cr))
		return;
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL) {
		rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	rc->req = req;
	err = stor_remove(t, &id, &rc->existed, remove_replied, rc);
	if (err != 0) {
		free(rc);
		rpc_reply(req, err, NULL, NULL, 0, NULL, NULL);
	}
}

/* REMOVE_RANGE: list the ids in range (a scan), then remove each through the engine. */
struct range_remove;

struct range_one {
	struct range_remove *rr;
	bool existed;
};

struct range_remove {
	struct rpc_req *req;
	struct stor_target *t;
	unsigned pending, removed;
	int status;
	bool more;
	struct range_one *one; /* one per chunk listed */
};

static void range_remove_finish(struct range_remove *rr)
{
	Sluice__ChunkRemoveRangeResp resp = SLUICE__CHUNK_REMOVE_RANGE_RESP__INIT;

	resp.removed = rr->removed;
	resp.more = rr->more;
	rpc_reply(rr->req, rr->status, rr->status == 0 ? &resp.base : NULL, NULL, 0, NULL, NULL);
	free(rr->one);
	free(rr);
}

static void range_one_removed(void *arg, int status, const struct chunk_meta *m)
{
	struct range_one *one = arg;
	struct range_remove *rr = one->rr;

	(void)m;
	if (status != 0 && rr->status == 0)
		rr->status = status;
	else if (status == 0 && one->existed)
		rr->removed++;
	if (--rr->pending == 0)
		range_remove_finish(rr);
}

static void range_listed(void *arg, int status, const struct chunk_meta *metas, unsigned n,
			 bool more)
{
	struct range_remove *rr = arg;

	rr->more = more;
	rr->status = status;
	if (status != 0 || n == 0) {
		range_remove_finish(rr);
		return;
	}
	rr->one = calloc(n, sizeof(*rr->one));
	if (rr->one == NULL) {
		rr->status = -ENOMEM;
		range_remove_finish(rr);
		return;
	}
	/* Hold one extra count while submitting so a completion cannot finish early. */
	rr->pending = n + 1;
	for (unsigned i = 0; i < n; i++) {
		int rc;

		rr->one[i].rr = rr;
		rc = stor_remove(rr->t, &metas[i].id, &rr->one[i].existed, range_one_removed,
				 &rr->one[i]);
		if (rc != 0) {
			if (rr->status == 0)
				rr->status = rc;
			rr->pending--;
		}
	}
	if (--rr->pending == 0)
		range_remove_finish(rr);
}

void storage_h_remove_range(struct rpc_req *req, const Sluice__ChunkRemoveRangeReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, true);
	struct layout_chunk_id begin = {.inode = msg->begin_inode, .index = msg->begin_index};
	struct layout_chunk_id end = {.inode = msg->end_inode, .index = msg->end_index};
	struct range_remove *rr;
	int rc;

	if (t == NULL)
		return;
	rr = calloc(1, sizeof(*rr));
	if (rr == NULL) {
		rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	rr->req = req;
	rr->t = t;
	rc = stor_scan(t, &begin, &end, msg->max_chunks, range_listed, rr);
	if (rc != 0) {
		free(rr);
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
	}
}

/* ---- reads ----------------------------------------------------------------------------- */

/* A replica that is not serving (syncing, waiting, offline), or on a fenced node, may hold
 * stale chunks: reads go to a serving one. Targets in no chain serve. True when reads may go
 * on. */
static bool serving_or_reply(struct stor_daemon *d, struct rpc_req *req, uint64_t target_id)
{
	const struct stor_rt_chain *ch;
	unsigned pos = 0;
	char why[128];

	ch = d->routing ? stor_rt_chain_of_target(d->routing, target_id, &pos) : NULL;
	if (ch != NULL && d->fenced) {
		/* Without a lease our routing may be stale: mgmtd may have taken the target out
		 * of its chain and the others written on without it. */
		snprintf(why, sizeof(why),
			 "target %" PRIu64 ": node fenced (no mgmtd lease): "
			 "read another replica",
			 target_id);
		rpc_reply_error(req, -SLUICE_ESTALE_LEASE, why);
		return false;
	}
	if (ch == NULL || ch->m[pos].state == SLUICE__TARGET_STATE__TS_SERVING)
		return true;
	snprintf(why, sizeof(why), "target %" PRIu64 " is not serving in chain %u: read another",
		 target_id, ch->id);
	rpc_reply_error(req, -SLUICE_EROUTING, why);
	return false;
}

struct batch_read {
	struct rpc_req *req;
	unsigned n, pending;
	Sluice__ChunkReadResult results[SLUICE_STOR_READ_RANGES_MAX];
	Sluice__ChunkReadResult *result_ptrs[SLUICE_STOR_READ_RANGES_MAX];
	struct buf *bufs[SLUICE_STOR_READ_RANGES_MAX];
	struct iovec iov[SLUICE_STOR_READ_RANGES_MAX];
	struct batch_read_one {
		struct batch_read *br;
		unsigned i;
	} one[SLUICE_STOR_READ_RANGES_MAX];
};

/* The response bulk is sent from the engine's buffers; they go back when it is out. */
static void batch_read_release(void *arg)
{
	struct batch_read *br = arg;

	for (unsigned i = 0; i < br->n; i++)
		buf_put(br->bufs[i]);
	free(br);
}

static void batch_read_finish(struct batch_read *br)
{
	Sluice__ChunkBatchReadResp resp = SLUICE__CHUNK_BATCH_READ_RESP__INIT;
	struct iovec iov[SLUICE_STOR_READ_RANGES_MAX];
	unsigned niov = 0;

	for (unsigned i = 0; i < br->n; i++)
		if (br->results[i].status == 0 && br->iov[i].iov_len > 0)
			iov[niov++] = br->iov[i];
	resp.n_results = br->n;
	resp.results = br->result_ptrs;
	rpc_reply(br->req, 0, &resp.base, iov, niov, batch_read_release, br);
}

static void range_read(void *arg, int status, struct buf *data, uint32_t off, uint32_t len,
		       const struct chunk_meta *m)
{
	struct batch_read_one *one = arg;
	struct batch_read *br = one->br;
	Sluice__ChunkReadResult *r = &br->results[one->i];

	r->status = status;
	if (status == 0) {
		r->length = len;
		r->commit_ver = m->commit_ver;
		r->chunk_length = m->length;
		br->bufs[one->i] = data;
		br->iov[one->i] = (struct iovec){
			.iov_base = data ? (uint8_t *)data->data + off : NULL, .iov_len = len};
	}
	if (--br->pending == 0)
		batch_read_finish(br);
}

void storage_h_batch_read(struct rpc_req *req, const Sluice__ChunkBatchReadReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, false);
	struct batch_read *br;
	uint64_t total = 0;

	if (t == NULL || !serving_or_reply(d, req, msg->target_id))
		return;
	if (msg->n_ranges == 0 || msg->n_ranges > SLUICE_STOR_READ_RANGES_MAX) {
		rpc_reply_error(req, -EINVAL, "a batch read has 1..32 ranges");
		return;
	}
	for (size_t i = 0; i < msg->n_ranges; i++)
		total += msg->ranges[i]->length;
	if (total > SLUICE_FRAME_BULK_MAX) {
		rpc_reply_error(req, -SLUICE_ETOOBIG, "ranges add up to more than one bulk");
		return;
	}
	br = calloc(1, sizeof(*br));
	if (br == NULL) {
		rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	br->req = req;
	br->n = (unsigned)msg->n_ranges;
	br->pending = br->n + 1; /* submission holds one */
	for (unsigned i = 0; i < br->n; i++) {
		const Sluice__ChunkReadRange *rg = msg->ranges[i];
		struct layout_chunk_id id = {.inode = rg->inode, .index = rg->index};
		int rc;

		sluice__chunk_read_result__init(&br->results[i]);
		br->result_ptrs[i] = &br->results[i];
		br->one[i] = (struct batch_read_one){.br = br, .i = i};
		/* An update of the chunk is on its way down the chain: the tail may already
		 * have it, so this replica's committed version may be stale. */
		if (!msg->relaxed && stor_chunk_pending(t, &id))
			rc = -SLUICE_ENOTCOMMIT;
		else
			rc = stor_read(t, &id, rg->offset, rg->length, range_read, &br->one[i]);
		if (rc != 0) {
			br->results[i].status = rc;
			br->pending--;
		}
	}
	if (--br->pending == 0)
		batch_read_finish(br);
}

/* ---- metadata queries -------------------------------------------------------------------- */

struct listing {
	struct rpc_req *req;
	bool with_pos, is_list;
};

static void listed(void *arg, int status, const struct chunk_meta *metas, unsigned n, bool more)
{
	struct listing *l = arg;
	Sluice__ChunkMeta *cms = NULL, **ptrs = NULL;

	if (status == 0 && n > 0) {
		cms = calloc(n, sizeof(*cms));
		ptrs = calloc(n, sizeof(*ptrs));
		if (cms == NULL || ptrs == NULL)
			status = -ENOMEM;
	}
	if (status != 0) {
		rpc_reply(l->req, status, NULL, NULL, 0, NULL, NULL);
	} else {
		for (unsigned i = 0; i < n; i++) {
			stor_meta_to_msg(&metas[i], l->with_pos, &cms[i]);
			ptrs[i] = &cms[i];
		}
		if (l->is_list) {
			Sluice__ListChunksResp resp = SLUICE__LIST_CHUNKS_RESP__INIT;

			resp.n_chunks = n;
			resp.chunks = ptrs;
			resp.more = more;
			rpc_reply(l->req, 0, &resp.base, NULL, 0, NULL, NULL);
		} else {
			Sluice__QueryChunksResp resp = SLUICE__QUERY_CHUNKS_RESP__INIT;

			resp.n_chunks = n;
			resp.chunks = ptrs;
			resp.more = more;
			rpc_reply(l->req, 0, &resp.base, NULL, 0, NULL, NULL);
		}
	}
	free(cms);
	free(ptrs);
	free(l);
}

static void start_listing(struct rpc_req *req, struct stor_target *t,
			  const struct layout_chunk_id *begin, const struct layout_chunk_id *end,
			  unsigned limit, bool is_list)
{
	struct listing *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL) {
		rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	*l = (struct listing){.req = req, .with_pos = is_list, .is_list = is_list};
	rc = stor_scan(t, begin, end, limit, listed, l);
	if (rc != 0) {
		free(l);
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
	}
}

void storage_h_query_chunks(struct rpc_req *req, const Sluice__QueryChunksReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, false);
	struct layout_chunk_id begin = {.inode = msg->inode, .index = msg->begin_index};
	struct layout_chunk_id end = {.inode = msg->inode, .index = msg->end_index};

	if (t == NULL)
		return;
	if (msg->end_index == 0) { /* to the end of the file: the next inode's first chunk */
		end = (struct layout_chunk_id){.inode = msg->inode + 1, .index = 0};
		if (msg->inode == UINT64_MAX) {
			start_listing(req, t, &begin, NULL, msg->limit, false);
			return;
		}
	}
	start_listing(req, t, &begin, &end, msg->limit, false);
}

void storage_h_list_chunks(struct rpc_req *req, const Sluice__ListChunksReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	struct stor_target *t = target_or_reply(d, req, msg->target_id, false);
	struct layout_chunk_id begin = {0};

	if (t == NULL)
		return;
	if (msg->start_after) { /* the id right after the cursor */
		begin = (struct layout_chunk_id){.inode = msg->after_inode,
						 .index = msg->after_index + 1};
		if (msg->after_index == UINT32_MAX) {
			if (msg->after_inode == UINT64_MAX) {
				Sluice__ListChunksResp resp = SLUICE__LIST_CHUNKS_RESP__INIT;

				rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
				return;
			}
			begin = (struct layout_chunk_id){.inode = msg->after_inode + 1};
		}
	}
	start_listing(req, t, &begin, NULL, msg->limit, true);
}

static void counters_to_msg(const struct stor_target *t, Sluice__TargetCounters *out)
{
	struct stor_counters c;

	stor_target_counters(t, &c);
	sluice__target_counters__init(out);
	out->writes = c.writes;
	out->truncates = c.truncates;
	out->removes = c.removes;
	out->reads = c.reads;
	out->bytes_written = c.bytes_written;
	out->bytes_read = c.bytes_read;
	out->commits = c.commits;
	out->commit_batches = c.commit_batches;
	out->checksum_errors = c.checksum_errors;
	out->io_errors = c.io_errors;
	out->enospc = c.enospc;
	out->grows = c.grows;
	out->ios_fixed = c.ios_fixed;
	out->ios_plain = c.ios_plain;
}

void storage_h_statfs(struct rpc_req *req, const Sluice__TargetStatfsReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	Sluice__TargetStatfsResp resp = SLUICE__TARGET_STATFS_RESP__INIT;
	Sluice__TargetSpace spaces[SLUICE_STOR_TARGETS_MAX], *ptrs[SLUICE_STOR_TARGETS_MAX];
	Sluice__TargetCounters counters[SLUICE_STOR_TARGETS_MAX];
	unsigned n = 0;

	if (msg->target_id != 0 && target_or_reply(d, req, msg->target_id, false) == NULL)
		return;
	for (unsigned i = 0; i < d->ntargets; i++) {
		struct stor_target *t = d->targets[i];
		Sluice__TargetSpace *s = &spaces[n];
		struct stor_space sp = {0};
		const char *reason = "did not open";

		if (msg->target_id != 0 && d->target_ids[i] != msg->target_id)
			continue;
		sluice__target_space__init(s);
		s->target_id = d->target_ids[i];
		ptrs[n++] = s;
		if (t == NULL) {
			s->offline_reason = (char *)reason;
			continue;
		}
		stor_target_space(t, &sp);
		s->path = (char *)stor_target_path(t);
		s->online = stor_target_online(t, &reason);
		s->offline_reason = (char *)reason;
		s->capacity_bytes = sp.capacity_bytes;
		s->used_bytes = sp.used_bytes;
		s->allocated_bytes = sp.allocated_bytes;
		s->free_bytes = sp.free_bytes;
		s->chunks = sp.chunks;
		counters_to_msg(t, &counters[n - 1]);
		s->counters = &counters[n - 1];
	}
	resp.n_targets = n;
	resp.targets = ptrs;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

void storage_h_fault_inject(struct rpc_req *req, const Sluice__FaultInjectReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	Sluice__FaultInjectResp resp = SLUICE__FAULT_INJECT_RESP__INIT;
	struct stor_target *t;

	if (!d->fault_injection) {
		rpc_reply_error(req, -EPERM, "fault injection is off (debug.fault_injection)");
		return;
	}
	t = target_or_reply(d, req, msg->target_id, false);
	if (t == NULL)
		return;
	if (msg->site == NULL || strcmp(msg->site, "disk_eio") != 0) {
		rpc_reply_error(req, -EINVAL, "unknown fault site (known: disk_eio)");
		return;
	}
	stor_target_inject_eio(t, msg->count);
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

RPC_DEFINE_HANDLERS(storage, STORAGE_OPS)

/* ---- resync ------------------------------------------------------------------------------ */

/* The predecessor of a syncing target of ours reports progress, and at last that the
 * target holds everything: it may then report itself up to date (resync.h). */
void storage_h_sync_status(struct rpc_req *req, const Sluice__SyncStatusReq *msg, void *ctx)
{
	struct stor_daemon *d = ctx;
	const struct stor_rt_chain *ch = NULL;
	struct stor_sync_state *ss;
	int i = find_target(d, msg->target_id);
	unsigned pos = 0;
	char why[160];

	if (i >= 0 && d->routing != NULL)
		ch = stor_rt_chain_of_target(d->routing, msg->target_id, &pos);
	if (i < 0 || d->targets[i] == NULL || ch == NULL || ch->id != msg->chain_id ||
	    ch->version != msg->chain_ver || ch->m[pos].state != SLUICE__TARGET_STATE__TS_SYNCING) {
		snprintf(why, sizeof(why),
			 "target %" PRIu64 " is not syncing here in chain %u v%" PRIu64,
			 msg->target_id, msg->chain_id, msg->chain_ver);
		rpc_reply_error(req, -SLUICE_ECHAINVER, why);
		return;
	}
	ss = &d->sync[i];
	ss->chunks_done = msg->chunks_done;
	ss->chunks_total = msg->chunks_total;
	ss->bytes_done = msg->bytes_done;
	ss->bytes_total = msg->bytes_total;
	if (!msg->finished)
		ss->synced = false; /* a predecessor that started over takes a finish back */
	if (msg->finished && !ss->synced) {
		ss->synced = true;
		log_notice("target %" PRIu64 ": resync finished (chain %u v%" PRIu64 ", %" PRIu64
			   " chunks): reporting up to date",
			   msg->target_id, msg->chain_id, msg->chain_ver, msg->chunks_done);
	}
	Sluice__SyncStatusResp resp = SLUICE__SYNC_STATUS_RESP__INIT;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}
