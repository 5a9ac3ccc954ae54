/*
 * gc.c - deferred deletion and expiry in the metadata store: the GC queue (meta_gc_run)
 * and the end of sessions and stored results of dead clients (meta_expire).
 *
 * DESIGN
 * Unlinking the last link of an inode (with no write session) does not delete it: the
 * same transaction writes G+due+ino (due = now + gc_delay) and marks the inode with that
 * due time. meta_gc_run reads the queue from its start (earliest due first) and, per entry:
 *   - regular file: calls the chunk-removal callback outside any transaction (it talks to
 *     storage and may block), then deletes the inode, its xattrs and the entry in one
 *     transaction. A failed removal moves the entry to now + backoff (doubling from 1 s to
 *     5 min) so one unreachable chain does not stall the queue; the inode stays.
 *     A crash between removal and deletion only repeats the (idempotent) removal.
 *   - directory (from rmtree): detaches up to SLUICE_META_GC_BATCH of its entries per
 *     transaction; a child losing its last link is queued due now (the tree already
 *     waited its delay); once empty the directory is deleted. So rm -rf of any size is one
 *     transaction for the caller and bounded work per GC step.
 *   - anything else: deleted at once.
 * An entry whose inode is gone, or whose inode says it is queued under another due time,
 * is a leftover and is dropped.
 *
 * Threads: meant for one GC thread and one expiry thread (the daemon runs both on its
 * worker pool, one at a time each); concurrent callers stay correct (transactions), they
 * may just both call remove for the same inode.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "meta.pb-c.h"
#include "meta/store_i.h"

LOG_FACILITY("meta-gc");

struct gc_item {
	uint64_t due, ino;
	uint32_t attempts;
	uint64_t queued_ns;
};

/* The earliest queue entry: 1 and *it filled, 0 if the queue is empty, or an error. */
static int gc_head(struct meta_store *s, struct gc_item *it)
{
	uint8_t p = MK_GC;
	struct meta_iter *iter;
	int rc = meta_iter_db(s->db, NULL, &p, 1, &iter);

	if (rc)
		return rc;
	meta_iter_seek(iter, NULL, 0);
	if (meta_iter_valid(iter)) {
		size_t klen, vlen;
		const uint8_t *k = meta_iter_key(iter, &klen);
		const void *v = meta_iter_value(iter, &vlen);
		Sluice__GcEntry *m = sluice__gc_entry__unpack(NULL, vlen, v);

		memset(it, 0, sizeof(*it));
		if (klen == MK_PAIR) {
			it->due = mk_get_be64(k + 1);
			it->ino = mk_get_be64(k + 9);
		}
		if (m) {
			it->attempts = m->attempts;
			it->queued_ns = m->queued_ns;
		}
		sluice__gc_entry__free_unpacked(m, NULL);
		rc = klen == MK_PAIR ? 1 : -EIO;
	} else {
		rc = meta_iter_status(iter);
	}
	meta_iter_free(iter);
	return rc;
}

/* Lock the entry's inode and check the entry is still its queue position: 1 yes, 0 a
 * leftover (its key is then deleted in t), or an error. */
static int gc_claim(struct meta_txn *t, const struct gc_item *it, struct meta_inode *in)
{
	uint8_t k[MK_PAIR];
	int rc = ino_load(t, it->ino, true, in);

	if (rc && rc != -ENOENT)
		return rc;
	if (rc == 0 && in->gc_due_ns == it->due)
		return 1;
	log_debug("dropping leftover GC entry for inode %llu", (unsigned long long)it->ino);
	rc = meta_txn_del(t, k, mk_pair(k, MK_GC, it->due, it->ino));
	return rc ? rc : 0;
}

/* Delete the queued inode (1), drop a leftover entry (0), or fail. */
static int gc_finish(struct meta_store *s, const struct gc_item *it)
{
	uint8_t k[MK_PAIR];
	struct meta_inode in;
	int rc = -EAGAIN, claimed = 0;

	for (unsigned i = 0; i < SLUICE_META_TXN_RETRIES && rc == -EAGAIN; i++) {
		struct meta_txn *t;

		rc = meta_txn_begin(s->db, &t);
		if (rc)
			return rc;
		rc = claimed = gc_claim(t, it, &in);
		if (rc == 1)
			rc = ino_delete(t, it->ino);
		if (rc == 1 || rc == 0)
			rc = claimed == 1 ? meta_txn_del(t, k, mk_pair(k, MK_GC, it->due, it->ino))
					  : 0;
		if (rc == 0)
			rc = meta_txn_commit(t);
		meta_txn_free(t);
	}
	return rc ? rc : claimed;
}

/* Removal failed: retry the entry after a backoff. */
static int gc_requeue(struct meta_store *s, const struct gc_item *it)
{
	uint32_t shift = it->attempts < 16 ? it->attempts : 16;
	uint64_t backoff = META_GC_BACKOFF_MIN_NS << shift;
	uint8_t k[MK_PAIR];
	struct meta_inode in;
	int rc = -EAGAIN;

	if (backoff > META_GC_BACKOFF_MAX_NS)
		backoff = META_GC_BACKOFF_MAX_NS;
	for (unsigned i = 0; i < SLUICE_META_TXN_RETRIES && rc == -EAGAIN; i++) {
		struct meta_txn *t;

		rc = meta_txn_begin(s->db, &t);
		if (rc)
			return rc;
		rc = gc_claim(t, it, &in);
		if (rc == 1) {
			rc = meta_txn_del(t, k, mk_pair(k, MK_GC, it->due, it->ino));
			if (rc == 0)
				rc = gc_queue(t, &in, store_wall_ns(s) + backoff, it->attempts + 1,
					      it->queued_ns);
			if (rc == 0)
				rc = ino_store(t, &in);
		}
		if (rc == 0)
			rc = meta_txn_commit(t);
		meta_txn_free(t);
	}
	return rc;
}

/* A child of a directory being taken apart lost its dentry. */
static int gc_child(struct meta_txn *t, struct meta_store *s, uint64_t ino, uint64_t now)
{
	struct meta_inode in;
	int rc = ino_load(t, ino, true, &in);

	if (rc == -ENOENT)
		return 0; /* a dangling dentry: nothing more to undo */
	if (rc)
		return rc;
	if (in.type == META_FT_DIR || in.nlink <= 1)
		in.nlink = 0;
	else
		in.nlink--;
	in.ctime_ns = now;
	if (in.nlink == 0 && in.gc_due_ns == 0) {
		rc = in.type == META_FT_DIR ? 0 : range_has_key(t, MK_SESSION, in.ino);
		if (rc == 0)
			rc = gc_queue(t, &in, now, 0, now);
		else if (rc == 1)
			rc = 0; /* an open writer: queued when its session ends */
	}
	return rc ? rc : ino_store(t, &in);
}

/* One step on a directory: detach a batch of entries; delete it once empty. 1 if it was
 * deleted, 0 if it has more, or an error. */
static int gc_dir_step_txn(struct meta_txn *t, struct meta_store *s, const struct gc_item *it)
{
	uint8_t p[MK_ID_KEY], k[MK_PAIR];
	struct meta_inode dir;
	struct meta_iter *iter;
	uint64_t now = store_wall_ns(s);
	unsigned n = 0;
	int rc = gc_claim(t, it, &dir);

	if (rc != 1)
		return rc;
	rc = meta_iter_txn(t, p, mk_id(p, MK_DENTRY, it->ino), &iter);
	if (rc)
		return rc;
	for (meta_iter_seek(iter, NULL, 0);
	     rc == 0 && n < SLUICE_META_GC_BATCH && meta_iter_valid(iter); meta_iter_next(iter)) {
		size_t klen, vlen;
		const void *key = meta_iter_key(iter, &klen);
		const void *v = meta_iter_value(iter, &vlen);
		struct meta_dent d;

		rc = meta_txn_del(t, key, klen);
		if (rc == 0 && dent_decode(v, vlen, &d) == 0)
			rc = gc_child(t, s, d.ino, now);
		n++;
	}
	if (rc == 0)
		rc = meta_iter_status(iter);
	meta_iter_free(iter);
	if (rc || n == SLUICE_META_GC_BATCH)
		return rc;
	rc = ino_delete(t, it->ino);
	if (rc == 0)
		rc = meta_txn_del(t, k, mk_pair(k, MK_GC, it->due, it->ino));
	return rc ? rc : 1;
}

static int gc_dir_step(struct meta_store *s, const struct gc_item *it)
{
	int rc = -EAGAIN;

	for (unsigned i = 0; i < SLUICE_META_TXN_RETRIES && rc == -EAGAIN; i++) {
		struct meta_txn *t;
		int res;

		rc = meta_txn_begin(s->db, &t);
		if (rc)
			return rc;
		rc = res = gc_dir_step_txn(t, s, it);
		if (rc >= 0)
			rc = meta_txn_commit(t);
		meta_txn_free(t);
		if (rc == 0)
			return res;
	}
	return rc;
}

static int gc_one(struct meta_store *s, const struct gc_item *it, meta_chunk_remove_fn remove,
		  void *arg)
{
	struct meta_inode in;
	int rc = ino_load_db(s->db, it->ino, &in);

	if (rc == -ENOENT || (rc == 0 && in.gc_due_ns != it->due))
		return gc_finish(s, it); /* a leftover: dropped */
	if (rc)
		return rc;
	if (in.type == META_FT_DIR)
		return gc_dir_step(s, it);
	if (in.type == META_FT_REG) {
		rc = remove(arg, in.ino, &in.layout, in.size);
		if (rc) {
			atomic_fetch_add(&s->st_gc_failures, 1);
			log_debug("chunks of inode %llu not removed: %s (%d); retry later",
				  (unsigned long long)in.ino, sluice_strerror(rc), rc);
			rc = gc_requeue(s, it);
			return rc ? rc : 0;
		}
	}
	return gc_finish(s, it);
}

int meta_gc_run(struct meta_store *s, unsigned budget, meta_chunk_remove_fn remove, void *arg)
{
	struct gc_item it;
	int deleted = 0, rc = 0;

	for (unsigned done = 0; done < budget; done++) {
		rc = gc_head(s, &it);
		if (rc <= 0 || it.due > store_wall_ns(s))
			break;
		rc = gc_one(s, &it, remove, arg);
		if (rc < 0)
			break;
		deleted += rc;
	}
	atomic_fetch_add(&s->st_gc_removed, (uint64_t)deleted);
	return rc < 0 ? rc : deleted;
}

/* ---- expiry of dead clients ------------------------------------------------------------- */

/* End session sid of ino; queue the inode if it was its last hold. */
static int expire_session(struct meta_store *s, uint64_t ino, uint64_t sid)
{
	struct meta_op op = {s, NULL, NULL, MOP_INTERNAL, NULL, NULL, 0, {0}};
	uint8_t k[MK_PAIR];
	int rc = -EAGAIN;

	for (unsigned i = 0; i < SLUICE_META_TXN_RETRIES && rc == -EAGAIN; i++) {
		struct meta_inode in;
		struct meta_txn *t;
		struct meta_val v = {NULL, 0, NULL};

		op.now_ns = store_wall_ns(s);
		rc = meta_txn_begin(s->db, &t);
		if (rc)
			return rc;
		rc = ino_load(t, ino, true, &in);
		if (rc == 0)
			rc = meta_txn_get(t, k, mk_pair(k, MK_SESSION, ino, sid), true, &v);
		meta_val_release(&v);
		if (rc == 0)
			rc = meta_txn_del(t, k, MK_PAIR);
		if (rc == 0 && in.type != META_FT_DIR)
			rc = ino_release(&op, t, &in);
		if (rc == 0)
			rc = meta_txn_commit(t);
		meta_txn_free(t);
	}
	return rc;
}

static int expire_sessions(struct meta_store *s, uint64_t timeout_ns, unsigned *budget)
{
	uint8_t p = MK_SESSION;
	struct meta_iter *it;
	int rc = meta_iter_db(s->db, NULL, &p, 1, &it), n = 0;

	if (rc)
		return rc;
	for (meta_iter_seek(it, NULL, 0); meta_iter_valid(it) && *budget; meta_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = meta_iter_key(it, &klen);
		const void *v = meta_iter_value(it, &vlen);
		Sluice__Session *m = sluice__session__unpack(NULL, vlen, v);
		uint64_t client = m ? m->client_id : 0;

		sluice__session__free_unpacked(m, NULL);
		if (klen != MK_PAIR || store_client_live(s, client, timeout_ns))
			continue;
		(*budget)--;
		rc = expire_session(s, mk_get_be64(k + 1), mk_get_be64(k + 9));
		if (rc == -ENOENT)
			continue; /* closed meanwhile (or a session of a missing inode) */
		if (rc)
			break;
		log_debug("session %llu of inode %llu (client %llx) expired",
			  (unsigned long long)mk_get_be64(k + 9),
			  (unsigned long long)mk_get_be64(k + 1), (unsigned long long)client);
		n++;
	}
	if (rc == 0)
		rc = meta_iter_status(it);
	meta_iter_free(it);
	return rc ? rc : n;
}

/* Drop up to *budget stored results of one dead client. */
static int expire_results(struct meta_store *s, uint64_t client, unsigned *budget)
{
	uint8_t p[MK_ID_KEY];
	struct meta_iter *it;
	struct meta_txn *t;
	int rc = meta_txn_begin(s->db, &t);

	if (rc)
		return rc;
	rc = meta_iter_txn(t, p, mk_id(p, MK_RESULT, client), &it);
	if (rc == 0) {
		for (meta_iter_seek(it, NULL, 0); rc == 0 && *budget && meta_iter_valid(it);
		     meta_iter_next(it), (*budget)--) {
			size_t klen;
			const void *k = meta_iter_key(it, &klen);

			rc = meta_txn_del(t, k, klen);
		}
		if (rc == 0)
			rc = meta_iter_status(it);
		meta_iter_free(it);
	}
	if (rc == 0)
		rc = meta_txn_commit(t);
	meta_txn_free(t);
	return rc == -EAGAIN ? 0 : rc; /* a conflict: next pass */
}

static int expire_all_results(struct meta_store *s, uint64_t timeout_ns, unsigned *budget)
{
	uint8_t p = MK_RESULT, from[8];
	struct meta_iter *it;
	int rc = meta_iter_db(s->db, NULL, &p, 1, &it);

	if (rc)
		return rc;
	meta_iter_seek(it, NULL, 0);
	while (rc == 0 && *budget && meta_iter_valid(it)) {
		size_t klen;
		const uint8_t *k = meta_iter_key(it, &klen);
		uint64_t client = klen >= MK_ID_KEY ? mk_get_be64(k + 1) : 0;

		if (!store_client_live(s, client, timeout_ns))
			rc = expire_results(s, client, budget);
		if (client == UINT64_MAX)
			break;
		mk_be64(from, client + 1); /* the next client's results */
		meta_iter_seek(it, from, 8);
	}
	if (rc == 0)
		rc = meta_iter_status(it);
	meta_iter_free(it);
	return rc;
}

int meta_expire(struct meta_store *s, uint64_t timeout_ns, unsigned budget)
{
	int n = expire_sessions(s, timeout_ns, &budget), rc;

	if (n < 0)
		return n;
	atomic_fetch_add(&s->st_expired, (uint64_t)n);
	rc = expire_all_results(s, timeout_ns, &budget);
	(void)store_clients_prune(s, timeout_ns);
	return rc ? rc : n;
}
