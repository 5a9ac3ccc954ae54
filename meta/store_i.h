/*
 * store_i.h - internals shared by the meta/ store files (store.c, perm.c, ns.c, file.c,
 * gc.c, fsck.c). Never included outside meta/.
 */
#ifndef SLUICE_META_STORE_I_H
#define SLUICE_META_STORE_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "meta/keys.h"
#include "meta/store.h"
#include "meta/txn.h"

#define META_FORMAT_VERSION    1u
#define META_TABLES_MAX	       64 /* chain tables whose length the store remembers */
#define META_GC_BACKOFF_MIN_NS (1ull * 1000000000ull)
#define META_GC_BACKOFF_MAX_NS (300ull * 1000000000ull)

struct meta_client; /* liveness entry, store.c */

struct meta_store {
	struct meta_db *db;
	struct meta_store_cfg cfg;

	pthread_mutex_t alloc_mu; /* guards the id ranges below */
	uint64_t ino_next, ino_end;
	uint64_t sid_next, sid_end;

	/* Held around every rename whose two directories differ, so a loop check reads
	 * parent pointers that no other rename is changing (Linux s_vfs_rename_mutex). */
	pthread_mutex_t rename_mu;

	pthread_mutex_t clients_mu; /* guards the client table */
	struct meta_client **buckets;
	uint32_t nbuckets, nclients;

	pthread_mutex_t tables_mu; /* guards tables[] */
	struct {
		uint32_t id, len;
	} tables[META_TABLES_MAX];
	unsigned ntables;

	uint64_t open_mono_ns;
	_Atomic uint64_t skew_wall_ns, skew_mono_ns; /* meta_store_test_advance */

	_Atomic uint64_t st_gc_removed, st_gc_failures, st_expired, st_retries, st_replays;
};

/* An inode as the store code handles it (the Inode message, decoded). */
struct meta_inode {
	uint64_t ino;
	uint32_t type, mode, uid, gid, nlink, flags;
	uint64_t size, atime_ns, mtime_ns, ctime_ns, btime_ns, rdev, gc_due_ns, parent;
	bool has_layout;
	struct layout layout;
	uint32_t symlink_len;
	char symlink[SLUICE_META_SYMLINK_MAX];
};

struct meta_dent {
	uint64_t ino;
	uint32_t type;
};

/* The result a mutating operation stores for its retries (OpResult). */
struct meta_result {
	bool has_attr;
	struct meta_attr attr;
	uint64_t session_id;
	bool created;
};

/* One operation, run as a transaction by store_txn. */
struct meta_op {
	struct meta_store *s;
	const struct meta_creds *cr;
	const struct meta_reqid *rid; /* NULL: not recorded (read-only or internal) */
	uint32_t opcode;	      /* enum meta_opcode; stored with the result */
	int (*body)(struct meta_txn *t, struct meta_op *op);
	void *arg;
	uint64_t now_ns; /* wall clock, fixed at each attempt */
	struct meta_result res;
};

/* Opcodes recorded with results (they match proto/meta_ops.h numbers). */
enum meta_opcode {
	MOP_SETATTR = 3,
	MOP_CREATE = 4,
	MOP_MKDIR = 5,
	MOP_MKNOD = 6,
	MOP_SYMLINK = 7,
	MOP_LINK = 9,
	MOP_UNLINK = 10,
	MOP_RMDIR = 11,
	MOP_RENAME = 12,
	MOP_SETXATTR = 16,
	MOP_REMOVEXATTR = 18,
	MOP_OPEN = 19,
	MOP_CLOSE = 20,
	MOP_REPORT_LENGTH = 21,
	MOP_SET_LAYOUT = 23,
	MOP_RMTREE = 26,
	MOP_INTERNAL = 1000, /* GC, expiry: never recorded */
};

/* ---- store.c ---- */
uint64_t store_wall_ns(struct meta_store *s);
uint64_t store_mono_ns(struct meta_store *s);
/* Checks partition and request id shape (rid may be NULL when !need_rid). */
SLUICE_MUST_USE int store_check_call(uint32_t part, const struct meta_creds *cr,
				     const struct meta_reqid *rid, bool need_rid);
/* Run op->body in a transaction, retried on conflicts; replays a stored result. */
SLUICE_MUST_USE int store_txn(struct meta_op *op);
SLUICE_MUST_USE int store_alloc_ino(struct meta_store *s, uint64_t *out);
SLUICE_MUST_USE int store_alloc_session(struct meta_store *s, uint64_t *out);
uint32_t store_table_len(struct meta_store *s, uint32_t table_id);
void store_client_seen(struct meta_store *s, uint64_t client);
bool store_client_live(struct meta_store *s, uint64_t client, uint64_t timeout_ns);
/* Forget clients not live any more; returns how many are left. */
uint64_t store_clients_prune(struct meta_store *s, uint64_t timeout_ns);

SLUICE_MUST_USE int inode_decode(const void *buf, size_t len, uint64_t ino, struct meta_inode *out);
SLUICE_MUST_USE int ino_load(struct meta_txn *t, uint64_t ino, bool lock, struct meta_inode *out);
SLUICE_MUST_USE int ino_load_db(struct meta_db *db, uint64_t ino, struct meta_inode *out);
SLUICE_MUST_USE int ino_store(struct meta_txn *t, const struct meta_inode *in);
/* Delete the inode with its xattrs and sessions. */
SLUICE_MUST_USE int ino_delete(struct meta_txn *t, uint64_t ino);
SLUICE_MUST_USE int dent_decode(const void *buf, size_t len, struct meta_dent *out);
SLUICE_MUST_USE int dent_load(struct meta_txn *t, uint64_t parent, const void *name, size_t nlen,
			      bool lock, struct meta_dent *out);
SLUICE_MUST_USE int dent_store(struct meta_txn *t, uint64_t parent, const void *name, size_t nlen,
			       const struct meta_dent *d);
SLUICE_MUST_USE int dent_del(struct meta_txn *t, uint64_t parent, const void *name, size_t nlen);
/* 1 if the range of prefix (tag + id) has a key, 0 if not, or an error. */
SLUICE_MUST_USE int range_has_key(struct meta_txn *t, char tag, uint64_t id);
/* Queue in for deletion at due_ns (writes the G entry; the caller stores in). */
SLUICE_MUST_USE int gc_queue(struct meta_txn *t, struct meta_inode *in, uint64_t due_ns,
			     uint32_t attempts, uint64_t queued_ns);
/* An inode lost a link (or a session): queue it if nothing keeps it any more, then store
 * it. Directories are never passed here. */
SLUICE_MUST_USE int ino_release(struct meta_op *op, struct meta_txn *t, struct meta_inode *in);
void attr_from_inode(const struct meta_inode *in, struct meta_attr *out);

/* ---- ns.c, file.c ---- */
/* Largest length the file's layout can address (and at most INT64_MAX). */
uint64_t inode_size_max(const struct meta_inode *in);
/* open(2) of the locked inode in (create and meta_open): checks, O_TRUNC, write session;
 * op->res gets the attributes and session. Permission is not checked for a file the same
 * operation created (op->res.created). */
SLUICE_MUST_USE int open_locked(struct meta_txn *t, struct meta_op *op, struct meta_inode *in,
				uint32_t flags);

/* ---- perm.c ---- */
enum { PERM_R = 4, PERM_W = 2, PERM_X = 1 };
bool perm_in_group(const struct meta_creds *cr, uint32_t gid);
/* 0 or -EACCES. */
SLUICE_MUST_USE int perm_check(const struct meta_creds *cr, const struct meta_inode *in, int want);
/* Removing/renaming victim out of dir: 0 or -EPERM (sticky bit). */
SLUICE_MUST_USE int perm_sticky(const struct meta_creds *cr, const struct meta_inode *dir,
				const struct meta_inode *victim);
/* 0, -EINVAL (empty is -ENOENT, '/' or NUL -EINVAL), -ENAMETOOLONG. */
SLUICE_MUST_USE int name_check(const void *name, size_t nlen);
bool name_is_dot(const void *name, size_t nlen);    /* "." */
bool name_is_dotdot(const void *name, size_t nlen); /* ".." */
/* A directory usable as the parent of a new or looked-up entry: 0, -ENOTDIR, -ENOENT. */
SLUICE_MUST_USE int dir_usable(const struct meta_inode *dir);

#endif
