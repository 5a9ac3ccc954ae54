/*
 * store.h - the metadata store of sluice-meta (DESIGN.md section 7): the namespace as one
 * RocksDB TransactionDB, every operation one transaction.
 *
 * Each operation takes (store, partition, caller credentials, [request id,] arguments...)
 * and returns 0 (or a count) or a negative POSIX errno; out-parameters are written only
 * on success, and a failed operation changes nothing. The partition argument is there for
 * the scale-out of DESIGN.md section 7: today there is one partition, 0, and any other is
 * -SLUICE_EROUTING (the caller asked the wrong server).
 *
 * Mutating operations take a request id {client, id} (both nonzero, else -EINVAL): the
 * result of a successful one is stored in the same transaction, and the same request id
 * returns that result again without doing anything (a retry after a lost reply). A client
 * heartbeat (meta_client_heartbeat) says which results it no longer needs; results of
 * clients that stopped heartbeating are dropped with their sessions (meta_expire).
 *
 * Names are byte strings (not NUL-terminated): 1..SLUICE_NAME_MAX bytes without '/' or
 * NUL. Errors common to every call: -EINVAL (bad argument, malformed name), -ENAMETOOLONG,
 * -ENOENT (no such inode or name), -ENOTDIR / -EISDIR (wrong inode type), -EACCES / -EPERM
 * (permissions, checked from the credentials given), -EAGAIN (too many transaction
 * conflicts: retry later), -EIO (the store failed or holds a value it cannot decode),
 * -ENOMEM. Each function lists its own extra cases.
 *
 * Open flags, rename flags and xattr flags use the Linux values (O_EXCL, RENAME_NOREPLACE,
 * XATTR_CREATE...), which are also what goes on the wire. Modes are permission bits
 * (07777); the caller has already applied its umask.
 *
 * Threads: every function may be called from any number of threads at once (workers of
 * the daemon, threads of a test). Blocking: all of them do RocksDB I/O.
 */
#ifndef SLUICE_META_STORE_H
#define SLUICE_META_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/layout.h"
#include "common/limits.h"
#include "meta/txn.h"

struct meta_store;

#define META_ROOT_INO 1u

/* Same numbers as FileType in proto/meta.proto (asserted in store.c). */
enum meta_ftype {
	META_FT_REG = 1,
	META_FT_DIR = 2,
	META_FT_LNK = 3,
	META_FT_FIFO = 4,
	META_FT_SOCK = 5,
	META_FT_CHR = 6,
	META_FT_BLK = 7,
};

struct meta_creds {
	uint32_t uid, gid;
	uint32_t ngids;
	uint32_t gids[SLUICE_META_GROUPS_MAX];
};

struct meta_reqid {
	uint64_t client; /* nonzero */
	uint64_t id;	 /* nonzero, unique per client */
};

struct meta_attr {
	uint64_t ino;
	uint32_t type; /* enum meta_ftype */
	uint32_t mode; /* 07777 bits */
	uint32_t uid, gid, nlink;
	uint64_t size;
	uint64_t atime_ns, mtime_ns, ctime_ns, btime_ns; /* wall clock */
	uint64_t rdev;
	uint64_t parent; /* directories */
	bool has_layout; /* regular files and directories */
	struct layout layout;
};

struct meta_open_result {
	struct meta_attr attr;
	uint64_t session_id; /* 0: no write session (read-only open, not a regular file) */
	bool created;
};

struct meta_store_cfg {
	struct meta_db_opts db;
	struct layout root_layout; /* the root directory's layout, at format */
	uint32_t root_mode;	   /* at format; 0 = 0755 */
	uint64_t gc_delay_ns;	   /* unlinked files wait this long before deletion */
};

/* ---- lifecycle -------------------------------------------------------------------------- */

/*
 * Create a new namespace in directory path: format marker, counters, the root directory
 * (ino 1, owned by 0:0). -EEXIST if the store holds anything and !force; with force the
 * old store is destroyed first. why gets RocksDB's reason on -EIO.
 */
SLUICE_MUST_USE int meta_store_format(const char *path, const struct meta_store_cfg *cfg,
				      bool force, char *why, size_t why_len);

/*
 * Open a formatted store. -ENOENT: the store is empty (format it: meta_store_format),
 * -EBADMSG: it holds keys but no format marker, or a marker of another version (not ours:
 * never guess). cfg is copied.
 */
SLUICE_MUST_USE int meta_store_open(const char *path, const struct meta_store_cfg *cfg,
				    struct meta_store **out, char *why, size_t why_len);
void meta_store_close(struct meta_store *s); /* NULL ok; no call may be running */

/* Chain table lengths known from the routing table: new files get a chain_base below it
 * and a stripe no wider. Unknown tables (length 0): chain_base 0, the directory's stripe. */
void meta_store_set_table_len(struct meta_store *s, uint32_t table_id, uint32_t len);

/* ---- names and attributes --------------------------------------------------------------- */

/* Attributes of parent's entry name; "." and ".." allowed. Needs search (x) on parent. */
SLUICE_MUST_USE int meta_lookup(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				uint64_t parent, const void *name, size_t nlen,
				struct meta_attr *out);

SLUICE_MUST_USE int meta_getattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				 uint64_t ino, struct meta_attr *out);

enum meta_setattr_mask {
	META_SET_MODE = 1u << 0,
	META_SET_UID = 1u << 1,
	META_SET_GID = 1u << 2,
	META_SET_SIZE = 1u << 3,
	META_SET_ATIME = 1u << 4,
	META_SET_MTIME = 1u << 5,
	META_SET_ATIME_NOW = 1u << 6,
	META_SET_MTIME_NOW = 1u << 7,
	META_SET_ALL_ = (1u << 8) - 1,
};

struct meta_setattr {
	uint32_t mask;
	uint32_t mode, uid, gid;
	uint64_t size;
	uint64_t atime_ns, mtime_ns;
	uint64_t session_id; /* optional write session of the caller: truncate without w bit */
};

/*
 * chmod/chown/truncate/utimes with POSIX rules: mode and explicit times need the owner (or
 * root) else -EPERM; uid changes need root; gid changes need the owner in that group (or
 * root); chown of a regular file clears S_ISUID (and S_ISGID when group-executable);
 * chmod by a caller outside the file's group clears S_ISGID; size needs write permission
 * (or the session) and a regular file (-EISDIR for directories, -EINVAL otherwise, -EFBIG
 * beyond the layout's reach). Truncate only records the length: removing the chunks past
 * it is the writer's job.
 */
SLUICE_MUST_USE int meta_setattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				 const struct meta_reqid *rid, uint64_t ino,
				 const struct meta_setattr *sa, struct meta_attr *out);

/* ---- creating --------------------------------------------------------------------------- */

/*
 * Create and open a regular file (open(2) with O_CREAT): an existing name is opened
 * instead unless O_EXCL (-EEXIST); an existing directory is -EISDIR, a symlink -ELOOP (the
 * client resolves links). Write opens get a session; O_TRUNC truncates an existing file.
 * The file copies its parent's layout with a chain_base and seed of its own.
 */
SLUICE_MUST_USE int meta_create(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				const struct meta_reqid *rid, uint64_t parent, const void *name,
				size_t nlen, uint32_t mode, uint32_t flags,
				struct meta_open_result *out);

/* -EEXIST (also for "." and ".."), -EMLINK (parent has SLUICE_META_LINK_MAX links). */
SLUICE_MUST_USE int meta_mkdir(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
			       const struct meta_reqid *rid, uint64_t parent, const void *name,
			       size_t nlen, uint32_t mode, struct meta_attr *out);

/* type: META_FT_REG, _FIFO, _SOCK, _CHR or _BLK (devices need root: -EPERM); others
 * -EINVAL. */
SLUICE_MUST_USE int meta_mknod(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
			       const struct meta_reqid *rid, uint64_t parent, const void *name,
			       size_t nlen, uint32_t type, uint32_t mode, uint64_t rdev,
			       struct meta_attr *out);

/* target: 1..SLUICE_META_SYMLINK_MAX bytes without NUL (-ENOENT empty, -ENAMETOOLONG). */
SLUICE_MUST_USE int meta_symlink(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				 const struct meta_reqid *rid, uint64_t parent, const void *name,
				 size_t nlen, const void *target, size_t tlen,
				 struct meta_attr *out);

/* Copies the target into buf (cap >= SLUICE_META_SYMLINK_MAX suffices); returns its
 * length. -EINVAL if ino is not a symlink, -ERANGE if cap is too small. */
SLUICE_MUST_USE int meta_readlink(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				  uint64_t ino, void *buf, size_t cap);

/* Hard link: -EPERM for directories, -EMLINK, -EEXIST, -ENOENT if ino has no links left. */
SLUICE_MUST_USE int meta_link(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
			      const struct meta_reqid *rid, uint64_t ino, uint64_t new_parent,
			      const void *name, size_t nlen, struct meta_attr *out);

/* ---- removing ---------------------------------------------------------------------------- */

/*
 * Remove a non-directory entry (-EISDIR; "." or ".." is -EISDIR too). The last link of an
 * inode without write sessions queues it for GC; with sessions it is queued when the last
 * one closes or expires. Sticky directories: owner of the file or the directory, or root
 * (-EPERM).
 */
SLUICE_MUST_USE int meta_unlink(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				const struct meta_reqid *rid, uint64_t parent, const void *name,
				size_t nlen);

/* Remove an empty directory: -ENOTEMPTY, -ENOTDIR, "." is -EINVAL, ".." -ENOTEMPTY. */
SLUICE_MUST_USE int meta_rmdir(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
			       const struct meta_reqid *rid, uint64_t parent, const void *name,
			       size_t nlen);

/*
 * rm -rf in one step: the directory leaves the namespace at once and GC deletes what is
 * below it in the background. Needs what rmdir needs plus write and search permission on
 * the directory, and the caller must own it (or be root): the permissions of what lies
 * below are not checked one by one (an O(1) call cannot), so the owner of a tree may
 * remove all of it, like 3FS's recursive remove. -ENOTDIR for a non-directory.
 */
SLUICE_MUST_USE int meta_rmtree(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				const struct meta_reqid *rid, uint64_t parent, const void *name,
				size_t nlen);

#define META_RENAME_NOREPLACE 1u /* = RENAME_NOREPLACE */
#define META_RENAME_EXCHANGE  2u /* = RENAME_EXCHANGE */

/*
 * rename(2)/renameat2(2). Replacing: a directory only by an empty directory (-ENOTEMPTY,
 * -EISDIR, -ENOTDIR), the replaced inode loses a link as in unlink. Moving a directory
 * into its own subtree is -EINVAL; "." or ".." -EBUSY; NOREPLACE with an existing target
 * -EEXIST; EXCHANGE without one -ENOENT; both flags -EINVAL. Renaming a name onto another
 * link of the same inode does nothing. Cross-directory renames are serialised (like
 * Linux's s_vfs_rename_mutex) so loop checks cannot race.
 */
SLUICE_MUST_USE int meta_rename(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				const struct meta_reqid *rid, uint64_t parent, const void *name,
				size_t nlen, uint64_t new_parent, const void *new_name,
				size_t new_nlen, uint32_t flags);

/* ---- directories ------------------------------------------------------------------------- */

/* One entry for meta_readdir's callback; attr only with plus (NULL otherwise). */
typedef int (*meta_dirent_fn)(void *arg, const void *name, size_t nlen, uint64_t ino, uint32_t type,
			      const struct meta_attr *attr);

/*
 * Up to max entries (1..SLUICE_META_READDIR_MAX; 0 = the maximum) after the cursor (the
 * last name returned before; empty: from the start), in name order, without "." and "..".
 * fn returning nonzero stops early (that entry counts as not returned). Sets *eof when no
 * entry follows. Returns the number of entries given to fn. Needs read permission.
 */
SLUICE_MUST_USE int meta_readdir(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				 uint64_t ino, const void *cursor, size_t clen, uint32_t max,
				 bool plus, meta_dirent_fn fn, void *arg, bool *eof);

struct meta_statfs {
	uint64_t files;	     /* inode ids handed out so far (an upper bound of inodes) */
	uint64_t files_free; /* ids left */
	uint32_t name_max;
};

SLUICE_MUST_USE int meta_statfs(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				struct meta_statfs *out);

/* ---- xattrs -------------------------------------------------------------------------------
 * Names: "user.", "trusted." (root only; hidden from others) or "security." prefixes, else
 * -EOPNOTSUPP ("system." ACLs are not supported); length 1..SLUICE_META_XATTR_NAME_MAX
 * else -ERANGE. user.* only on regular files and directories (-EPERM). Missing: -ENODATA.
 */

#define META_XATTR_CREATE  1u /* = XATTR_CREATE */
#define META_XATTR_REPLACE 2u /* = XATTR_REPLACE */

/* Value copied into buf; returns its length; -ERANGE if cap is too small. Read permission
 * for user.*. */
SLUICE_MUST_USE int meta_getxattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				  uint64_t ino, const void *name, size_t nlen, void *buf,
				  size_t cap);

/* flags: XATTR_CREATE (-EEXIST), XATTR_REPLACE (-ENODATA). Values up to
 * SLUICE_META_XATTR_VALUE_MAX (-E2BIG); names of one inode up to SLUICE_META_XATTR_LIST_MAX
 * bytes with their NULs (-ENOSPC). Write permission for user.*, root for trusted.*,
 * owner or root for security.*. */
SLUICE_MUST_USE int meta_setxattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				  const struct meta_reqid *rid, uint64_t ino, const void *name,
				  size_t nlen, const void *value, size_t vlen, uint32_t flags);

/* Names as listxattr(2) gives them: each followed by a NUL, into buf; returns the total
 * length; -ERANGE if cap is too small (cap >= SLUICE_META_XATTR_LIST_MAX suffices). */
SLUICE_MUST_USE int meta_listxattr(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
				   uint64_t ino, void *buf, size_t cap);

SLUICE_MUST_USE int meta_removexattr(struct meta_store *s, uint32_t part,
				     const struct meta_creds *cr, const struct meta_reqid *rid,
				     uint64_t ino, const void *name, size_t nlen);

/* ---- open files and length --------------------------------------------------------------- */

/*
 * open(2) of an existing inode (flags as open's; O_CREAT/O_EXCL are ignored here). Write
 * access or O_TRUNC needs a request id; a regular file opened for writing gets a write
 * session owned by rid->client. -EISDIR for writing a directory, -ELOOP for a symlink,
 * -ENOENT for an inode without links.
 */
SLUICE_MUST_USE int meta_open(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
			      const struct meta_reqid *rid, uint64_t ino, uint32_t flags,
			      struct meta_open_result *out);

/*
 * A writer's length report: the file's length becomes max(length, current) - or exactly
 * length when exact (close, fsync) and this is the inode's only write session. -EBADF if
 * the session does not exist or belongs to another client, -EFBIG beyond the layout.
 * meta_close does the same and ends the session (queuing an unlinked inode for GC when it
 * was the last).
 */
SLUICE_MUST_USE int meta_report_length(struct meta_store *s, uint32_t part,
				       const struct meta_creds *cr, const struct meta_reqid *rid,
				       uint64_t ino, uint64_t session_id, uint64_t length,
				       bool exact, struct meta_attr *out);
SLUICE_MUST_USE int meta_close(struct meta_store *s, uint32_t part, const struct meta_creds *cr,
			       const struct meta_reqid *rid, uint64_t ino, uint64_t session_id,
			       uint64_t length, bool exact, struct meta_attr *out);

/* ---- layouts ------------------------------------------------------------------------------- */

/* Layout of a regular file, or a directory's default for new children (-EINVAL for other
 * types). */
SLUICE_MUST_USE int meta_get_layout(struct meta_store *s, uint32_t part,
				    const struct meta_creds *cr, uint64_t ino, struct layout *out);

/*
 * Set a directory's default (new children copy it, subdirectories included) or the layout
 * of an empty regular file (-EBUSY once it has a length). Owner or root (-EPERM). -EINVAL
 * for a bad chunk size or stripe, or a stripe wider / chain_base beyond a known table.
 */
SLUICE_MUST_USE int meta_set_layout(struct meta_store *s, uint32_t part,
				    const struct meta_creds *cr, const struct meta_reqid *rid,
				    uint64_t ino, const struct layout *l);

/* ---- clients, sessions, GC, checks -------------------------------------------------------- */

/*
 * A client is alive: its sessions are kept for session_timeout from now, and the stored
 * results of its requests with ids below acked_request_id are deleted (up to a batch per
 * call). -EINVAL for client 0, -EAGAIN if SLUICE_META_CLIENTS_MAX clients are tracked.
 */
SLUICE_MUST_USE int meta_client_heartbeat(struct meta_store *s, uint64_t client,
					  uint64_t acked_request_id);

/*
 * End the sessions of clients not heard from (any request or heartbeat) for timeout_ns -
 * counting from the store's opening for clients not heard from since - queuing unlinked
 * inodes they held, and drop those clients' stored results. Does at most budget items.
 * Returns the number of sessions ended.
 */
SLUICE_MUST_USE int meta_expire(struct meta_store *s, uint64_t timeout_ns, unsigned budget);

/*
 * Removes every chunk of inode ino (layout l, length size; the chunks past size too):
 * idempotent, may block; 0 or a negative error. The GC keeps the inode queued on error.
 */
typedef int (*meta_chunk_remove_fn)(void *arg, uint64_t ino, const struct layout *l, uint64_t size);

/*
 * One GC pass over entries due by now (at most budget of them): regular files have their
 * chunks removed through remove (on failure the entry is retried later, with backoff) and
 * then their inode deleted; directories from meta_rmtree have up to SLUICE_META_GC_BATCH
 * entries detached per step (children whose last link goes are queued, due at once) and
 * go once empty; other types are deleted. Returns the number of inodes deleted.
 */
SLUICE_MUST_USE int meta_gc_run(struct meta_store *s, unsigned budget, meta_chunk_remove_fn remove,
				void *arg);

struct meta_fsck_report {
	uint64_t inodes, dentries, sessions, gc_queued;
	uint64_t dangling_dentries; /* dentry to a missing inode */
	uint64_t nlink_mismatches;
	uint64_t orphans; /* no dentry, not root, not queued for GC, no write session */
	uint64_t other;	  /* type mismatches, bad parents, stray sessions/xattrs/GC entries,
			     undecodable values */
};

/*
 * Check the whole store at one snapshot: every dentry names an existing inode of the same
 * type, every inode's nlink matches its dentries (directories: 2 + subdirectories), every
 * inode is reachable or queued for GC, sessions, xattrs and GC entries belong to existing
 * inodes. problem(arg, line) is called for each problem found (may be NULL). Memory:
 * about 48 bytes per inode. Read-only.
 */
SLUICE_MUST_USE int meta_fsck(struct meta_store *s, struct meta_fsck_report *out,
			      void (*problem)(void *arg, const char *line), void *arg);

struct meta_stats {
	uint64_t gc_queued;   /* entries in the GC queue right now (counted on demand) */
	uint64_t gc_removed;  /* since open */
	uint64_t gc_failures; /* chunk removals that failed */
	uint64_t sessions_expired;
	uint64_t clients_live;
	uint64_t txn_retries;
	uint64_t replays; /* retried requests answered from a stored result */
};

SLUICE_MUST_USE int meta_store_stats(struct meta_store *s, struct meta_stats *out);

/* Test hooks: the clock the store uses for GC due times (wall ns) and for client liveness
 * (monotonic ns) is env's; these shift it for this store only, to age entries without
 * sleeping. */
void meta_store_test_advance(struct meta_store *s, uint64_t wall_ns, uint64_t mono_ns);

#endif
