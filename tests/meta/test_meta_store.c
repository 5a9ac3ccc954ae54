/*
 * test_meta_store.c - operation-level tests of the metadata store (meta/store.h): every
 * call, its success cases and each error code it documents, with the check that a failed
 * call changed nothing (fsck stays clean and the attributes it touched are as before).
 *
 * One store in a fresh temp dir, one thread. Exit 0 pass, 1 fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/env.h"
#include "meta/store.h"
#include "meta/txn.h"
#include "tests/lib/testlib.h"

#define N(s) (s), strlen(s)
#define RID  (&(struct meta_reqid){7, ++reqseq})
#define SEC  1000000000ull

static uint64_t reqseq;
static struct meta_store *S;
static char dir_[256];
static struct meta_store_cfg cfg_;
static const struct meta_creds ROOT = {0, 0, 0, {0}};
static const struct meta_creds U1 = {1000, 1000, 1, {50}};
static const struct meta_creds U2 = {2000, 2000, 0, {0}};

/* ---- helpers ------------------------------------------------------------------------- */

static uint64_t mkdir_(uint64_t parent, const char *name, uint32_t mode,
		       const struct meta_creds *cr)
{
	struct meta_attr a;
	int rc = meta_mkdir(S, 0, cr, RID, parent, N(name), mode, &a);

	if (rc) {
		fprintf(stderr, "mkdir %s: %s\n", name, sluice_strerror(rc));
		return 0;
	}
	return a.ino;
}

static uint64_t create_(uint64_t parent, const char *name, uint32_t mode,
			const struct meta_creds *cr)
{
	struct meta_open_result o;
	int rc = meta_create(S, 0, cr, RID, parent, N(name), mode, O_RDONLY | O_EXCL, &o);

	if (rc) {
		fprintf(stderr, "create %s: %s\n", name, sluice_strerror(rc));
		return 0;
	}
	return o.attr.ino;
}

static struct meta_attr attr_(uint64_t ino)
{
	struct meta_attr a;

	memset(&a, 0, sizeof(a));
	CHECK_EQ(meta_getattr(S, 0, &ROOT, ino, &a), 0);
	return a;
}

static int lookup_(uint64_t parent, const char *name, struct meta_attr *a)
{
	struct meta_attr tmp;

	return meta_lookup(S, 0, &ROOT, parent, N(name), a ? a : &tmp);
}

static void fsck_print(void *arg, const char *line)
{
	fprintf(stderr, "  fsck: %s\n", line);
}

/* fsck finds nothing wrong: returns the report for counts. */
static struct meta_fsck_report fsck_clean_(int line)
{
	struct meta_fsck_report r;
	int rc = meta_fsck(S, &r, fsck_print, NULL);

	if (rc || r.dangling_dentries || r.nlink_mismatches || r.orphans || r.other) {
		fprintf(stderr, "%s:%d: fsck not clean (rc %d)\n", __FILE__, line, rc);
		test_failures++;
	}
	return r;
}
#define FSCK_CLEAN() fsck_clean_(__LINE__)

static int no_remove(void *arg, uint64_t ino, const struct layout *l, uint64_t size)
{
	(*(int *)arg)++;
	return 0;
}

static int fail_remove(void *arg, uint64_t ino, const struct layout *l, uint64_t size)
{
	(*(int *)arg)++;
	return -ENOSYS;
}

static uint64_t gc_queued(void)
{
	struct meta_stats st;

	CHECK_EQ(meta_store_stats(S, &st), 0);
	return st.gc_queued;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_format(void)
{
	char why[256] = "", sub[300];
	struct meta_store *s2;
	struct meta_attr root;

	snprintf(sub, sizeof(sub), "%s/other", dir_);
	CHECK_EQ(meta_store_open(sub, &cfg_, &s2, why, sizeof(why)), -ENOENT);
	CHECK_EQ(meta_store_format(sub, &cfg_, false, why, sizeof(why)), 0);
	CHECK_EQ(meta_store_format(sub, &cfg_, false, why, sizeof(why)), -EEXIST);
	CHECK_EQ(meta_store_format(sub, &cfg_, true, why, sizeof(why)), 0);
	CHECK_EQ(meta_store_open(sub, &cfg_, &s2, why, sizeof(why)), 0);
	CHECK_EQ(meta_getattr(s2, 0, &ROOT, META_ROOT_INO, &root), 0);
	CHECK_EQ(root.type, META_FT_DIR);
	CHECK_EQ(root.nlink, 2);
	CHECK_EQ(root.mode, 0777);
	CHECK(root.has_layout && root.layout.chunk_size == 1u << 20);
	CHECK_EQ(meta_getattr(s2, 1, &ROOT, META_ROOT_INO, &root), -SLUICE_EROUTING);
	meta_store_close(s2);
	{
		/* keys but no format marker: not ours */
		struct meta_db_opts o = {false, 100, 0};
		struct meta_db *db;
		struct meta_txn *t;

		snprintf(sub, sizeof(sub), "%s/foreign", dir_);
		CHECK_EQ(meta_db_open(sub, &o, &db, why, sizeof(why)), 0);
		CHECK_EQ(meta_txn_begin(db, &t), 0);
		CHECK_EQ(meta_txn_put(t, "zz", 2, "v", 1), 0);
		CHECK_EQ(meta_txn_commit(t), 0);
		meta_txn_free(t);
		meta_db_close(db);
		CHECK_EQ(meta_store_open(sub, &cfg_, &s2, why, sizeof(why)), -EBADMSG);
		CHECK_EQ(meta_store_format(sub, &cfg_, false, why, sizeof(why)), -EEXIST);
	}
}

static void test_names(void)
{
	char longname[SLUICE_NAME_MAX + 2];
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "names", 0755, &ROOT);

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N(longname), 0755, &a), -ENAMETOOLONG);
	longname[SLUICE_NAME_MAX] = '\0';
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N(longname), 0755, &a), 0);
	CHECK_EQ(lookup_(d, longname, NULL), 0);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N("a/b"), 0755, &a), -EINVAL);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, "a\0b", 3, 0755, &a), -EINVAL);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, "", 0, 0755, &a), -ENOENT);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N("."), 0755, &a), -EEXIST);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N(".."), 0755, &a), -EEXIST);
	CHECK_EQ(lookup_(d, "a/b", NULL), -EINVAL);
	CHECK_EQ(lookup_(d, "", NULL), -ENOENT);
	/* non-UTF-8 bytes are fine */
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, "\xff\xfe", 2, 0755, &a), 0);
	CHECK_EQ(meta_lookup(S, 0, &ROOT, d, "\xff\xfe", 2, &a), 0);
	/* request ids */
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, NULL, d, N("x"), 0755, &a), -EINVAL);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, &(struct meta_reqid){0, 5}, d, N("x"), 0755, &a), -EINVAL);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, &(struct meta_reqid){5, 0}, d, N("x"), 0755, &a), -EINVAL);
	CHECK_EQ(meta_mkdir(S, 3, &ROOT, RID, d, N("x"), 0755, &a), -SLUICE_EROUTING);
	CHECK_EQ(lookup_(d, "x", NULL), -ENOENT);
	FSCK_CLEAN();
}

static void test_lookup_mkdir(void)
{
	struct meta_attr a, b;
	uint64_t d = mkdir_(META_ROOT_INO, "lk", 0755, &ROOT), f, sub;

	f = create_(d, "file", 0644, &ROOT);
	CHECK_EQ(lookup_(d, "nope", NULL), -ENOENT);
	CHECK_EQ(lookup_(f, "x", NULL), -ENOTDIR);
	CHECK_EQ(lookup_(987654321, "x", NULL), -ENOENT);
	CHECK_EQ(lookup_(d, ".", &a), 0);
	CHECK_EQ(a.ino, d);
	CHECK_EQ(lookup_(d, "..", &a), 0);
	CHECK_EQ(a.ino, META_ROOT_INO);
	CHECK_EQ(lookup_(META_ROOT_INO, "..", &a), 0);
	CHECK_EQ(a.ino, META_ROOT_INO);
	/* search permission */
	CHECK_EQ(meta_mkdir(S, 0, &U1, RID, d, N("private"), 0700, &a), -EACCES); /* d: 0755 */
	sub = mkdir_(d, "private", 0700, &ROOT);
	CHECK_EQ(meta_lookup(S, 0, &U1, sub, N("x"), &a), -EACCES);
	CHECK_EQ(meta_lookup(S, 0, &ROOT, sub, N("x"), &a), -ENOENT);
	/* mkdir errors */
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N("file"), 0755, &a), -EEXIST);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, f, N("x"), 0755, &a), -ENOTDIR);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, 987654321, N("x"), 0755, &a), -ENOENT);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N("x"), 010000, &a), -EINVAL);
	/* link counts and times */
	b = attr_(d);
	CHECK_EQ(b.nlink, 3);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, d, N("two"), 0750, &a), 0);
	CHECK_EQ(a.nlink, 2);
	CHECK_EQ(a.parent, d);
	CHECK_EQ(a.mode, 0750);
	CHECK_EQ(attr_(d).nlink, 4);
	CHECK(attr_(d).mtime_ns >= b.mtime_ns);
	/* setgid directories pass the group and the bit on */
	{
		struct meta_setattr sa = {META_SET_MODE | META_SET_GID, 02775, 0, 77, 0, 0, 0, 0};
		uint64_t g = mkdir_(d, "sgid", 0755, &ROOT);

		CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, g, &sa, &a), 0);
		CHECK_EQ(a.mode, 02775);
		CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, g, N("child"), 0755, &a), 0);
		CHECK_EQ(a.gid, 77);
		CHECK_EQ(a.mode, 02755);
		CHECK_EQ(meta_mknod(S, 0, &ROOT, RID, g, N("f"), META_FT_REG, 02644, 0, &a), 0);
		CHECK_EQ(a.gid, 77);
	}
	FSCK_CLEAN();
}

static void test_create_open(void)
{
	struct meta_open_result o, o2;
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "cr", 0777, &ROOT), f;

	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("f"), 0444, O_WRONLY | O_CREAT, &o), 0);
	CHECK(o.created);
	CHECK(o.session_id != 0); /* read-only mode, yet the creator may write */
	CHECK_EQ(o.attr.uid, 1000);
	CHECK_EQ(o.attr.gid, 1000);
	CHECK_EQ(o.attr.mode, 0444);
	CHECK(o.attr.has_layout && o.attr.layout.chain_base < 8 && o.attr.layout.stripe == 4);
	f = o.attr.ino;
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("f"), 0644, O_RDONLY, &o2), 0);
	CHECK(!o2.created);
	CHECK_EQ(o2.attr.ino, f);
	CHECK_EQ(o2.session_id, 0);
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("f"), 0644, O_RDWR, &o2), -EACCES);
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("f"), 0644, O_RDONLY | O_EXCL, &o2), -EEXIST);
	CHECK_EQ(meta_create(S, 0, &U1, RID, META_ROOT_INO, N("cr"), 0644, O_RDONLY, &o2), -EISDIR);
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("x"), 0644, O_ACCMODE, &o2), -EINVAL);
	CHECK_EQ(meta_create(S, 0, &U1, RID, f, N("x"), 0644, O_RDONLY, &o2), -ENOTDIR);
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("ln"), N("f"), &a), 0);
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("ln"), 0644, O_RDONLY, &o2), -ELOOP);
	CHECK_EQ(meta_create(S, 0, &U2, RID, mkdir_(d, "ro", 0755, &ROOT), N("x"), 0644, 0, &o2),
		 -EACCES);
	/* O_TRUNC */
	CHECK_EQ(meta_report_length(S, 0, &U1, &(struct meta_reqid){7, ++reqseq}, f, o.session_id,
				    4096, false, &a),
		 0);
	CHECK_EQ(a.size, 4096);
	CHECK_EQ(meta_close(S, 0, &U1, RID, f, o.session_id, 4096, true, &a), 0);
	CHECK_EQ(meta_open(S, 0, &ROOT, RID, f, O_WRONLY | O_TRUNC, &o2), 0);
	CHECK_EQ(o2.attr.size, 0);
	CHECK(o2.session_id != 0);
	CHECK_EQ(meta_close(S, 0, &ROOT, RID, f, o2.session_id, 0, true, &a), 0);
	/* open */
	CHECK_EQ(meta_open(S, 0, &U2, NULL, f, O_RDONLY, &o2), 0);
	CHECK_EQ(o2.session_id, 0);
	CHECK_EQ(meta_open(S, 0, &U2, NULL, f, O_WRONLY, &o2), -EINVAL); /* needs a rid */
	CHECK_EQ(meta_open(S, 0, &U2, RID, f, O_WRONLY, &o2), -EACCES);
	CHECK_EQ(meta_open(S, 0, &U2, RID, d, O_WRONLY, &o2), -EISDIR);
	CHECK_EQ(meta_open(S, 0, &U2, NULL, d, O_RDONLY, &o2), 0);
	CHECK_EQ(meta_lookup(S, 0, &U1, d, N("ln"), &a), 0);
	CHECK_EQ(meta_open(S, 0, &U2, NULL, a.ino, O_RDONLY, &o2), -ELOOP);
	CHECK_EQ(meta_open(S, 0, &U2, NULL, 987654321, O_RDONLY, &o2), -ENOENT);
	CHECK_EQ(meta_open(S, 0, &U2, RID, f, O_ACCMODE, &o2), -EINVAL);
	FSCK_CLEAN();
}

static void test_mknod_symlink(void)
{
	char buf[SLUICE_META_SYMLINK_MAX + 8], big[SLUICE_META_SYMLINK_MAX + 2];
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "nod", 0777, &ROOT);

	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("fifo"), META_FT_FIFO, 0600, 0, &a), 0);
	CHECK_EQ(a.type, META_FT_FIFO);
	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("sock"), META_FT_SOCK, 0600, 0, &a), 0);
	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("reg"), META_FT_REG, 0600, 0, &a), 0);
	CHECK(a.has_layout);
	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("chr"), META_FT_CHR, 0600, 0x0501, &a), -EPERM);
	CHECK_EQ(meta_mknod(S, 0, &ROOT, RID, d, N("chr"), META_FT_CHR, 0600, 0x0501, &a), 0);
	CHECK_EQ(a.rdev, 0x0501);
	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("dir"), META_FT_DIR, 0600, 0, &a), -EINVAL);
	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("x"), 99, 0600, 0, &a), -EINVAL);
	CHECK_EQ(meta_mknod(S, 0, &U1, RID, d, N("fifo"), META_FT_FIFO, 0600, 0, &a), -EEXIST);
	/* symlinks */
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("l"), N("../some/where"), &a), 0);
	CHECK_EQ(a.type, META_FT_LNK);
	CHECK_EQ(a.size, 13);
	CHECK_EQ(a.mode, 0777);
	CHECK_EQ(meta_readlink(S, 0, &U2, a.ino, buf, sizeof(buf)), 13);
	CHECK(memcmp(buf, "../some/where", 13) == 0);
	CHECK_EQ(meta_readlink(S, 0, &U2, a.ino, buf, 5), -ERANGE);
	CHECK_EQ(meta_readlink(S, 0, &U2, d, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(meta_readlink(S, 0, &U2, 987654321, buf, sizeof(buf)), -ENOENT);
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("e"), "", 0, &a), -ENOENT);
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("e"), "a\0b", 3, &a), -EINVAL);
	memset(big, 'p', sizeof(big));
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("e"), big, SLUICE_META_SYMLINK_MAX + 1, &a),
		 -ENAMETOOLONG);
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("e"), big, SLUICE_META_SYMLINK_MAX, &a), 0);
	CHECK_EQ(meta_readlink(S, 0, &U2, a.ino, buf, sizeof(buf)), SLUICE_META_SYMLINK_MAX);
	FSCK_CLEAN();
}

static void test_link_unlink(void)
{
	struct meta_open_result o;
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "ln", 0777, &ROOT), f, q0 = gc_queued();

	f = create_(d, "f", 0644, &U1);
	CHECK_EQ(meta_link(S, 0, &U1, RID, f, d, N("g"), &a), 0);
	CHECK_EQ(a.nlink, 2);
	CHECK_EQ(meta_link(S, 0, &U1, RID, f, d, N("g"), &a), -EEXIST);
	CHECK_EQ(meta_link(S, 0, &U1, RID, d, d, N("dl"), &a), -EPERM);
	CHECK_EQ(meta_link(S, 0, &U1, RID, 987654321, d, N("x"), &a), -ENOENT);
	CHECK_EQ(meta_link(S, 0, &U1, RID, f, f, N("x"), &a), -ENOTDIR);
	CHECK_EQ(meta_link(S, 0, &U1, RID, f, d, N(".."), &a), -EEXIST);
	CHECK_EQ(meta_link(S, 0, &U2, RID, f, META_ROOT_INO, N("x"), &a), 0); /* root is 0777 */
	CHECK_EQ(meta_unlink(S, 0, &U2, RID, META_ROOT_INO, N("x")), 0);
	CHECK_EQ(attr_(f).nlink, 2);
	/* unlink */
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N("nope")), -ENOENT);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, META_ROOT_INO, N("ln")), -EISDIR);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N(".")), -EISDIR);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N("..")), -EISDIR);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, f, N("x")), -ENOTDIR);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N("g")), 0);
	CHECK_EQ(attr_(f).nlink, 1);
	CHECK_EQ(gc_queued(), q0);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N("f")), 0);
	CHECK_EQ(gc_queued(), q0 + 1);
	CHECK_EQ(attr_(f).nlink, 0);
	CHECK_EQ(meta_link(S, 0, &U1, RID, f, d, N("back"), &a), -ENOENT);
	CHECK_EQ(meta_open(S, 0, &U1, NULL, f, O_RDONLY, &o), -ENOENT);
	/* an open writer keeps the inode out of GC until close */
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("w"), 0644, O_WRONLY, &o), 0);
	CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N("w")), 0);
	CHECK_EQ(gc_queued(), q0 + 1);
	FSCK_CLEAN(); /* unreachable but held by a session: not an orphan */
	CHECK_EQ(meta_close(S, 0, &U1, RID, o.attr.ino, o.session_id, 10, true, &a), 0);
	CHECK_EQ(gc_queued(), q0 + 2);
	/* sticky directories */
	{
		struct meta_setattr sa = {META_SET_MODE, 01777, 0, 0, 0, 0, 0, 0};
		uint64_t t = mkdir_(META_ROOT_INO, "tmp", 0777, &ROOT);

		CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, t, &sa, &a), 0);
		create_(t, "u1file", 0666, &U1);
		CHECK_EQ(meta_unlink(S, 0, &U2, RID, t, N("u1file")), -EPERM);
		CHECK_EQ(lookup_(t, "u1file", NULL), 0);
		CHECK_EQ(meta_unlink(S, 0, &U1, RID, t, N("u1file")), 0);
		create_(t, "u1b", 0666, &U1);
		CHECK_EQ(meta_unlink(S, 0, &ROOT, RID, t, N("u1b")), 0);
	}
	/* no write permission on the directory */
	{
		uint64_t ro = mkdir_(META_ROOT_INO, "ro", 0755, &ROOT);

		create_(ro, "f", 0666, &ROOT);
		CHECK_EQ(meta_unlink(S, 0, &U1, RID, ro, N("f")), -EACCES);
		CHECK_EQ(lookup_(ro, "f", NULL), 0);
	}
	FSCK_CLEAN();
}

static void test_rmdir(void)
{
	uint64_t d = mkdir_(META_ROOT_INO, "rd", 0777, &ROOT), e;

	e = mkdir_(d, "e", 0777, &ROOT);
	create_(e, "f", 0644, &ROOT);
	CHECK_EQ(attr_(d).nlink, 3);
	CHECK_EQ(meta_rmdir(S, 0, &ROOT, RID, d, N("e")), -ENOTEMPTY);
	CHECK_EQ(meta_rmdir(S, 0, &ROOT, RID, e, N("f")), -ENOTDIR);
	CHECK_EQ(meta_rmdir(S, 0, &ROOT, RID, d, N(".")), -EINVAL);
	CHECK_EQ(meta_rmdir(S, 0, &ROOT, RID, d, N("..")), -ENOTEMPTY);
	CHECK_EQ(meta_rmdir(S, 0, &ROOT, RID, d, N("zz")), -ENOENT);
	CHECK_EQ(meta_unlink(S, 0, &ROOT, RID, e, N("f")), 0);
	CHECK_EQ(meta_rmdir(S, 0, &U2, RID, d, N("e")), 0); /* d is 0777 */
	CHECK_EQ(lookup_(d, "e", NULL), -ENOENT);
	CHECK_EQ(attr_(d).nlink, 2);
	CHECK_EQ(meta_getattr(S, 0, &ROOT, e, &(struct meta_attr){0}), -ENOENT);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, e, N("x"), 0755, &(struct meta_attr){0}), -ENOENT);
	FSCK_CLEAN();
}

static void test_rename(void)
{
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "rn", 0777, &ROOT), x, y, z, f, g, q0;

	x = mkdir_(d, "x", 0777, &ROOT);
	y = mkdir_(x, "y", 0777, &ROOT);
	z = mkdir_(d, "z", 0777, &ROOT);
	f = create_(d, "f", 0644, &ROOT);
	g = create_(d, "g", 0644, &ROOT);
	/* simple and cross-directory */
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("f"), d, N("f2"), 0), 0);
	CHECK_EQ(lookup_(d, "f", NULL), -ENOENT);
	CHECK_EQ(lookup_(d, "f2", &a), 0);
	CHECK_EQ(a.ino, f);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("f2"), x, N("f"), 0), 0);
	CHECK_EQ(lookup_(x, "f", NULL), 0);
	/* directories: link counts and parent pointers */
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, x, N("y"), z, N("y"), 0), 0);
	CHECK_EQ(attr_(x).nlink, 2);
	CHECK_EQ(attr_(z).nlink, 3);
	CHECK_EQ(attr_(y).parent, z);
	CHECK_EQ(lookup_(y, "..", &a), 0);
	CHECK_EQ(a.ino, z);
	/* loops */
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("z"), y, N("zz"), 0), -EINVAL);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("z"), z, N("zz"), 0), -EINVAL);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, META_ROOT_INO, N("rn"), y, N("rn"), 0), -EINVAL);
	/* replacing */
	q0 = gc_queued();
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, x, N("f"), d, N("g"), 0), 0);
	CHECK_EQ(lookup_(d, "g", &a), 0);
	CHECK_EQ(a.ino, f);
	CHECK_EQ(attr_(g).nlink, 0);
	CHECK_EQ(gc_queued(), q0 + 1);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("z"), d, N("g"), 0), -ENOTDIR);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("z"), 0), -EISDIR);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("x"), d, N("z"), 0), -ENOTEMPTY);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, z, N("y"), d, N("x"), 0), 0); /* empty target */
	CHECK_EQ(attr_(d).nlink, 4);					     /* x gone, y in */
	CHECK_EQ(meta_getattr(S, 0, &ROOT, x, &a), -ENOENT);
	CHECK_EQ(attr_(y).parent, d);
	/* flags */
	create_(d, "h", 0644, &ROOT);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("h"), META_RENAME_NOREPLACE),
		 -EEXIST);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("none"), META_RENAME_EXCHANGE),
		 -ENOENT);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("h"), 3), -EINVAL);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("h"), 8), -EINVAL);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("g"), META_RENAME_NOREPLACE),
		 -EEXIST);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), d, N("g"), 0), 0);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), z, N("y2"), META_RENAME_EXCHANGE),
		 -ENOENT);
	/* exchange a file with a directory across parents */
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), META_ROOT_INO, N("rn"),
			     META_RENAME_EXCHANGE),
		 -EINVAL); /* rn is an ancestor of d */
	mkdir_(z, "sub", 0777, &ROOT);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("g"), z, N("sub"), META_RENAME_EXCHANGE), 0);
	CHECK_EQ(lookup_(z, "sub", &a), 0);
	CHECK_EQ(a.ino, f);
	CHECK_EQ(lookup_(d, "g", &a), 0);
	CHECK_EQ(a.type, META_FT_DIR);
	CHECK_EQ(a.parent, d);
	CHECK_EQ(attr_(z).nlink, 2);
	/* dots, missing, two links of one inode */
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("."), d, N("q"), 0), -EBUSY);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("h"), d, N(".."), 0), -EBUSY);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("missing"), d, N("q"), 0), -ENOENT);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, d, N("h"), f, N("q"), 0), -ENOTDIR);
	CHECK_EQ(meta_link(S, 0, &ROOT, RID, f, d, N("hl"), &a), 0);
	CHECK_EQ(meta_rename(S, 0, &ROOT, RID, z, N("sub"), d, N("hl"), 0), 0);
	CHECK_EQ(lookup_(z, "sub", NULL), 0); /* both names still there */
	CHECK_EQ(lookup_(d, "hl", NULL), 0);
	/* permissions: sticky, and the directory's own ".." */
	{
		struct meta_setattr sa = {META_SET_MODE, 01777, 0, 0, 0, 0, 0, 0};
		uint64_t t = mkdir_(d, "sticky", 0777, &ROOT), u;

		CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, t, &sa, &a), 0);
		create_(t, "mine", 0644, &U1);
		CHECK_EQ(meta_rename(S, 0, &U2, RID, t, N("mine"), t, N("theirs"), 0), -EPERM);
		CHECK_EQ(meta_rename(S, 0, &U1, RID, t, N("mine"), t, N("m2"), 0), 0);
		u = mkdir_(t, "rootdir", 0755, &ROOT);
		(void)u;
		CHECK_EQ(meta_rename(S, 0, &ROOT, RID, t, N("rootdir"), d, N("rootdir"), 0), 0);
		sa.mode = 0777;
		CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, t, &sa, &a), 0);
		CHECK_EQ(meta_rename(S, 0, &U1, RID, d, N("rootdir"), t, N("rootdir"), 0),
			 -EACCES); /* d is 0777 but rootdir is 0755 root: its ".." */
		CHECK_EQ(meta_rename(S, 0, &U1, RID, d, N("rootdir"), d, N("rd2"), 0), 0);
	}
	FSCK_CLEAN();
}

struct rd_state {
	char names[64][SLUICE_NAME_MAX + 1];
	int n;
	bool plus_ok;
	int stop_after;
};

static int rd_fn(void *arg, const void *name, size_t nlen, uint64_t ino, uint32_t type,
		 const struct meta_attr *attr)
{
	struct rd_state *st = arg;

	if (st->stop_after >= 0 && st->n == st->stop_after)
		return 1;
	if (attr && attr->ino != ino)
		st->plus_ok = false;
	memcpy(st->names[st->n], name, nlen);
	st->names[st->n][nlen] = '\0';
	st->n++;
	return 0;
}

static void test_readdir(void)
{
	struct rd_state st = {.plus_ok = true, .stop_after = -1};
	char cursor[SLUICE_NAME_MAX + 1] = "";
	uint64_t d = mkdir_(META_ROOT_INO, "rdd", 0755, &ROOT), f;
	bool eof = false;
	int rc, total = 0, calls = 0;

	for (int i = 0; i < 9; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%d", i);
		if (i % 3 == 0)
			mkdir_(d, name, 0755, &ROOT);
		else
			create_(d, name, 0644, &ROOT);
	}
	while (!eof) {
		int before = st.n;

		rc = meta_readdir(S, 0, &U1, d, cursor, strlen(cursor), 2, true, rd_fn, &st, &eof);
		CHECK(rc >= 0 && rc <= 2);
		if (rc < 0)
			break;
		total += rc;
		if (st.n > before)
			snprintf(cursor, sizeof(cursor), "%s", st.names[st.n - 1]);
		if (++calls > 20)
			break;
	}
	CHECK_EQ(total, 9);
	CHECK(st.plus_ok);
	for (int i = 0; i < 9 && i < st.n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "e%d", i);
		CHECK(strcmp(st.names[i], name) == 0);
	}
	/* stopping early does not report the end */
	st.n = 0;
	st.stop_after = 3;
	rc = meta_readdir(S, 0, &U1, d, NULL, 0, 0, false, rd_fn, &st, &eof);
	CHECK_EQ(rc, 3);
	CHECK(!eof);
	st.stop_after = -1;
	st.n = 0;
	rc = meta_readdir(S, 0, &U1, d, N("e8"), 0, false, rd_fn, &st, &eof);
	CHECK_EQ(rc, 0);
	CHECK(eof);
	/* errors */
	f = create_(d, "zfile", 0644, &ROOT);
	CHECK_EQ(meta_readdir(S, 0, &U1, f, NULL, 0, 0, false, rd_fn, &st, &eof), -ENOTDIR);
	CHECK_EQ(meta_readdir(S, 0, &U1, 987654321, NULL, 0, 0, false, rd_fn, &st, &eof), -ENOENT);
	CHECK_EQ(meta_readdir(S, 0, &U1, d, NULL, 0, SLUICE_META_READDIR_MAX + 1, false, rd_fn, &st,
			      &eof),
		 -EINVAL);
	CHECK_EQ(meta_readdir(S, 0, &U1, d, N("a/b"), 0, false, rd_fn, &st, &eof), -EINVAL);
	{
		uint64_t p = mkdir_(d, "noread", 0311, &ROOT);

		CHECK_EQ(meta_readdir(S, 0, &U1, p, NULL, 0, 0, false, rd_fn, &st, &eof), -EACCES);
	}
}

static void test_setattr(void)
{
	struct meta_setattr sa;
	struct meta_open_result o;
	struct meta_attr a, before;
	uint64_t d = mkdir_(META_ROOT_INO, "sa", 0777, &ROOT), f, dd;

	f = create_(d, "f", 04755, &U1);
	before = attr_(f);
	CHECK_EQ(before.mode, 04755);
	/* mode */
	sa = (struct meta_setattr){META_SET_MODE, 0600, 0, 0, 0, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &U2, RID, f, &sa, &a), -EPERM);
	CHECK_EQ(attr_(f).mode, 04755);
	sa.mode = 02644; /* U1 is not in group 1000? it is: its own gid */
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), 0);
	CHECK_EQ(a.mode, 02644);
	CHECK(a.ctime_ns >= before.ctime_ns);
	sa.mode = 070000;
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), -EINVAL);
	/* owner and group */
	sa = (struct meta_setattr){META_SET_UID, 0, 2000, 0, 0, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), -EPERM);
	sa = (struct meta_setattr){META_SET_GID, 0, 0, 50, 0, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &U2, RID, f, &sa, &a), -EPERM);
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), 0); /* U1 is in group 50 */
	CHECK_EQ(a.gid, 50);
	sa.gid = 51;
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), -EPERM);
	sa = (struct meta_setattr){META_SET_MODE, 06755, 0, 0, 0, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, f, &sa, &a), 0);
	sa = (struct meta_setattr){META_SET_UID | META_SET_GID, 0, 2000, 2000, 0, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, f, &sa, &a), 0);
	CHECK_EQ(a.uid, 2000);
	CHECK_EQ(a.mode, 0755); /* chown clears setuid and (group-executable) setgid */
	/* size */
	sa = (struct meta_setattr){META_SET_SIZE, 0, 0, 0, 12345, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), -EACCES);
	CHECK_EQ(meta_setattr(S, 0, &U2, RID, f, &sa, &a), 0);
	CHECK_EQ(a.size, 12345);
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, d, &sa, &a), -EISDIR);
	CHECK_EQ(meta_symlink(S, 0, &ROOT, RID, d, N("l"), N("f"), &a), 0);
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, a.ino, &sa, &a), -EINVAL);
	sa.size = UINT64_MAX;
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, f, &sa, &a), -EFBIG);
	CHECK_EQ(attr_(f).size, 12345);
	/* truncate through a write session without the w bit */
	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("ro"), 0444, O_WRONLY, &o), 0);
	sa = (struct meta_setattr){META_SET_SIZE, 0, 0, 0, 7, 0, 0, 0};
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, o.attr.ino, &sa, &a), -EACCES);
	sa.session_id = o.session_id;
	CHECK_EQ(meta_setattr(S, 0, &U1, &(struct meta_reqid){7, ++reqseq}, o.attr.ino, &sa, &a),
		 0);
	CHECK_EQ(a.size, 7);
	/* times */
	sa = (struct meta_setattr){META_SET_ATIME | META_SET_MTIME, 0, 0, 0, 0, 111, 222, 0};
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), -EPERM);
	CHECK_EQ(meta_setattr(S, 0, &U2, RID, f, &sa, &a), 0);
	CHECK_EQ(a.atime_ns, 111);
	CHECK_EQ(a.mtime_ns, 222);
	sa = (struct meta_setattr){META_SET_MTIME_NOW, 0, 0, 0, 0, 0, 0, 0};
	dd = mkdir_(d, "d", 0777, &U2);
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, dd, &sa, &a), 0); /* write permission is enough */
	CHECK(a.mtime_ns > 222);
	CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), -EACCES);
	sa.mask = META_SET_MTIME | META_SET_MTIME_NOW;
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, f, &sa, &a), -EINVAL);
	sa.mask = 1u << 20;
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, f, &sa, &a), -EINVAL);
	sa.mask = 0;
	CHECK_EQ(meta_setattr(S, 0, &ROOT, RID, 987654321, &sa, &a), -ENOENT);
	FSCK_CLEAN();
}

static void test_xattr(void)
{
	char buf[SLUICE_META_XATTR_LIST_MAX], name[SLUICE_META_XATTR_NAME_MAX + 2];
	static char big[SLUICE_META_XATTR_VALUE_MAX + 1];
	uint64_t d = mkdir_(META_ROOT_INO, "xa", 0777, &ROOT), f;
	struct meta_attr a;
	int rc;

	f = create_(d, "f", 0644, &U1);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.a"), N("hello"), 0), 0);
	CHECK_EQ(meta_getxattr(S, 0, &U2, f, N("user.a"), buf, sizeof(buf)), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(meta_getxattr(S, 0, &U2, f, N("user.a"), buf, 2), -ERANGE);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.a"), N("x"), META_XATTR_CREATE), -EEXIST);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.b"), N("x"), META_XATTR_REPLACE),
		 -ENODATA);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.a"), N("bye"), META_XATTR_REPLACE), 0);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.e"), "", 0, META_XATTR_CREATE), 0);
	CHECK_EQ(meta_getxattr(S, 0, &U1, f, N("user.e"), buf, sizeof(buf)), 0);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.a"), N("x"), 3), -EINVAL);
	CHECK_EQ(meta_setxattr(S, 0, &U2, RID, f, N("user.a"), N("x"), 0), -EACCES);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("os2.a"), N("x"), 0), -EOPNOTSUPP);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("system.posix_acl_access"), N("x"), 0),
		 -EOPNOTSUPP);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, "", 0, N("x"), 0), -ERANGE);
	memset(name, 'n', sizeof(name));
	memcpy(name, "user.", 5);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, name, SLUICE_META_XATTR_NAME_MAX + 1, N("x"), 0),
		 -ERANGE);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, big, 0, big, sizeof(big), 0), -E2BIG);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("user.big"), big, sizeof(big) - 1, 0), 0);
	CHECK_EQ(meta_getxattr(S, 0, &U1, f, N("user.big"), big, sizeof(big)),
		 SLUICE_META_XATTR_VALUE_MAX);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("trusted.t"), N("x"), 0), -EPERM);
	CHECK_EQ(meta_setxattr(S, 0, &ROOT, RID, f, N("trusted.t"), N("x"), 0), 0);
	CHECK_EQ(meta_getxattr(S, 0, &U1, f, N("trusted.t"), buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(meta_getxattr(S, 0, &ROOT, f, N("trusted.t"), buf, sizeof(buf)), 1);
	CHECK_EQ(meta_setxattr(S, 0, &U2, RID, f, N("security.s"), N("x"), 0), -EPERM);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, f, N("security.s"), N("x"), 0), 0);
	/* list */
	rc = meta_listxattr(S, 0, &U1, f, buf, sizeof(buf));
	CHECK_EQ(rc, (int)sizeof("user.a") + (int)sizeof("user.big") + (int)sizeof("user.e") +
			     (int)sizeof("security.s"));
	CHECK(memmem(buf, (size_t)(rc > 0 ? rc : 0), "trusted", 7) == NULL);
	CHECK(rc > 0 && memmem(buf, (size_t)rc, "user.big", 9) != NULL);
	CHECK_EQ(meta_listxattr(S, 0, &U1, f, buf, 4), -ERANGE);
	CHECK_EQ(meta_listxattr(S, 0, &ROOT, f, buf, sizeof(buf)), rc + (int)sizeof("trusted.t"));
	CHECK_EQ(meta_listxattr(S, 0, &ROOT, 987654321, buf, sizeof(buf)), -ENOENT);
	/* remove */
	CHECK_EQ(meta_removexattr(S, 0, &U1, RID, f, N("user.a")), 0);
	CHECK_EQ(meta_getxattr(S, 0, &U1, f, N("user.a"), buf, sizeof(buf)), -ENODATA);
	CHECK_EQ(meta_removexattr(S, 0, &U1, RID, f, N("user.a")), -ENODATA);
	CHECK_EQ(meta_removexattr(S, 0, &U1, RID, 987654321, N("user.a")), -ENOENT);
	/* user.* only on files and directories */
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("l"), N("f"), &a), 0);
	CHECK_EQ(meta_setxattr(S, 0, &U1, RID, a.ino, N("user.a"), N("x"), 0), -EPERM);
	CHECK_EQ(meta_getxattr(S, 0, &U1, a.ino, N("user.a"), buf, sizeof(buf)), -ENODATA);
	/* total name bytes are bounded */
	{
		uint64_t g = create_(d, "g", 0644, &U1);
		int i;

		name[SLUICE_META_XATTR_NAME_MAX] = '\0';
		for (i = 0; i < 1000; i++) {
			snprintf(name + 5, 8, "%06d", i);
			name[11] = 'n';
			rc = meta_setxattr(S, 0, &U1, RID, g, name, SLUICE_META_XATTR_NAME_MAX,
					   N("v"), 0);
			if (rc)
				break;
		}
		CHECK_EQ(rc, -ENOSPC);
		CHECK_EQ(i, SLUICE_META_XATTR_LIST_MAX / (SLUICE_META_XATTR_NAME_MAX + 1));
		CHECK_EQ(meta_listxattr(S, 0, &U1, g, buf, sizeof(buf)),
			 i * (SLUICE_META_XATTR_NAME_MAX + 1));
		CHECK_EQ(meta_unlink(S, 0, &U1, RID, d, N("g")), 0);
	}
	FSCK_CLEAN();
}

static void test_length(void)
{
	struct meta_open_result o1, o2;
	struct meta_attr a;
	struct meta_reqid other = {99, 1};
	uint64_t d = mkdir_(META_ROOT_INO, "len", 0777, &ROOT), f;

	CHECK_EQ(meta_create(S, 0, &U1, RID, d, N("f"), 0644, O_RDWR, &o1), 0);
	f = o1.attr.ino;
	CHECK_EQ(meta_open(S, 0, &U1, RID, f, O_WRONLY, &o2), 0);
	CHECK(o2.session_id && o2.session_id != o1.session_id);
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, o1.session_id, 100, false, &a), 0);
	CHECK_EQ(a.size, 100);
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, o2.session_id, 50, false, &a), 0);
	CHECK_EQ(a.size, 100); /* max rule */
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, o2.session_id, 60, true, &a), 0);
	CHECK_EQ(a.size, 100); /* another writer: exact is not authoritative */
	CHECK_EQ(meta_close(S, 0, &U1, RID, f, o1.session_id, 100, true, &a), 0);
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, o2.session_id, 60, true, &a), 0);
	CHECK_EQ(a.size, 60); /* the only writer: exact */
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, o1.session_id, 10, false, &a), -EBADF);
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, 0, 10, false, &a), -EBADF);
	other.id = ++reqseq;
	CHECK_EQ(meta_report_length(S, 0, &U1, &other, f, o2.session_id, 10, false, &a), -EBADF);
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, f, o2.session_id, UINT64_MAX, false, &a),
		 -EFBIG);
	CHECK_EQ(meta_report_length(S, 0, &U1, RID, 987654321, o2.session_id, 1, false, &a),
		 -ENOENT);
	CHECK_EQ(meta_close(S, 0, &U1, RID, f, o2.session_id, 70, false, &a), 0);
	CHECK_EQ(a.size, 70);
	CHECK_EQ(meta_close(S, 0, &U1, RID, f, o2.session_id, 70, false, &a), -EBADF);
	FSCK_CLEAN();
}

static void test_layout(void)
{
	struct layout l, l2;
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "lay", 0777, &U1), f, e;

	CHECK_EQ(meta_get_layout(S, 0, &U1, d, &l), 0);
	CHECK_EQ(l.chunk_size, 1u << 20);
	l.chunk_size = 4u << 20;
	l.stripe = 2;
	CHECK_EQ(meta_set_layout(S, 0, &U2, RID, d, &l), -EPERM);
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, d, &l), 0);
	e = mkdir_(d, "sub", 0777, &U1);
	CHECK_EQ(meta_get_layout(S, 0, &U1, e, &l2), 0);
	CHECK_EQ(l2.chunk_size, 4u << 20);
	f = create_(e, "f", 0644, &U1);
	CHECK_EQ(meta_get_layout(S, 0, &U1, f, &l2), 0);
	CHECK_EQ(l2.chunk_size, 4u << 20);
	CHECK_EQ(l2.stripe, 2);
	CHECK(l2.chain_base < 8);
	l2.chain_base = 8;
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, f, &l2), -EINVAL); /* table 0 has 8 chains */
	l2.chain_base = 3;
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, f, &l2), 0);
	CHECK_EQ(meta_get_layout(S, 0, &U1, f, &l), 0);
	CHECK_EQ(l.chain_base, 3);
	{
		struct meta_setattr sa = {META_SET_SIZE, 0, 0, 0, 1, 0, 0, 0};

		CHECK_EQ(meta_setattr(S, 0, &U1, RID, f, &sa, &a), 0);
		CHECK_EQ(meta_set_layout(S, 0, &U1, RID, f, &l2), -EBUSY);
	}
	l = l2;
	l.chunk_size = 3u << 20;
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, d, &l), -EINVAL);
	l.chunk_size = 32u << 10;
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, d, &l), -EINVAL);
	l.chunk_size = 1u << 20;
	l.stripe = 0;
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, d, &l), -EINVAL);
	l.stripe = 9;
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, d, &l), -EINVAL);
	l.stripe = 1;
	CHECK_EQ(meta_symlink(S, 0, &U1, RID, d, N("ln"), N("x"), &a), 0);
	CHECK_EQ(meta_set_layout(S, 0, &U1, RID, a.ino, &l), -EINVAL);
	CHECK_EQ(meta_get_layout(S, 0, &U1, a.ino, &l), -EINVAL);
	CHECK_EQ(meta_get_layout(S, 0, &U1, 987654321, &l), -ENOENT);
	FSCK_CLEAN();
}

static void test_idempotent(void)
{
	struct meta_reqid r = {42, 1000};
	struct meta_open_result o1, o2;
	struct meta_attr a1, a2;
	struct meta_stats st0, st1;
	uint64_t d = mkdir_(META_ROOT_INO, "idem", 0777, &ROOT);

	CHECK_EQ(meta_store_stats(S, &st0), 0);
	CHECK_EQ(meta_create(S, 0, &U1, &r, d, N("f"), 0644, O_WRONLY | O_EXCL, &o1), 0);
	CHECK_EQ(meta_create(S, 0, &U1, &r, d, N("f"), 0644, O_WRONLY | O_EXCL, &o2), 0);
	CHECK_EQ(o1.attr.ino, o2.attr.ino);
	CHECK_EQ(o1.session_id, o2.session_id);
	CHECK(o2.created);
	r.id++;
	CHECK_EQ(meta_mkdir(S, 0, &U1, &r, d, N("m"), 0755, &a1), 0);
	CHECK_EQ(meta_mkdir(S, 0, &U1, &r, d, N("m"), 0755, &a2), 0);
	CHECK_EQ(a1.ino, a2.ino);
	CHECK_EQ(meta_unlink(S, 0, &U1, &r, d, N("f")), -EINVAL); /* id of another op */
	r.id++;
	CHECK_EQ(meta_rename(S, 0, &U1, &r, d, N("m"), d, N("m2"), 0), 0);
	CHECK_EQ(meta_rename(S, 0, &U1, &r, d, N("m"), d, N("m2"), 0), 0);
	r.id++;
	CHECK_EQ(meta_rmdir(S, 0, &U1, &r, d, N("m2")), 0);
	CHECK_EQ(meta_rmdir(S, 0, &U1, &r, d, N("m2")), 0);
	CHECK_EQ(meta_store_stats(S, &st1), 0);
	CHECK_EQ(st1.replays - st0.replays, 4);
	/* a failure is not remembered: the retry runs again */
	r.id++;
	CHECK_EQ(meta_rmdir(S, 0, &U1, &r, d, N("m2")), -ENOENT);
	CHECK_EQ(meta_mkdir(S, 0, &U1, &r, d, N("m2"), 0755, &a1), 0);
	/* the client acknowledges: results below the ack are forgotten */
	CHECK_EQ(meta_client_heartbeat(S, 42, r.id), 0);
	r.id = 1001;
	CHECK_EQ(meta_mkdir(S, 0, &U1, &r, d, N("m"), 0755, &a2), 0); /* runs again */
	CHECK(a2.ino != a1.ino);
	CHECK_EQ(meta_client_heartbeat(S, 0, 5), -EINVAL);
	FSCK_CLEAN();
}

static void test_gc(void)
{
	struct meta_open_result o;
	struct meta_attr a;
	int calls = 0, rc;
	uint64_t d = mkdir_(META_ROOT_INO, "gc", 0777, &ROOT), f, t, q0;

	/* drain what earlier tests queued */
	meta_store_test_advance(S, 3600 * SEC, 0);
	rc = meta_gc_run(S, 100000, no_remove, &calls);
	CHECK(rc >= 0);
	CHECK_EQ(gc_queued(), 0);
	FSCK_CLEAN();
	q0 = 0;
	f = create_(d, "f", 0644, &ROOT);
	CHECK_EQ(meta_setxattr(S, 0, &ROOT, RID, f, N("user.x"), N("v"), 0), 0);
	CHECK_EQ(meta_unlink(S, 0, &ROOT, RID, d, N("f")), 0);
	CHECK_EQ(gc_queued(), q0 + 1);
	calls = 0;
	CHECK_EQ(meta_gc_run(S, 100, no_remove, &calls), 0); /* not due yet */
	CHECK_EQ(calls, 0);
	meta_store_test_advance(S, 11 * SEC, 0);
	CHECK_EQ(meta_gc_run(S, 100, fail_remove, &calls), 0);
	CHECK_EQ(calls, 1);
	CHECK_EQ(gc_queued(), 1); /* removal failed: kept, retried later */
	CHECK_EQ(meta_getattr(S, 0, &ROOT, f, &a), 0);
	FSCK_CLEAN();
	CHECK_EQ(meta_gc_run(S, 100, fail_remove, &calls), 0);
	CHECK_EQ(calls, 1); /* backoff */
	meta_store_test_advance(S, 2 * SEC, 0);
	CHECK_EQ(meta_gc_run(S, 100, no_remove, &calls), 1);
	CHECK_EQ(calls, 2);
	CHECK_EQ(gc_queued(), 0);
	CHECK_EQ(meta_getattr(S, 0, &ROOT, f, &a), -ENOENT);
	FSCK_CLEAN();
	/* rm -rf of a tree: one call, then GC in steps */
	t = mkdir_(d, "tree", 0777, &ROOT);
	for (int i = 0; i < 3; i++) {
		char name[32];
		uint64_t sub;

		snprintf(name, sizeof(name), "s%d", i);
		sub = mkdir_(t, name, 0777, &ROOT);
		for (int j = 0; j < 300; j++) {
			snprintf(name, sizeof(name), "f%d", j);
			create_(sub, name, 0644, &ROOT);
		}
		mkdir_(sub, "deeper", 0777, &ROOT);
	}
	CHECK_EQ(meta_link(S, 0, &ROOT, RID, f, d, N("x"), &a), -ENOENT); /* gone */
	CHECK_EQ(lookup_(t, "s0", &a), 0);
	CHECK_EQ(meta_lookup(S, 0, &ROOT, a.ino, N("f7"), &a), 0);
	CHECK_EQ(meta_link(S, 0, &ROOT, RID, a.ino, d, N("kept"), &a), 0); /* survives the tree */
	CHECK_EQ(meta_create(S, 0, &ROOT, RID, attr_(t).ino, N("open"), 0644, O_WRONLY, &o), 0);
	CHECK_EQ(meta_rmtree(S, 0, &U1, RID, d, N("tree")), -EPERM); /* not the owner */
	CHECK_EQ(meta_rmtree(S, 0, &ROOT, RID, d, N("kept")), -ENOTDIR);
	CHECK_EQ(meta_rmtree(S, 0, &ROOT, RID, d, N("tree")), 0);
	CHECK_EQ(lookup_(d, "tree", NULL), -ENOENT);
	CHECK_EQ(attr_(d).nlink, 2);
	CHECK_EQ(meta_mkdir(S, 0, &ROOT, RID, t, N("late"), 0755, &a), -ENOENT);
	FSCK_CLEAN();
	meta_store_test_advance(S, 11 * SEC, 0);
	calls = 0;
	for (int i = 0; i < 100 && gc_queued(); i++) {
		rc = meta_gc_run(S, 10, no_remove, &calls);
		CHECK(rc >= 0);
		FSCK_CLEAN();
	}
	CHECK_EQ(gc_queued(), 0);
	CHECK_EQ(calls, 3 * 300 - 1);
	CHECK_EQ(meta_getattr(S, 0, &ROOT, t, &a), -ENOENT);
	CHECK_EQ(lookup_(d, "kept", &a), 0);
	CHECK_EQ(a.nlink, 1);
	CHECK_EQ(attr_(o.attr.ino).nlink, 0); /* open writer: still there */
	CHECK_EQ(meta_close(S, 0, &ROOT, RID, o.attr.ino, o.session_id, 0, true, &a), 0);
	CHECK_EQ(gc_queued(), 1);
	meta_store_test_advance(S, 11 * SEC, 0);
	CHECK_EQ(meta_gc_run(S, 10, no_remove, &calls), 1);
	FSCK_CLEAN();
}

static void test_expire(void)
{
	struct meta_open_result o;
	struct meta_reqid r = {555, 1};
	struct meta_attr a;
	uint64_t d = mkdir_(META_ROOT_INO, "exp", 0777, &ROOT), q0;

	CHECK(meta_expire(S, 0, 100000) >= 0); /* sessions earlier tests left open */
	q0 = gc_queued();

	CHECK_EQ(meta_create(S, 0, &U1, &r, d, N("f"), 0644, O_WRONLY, &o), 0);
	r.id++;
	CHECK_EQ(meta_unlink(S, 0, &U1, &r, d, N("f")), 0);
	CHECK_EQ(gc_queued(), q0);
	meta_store_test_advance(S, 0, 5 * SEC);
	CHECK_EQ(meta_client_heartbeat(S, 555, 0), 0);
	meta_store_test_advance(S, 0, 5 * SEC);
	CHECK_EQ(meta_expire(S, 8 * SEC, 1000), 0); /* heard from 5 s ago: alive */
	CHECK_EQ(gc_queued(), q0);
	meta_store_test_advance(S, 0, 5 * SEC);
	CHECK_EQ(meta_expire(S, 8 * SEC, 1000), 1);
	CHECK_EQ(gc_queued(), q0 + 1);
	CHECK_EQ(meta_close(S, 0, &U1, &(struct meta_reqid){555, 99}, o.attr.ino, o.session_id, 1,
			    true, &a),
		 -EBADF);
	/* its stored results went too: the old request id runs again */
	r.id = 1;
	CHECK_EQ(meta_create(S, 0, &U1, &r, d, N("f"), 0644, O_WRONLY | O_EXCL, &o), 0);
	CHECK(o.created);
	FSCK_CLEAN();
}

static void test_statfs(void)
{
	struct meta_statfs st;

	CHECK_EQ(meta_statfs(S, 0, &ROOT, &st), 0);
	CHECK(st.files > 10);
	CHECK(st.files_free > st.files);
	CHECK_EQ(st.name_max, SLUICE_NAME_MAX);
	CHECK_EQ(meta_statfs(S, 9, &ROOT, &st), -SLUICE_EROUTING);
}

/* fsck finds what it is meant to find (keys written behind the store's back). */
static void test_fsck_detects(void)
{
	struct meta_fsck_report r;
	struct meta_db *db;
	struct meta_txn *t;
	char why[256];
	uint8_t k[64];
	uint64_t d = mkdir_(META_ROOT_INO, "fs", 0777, &ROOT), f = create_(d, "f", 0644, &ROOT);

	meta_store_close(S);
	CHECK_EQ(meta_db_open(dir_, &cfg_.db, &db, why, sizeof(why)), 0);
	CHECK_EQ(meta_txn_begin(db, &t), 0);
	/* a dentry to inode 999999 (missing): D + be64(d) + "dang", value Dentry{ino,type} */
	k[0] = 'D';
	for (int i = 0; i < 8; i++)
		k[1 + i] = (uint8_t)(d >> (56 - 8 * i));
	memcpy(k + 9, "dang", 4);
	CHECK_EQ(meta_txn_put(t, k, 13, "\x08\xbf\x84\x3d\x10\x01", 6), 0);
	/* the file's dentry disappears: nlink mismatch and orphan */
	memcpy(k + 9, "f", 1);
	CHECK_EQ(meta_txn_del(t, k, 10), 0);
	CHECK_EQ(meta_txn_commit(t), 0);
	meta_txn_free(t);
	meta_db_close(db);
	CHECK_EQ(meta_store_open(dir_, &cfg_, &S, why, sizeof(why)), 0);
	CHECK_EQ(meta_fsck(S, &r, NULL, NULL), 0);
	CHECK_EQ(r.dangling_dentries, 1);
	CHECK_EQ(r.nlink_mismatches, 1);
	CHECK_EQ(r.orphans, 1);
	(void)f;
}

/*
 * Memory-only reads (meta_db_reads_no_io, what the service does on its reactor): right
 * answers or -EAGAIN, never a wrong one. After a reopen the data sits in table files with
 * a cold cache, so a memory-only read may have to give up; once a normal read brought the
 * blocks in, it must succeed.
 */
static void test_reads_no_io(void)
{
	uint64_t d = mkdir_(META_ROOT_INO, "noio", 0755, &ROOT), f = create_(d, "f", 0644, &ROOT);
	struct meta_attr a, b;
	char why[256] = "";
	int rc;

	meta_db_reads_no_io(true);
	CHECK_EQ(meta_getattr(S, 0, &ROOT, f, &a), 0); /* just written: in the memtable */
	CHECK_EQ(lookup_(d, "f", &b), 0);
	CHECK_EQ(b.ino, f);
	CHECK_EQ(lookup_(d, "nope", &b), -ENOENT);
	meta_db_reads_no_io(false);
	meta_store_close(S);
	CHECK_EQ(meta_store_open(dir_, &cfg_, &S, why, sizeof(why)), 0);
	meta_store_set_table_len(S, 0, 8);
	meta_db_reads_no_io(true);
	rc = meta_getattr(S, 0, &ROOT, f, &b);
	CHECK(rc == 0 || rc == -EAGAIN);
	if (rc == 0)
		CHECK_EQ(b.mtime_ns, a.mtime_ns);
	rc = lookup_(d, "f", &b);
	CHECK(rc == 0 || rc == -EAGAIN);
	meta_db_reads_no_io(false);
	CHECK_EQ(meta_getattr(S, 0, &ROOT, f, &b), 0);
	CHECK_EQ(lookup_(d, "f", &b), 0);
	meta_db_reads_no_io(true);
	CHECK_EQ(meta_getattr(S, 0, &ROOT, f, &b), 0); /* cached now */
	CHECK_EQ(b.ino, f);
	CHECK_EQ(b.mtime_ns, a.mtime_ns);
	CHECK_EQ(lookup_(d, "f", &b), 0);
	meta_db_reads_no_io(false);
}

int main(void)
{
	char why[256] = "";
	int rc;

	snprintf(dir_, sizeof(dir_), "/tmp/sluice-test-meta-XXXXXX");
	if (!mkdtemp(dir_))
		test_skip("mkdtemp failed");
	cfg_.db.sync = false;
	cfg_.db.lock_timeout_ms = 1000;
	cfg_.root_layout = (struct layout){0, 1u << 20, 4, 0, 0};
	cfg_.root_mode = 0777;
	cfg_.gc_delay_ns = 10 * SEC;
	rc = meta_store_format(dir_, &cfg_, false, why, sizeof(why));
	if (rc == 0)
		rc = meta_store_open(dir_, &cfg_, &S, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "cannot set up the store: %s: %s\n", sluice_strerror(rc), why);
		return 1;
	}
	meta_store_set_table_len(S, 0, 8);
	test_format();
	test_names();
	test_lookup_mkdir();
	test_create_open();
	test_mknod_symlink();
	test_link_unlink();
	test_rmdir();
	test_rename();
	test_readdir();
	test_setattr();
	test_xattr();
	test_length();
	test_layout();
	test_idempotent();
	test_gc();
	test_expire();
	test_statfs();
	test_reads_no_io();
	test_fsck_detects();
	meta_store_close(S);
	if (test_failures == 0) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir_);
	} else {
		fprintf(stderr, "kept %s\n", dir_);
	}
	return test_result();
}
