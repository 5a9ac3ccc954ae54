/*
 * test_meta_crash.c - SIGKILL sluice-meta under concurrent namespace load, again and again,
 * and check after every restart that the namespace is exactly what the clients were told.
 *
 * A sluice-mgmtd and a sluice-meta process (meta.sync=false: a killed process loses nothing
 * the kernel has, and power loss is not what this tests; GC on with a short delay and no
 * chunk removal, so deletions finish - or are cut - while the load runs). NCLIENTS clients,
 * each its own client id and connection on its own reactor thread, run NSLOTS slots each
 * (NCLIENTS * NSLOTS requests in flight). A slot owns NNAMES names ("c1.s3.n2") that it
 * moves among NDIRS shared directories with CREATE, MKDIR, RENAME (within and across
 * directories, over an existing file too, directories included), LINK, UNLINK and RMDIR,
 * one request at a time, so its part of the namespace has an exact model; all slots share
 * the directories and their locks.
 *
 * Each round: run the load for a random 100-600 ms, SIGKILL the server, let the calls in
 * flight fail, restart it on the same port, then check:
 *   - every acknowledged operation is visible: the four directories (READDIR plus) hold
 *     exactly the names the models hold, with the same inodes, types and link counts, and
 *     nothing else;
 *   - an operation in flight at the kill is all or nothing: the slot's names match either
 *     the model before it or the model after it (a rename shows exactly one of the names);
 *   - request ids are idempotent across the crash: the slot's last acknowledged request,
 *     sent again with its id, returns its first result (same inode) and changes nothing;
 *     the in-flight request sent again with its id succeeds, returning the inode already
 *     created when it had been applied;
 *   - FSCK reports a clean store (no dangling dentry, orphan, nlink mismatch...).
 * At the end the server stops cleanly on SIGTERM.
 *
 * Usage: test_meta_crash SLUICE_MGMTD SLUICE_META [ROUNDS [SEED]] (default 20 rounds, seed
 * from the clock; it is printed: the op choices replay, the kill timing does not).
 * Exit 0 pass, 1 fail.
 *
 * Threads: main drives rounds and checks while every slot is idle; the slots of a client
 * run on its reactor thread. The models are handed between them by the active counts
 * (atomics) and run_on_reactor.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "common/layout.h"
#include "common/net/net.h"
#include "tests/lib/testlib.h"
#include "tests/meta/meta_procs.h"

#define NCLIENTS 4
#define NSLOTS	 8
#define NNAMES	 4
#define NDIRS	 4
#define ENTS_MAX 1024

enum op_kind { OP_CREATE, OP_MKDIR, OP_RENAME, OP_LINK, OP_UNLINK, OP_RMDIR, OP_KINDS };

static const char *const op_names[] = {"create", "mkdir", "rename", "link", "unlink", "rmdir"};

/* One operation of a slot: on name/dir, to name2/dir2 (rename, link). */
struct op {
	enum op_kind kind;
	int name, dir, name2, dir2;
	uint64_t ino; /* rename/unlink/rmdir/link: the source inode; result of create/mkdir */
	uint64_t reqid;
};

struct obj {
	uint64_t ino;
	uint32_t type, nlink; /* nlink 0: free entry */
};

/* A slot's part of the namespace. */
struct model {
	int dir[NNAMES]; /* -1: the name is nowhere */
	int obj[NNAMES];
	struct obj objs[NNAMES];
};

struct client;

struct slot {
	struct client *c;
	int idx;
	struct model m;
	struct op cur;	/* in flight (or uncertain) */
	bool uncertain; /* cur failed with the server killed: applied or not, unknown */
	struct op last; /* last acknowledged */
	bool has_last;
	uint64_t rng;
	uint64_t acked;
};

struct client {
	int idx;
	uint64_t id;
	struct test_client tc;
	struct slot slots[NSLOTS];
	uint64_t next_req;
	bool stop;	     /* reactor thread */
	atomic_int active;   /* slots with a call in flight */
	atomic_int failures; /* unexpected replies while the server was up */
	char failure[256];   /* the first one */
};

static char dir_[128];
static struct mp_daemon mgmtd, meta;
static struct client clients[NCLIENTS];
static uint64_t dirs[NDIRS];
static atomic_bool killing;
static const struct rpc_call_opts load_opts = {.timeout_ms = 30000, .retries = 0};
static const struct rpc_call_opts check_opts = {.timeout_ms = 30000, .retries = 3};
static uint64_t stat_uncertain_applied, stat_uncertain_not;

static void fail_exit(const char *what)
{
	struct mp_daemon *all[] = {&meta, &mgmtd};

	fprintf(stderr, "test_meta_crash: %s (logs in %s)\n", what, dir_);
	mp_kill_all(all, SLUICE_ARRAY_SIZE(all));
	exit(1);
}

static void name_of(const struct slot *s, int name, char *buf, size_t len)
{
	snprintf(buf, len, "c%d.s%d.n%d", s->c->idx, s->idx, name);
}

/* ---- the model ------------------------------------------------------------------------- */

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < NNAMES; i++)
		m->dir[i] = m->obj[i] = -1;
}

static int obj_alloc(struct model *m)
{
	for (int i = 0; i < NNAMES; i++)
		if (m->objs[i].nlink == 0)
			return i;
	ASSERT(!"a slot has more objects than names");
	return -1;
}

static void name_drop(struct model *m, int name)
{
	struct obj *o = &m->objs[m->obj[name]];

	o->nlink = o->type == SLUICE__FILE_TYPE__FT_DIRECTORY ? 0 : o->nlink - 1;
	m->dir[name] = m->obj[name] = -1;
}

/* Apply a successful op (create/mkdir with o->ino set). */
static void model_apply(struct model *m, const struct op *o)
{
	int k;

	switch (o->kind) {
	case OP_CREATE:
	case OP_MKDIR:
		k = obj_alloc(m);
		m->objs[k] = (struct obj){o->ino,
					  o->kind == OP_MKDIR ? SLUICE__FILE_TYPE__FT_DIRECTORY
							      : SLUICE__FILE_TYPE__FT_REGULAR,
					  o->kind == OP_MKDIR ? 2u : 1u};
		m->dir[o->name] = o->dir;
		m->obj[o->name] = k;
		break;
	case OP_UNLINK:
	case OP_RMDIR:
		name_drop(m, o->name);
		break;
	case OP_LINK:
		k = m->obj[o->name];
		m->objs[k].nlink++;
		m->dir[o->name2] = o->dir2;
		m->obj[o->name2] = k;
		break;
	case OP_RENAME:
		k = m->obj[o->name];
		if (o->name2 != o->name && m->dir[o->name2] >= 0) {
			if (m->obj[o->name2] == k)
				break; /* two links of one inode: rename does nothing */
			name_drop(m, o->name2);
		}
		m->dir[o->name] = m->obj[o->name] = -1;
		m->dir[o->name2] = o->dir2;
		m->obj[o->name2] = k;
		break;
	default:
		ASSERT(!"bad op");
	}
}

static int pick(uint64_t *rng, int n)
{
	return (int)(layout_splitmix64_next(rng) % (uint64_t)n);
}

/* A random op valid in the slot's model (false if the one drawn does not fit). */
static bool draw_op(struct slot *s, struct op *o)
{
	static const int weights[OP_KINDS] = {25, 10, 30, 10, 20, 5};
	int w = pick(&s->rng, 100), kind = 0;
	const struct model *m = &s->m;

	while (w >= weights[kind])
		w -= weights[kind++];
	memset(o, 0, sizeof(*o));
	o->kind = (enum op_kind)kind;
	o->name = pick(&s->rng, NNAMES);
	o->dir = pick(&s->rng, NDIRS);
	o->name2 = pick(&s->rng, NNAMES);
	o->dir2 = pick(&s->rng, NDIRS);
	switch (o->kind) {
	case OP_CREATE:
	case OP_MKDIR:
		return m->dir[o->name] < 0;
	case OP_UNLINK:
	case OP_RMDIR:
		if (m->dir[o->name] < 0 ||
		    (m->objs[m->obj[o->name]].type == SLUICE__FILE_TYPE__FT_DIRECTORY) !=
			    (o->kind == OP_RMDIR))
			return false;
		o->dir = m->dir[o->name];
		o->ino = m->objs[m->obj[o->name]].ino;
		return true;
	case OP_LINK:
		if (m->dir[o->name] < 0 ||
		    m->objs[m->obj[o->name]].type == SLUICE__FILE_TYPE__FT_DIRECTORY ||
		    m->dir[o->name2] >= 0)
			return false;
		o->dir = m->dir[o->name];
		o->ino = m->objs[m->obj[o->name]].ino;
		return true;
	case OP_RENAME:
		if (m->dir[o->name] < 0)
			return false;
		o->dir = m->dir[o->name];
		o->ino = m->objs[m->obj[o->name]].ino;
		if (o->name2 == o->name)
			return o->dir2 != o->dir; /* the same name into another directory */
		if (m->dir[o->name2] < 0)
			return true;
		/* over an existing name (where it is): files over files only */
		o->dir2 = m->dir[o->name2];
		return m->objs[m->obj[o->name]].type == SLUICE__FILE_TYPE__FT_REGULAR &&
		       m->objs[m->obj[o->name2]].type == SLUICE__FILE_TYPE__FT_REGULAR;
	default:
		return false;
	}
}

/* ---- requests --------------------------------------------------------------------------- */

union req_any {
	Sluice__CreateReq create;
	Sluice__MkdirReq mkdir;
	Sluice__RenameReq rename;
	Sluice__LinkReq link;
	Sluice__RemoveReq remove;
};

struct req_buf {
	union req_any u;
	struct mp_hdr hb;
	char n1[32], n2[32];
};

static ProtobufCBinaryData bin(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

/* Build o's request in b; returns the op number. */
static uint16_t build(const struct slot *s, const struct op *o, struct req_buf *b)
{
	Sluice__ReqHdr *h = mp_hdr(&b->hb, s->c->id, o->reqid);

	name_of(s, o->name, b->n1, sizeof(b->n1));
	name_of(s, o->name2, b->n2, sizeof(b->n2));
	switch (o->kind) {
	case OP_CREATE:
		sluice__create_req__init(&b->u.create);
		b->u.create.hdr = h;
		b->u.create.parent = dirs[o->dir];
		b->u.create.name = bin(b->n1);
		b->u.create.mode = 0644;
		b->u.create.flags = O_CREAT | O_EXCL | O_RDONLY; /* no write session */
		return meta_OP_CREATE;
	case OP_MKDIR:
		sluice__mkdir_req__init(&b->u.mkdir);
		b->u.mkdir.hdr = h;
		b->u.mkdir.parent = dirs[o->dir];
		b->u.mkdir.name = bin(b->n1);
		b->u.mkdir.mode = 0755;
		return meta_OP_MKDIR;
	case OP_RENAME:
		sluice__rename_req__init(&b->u.rename);
		b->u.rename.hdr = h;
		b->u.rename.parent = dirs[o->dir];
		b->u.rename.name = bin(b->n1);
		b->u.rename.new_parent = dirs[o->dir2];
		b->u.rename.new_name = bin(b->n2);
		return meta_OP_RENAME;
	case OP_LINK:
		sluice__link_req__init(&b->u.link);
		b->u.link.hdr = h;
		b->u.link.ino = o->ino;
		b->u.link.new_parent = dirs[o->dir2];
		b->u.link.new_name = bin(b->n2);
		return meta_OP_LINK;
	case OP_UNLINK:
	case OP_RMDIR:
		sluice__remove_req__init(&b->u.remove);
		b->u.remove.hdr = h;
		b->u.remove.parent = dirs[o->dir];
		b->u.remove.name = bin(b->n1);
		return o->kind == OP_UNLINK ? meta_OP_UNLINK : meta_OP_RMDIR;
	default:
		ASSERT(!"bad op");
		return 0;
	}
}

/* The inode a successful reply names (create, mkdir, link), else 0. */
static uint64_t reply_ino(const struct op *o, const struct rpc_result *res)
{
	const Sluice__Attr *a = NULL;

	if (o->kind == OP_CREATE)
		a = ((const Sluice__OpenResp *)(const void *)res->resp)->attr;
	else if (o->kind == OP_MKDIR || o->kind == OP_LINK)
		a = ((const Sluice__AttrResp *)(const void *)res->resp)->attr;
	return a ? a->ino : 0;
}

/* ---- the load (client reactor threads) -------------------------------------------------- */

static void slot_next(struct slot *s);

static void slot_fail(struct slot *s, const char *what, int rc)
{
	struct client *c = s->c;

	if (atomic_fetch_add(&c->failures, 1) == 0)
		snprintf(c->failure, sizeof(c->failure), "slot c%d.s%d: %s %s: %s (%d)", c->idx,
			 s->idx, what, op_names[s->cur.kind], sluice_strerror(rc), rc);
}

static void op_done(struct rpc_result *res, void *arg)
{
	struct slot *s = arg;
	int rc = res->status;
	uint64_t ino = rc == 0 ? reply_ino(&s->cur, res) : 0;

	rpc_result_release(res);
	if (rc == 0) {
		if (s->cur.kind == OP_CREATE || s->cur.kind == OP_MKDIR)
			s->cur.ino = ino;
		else if (s->cur.kind == OP_LINK && ino != s->cur.ino)
			slot_fail(s, "wrong inode from", -EINVAL);
		model_apply(&s->m, &s->cur);
		s->last = s->cur;
		s->has_last = true;
		s->acked++;
		s->cur.kind = OP_KINDS; /* draw the next one */
	} else if (atomic_load(&killing)) {
		s->uncertain = true; /* the server went away: applied or not, we do not know */
		atomic_fetch_sub(&s->c->active, 1);
		return;
	} else if (rc != -EAGAIN) {
		slot_fail(s, "unexpected reply to", rc);
		s->uncertain = true;
		atomic_fetch_sub(&s->c->active, 1);
		return;
	}
	/* -EAGAIN (too many conflicts) changed nothing: slot_next sends cur again */
	slot_next(s);
}

static void slot_send(struct slot *s)
{
	struct req_buf b;
	uint16_t op = build(s, &s->cur, &b);
	int rc = rpc_call(s->c->tc.rpc, meta.uri, &meta_service_desc, op, &b.u.create.base,
			  &load_opts, op_done, s, NULL);

	if (rc) {
		slot_fail(s, "cannot send", rc);
		s->uncertain = true; /* never sent: a retry in the check is just the op */
		atomic_fetch_sub(&s->c->active, 1);
	}
}

static void slot_next(struct slot *s)
{
	if (s->c->stop) {
		atomic_fetch_sub(&s->c->active, 1);
		return;
	}
	if (s->cur.kind == OP_KINDS) {
		while (!draw_op(s, &s->cur))
			;
		s->cur.reqid = ++s->c->next_req;
	}
	slot_send(s);
}

static void start_client(void *arg)
{
	struct client *c = arg;

	c->stop = false;
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &c->slots[i];

		ASSERT(!s->uncertain);
		s->cur.kind = OP_KINDS; /* draw a fresh op */
		atomic_fetch_add(&c->active, 1);
		slot_next(s);
	}
}

static void stop_client(void *arg)
{
	((struct client *)arg)->stop = true;
}

/* ---- checks (main thread, every slot idle) ---------------------------------------------- */

struct ent {
	char name[32];
	int dir;
	uint64_t ino;
	uint32_t type, nlink;
	bool matched;
};

static struct ent ents[ENTS_MAX];
static int nents;

static void read_dirs(void)
{
	nents = 0;
	for (int d = 0; d < NDIRS; d++) {
		char cursor[64] = "";
		bool eof = false;

		while (!eof) {
			Sluice__ReaddirReq req = SLUICE__READDIR_REQ__INIT;
			struct rpc_result res = {0};
			struct mp_hdr hb;
			int rc;

			req.hdr = mp_hdr(&hb, 0, 0);
			req.ino = dirs[d];
			req.cursor = bin(cursor);
			req.plus = true;
			rc = metac_readdir(clients[0].tc.rpc, meta.uri, &req, &check_opts, &res);
			if (rc) {
				fprintf(stderr, "readdir: %s\n", sluice_strerror(rc));
				fail_exit("readdir failed");
			}
			const Sluice__ReaddirResp *r = (const void *)res.resp;

			for (size_t i = 0; i < r->n_entries && nents < ENTS_MAX; i++) {
				const Sluice__DirEntry *e = r->entries[i];
				struct ent *x = &ents[nents++];

				snprintf(x->name, sizeof(x->name), "%.*s", (int)e->name.len,
					 (const char *)e->name.data);
				snprintf(cursor, sizeof(cursor), "%s", x->name);
				x->dir = d;
				x->ino = e->ino;
				x->type = (uint32_t)e->type;
				x->nlink = e->attr ? e->attr->nlink : 0;
				x->matched = false;
			}
			eof = r->eof || r->n_entries == 0;
			rpc_result_release(&res);
		}
	}
}

/* Whether the directories show exactly model m for slot s's names (created inodes not yet
 * in m - wild - match any inode: the in-flight create/mkdir whose reply was lost). Marks the
 * matching entries when mark. */
static bool matches(const struct slot *s, const struct model *m, int wild_name, bool mark)
{
	int seen = 0;

	for (int n = 0; n < NNAMES; n++) {
		char name[32];

		name_of(s, n, name, sizeof(name));
		for (int i = 0; i < nents; i++) {
			const struct ent *e = &ents[i];
			const struct obj *o;

			if (strcmp(e->name, name) != 0)
				continue;
			seen++;
			o = m->dir[n] >= 0 ? &m->objs[m->obj[n]] : NULL;
			if (m->dir[n] != e->dir)
				return false;
			if (e->type != o->type || e->nlink != o->nlink)
				return false;
			if (n != wild_name && e->ino != o->ino)
				return false;
		}
		if (m->dir[n] >= 0 && seen == 0)
			return false;
		seen = 0;
	}
	for (int n = 0; mark && n < NNAMES; n++) {
		char name[32];

		name_of(s, n, name, sizeof(name));
		for (int i = 0; i < nents; i++)
			if (strcmp(ents[i].name, name) == 0)
				ents[i].matched = true;
	}
	return true;
}

static uint64_t observed_ino(const struct slot *s, int name)
{
	char buf[32];

	name_of(s, name, buf, sizeof(buf));
	for (int i = 0; i < nents; i++)
		if (strcmp(ents[i].name, buf) == 0)
			return ents[i].ino;
	return 0;
}

/* Send o again with its request id (sync); its status, and *ino from the reply. */
static int resend(struct slot *s, const struct op *o, uint64_t *ino)
{
	struct rpc_result res = {0};
	struct req_buf b;
	uint16_t op = build(s, o, &b);
	int rc = rpc_call_sync(s->c->tc.rpc, meta.uri, &meta_service_desc, op, &b.u.create.base,
			       &check_opts, &res);

	*ino = rc == 0 ? reply_ino(o, &res) : 0;
	rpc_result_release(&res);
	return rc;
}

static void check_slot(struct slot *s, int round)
{
	struct model after = s->m;
	bool create_like = s->cur.kind == OP_CREATE || s->cur.kind == OP_MKDIR;
	bool was_applied = false;
	uint64_t ino;
	int rc;

	if (s->uncertain) {
		struct op o = s->cur;

		if (create_like)
			o.ino = 0; /* unknown: any inode */
		model_apply(&after, &o);
		if (matches(s, &s->m, -1, true)) {
			was_applied = false;
		} else if (matches(s, &after, create_like ? s->cur.name : -1, true)) {
			was_applied = true;
		} else {
			fprintf(stderr,
				"round %d: c%d.s%d: %s in flight at the kill is half applied (or "
				"acked ops are missing)\n",
				round, s->c->idx, s->idx, op_names[s->cur.kind]);
			CHECK(!"in-flight op all or nothing");
		}
	} else if (!matches(s, &s->m, -1, true)) {
		fprintf(stderr, "round %d: c%d.s%d: the namespace differs from the acked ops\n",
			round, s->c->idx, s->idx);
		CHECK(!"acked ops visible");
	}
	/* The last acked request again: its first result, nothing done. */
	if (s->has_last) {
		rc = resend(s, &s->last, &ino);
		CHECK_EQ(rc, 0);
		if (s->last.kind == OP_CREATE || s->last.kind == OP_MKDIR ||
		    s->last.kind == OP_LINK)
			CHECK_EQ(ino, s->last.ino);
	}
	if (!s->uncertain)
		return;
	/* The in-flight request again: done now, or its stored result. */
	uint64_t seen = create_like ? observed_ino(s, s->cur.name) : 0;

	rc = resend(s, &s->cur, &ino);
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		if (create_like && was_applied)
			CHECK_EQ(ino, seen);
		if (create_like)
			s->cur.ino = ino;
		model_apply(&s->m, &s->cur);
		s->last = s->cur;
		s->has_last = true;
	}
	if (was_applied)
		stat_uncertain_applied++;
	else
		stat_uncertain_not++;
	s->uncertain = false;
}

static void check_all(int round)
{
	int unmatched = 0;

	read_dirs();
	CHECK(nents < ENTS_MAX);
	for (int c = 0; c < NCLIENTS; c++)
		for (int i = 0; i < NSLOTS; i++)
			check_slot(&clients[c].slots[i], round);
	for (int i = 0; i < nents; i++) {
		if (!ents[i].matched) {
			fprintf(stderr, "round %d: stray entry %s in d%d\n", round, ents[i].name,
				ents[i].dir);
			unmatched++;
		}
	}
	CHECK_EQ(unmatched, 0);
	/* After the resends the models are exact again: check that too. */
	read_dirs();
	for (int c = 0; c < NCLIENTS; c++)
		for (int i = 0; i < NSLOTS; i++)
			CHECK(matches(&clients[c].slots[i], &clients[c].slots[i].m, -1, false));
	CHECK_EQ(mp_fsck(clients[0].tc.rpc, meta.uri, "after restart"), 0);
}

/* ---- driving ----------------------------------------------------------------------------- */

static void make_dirs(void)
{
	for (int d = 0; d < NDIRS; d++) {
		Sluice__MkdirReq req = SLUICE__MKDIR_REQ__INIT;
		struct rpc_result res = {0};
		struct mp_hdr hb;
		char name[16];
		int rc;

		snprintf(name, sizeof(name), "d%d", d);
		req.hdr = mp_hdr(&hb, 999, (uint64_t)d + 1);
		req.parent = 1;
		req.name = bin(name);
		req.mode = 0777;
		rc = metac_mkdir(clients[0].tc.rpc, meta.uri, &req, &check_opts, &res);
		if (rc == 0)
			dirs[d] = ((Sluice__AttrResp *)(void *)res.resp)->attr->ino;
		rpc_result_release(&res);
		if (rc)
			fail_exit("mkdir of a shared directory failed");
	}
}

static void wait_idle(void)
{
	for (int i = 0; i < 60000; i++) {
		int active = 0;

		for (int c = 0; c < NCLIENTS; c++)
			active += atomic_load(&clients[c].active);
		if (active == 0)
			return;
		env_sleep_ms(1);
	}
	fail_exit("calls did not finish after the kill");
}

static void one_round(int round, uint64_t *rng)
{
	uint64_t run_ms = 100 + layout_splitmix64_next(rng) % 500;

	atomic_store(&killing, false);
	for (int c = 0; c < NCLIENTS; c++)
		run_on_reactor(clients[c].tc.r, start_client, &clients[c]);
	env_sleep_ms(run_ms);
	atomic_store(&killing, true);
	if (mp_stop(&meta, SIGKILL) == -1)
		fail_exit("sluice-meta was not running");
	for (int c = 0; c < NCLIENTS; c++)
		run_on_reactor(clients[c].tc.r, stop_client, &clients[c]);
	wait_idle();
	for (int c = 0; c < NCLIENTS; c++) {
		if (atomic_load(&clients[c].failures)) {
			fprintf(stderr, "round %d: %s\n", round, clients[c].failure);
			CHECK(!"unexpected reply while the server was up");
			atomic_store(&clients[c].failures, 0);
		}
	}
	if (mp_start(&meta, dir_))
		fail_exit("sluice-meta did not restart");
	check_all(round);
}

int main(int argc, char **argv)
{
	const char *meta_opts[] = {"meta.sync=false",	       "meta.gc_delay_ms=100ms",
				   "meta.gc_interval_ms=50ms", "meta.gc_skip_chunks=true",
				   "meta.workers=4",	       NULL};
	int rounds = argc > 3 ? atoi(argv[3]) : 20;
	uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 0) : env_random_u64(), rng;
	uint64_t t0 = env_now_ns(), acked = 0;

	if (argc < 3) {
		fprintf(stderr,
			"usage: test_meta_crash SLUICE_MGMTD SLUICE_META [ROUNDS [SEED]]\n");
		return 2;
	}
	printf("seed %#" PRIx64 ", %d rounds\n", seed, rounds);
	rng = seed;
	if (mp_tmpdir("meta-crash", dir_, sizeof(dir_)))
		return 1;
	net_register_builtin();
	mp_mgmtd_init(&mgmtd, argv[1], dir_);
	if (mp_start(&mgmtd, dir_))
		fail_exit("mgmtd did not start");
	mp_meta_init(&meta, argv[2], dir_, mgmtd.uri, meta_opts);
	if (mp_start(&meta, dir_))
		fail_exit("sluice-meta did not start");
	for (int c = 0; c < NCLIENTS; c++) {
		struct client *cl = &clients[c];

		cl->idx = c;
		cl->id = 1000 + (uint64_t)c;
		if (test_client_start(&cl->tc, NULL, 16u << 20))
			fail_exit("client start failed");
		for (int i = 0; i < NSLOTS; i++) {
			cl->slots[i].c = cl;
			cl->slots[i].idx = i;
			cl->slots[i].rng = seed ^ ((uint64_t)c << 32 | (uint64_t)i);
			model_init(&cl->slots[i].m);
		}
	}
	make_dirs();
	for (int r = 0; r < rounds && test_result() == 0; r++)
		one_round(r, &rng);
	for (int c = 0; c < NCLIENTS; c++) {
		for (int i = 0; i < NSLOTS; i++)
			acked += clients[c].slots[i].acked;
		test_client_stop(&clients[c].tc);
	}
	printf("%d kills, %" PRIu64 " ops acked, in flight at a kill: %" PRIu64 " applied, %" PRIu64
	       " not; %.1f s\n",
	       rounds, acked, stat_uncertain_applied, stat_uncertain_not,
	       (double)(env_now_ns() - t0) / 1e9);
	CHECK(acked > 0);
	CHECK_EQ(mp_stop(&meta, SIGTERM), 0);
	CHECK_EQ(mp_stop(&mgmtd, SIGTERM), 0);
	if (test_result() == 0) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir_);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", dir_);
	} else {
		fprintf(stderr, "seed %#" PRIx64 "; logs kept in %s\n", seed, dir_);
	}
	return test_result();
}
