/*
 * txn.c - the metadata store's RocksDB TransactionDB (see txn.h).
 *
 * DESIGN
 * One rocksdb_transactiondb_t per store. Point reads dominate (stat, lookup), so the table
 * has a bloom filter and an LRU block cache; values are read through pinnable slices so a
 * get does not copy (protobuf-c copies what it keeps while unpacking anyway).
 *
 * RocksDB reports errors as malloc'd Status strings. Conflicts are recognised by the
 * prefix of Status::ToString(): "Resource busy" (write conflict, deadlock), "Operation
 * timed out" (lock wait timeout), "Operation failed. Try again", "Operation expired"; they
 * map to -EAGAIN so the caller retries the transaction. "Result incomplete" (a read on a
 * no-I/O thread that needed a file, see meta_db_reads_no_io) is -EAGAIN too: the caller
 * retries where blocking is allowed. Everything else is -EIO with the text kept for the
 * log.
 *
 * Finished transaction objects are kept (up to TXN_CACHE_MAX, under mu) and re-initialised
 * by the next meta_txn_begin instead of being built from scratch for every operation.
 *
 * Threads: any; see txn.h for what may be shared.
 */
#include <errno.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "meta/txn.h"

LOG_FACILITY("meta-txn");

#define ITER_PREFIX_MAX 64

/* RocksDB's ReadTier kBlockCacheTier: serve from memtables and the block cache only; a read
 * that needs a file returns Status::Incomplete instead of blocking. */
#define READ_TIER_CACHE_ONLY 1

/* Finished transactions kept per store for reuse: RocksDB re-initialises a transaction
 * object in place (BeginTransaction with old_txn), which saves building its write batch
 * index and lock tracker for every operation. About the number of threads that run
 * transactions at once (the workers); more just get freed. */
#define TXN_CACHE_MAX 32

/* Set by meta_db_reads_no_io on a thread that must not block (the reactor). */
static _Thread_local bool reads_no_io;

struct meta_db {
	rocksdb_transactiondb_t *db;
	rocksdb_options_t *opts;
	rocksdb_transactiondb_options_t *tdb_opts;
	rocksdb_transaction_options_t *txn_opts;
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_cache_t *cache;
	rocksdb_filterpolicy_t *filter; /* owned by table_opts once set */
	rocksdb_readoptions_t *ropts;
	rocksdb_readoptions_t *ropts_mem; /* read tier "block cache": no file reads */
	rocksdb_writeoptions_t *wopts;
	pthread_mutex_t mu; /* guards last_error and the free transactions */
	char last_error[256];
	struct meta_txn *free_txns[TXN_CACHE_MAX]; /* finished, kept for reuse */
	unsigned nfree;
};

struct meta_txn {
	struct meta_db *db;
	rocksdb_transaction_t *t;
	bool finished;
};

struct meta_snapshot {
	const rocksdb_snapshot_t *snap;
};

struct meta_iter {
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ropts; /* own options when reading at a snapshot */
	uint8_t prefix[ITER_PREFIX_MAX];
	size_t plen;
};

static bool starts_with(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Consume a RocksDB error string: 0 if none, -EAGAIN for conflicts, else -EIO. */
static int take_error(struct meta_db *db, char *err)
{
	int rc;

	if (!err)
		return 0;
	if (starts_with(err, "Resource busy") || starts_with(err, "Operation timed out") ||
	    starts_with(err, "Operation failed. Try again") ||
	    starts_with(err, "Operation expired") || starts_with(err, "Result incomplete")) {
		rc = -EAGAIN;
	} else {
		rc = -EIO;
		log_debug("rocksdb: %s", err);
		if (db) {
			pthread_mutex_lock(&db->mu);
			snprintf(db->last_error, sizeof(db->last_error), "%s", err);
			pthread_mutex_unlock(&db->mu);
		}
	}
	rocksdb_free(err);
	return rc;
}

static void set_options(struct meta_db *db, const struct meta_db_opts *o)
{
	db->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(db->opts, 1);
	rocksdb_options_set_paranoid_checks(db->opts, 1);
	rocksdb_options_set_write_buffer_size(db->opts, 64u << 20);
	rocksdb_options_set_max_open_files(db->opts, 1024);
	rocksdb_options_increase_parallelism(db->opts, 2);
	/* Writers that queue behind a group-commit leader block on their condition variable
	 * at once instead of spinning and sched_yield()ing for up to 100 us first: with more
	 * worker threads than cores the yielding writers took the CPU the leader needed
	 * (tests/bench/run meta: creates with 16 clients went from ~35k/s to ~45k/s on 2 cores). */
	rocksdb_options_set_enable_write_thread_adaptive_yield(db->opts, 0);
	db->cache = rocksdb_cache_create_lru(o->cache_bytes ? o->cache_bytes : 64u << 20);
	db->filter = rocksdb_filterpolicy_create_bloom(10);
	db->table_opts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(db->table_opts, db->cache);
	rocksdb_block_based_options_set_filter_policy(db->table_opts, db->filter);
	rocksdb_options_set_block_based_table_factory(db->opts, db->table_opts);
	db->tdb_opts = rocksdb_transactiondb_options_create();
	rocksdb_transactiondb_options_set_transaction_lock_timeout(db->tdb_opts,
								   o->lock_timeout_ms);
	rocksdb_transactiondb_options_set_default_lock_timeout(db->tdb_opts, o->lock_timeout_ms);
	db->txn_opts = rocksdb_transaction_options_create();
	rocksdb_transaction_options_set_deadlock_detect(db->txn_opts, 1);
	rocksdb_transaction_options_set_lock_timeout(db->txn_opts, o->lock_timeout_ms);
	db->ropts = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(db->ropts, 1);
	db->ropts_mem = rocksdb_readoptions_create();
	rocksdb_readoptions_set_verify_checksums(db->ropts_mem, 1);
	rocksdb_readoptions_set_read_tier(db->ropts_mem, READ_TIER_CACHE_ONLY);
	db->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(db->wopts, o->sync ? 1 : 0);
}

int meta_db_open(const char *path, const struct meta_db_opts *o, struct meta_db **out, char *why,
		 size_t why_len)
{
	struct meta_db *db = calloc(1, sizeof(*db));
	char *err = NULL;

	if (!db)
		return -ENOMEM;
	pthread_mutex_init(&db->mu, NULL);
	set_options(db, o);
	db->db = rocksdb_transactiondb_open(db->opts, db->tdb_opts, path, &err);
	if (err) {
		log_debug("open %s: %s", path, err);
		if (why)
			snprintf(why, why_len, "%s", err);
		rocksdb_free(err);
		meta_db_close(db);
		return -EIO;
	}
	*out = db;
	return 0;
}

void meta_db_close(struct meta_db *db)
{
	if (!db)
		return;
	for (unsigned i = 0; i < db->nfree; i++) {
		rocksdb_transaction_destroy(db->free_txns[i]->t);
		free(db->free_txns[i]);
	}
	if (db->db)
		rocksdb_transactiondb_close(db->db);
	rocksdb_writeoptions_destroy(db->wopts);
	rocksdb_readoptions_destroy(db->ropts);
	rocksdb_readoptions_destroy(db->ropts_mem);
	rocksdb_transaction_options_destroy(db->txn_opts);
	rocksdb_transactiondb_options_destroy(db->tdb_opts);
	rocksdb_options_destroy(db->opts);
	rocksdb_block_based_options_destroy(db->table_opts); /* frees the filter policy */
	rocksdb_cache_destroy(db->cache);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

int meta_db_destroy(const char *path, char *why, size_t why_len)
{
	rocksdb_options_t *opts = rocksdb_options_create();
	char *err = NULL;

	rocksdb_destroy_db(opts, path, &err);
	rocksdb_options_destroy(opts);
	if (err) {
		if (why)
			snprintf(why, why_len, "%s", err);
		rocksdb_free(err);
		return -EIO;
	}
	return 0;
}

void meta_db_last_error(struct meta_db *db, char *buf, size_t len)
{
	pthread_mutex_lock(&db->mu);
	snprintf(buf, len, "%s", db->last_error);
	pthread_mutex_unlock(&db->mu);
}

/* Fill v from a pinned slice (NULL slice: -ENOENT). */
static int take_pinned(rocksdb_pinnableslice_t *p, struct meta_val *v)
{
	if (!p)
		return -ENOENT;
	v->pin_ = p;
	v->data = rocksdb_pinnableslice_value(p, &v->len);
	if (!v->data) {
		rocksdb_pinnableslice_destroy(p);
		v->pin_ = NULL;
		return -ENOENT;
	}
	return 0;
}

int meta_db_get(struct meta_db *db, const void *key, size_t klen, struct meta_val *v)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *p;

	*v = (struct meta_val){NULL, 0, NULL};
	p = rocksdb_transactiondb_get_pinned(db->db, reads_no_io ? db->ropts_mem : db->ropts, key,
					     klen, &err);
	if (err) {
		rocksdb_pinnableslice_destroy(p);
		return take_error(db, err);
	}
	return take_pinned(p, v);
}

void meta_val_release(struct meta_val *v)
{
	if (!v || !v->pin_)
		return;
	rocksdb_pinnableslice_destroy(v->pin_);
	v->pin_ = NULL;
	v->data = NULL;
	v->len = 0;
}

void meta_db_reads_no_io(bool on)
{
	reads_no_io = on;
}

int meta_db_snapshot(struct meta_db *db, struct meta_snapshot **out)
{
	struct meta_snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->snap = rocksdb_transactiondb_create_snapshot(db->db);
	*out = s;
	return 0;
}

void meta_db_snapshot_release(struct meta_db *db, struct meta_snapshot *s)
{
	if (!s)
		return;
	rocksdb_transactiondb_release_snapshot(db->db, s->snap);
	free(s);
}

int meta_txn_begin(struct meta_db *db, struct meta_txn **out)
{
	struct meta_txn *t = NULL;

	pthread_mutex_lock(&db->mu);
	if (db->nfree)
		t = db->free_txns[--db->nfree];
	pthread_mutex_unlock(&db->mu);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
	}
	t->db = db;
	t->finished = false;
	t->t = rocksdb_transaction_begin(db->db, db->wopts, db->txn_opts, t->t);
	if (!t->t) {
		free(t);
		return -ENOMEM;
	}
	*out = t;
	return 0;
}

int meta_txn_get(struct meta_txn *t, const void *key, size_t klen, bool lock, struct meta_val *v)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *p;

	ASSERT(!t->finished);
	*v = (struct meta_val){NULL, 0, NULL};
	if (lock)
		p = rocksdb_transaction_get_pinned_for_update(t->t, t->db->ropts, key, klen, 1,
							      &err);
	else
		p = rocksdb_transaction_get_pinned(t->t, t->db->ropts, key, klen, &err);
	if (err) {
		rocksdb_pinnableslice_destroy(p);
		return take_error(t->db, err);
	}
	return take_pinned(p, v);
}

int meta_txn_put(struct meta_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
	char *err = NULL;

	ASSERT(!t->finished);
	rocksdb_transaction_put(t->t, key, klen, val, vlen, &err);
	return take_error(t->db, err);
}

int meta_txn_del(struct meta_txn *t, const void *key, size_t klen)
{
	char *err = NULL;

	ASSERT(!t->finished);
	rocksdb_transaction_delete(t->t, key, klen, &err);
	return take_error(t->db, err);
}

int meta_txn_commit(struct meta_txn *t)
{
	char *err = NULL;

	ASSERT(!t->finished);
	rocksdb_transaction_commit(t->t, &err);
	t->finished = true;
	return take_error(t->db, err);
}

void meta_txn_free(struct meta_txn *t)
{
	struct meta_db *db;
	char *err = NULL;

	if (!t)
		return;
	db = t->db;
	if (!t->finished) {
		rocksdb_transaction_rollback(t->t, &err);
		if (err) { /* nothing to do about it: the locks go with the transaction */
			(void)take_error(db, err);
			rocksdb_transaction_destroy(t->t); /* not reused after a failed rollback */
			free(t);
			return;
		}
	}
	pthread_mutex_lock(&db->mu);
	if (db->nfree < TXN_CACHE_MAX) {
		db->free_txns[db->nfree++] = t;
		t = NULL;
	}
	pthread_mutex_unlock(&db->mu);
	if (t) {
		rocksdb_transaction_destroy(t->t);
		free(t);
	}
}

static int iter_new(const void *prefix, size_t plen, struct meta_iter **out)
{
	struct meta_iter *it;

	ASSERT(plen <= ITER_PREFIX_MAX);
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	memcpy(it->prefix, prefix, plen);
	it->plen = plen;
	*out = it;
	return 0;
}

int meta_iter_txn(struct meta_txn *t, const void *prefix, size_t plen, struct meta_iter **out)
{
	struct meta_iter *it;
	int rc = iter_new(prefix, plen, &it);

	if (rc)
		return rc;
	it->it = rocksdb_transaction_create_iterator(t->t, t->db->ropts);
	*out = it;
	return 0;
}

int meta_iter_db(struct meta_db *db, struct meta_snapshot *snap, const void *prefix, size_t plen,
		 struct meta_iter **out)
{
	struct meta_iter *it;
	int rc = iter_new(prefix, plen, &it);

	if (rc)
		return rc;
	if (snap) {
		it->ropts = rocksdb_readoptions_create();
		rocksdb_readoptions_set_verify_checksums(it->ropts, 1);
		rocksdb_readoptions_set_snapshot(it->ropts, snap->snap);
		rocksdb_readoptions_set_fill_cache(it->ropts, 0); /* a scan must not evict */
		if (reads_no_io)
			rocksdb_readoptions_set_read_tier(it->ropts, READ_TIER_CACHE_ONLY);
	}
	it->it = rocksdb_transactiondb_create_iterator(db->db, it->ropts     ? it->ropts
							       : reads_no_io ? db->ropts_mem
									     : db->ropts);
	*out = it;
	return 0;
}

void meta_iter_seek(struct meta_iter *it, const void *from, size_t flen)
{
	uint8_t k[ITER_PREFIX_MAX + 512];

	if (!from || flen == 0 || it->plen + flen > sizeof(k)) {
		/* A seek key longer than any we build would be a bug; start at the prefix. */
		ASSERT(!from || flen == 0);
		rocksdb_iter_seek(it->it, (const char *)it->prefix, it->plen);
		return;
	}
	memcpy(k, it->prefix, it->plen);
	memcpy(k + it->plen, from, flen);
	rocksdb_iter_seek(it->it, (const char *)k, it->plen + flen);
}

bool meta_iter_valid(struct meta_iter *it)
{
	size_t klen;
	const char *k;

	if (!rocksdb_iter_valid(it->it))
		return false;
	k = rocksdb_iter_key(it->it, &klen);
	return klen >= it->plen && memcmp(k, it->prefix, it->plen) == 0;
}

void meta_iter_next(struct meta_iter *it)
{
	rocksdb_iter_next(it->it);
}

const void *meta_iter_key(struct meta_iter *it, size_t *klen)
{
	return rocksdb_iter_key(it->it, klen);
}

const void *meta_iter_value(struct meta_iter *it, size_t *vlen)
{
	return rocksdb_iter_value(it->it, vlen);
}

int meta_iter_status(struct meta_iter *it)
{
	char *err = NULL;
	int rc;

	rocksdb_iter_get_error(it->it, &err);
	rc = take_error(NULL, err);
	return rc == 0 || rc == -EAGAIN ? rc : -EIO; /* -EAGAIN: needed I/O on a no-I/O thread */
}

void meta_iter_free(struct meta_iter *it)
{
	if (!it)
		return;
	rocksdb_iter_destroy(it->it);
	if (it->ropts)
		rocksdb_readoptions_destroy(it->ropts);
	free(it);
}
