/*
 * store.c - the metadata store's frame: opening and formatting, the transaction runner with
 * idempotent results, id allocation, value codecs, the client liveness table.
 *
 * DESIGN
 * Every operation is a body function run by store_txn inside one RocksDB transaction.
 * Conflicts (-EAGAIN from a locked read or the commit) roll back and run the body again
 * from scratch, up to SLUICE_META_TXN_RETRIES times with a short randomised backoff, so a
 * body must keep all its state in its op and arg (it is re-entered). A mutating call with a
 * request id first reads (locking) R+client+id: when present it is a retry of a request
 * that already committed, and its stored result is returned with nothing else done;
 * otherwise the body runs and its result is put under that key in the same transaction,
 * so "done" and "remembered" commit together.
 *
 * Inode and session ids come from counters under N+"ino"/"session", advanced by
 * SLUICE_META_INO_BATCH in a transaction of their own and handed out from memory; a crash
 * loses the rest of a batch (ids are never reused, gaps are harmless).
 *
 * Values are protobuf-c messages unpacked with a stack arena allocator, so reading an inode
 * does not malloc.
 *
 * Threads: everything here is called from many worker threads at once. Locks: alloc_mu
 * (id ranges), clients_mu (liveness table), tables_mu (chain table lengths); none is held
 * across a RocksDB call except alloc_mu around the counter transaction, which is rare.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "meta.pb-c.h"
#include "meta/store_i.h"

LOG_FACILITY("meta-store");

static_assert((int)META_FT_REG == (int)SLUICE__FILE_TYPE__FT_REGULAR, "file types match the wire");
static_assert((int)META_FT_DIR == (int)SLUICE__FILE_TYPE__FT_DIRECTORY,
	      "file types match the wire");
static_assert((int)META_FT_LNK == (int)SLUICE__FILE_TYPE__FT_SYMLINK, "file types match the wire");
static_assert((int)META_FT_FIFO == (int)SLUICE__FILE_TYPE__FT_FIFO, "file types match the wire");
static_assert((int)META_FT_SOCK == (int)SLUICE__FILE_TYPE__FT_SOCKET, "file types match the wire");
static_assert((int)META_FT_CHR == (int)SLUICE__FILE_TYPE__FT_CHARDEV, "file types match the wire");
static_assert((int)META_FT_BLK == (int)SLUICE__FILE_TYPE__FT_BLOCKDEV, "file types match the wire");

#define CLIENT_BUCKETS 4096u
#define PACK_MAX       (SLUICE_META_SYMLINK_MAX + 1024)

struct meta_client {
	uint64_t id;
	uint64_t seen_mono_ns;
	struct meta_client *next;
};

/* ---- protobuf-c arena: unpack without malloc ------------------------------------------ */

struct pb_arena {
	ProtobufCAllocator a;
	size_t used;
	_Alignas(16) uint8_t buf[PACK_MAX + 4096];
};

static void *arena_alloc(void *data, size_t size)
{
	struct pb_arena *ar = data;
	size_t at = (ar->used + 15u) & ~(size_t)15u;

	if (size > sizeof(ar->buf) || at > sizeof(ar->buf) - size)
		return NULL; /* unpack fails: the value is larger than any we write */
	ar->used = at + size;
	return ar->buf + at;
}

static void arena_free(void *data, void *p)
{
}

static void arena_init(struct pb_arena *ar)
{
	ar->a.alloc = arena_alloc;
	ar->a.free = arena_free;
	ar->a.allocator_data = ar;
	ar->used = 0;
}

/* ---- codecs ------------------------------------------------------------------------------ */

static void layout_to_pb(const struct layout *l, Sluice__Layout *pb)
{
	sluice__layout__init(pb);
	pb->chain_table_id = l->chain_table_id;
	pb->chunk_size = l->chunk_size;
	pb->stripe = l->stripe;
	pb->chain_base = l->chain_base;
	pb->seed = l->seed;
}

static void layout_from_pb(const Sluice__Layout *pb, struct layout *l)
{
	l->chain_table_id = pb->chain_table_id;
	l->chunk_size = pb->chunk_size;
	l->stripe = pb->stripe;
	l->chain_base = pb->chain_base;
	l->seed = pb->seed;
}

int inode_decode(const void *buf, size_t len, uint64_t ino, struct meta_inode *out)
{
	struct pb_arena ar;
	Sluice__Inode *m;

	arena_init(&ar);
	m = sluice__inode__unpack(&ar.a, len, buf);
	if (!m || (int)m->type < META_FT_REG || (int)m->type > META_FT_BLK ||
	    m->symlink.len > sizeof(out->symlink)) {
		log_debug("inode %llu: undecodable value (%zu bytes)", (unsigned long long)ino,
			  len);
		return -EIO;
	}
	out->ino = ino;
	out->type = (uint32_t)m->type;
	out->mode = m->mode & 07777;
	out->uid = m->uid;
	out->gid = m->gid;
	out->nlink = m->nlink;
	out->flags = m->flags;
	out->size = m->size;
	out->atime_ns = m->atime_ns;
	out->mtime_ns = m->mtime_ns;
	out->ctime_ns = m->ctime_ns;
	out->btime_ns = m->btime_ns;
	out->rdev = m->rdev;
	out->gc_due_ns = m->gc_due_ns;
	out->parent = m->parent;
	out->has_layout = m->layout != NULL;
	if (m->layout)
		layout_from_pb(m->layout, &out->layout);
	else
		memset(&out->layout, 0, sizeof(out->layout));
	out->symlink_len = (uint32_t)m->symlink.len;
	if (m->symlink.len)
		memcpy(out->symlink, m->symlink.data, m->symlink.len);
	return 0;
}

static size_t inode_encode(const struct meta_inode *in, uint8_t *buf)
{
	Sluice__Inode m = SLUICE__INODE__INIT;
	Sluice__Layout l;

	m.type = (Sluice__FileType)in->type;
	m.mode = in->mode;
	m.uid = in->uid;
	m.gid = in->gid;
	m.nlink = in->nlink;
	m.flags = in->flags;
	m.size = in->size;
	m.atime_ns = in->atime_ns;
	m.mtime_ns = in->mtime_ns;
	m.ctime_ns = in->ctime_ns;
	m.btime_ns = in->btime_ns;
	m.rdev = in->rdev;
	m.gc_due_ns = in->gc_due_ns;
	m.parent = in->parent;
	if (in->has_layout) {
		layout_to_pb(&in->layout, &l);
		m.layout = &l;
	}
	m.symlink.len = in->symlink_len;
	m.symlink.data = (uint8_t *)in->symlink;
	ASSERT(sluice__inode__get_packed_size(&m) <= PACK_MAX);
	return sluice__inode__pack(&m, buf);
}

void attr_from_inode(const struct meta_inode *in, struct meta_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = in->ino;
	out->type = in->type;
	out->mode = in->mode;
	out->uid = in->uid;
	out->gid = in->gid;
	out->nlink = in->nlink;
	out->size = in->size;
	out->atime_ns = in->atime_ns;
	out->mtime_ns = in->mtime_ns;
	out->ctime_ns = in->ctime_ns;
	out->btime_ns = in->btime_ns;
	out->rdev = in->rdev;
	out->parent = in->parent;
	out->has_layout = in->has_layout;
	out->layout = in->layout;
}

static void attr_to_pb(const struct meta_attr *a, Sluice__Attr *pb, Sluice__Layout *l)
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
		layout_to_pb(&a->layout, l);
		pb->layout = l;
	}
}

static void attr_from_pb(const Sluice__Attr *pb, struct meta_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = pb->ino;
	a->type = (uint32_t)pb->type;
	a->mode = pb->mode;
	a->uid = pb->uid;
	a->gid = pb->gid;
	a->nlink = pb->nlink;
	a->size = pb->size;
	a->atime_ns = pb->atime_ns;
	a->mtime_ns = pb->mtime_ns;
	a->ctime_ns = pb->ctime_ns;
	a->btime_ns = pb->btime_ns;
	a->rdev = pb->rdev;
	a->parent = pb->parent;
	a->has_layout = pb->layout != NULL;
	if (pb->layout)
		layout_from_pb(pb->layout, &a->layout);
}

int dent_decode(const void *buf, size_t len, struct meta_dent *out)
{
	struct pb_arena ar;
	Sluice__Dentry *m;

	arena_init(&ar);
	m = sluice__dentry__unpack(&ar.a, len, buf);
	if (!m || m->ino == 0 || (int)m->type < META_FT_REG || (int)m->type > META_FT_BLK)
		return -EIO;
	out->ino = m->ino;
	out->type = (uint32_t)m->type;
	return 0;
}

/* ---- key helpers used by every operation ------------------------------------------------- */

int ino_load(struct meta_txn *t, uint64_t ino, bool lock, struct meta_inode *out)
{
	uint8_t k[MK_ID_KEY];
	struct meta_val v;
	int rc;

	if (ino == 0)
		return -ENOENT;
	rc = meta_txn_get(t, k, mk_id(k, MK_INODE, ino), lock, &v);
	if (rc)
		return rc;
	rc = inode_decode(v.data, v.len, ino, out);
	meta_val_release(&v);
	return rc;
}

int ino_load_db(struct meta_db *db, uint64_t ino, struct meta_inode *out)
{
	uint8_t k[MK_ID_KEY];
	struct meta_val v;
	int rc;

	if (ino == 0)
		return -ENOENT;
	rc = meta_db_get(db, k, mk_id(k, MK_INODE, ino), &v);
	if (rc)
		return rc;
	rc = inode_decode(v.data, v.len, ino, out);
	meta_val_release(&v);
	return rc;
}

int ino_store(struct meta_txn *t, const struct meta_inode *in)
{
	uint8_t k[MK_ID_KEY], buf[PACK_MAX];
	size_t n = inode_encode(in, buf);

	ASSERT(in->ino != 0);
	return meta_txn_put(t, k, mk_id(k, MK_INODE, in->ino), buf, n);
}

/* Delete every key of the range tag+id (xattrs, sessions of an inode). Bounded by what one
 * inode may hold: SLUICE_META_XATTR_LIST_MAX bytes of names, its sessions. */
static int range_delete(struct meta_txn *t, char tag, uint64_t id)
{
	uint8_t p[MK_ID_KEY];
	struct meta_iter *it;
	int rc = meta_iter_txn(t, p, mk_id(p, tag, id), &it);

	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); rc == 0 && meta_iter_valid(it); meta_iter_next(it)) {
		size_t klen;
		const void *key = meta_iter_key(it, &klen);

		rc = meta_txn_del(t, key, klen);
	}
	if (rc == 0)
		rc = meta_iter_status(it);
	meta_iter_free(it);
	return rc;
}

int ino_delete(struct meta_txn *t, uint64_t ino)
{
	uint8_t k[MK_ID_KEY];
	int rc = range_delete(t, MK_XATTR, ino);

	if (rc == 0)
		rc = range_delete(t, MK_SESSION, ino);
	if (rc == 0)
		rc = meta_txn_del(t, k, mk_id(k, MK_INODE, ino));
	return rc;
}

int range_has_key(struct meta_txn *t, char tag, uint64_t id)
{
	uint8_t p[MK_ID_KEY];
	struct meta_iter *it;
	int rc = meta_iter_txn(t, p, mk_id(p, tag, id), &it);

	if (rc)
		return rc;
	meta_iter_seek(it, NULL, 0);
	rc = meta_iter_valid(it) ? 1 : meta_iter_status(it);
	meta_iter_free(it);
	return rc;
}

int dent_load(struct meta_txn *t, uint64_t parent, const void *name, size_t nlen, bool lock,
	      struct meta_dent *out)
{
	uint8_t k[MK_NAMEKEY];
	struct meta_val v;
	int rc;

	rc = meta_txn_get(t, k, mk_name(k, MK_DENTRY, parent, name, nlen), lock, &v);
	if (rc)
		return rc;
	rc = dent_decode(v.data, v.len, out);
	meta_val_release(&v);
	return rc;
}

int dent_store(struct meta_txn *t, uint64_t parent, const void *name, size_t nlen,
	       const struct meta_dent *d)
{
	Sluice__Dentry m = SLUICE__DENTRY__INIT;
	uint8_t k[MK_NAMEKEY], buf[32];
	size_t n;

	m.ino = d->ino;
	m.type = (Sluice__FileType)d->type;
	n = sluice__dentry__pack(&m, buf);
	return meta_txn_put(t, k, mk_name(k, MK_DENTRY, parent, name, nlen), buf, n);
}

int dent_del(struct meta_txn *t, uint64_t parent, const void *name, size_t nlen)
{
	uint8_t k[MK_NAMEKEY];

	return meta_txn_del(t, k, mk_name(k, MK_DENTRY, parent, name, nlen));
}

int gc_queue(struct meta_txn *t, struct meta_inode *in, uint64_t due_ns, uint32_t attempts,
	     uint64_t queued_ns)
{
	Sluice__GcEntry m = SLUICE__GC_ENTRY__INIT;
	uint8_t k[MK_PAIR], buf[64];
	size_t n;

	m.type = (Sluice__FileType)in->type;
	m.attempts = attempts;
	m.queued_ns = queued_ns;
	n = sluice__gc_entry__pack(&m, buf);
	in->gc_due_ns = due_ns ? due_ns : 1; /* 0 means "not queued" */
	return meta_txn_put(t, k, mk_pair(k, MK_GC, in->gc_due_ns, in->ino), buf, n);
}

int ino_release(struct meta_op *op, struct meta_txn *t, struct meta_inode *in)
{
	int rc;

	ASSERT(in->type != META_FT_DIR);
	if (in->nlink == 0 && in->gc_due_ns == 0) {
		rc = range_has_key(t, MK_SESSION, in->ino);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			rc = gc_queue(t, in, op->now_ns + op->s->cfg.gc_delay_ns, 0, op->now_ns);
			if (rc)
				return rc;
		}
	}
	return ino_store(t, in);
}

/* ---- clocks, calls, the transaction runner ----------------------------------------------- */

uint64_t store_wall_ns(struct meta_store *s)
{
	return env_wall_ns() + atomic_load(&s->skew_wall_ns);
}

uint64_t store_mono_ns(struct meta_store *s)
{
	return env_now_ns() + atomic_load(&s->skew_mono_ns);
}

void meta_store_test_advance(struct meta_store *s, uint64_t wall_ns, uint64_t mono_ns)
{
	atomic_fetch_add(&s->skew_wall_ns, wall_ns);
	atomic_fetch_add(&s->skew_mono_ns, mono_ns);
}

int store_check_call(uint32_t part, const struct meta_creds *cr, const struct meta_reqid *rid,
		     bool need_rid)
{
	if (part != 0)
		return -SLUICE_EROUTING;
	if (!cr || cr->ngids > SLUICE_META_GROUPS_MAX)
		return -EINVAL;
	if (need_rid && (!rid || rid->client == 0 || rid->id == 0))
		return -EINVAL;
	return 0;
}

static int result_put(struct meta_txn *t, const struct meta_op *op, const uint8_t *key)
{
	Sluice__OpResult m = SLUICE__OP_RESULT__INIT;
	Sluice__Attr a;
	Sluice__Layout l;
	uint8_t buf[512];
	size_t n;

	m.op = op->opcode;
	m.session_id = op->res.session_id;
	m.done_ns = op->now_ns;
	m.created = op->res.created;
	if (op->res.has_attr) {
		attr_to_pb(&op->res.attr, &a, &l);
		m.attr = &a;
	}
	ASSERT(sluice__op_result__get_packed_size(&m) <= sizeof(buf));
	n = sluice__op_result__pack(&m, buf);
	return meta_txn_put(t, key, MK_PAIR, buf, n);
}

/* A stored result: 0 and op->res filled, -EINVAL when the id was used by another op, -EIO
 * when undecodable. */
static int result_replay(struct meta_op *op, const struct meta_val *v)
{
	struct pb_arena ar;
	Sluice__OpResult *m;

	arena_init(&ar);
	m = sluice__op_result__unpack(&ar.a, v->len, v->data);
	if (!m)
		return -EIO;
	if (m->op != op->opcode) {
		log_debug("request %llu of client %llu reused for op %u (was %u)",
			  (unsigned long long)op->rid->id, (unsigned long long)op->rid->client,
			  op->opcode, m->op);
		return -EINVAL;
	}
	memset(&op->res, 0, sizeof(op->res));
	op->res.session_id = m->session_id;
	op->res.created = m->created;
	if (m->attr) {
		op->res.has_attr = true;
		attr_from_pb(m->attr, &op->res.attr);
	}
	return 0;
}

static int txn_attempt(struct meta_op *op, bool *replayed)
{
	uint8_t rkey[MK_PAIR];
	struct meta_txn *t;
	struct meta_val v;
	int rc;

	rc = meta_txn_begin(op->s->db, &t);
	if (rc)
		return rc;
	op->now_ns = store_wall_ns(op->s);
	memset(&op->res, 0, sizeof(op->res));
	if (op->rid) {
		mk_pair(rkey, MK_RESULT, op->rid->client, op->rid->id);
		rc = meta_txn_get(t, rkey, MK_PAIR, true, &v);
		if (rc == 0) {
			rc = result_replay(op, &v);
			meta_val_release(&v);
			*replayed = rc == 0;
			meta_txn_free(t);
			return rc;
		}
		if (rc != -ENOENT)
			goto out;
	}
	rc = op->body(t, op);
	if (rc == 0 && op->rid)
		rc = result_put(t, op, rkey);
	if (rc == 0)
		rc = meta_txn_commit(t);
out:
	meta_txn_free(t);
	return rc;
}

int store_txn(struct meta_op *op)
{
	bool replayed = false;
	int rc = -EAGAIN;

	if (op->rid)
		store_client_seen(op->s, op->rid->client);
	for (unsigned i = 0; i < SLUICE_META_TXN_RETRIES; i++) {
		rc = txn_attempt(op, &replayed);
		if (rc != -EAGAIN)
			break;
		atomic_fetch_add(&op->s->st_retries, 1);
		/* Randomised so that two transactions that deadlocked do not meet again. */
		env_sleep_ns(env_random_below(50000ull << (i < 6 ? i : 6)) + 1000);
	}
	if (replayed)
		atomic_fetch_add(&op->s->st_replays, 1);
	return rc;
}

/* ---- id allocation ---------------------------------------------------------------------- */

static int counter_advance(struct meta_store *s, const char *name, uint64_t *first)
{
	Sluice__Counter m = SLUICE__COUNTER__INIT;
	uint8_t k[32], buf[32];
	size_t klen = mk_counter(k, name), n;
	int rc = -EAGAIN;

	for (unsigned i = 0; i < SLUICE_META_TXN_RETRIES && rc == -EAGAIN; i++) {
		struct meta_txn *t;
		struct meta_val v;
		Sluice__Counter *c;
		uint64_t next;

		rc = meta_txn_begin(s->db, &t);
		if (rc)
			return rc;
		rc = meta_txn_get(t, k, klen, true, &v);
		if (rc == 0) {
			c = sluice__counter__unpack(NULL, v.len, v.data);
			meta_val_release(&v);
			if (!c || c->next == 0 || c->next > UINT64_MAX - SLUICE_META_INO_BATCH) {
				rc = c ? -EOVERFLOW : -EIO;
			} else {
				next = c->next;
				m.next = next + SLUICE_META_INO_BATCH;
				n = sluice__counter__pack(&m, buf);
				rc = meta_txn_put(t, k, klen, buf, n);
				if (rc == 0)
					rc = meta_txn_commit(t);
				if (rc == 0)
					*first = next;
			}
			sluice__counter__free_unpacked(c, NULL);
		} else if (rc == -ENOENT) {
			rc = -EIO; /* formatted stores have both counters */
		}
		meta_txn_free(t);
	}
	return rc;
}

static int alloc_from(struct meta_store *s, const char *name, uint64_t *next, uint64_t *end,
		      uint64_t *out)
{
	int rc = 0;

	pthread_mutex_lock(&s->alloc_mu);
	if (*next == *end) {
		uint64_t first;

		rc = counter_advance(s, name, &first);
		if (rc == 0) {
			*next = first;
			*end = first + SLUICE_META_INO_BATCH;
		}
	}
	if (rc == 0)
		*out = (*next)++;
	pthread_mutex_unlock(&s->alloc_mu);
	return rc;
}

int store_alloc_ino(struct meta_store *s, uint64_t *out)
{
	return alloc_from(s, "ino", &s->ino_next, &s->ino_end, out);
}

int store_alloc_session(struct meta_store *s, uint64_t *out)
{
	return alloc_from(s, "session", &s->sid_next, &s->sid_end, out);
}

/* ---- chain tables ----------------------------------------------------------------------- */

void meta_store_set_table_len(struct meta_store *s, uint32_t table_id, uint32_t len)
{
	pthread_mutex_lock(&s->tables_mu);
	for (unsigned i = 0; i < s->ntables; i++) {
		if (s->tables[i].id == table_id) {
			s->tables[i].len = len;
			goto out;
		}
	}
	if (s->ntables < META_TABLES_MAX) {
		s->tables[s->ntables].id = table_id;
		s->tables[s->ntables].len = len;
		s->ntables++;
	}
out:
	pthread_mutex_unlock(&s->tables_mu);
}

uint32_t store_table_len(struct meta_store *s, uint32_t table_id)
{
	uint32_t len = 0;

	pthread_mutex_lock(&s->tables_mu);
	for (unsigned i = 0; i < s->ntables; i++)
		if (s->tables[i].id == table_id)
			len = s->tables[i].len;
	pthread_mutex_unlock(&s->tables_mu);
	return len;
}

/* ---- client liveness ---------------------------------------------------------------------- */

static uint32_t client_bucket(const struct meta_store *s, uint64_t client)
{
	return (uint32_t)((client * 0x9E3779B97F4A7C15ull) >> 32) % s->nbuckets;
}

static struct meta_client *client_find(struct meta_store *s, uint64_t client)
{
	struct meta_client *c = s->buckets[client_bucket(s, client)];

	while (c && c->id != client)
		c = c->next;
	return c;
}

/* Record client as heard from now. Returns -EAGAIN if the table is full. */
static int client_touch(struct meta_store *s, uint64_t client)
{
	struct meta_client *c;
	int rc = 0;

	pthread_mutex_lock(&s->clients_mu);
	c = client_find(s, client);
	if (!c && s->nclients < SLUICE_META_CLIENTS_MAX) {
		c = calloc(1, sizeof(*c));
		if (c) {
			uint32_t b = client_bucket(s, client);

			c->id = client;
			c->next = s->buckets[b];
			s->buckets[b] = c;
			s->nclients++;
		}
	}
	if (c)
		c->seen_mono_ns = store_mono_ns(s);
	else
		rc = s->nclients < SLUICE_META_CLIENTS_MAX ? -ENOMEM : -EAGAIN;
	pthread_mutex_unlock(&s->clients_mu);
	return rc;
}

void store_client_seen(struct meta_store *s, uint64_t client)
{
	(void)client_touch(s, client); /* a full table only costs that client its grace */
}

bool store_client_live(struct meta_store *s, uint64_t client, uint64_t timeout_ns)
{
	uint64_t now = store_mono_ns(s), seen;
	struct meta_client *c;

	pthread_mutex_lock(&s->clients_mu);
	c = client_find(s, client);
	seen = c ? c->seen_mono_ns : s->open_mono_ns; /* unknown: grace from our start */
	pthread_mutex_unlock(&s->clients_mu);
	return now - seen < timeout_ns;
}

uint64_t store_clients_prune(struct meta_store *s, uint64_t timeout_ns)
{
	uint64_t now = store_mono_ns(s), left;

	pthread_mutex_lock(&s->clients_mu);
	for (uint32_t b = 0; b < s->nbuckets; b++) {
		struct meta_client **pp = &s->buckets[b];

		while (*pp) {
			struct meta_client *c = *pp;

			if (now - c->seen_mono_ns >= timeout_ns) {
				*pp = c->next;
				free(c);
				s->nclients--;
			} else {
				pp = &c->next;
			}
		}
	}
	left = s->nclients;
	pthread_mutex_unlock(&s->clients_mu);
	return left;
}

int meta_client_heartbeat(struct meta_store *s, uint64_t client, uint64_t acked_request_id)
{
	uint8_t p[MK_ID_KEY], from[8];
	struct meta_iter *it;
	struct meta_txn *t;
	unsigned n = 0;
	int rc;

	if (client == 0)
		return -EINVAL;
	rc = client_touch(s, client);
	if (rc || acked_request_id <= 1)
		return rc;
	/* Forget the results the client says it has (ids below acked). One batch per
	 * heartbeat; the rest goes with the next ones. A conflict just leaves them. */
	rc = meta_txn_begin(s->db, &t);
	if (rc)
		return rc;
	rc = meta_iter_txn(t, p, mk_id(p, MK_RESULT, client), &it);
	if (rc == 0) {
		mk_be64(from, 1);
		for (meta_iter_seek(it, from, 8);
		     rc == 0 && n < 4 * SLUICE_META_GC_BATCH && meta_iter_valid(it);
		     meta_iter_next(it), n++) {
			size_t klen;
			const uint8_t *k = meta_iter_key(it, &klen);

			if (klen != MK_PAIR || mk_get_be64(k + MK_ID_KEY) >= acked_request_id)
				break;
			rc = meta_txn_del(t, k, klen);
		}
		if (rc == 0)
			rc = meta_iter_status(it);
		meta_iter_free(it);
	}
	if (rc == 0 && n)
		rc = meta_txn_commit(t);
	meta_txn_free(t);
	return rc == -EAGAIN ? 0 : rc;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* 1 if the store holds no key at all, 0 if it holds some, or an error. */
static int db_empty(struct meta_db *db)
{
	struct meta_iter *it;
	int rc = meta_iter_db(db, NULL, "", 0, &it);

	if (rc)
		return rc;
	meta_iter_seek(it, NULL, 0);
	rc = meta_iter_valid(it) ? 0 : meta_iter_status(it);
	if (rc == 0 && !meta_iter_valid(it))
		rc = 1;
	meta_iter_free(it);
	return rc;
}

static int put_counter(struct meta_txn *t, const char *name, uint64_t next)
{
	Sluice__Counter m = SLUICE__COUNTER__INIT;
	uint8_t k[32], buf[32];
	size_t n;

	m.next = next;
	n = sluice__counter__pack(&m, buf);
	return meta_txn_put(t, k, mk_counter(k, name), buf, n);
}

static int write_root(struct meta_db *db, const struct meta_store_cfg *cfg)
{
	Sluice__FormatInfo f = SLUICE__FORMAT_INFO__INIT;
	struct meta_inode root;
	uint8_t k[32], buf[64];
	struct meta_txn *t;
	uint64_t now = env_wall_ns();
	size_t n;
	int rc;

	memset(&root, 0, sizeof(root));
	root.ino = META_ROOT_INO;
	root.type = META_FT_DIR;
	root.mode = cfg->root_mode ? cfg->root_mode & 07777 : 0755;
	root.nlink = 2;
	root.atime_ns = root.mtime_ns = root.ctime_ns = root.btime_ns = now;
	root.parent = META_ROOT_INO;
	root.has_layout = true;
	root.layout = cfg->root_layout;
	f.version = META_FORMAT_VERSION;
	f.created_ns = now;
	f.fsid = env_random_u64();
	n = sluice__format_info__pack(&f, buf);
	rc = meta_txn_begin(db, &t);
	if (rc)
		return rc;
	rc = meta_txn_put(t, k, mk_counter(k, "format"), buf, n);
	if (rc == 0)
		rc = put_counter(t, "ino", META_ROOT_INO + 1);
	if (rc == 0)
		rc = put_counter(t, "session", 1);
	if (rc == 0)
		rc = ino_store(t, &root);
	if (rc == 0)
		rc = meta_txn_commit(t);
	meta_txn_free(t);
	return rc;
}

static int root_layout_check(const struct layout *l)
{
	/* The table length is not known at format: check what does not depend on it. */
	struct layout tmp = *l;

	tmp.chain_base = 0;
	return layout_validate(&tmp, tmp.stripe ? tmp.stripe : 1);
}

int meta_store_format(const char *path, const struct meta_store_cfg *cfg, bool force, char *why,
		      size_t why_len)
{
	struct meta_db *db;
	int rc;

	if (root_layout_check(&cfg->root_layout)) {
		snprintf(why, why_len, "invalid root layout");
		return -EINVAL;
	}
	rc = meta_db_open(path, &cfg->db, &db, why, why_len);
	if (rc)
		return rc;
	rc = db_empty(db);
	if (rc == 0 && !force) {
		snprintf(why, why_len, "the store is not empty (--force destroys it)");
		rc = -EEXIST;
	} else if (rc == 0) {
		meta_db_close(db);
		db = NULL;
		rc = meta_db_destroy(path, why, why_len);
		if (rc == 0)
			rc = meta_db_open(path, &cfg->db, &db, why, why_len);
	} else if (rc == 1) {
		rc = 0;
	}
	if (rc == 0) {
		rc = write_root(db, cfg);
		if (rc == -EIO)
			meta_db_last_error(db, why, why_len);
	}
	meta_db_close(db);
	return rc;
}

static int check_format(struct meta_db *db)
{
	Sluice__FormatInfo *f;
	struct meta_val v;
	uint8_t k[32];
	int rc = meta_db_get(db, k, mk_counter(k, "format"), &v);

	if (rc == -ENOENT) {
		rc = db_empty(db);
		return rc == 1 ? -ENOENT : rc == 0 ? -EBADMSG : rc;
	}
	if (rc)
		return rc;
	f = sluice__format_info__unpack(NULL, v.len, v.data);
	meta_val_release(&v);
	rc = f && f->version == META_FORMAT_VERSION ? 0 : -EBADMSG;
	sluice__format_info__free_unpacked(f, NULL);
	return rc;
}

int meta_store_open(const char *path, const struct meta_store_cfg *cfg, struct meta_store **out,
		    char *why, size_t why_len)
{
	struct meta_store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	pthread_mutex_init(&s->alloc_mu, NULL);
	pthread_mutex_init(&s->rename_mu, NULL);
	pthread_mutex_init(&s->clients_mu, NULL);
	pthread_mutex_init(&s->tables_mu, NULL);
	s->nbuckets = CLIENT_BUCKETS;
	s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
	s->open_mono_ns = env_now_ns();
	if (!s->buckets) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = meta_db_open(path, &cfg->db, &s->db, why, why_len);
	if (rc)
		goto fail;
	rc = check_format(s->db);
	if (rc == -EBADMSG)
		snprintf(why, why_len, "not a sluice-meta store of format version %u",
			 META_FORMAT_VERSION);
	else if (rc == -ENOENT)
		snprintf(why, why_len, "the store is empty: format it");
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	meta_store_close(s);
	return rc;
}

void meta_store_close(struct meta_store *s)
{
	if (!s)
		return;
	meta_db_close(s->db);
	if (s->buckets) {
		for (uint32_t b = 0; b < s->nbuckets; b++) {
			while (s->buckets[b]) {
				struct meta_client *c = s->buckets[b];

				s->buckets[b] = c->next;
				free(c);
			}
		}
		free(s->buckets);
	}
	pthread_mutex_destroy(&s->alloc_mu);
	pthread_mutex_destroy(&s->rename_mu);
	pthread_mutex_destroy(&s->clients_mu);
	pthread_mutex_destroy(&s->tables_mu);
	free(s);
}

int meta_store_stats(struct meta_store *s, struct meta_stats *out)
{
	struct meta_iter *it;
	uint8_t p = MK_GC;
	uint64_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = meta_iter_db(s->db, NULL, &p, 1, &it);
	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); meta_iter_valid(it); meta_iter_next(it))
		n++;
	rc = meta_iter_status(it);
	meta_iter_free(it);
	if (rc)
		return rc;
	out->gc_queued = n;
	out->gc_removed = atomic_load(&s->st_gc_removed);
	out->gc_failures = atomic_load(&s->st_gc_failures);
	out->sessions_expired = atomic_load(&s->st_expired);
	pthread_mutex_lock(&s->clients_mu);
	out->clients_live = s->nclients;
	pthread_mutex_unlock(&s->clients_mu);
	out->txn_retries = atomic_load(&s->st_retries);
	out->replays = atomic_load(&s->st_replays);
	return 0;
}
