/*
 * fsck.c - consistency check of the whole metadata store (meta_fsck).
 *
 * DESIGN
 * Five scans at one RocksDB snapshot, so concurrent operations cannot make a consistent
 * store look broken: inodes (I) into an in-memory table, then dentries (D), GC entries (G),
 * sessions (S) and xattrs (X) checked against it and counted into it, then one pass over
 * the table for what only totals tell (link counts, reachability). The table is open
 * addressing on the inode id, about 48 bytes an inode, grown by doubling.
 *
 * Invariants checked (each violation is one problem line):
 *   - every key decodes and has the shape of its kind;
 *   - a dentry's parent is a directory and its inode exists with the dentry's type
 *     (a missing inode is a "dangling dentry");
 *   - a directory has one dentry (the root none) in the directory its parent pointer names,
 *     and nlink = 2 + its subdirectories; a non-directory's nlink equals its dentries;
 *   - an inode no dentry reaches is the root, queued for GC, or held by a write session
 *     (else it is an "orphan");
 *   - GC entries, sessions and xattrs belong to existing inodes, and an inode marked as
 *     queued has its GC entry.
 * Directories queued for GC (rmtree) are being taken apart: their counts are not checked.
 *
 * Threads: any; read-only; blocking (a full scan).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "meta.pb-c.h"
#include "meta/store_i.h"

LOG_FACILITY("meta-fsck");

struct fent {
	uint64_t ino;
	uint64_t parent;      /* directories: their parent pointer */
	uint64_t dent_parent; /* directories: the directory holding their dentry */
	uint64_t gc_due;
	uint32_t nlink, links, subdirs;
	uint8_t type;
	bool in_gc, session;
};

struct fsck {
	struct meta_store *s;
	struct meta_snapshot *snap;
	struct fent *tab;
	size_t cap, n;
	struct meta_fsck_report r;
	void (*problem)(void *arg, const char *line);
	void *arg;
};

static void report(struct fsck *f, uint64_t *counter, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct fsck *f, uint64_t *counter, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	(*counter)++;
	if (!f->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	f->problem(f->arg, line);
}

static size_t slot_of(const struct fsck *f, uint64_t ino)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 17) & (f->cap - 1);
}

static struct fent *find(struct fsck *f, uint64_t ino)
{
	for (size_t i = slot_of(f, ino);; i = (i + 1) & (f->cap - 1)) {
		if (f->tab[i].ino == ino)
			return &f->tab[i];
		if (f->tab[i].ino == 0)
			return NULL;
	}
}

static int grow(struct fsck *f)
{
	struct fent *old = f->tab;
	size_t ocap = f->cap;

	f->cap = ocap ? ocap * 2 : 1024;
	f->tab = calloc(f->cap, sizeof(*f->tab));
	if (!f->tab) {
		f->tab = old;
		f->cap = ocap;
		return -ENOMEM;
	}
	for (size_t i = 0; i < ocap; i++) {
		size_t j;

		if (!old[i].ino)
			continue;
		for (j = slot_of(f, old[i].ino); f->tab[j].ino; j = (j + 1) & (f->cap - 1))
			;
		f->tab[j] = old[i];
	}
	free(old);
	return 0;
}

static int insert(struct fsck *f, const struct meta_inode *in)
{
	size_t i;

	if ((f->n + 1) * 2 > f->cap) {
		int rc = grow(f);

		if (rc)
			return rc;
	}
	for (i = slot_of(f, in->ino); f->tab[i].ino; i = (i + 1) & (f->cap - 1))
		;
	f->tab[i] = (struct fent){.ino = in->ino,
				  .parent = in->parent,
				  .gc_due = in->gc_due_ns,
				  .nlink = in->nlink,
				  .type = (uint8_t)in->type};
	f->n++;
	return 0;
}

/* Run fn over every key of the one-byte prefix tag, at the snapshot. */
static int scan(struct fsck *f, char tag,
		int (*fn)(struct fsck *f, const uint8_t *k, size_t klen, const void *v,
			  size_t vlen))
{
	uint8_t p = (uint8_t)tag;
	struct meta_iter *it;
	int rc = meta_iter_db(f->s->db, f->snap, &p, 1, &it);

	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); rc == 0 && meta_iter_valid(it); meta_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = meta_iter_key(it, &klen);
		const void *v = meta_iter_value(it, &vlen);

		rc = fn(f, k, klen, v, vlen);
	}
	if (rc == 0)
		rc = meta_iter_status(it);
	meta_iter_free(it);
	return rc;
}

static int scan_inode(struct fsck *f, const uint8_t *k, size_t klen, const void *v, size_t vlen)
{
	struct meta_inode *in = malloc(sizeof(*in)); /* large: symlink buffer */
	int rc = 0;

	if (!in)
		return -ENOMEM;
	if (klen != MK_ID_KEY || mk_get_be64(k + 1) == 0)
		report(f, &f->r.other, "inode key of %zu bytes", klen);
	else if (inode_decode(v, vlen, mk_get_be64(k + 1), in))
		report(f, &f->r.other, "inode %" PRIu64 ": undecodable", mk_get_be64(k + 1));
	else
		rc = insert(f, in);
	if (rc == 0 && klen == MK_ID_KEY)
		f->r.inodes++;
	free(in);
	return rc;
}

static int scan_dentry(struct fsck *f, const uint8_t *k, size_t klen, const void *v, size_t vlen)
{
	struct meta_dent d;
	struct fent *p, *c;
	uint64_t parent;
	int nlen = (int)(klen - MK_ID_KEY);

	f->r.dentries++;
	if (klen <= MK_ID_KEY || name_check(k + MK_ID_KEY, klen - MK_ID_KEY) ||
	    name_is_dot(k + MK_ID_KEY, klen - MK_ID_KEY) ||
	    name_is_dotdot(k + MK_ID_KEY, klen - MK_ID_KEY)) {
		report(f, &f->r.other, "dentry key of %zu bytes with a bad name", klen);
		return 0;
	}
	parent = mk_get_be64(k + 1);
	if (dent_decode(v, vlen, &d)) {
		report(f, &f->r.other, "dentry %" PRIu64 "/%.*s: undecodable", parent, nlen,
		       k + MK_ID_KEY);
		return 0;
	}
	p = find(f, parent);
	if (!p || p->type != META_FT_DIR)
		report(f, &f->r.other, "dentry %" PRIu64 "/%.*s: parent is %s", parent, nlen,
		       k + MK_ID_KEY, p ? "not a directory" : "missing");
	c = find(f, d.ino);
	if (!c) {
		report(f, &f->r.dangling_dentries,
		       "dentry %" PRIu64 "/%.*s: inode %" PRIu64 " missing", parent, nlen,
		       k + MK_ID_KEY, d.ino);
		return 0;
	}
	if (c->type != d.type)
		report(f, &f->r.other,
		       "dentry %" PRIu64 "/%.*s: type %u, inode %" PRIu64 " has type %u", parent,
		       nlen, k + MK_ID_KEY, d.type, d.ino, c->type);
	c->links++;
	if (c->type == META_FT_DIR) {
		if (p)
			p->subdirs++;
		if (c->links > 1)
			report(f, &f->r.other, "directory %" PRIu64 " has %u dentries", c->ino,
			       c->links);
		c->dent_parent = parent;
	}
	return 0;
}

static int scan_gc(struct fsck *f, const uint8_t *k, size_t klen, const void *v, size_t vlen)
{
	struct fent *e;

	f->r.gc_queued++;
	if (klen != MK_PAIR) {
		report(f, &f->r.other, "GC key of %zu bytes", klen);
		return 0;
	}
	e = find(f, mk_get_be64(k + 9));
	if (!e)
		report(f, &f->r.other, "GC entry for missing inode %" PRIu64, mk_get_be64(k + 9));
	else if (e->gc_due != mk_get_be64(k + 1))
		report(f, &f->r.other, "GC entry for inode %" PRIu64 " that is not queued there",
		       e->ino);
	else
		e->in_gc = true;
	return 0;
}

static int scan_session(struct fsck *f, const uint8_t *k, size_t klen, const void *v, size_t vlen)
{
	struct fent *e;

	f->r.sessions++;
	if (klen != MK_PAIR) {
		report(f, &f->r.other, "session key of %zu bytes", klen);
		return 0;
	}
	e = find(f, mk_get_be64(k + 1));
	if (!e || e->type != META_FT_REG)
		report(f, &f->r.other, "session %" PRIu64 " of %s inode %" PRIu64,
		       mk_get_be64(k + 9), e ? "a non-file" : "missing", mk_get_be64(k + 1));
	else
		e->session = true;
	return 0;
}

static int scan_xattr(struct fsck *f, const uint8_t *k, size_t klen, const void *v, size_t vlen)
{
	if (klen <= MK_ID_KEY || !find(f, mk_get_be64(k + 1)))
		report(f, &f->r.other, "xattr of missing inode %" PRIu64,
		       klen >= MK_ID_KEY ? mk_get_be64(k + 1) : 0);
	return 0;
}

static void check_dir(struct fsck *f, const struct fent *e)
{
	bool root = e->ino == META_ROOT_INO;

	if (e->in_gc)
		return; /* being taken apart */
	if (e->links == 0 && !root) {
		report(f, &f->r.orphans, "directory %" PRIu64 " unreachable and not queued",
		       e->ino);
		return;
	}
	if (root && e->links)
		report(f, &f->r.other, "the root has a dentry");
	if (e->nlink != 2 + e->subdirs)
		report(f, &f->r.nlink_mismatches, "directory %" PRIu64 ": nlink %u, expected %u",
		       e->ino, e->nlink, 2 + e->subdirs);
	if (!root && e->parent != e->dent_parent)
		report(f, &f->r.other,
		       "directory %" PRIu64 ": parent %" PRIu64 " but its dentry is in %" PRIu64,
		       e->ino, e->parent, e->dent_parent);
}

static void check_all(struct fsck *f)
{
	struct fent *root = find(f, META_ROOT_INO);

	if (!root || root->type != META_FT_DIR)
		report(f, &f->r.other, "root directory %s",
		       root ? "is not a directory" : "missing");
	for (size_t i = 0; i < f->cap; i++) {
		const struct fent *e = &f->tab[i];

		if (!e->ino)
			continue;
		if (e->gc_due && !e->in_gc)
			report(f, &f->r.other, "inode %" PRIu64 " marked queued, no GC entry",
			       e->ino);
		if (e->type == META_FT_DIR) {
			check_dir(f, e);
			continue;
		}
		if (e->nlink != e->links)
			report(f, &f->r.nlink_mismatches,
			       "inode %" PRIu64 ": nlink %u, %u dentries", e->ino, e->nlink,
			       e->links);
		if (e->links == 0 && !e->in_gc && !e->session)
			report(f, &f->r.orphans, "inode %" PRIu64 " unreachable and not queued",
			       e->ino);
	}
}

int meta_fsck(struct meta_store *s, struct meta_fsck_report *out,
	      void (*problem)(void *arg, const char *line), void *arg)
{
	struct fsck f = {.s = s, .problem = problem, .arg = arg};
	int rc = meta_db_snapshot(s->db, &f.snap);

	if (rc == 0)
		rc = grow(&f);
	if (rc == 0)
		rc = scan(&f, MK_INODE, scan_inode);
	if (rc == 0)
		rc = scan(&f, MK_DENTRY, scan_dentry);
	if (rc == 0)
		rc = scan(&f, MK_GC, scan_gc);
	if (rc == 0)
		rc = scan(&f, MK_SESSION, scan_session);
	if (rc == 0)
		rc = scan(&f, MK_XATTR, scan_xattr);
	if (rc == 0) {
		check_all(&f);
		*out = f.r;
		log_debug("fsck: %" PRIu64 " inodes, %" PRIu64 " dentries", f.r.inodes,
			  f.r.dentries);
	}
	meta_db_snapshot_release(s->db, f.snap);
	free(f.tab);
	return rc;
}
