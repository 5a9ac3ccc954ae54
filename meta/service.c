/*
 * service.c - the meta service's RPC handlers (proto/meta_ops.h) over the store.
 *
 * DESIGN
 * Point reads are tried on the reactor first, memory only (submit_read). Otherwise a
 * handler (reactor thread) wraps its request in a job and submits it to the worker pool;
 * the job's run function (a worker thread) decodes the header, calls the store and builds
 * the response message inside the job; done (reactor thread again) replies and frees the
 * job. The request message stays valid until the reply (rpc.h), so workers read it in
 * place. A full pool queue is answered -EAGAIN at once (bounded queues, STYLE.md rule 8).
 * Responses point into the job (attributes, layouts) or into one heap block per job for
 * variable-size replies (readdir, xattr lists, fsck lines), freed after the reply.
 *
 * Errors are the store's, passed through as the reply status; -EIO (the store failed) is
 * logged here, rate-limited, since it means the server, not the request, has a problem.
 *
 * Threads: handlers and done on the reactor thread, run on the pool's workers (and, for
 * the point reads of submit_read, first on the reactor with no-I/O reads).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "meta/service.h"

LOG_FACILITY("meta-svc");

struct mjob {
	struct worker_job w;
	struct meta_service *svc;
	struct rpc_req *req;
	const ProtobufCMessage *msg;
	int (*run)(struct mjob *j);
	int status;
	ProtobufCMessage *resp;
	union {
		Sluice__AttrResp attr;
		Sluice__OpenResp open;
		Sluice__EmptyResp empty;
		Sluice__ReadlinkResp readlink;
		Sluice__ReaddirResp readdir;
		Sluice__XattrResp xattr;
		Sluice__ListxattrResp list;
		Sluice__LayoutResp layout;
		Sluice__FsckResp fsck;
		Sluice__StatsResp stats;
		Sluice__ClientHeartbeatResp hb;
	} u;
	Sluice__Attr attr_pb;
	Sluice__Layout layout_pb;
	uint32_t part;
	struct meta_creds cr;
	struct meta_reqid rid;
	void *heap; /* one block for variable-size replies, freed after the reply */
};

/* ---- plumbing ---------------------------------------------------------------------------- */

static void job_run(struct worker_job *w)
{
	struct mjob *j = SLUICE_CONTAINER_OF(w, struct mjob, w);

	j->status = j->run(j);
}

static void job_done(struct worker_job *w)
{
	struct mjob *j = SLUICE_CONTAINER_OF(w, struct mjob, w);

	if (j->status == -EIO)
		log_err_rl("%s from %s: the store failed (%s)", rpc_req_op(j->req)->name,
			   rpc_req_peer(j->req), sluice_strerror(j->status));
	rpc_reply(j->req, j->status, j->status ? NULL : j->resp, NULL, 0, NULL, NULL);
	free(j->heap);
	free(j);
}

static void submit(struct meta_service *svc, struct rpc_req *req, const ProtobufCMessage *msg,
		   int (*run)(struct mjob *j))
{
	struct mjob *j;
	int rc;

	if (svc->stopping) {
		rpc_reply(req, -SLUICE_ESHUTDOWN, NULL, NULL, 0, NULL, NULL);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		rpc_reply(req, -ENOMEM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	j->svc = svc;
	j->req = req;
	j->msg = msg;
	j->run = run;
	j->w.run = job_run;
	j->w.done = job_done;
	rc = worker_submit(svc->pool, svc->r, &j->w);
	if (rc) {
		log_warn_rl("%s from %s refused: %s", rpc_req_op(req)->name, rpc_req_peer(req),
			    sluice_strerror(rc));
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
		free(j);
	}
}

/*
 * Point reads (lookup, getattr, readlink, getxattr, get_layout) first run right here on the
 * reactor with memory-only reads (meta_db_reads_no_io): a stat served from the memtables
 * or the block cache then costs no thread handoff at all, where the pool costs two (a
 * worker wake-up and a reactor wake-up), which on a small machine were most of its time.
 * A read that would need a file fails with -EAGAIN and the call goes to the pool as
 * before, so the reactor never waits for the disk. Each of these bodies is a few point
 * gets: bounded work. Readdir and listxattr scan and stay on the pool.
 */
static void submit_read(struct meta_service *svc, struct rpc_req *req, const ProtobufCMessage *msg,
			int (*run)(struct mjob *j))
{
	struct mjob j = {.svc = svc, .req = req, .msg = msg};

	if (svc->stopping) {
		rpc_reply(req, -SLUICE_ESHUTDOWN, NULL, NULL, 0, NULL, NULL);
		return;
	}
	meta_db_reads_no_io(true);
	j.status = run(&j);
	meta_db_reads_no_io(false);
	if (j.status == -EAGAIN) {
		free(j.heap);
		submit(svc, req, msg, run);
		return;
	}
	if (j.status == -EIO)
		log_err_rl("%s from %s: the store failed (%s)", rpc_req_op(req)->name,
			   rpc_req_peer(req), sluice_strerror(j.status));
	/* The response is packed by rpc_reply, so it may point into this stack job. */
	rpc_reply(req, j.status, j.status ? NULL : j.resp, NULL, 0, NULL, NULL);
	free(j.heap);
}

/* Credentials and request id of the header: -EINVAL when missing or oversized. */
static int hdr(struct mjob *j, const Sluice__ReqHdr *h)
{
	if (!h || !h->creds || h->creds->n_gids > SLUICE_META_GROUPS_MAX)
		return -EINVAL;
	j->part = h->partition;
	j->cr.uid = h->creds->uid;
	j->cr.gid = h->creds->gid;
	j->cr.ngids = (uint32_t)h->creds->n_gids;
	if (h->creds->n_gids)
		memcpy(j->cr.gids, h->creds->gids, h->creds->n_gids * sizeof(uint32_t));
	j->rid.client = h->client_id;
	j->rid.id = h->request_id;
	return 0;
}

static void layout_pb(const struct layout *l, Sluice__Layout *pb)
{
	sluice__layout__init(pb);
	pb->chain_table_id = l->chain_table_id;
	pb->chunk_size = l->chunk_size;
	pb->stripe = l->stripe;
	pb->chain_base = l->chain_base;
	pb->seed = l->seed;
}

static void attr_pb(const struct meta_attr *a, Sluice__Attr *pb, Sluice__Layout *l)
{
	sluice__attr__init(pb);
	pb->ino = a->ino;
	pb->type = (Sluice__FileType)a->type;
	pb->mode = a->mode;
	pb->uid = a->uid;
	pb->gid = a->gid;
	pb->nlink = a->nlink;
	pb->size = a->size;
	pb->atime_ns = a->atime_ns;
	pb->mtime_ns = a->mtime_ns;
	pb->ctime_ns = a->ctime_ns;
	pb->btime_ns = a->btime_ns;
	pb->rdev = a->rdev;
	pb->parent = a->parent;
	if (a->has_layout) {
		layout_pb(&a->layout, l);
		pb->layout = l;
	}
}

static void reply_attr(struct mjob *j, const struct meta_attr *a)
{
	sluice__attr_resp__init(&j->u.attr);
	attr_pb(a, &j->attr_pb, &j->layout_pb);
	j->u.attr.attr = &j->attr_pb;
	j->resp = &j->u.attr.base;
}

static void reply_open(struct mjob *j, const struct meta_open_result *o)
{
	sluice__open_resp__init(&j->u.open);
	attr_pb(&o->attr, &j->attr_pb, &j->layout_pb);
	j->u.open.attr = &j->attr_pb;
	j->u.open.session_id = o->session_id;
	j->u.open.created = o->created;
	j->resp = &j->u.open.base;
}

static int reply_empty(struct mjob *j, int rc)
{
	sluice__empty_resp__init(&j->u.empty);
	j->resp = &j->u.empty.base;
	return rc;
}

#define REQ(type) const type *m = (const type *)(const void *)j->msg

/* ---- names and attributes ---------------------------------------------------------------- */

static int run_lookup(struct mjob *j)
{
	REQ(Sluice__LookupReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_lookup(j->svc->store, j->part, &j->cr, m->parent, m->name.data,
				 m->name.len, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_getattr(struct mjob *j)
{
	REQ(Sluice__GetattrReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_getattr(j->svc->store, j->part, &j->cr, m->ino, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_setattr(struct mjob *j)
{
	REQ(Sluice__SetattrReq);
	struct meta_setattr sa = {m->mask, m->mode,	m->uid,	     m->gid,
				  m->size, m->atime_ns, m->mtime_ns, m->session_id};
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_setattr(j->svc->store, j->part, &j->cr, &j->rid, m->ino, &sa, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_create(struct mjob *j)
{
	REQ(Sluice__CreateReq);
	struct meta_open_result o;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_create(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				 m->name.len, m->mode, m->flags, &o);
	if (rc == 0)
		reply_open(j, &o);
	return rc;
}

static int run_mkdir(struct mjob *j)
{
	REQ(Sluice__MkdirReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_mkdir(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				m->name.len, m->mode, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_mknod(struct mjob *j)
{
	REQ(Sluice__MknodReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_mknod(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				m->name.len, (uint32_t)m->type, m->mode, m->rdev, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_symlink(struct mjob *j)
{
	REQ(Sluice__SymlinkReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_symlink(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				  m->name.len, m->target.data, m->target.len, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_readlink(struct mjob *j)
{
	REQ(Sluice__ReadlinkReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0) {
		j->heap = malloc(SLUICE_META_SYMLINK_MAX);
		rc = j->heap ? 0 : -ENOMEM;
	}
	if (rc == 0)
		rc = meta_readlink(j->svc->store, j->part, &j->cr, m->ino, j->heap,
				   SLUICE_META_SYMLINK_MAX);
	if (rc < 0)
		return rc;
	sluice__readlink_resp__init(&j->u.readlink);
	j->u.readlink.target.data = j->heap;
	j->u.readlink.target.len = (size_t)rc;
	j->resp = &j->u.readlink.base;
	return 0;
}

static int run_link(struct mjob *j)
{
	REQ(Sluice__LinkReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_link(j->svc->store, j->part, &j->cr, &j->rid, m->ino, m->new_parent,
			       m->new_name.data, m->new_name.len, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_unlink(struct mjob *j)
{
	REQ(Sluice__RemoveReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_unlink(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				 m->name.len);
	return reply_empty(j, rc);
}

static int run_rmdir(struct mjob *j)
{
	REQ(Sluice__RemoveReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_rmdir(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				m->name.len);
	return reply_empty(j, rc);
}

static int run_rmtree(struct mjob *j)
{
	REQ(Sluice__RemoveReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_rmtree(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				 m->name.len);
	return reply_empty(j, rc);
}

static int run_rename(struct mjob *j)
{
	REQ(Sluice__RenameReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_rename(j->svc->store, j->part, &j->cr, &j->rid, m->parent, m->name.data,
				 m->name.len, m->new_parent, m->new_name.data, m->new_name.len,
				 m->flags);
	return reply_empty(j, rc);
}

/* ---- readdir ------------------------------------------------------------------------------ */

struct rd_heap {
	Sluice__DirEntry **ptrs;
	Sluice__DirEntry *ents;
	Sluice__Attr *attrs;
	Sluice__Layout *layouts;
	uint8_t *names; /* SLUICE_NAME_MAX bytes per entry */
	uint32_t n, max;
};

static int rd_add(void *arg, const void *name, size_t nlen, uint64_t ino, uint32_t type,
		  const struct meta_attr *attr)
{
	struct rd_heap *h = arg;
	Sluice__DirEntry *e = &h->ents[h->n];

	if (h->n == h->max)
		return 1;
	sluice__dir_entry__init(e);
	memcpy(h->names + (size_t)h->n * SLUICE_NAME_MAX, name, nlen);
	e->name.data = h->names + (size_t)h->n * SLUICE_NAME_MAX;
	e->name.len = nlen;
	e->ino = ino;
	e->type = (Sluice__FileType)type;
	if (attr) {
		attr_pb(attr, &h->attrs[h->n], &h->layouts[h->n]);
		e->attr = &h->attrs[h->n];
	}
	h->ptrs[h->n++] = e;
	return 0;
}

static int run_readdir(struct mjob *j)
{
	REQ(Sluice__ReaddirReq);
	uint32_t max = m->max_entries ? m->max_entries : SLUICE_META_READDIR_MAX;
	struct rd_heap *h;
	size_t per = sizeof(void *) + sizeof(Sluice__DirEntry) + SLUICE_NAME_MAX +
		     (m->plus ? sizeof(Sluice__Attr) + sizeof(Sluice__Layout) : 0);
	bool eof = false;
	int rc = hdr(j, m->hdr);

	if (rc)
		return rc;
	if (max > SLUICE_META_READDIR_MAX)
		return -EINVAL;
	j->heap = h = calloc(1, sizeof(*h) + per * max);
	if (!h)
		return -ENOMEM;
	/* Carve the block: pointers, entries, attributes, layouts, names (alignment ok: each
	 * array's element size is a multiple of 8 except names, which come last). */
	h->ptrs = (Sluice__DirEntry **)(h + 1);
	h->ents = (Sluice__DirEntry *)(h->ptrs + max);
	h->attrs = (Sluice__Attr *)(h->ents + max);
	h->layouts = (Sluice__Layout *)(h->attrs + (m->plus ? max : 0));
	h->names = (uint8_t *)(h->layouts + (m->plus ? max : 0));
	h->max = max;
	rc = meta_readdir(j->svc->store, j->part, &j->cr, m->ino, m->cursor.data, m->cursor.len,
			  max, m->plus, rd_add, h, &eof);
	if (rc < 0)
		return rc;
	sluice__readdir_resp__init(&j->u.readdir);
	j->u.readdir.entries = h->ptrs;
	j->u.readdir.n_entries = h->n;
	j->u.readdir.eof = eof;
	if (h->n)
		j->u.readdir.cursor = h->ents[h->n - 1].name;
	else
		j->u.readdir.cursor = m->cursor;
	j->resp = &j->u.readdir.base;
	return 0;
}

/* ---- xattrs ------------------------------------------------------------------------------- */

static int run_getxattr(struct mjob *j)
{
	REQ(Sluice__XattrReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0) {
		j->heap = malloc(SLUICE_META_XATTR_VALUE_MAX);
		rc = j->heap ? 0 : -ENOMEM;
	}
	if (rc == 0)
		rc = meta_getxattr(j->svc->store, j->part, &j->cr, m->ino, m->name.data,
				   m->name.len, j->heap, SLUICE_META_XATTR_VALUE_MAX);
	if (rc < 0)
		return rc;
	sluice__xattr_resp__init(&j->u.xattr);
	j->u.xattr.value.data = j->heap;
	j->u.xattr.value.len = (size_t)rc;
	j->resp = &j->u.xattr.base;
	return 0;
}

static int run_setxattr(struct mjob *j)
{
	REQ(Sluice__SetxattrReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_setxattr(j->svc->store, j->part, &j->cr, &j->rid, m->ino, m->name.data,
				   m->name.len, m->value.data, m->value.len, m->flags);
	return reply_empty(j, rc);
}

static int run_removexattr(struct mjob *j)
{
	REQ(Sluice__XattrReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_removexattr(j->svc->store, j->part, &j->cr, &j->rid, m->ino, m->name.data,
				      m->name.len);
	return reply_empty(j, rc);
}

static int run_listxattr(struct mjob *j)
{
	REQ(Sluice__XattrReq);
	/* names, then one ProtobufCBinaryData per name (a name takes at least 2 bytes) */
	size_t cap = SLUICE_META_XATTR_LIST_MAX, maxn = cap / 2;
	ProtobufCBinaryData *names;
	char *buf;
	size_t n = 0;
	int rc = hdr(j, m->hdr);

	if (rc)
		return rc;
	j->heap = malloc(cap + maxn * sizeof(*names));
	if (!j->heap)
		return -ENOMEM;
	buf = j->heap;
	names = (ProtobufCBinaryData *)(void *)(buf + cap);
	rc = meta_listxattr(j->svc->store, j->part, &j->cr, m->ino, buf, cap);
	if (rc < 0)
		return rc;
	for (size_t at = 0; at < (size_t)rc && n < maxn;) {
		size_t len = strlen(buf + at);

		names[n].data = (uint8_t *)buf + at;
		names[n].len = len;
		n++;
		at += len + 1;
	}
	sluice__listxattr_resp__init(&j->u.list);
	j->u.list.names = names;
	j->u.list.n_names = n;
	j->resp = &j->u.list.base;
	return 0;
}

/* ---- open files, layouts -------------------------------------------------------------------- */

static int run_open(struct mjob *j)
{
	REQ(Sluice__OpenReq);
	struct meta_open_result o;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_open(j->svc->store, j->part, &j->cr, &j->rid, m->ino, m->flags, &o);
	if (rc == 0)
		reply_open(j, &o);
	return rc;
}

static int run_length(struct mjob *j, bool close)
{
	REQ(Sluice__LengthReq);
	struct meta_attr a;
	int rc = hdr(j, m->hdr);

	if (rc == 0 && close)
		rc = meta_close(j->svc->store, j->part, &j->cr, &j->rid, m->ino, m->session_id,
				m->length, m->exact, &a);
	else if (rc == 0)
		rc = meta_report_length(j->svc->store, j->part, &j->cr, &j->rid, m->ino,
					m->session_id, m->length, m->exact, &a);
	if (rc == 0)
		reply_attr(j, &a);
	return rc;
}

static int run_close(struct mjob *j)
{
	return run_length(j, true);
}

static int run_report_length(struct mjob *j)
{
	return run_length(j, false);
}

static int run_get_layout(struct mjob *j)
{
	REQ(Sluice__LayoutReq);
	struct layout l;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_get_layout(j->svc->store, j->part, &j->cr, m->ino, &l);
	if (rc)
		return rc;
	sluice__layout_resp__init(&j->u.layout);
	layout_pb(&l, &j->layout_pb);
	j->u.layout.layout = &j->layout_pb;
	j->resp = &j->u.layout.base;
	return 0;
}

static int run_set_layout(struct mjob *j)
{
	REQ(Sluice__LayoutReq);
	struct layout l;
	int rc = hdr(j, m->hdr);

	if (rc == 0 && !m->layout)
		rc = -EINVAL;
	if (rc)
		return rc;
	l = (struct layout){m->layout->chain_table_id, m->layout->chunk_size, m->layout->stripe,
			    m->layout->chain_base, m->layout->seed};
	rc = meta_set_layout(j->svc->store, j->part, &j->cr, &j->rid, m->ino, &l);
	return reply_empty(j, rc);
}

/* ---- clients, checks ---------------------------------------------------------------------- */

static int run_client_heartbeat(struct mjob *j)
{
	REQ(Sluice__ClientHeartbeatReq);
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_client_heartbeat(j->svc->store, j->rid.client, m->acked_request_id);
	if (rc)
		return rc;
	sluice__client_heartbeat_resp__init(&j->u.hb);
	j->u.hb.session_timeout_ms = j->svc->session_timeout_ms;
	j->resp = &j->u.hb.base;
	return 0;
}

struct fsck_heap {
	char *lines[SLUICE_META_FSCK_REPORT_MAX];
	char text[SLUICE_META_FSCK_REPORT_MAX][256];
	size_t n;
};

static void fsck_line(void *arg, const char *line)
{
	struct fsck_heap *h = arg;

	if (h->n == SLUICE_META_FSCK_REPORT_MAX)
		return;
	snprintf(h->text[h->n], sizeof(h->text[h->n]), "%s", line);
	h->lines[h->n] = h->text[h->n];
	h->n++;
}

static int run_fsck(struct mjob *j)
{
	REQ(Sluice__FsckReq);
	struct meta_fsck_report r;
	struct fsck_heap *h;
	int rc = hdr(j, m->hdr);

	if (rc == 0 && j->cr.uid != 0)
		rc = -EPERM; /* a full scan: administrators only */
	if (rc)
		return rc;
	j->heap = h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = meta_fsck(j->svc->store, &r, fsck_line, h);
	if (rc)
		return rc;
	sluice__fsck_resp__init(&j->u.fsck);
	j->u.fsck.inodes = r.inodes;
	j->u.fsck.dentries = r.dentries;
	j->u.fsck.sessions = r.sessions;
	j->u.fsck.gc_queued = r.gc_queued;
	j->u.fsck.dangling_dentries = r.dangling_dentries;
	j->u.fsck.nlink_mismatches = r.nlink_mismatches;
	j->u.fsck.orphans = r.orphans;
	j->u.fsck.other_problems = r.other;
	j->u.fsck.problems = h->lines;
	j->u.fsck.n_problems = h->n;
	j->resp = &j->u.fsck.base;
	return 0;
}

static int run_stats(struct mjob *j)
{
	REQ(Sluice__StatsReq);
	struct meta_stats st;
	int rc = hdr(j, m->hdr);

	if (rc == 0)
		rc = meta_store_stats(j->svc->store, &st);
	if (rc)
		return rc;
	sluice__stats_resp__init(&j->u.stats);
	j->u.stats.gc_queued = st.gc_queued;
	j->u.stats.gc_removed = st.gc_removed;
	j->u.stats.gc_failures = st.gc_failures;
	j->u.stats.sessions_expired = st.sessions_expired;
	j->u.stats.clients_live = st.clients_live;
	j->u.stats.txn_retries = st.txn_retries;
	j->u.stats.idempotent_replays = st.replays;
	j->resp = &j->u.stats.base;
	return 0;
}

/* ---- handlers (reactor thread) ----------------------------------------------------------------
 */

#define HANDLER(op, Req)                                                 \
	void meta_h_##op(struct rpc_req *req, const Req *msg, void *ctx) \
	{                                                                \
		submit(ctx, req, &msg->base, run_##op);                  \
	}

#define READ_HANDLER(op, Req)                                            \
	void meta_h_##op(struct rpc_req *req, const Req *msg, void *ctx) \
	{                                                                \
		submit_read(ctx, req, &msg->base, run_##op);             \
	}

READ_HANDLER(lookup, Sluice__LookupReq)
READ_HANDLER(getattr, Sluice__GetattrReq)
READ_HANDLER(readlink, Sluice__ReadlinkReq)
READ_HANDLER(getxattr, Sluice__XattrReq)
READ_HANDLER(get_layout, Sluice__LayoutReq)
HANDLER(setattr, Sluice__SetattrReq)
HANDLER(create, Sluice__CreateReq)
HANDLER(mkdir, Sluice__MkdirReq)
HANDLER(mknod, Sluice__MknodReq)
HANDLER(symlink, Sluice__SymlinkReq)
HANDLER(link, Sluice__LinkReq)
HANDLER(unlink, Sluice__RemoveReq)
HANDLER(rmdir, Sluice__RemoveReq)
HANDLER(rename, Sluice__RenameReq)
HANDLER(readdir, Sluice__ReaddirReq)
HANDLER(setxattr, Sluice__SetxattrReq)
HANDLER(listxattr, Sluice__XattrReq)
HANDLER(removexattr, Sluice__XattrReq)
HANDLER(open, Sluice__OpenReq)
HANDLER(close, Sluice__LengthReq)
HANDLER(report_length, Sluice__LengthReq)
HANDLER(set_layout, Sluice__LayoutReq)
HANDLER(client_heartbeat, Sluice__ClientHeartbeatReq)
HANDLER(fsck, Sluice__FsckReq)
HANDLER(rmtree, Sluice__RemoveReq)
HANDLER(stats, Sluice__StatsReq)

/* No I/O: the store's counters and the capacity from the last routing table. */
void meta_h_statfs(struct rpc_req *req, const Sluice__StatfsReq *msg, void *ctx)
{
	struct meta_service *svc = ctx;
	Sluice__StatfsResp resp = SLUICE__STATFS_RESP__INIT;
	struct meta_creds cr = {0};
	struct meta_statfs st;
	int rc = -EINVAL;

	if (msg->hdr && msg->hdr->creds && msg->hdr->creds->n_gids <= SLUICE_META_GROUPS_MAX) {
		cr.uid = msg->hdr->creds->uid;
		cr.gid = msg->hdr->creds->gid;
		rc = meta_statfs(svc->store, msg->hdr->partition, &cr, &st);
	}
	if (rc) {
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
		return;
	}
	resp.capacity_bytes = svc->cap_bytes;
	resp.used_bytes = svc->used_bytes;
	resp.free_bytes = svc->cap_bytes > svc->used_bytes ? svc->cap_bytes - svc->used_bytes : 0;
	resp.files = st.files;
	resp.files_free = st.files_free;
	resp.block_size = 4096;
	resp.name_max = st.name_max;
	resp.targets = svc->ntargets;
	resp.routing_version = svc->routing_version;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

RPC_DEFINE_HANDLERS(meta, META_OPS)
