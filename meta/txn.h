/*
 * txn.h - the metadata server's key-value seam: a RocksDB TransactionDB behind a small
 * interface (STYLE.md rule 11). meta/txn.c is the only file of sluice-meta that calls
 * rocksdb_*; common/kv.c is the same seam for the plain DB of mgmtd.
 *
 * Pessimistic transactions: meta_txn_get(..., lock=true) takes an exclusive lock on the key
 * (present or not) until commit or rollback, so a transaction that read a key under lock
 * knows nobody changes it before it commits. Conflicts (lock timeout, deadlock detected,
 * RocksDB "busy" or "try again") come back as -EAGAIN from any call; the caller rolls back
 * and runs the whole transaction again (meta/store.c does, a bounded number of times).
 *
 * Errors: -ENOENT (no such key), -EAGAIN (conflict: retry), -ENOMEM, -EIO (anything else
 * RocksDB reports; its message is logged at debug level and kept for meta_db_last_error).
 *
 * Threads: a meta_db is shared by all threads. A transaction, an iterator and a value
 * belong to one thread at a time.
 */
#ifndef SLUICE_META_TXN_H
#define SLUICE_META_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"

struct meta_db;
struct meta_txn;
struct meta_iter;
struct meta_snapshot;

struct meta_db_opts {
	bool sync;		  /* commits fdatasync the WAL before returning */
	uint32_t lock_timeout_ms; /* wait for a locked key this long, then -EAGAIN */
	uint64_t cache_bytes;	  /* block cache; 0 = 64 MiB */
};

/* A value read in place (no copy): valid until meta_val_release. The get functions
 * always initialise it, so releasing after a failed get is fine. */
struct meta_val {
	const void *data;
	size_t len;
	void *pin_; /* private */
};

/* Open (creating if missing) the store in directory path. why gets RocksDB's reason. */
SLUICE_MUST_USE int meta_db_open(const char *path, const struct meta_db_opts *o,
				 struct meta_db **out, char *why, size_t why_len);
void meta_db_close(struct meta_db *db); /* NULL ok */
/* Delete every file of the store in path (it must not be open). */
SLUICE_MUST_USE int meta_db_destroy(const char *path, char *why, size_t why_len);
void meta_db_last_error(struct meta_db *db, char *buf, size_t len);

/* Latest committed value of key, outside any transaction. */
SLUICE_MUST_USE int meta_db_get(struct meta_db *db, const void *key, size_t klen,
				struct meta_val *v);
void meta_val_release(struct meta_val *v); /* NULL ok, idempotent */

/*
 * For the calling thread only: on = point reads and iterators over the committed store
 * (meta_db_get, meta_iter_db) use memory only (memtables, block cache) and fail with
 * -EAGAIN (meta_iter_status for iterators) when they would have to read a file, so a
 * thread that must not block (the reactor) can try them and hand the call to a worker
 * when they fail. Transactions are not affected. Off by default.
 */
void meta_db_reads_no_io(bool on);

/* A consistent read view for long scans (fsck). */
SLUICE_MUST_USE int meta_db_snapshot(struct meta_db *db, struct meta_snapshot **out);
void meta_db_snapshot_release(struct meta_db *db, struct meta_snapshot *s); /* NULL ok */

SLUICE_MUST_USE int meta_txn_begin(struct meta_db *db, struct meta_txn **out);
/* Read key inside t (seeing t's own writes); lock = exclusive lock until the end of t. */
SLUICE_MUST_USE int meta_txn_get(struct meta_txn *t, const void *key, size_t klen, bool lock,
				 struct meta_val *v);
SLUICE_MUST_USE int meta_txn_put(struct meta_txn *t, const void *key, size_t klen, const void *val,
				 size_t vlen);
SLUICE_MUST_USE int meta_txn_del(struct meta_txn *t, const void *key, size_t klen);
/* Make t's writes visible (and durable if opts.sync). t is finished either way. */
SLUICE_MUST_USE int meta_txn_commit(struct meta_txn *t);
/* Roll back unless committed, and free. NULL ok. */
void meta_txn_free(struct meta_txn *t);

/*
 * Iterate the keys starting with prefix (plen <= 64 bytes), in key order: inside a
 * transaction (sees its writes; keys are not locked), or over the committed store,
 * optionally at a snapshot. meta_iter_seek positions at the first key >= prefix+from
 * (from may be NULL). meta_iter_valid is false past the prefix, at the end, or on error
 * (meta_iter_status tells which).
 */
SLUICE_MUST_USE int meta_iter_txn(struct meta_txn *t, const void *prefix, size_t plen,
				  struct meta_iter **out);
SLUICE_MUST_USE int meta_iter_db(struct meta_db *db, struct meta_snapshot *snap, const void *prefix,
				 size_t plen, struct meta_iter **out);
void meta_iter_seek(struct meta_iter *it, const void *from, size_t flen);
bool meta_iter_valid(struct meta_iter *it);
void meta_iter_next(struct meta_iter *it);
const void *meta_iter_key(struct meta_iter *it, size_t *klen);
const void *meta_iter_value(struct meta_iter *it, size_t *vlen);
SLUICE_MUST_USE int meta_iter_status(struct meta_iter *it); /* 0, -EIO or -EAGAIN (no I/O) */
void meta_iter_free(struct meta_iter *it);		    /* NULL ok */

#endif
