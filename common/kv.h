/*
 * kv.h - the key-value store seam: RocksDB behind a small interface (STYLE.md rule 11).
 *
 * Daemons keep their durable state here (mgmtd's cluster map, later storage chunk metadata
 * and meta's namespace). Everything goes through these functions so a simulated backend can
 * replace RocksDB and drop unsynced writes on a simulated crash.
 *
 * Calls block (RocksDB I/O): daemons call them from a worker thread, not a reactor, except
 * at startup. A struct kv may be used from several threads at once (RocksDB is
 * thread-safe); a batch belongs to one thread.
 *
 * Errors: -ENOENT (no such key), -ENOMEM, -EIO for anything RocksDB reports; the message
 * RocksDB gave is kept and returned by kv_last_error() for the log line.
 */
#ifndef SLUICE_COMMON_KV_H
#define SLUICE_COMMON_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"

struct kv;
struct kv_batch;

#define KV_WRITE_BUFFER_BYTES (4u << 20)
/* Disk space a store may take beyond its data for preallocated files: the current and the
 * next write-ahead log (1.1 x the write buffer each) while a flush runs, and the MANIFEST. */
#define KV_DISK_OVERHEAD_BYTES (3ull * KV_WRITE_BUFFER_BYTES)

/* Open (creating if missing) the store in directory path. On failure RocksDB's reason is
 * copied to why (if not NULL), e.g. a lock held by another process. */
SLUICE_MUST_USE int kv_open(const char *path, struct kv **out, char *why, size_t why_len);
void kv_close(struct kv *kv); /* NULL ok */

/* Copy of the value of key into a malloc'd buffer (*val, *vlen; free with free()). */
SLUICE_MUST_USE int kv_get(struct kv *kv, const void *key, size_t klen, void **val, size_t *vlen);

/*
 * Call fn for every key starting with prefix, in key order, until fn returns nonzero
 * (which is then returned). Key and value are valid only during the call.
 */
#define KV_PREFIX_MAX 64 /* bytes of a kv_scan prefix */
SLUICE_MUST_USE int
kv_scan(struct kv *kv, const void *prefix, size_t plen,
	int (*fn)(const void *k, size_t klen, const void *v, size_t vlen, void *arg), void *arg);

/* Like kv_scan, for every key k with start <= k < end (bytewise order; end NULL: no bound). */
SLUICE_MUST_USE int
kv_scan_range(struct kv *kv, const void *start, size_t slen, const void *end, size_t elen,
	      int (*fn)(const void *k, size_t klen, const void *v, size_t vlen, void *arg),
	      void *arg);

SLUICE_MUST_USE int kv_batch_create(struct kv_batch **out);
void kv_batch_destroy(struct kv_batch *b); /* NULL ok */
void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
void kv_batch_delete(struct kv_batch *b, const void *key, size_t klen);
unsigned kv_batch_count(const struct kv_batch *b);

/* Apply the batch atomically; sync makes it durable before returning (fdatasync of the
 * WAL). The batch may be reused after kv_batch_clear. */
SLUICE_MUST_USE int kv_write(struct kv *kv, struct kv_batch *b, bool sync);
void kv_batch_clear(struct kv_batch *b);

/* The last error message RocksDB gave on this store ("" if none). Thread-safe copy. */
void kv_last_error(struct kv *kv, char *buf, size_t len);

#endif
