/*
 * ns.c - namespace operations of the metadata store: lookup, getattr, setattr, create,
 * mkdir, mknod, symlink, readlink, link, unlink, rmdir, rmtree, rename, readdir, statfs.
 *
 * DESIGN
 * Each mutating call validates its arguments (no transaction for bad input), then runs a
 * body in store_txn. Bodies lock what they read and then write: the parent directory
 * inode first (every change to a directory's entries locks it, so an emptiness check of
 * rmdir cannot race a create), then dentries, then the inodes they name. Two directories
 * are locked in id order. Deadlocks that remain are detected by RocksDB and retried.
 *
 * Reads (lookup, getattr, readdir) use no transaction: point reads of committed data.
 * A lookup that races an unlink may find the dentry and then no inode: -ENOENT, as if the
 * unlink came first.
 *
 * Threads: any (see store.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/log.h"
#include "meta/store_i.h"

LOG_FACILITY("meta-ns");

/* ---- shared pieces --------------------------------------------------------------------- */

/* A new file's layout: the directory's, with a seed and chain_base of its own. */
static void file_layout(struct meta_store *s, const struct layout *dl, uint64_t ino,
			struct layout *out)
{
	uint64_t st = ino;
	uint32_t len = store_table_len(s, dl->chain_table_id);

	*out = *dl;
	out->seed = layout_splitmix64_next(&st);
	if (len) {
		if (out->stripe > len)
			out->stripe = len;
		out->chain_base = (uint32_t)(layout_splitmix64_next(&st) % len);
	} else {
		out->chain_base = 0;
	}
}

/* Fill a new inode of type in dir (setgid directories pass their group on). */
static void inode_init(struct meta_op *op, const struct meta_inode *dir, uint64_t ino,
		       uint32_t type, uint32_t mode, struct meta_inode *in)
{
	memset(in, 0, sizeof(*in));
	in->ino = ino;
	in->type = type;
	in->mode = mode & 07777;
	in->uid = op->cr->uid;
	in->gid = op->cr->gid;
	if (dir->mode & S_ISGID) {
		in->gid = dir->gid;
		if (type == META_FT_DIR)
			in->mode |= S_ISGID;
	}
	if (type != META_FT_DIR && (in->mode & S_ISGID) && op->cr->uid != 0 &&
	    !perm_in_group(op->cr, in->gid))
		in->mode &= ~(uint32_t)S_ISGID;
	in->nlink = type == META_FT_DIR ? 2 : 1;
	in->atime_ns = in->mtime_ns = in->ctime_ns = in->btime_ns = op->now_ns;
	if (type == META_FT_DIR) {
		in->parent = dir->ino;
		in->has_layout = dir->has_layout;
		in->layout = dir->layout;
	} else if (type == META_FT_REG && dir->has_layout) {
		in->has_layout = true;
		file_layout(op->s, &dir->layout, ino, &in->layout);
	}
}

static void touch_dir(struct meta_inode *dir, uint64_t now)
{
	dir->mtime_ns = dir->ctime_ns = now;
}

/*
 * Lock and check a parent for adding name: the parent must be a live directory we may
 * search; *d gets the existing entry (return 1) or the name is free and we may write
 * (return 0).
 */
static int parent_for_add(struct meta_txn *t, struct meta_op *op, uint64_t parent, const void *name,
			  size_t nlen, struct meta_inode *dir, struct meta_dent *d)
{
	int rc = ino_load(t, parent, true, dir);

	if (rc == 0)
		rc = dir_usable(dir);
	if (rc == 0)
		rc = perm_check(op->cr, dir, PERM_X);
	if (rc)
		return rc;
	rc = dent_load(t, parent, name, nlen, true, d);
	if (rc == 0)
		return 1;
	if (rc != -ENOENT)
		return rc;
	return perm_check(op->cr, dir, PERM_W | PERM_X);
}

/* Write a new inode, its dentry and the updated parent; the inode is the result. */
static int add_entry(struct meta_txn *t, struct meta_op *op, struct meta_inode *dir,
		     const void *name, size_t nlen, struct meta_inode *in)
{
	struct meta_dent d = {in->ino, in->type};
	int rc;

	if (in->type == META_FT_DIR) {
		if (dir->nlink >= SLUICE_META_LINK_MAX)
			return -EMLINK;
		dir->nlink++;
	}
	touch_dir(dir, op->now_ns);
	rc = ino_store(t, in);
	if (rc == 0)
		rc = dent_store(t, dir->ino, name, nlen, &d);
	if (rc == 0)
		rc = ino_store(t, dir);
	if (rc == 0) {
		op->res.has_attr = true;
		attr_from_inode(in, &op->res.attr);
	}
	return rc;
}

/* Checks of a name that is about to be created: "." and ".." exist already. */
static int new_name_check(const void *name, size_t nlen)
{
	int rc = name_check(name, nlen);

	if (rc == 0 && (name_is_dot(name, nlen) || name_is_dotdot(name, nlen)))
		rc = -EEXIST;
	return rc;
}

/* ---- lookup, getattr, readlink, statfs ---------------------------------------------------- */

int meta_getattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t ino,
		 struct meta_attr *out)
{
	struct meta_inode in;
	int rc = store_check_call(part, cr, NULL, false);

	if (rc == 0)
		rc = ino_load_db(s->db, ino, &in);
	if (rc == 0)
		attr_from_inode(&in, out);
	return rc;
}

int meta_lookup(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t parent,
		const void *name, size_t nlen, struct meta_attr *out)
{
	uint8_t k[MK_NAMEKEY];
	struct meta_inode dir, in;
	struct meta_dent d;
	struct meta_val v;
	int rc = store_check_call(part, cr, NULL, false);

	if (rc == 0)
		rc = name_check(name, nlen);
	if (rc == 0)
		rc = ino_load_db(s->db, parent, &dir);
	if (rc == 0)
		rc = dir.type == META_FT_DIR ? 0 : -ENOTDIR;
	if (rc == 0)
		rc = perm_check(cr, &dir, PERM_X);
	if (rc)
		return rc;
	if (name_is_dot(name, nlen)) {
		attr_from_inode(&dir, out);
		return 0;
	}
	if (name_is_dotdot(name, nlen)) {
		rc = ino_load_db(s->db, dir.parent ? dir.parent : META_ROOT_INO, &in);
	} else {
		rc = meta_db_get(s->db, k, mk_name(k, MK_DENTRY, parent, name, nlen), &v);
		if (rc == 0) {
			rc = dent_decode(v.data, v.len, &d);
			meta_val_release(&v);
		}
		if (rc == 0)
			rc = ino_load_db(s->db, d.ino, &in);
	}
	if (rc == 0)
		attr_from_inode(&in, out);
	return rc;
}

int meta_readlink(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t ino,
		  void *buf, size_t cap)
{
	struct meta_inode in;
	int rc = store_check_call(part, cr, NULL, false);

	if (rc == 0)
		rc = ino_load_db(s->db, ino, &in);
	if (rc)
		return rc;
	if (in.type != META_FT_LNK)
		return -EINVAL;
	if (cap < in.symlink_len)
		return -ERANGE;
	memcpy(buf, in.symlink, in.symlink_len);
	return (int)in.symlink_len;
}

int meta_statfs(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		struct meta_statfs *out)
{
	int rc = store_check_call(part, cr, NULL, false);
	uint64_t used;

	if (rc)
		return rc;
	pthread_mutex_lock(&s->alloc_mu);
	used = s->ino_end ? s->ino_next : META_ROOT_INO + 1;
	pthread_mutex_unlock(&s->alloc_mu);
	out->files = used - 1;
	out->files_free = (UINT64_MAX >> 1) - used; /* ids are u64; keep f_ffree signed-safe */
	out->name_max = SLUICE_NAME_MAX;
	return 0;
}

/* ---- setattr ------------------------------------------------------------------------------ */

struct setattr_arg {
	uint64_t ino;
	const struct meta_setattr *sa;
};

static int setattr_owner(struct meta_op *op, struct meta_inode *in, const struct meta_setattr *sa)
{
	const struct meta_creds *cr = op->cr;
	bool root = cr->uid == 0, owner = root || cr->uid == in->uid;

	if (sa->mask & META_SET_MODE) {
		if (!owner)
			return -EPERM;
		in->mode = sa->mode & 07777;
		if (!root && !perm_in_group(cr, in->gid))
			in->mode &= ~(uint32_t)S_ISGID;
	}
	/* Linux chown_ok/chgrp_ok: a non-root caller may only "change" the owner to the
	 * owner it already is, and the group to one it is in, and only on its own files. */
	if ((sa->mask & META_SET_UID) && !root && (cr->uid != in->uid || sa->uid != in->uid))
		return -EPERM;
	if ((sa->mask & META_SET_GID) && !root &&
	    !(cr->uid == in->uid && (sa->gid == in->gid || perm_in_group(cr, sa->gid))))
		return -EPERM;
	if (sa->mask & (META_SET_UID | META_SET_GID)) {
		bool changed = ((sa->mask & META_SET_UID) && sa->uid != in->uid) ||
			       ((sa->mask & META_SET_GID) && sa->gid != in->gid);

		if (sa->mask & META_SET_UID)
			in->uid = sa->uid;
		if (sa->mask & META_SET_GID)
			in->gid = sa->gid;
		if (changed && in->type == META_FT_REG) {
			in->mode &= ~(uint32_t)S_ISUID;
			if (in->mode & S_IXGRP)
				in->mode &= ~(uint32_t)S_ISGID;
		}
	}
	if (sa->mask & (META_SET_ATIME | META_SET_MTIME)) {
		if (!owner)
			return -EPERM;
		if (sa->mask & META_SET_ATIME)
			in->atime_ns = sa->atime_ns;
		if (sa->mask & META_SET_MTIME)
			in->mtime_ns = sa->mtime_ns;
	}
	if (sa->mask & (META_SET_ATIME_NOW | META_SET_MTIME_NOW)) {
		if (!owner && perm_check(cr, in, PERM_W))
			return -EACCES;
		if (sa->mask & META_SET_ATIME_NOW)
			in->atime_ns = op->now_ns;
		if (sa->mask & META_SET_MTIME_NOW)
			in->mtime_ns = op->now_ns;
	}
	return 0;
}

/* A write session of the caller on ino: 1, 0 if none, or an error. */
static int own_session(struct meta_txn *t, struct meta_op *op, uint64_t ino, uint64_t sid)
{
	uint8_t k[MK_PAIR];
	struct meta_val v;
	int rc;

	if (sid == 0 || !op->rid)
		return 0;
	rc = meta_txn_get(t, k, mk_pair(k, MK_SESSION, ino, sid), false, &v);
	if (rc == -ENOENT)
		return 0;
	meta_val_release(&v);
	return rc ? rc : 1;
}

/* Largest length a file may have: what its chunk ids can address (layout.h), and never
 * more than a signed 64-bit off_t. */
uint64_t inode_size_max(const struct meta_inode *in)
{
	uint64_t cs = in->layout.chunk_size, max = (uint64_t)INT64_MAX;

	if (in->has_layout && cs >= SLUICE_CHUNK_SIZE_MIN && cs <= SLUICE_CHUNK_SIZE_MAX &&
	    (cs & (cs - 1)) == 0 && cs * LAYOUT_CHUNKS_MAX < max)
		max = cs * LAYOUT_CHUNKS_MAX;
	return max;
}

static int setattr_body(struct meta_txn *t, struct meta_op *op)
{
	struct setattr_arg *a = op->arg;
	const struct meta_setattr *sa = a->sa;
	struct meta_inode in;
	int rc = ino_load(t, a->ino, true, &in);

	if (rc)
		return rc;
	if (sa->mask & META_SET_SIZE) {
		if (in.type == META_FT_DIR)
			return -EISDIR;
		if (in.type != META_FT_REG)
			return -EINVAL;
		if (sa->size > inode_size_max(&in))
			return -EFBIG;
		rc = own_session(t, op, in.ino, sa->session_id);
		if (rc < 0)
			return rc;
		if (rc == 0 && perm_check(op->cr, &in, PERM_W))
			return -EACCES;
		in.size = sa->size;
		in.mtime_ns = op->now_ns;
	}
	rc = setattr_owner(op, &in, sa);
	if (rc)
		return rc;
	if (sa->mask) {
		in.ctime_ns = op->now_ns;
		rc = ino_store(t, &in);
	}
	if (rc == 0) {
		op->res.has_attr = true;
		attr_from_inode(&in, &op->res.attr);
	}
	return rc;
}

int meta_setattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		 const struct meta_reqid *rid, uint64_t ino, const struct meta_setattr *sa,
		 struct meta_attr *out)
{
	struct setattr_arg a = {ino, sa};
	struct meta_op op = {s, cr, rid, MOP_SETATTR, setattr_body, &a, 0, {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0 && (sa->mask & ~(uint32_t)META_SET_ALL_))
		rc = -EINVAL;
	if (rc == 0 && (sa->mask & META_SET_MODE) && (sa->mode & ~07777u))
		rc = -EINVAL;
	if (rc == 0 && (sa->mask & META_SET_ATIME) && (sa->mask & META_SET_ATIME_NOW))
		rc = -EINVAL;
	if (rc == 0 && (sa->mask & META_SET_MTIME) && (sa->mask & META_SET_MTIME_NOW))
		rc = -EINVAL;
	if (rc == 0)
		rc = store_txn(&op);
	if (rc == 0)
		*out = op.res.attr;
	return rc;
}

/* ---- create, mkdir, mknod, symlink -------------------------------------------------------- */

struct mk_arg {
	uint64_t parent;
	const void *name;
	size_t nlen;
	uint32_t type, mode, flags;
	uint64_t rdev;
	const void *target;
	size_t tlen;
};

static int mk_body(struct meta_txn *t, struct meta_op *op)
{
	struct mk_arg *a = op->arg;
	struct meta_inode dir, in;
	struct meta_dent d;
	uint64_t ino;
	int rc = parent_for_add(t, op, a->parent, a->name, a->nlen, &dir, &d);

	if (rc == 1 && op->opcode == MOP_CREATE && !(a->flags & O_EXCL)) {
		if (d.type == META_FT_DIR)
			return -EISDIR; /* open(O_CREAT) of a directory, whatever the access */
		rc = ino_load(t, d.ino, true, &in);
		if (rc == 0)
			rc = open_locked(t, op, &in, a->flags & ~(uint32_t)O_CREAT);
		return rc;
	}
	if (rc)
		return rc == 1 ? -EEXIST : rc;
	rc = store_alloc_ino(op->s, &ino);
	if (rc)
		return rc;
	inode_init(op, &dir, ino, a->type, a->mode, &in);
	in.rdev = a->rdev;
	if (a->type == META_FT_LNK) {
		memcpy(in.symlink, a->target, a->tlen);
		in.symlink_len = (uint32_t)a->tlen;
		in.size = a->tlen;
	}
	rc = add_entry(t, op, &dir, a->name, a->nlen, &in);
	if (rc == 0 && op->opcode == MOP_CREATE) {
		op->res.created = true;
		rc = open_locked(t, op, &in, a->flags & ~(uint32_t)(O_CREAT | O_TRUNC));
	}
	return rc;
}

static int mk_run(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		  const struct meta_reqid *rid, uint32_t opcode, struct mk_arg *a,
		  struct meta_result *res)
{
	struct meta_op op = {s, cr, rid, opcode, mk_body, a, 0, {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0)
		rc = new_name_check(a->name, a->nlen);
	if (rc == 0)
		rc = store_txn(&op);
	if (rc == 0)
		*res = op.res;
	return rc;
}

int meta_create(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen,
		uint32_t mode, uint32_t flags, struct meta_open_result *out)
{
	struct mk_arg a = {parent, name, nlen, META_FT_REG, mode, flags, 0, NULL, 0};
	struct meta_result res;
	int rc;

	if ((flags & O_ACCMODE) == O_ACCMODE || (mode & ~07777u))
		return -EINVAL;
	rc = mk_run(s, part, cr, rid, MOP_CREATE, &a, &res);
	if (rc)
		return rc;
	out->attr = res.attr;
	out->session_id = res.session_id;
	out->created = res.created;
	return 0;
}

int meta_mkdir(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
	       const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen,
	       uint32_t mode, struct meta_attr *out)
{
	struct mk_arg a = {parent, name, nlen, META_FT_DIR, mode & 07777, 0, 0, NULL, 0};
	struct meta_result res;
	int rc;

	if (mode & ~07777u)
		return -EINVAL;
	rc = mk_run(s, part, cr, rid, MOP_MKDIR, &a, &res);
	if (rc == 0)
		*out = res.attr;
	return rc;
}

int meta_mknod(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
	       const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen,
	       uint32_t type, uint32_t mode, uint64_t rdev, struct meta_attr *out)
{
	struct mk_arg a = {parent, name, nlen, type, mode, 0, rdev, NULL, 0};
	struct meta_result res;
	int rc;

	if (mode & ~07777u)
		return -EINVAL;
	switch (type) {
	case META_FT_REG:
	case META_FT_FIFO:
	case META_FT_SOCK:
		a.rdev = 0;
		break;
	case META_FT_CHR:
	case META_FT_BLK:
		if (cr && cr->uid != 0)
			return -EPERM;
		break;
	default:
		return -EINVAL;
	}
	rc = mk_run(s, part, cr, rid, MOP_MKNOD, &a, &res);
	if (rc == 0)
		*out = res.attr;
	return rc;
}

int meta_symlink(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		 const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen,
		 const void *target, size_t tlen, struct meta_attr *out)
{
	struct mk_arg a = {parent, name, nlen, META_FT_LNK, 0777, 0, 0, target, tlen};
	struct meta_result res;
	int rc;

	if (tlen == 0)
		return -ENOENT;
	if (tlen > SLUICE_META_SYMLINK_MAX)
		return -ENAMETOOLONG;
	if (memchr(target, '\0', tlen))
		return -EINVAL;
	rc = mk_run(s, part, cr, rid, MOP_SYMLINK, &a, &res);
	if (rc == 0)
		*out = res.attr;
	return rc;
}

/* ---- link ------------------------------------------------------------------------------------ */

struct link_arg {
	uint64_t ino, parent;
	const void *name;
	size_t nlen;
};

static int link_body(struct meta_txn *t, struct meta_op *op)
{
	struct link_arg *a = op->arg;
	struct meta_inode dir, in;
	struct meta_dent d;
	int rc = parent_for_add(t, op, a->parent, a->name, a->nlen, &dir, &d);

	if (rc)
		return rc == 1 ? -EEXIST : rc;
	rc = ino_load(t, a->ino, true, &in);
	if (rc)
		return rc;
	if (in.type == META_FT_DIR)
		return -EPERM;
	if (in.nlink == 0)
		return -ENOENT;
	if (in.nlink >= SLUICE_META_LINK_MAX)
		return -EMLINK;
	in.nlink++;
	in.ctime_ns = op->now_ns;
	d.ino = in.ino;
	d.type = in.type;
	touch_dir(&dir, op->now_ns);
	rc = ino_store(t, &in);
	if (rc == 0)
		rc = dent_store(t, dir.ino, a->name, a->nlen, &d);
	if (rc == 0)
		rc = ino_store(t, &dir);
	if (rc == 0) {
		op->res.has_attr = true;
		attr_from_inode(&in, &op->res.attr);
	}
	return rc;
}

int meta_link(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
	      const struct meta_reqid *rid, uint64_t ino, uint64_t new_parent, const void *name,
	      size_t nlen, struct meta_attr *out)
{
	struct link_arg a = {ino, new_parent, name, nlen};
	struct meta_op op = {s, cr, rid, MOP_LINK, link_body, &a, 0, {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0)
		rc = new_name_check(name, nlen);
	if (rc == 0)
		rc = store_txn(&op);
	if (rc == 0)
		*out = op.res.attr;
	return rc;
}

/* ---- unlink, rmdir, rmtree ----------------------------------------------------------------- */

struct rm_arg {
	uint64_t parent;
	const void *name;
	size_t nlen;
};

/* Lock the parent and the victim for removal; checks shared by the three. */
static int rm_prepare(struct meta_txn *t, struct meta_op *op, const struct rm_arg *a,
		      struct meta_inode *dir, struct meta_inode *in)
{
	struct meta_dent d;
	int rc = ino_load(t, a->parent, true, dir);

	if (rc == 0)
		rc = dir_usable(dir);
	if (rc == 0)
		rc = perm_check(op->cr, dir, PERM_W | PERM_X);
	if (rc == 0)
		rc = dent_load(t, a->parent, a->name, a->nlen, true, &d);
	if (rc)
		return rc;
	rc = ino_load(t, d.ino, true, in);
	if (rc == -ENOENT) { /* a dentry to a missing inode: corruption, for fsck */
		log_debug("dentry %llu/%.*s names missing inode %llu",
			  (unsigned long long)a->parent, (int)a->nlen, (const char *)a->name,
			  (unsigned long long)d.ino);
		rc = -EIO;
	}
	if (rc == 0 && op->opcode == MOP_UNLINK && in->type == META_FT_DIR)
		rc = -EISDIR;
	if (rc == 0 && op->opcode != MOP_UNLINK && in->type != META_FT_DIR)
		rc = -ENOTDIR;
	if (rc == 0)
		rc = perm_sticky(op->cr, dir, in);
	if (rc == 0)
		rc = dent_del(t, a->parent, a->name, a->nlen);
	if (rc == 0)
		touch_dir(dir, op->now_ns);
	return rc;
}

static int unlink_body(struct meta_txn *t, struct meta_op *op)
{
	struct meta_inode dir, in;
	int rc = rm_prepare(t, op, op->arg, &dir, &in);

	if (rc)
		return rc;
	in.nlink--;
	in.ctime_ns = op->now_ns;
	rc = ino_release(op, t, &in);
	if (rc == 0)
		rc = ino_store(t, &dir);
	return rc;
}

static int rmdir_body(struct meta_txn *t, struct meta_op *op)
{
	struct meta_inode dir, in;
	int rc = rm_prepare(t, op, op->arg, &dir, &in);

	if (rc == 0)
		rc = range_has_key(t, MK_DENTRY, in.ino);
	if (rc)
		return rc == 1 ? -ENOTEMPTY : rc;
	rc = ino_delete(t, in.ino); /* no chunks: nothing for GC to do */
	dir.nlink--;
	if (rc == 0)
		rc = ino_store(t, &dir);
	return rc;
}

static int rmtree_body(struct meta_txn *t, struct meta_op *op)
{
	struct meta_inode dir, in;
	int rc = rm_prepare(t, op, op->arg, &dir, &in);

	if (rc == 0 && op->cr->uid != 0 && op->cr->uid != in.uid)
		rc = -EPERM;
	if (rc == 0)
		rc = perm_check(op->cr, &in, PERM_W | PERM_X);
	if (rc)
		return rc;
	/* Detached: nlink 0 makes it refuse new entries (dir_usable) while GC empties it. */
	in.nlink = 0;
	in.ctime_ns = op->now_ns;
	dir.nlink--;
	rc = gc_queue(t, &in, op->now_ns + op->s->cfg.gc_delay_ns, 0, op->now_ns);
	if (rc == 0)
		rc = ino_store(t, &in);
	if (rc == 0)
		rc = ino_store(t, &dir);
	return rc;
}

static int rm_run(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		  const struct meta_reqid *rid, uint32_t opcode,
		  int (*body)(struct meta_txn *, struct meta_op *), uint64_t parent,
		  const void *name, size_t nlen)
{
	struct rm_arg a = {parent, name, nlen};
	struct meta_op op = {s, cr, rid, opcode, body, &a, 0, {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0)
		rc = name_check(name, nlen);
	if (rc)
		return rc;
	if (name_is_dot(name, nlen))
		return opcode == MOP_UNLINK ? -EISDIR : -EINVAL;
	if (name_is_dotdot(name, nlen))
		return opcode == MOP_UNLINK ? -EISDIR : -ENOTEMPTY;
	return store_txn(&op);
}

int meta_unlink(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen)
{
	return rm_run(s, part, cr, rid, MOP_UNLINK, unlink_body, parent, name, nlen);
}

int meta_rmdir(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
	       const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen)
{
	return rm_run(s, part, cr, rid, MOP_RMDIR, rmdir_body, parent, name, nlen);
}

int meta_rmtree(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen)
{
	return rm_run(s, part, cr, rid, MOP_RMTREE, rmtree_body, parent, name, nlen);
}

/* ---- readdir -------------------------------------------------------------------------------- */

int meta_readdir(struct meta_store *s, uint32_t part, const struct meta_creds *cr, uint64_t ino,
		 const void *cursor, size_t clen, uint32_t max, bool plus, meta_dirent_fn fn,
		 void *arg, bool *eof)
{
	uint8_t p[MK_ID_KEY];
	struct meta_inode dir;
	struct meta_iter *it;
	int rc = store_check_call(part, cr, NULL, false), n = 0;

	if (rc == 0 && clen && name_check(cursor, clen))
		rc = -EINVAL;
	if (rc == 0 && max > SLUICE_META_READDIR_MAX)
		rc = -EINVAL;
	if (rc == 0)
		rc = ino_load_db(s->db, ino, &dir);
	if (rc == 0 && dir.type != META_FT_DIR)
		rc = -ENOTDIR;
	if (rc == 0)
		rc = perm_check(cr, &dir, PERM_R);
	if (rc == 0)
		rc = meta_iter_db(s->db, NULL, p, mk_id(p, MK_DENTRY, ino), &it);
	if (rc)
		return rc;
	if (max == 0)
		max = SLUICE_META_READDIR_MAX;
	meta_iter_seek(it, cursor, clen);
	for (; meta_iter_valid(it); meta_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = meta_iter_key(it, &klen);
		const void *v = meta_iter_value(it, &vlen);
		struct meta_inode in;
		struct meta_attr attr;
		struct meta_dent d;

		if (clen && klen - MK_ID_KEY == clen && memcmp(k + MK_ID_KEY, cursor, clen) == 0)
			continue; /* the cursor itself was returned last time */
		if ((uint32_t)n == max)
			break; /* full, and this entry shows there are more */
		if (klen <= MK_ID_KEY || dent_decode(v, vlen, &d)) {
			rc = -EIO;
			break;
		}
		if (plus) {
			if (ino_load_db(s->db, d.ino, &in))
				continue; /* removed since: as if we listed after */
			attr_from_inode(&in, &attr);
		}
		if (fn(arg, k + MK_ID_KEY, klen - MK_ID_KEY, d.ino, d.type, plus ? &attr : NULL))
			break; /* this entry was not taken: not the end */
		n++;
	}
	if (rc == 0)
		rc = meta_iter_status(it);
	if (rc == 0)
		*eof = !meta_iter_valid(it);
	meta_iter_free(it);
	return rc ? rc : n;
}

/* ---- rename ---------------------------------------------------------------------------------- */

struct rename_arg {
	uint64_t p1, p2;
	const void *n1, *n2;
	size_t l1, l2;
	uint32_t flags;
};

/* Is a an ancestor of (or equal to) d? Walks parent pointers, which only change under
 * rename_mu (held by our caller). 1, 0, -ELOOP past SLUICE_META_DEPTH_MAX, or an error. */
static int is_ancestor(struct meta_txn *t, uint64_t a, uint64_t d)
{
	struct meta_inode in;

	for (unsigned depth = 0; depth < SLUICE_META_DEPTH_MAX; depth++) {
		int rc;

		if (d == a)
			return 1;
		if (d == META_ROOT_INO)
			return 0;
		rc = ino_load(t, d, false, &in);
		if (rc)
			return rc;
		if (in.type != META_FT_DIR || in.nlink == 0)
			return -ENOENT; /* below a tree being removed */
		d = in.parent;
	}
	return -ELOOP;
}

/* Replaced dst: it loses its name (and a directory its inode). */
static int rename_drop(struct meta_txn *t, struct meta_op *op, struct meta_inode *dst,
		       struct meta_inode *d2)
{
	if (dst->type == META_FT_DIR) {
		d2->nlink--;
		return ino_delete(t, dst->ino);
	}
	dst->nlink--;
	dst->ctime_ns = op->now_ns;
	return ino_release(op, t, dst);
}

/* Moving a directory from d1 to d2 (different): fix link counts and its parent. */
static int move_dir(struct meta_inode *in, struct meta_inode *from, struct meta_inode *to)
{
	if (to->nlink >= SLUICE_META_LINK_MAX)
		return -EMLINK;
	from->nlink--;
	to->nlink++;
	in->parent = to->ino;
	return 0;
}

/* Type, emptiness and loop checks before anything is written. */
static int rename_checks(struct meta_txn *t, struct meta_op *op, const struct rename_arg *a,
			 struct meta_inode *src, struct meta_inode *dst, bool have_dst)
{
	bool exch = a->flags & META_RENAME_EXCHANGE;
	int rc;

	if (a->p1 != a->p2) {
		if (src->type == META_FT_DIR) {
			rc = perm_check(op->cr, src, PERM_W); /* its ".." changes */
			if (rc == 0)
				rc = is_ancestor(t, src->ino, a->p2);
			if (rc)
				return rc == 1 ? -EINVAL : rc;
		}
		if (exch && dst->type == META_FT_DIR) {
			rc = perm_check(op->cr, dst, PERM_W);
			if (rc == 0)
				rc = is_ancestor(t, dst->ino, a->p1);
			if (rc)
				return rc == 1 ? -EINVAL : rc;
		}
	}
	if (!have_dst || exch)
		return 0;
	if (src->type == META_FT_DIR && dst->type != META_FT_DIR)
		return -ENOTDIR;
	if (src->type != META_FT_DIR && dst->type == META_FT_DIR)
		return -EISDIR;
	if (dst->type == META_FT_DIR) {
		rc = range_has_key(t, MK_DENTRY, dst->ino);
		if (rc)
			return rc == 1 ? -ENOTEMPTY : rc;
	}
	return 0;
}

static int rename_lock_dirs(struct meta_txn *t, struct meta_op *op, const struct rename_arg *a,
			    struct meta_inode *dirs)
{
	uint64_t lo = a->p1 < a->p2 ? a->p1 : a->p2, hi = a->p1 < a->p2 ? a->p2 : a->p1;
	int rc = ino_load(t, lo, true, &dirs[0]);

	if (rc == 0 && hi != lo)
		rc = ino_load(t, hi, true, &dirs[1]);
	for (int i = 0; rc == 0 && i < (hi != lo ? 2 : 1); i++) {
		rc = dir_usable(&dirs[i]);
		if (rc == 0)
			rc = perm_check(op->cr, &dirs[i], PERM_W | PERM_X);
	}
	return rc;
}

static int rename_apply(struct meta_txn *t, struct meta_op *op, const struct rename_arg *a,
			struct meta_inode *d1, struct meta_inode *d2, struct meta_inode *src,
			struct meta_inode *dst, bool have_dst)
{
	struct meta_dent ds = {src->ino, src->type}, dd = {dst->ino, dst->type};
	bool exch = a->flags & META_RENAME_EXCHANGE;
	int rc = 0;

	if (exch) {
		rc = dent_store(t, a->p1, a->n1, a->l1, &dd);
		if (rc == 0 && a->p1 != a->p2 && dst->type == META_FT_DIR)
			rc = move_dir(dst, d2, d1);
		dst->ctime_ns = op->now_ns;
		if (rc == 0)
			rc = ino_store(t, dst);
	} else {
		rc = dent_del(t, a->p1, a->n1, a->l1);
		if (rc == 0 && have_dst)
			rc = rename_drop(t, op, dst, d2);
	}
	if (rc == 0)
		rc = dent_store(t, a->p2, a->n2, a->l2, &ds);
	if (rc == 0 && a->p1 != a->p2 && src->type == META_FT_DIR)
		rc = move_dir(src, d1, d2);
	src->ctime_ns = op->now_ns;
	if (rc == 0)
		rc = ino_store(t, src);
	touch_dir(d1, op->now_ns);
	touch_dir(d2, op->now_ns);
	if (rc == 0)
		rc = ino_store(t, d1);
	if (rc == 0 && d2 != d1)
		rc = ino_store(t, d2);
	return rc;
}

static int rename_body(struct meta_txn *t, struct meta_op *op)
{
	struct rename_arg *a = op->arg;
	struct meta_inode dirs[2], src, dst, *d1, *d2;
	struct meta_dent ds, dd;
	bool have_dst;
	int rc = rename_lock_dirs(t, op, a, dirs);

	if (rc)
		return rc;
	d1 = dirs[0].ino == a->p1 ? &dirs[0] : &dirs[1];
	d2 = dirs[0].ino == a->p2 ? &dirs[0] : &dirs[1];
	rc = dent_load(t, a->p1, a->n1, a->l1, true, &ds);
	if (rc == 0)
		rc = ino_load(t, ds.ino, true, &src);
	if (rc)
		return rc;
	rc = dent_load(t, a->p2, a->n2, a->l2, true, &dd);
	if (rc && rc != -ENOENT)
		return rc;
	have_dst = rc == 0;
	if (have_dst && (a->flags & META_RENAME_NOREPLACE))
		return -EEXIST;
	if (have_dst) {
		rc = ino_load(t, dd.ino, true, &dst);
		if (rc)
			return rc;
		if (dst.ino == src.ino)
			return 0; /* two links of one inode: rename does nothing */
	} else {
		memset(&dst, 0, sizeof(dst));
	}
	if (!have_dst && (a->flags & META_RENAME_EXCHANGE))
		return -ENOENT;
	rc = perm_sticky(op->cr, d1, &src);
	if (rc == 0 && have_dst)
		rc = perm_sticky(op->cr, d2, &dst);
	if (rc == 0)
		rc = rename_checks(t, op, a, &src, &dst, have_dst);
	if (rc == 0)
		rc = rename_apply(t, op, a, d1, d2, &src, &dst, have_dst);
	return rc;
}

int meta_rename(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
		const struct meta_reqid *rid, uint64_t parent, const void *name, size_t nlen,
		uint64_t new_parent, const void *new_name, size_t new_nlen, uint32_t flags)
{
	struct rename_arg a = {parent, new_parent, name, new_name, nlen, new_nlen, flags};
	struct meta_op op = {s, cr, rid, MOP_RENAME, rename_body, &a, 0, {0}};
	int rc = store_check_call(part, cr, rid, true);

	if (rc == 0 && ((flags & ~(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE)) ||
			flags == (META_RENAME_NOREPLACE | META_RENAME_EXCHANGE)))
		rc = -EINVAL;
	if (rc == 0)
		rc = name_check(name, nlen);
	if (rc == 0)
		rc = name_check(new_name, new_nlen);
	if (rc == 0 && (name_is_dot(name, nlen) || name_is_dotdot(name, nlen) ||
			name_is_dot(new_name, new_nlen) || name_is_dotdot(new_name, new_nlen)))
		rc = -EBUSY;
	if (rc)
		return rc;
	if (parent == new_parent && nlen == new_nlen && memcmp(name, new_name, nlen) == 0) {
		struct meta_attr at; /* same name: nothing to do once it is known to exist */

		rc = meta_lookup(s, part, cr, parent, name, nlen, &at);
		return rc == 0 && (flags & META_RENAME_NOREPLACE) ? -EEXIST : rc;
	}
	if (parent != new_parent)
		pthread_mutex_lock(&s->rename_mu);
	rc = store_txn(&op);
	if (parent != new_parent)
		pthread_mutex_unlock(&s->rename_mu);
	return rc;
}
