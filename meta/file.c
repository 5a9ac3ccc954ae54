/*
 * file.c - file-level operations of the metadata store: open/close with write sessions,
 * length reports, xattrs, layouts.
 *
 * DESIGN
 * A write open of a regular file creates a session S+ino+id owned by the client; it is the
 * writer's capability for length reports and close, and it keeps an unlinked inode out of
 * GC until it ends (close, or expiry of its client: gc.c). Read opens are not recorded.
 *
 * File length follows DESIGN.md section 7: every report raises the length to the highest
 * written offset any writer saw (max rule, so concurrent writers never shrink it); a close
 * or fsync with exact=true sets it to the writer's value when that writer is the only one,
 * the one case where the writer knows the true length. Truncate (setattr) is the only
 * other way down.
 *
 * Xattrs live under X+ino+name, one key each, so getting one is one point read; the sum of
 * an inode's name lengths is bounded (SLUICE_META_XATTR_LIST_MAX) so listing fits a reply.
 *
 * Threads: any (see store.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "meta.pb-c.h"
#include "meta/store_i.h"

/* ---- open ------------------------------------------------------------------------------- */

static int open_perm(const struct meta_op *op, const struct meta_inode *in, uint32_t flags)
{
	uint32_t acc = flags & O_ACCMODE;
	int want = acc == O_RDONLY ? PERM_R : acc == O_WRONLY ? PERM_W : PERM_R | PERM_W;

	if (flags & O_TRUNC)
		want |= PERM_W;
	return perm_check(op->cr, in, want);
}

static int session_put(struct meta_txn *t, struct meta_op *op, uint64_t ino, uint64_t sid)
{
	Sluice__Session m = SLUICE__SESSION__INIT;
	uint8_t k[MK_PAIR], buf[32];
	size_t n;

	m.client_id = op->rid->client;
	m.opened_ns = op->now_ns;
	n = sluice__session__pack(&m, buf);
	return meta_txn_put(t, k, mk_pair(k, MK_SESSION, ino, sid), buf, n);
}

int open_locked(struct meta_txn *t, struct meta_op *op, struct meta_inode *in, uint32_t flags)
{
	bool write = (flags & O_ACCMODE) != O_RDONLY;
	uint64_t sid = 0;
	int rc = 0;

	if (in->nlink == 0)
		return -ENOENT;
	if (in->type == META_FT_DIR && (write || (flags & O_TRUNC)))
		return -EISDIR;
	if (in->type == META_FT_LNK)
		return -ELOOP;
	if (!op->res.created)
		rc = open_perm(op, in, flags);
	if (rc)
		return rc;
	if (in->type == META_FT_REG && (flags & O_TRUNC)) {
		in->size = 0;
		in->mtime_ns = in->ctime_ns = op->now_ns;
		rc = ino_store(t, in);
	}
	if (rc == 0 && in->type == META_FT_REG && write) {
		rc = store_alloc_session(op->s, &sid);
		if (rc == 0)
			rc = session_put(t, op, in->ino, sid);
	}
	if (rc == 0) {
		op->res.has_attr = true;
		attr_from_inode(in, &op->res.attr);
		op->res.session_id = sid;
	}
	return rc;
}

static int open_body(struct meta_txn *t, struct meta_op *op)
{
	const uint32_t *a = op->arg; /* [0] = flags; ino in [1..2] */
	uint64_t ino = (uint64_t)a[1] << 32 | a[2];
	struct meta_inode in;
	int rc = ino_load(t, ino, true, &in);

	return rc ? rc : open_locked(t, op, &in, a[0]);
}

int meta_open(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
	      const struct meta_reqid *rid, uint64_t ino, uint32_t flags,
	      struct meta_open_result *out)
{
	uint32_t arg[3] = {flags, (uint32_t)(ino >> 32), (uint32_t)ino};
	struct meta_op op = {s, cr, rid, MOP_OPEN, open_body, arg, 0, {0}};
	bool mutating = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	struct meta_inode in;
	int rc = store_check_call(part, cr, rid, mutating);

	if (rc == 0 && (flags & O_ACCMODE) == O_ACCMODE)
		rc = -EINVAL;
	if (rc)
		return rc;
	if (!mutating) { /* nothing to record: a plain read */
		rc = ino_load_db(s->db, ino, &in);
		if (rc == 0 && in.nlink == 0)
			rc = -ENOENT;
		if (rc == 0 && in.type == META_FT_LNK)
			rc = -ELOOP;
		if (rc == 0)
			rc = open_perm(&op, &in, flags);
		if (rc == 0) {
			attr_from_inode(&in, &out->attr);
			out->session_id = 0;
			out->created = false;
		}
		return rc;
	}
	rc = store_txn(&op);
	if (rc == 0) {
		out->attr = op.res.attr;
		out->session_id = op.res.session_id;
		out->created = false;
	}
	return rc;
}

/* ---- length reports and close -------------------------------------------------------------- */

struct len_arg {
	uint64_t ino, sid, length;
	bool exact, close;
};

static int session_check(struct meta_txn *t, struct meta_op *op, const struct len_arg *a)
{
	uint8_t k[MK_PAIR];
	Sluice__Session *m;
	struct meta_val v;
	int rc = meta_txn_get(t, k, mk_pair(k, MK_SESSION, a->ino, a->sid), true, &v);

	if (rc)
		return rc == -ENOENT ? -EBADF : rc;
	m = sluice__session__unpack(NULL, v.len, v.data);
	meta_val_release(&v);
	if (!m)
		return -EIO;
	rc = m->client_id == op->rid->client ? 0 : -EBADF;
	sluice__session__free_unpacked(m, NULL);
	if (rc == 0 && a->close)
		rc = meta_txn_del(t, k, MK_PAIR);
	return rc;
}

/* Sessions of ino other than the caller's (which may already be deleted): 1 if any. */
static int other_sessions(struct meta_txn *t, uint64_t ino, uint64_t sid)
{
	uint8_t p[MK_ID_KEY];
	struct meta_iter *it;
	int rc = meta_iter_txn(t, p, mk_id(p, MK_SESSION, ino), &it), found = 0;

	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); meta_iter_valid(it) && !found; meta_iter_next(it)) {
		size_t klen;
		const uint8_t *k = meta_iter_key(it, &klen);

		found = klen == MK_PAIR && mk_get_be64(k + MK_ID_KEY) != sid;
	}
	rc = meta_iter_status(it);
	meta_iter_free(it);
	return rc ? rc : found;
}

static int length_body(struct meta_txn *t, struct meta_op *op)
{
	const struct len_arg *a = op->arg;
	struct meta_inode in;
	uint64_t size;
	int rc = ino_load(t, a->ino, true, &in);

	if (rc == 0)
		rc = session_check(t, op, a);
	if (rc)
		return rc;
	if (a->length > inode_size_max(&in))
		return -EFBIG;
	size = a->length > in.size ? a->length : in.size;
	if (a->exact && a->length != size) {
		rc = other_sessions(t, in.ino, a->sid);
		if (rc < 0)
			return rc;
		if (rc == 0)
			size = a->length;
	}
	if (size != in.size) {
		in.size = size;
		in.mtime_ns = in.ctime_ns = op->now_ns;
	}
	rc = in.type == META_FT_DIR ? -EIO : ino_release(op, t, &in); /* stores in */
	if (rc == 0) {
		op->res.has_attr = true;
		attr_from_inode(&in, &op->res.attr);
	}
	return rc;
}

static int length_run(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		      const struct meta_reqid *rid, struct len_arg *a, struct meta_attr *out)
{
	struct meta_op op = {s,		  cr, rid, a->close ? MOP_CLOSE : MOP_REPORT_LENGTH,
			     length_body, a,  0,   {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0 && a->sid == 0)
		rc = -EBADF;
	if (rc == 0)
		rc = store_txn(&op);
	if (rc == 0)
		*out = op.res.attr;
	return rc;
}

int meta_report_length(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		       const struct meta_reqid *rid, uint64_t ino, uint64_t session_id,
		       uint64_t length, bool exact, struct meta_attr *out)
{
	struct len_arg a = {ino, session_id, length, exact, false};

	return length_run(s, part, cr, rid, &a, out);
}

int meta_close(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
	       const struct meta_reqid *rid, uint64_t ino, uint64_t session_id, uint64_t length,
	       bool exact, struct meta_attr *out)
{
	struct len_arg a = {ino, session_id, length, exact, true};

	return length_run(s, part, cr, rid, &a, out);
}

/* ---- xattrs -----------------------------------------------------------------------------------
 */

enum xns { XNS_USER, XNS_TRUSTED, XNS_SECURITY };

static int xattr_name_check(const void *name, size_t nlen, enum xns *ns)
{
	static const struct {
		const char *prefix;
		enum xns ns;
	} spaces[] = {{"user.", XNS_USER}, {"trusted.", XNS_TRUSTED}, {"security.", XNS_SECURITY}};

	if (nlen == 0 || nlen > SLUICE_META_XATTR_NAME_MAX)
		return -ERANGE;
	if (memchr(name, '\0', nlen))
		return -EINVAL;
	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(spaces); i++) {
		size_t pl = strlen(spaces[i].prefix);

		if (nlen > pl && memcmp(name, spaces[i].prefix, pl) == 0) {
			*ns = spaces[i].ns;
			return 0;
		}
	}
	return -EOPNOTSUPP;
}

/* Linux xattr_permission without capabilities other than root's. */
static int xattr_access(const struct meta_creds *cr, const struct meta_inode *in, enum xns ns,
			bool write)
{
	switch (ns) {
	case XNS_TRUSTED:
		if (cr->uid != 0)
			return write ? -EPERM : -ENODATA;
		return 0;
	case XNS_SECURITY:
		return write && cr->uid != 0 && cr->uid != in->uid ? -EPERM : 0;
	case XNS_USER:
	default:
		if (in->type != META_FT_REG && in->type != META_FT_DIR)
			return write ? -EPERM : -ENODATA;
		return perm_check(cr, in, write ? PERM_W : PERM_R);
	}
}

int meta_getxattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t ino,
		  const void *name, size_t nlen, void *buf, size_t cap)
{
	uint8_t k[MK_NAMEKEY];
	struct meta_inode in;
	Sluice__XattrValue *m;
	struct meta_val v;
	enum xns ns;
	int rc = store_check_call(part, cr, NULL, false);

	if (rc == 0)
		rc = xattr_name_check(name, nlen, &ns);
	if (rc == 0)
		rc = ino_load_db(s->db, ino, &in);
	if (rc == 0)
		rc = xattr_access(cr, &in, ns, false);
	if (rc)
		return rc;
	rc = meta_db_get(s->db, k, mk_name(k, MK_XATTR, ino, name, nlen), &v);
	if (rc)
		return rc == -ENOENT ? -ENODATA : rc;
	m = sluice__xattr_value__unpack(NULL, v.len, v.data);
	meta_val_release(&v);
	if (!m)
		return -EIO;
	if (m->value.len > cap) {
		rc = -ERANGE;
	} else {
		if (m->value.len)
			memcpy(buf, m->value.data, m->value.len);
		rc = (int)m->value.len;
	}
	sluice__xattr_value__free_unpacked(m, NULL);
	return rc;
}

int meta_listxattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t ino,
		   void *buf, size_t cap)
{
	uint8_t p[MK_ID_KEY];
	struct meta_inode in;
	struct meta_iter *it;
	size_t used = 0;
	int rc = store_check_call(part, cr, NULL, false);

	if (rc == 0)
		rc = ino_load_db(s->db, ino, &in);
	if (rc == 0)
		rc = meta_iter_db(s->db, NULL, p, mk_id(p, MK_XATTR, ino), &it);
	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); meta_iter_valid(it); meta_iter_next(it)) {
		size_t klen, nlen;
		const uint8_t *k = meta_iter_key(it, &klen);
		enum xns ns;

		nlen = klen - MK_ID_KEY;
		if (klen <= MK_ID_KEY || xattr_name_check(k + MK_ID_KEY, nlen, &ns))
			continue; /* not a name we could have written: fsck reports it */
		if (ns == XNS_TRUSTED && cr->uid != 0)
			continue;
		if (used + nlen + 1 > cap) {
			rc = -ERANGE;
			break;
		}
		memcpy((char *)buf + used, k + MK_ID_KEY, nlen);
		((char *)buf)[used + nlen] = '\0';
		used += nlen + 1;
	}
	if (rc == 0)
		rc = meta_iter_status(it);
	meta_iter_free(it);
	return rc ? rc : (int)used;
}

struct xattr_arg {
	uint64_t ino;
	const void *name, *value;
	size_t nlen, vlen;
	uint32_t flags;
	enum xns ns;
};

/* Bytes the inode's names take in a listing (name + NUL each). */
static int xattr_list_bytes(struct meta_txn *t, uint64_t ino, size_t *out)
{
	uint8_t p[MK_ID_KEY];
	struct meta_iter *it;
	size_t sum = 0;
	int rc = meta_iter_txn(t, p, mk_id(p, MK_XATTR, ino), &it);

	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); meta_iter_valid(it); meta_iter_next(it)) {
		size_t klen;

		(void)meta_iter_key(it, &klen);
		sum += klen - MK_ID_KEY + 1;
	}
	rc = meta_iter_status(it);
	meta_iter_free(it);
	if (rc == 0)
		*out = sum;
	return rc;
}

/* Values are up to 64 KiB: packed into a heap buffer, not the stack. */
static int put_value(struct meta_txn *t, const uint8_t *k, size_t klen, const Sluice__XattrValue *m)
{
	size_t n = sluice__xattr_value__get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	int rc;

	if (!buf)
		return -ENOMEM;
	n = sluice__xattr_value__pack(m, buf);
	rc = meta_txn_put(t, k, klen, buf, n);
	free(buf);
	return rc;
}

static int xattr_body(struct meta_txn *t, struct meta_op *op)
{
	const struct xattr_arg *a = op->arg;
	Sluice__XattrValue m = SLUICE__XATTR_VALUE__INIT;
	uint8_t k[MK_NAMEKEY];
	struct meta_inode in;
	struct meta_val v;
	bool exists, set = op->opcode == MOP_SETXATTR;
	size_t klen = mk_name(k, MK_XATTR, a->ino, a->name, a->nlen), used;
	int rc = ino_load(t, a->ino, true, &in);

	if (rc == 0)
		rc = xattr_access(op->cr, &in, a->ns, true);
	if (rc)
		return rc;
	rc = meta_txn_get(t, k, klen, true, &v);
	if (rc && rc != -ENOENT)
		return rc;
	exists = rc == 0;
	meta_val_release(&v);
	if (!set) {
		if (!exists)
			return -ENODATA;
		rc = meta_txn_del(t, k, klen);
	} else if (exists && (a->flags & META_XATTR_CREATE)) {
		return -EEXIST;
	} else if (!exists && (a->flags & META_XATTR_REPLACE)) {
		return -ENODATA;
	} else {
		if (!exists) {
			rc = xattr_list_bytes(t, a->ino, &used);
			if (rc == 0 && used + a->nlen + 1 > SLUICE_META_XATTR_LIST_MAX)
				rc = -ENOSPC;
		}
		if (rc)
			return rc;
		m.value.data = (uint8_t *)a->value;
		m.value.len = a->vlen;
		rc = put_value(t, k, klen, &m);
	}
	in.ctime_ns = op->now_ns;
	if (rc == 0)
		rc = ino_store(t, &in);
	return rc;
}

static int xattr_run(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		     const struct meta_reqid *rid, uint32_t opcode, struct xattr_arg *a)
{
	struct meta_op op = {s, cr, rid, opcode, xattr_body, a, 0, {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0)
		rc = xattr_name_check(a->name, a->nlen, &a->ns);
	return rc ? rc : store_txn(&op);
}

int meta_setxattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		  const struct meta_reqid *rid, uint64_t ino, const void *name, size_t nlen,
		  const void *value, size_t vlen, uint32_t flags)
{
	struct xattr_arg a = {ino, name, value, nlen, vlen, flags, XNS_USER};

	if ((flags & ~(uint32_t)(META_XATTR_CREATE | META_XATTR_REPLACE)) ||
	    flags == (META_XATTR_CREATE | META_XATTR_REPLACE))
		return -EINVAL;
	if (vlen > SLUICE_META_XATTR_VALUE_MAX)
		return -E2BIG;
	return xattr_run(s, part, cr, rid, MOP_SETXATTR, &a);
}

int meta_removexattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		     const struct meta_reqid *rid, uint64_t ino, const void *name, size_t nlen)
{
	struct xattr_arg a = {ino, name, NULL, nlen, 0, 0, XNS_USER};

	return xattr_run(s, part, cr, rid, MOP_REMOVEXATTR, &a);
}

/* ---- layouts ----------------------------------------------------------------------------------
 */

int meta_get_layout(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t ino,
		    struct layout *out)
{
	struct meta_inode in;
	int rc = store_check_call(part, cr, NULL, false);

	if (rc == 0)
		rc = ino_load_db(s->db, ino, &in);
	if (rc == 0 && in.type != META_FT_REG && in.type != META_FT_DIR)
		rc = -EINVAL;
	if (rc == 0 && !in.has_layout)
		rc = -ENODATA;
	if (rc == 0)
		*out = in.layout;
	return rc;
}

struct layout_arg {
	uint64_t ino;
	const struct layout *l;
};

static int layout_body(struct meta_txn *t, struct meta_op *op)
{
	const struct layout_arg *a = op->arg;
	struct meta_inode in;
	uint32_t len;
	int rc = ino_load(t, a->ino, true, &in);

	if (rc)
		return rc;
	if (op->cr->uid != 0 && op->cr->uid != in.uid)
		return -EPERM;
	if (in.type == META_FT_REG) {
		if (in.size != 0)
			return -EBUSY;
		len = store_table_len(op->s, a->l->chain_table_id);
		if (len && a->l->chain_base >= len)
			return -EINVAL;
	} else if (in.type != META_FT_DIR) {
		return -EINVAL;
	}
	in.has_layout = true;
	in.layout = *a->l;
	in.ctime_ns = op->now_ns;
	return ino_store(t, &in);
}

int meta_set_layout(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		    const struct meta_reqid *rid, uint64_t ino, const struct layout *l)
{
	struct layout_arg a = {ino, l};
	struct meta_op op = {s, cr, rid, MOP_SET_LAYOUT, layout_body, &a, 0, {0}};
	uint32_t cs = l->chunk_size, len = store_table_len(s, l->chain_table_id);
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0 &&
	    (cs < SLUICE_CHUNK_SIZE_MIN || cs > SLUICE_CHUNK_SIZE_MAX || (cs & (cs - 1))))
		rc = -EINVAL;
	if (rc == 0 &&
	    (l->stripe == 0 || l->stripe > LAYOUT_STRIPE_MAX || (len && l->stripe > len)))
		rc = -EINVAL;
	return rc ? rc : store_txn(&op);
}
