/*
 * kv.c - struct kv over the RocksDB C API (see kv.h).
 *
 * One rocksdb_t per store with default options tuned lightly for small metadata: create if
 * missing, a modest write buffer, and paranoid checks so corruption is reported rather than
 * read. RocksDB returns errors as malloc'd strings; they are copied into the store's
 * last-error buffer under a mutex and freed, and callers get -EIO.
 */
#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kv.h"
#include "common/log.h"

LOG_FACILITY("kv");

struct kv {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_readoptions_t *ropts;
	rocksdb_writeoptions_t *wopts_sync, *wopts_nosync;
	pthread_mutex_t mu; /* guards last_error */
	char last_error[256];
};

struct kv_batch {
	rocksdb_writebatch_t *wb;
};

/* Consume a RocksDB error string; -EIO if there was one, else 0. */
static int take_error(struct kv *kv, char *err)
{
	if (!err)
		return 0;
	log_debug("rocksdb: %s", err);
	if (kv) {
		pthread_mutex_lock(&kv->mu);
		snprintf(kv->last_error, sizeof(kv->last_error), "%s", err);
		pthread_mutex_unlock(&kv->mu);
	}
	rocksdb_free(err);
	return -EIO;
}

int kv_open(const char *path, struct kv **out, char *why, size_t why_len)
{
	struct kv *kv = calloc(1, sizeof(*kv));
	char *err = NULL;

	if (!kv)
		return -ENOMEM;
	pthread_mutex_init(&kv->mu, NULL);
	kv->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(kv->opts, 1);
	rocksdb_options_set_paranoid_checks(kv->opts, 1);
	/* RocksDB preallocates each WAL file at 1.1 x the write buffer and each MANIFEST at
	 * manifest_preallocation_size. Both come out of the disk the data shares, so they are
	 * kept small and bounded (KV_DISK_OVERHEAD_BYTES, which storage adds to its reserve). */
	rocksdb_options_set_write_buffer_size(kv->opts, KV_WRITE_BUFFER_BYTES);
	rocksdb_options_set_manifest_preallocation_size(kv->opts, 64u << 10);
	rocksdb_options_set_max_open_files(kv->opts, 256);
	kv->ropts = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(kv->ropts, 1);
	kv->wopts_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(kv->wopts_sync, 1);
	kv->wopts_nosync = rocksdb_writeoptions_create();
	kv->db = rocksdb_open(kv->opts, path, &err);
	if (err) {
		log_debug("open %s: %s", path, err);
		if (why)
			snprintf(why, why_len, "%s", err);
		rocksdb_free(err);
		kv_close(kv);
		return -EIO;
	}
	*out = kv;
	return 0;
}

void kv_close(struct kv *kv)
{
	if (!kv)
		return;
	if (kv->db)
		rocksdb_close(kv->db);
	rocksdb_writeoptions_destroy(kv->wopts_sync);
	rocksdb_writeoptions_destroy(kv->wopts_nosync);
	rocksdb_readoptions_destroy(kv->ropts);
	rocksdb_options_destroy(kv->opts);
	pthread_mutex_destroy(&kv->mu);
	free(kv);
}

int kv_get(struct kv *kv, const void *key, size_t klen, void **val, size_t *vlen)
{
	char *err = NULL, *v;
	size_t n = 0;
	void *copy;

	v = rocksdb_get(kv->db, kv->ropts, key, klen, &n, &err);
	if (err)
		return take_error(kv, err);
	if (!v)
		return -ENOENT;
	copy = malloc(n ? n : 1);
	if (!copy) {
		rocksdb_free(v);
		return -ENOMEM;
	}
	memcpy(copy, v, n);
	rocksdb_free(v);
	*val = copy;
	*vlen = n;
	return 0;
}

int kv_scan_range(struct kv *kv, const void *start, size_t slen, const void *end, size_t elen,
		  int (*fn)(const void *k, size_t klen, const void *v, size_t vlen, void *arg),
		  void *arg)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(kv->db, kv->ropts);
	char *err = NULL;
	int rc = 0;

	for (rocksdb_iter_seek(it, start, slen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen, vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		size_t n = klen < elen ? klen : elen;
		int cmp = end ? memcmp(k, end, n) : -1;

		/* Bytewise order: stop at the first key >= end. */
		if (cmp > 0 || (cmp == 0 && klen >= elen))
			break;
		rc = fn(k, klen, v, vlen, arg);
		if (rc)
			break;
	}
	rocksdb_iter_get_error(it, &err);
	if (err && rc == 0)
		rc = take_error(kv, err);
	else if (err)
		rocksdb_free(err);
	rocksdb_iter_destroy(it);
	return rc;
}

/* Scanning a prefix is scanning [prefix, prefix + 1): the prefix with its last byte that
 * is not 0xff incremented and the rest cut off (no upper bound if every byte is 0xff). */
int kv_scan(struct kv *kv, const void *prefix, size_t plen,
	    int (*fn)(const void *k, size_t klen, const void *v, size_t vlen, void *arg), void *arg)
{
	uint8_t end[KV_PREFIX_MAX];
	size_t elen = plen;

	ASSERT(plen <= KV_PREFIX_MAX);
	memcpy(end, prefix, plen);
	while (elen > 0 && end[elen - 1] == 0xff)
		elen--;
	if (elen == 0) /* every key from the prefix on has it */
		return kv_scan_range(kv, prefix, plen, NULL, 0, fn, arg);
	end[elen - 1]++;
	return kv_scan_range(kv, prefix, plen, end, elen, fn, arg);
}

int kv_batch_create(struct kv_batch **out)
{
	struct kv_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->wb = rocksdb_writebatch_create();
	*out = b;
	return 0;
}

void kv_batch_destroy(struct kv_batch *b)
{
	if (!b)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b);
}

void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	rocksdb_writebatch_put(b->wb, key, klen, val, vlen);
}

void kv_batch_delete(struct kv_batch *b, const void *key, size_t klen)
{
	rocksdb_writebatch_delete(b->wb, key, klen);
}

unsigned kv_batch_count(const struct kv_batch *b)
{
	return (unsigned)rocksdb_writebatch_count(b->wb);
}

void kv_batch_clear(struct kv_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
}

int kv_write(struct kv *kv, struct kv_batch *b, bool sync)
{
	char *err = NULL;

	rocksdb_write(kv->db, sync ? kv->wopts_sync : kv->wopts_nosync, b->wb, &err);
	return take_error(kv, err);
}

void kv_last_error(struct kv *kv, char *buf, size_t len)
{
	pthread_mutex_lock(&kv->mu);
	snprintf(buf, len, "%s", kv->last_error);
	pthread_mutex_unlock(&kv->mu);
}
