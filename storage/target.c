/*
 * target.c - one storage target: chunk index, disk I/O, growth, group commit, reads and
 * updates (DESIGN.md section 6; the contract is in target.h).
 *
 * DESIGN
 * State. Every chunk has an entry in an in-memory hash index holding its committed
 * metadata (RocksDB holds the durable copy; both change together when a commit lands).
 * Blocks are handed out by the free map of alloc.c, rebuilt at open from the metadata.
 *
 * Updates. An update takes the chunk's lock (a FIFO of updates; the head runs), plans where
 * the new content goes, writes it, queues its new metadata for commit, and when the commit
 * is durable applies it to the entry, frees the block it replaced, completes and passes the
 * lock on. Where the content goes:
 *   - append in place: the update only adds bytes past the committed end and the result
 *     fits the current block: the sectors from the one holding the old end are rewritten
 *     in the same block. The committed bytes in that first sector are rewritten with the
 *     same values, so even a torn write leaves the committed content intact.
 *   - copy on write otherwise: a free block of the class the new length needs gets the
 *     whole new content (read-modify-write of the old block for a partial update; the old
 *     sectors read are checked against their CRCs so corruption is never blessed).
 *   - shrinking truncates and removes write no data: only metadata changes (a shrink that
 *     cuts a sector rereads it to compute its CRC).
 * Writes that start on a sector boundary and cover everything they replace are written
 * straight from the request's buffer (no copy): whole chunks and appends at sector
 * boundaries, which is what checkpoints and dataset writers produce.
 *
 * Durability. The commit queue is drained by one worker job at a time: whatever queued
 * while the previous batch was syncing goes into the next batch (group commit). The job
 * first fdatasyncs every data file the batch's updates wrote (so one device flush covers
 * all their data, instead of one per write), then writes the metadata in one synced RocksDB
 * batch: no metadata ever names data that is not durable. A block freed by a commit returns
 * to the free map only when no read that started earlier still uses it (readers counted per
 * chunk).
 *
 * Growth. When a class has no free block, updates wait while a worker fallocates the next
 * group of the class's last data file (or starts a new file), within the capacity cap and
 * leaving reserve_bytes of the file system free; if that is impossible they fail with
 * -ENOSPC and nothing else changes.
 *
 * Errors. A failed disk I/O (other than ENOSPC) or a failed metadata commit takes the
 * target offline for good (until restart): the disk or RocksDB can no longer be trusted,
 * and the replicas elsewhere keep the data available.
 *
 * Threads: the reactor thread of cfg->reactor runs all of this; workers run only the
 * bodies of jobs (fallocate, synced batches, scans), touching nothing but their job.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/kv.h"
#include "common/log.h"
#include "common/reactor.h"
#include "common/worker.h"
#include "storage/alloc.h"
#include "storage/target.h"

LOG_FACILITY("target");

#define SECTOR	     SLUICE_SECTOR_BYTES
#define CLASS_SHIFT0 16 /* log2 of the smallest block size: data file names */

static_assert(SLUICE_CHUNK_SIZE_MIN == (1u << CLASS_SHIFT0), "data file names use log2 sizes");

static uint32_t round_down(uint32_t v)
{
	return v / SECTOR * SECTOR;
}

static uint32_t round_up(uint32_t v)
{
	return (v + SECTOR - 1) / SECTOR * SECTOR;
}

/* ---- types ------------------------------------------------------------------------------ */

/*
 * An entry of the chunk index. It stays in the index while the chunk exists or anything
 * holds a reference, so there is one entry per chunk id at any time and updates queued
 * behind a remove find the same (then empty) entry.
 */
struct stor_chunk {
	struct chunk_meta m; /* committed state when exists; m.id always valid */
	bool exists;
	unsigned refs;				   /* updates queued or running, reads */
	unsigned readers;			   /* reads that may use committed blocks */
	struct stor_update *lock_head, *lock_tail; /* running update first, then waiters */
	struct stor_pos *deferred;		   /* blocks to free when readers drops to 0 */
	unsigned ndeferred, deferred_cap;
	struct stor_chunk *hnext;
};

/* One contiguous disk read or write, resubmitted until complete. */
struct stor_io {
	struct reactor_io rio;
	struct stor_target *t;
	bool write;
	int fd;
	uint8_t *buf;
	uint32_t len, done;
	uint64_t off;
	void (*cb)(struct stor_io *io, int res); /* res 0 or -errno */
	struct stor_io *next;			 /* queue-depth wait list */
};

enum update_kind { UPD_WRITE, UPD_TRUNCATE, UPD_REMOVE, UPD_HOLD };

struct stor_update {
	struct stor_target *t;
	enum update_kind kind;
	struct stor_chunk *c;
	struct stor_update *lock_next;
	/* arguments */
	uint32_t chunk_size;
	uint32_t offset, length;   /* bytes to write; truncate: the new length in length */
	struct buf *data;	   /* write data; NULL for the zeros of a growing truncate */
	uint32_t *data_sector_crc; /* the data's per-sector CRCs when offset is aligned */
	bool *existed;
	stor_update_cb cb;
	void *arg;
	/* chain replication (stor_update_args) */
	uint64_t update_ver, chain_ver;
	struct stor_tag tag;
	bool full_replace;
	stor_prepared_cb prepared; /* two-phase when set */
	bool released;		   /* prepared, and commit (or abort) was called */
	bool unchanged;		   /* the update changes nothing: commit only completes it */
	/* progress */
	uint32_t new_length;
	struct chunk_meta newm; /* what gets committed; owns its sector_crc */
	bool took_block;	/* newm.pos was taken for this update */
	bool in_place;		/* appending inside the current block */
	bool wrote_data;	/* io.fd holds data the commit must sync first */
	bool direct;		/* write region comes from data, not bounce */
	struct buf *bounce;
	uint32_t region_off, region_len; /* block bytes written */
	struct stor_io io;
	struct stor_update *next; /* commit queue or growth wait list */
};

struct commit_job {
	struct worker_job job;
	struct stor_target *t;
	struct kv_batch *batch;
	struct stor_update *ops;
	int fds[SLUICE_STOR_COMMIT_BATCH_MAX]; /* data files to fdatasync first */
	unsigned nfds;
	int status;
	bool data_sync_failed;
};

struct grow_state {
	struct worker_job job;
	struct stor_target *t;
	bool running;
	uint8_t cls;
	uint32_t file, old_blocks, new_blocks;
	int new_fd; /* from the worker when it created the file */
	int status;
	struct stor_update *wait_head, *wait_tail;
};

struct stor_read {
	struct stor_target *t;
	struct stor_chunk *c;
	struct chunk_meta snap; /* committed fields at the start; sector_crc NULL */
	uint32_t first_sector;	/* sector of io.buf[0] */
	uint32_t *sector_crc;	/* CRCs of the sectors read */
	uint32_t offset, len;	/* result bytes */
	struct buf *buf;
	struct stor_io io;
	stor_read_cb cb;
	void *arg;
};

struct scan_job {
	struct worker_job job;
	struct stor_target *t;
	uint8_t begin[CHUNK_META_KEY_BYTES], end[CHUNK_META_KEY_BYTES];
	bool has_end;
	unsigned limit, n;
	bool more;
	int status;
	struct chunk_meta *metas;
	stor_scan_cb cb;
	void *arg;
};

struct stor_target {
	char *path;
	uint64_t id;
	struct stor_target_cfg cfg;
	struct kv *kv;
	struct stor_alloc *alloc;
	int fds[SLUICE_STOR_CLASSES][SLUICE_STOR_FILES_PER_CLASS];
	/* index */
	struct stor_chunk **buckets;
	size_t nbuckets, nentries;
	uint64_t nchunks; /* existing chunks */
	/* disk queue */
	unsigned io_inflight;
	struct stor_io *ioq_head, *ioq_tail;
	/* commits */
	struct stor_update *commit_head, *commit_tail;
	struct commit_job commit;
	bool commit_running;
	struct grow_state grow[SLUICE_STOR_CLASSES];
	/* health */
	bool online;
	char offline_reason[160];
	uint32_t fault_eio_left;
	bool fault_eio_all;
	unsigned busy;	     /* updates, reads, scans in flight */
	uint8_t *encode_buf; /* CHUNK_META_VALUE_MAX bytes for commit_kick */
	struct stor_counters ctr;
};

/* ---- index ------------------------------------------------------------------------------ */

static size_t chunk_hash(const struct layout_chunk_id *id)
{
	uint64_t h = id->inode * UINT64_C(0x9E3779B97F4A7C15) ^
		     (uint64_t)id->index * UINT64_C(0xC2B2AE3D27D4EB4F);

	return (size_t)(h ^ (h >> 31));
}

static bool id_eq(const struct layout_chunk_id *a, const struct layout_chunk_id *b)
{
	return a->inode == b->inode && a->index == b->index;
}

static struct stor_chunk *index_find(struct stor_target *t, const struct layout_chunk_id *id)
{
	struct stor_chunk *c = t->buckets[chunk_hash(id) & (t->nbuckets - 1)];

	while (c != NULL && !id_eq(&c->m.id, id))
		c = c->hnext;
	return c;
}

/* Double the bucket array when entries outnumber buckets; on -ENOMEM keep the old one
 * (lookups stay correct, just slower). */
static void index_maybe_grow(struct stor_target *t)
{
	size_t n = t->nbuckets * 2;
	struct stor_chunk **b;

	if (t->nentries < t->nbuckets)
		return;
	b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i] != NULL) {
			struct stor_chunk *c = t->buckets[i];
			size_t h = chunk_hash(&c->m.id) & (n - 1);

			t->buckets[i] = c->hnext;
			c->hnext = b[h];
			b[h] = c;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

static struct stor_chunk *index_insert(struct stor_target *t, const struct layout_chunk_id *id)
{
	struct stor_chunk *c = calloc(1, sizeof(*c));
	size_t h;

	if (c == NULL)
		return NULL;
	c->m.id = *id;
	index_maybe_grow(t);
	h = chunk_hash(id) & (t->nbuckets - 1);
	c->hnext = t->buckets[h];
	t->buckets[h] = c;
	t->nentries++;
	return c;
}

static void index_unlink(struct stor_target *t, struct stor_chunk *c)
{
	struct stor_chunk **pp = &t->buckets[chunk_hash(&c->m.id) & (t->nbuckets - 1)];

	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	t->nentries--;
}

static void chunk_free(struct stor_chunk *c)
{
	chunk_meta_release(&c->m);
	free(c->deferred);
	free(c);
}

/* Drop a reference; an entry of a chunk that no longer exists leaves the index with its
 * last reference. */
static void chunk_put(struct stor_target *t, struct stor_chunk *c)
{
	ASSERT(c->refs > 0);
	if (--c->refs > 0 || c->exists)
		return;
	ASSERT(c->readers == 0 && c->lock_head == NULL && c->ndeferred == 0);
	index_unlink(t, c);
	chunk_free(c);
}

/* A block the committed state stopped naming: free now, or when the reads that may still
 * use it are done. It must never be reused under a reader, so if the deferred list cannot
 * grow the block stays allocated until the next open rebuilds the free map (logged). */
static void release_block(struct stor_target *t, struct stor_chunk *c, const struct stor_pos *p)
{
	if (c->readers == 0) {
		stor_alloc_put(t->alloc, p);
		return;
	}
	if (c->ndeferred == c->deferred_cap) {
		unsigned cap = c->deferred_cap ? 2 * c->deferred_cap : 2;
		struct stor_pos *d = realloc(c->deferred, cap * sizeof(*d));

		if (d == NULL) {
			log_warn_rl("target %" PRIu64 ": out of memory deferring a block free: "
				    "the block stays allocated until restart",
				    t->id);
			return;
		}
		c->deferred = d;
		c->deferred_cap = cap;
	}
	c->deferred[c->ndeferred++] = *p;
}

static void readers_done(struct stor_target *t, struct stor_chunk *c)
{
	ASSERT(c->readers > 0);
	if (--c->readers > 0)
		return;
	for (unsigned i = 0; i < c->ndeferred; i++)
		stor_alloc_put(t->alloc, &c->deferred[i]);
	c->ndeferred = 0;
}

/* ---- health ----------------------------------------------------------------------------- */

/* Take the target offline for good (until restart) with a reason for logs and STATFS. */
static void target_fail(struct stor_target *t, int err, const char *what)
{
	t->ctr.io_errors++;
	if (!t->online)
		return;
	t->online = false;
	snprintf(t->offline_reason, sizeof(t->offline_reason), "%s: %s (%d)", what,
		 sluice_strerror(err), err);
	log_err("target %" PRIu64 " (%s) goes offline: %s", t->id, t->path, t->offline_reason);
}

/* ---- disk I/O --------------------------------------------------------------------------- */

static void io_submit_now(struct stor_target *t, struct stor_io *io);

static void io_start_next(struct stor_target *t)
{
	while (t->ioq_head != NULL && t->io_inflight < t->cfg.queue_depth) {
		struct stor_io *io = t->ioq_head;

		t->ioq_head = io->next;
		if (t->ioq_head == NULL)
			t->ioq_tail = NULL;
		io_submit_now(t, io);
	}
}

static void io_complete(struct reactor_io *rio, int res, uint32_t cqe_flags)
{
	struct stor_io *io = (struct stor_io *)rio;
	struct stor_target *t = io->t;

	(void)cqe_flags;
	t->io_inflight--;
	if (res >= 0 && (t->fault_eio_all || t->fault_eio_left > 0)) {
		if (t->fault_eio_left > 0)
			t->fault_eio_left--;
		res = -EIO; /* injected: as if the disk failed this request */
	}
	if (res == -EAGAIN || res == -EINTR) {
		io_submit_now(t, io);
		return;
	}
	if (res > 0) {
		io->done += (uint32_t)res;
		if (io->done < io->len) { /* short transfer: continue where it stopped */
			io_submit_now(t, io);
			return;
		}
		res = 0;
	} else if (res == 0 && io->done < io->len) {
		res = -EIO; /* end of file inside a block: the data file is damaged */
	}
	io_start_next(t);
	io->cb(io, res);
}

/* Fill sqe with the rest of io: on the ring's fixed buffer when the bytes lie in one (no
 * page pinning per I/O), else a plain read or write of the same bytes. */
static void io_prep(struct stor_target *t, struct io_uring_sqe *sqe, const struct stor_io *io)
{
	uint8_t *at = io->buf + io->done;
	uint32_t len = io->len - io->done;
	int idx = reactor_fixed_index(t->cfg.reactor, at, len);

	if (idx >= 0) {
		t->ctr.ios_fixed++;
		if (io->write)
			io_uring_prep_write_fixed(sqe, io->fd, at, len, io->off + io->done, idx);
		else
			io_uring_prep_read_fixed(sqe, io->fd, at, len, io->off + io->done, idx);
		return;
	}
	t->ctr.ios_plain++;
	/* A write is not durable yet: the commit fdatasyncs the file before naming the data. */
	if (io->write)
		io_uring_prep_write(sqe, io->fd, at, len, io->off + io->done);
	else
		io_uring_prep_read(sqe, io->fd, at, len, io->off + io->done);
}

static void io_submit_now(struct stor_target *t, struct stor_io *io)
{
	struct io_uring_sqe *sqe = reactor_sqe(t->cfg.reactor, &io->rio);

	if (sqe == NULL) { /* the kernel refuses SQEs: nothing will work */
		io->cb(io, -EIO);
		return;
	}
	io_prep(t, sqe, io);
	t->io_inflight++;
}

/* Read or write len bytes of block pos at byte `at` of the block; cb(io, 0 or -errno). */
static void io_block(struct stor_target *t, struct stor_io *io, bool write,
		     const struct stor_pos *pos, uint32_t at, uint8_t *buf, uint32_t len,
		     void (*cb)(struct stor_io *io, int res))
{
	ASSERT(len > 0 && len % SECTOR == 0 && at % SECTOR == 0);
	ASSERT(at + len <= stor_class_bytes(pos->cls));
	ASSERT(t->fds[pos->cls][pos->file] >= 0);
	*io = (struct stor_io){
		.rio = {.cb = io_complete},
		.t = t,
		.write = write,
		.fd = t->fds[pos->cls][pos->file],
		.buf = buf,
		.len = len,
		.off = (uint64_t)pos->block * stor_class_bytes(pos->cls) + at,
		.cb = cb,
	};
	if (t->io_inflight < t->cfg.queue_depth && t->ioq_head == NULL) {
		io_submit_now(t, io);
		return;
	}
	if (t->ioq_tail)
		t->ioq_tail->next = io;
	else
		t->ioq_head = io;
	t->ioq_tail = io;
}

/* CRC of the committed bytes of sector i of a content of length bytes, from buf. */
static uint32_t sector_crc_of(const uint8_t *buf, uint32_t i, uint32_t length)
{
	uint32_t start = i * SECTOR, n = length - start < SECTOR ? length - start : SECTOR;

	return crc32c(0, buf, n);
}

/* Check sectors [first, first + n) of a chunk of length bytes read into buf against crcs
 * (crcs[0] is sector first). */
static bool sectors_ok(const uint8_t *buf, uint32_t first, uint32_t n, uint32_t length,
		       const uint32_t *crcs)
{
	for (uint32_t i = 0; i < n; i++)
		if (sector_crc_of(buf + (size_t)i * SECTOR, first + i, length) != crcs[i])
			return false;
	return true;
}

/* ---- updates: completion ------------------------------------------------------------------ */

static void update_run(struct stor_update *u);
static void update_place_done(struct stor_update *u);

/* Complete u: callback, then hand the chunk's lock to the next update. */
static void update_finish(struct stor_update *u, int status, const struct chunk_meta *m)
{
	struct stor_target *t = u->t;
	struct stor_chunk *c = u->c;
	struct stor_update *next;

	ASSERT(c->lock_head == u);
	c->lock_head = u->lock_next;
	if (c->lock_head == NULL)
		c->lock_tail = NULL;
	next = c->lock_head; /* captured now: the callback may queue (and run) more */
	u->cb(u->arg, status, m);
	buf_put(u->data);
	buf_put(u->bounce);
	free(u->data_sector_crc);
	chunk_meta_release(&u->newm);
	free(u);
	chunk_put(t, c);
	t->busy--;
	if (next != NULL)
		update_run(next);
}

static void update_fail(struct stor_update *u, int status)
{
	ASSERT(status < 0);
	if (u->took_block) { /* never named by committed metadata: free at once */
		stor_alloc_put(u->t->alloc, &u->newm.pos);
		u->took_block = false;
	}
	if (status == -ENOSPC)
		u->t->ctr.enospc++;
	update_finish(u, status, NULL);
}

/* The commit of u is durable: make it the chunk's committed state. */
static void update_apply(struct stor_update *u)
{
	struct stor_target *t = u->t;
	struct stor_chunk *c = u->c;
	const struct chunk_meta *old = &c->m;

	if (c->exists && old->has_block &&
	    (!u->newm.has_block || old->pos.cls != u->newm.pos.cls ||
	     old->pos.file != u->newm.pos.file || old->pos.block != u->newm.pos.block))
		release_block(t, c, &old->pos);
	t->ctr.commits++;
	if (u->kind == UPD_REMOVE) {
		chunk_meta_release(&c->m);
		c->exists = false;
		t->nchunks--;
		*u->existed = true;
		t->ctr.removes++;
		update_finish(u, 0, NULL);
		return;
	}
	if (!c->exists)
		t->nchunks++;
	chunk_meta_release(&c->m);
	c->m = u->newm;
	c->exists = true;
	u->newm.sector_crc = NULL; /* moved */
	u->took_block = false;
	if (u->kind == UPD_WRITE) {
		t->ctr.writes++;
		t->ctr.bytes_written += u->length;
	} else {
		t->ctr.truncates++;
	}
	update_finish(u, 0, &c->m);
}

/* ---- updates: group commit ---------------------------------------------------------------- */

static void commit_run(struct worker_job *job)
{
	struct commit_job *cj = (struct commit_job *)job;

	cj->data_sync_failed = false;
	for (unsigned i = 0; i < cj->nfds; i++) {
		if (fdatasync(cj->fds[i]) != 0) {
			cj->status = -errno;
			cj->data_sync_failed = true;
			return;
		}
	}
	cj->status = kv_write(cj->t->kv, cj->batch, true);
}

static void commit_kick(struct stor_target *t);

static void commit_done(struct worker_job *job)
{
	struct commit_job *cj = (struct commit_job *)job;
	struct stor_target *t = cj->t;
	struct stor_update *u = cj->ops;

	t->commit_running = false;
	kv_batch_clear(cj->batch);
	cj->ops = NULL;
	if (cj->status != 0 && cj->data_sync_failed) {
		target_fail(t, cj->status, "data file sync");
	} else if (cj->status != 0) {
		char why[128];

		kv_last_error(t->kv, why, sizeof(why));
		log_err("target %" PRIu64 ": metadata commit failed: %s", t->id, why);
		target_fail(t, cj->status, "metadata commit");
	} else {
		t->ctr.commit_batches++;
	}
	while (u != NULL) {
		struct stor_update *next = u->next;

		if (cj->status == 0)
			update_apply(u);
		else
			update_fail(u, -EIO);
		u = next;
	}
	commit_kick(t);
}

static void commit_add_fd(struct commit_job *cj, int fd)
{
	for (unsigned i = 0; i < cj->nfds; i++)
		if (cj->fds[i] == fd)
			return;
	ASSERT(cj->nfds < SLUICE_STOR_COMMIT_BATCH_MAX); /* one per update at most */
	cj->fds[cj->nfds++] = fd;
}

/* Start a synced batch of everything queued, unless one is running. */
static void commit_kick(struct stor_target *t)
{
	struct commit_job *cj = &t->commit;
	struct stor_update **tail = &cj->ops;
	unsigned n = 0;
	uint8_t key[CHUNK_META_KEY_BYTES];

	if (t->commit_running || t->commit_head == NULL)
		return;
	cj->nfds = 0;
	while (t->commit_head != NULL && n < SLUICE_STOR_COMMIT_BATCH_MAX) {
		struct stor_update *u = t->commit_head;

		t->commit_head = u->next;
		u->next = NULL;
		if (u->wrote_data)
			commit_add_fd(cj, u->io.fd);
		chunk_meta_key(&u->c->m.id, key);
		if (u->kind == UPD_REMOVE) {
			kv_batch_delete(cj->batch, key, sizeof(key));
		} else {
			chunk_meta_encode(&u->newm, t->encode_buf); /* the batch copies it */
			kv_batch_put(cj->batch, key, sizeof(key), t->encode_buf,
				     chunk_meta_encoded_size(&u->newm));
		}
		*tail = u;
		tail = &u->next;
		n++;
	}
	if (t->commit_head == NULL)
		t->commit_tail = NULL;
	cj->job = (struct worker_job){.run = commit_run, .done = commit_done};
	if (worker_submit(t->cfg.workers, t->cfg.reactor, &cj->job) != 0) {
		struct stor_update *u = cj->ops;

		/* Worker queue full: fail these, keep the target. Detach first: failing one
		 * starts the chunk's next update, which may come back here. */
		cj->ops = NULL;
		kv_batch_clear(cj->batch);
		while (u != NULL) {
			struct stor_update *next = u->next;

			update_fail(u, -EAGAIN);
			u = next;
		}
		return;
	}
	t->commit_running = true;
}

static void commit_enqueue(struct stor_update *u)
{
	struct stor_target *t = u->t;

	if (u->prepared != NULL && !u->released) { /* two-phase: wait for the chain */
		u->prepared(u->arg, (struct stor_pending *)u,
			    u->kind == UPD_REMOVE ? NULL : &u->newm, true);
		return;
	}
	if (!t->online) {
		update_fail(u, -SLUICE_ETARGET_OFFLINE);
		return;
	}
	u->next = NULL;
	if (t->commit_tail)
		t->commit_tail->next = u;
	else
		t->commit_head = u;
	t->commit_tail = u;
	commit_kick(t);
}

/* ---- growth -------------------------------------------------------------------------------- */

/* File system bytes data never takes: the configured reserve plus what RocksDB may
 * preallocate on the same disk, so metadata commits still find room when data is full. */
static uint64_t reserve_of(const struct stor_target *t)
{
	return t->cfg.reserve_bytes + KV_DISK_OVERHEAD_BYTES;
}

static void data_file_path(const struct stor_target *t, uint8_t cls, uint32_t file, char *out,
			   size_t len)
{
	snprintf(out, len, "%s/data/c%u.%u", t->path, CLASS_SHIFT0 + cls, file);
}

/* Worker: fallocate the next group (creating the file if new) within the reserve, and make
 * the new size durable before any block of it is used. */
static void grow_run(struct worker_job *job)
{
	struct grow_state *g = (struct grow_state *)job;
	struct stor_target *t = g->t;
	uint64_t bs = stor_class_bytes(g->cls), want = (uint64_t)(g->new_blocks - g->old_blocks);
	char path[PATH_MAX];
	struct statvfs sv;
	int fd = g->old_blocks ? t->fds[g->cls][g->file] : -1; /* stable while we run */

	g->status = 0;
	data_file_path(t, g->cls, g->file, path, sizeof(path));
	if (statvfs(t->path, &sv) != 0) {
		g->status = -errno;
		return;
	}
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	uint64_t room = avail > reserve_of(t) ? avail - reserve_of(t) : 0;

	if (want * bs > room)
		want = room / bs;
	if (want == 0) {
		g->status = -ENOSPC;
		return;
	}
	if (fd < 0) {
		fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
		if (fd < 0) {
			g->status = -errno;
			return;
		}
		g->new_fd = fd;
	}
	if (fallocate(fd, 0, (off_t)(g->old_blocks * bs), (off_t)(want * bs)) != 0 ||
	    fsync(fd) != 0) {
		g->status = -errno;
		return;
	}
	if (g->old_blocks == 0) { /* a new name: make the directory entry durable too */
		char dir[PATH_MAX];
		int dfd;

		snprintf(dir, sizeof(dir), "%s/data", t->path);
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) != 0)
			g->status = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	g->new_blocks = g->old_blocks + (uint32_t)want;
}

static void grow_wake(struct stor_target *t, uint8_t cls, int status)
{
	struct grow_state *g = &t->grow[cls];
	struct stor_update *u = g->wait_head;

	g->wait_head = g->wait_tail = NULL;
	while (u != NULL) {
		struct stor_update *next = u->next;

		u->next = NULL;
		if (status != 0)
			update_fail(u, status);
		else
			update_place_done(u); /* retries the allocation, may wait again */
		u = next;
	}
}

static void grow_done(struct worker_job *job)
{
	struct grow_state *g = (struct grow_state *)job;
	struct stor_target *t = g->t;
	int status = g->status;

	g->running = false;
	if (status == 0 && g->new_fd >= 0)
		t->fds[g->cls][g->file] = g->new_fd;
	else if (g->new_fd >= 0)
		close(g->new_fd);
	if (status == 0)
		status = stor_alloc_set_blocks(t->alloc, g->cls, g->file, g->new_blocks);
	if (status == 0) {
		t->ctr.grows++;
		log_info("target %" PRIu64 ": data file c%u.%u grown to %u blocks", t->id,
			 CLASS_SHIFT0 + g->cls, g->file, g->new_blocks);
	} else if (status != -ENOSPC) {
		log_err("target %" PRIu64 ": growing data file c%u.%u failed: %s (%d)", t->id,
			CLASS_SHIFT0 + g->cls, g->file, sluice_strerror(status), status);
	}
	grow_wake(t, g->cls, status);
}

/* Grow class cls unless a growth is running; its waiters hear the outcome. */
static void grow_start(struct stor_target *t, uint8_t cls)
{
	struct grow_state *g = &t->grow[cls];
	uint64_t bs = stor_class_bytes(cls), blocks = t->cfg.group_bytes / bs;
	uint32_t file, nblocks;
	struct stor_alloc_stats st;
	int rc;

	if (g->running)
		return;
	rc = stor_alloc_grow_point(t->alloc, cls, &file, &nblocks);
	if (rc == 0) {
		if (blocks == 0)
			blocks = 1;
		if (blocks > SLUICE_STOR_FILE_BLOCKS_MAX - nblocks)
			blocks = SLUICE_STOR_FILE_BLOCKS_MAX - nblocks;
		stor_alloc_stats(t->alloc, &st);
		if (t->cfg.capacity_bytes > 0) { /* the configured cap on data bytes */
			uint64_t left = t->cfg.capacity_bytes > st.allocated_bytes
						? t->cfg.capacity_bytes - st.allocated_bytes
						: 0;

			if (blocks * bs > left)
				blocks = left / bs;
		}
		rc = blocks > 0 ? 0 : -ENOSPC;
	}
	if (rc == 0) {
		*g = (struct grow_state){
			.job = {.run = grow_run, .done = grow_done},
			.t = t,
			.running = true,
			.cls = cls,
			.file = file,
			.old_blocks = nblocks,
			.new_blocks = nblocks + (uint32_t)blocks,
			.new_fd = -1,
			.wait_head = g->wait_head,
			.wait_tail = g->wait_tail,
		};
		rc = worker_submit(t->cfg.workers, t->cfg.reactor, &g->job);
		if (rc == 0)
			return;
		g->running = false;
	}
	grow_wake(t, cls, rc);
}

/* Take a free block of class cls for u into u->newm.pos. 0: taken; 1: u waits for growth
 * and continues in update_place_done. */
static int take_block(struct stor_update *u, uint8_t cls)
{
	struct stor_target *t = u->t;
	struct grow_state *g = &t->grow[cls];

	if (stor_alloc_get(t->alloc, cls, &u->newm.pos) == 0) {
		u->took_block = true;
		return 0;
	}
	u->next = NULL;
	if (g->wait_tail)
		g->wait_tail->next = u;
	else
		g->wait_head = u;
	g->wait_tail = u;
	grow_start(t, cls);
	return 1;
}

/* ---- updates: writing content -------------------------------------------------------------- */

/* The committed length the update builds on: none for a full replace. */
static uint32_t base_len(const struct stor_update *u)
{
	return u->c->exists && !u->full_replace ? u->c->m.length : 0;
}

/* The new metadata's fixed fields: the next version of the chunk. */
static void newm_init(struct stor_update *u, uint32_t length)
{
	const struct stor_chunk *c = u->c;
	uint64_t ver = u->update_ver ? u->update_ver : c->exists ? c->m.commit_ver + 1 : 1;
	uint64_t chain_ver = u->chain_ver ? u->chain_ver : c->exists ? c->m.chain_ver : 0;

	u->new_length = length;
	u->newm = (struct chunk_meta){
		.id = c->m.id,
		.length = length,
		.chunk_size = c->exists ? c->m.chunk_size : u->chunk_size,
		.commit_ver = ver,
		.update_ver = ver,
		.chain_ver = chain_ver,
		.tag = u->tag,
		.has_block = length > 0,
		.pos = c->exists ? c->m.pos : (struct stor_pos){0},
	};
}

/* Fill newm's sector CRCs (sectors before the region are unchanged) and content CRC. */
static int newm_sectors(struct stor_update *u, const uint8_t *src)
{
	const struct stor_chunk *c = u->c;
	uint32_t nsect = chunk_meta_nsect(u->new_length), first = u->region_off / SECTOR;

	u->newm.sector_crc = malloc(4u * nsect);
	if (u->newm.sector_crc == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < first; i++)
		u->newm.sector_crc[i] = c->m.sector_crc[i];
	for (uint32_t i = first; i < nsect; i++)
		u->newm.sector_crc[i] = u->direct && u->data_sector_crc
						? u->data_sector_crc[i - first]
						: sector_crc_of(src + (size_t)(i - first) * SECTOR,
								i, u->new_length);
	u->newm.crc = chunk_meta_fold_crc(u->newm.sector_crc, u->new_length);
	return 0;
}

static void write_done(struct stor_io *io, int res)
{
	struct stor_update *u =
		(struct stor_update *)((char *)io - offsetof(struct stor_update, io));

	if (res == -ENOSPC) {
		update_fail(u, -ENOSPC);
		return;
	}
	if (res < 0) {
		target_fail(u->t, res, "data write");
		update_fail(u, -EIO);
		return;
	}
	buf_put(u->bounce);
	u->bounce = NULL;
	u->wrote_data = true;
	commit_enqueue(u);
}

/* The region's bytes are ready in src: checksum them and write them to the new position. */
static void write_region(struct stor_update *u, uint8_t *src)
{
	int rc = newm_sectors(u, src);

	if (rc != 0) {
		update_fail(u, rc);
		return;
	}
	io_block(u->t, &u->io, true, &u->newm.pos, u->region_off, src, u->region_len, write_done);
}

/* Build the region in the bounce buffer: old bytes (already read), zeros, new data. */
static void fill_bounce(struct stor_update *u)
{
	uint32_t old_len = base_len(u);
	uint32_t keep = old_len > u->region_off ? old_len - u->region_off : 0;
	uint8_t *b = u->bounce->data;

	if (keep > u->region_len)
		keep = u->region_len;
	memset(b + keep, 0, u->region_len - keep);
	if (u->data != NULL)
		memcpy(b + (u->offset - u->region_off), u->data->data, u->length);
	write_region(u, b);
}

static void old_read_done(struct stor_io *io, int res)
{
	struct stor_update *u =
		(struct stor_update *)((char *)io - offsetof(struct stor_update, io));
	const struct chunk_meta *old = &u->c->m;
	uint32_t first = u->region_off / SECTOR;

	if (res < 0) {
		target_fail(u->t, res, "data read");
		update_fail(u, -EIO);
		return;
	}
	if (!sectors_ok(u->bounce->data, first, io->len / SECTOR, old->length,
			old->sector_crc + first)) {
		u->t->ctr.checksum_errors++;
		log_err_rl("target %" PRIu64 ": chunk %" PRIu64 ":%u failed its checksum in a "
			   "read-modify-write",
			   u->t->id, old->id.inode, old->id.index);
		update_fail(u, -SLUICE_ECHECKSUM);
		return;
	}
	fill_bounce(u);
}

/* u has its block (newm.pos): write straight from the data or build the region. */
static void update_place_done(struct stor_update *u)
{
	struct stor_chunk *c = u->c;
	uint32_t old_len = base_len(u);
	uint32_t old_end = round_up(old_len);
	int rc;

	if (!u->in_place && !u->took_block) { /* woken from a growth wait: retry */
		uint8_t cls = stor_class_for(u->new_length);

		if (take_block(u, cls) != 0)
			return;
	}
	if (u->direct) {
		ASSERT(u->data->cap >= u->region_len);
		memset((uint8_t *)u->data->data + u->length, 0, u->region_len - u->length);
		write_region(u, u->data->data);
		return;
	}
	rc = bufpool_get(u->t->cfg.pool, u->region_len, &u->bounce);
	if (rc != 0) {
		update_fail(u, rc);
		return;
	}
	if (old_len > u->region_off) { /* old bytes share the region: read them first */
		io_block(u->t, &u->io, false, &c->m.pos, u->region_off, u->bounce->data,
			 old_end - u->region_off, old_read_done);
		return;
	}
	fill_bounce(u);
}

/* Plan a write of [offset, offset + length) (data NULL: zeros): append in place or copy
 * on write, direct from the data buffer when it lines up. */
static void plan_write(struct stor_update *u)
{
	struct stor_chunk *c = u->c;
	uint32_t old_len = base_len(u), end = u->offset + u->length;
	uint32_t new_len = end > old_len ? end : old_len;
	bool in_place = c->exists && c->m.has_block && !u->full_replace && u->offset >= old_len &&
			stor_class_bytes(c->m.pos.cls) >= new_len;

	newm_init(u, new_len);
	u->in_place = in_place;
	u->region_off = in_place ? round_down(old_len) : 0;
	u->region_len = round_up(new_len) - u->region_off;
	u->direct = u->data != NULL && u->offset == u->region_off && end >= old_len;
	if (!in_place && take_block(u, stor_class_for(new_len)) != 0)
		return; /* continues in update_place_done after growth */
	update_place_done(u);
}

/* ---- updates: truncate, remove, dispatch ---------------------------------------------------- */

static void shrink_read_done(struct stor_io *io, int res)
{
	struct stor_update *u =
		(struct stor_update *)((char *)io - offsetof(struct stor_update, io));
	const struct chunk_meta *old = &u->c->m;
	uint32_t k = u->new_length / SECTOR;

	if (res < 0) {
		target_fail(u->t, res, "data read");
		update_fail(u, -EIO);
		return;
	}
	if (!sectors_ok(u->bounce->data, k, 1, old->length, old->sector_crc + k)) {
		u->t->ctr.checksum_errors++;
		update_fail(u, -SLUICE_ECHECKSUM);
		return;
	}
	u->newm.sector_crc[k] = crc32c(0, u->bounce->data, u->new_length % SECTOR);
	u->newm.crc = chunk_meta_fold_crc(u->newm.sector_crc, u->new_length);
	commit_enqueue(u);
}

/* Shrink to new_len < length: metadata only, rereading the sector the new end cuts. */
static void plan_shrink(struct stor_update *u, uint32_t new_len)
{
	const struct chunk_meta *old = &u->c->m;
	uint32_t nsect = chunk_meta_nsect(new_len);
	int rc;

	newm_init(u, new_len);
	if (new_len == 0) {
		commit_enqueue(u);
		return;
	}
	u->newm.sector_crc = malloc(4u * nsect);
	if (u->newm.sector_crc == NULL) {
		update_fail(u, -ENOMEM);
		return;
	}
	memcpy(u->newm.sector_crc, old->sector_crc, 4u * nsect);
	if (new_len % SECTOR == 0) {
		u->newm.crc = chunk_meta_fold_crc(u->newm.sector_crc, new_len);
		commit_enqueue(u);
		return;
	}
	rc = bufpool_get(u->t->cfg.pool, SECTOR, &u->bounce);
	if (rc != 0) {
		update_fail(u, rc);
		return;
	}
	io_block(u->t, &u->io, false, &old->pos, round_down(new_len), u->bounce->data, SECTOR,
		 shrink_read_done);
}

/* u changes nothing: complete it with the chunk as it is (two-phase: once committed). */
static void update_unchanged(struct stor_update *u)
{
	const struct chunk_meta *m = u->c->exists ? &u->c->m : NULL;

	if (u->prepared != NULL && !u->released) {
		u->unchanged = true;
		u->prepared(u->arg, (struct stor_pending *)u, m, false);
		return;
	}
	update_finish(u, 0, m);
}

/* u holds the chunk's lock: do it. */
static void update_run(struct stor_update *u)
{
	struct stor_chunk *c = u->c;
	uint32_t old_len = c->exists ? c->m.length : 0;
	uint64_t cur_ver = c->exists ? c->m.commit_ver : 0;

	if (!u->t->online) {
		update_fail(u, -SLUICE_ETARGET_OFFLINE);
		return;
	}
	if (u->kind == UPD_HOLD) {
		update_unchanged(u);
		return;
	}
	if (u->kind == UPD_REMOVE) { /* absolute: no version check */
		if (!c->exists) {
			*u->existed = false;
			update_unchanged(u);
		} else {
			commit_enqueue(u);
		}
		return;
	}
	if (c->exists && c->m.chunk_size != u->chunk_size) {
		update_fail(u, -EINVAL); /* a file's chunk size never changes */
		return;
	}
	if (u->tag.client != 0 && !u->full_replace && c->exists &&
	    stor_tag_eq(&u->tag, &c->m.tag)) {
		update_unchanged(u); /* a retry of the update that made this version */
		return;
	}
	if (u->update_ver != 0 && !u->full_replace && cur_ver + 1 != u->update_ver) {
		/* The predecessor built on another version: it must send the whole chunk. */
		update_finish(u, -SLUICE_ECHUNKVER, c->exists ? &c->m : NULL);
		return;
	}
	if (u->kind == UPD_WRITE) {
		plan_write(u);
	} else if (u->full_replace) { /* to no content (the head's chunk is empty) */
		plan_shrink(u, 0);
	} else if (u->length == old_len && (u->update_ver == 0 || !c->exists)) {
		update_unchanged(u);	   /* truncate to the current length */
	} else if (u->length == old_len) { /* the same, at the version the head gave it */
		plan_shrink(u, old_len);
	} else if (u->length > old_len) { /* zero-extend: a write of zeros */
		u->offset = old_len;
		u->length -= old_len;
		plan_write(u);
	} else {
		plan_shrink(u, u->length);
	}
}

/* Queue u on its chunk's lock (creating the index entry), running it if first. */
static int update_submit(struct stor_target *t, struct stor_update *u,
			 const struct layout_chunk_id *id)
{
	struct stor_chunk *c = index_find(t, id);

	if (c == NULL) {
		c = index_insert(t, id);
		if (c == NULL)
			return -ENOMEM;
	}
	c->refs++;
	t->busy++;
	u->t = t;
	u->c = c;
	if (c->lock_tail) {
		c->lock_tail->lock_next = u;
		c->lock_tail = u;
		return 0;
	}
	c->lock_head = c->lock_tail = u;
	update_run(u);
	return 0;
}

/* CRC of the write data checked against what the client sent; for data starting on a
 * sector boundary the per-sector CRCs the commit needs come out of the same pass. */
static int check_data_crc(struct stor_update *u, uint32_t data_crc)
{
	const uint8_t *d = u->data->data;
	uint32_t len = (uint32_t)u->data->len;

	if (u->offset % SECTOR != 0)
		return crc32c(0, d, len) == data_crc ? 0 : -SLUICE_ECHECKSUM;
	u->data_sector_crc = malloc(4u * chunk_meta_nsect(len));
	if (u->data_sector_crc == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < chunk_meta_nsect(len); i++)
		u->data_sector_crc[i] = sector_crc_of(d + (size_t)i * SECTOR, i, len);
	return chunk_meta_fold_crc(u->data_sector_crc, len) == data_crc ? 0 : -SLUICE_ECHECKSUM;
}

int stor_update(struct stor_target *t, const struct stor_update_args *a, stor_update_cb cb,
		void *arg)
{
	static const enum update_kind kinds[] = {
		[STOR_UPD_WRITE] = UPD_WRITE,
		[STOR_UPD_TRUNCATE] = UPD_TRUNCATE,
		[STOR_UPD_REMOVE] = UPD_REMOVE,
		[STOR_UPD_HOLD] = UPD_HOLD,
	};
	uint64_t len = a->data ? a->data->len : 0;
	struct stor_update *u;
	int rc = 0;

	if (!t->online)
		return -SLUICE_ETARGET_OFFLINE;
	if ((unsigned)a->kind >= SLUICE_ARRAY_SIZE(kinds))
		return -EINVAL;
	if (a->kind == STOR_UPD_WRITE && a->full_replace && len == 0) {
		/* no content: a truncate to nothing at the head's version */
		struct stor_update_args b = *a;

		b.kind = STOR_UPD_TRUNCATE;
		b.length = 0;
		b.data = NULL;
		return stor_update(t, &b, cb, arg);
	}
	if (a->kind == STOR_UPD_HOLD && a->prepared == NULL)
		return -EINVAL;
	if (a->kind != STOR_UPD_REMOVE && a->kind != STOR_UPD_HOLD &&
	    !chunk_size_valid(a->chunk_size))
		return -EINVAL;
	if (a->kind == STOR_UPD_WRITE &&
	    (len == 0 || a->offset + len > a->chunk_size || (a->full_replace && a->offset != 0)))
		return -EINVAL;
	if (a->kind == STOR_UPD_TRUNCATE &&
	    (a->length > a->chunk_size || (a->full_replace && a->length != 0)))
		return -EINVAL;
	if (a->kind == STOR_UPD_REMOVE && a->existed == NULL)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	*u = (struct stor_update){.kind = kinds[a->kind],
				  .chunk_size = a->chunk_size,
				  .offset = a->kind == STOR_UPD_WRITE ? a->offset : 0,
				  .length = a->kind == STOR_UPD_WRITE ? (uint32_t)len : a->length,
				  .data = a->kind == STOR_UPD_WRITE ? a->data : NULL,
				  .existed = a->existed,
				  .cb = cb,
				  .arg = arg,
				  .update_ver = a->update_ver,
				  .chain_ver = a->chain_ver,
				  .tag = a->tag,
				  .full_replace = a->full_replace && a->kind != STOR_UPD_REMOVE,
				  .prepared = a->prepared};
	if (u->kind == UPD_WRITE)
		rc = check_data_crc(u, a->data_crc);
	if (rc == 0)
		rc = update_submit(t, u, &a->id);
	if (rc != 0) {
		free(u->data_sector_crc);
		free(u);
	}
	return rc;
}

int stor_write(struct stor_target *t, const struct stor_write_args *a, stor_update_cb cb, void *arg)
{
	struct stor_update_args b = {.kind = STOR_UPD_WRITE,
				     .id = a->id,
				     .chunk_size = a->chunk_size,
				     .offset = a->offset,
				     .data = a->data,
				     .data_crc = a->data_crc};

	return stor_update(t, &b, cb, arg);
}

int stor_truncate(struct stor_target *t, const struct layout_chunk_id *id, uint32_t chunk_size,
		  uint32_t length, stor_update_cb cb, void *arg)
{
	struct stor_update_args b = {
		.kind = STOR_UPD_TRUNCATE, .id = *id, .chunk_size = chunk_size, .length = length};

	return stor_update(t, &b, cb, arg);
}

int stor_remove(struct stor_target *t, const struct layout_chunk_id *id, bool *existed,
		stor_update_cb cb, void *arg)
{
	struct stor_update_args b = {.kind = STOR_UPD_REMOVE, .id = *id, .existed = existed};

	return stor_update(t, &b, cb, arg);
}

void stor_pending_commit(struct stor_pending *p)
{
	struct stor_update *u = (struct stor_update *)p;

	ASSERT(u->prepared != NULL && !u->released && u->c->lock_head == u);
	u->released = true;
	if (u->unchanged)
		update_finish(u, 0, u->c->exists ? &u->c->m : NULL);
	else
		commit_enqueue(u);
}

void stor_pending_abort(struct stor_pending *p, int status)
{
	struct stor_update *u = (struct stor_update *)p;

	ASSERT(u->prepared != NULL && !u->released && u->c->lock_head == u && status < 0);
	u->released = true;
	update_fail(u, status);
}

bool stor_chunk_committed(struct stor_target *t, const struct layout_chunk_id *id,
			  struct chunk_meta *out)
{
	const struct stor_chunk *c = index_find(t, id);

	if (c == NULL || !c->exists)
		return false;
	*out = c->m;
	out->sector_crc = NULL;
	return true;
}

bool stor_chunk_pending(struct stor_target *t, const struct layout_chunk_id *id)
{
	const struct stor_chunk *c = index_find(t, id);

	return c != NULL && c->lock_head != NULL && c->lock_head->prepared != NULL;
}

/* ---- reads ------------------------------------------------------------------------------------
 */

static void read_done(struct stor_io *io, int res)
{
	struct stor_read *r = (struct stor_read *)((char *)io - offsetof(struct stor_read, io));
	struct stor_target *t = r->t;
	int status = 0;

	readers_done(t, r->c);
	if (res < 0) {
		target_fail(t, res, "data read");
		status = -EIO;
	} else if (!sectors_ok(r->buf->data, r->first_sector, io->len / SECTOR, r->snap.length,
			       r->sector_crc)) {
		t->ctr.checksum_errors++;
		log_err_rl("target %" PRIu64 ": chunk %" PRIu64 ":%u failed its checksum on read",
			   t->id, r->snap.id.inode, r->snap.id.index);
		status = -SLUICE_ECHECKSUM;
	}
	if (status == 0) {
		t->ctr.reads++;
		t->ctr.bytes_read += r->len;
	} else {
		buf_put(r->buf); /* never hand out bytes that failed their check */
		r->buf = NULL;
	}
	r->cb(r->arg, status, r->buf, status == 0 ? r->offset : 0, status == 0 ? r->len : 0,
	      &r->snap);
	chunk_put(t, r->c);
	t->busy--;
	free(r->sector_crc);
	free(r);
}

/* Read [offset, offset + length) of content m of chunk c: the committed state (c->m) or
 * a prepared update's (stor_pending_read). */
static int read_from(struct stor_target *t, struct stor_chunk *c, const struct chunk_meta *m,
		     uint32_t offset, uint32_t length, stor_read_cb cb, void *arg)
{
	struct stor_read *r;
	uint32_t end, start, stop, nsect;
	int rc;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->snap = *m;
	r->snap.sector_crc = NULL;
	if (offset >= m->length) { /* past the end: nothing to read, like pread */
		cb(arg, 0, NULL, 0, 0, &r->snap);
		free(r);
		return 0;
	}
	end = offset + length < m->length ? offset + length : m->length;
	start = round_down(offset);
	stop = round_up(end);
	nsect = (stop - start) / SECTOR;
	rc = bufpool_get(t->cfg.pool, stop - start, &r->buf);
	if (rc == 0) {
		r->sector_crc = malloc(4u * nsect);
		rc = r->sector_crc ? 0 : -ENOMEM;
	}
	if (rc != 0) {
		buf_put(r->buf);
		free(r);
		return rc;
	}
	memcpy(r->sector_crc, m->sector_crc + start / SECTOR, 4u * nsect);
	r->t = t;
	r->c = c;
	r->first_sector = start / SECTOR;
	r->offset = offset - start;
	r->len = end - offset;
	r->cb = cb;
	r->arg = arg;
	c->refs++;
	c->readers++;
	t->busy++;
	io_block(t, &r->io, false, &m->pos, start, r->buf->data, stop - start, read_done);
	return 0;
}

int stor_read(struct stor_target *t, const struct layout_chunk_id *id, uint32_t offset,
	      uint32_t length, stor_read_cb cb, void *arg)
{
	struct stor_chunk *c;

	if (!t->online)
		return -SLUICE_ETARGET_OFFLINE;
	if (length == 0 || length > SLUICE_CHUNK_SIZE_MAX || offset > SLUICE_CHUNK_SIZE_MAX)
		return -EINVAL;
	c = index_find(t, id);
	if (c == NULL || !c->exists)
		return -ENOENT;
	return read_from(t, c, &c->m, offset, length, cb, arg);
}

int stor_pending_read(struct stor_pending *p, stor_read_cb cb, void *arg)
{
	struct stor_update *u = (struct stor_update *)p;

	ASSERT(u->prepared != NULL && !u->released && u->kind != UPD_REMOVE && !u->unchanged);
	if (!u->t->online)
		return -SLUICE_ETARGET_OFFLINE;
	/* The pending block is the update's own until commit or abort, which cannot come
	 * before this read completes: the caller waits for it. */
	return read_from(u->t, u->c, &u->newm, 0, SLUICE_CHUNK_SIZE_MAX, cb, arg);
}

/* ---- scans ---------------------------------------------------------------------------------- */

static int scan_one(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	struct scan_job *s = arg;
	struct layout_chunk_id id;
	struct chunk_meta m;
	int rc;

	if (s->n == s->limit) {
		s->more = true;
		return 1;
	}
	rc = chunk_meta_key_decode(k, klen, &id);
	if (rc == 0)
		rc = chunk_meta_decode(&id, v, vlen, &m);
	if (rc != 0)
		return rc;
	chunk_meta_release(&m); /* listings carry no sector CRCs */
	s->metas[s->n++] = m;
	return 0;
}

static void scan_run(struct worker_job *job)
{
	struct scan_job *s = (struct scan_job *)job;
	/* Without an end the scan stops at the first key that is not a chunk key. */
	static const uint8_t after_chunks[1] = {CHUNK_META_KEY_PREFIX + 1};
	int rc = kv_scan_range(s->t->kv, s->begin, sizeof(s->begin),
			       s->has_end ? s->end : after_chunks,
			       s->has_end ? sizeof(s->end) : sizeof(after_chunks), scan_one, s);

	s->status = rc < 0 ? rc : 0;
}

static void scan_done(struct worker_job *job)
{
	struct scan_job *s = (struct scan_job *)job;

	s->cb(s->arg, s->status, s->metas, s->status == 0 ? s->n : 0, s->more);
	s->t->busy--;
	free(s->metas);
	free(s);
}

int stor_scan(struct stor_target *t, const struct layout_chunk_id *begin,
	      const struct layout_chunk_id *end, unsigned limit, stor_scan_cb cb, void *arg)
{
	struct scan_job *s;
	int rc;

	if (!t->online)
		return -SLUICE_ETARGET_OFFLINE;
	if (limit == 0 || limit > SLUICE_STOR_LIST_MAX)
		limit = SLUICE_STOR_LIST_MAX;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->metas = calloc(limit, sizeof(*s->metas));
	if (s->metas == NULL) {
		free(s);
		return -ENOMEM;
	}
	s->job = (struct worker_job){.run = scan_run, .done = scan_done};
	s->t = t;
	chunk_meta_key(begin, s->begin);
	s->has_end = end != NULL;
	if (end)
		chunk_meta_key(end, s->end);
	s->limit = limit;
	s->cb = cb;
	s->arg = arg;
	rc = worker_submit(t->cfg.workers, t->cfg.reactor, &s->job);
	if (rc != 0) {
		free(s->metas);
		free(s);
		return rc;
	}
	t->busy++;
	return 0;
}

/* ---- space, counters, faults ----------------------------------------------------------------- */

void stor_target_space(struct stor_target *t, struct stor_space *out)
{
	struct stor_alloc_stats st;
	struct statvfs sv;
	uint64_t fs_size = 0, room = 0, cap;

	stor_alloc_stats(t->alloc, &st);
	if (statvfs(t->path, &sv) == 0) {
		uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;

		fs_size = (uint64_t)sv.f_blocks * sv.f_frsize;
		room = avail > reserve_of(t) ? avail - reserve_of(t) : 0;
	}
	cap = t->cfg.capacity_bytes ? t->cfg.capacity_bytes : fs_size;
	if (t->cfg.capacity_bytes) { /* growth is bounded by the cap as well */
		uint64_t left = cap > st.allocated_bytes ? cap - st.allocated_bytes : 0;

		room = room < left ? room : left;
	}
	*out = (struct stor_space){
		.capacity_bytes = cap,
		.used_bytes = st.used_bytes,
		.allocated_bytes = st.allocated_bytes,
		.free_bytes = (st.allocated_bytes - st.used_bytes) + room,
		.chunks = t->nchunks,
	};
}

void stor_target_counters(const struct stor_target *t, struct stor_counters *out)
{
	*out = t->ctr;
}

void stor_target_inject_eio(struct stor_target *t, uint32_t count)
{
	t->fault_eio_all = count == 0;
	t->fault_eio_left = count;
	log_warn("target %" PRIu64 ": fault injection: %s disk I/Os fail with EIO", t->id,
		 count ? "the next" : "all");
}

uint64_t stor_target_id(const struct stor_target *t)
{
	return t->id;
}

const char *stor_target_path(const struct stor_target *t)
{
	return t->path;
}

bool stor_target_online(const struct stor_target *t, const char **reason)
{
	if (reason)
		*reason = t->online ? "" : t->offline_reason;
	return t->online;
}

bool stor_target_idle(const struct stor_target *t)
{
	return t->busy == 0 && !t->commit_running;
}

/* ---- open and close -------------------------------------------------------------------------- */

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

/* Open every data file data/c<k>.<n>: per class, files must be numbered 0..n-1. */
static int load_data_files(struct stor_target *t, char *why, size_t why_len)
{
	static const uint64_t absent = UINT64_MAX;
	uint64_t size[SLUICE_STOR_CLASSES][SLUICE_STOR_FILES_PER_CLASS];
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	for (unsigned c = 0; c < SLUICE_STOR_CLASSES; c++)
		for (unsigned f = 0; f < SLUICE_STOR_FILES_PER_CLASS; f++)
			size[c][f] = absent;
	snprintf(dir, sizeof(dir), "%s/data", t->path);
	d = opendir(dir);
	if (d == NULL) {
		snprintf(why, why_len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned k, n;
		char tail;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (sscanf(de->d_name, "c%u.%u%c", &k, &n, &tail) != 2 || k < CLASS_SHIFT0 ||
		    k - CLASS_SHIFT0 >= SLUICE_STOR_CLASSES || n >= SLUICE_STOR_FILES_PER_CLASS) {
			log_warn("target %" PRIu64 ": ignoring unexpected file %s/%s", t->id, dir,
				 de->d_name);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			snprintf(why, why_len, "%s: not a regular file", path);
			closedir(d);
			return -EBADMSG;
		}
		size[k - CLASS_SHIFT0][n] = (uint64_t)st.st_size;
	}
	closedir(d);
	for (uint8_t c = 0; c < SLUICE_STOR_CLASSES; c++) {
		for (uint32_t f = 0; f < SLUICE_STOR_FILES_PER_CLASS && size[c][f] != absent; f++) {
			uint64_t blocks = size[c][f] / stor_class_bytes(c);
			int rc;

			data_file_path(t, c, f, path, sizeof(path));
			t->fds[c][f] = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
			if (t->fds[c][f] < 0) {
				snprintf(why, why_len, "%s: %s", path, strerror(errno));
				return -errno;
			}
			if (blocks > SLUICE_STOR_FILE_BLOCKS_MAX)
				blocks = SLUICE_STOR_FILE_BLOCKS_MAX;
			rc = stor_alloc_set_blocks(t->alloc, c, f, (uint32_t)blocks);
			if (rc != 0)
				return rc;
		}
	}
	for (uint8_t c = 0; c < SLUICE_STOR_CLASSES; c++) {
		for (uint32_t f = stor_alloc_nfiles(t->alloc, c); f < SLUICE_STOR_FILES_PER_CLASS;
		     f++) {
			if (size[c][f] != absent) {
				data_file_path(t, c, f, path, sizeof(path));
				snprintf(why, why_len,
					 "%s exists but an earlier file of its class "
					 "is missing",
					 path);
				return -EBADMSG;
			}
		}
	}
	return 0;
}

struct load_ctx {
	struct stor_target *t;
	char *why;
	size_t why_len;
};

/* One chunk key at open: decode, claim its block, index it. */
static int load_chunk(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
	struct load_ctx *lc = arg;
	struct stor_target *t = lc->t;
	struct layout_chunk_id id = {0};
	struct chunk_meta m;
	struct stor_chunk *c;
	int rc = chunk_meta_key_decode(k, klen, &id);

	if (rc == 0)
		rc = chunk_meta_decode(&id, v, vlen, &m);
	if (rc != 0) {
		snprintf(lc->why, lc->why_len, "chunk %" PRIu64 ":%u: metadata damaged (%s)",
			 id.inode, id.index, sluice_strerror(rc));
		return rc;
	}
	if (m.has_block) {
		rc = stor_alloc_mark_used(t->alloc, &m.pos);
		if (rc != 0) {
			snprintf(lc->why, lc->why_len,
				 "chunk %" PRIu64 ":%u names block c%u.%u:%u which %s", id.inode,
				 id.index, CLASS_SHIFT0 + m.pos.cls, m.pos.file, m.pos.block,
				 rc == -EEXIST ? "another chunk names too"
					       : "is past the end of its data file");
			chunk_meta_release(&m);
			return -EBADMSG;
		}
	}
	c = index_insert(t, &id);
	if (c == NULL) {
		chunk_meta_release(&m);
		return -ENOMEM;
	}
	c->m = m;
	c->exists = true;
	t->nchunks++;
	return 0;
}

int stor_target_open(const struct stor_target_cfg *cfg, struct stor_target **out, char *why,
		     size_t why_len)
{
	struct stor_target *t;
	char path[PATH_MAX];
	const uint8_t prefix = CHUNK_META_KEY_PREFIX;
	int rc;

	ASSERT(cfg->queue_depth >= 1 && cfg->queue_depth <= SLUICE_STOR_QUEUE_DEPTH_MAX);
	snprintf(why, why_len, "out of memory");
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->cfg = *cfg;
	t->id = cfg->id;
	t->online = true;
	t->path = strdup(cfg->path);
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->encode_buf = malloc(CHUNK_META_VALUE_MAX);
	for (unsigned c = 0; c < SLUICE_STOR_CLASSES; c++)
		for (unsigned f = 0; f < SLUICE_STOR_FILES_PER_CLASS; f++)
			t->fds[c][f] = -1;
	rc = (t->path && t->buckets && t->encode_buf) ? 0 : -ENOMEM;
	if (rc == 0)
		rc = stor_alloc_create(&t->alloc);
	if (rc == 0)
		rc = kv_batch_create(&t->commit.batch);
	t->commit.t = t;
	if (rc != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/data", t->path);
	rc = make_dir(t->path);
	if (rc == 0)
		rc = make_dir(path);
	if (rc != 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(-rc));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/meta", t->path);
	rc = kv_open(path, &t->kv, why, why_len);
	if (rc != 0)
		goto fail;
	rc = load_data_files(t, why, why_len);
	if (rc != 0)
		goto fail;
	rc = kv_scan(t->kv, &prefix, 1, load_chunk,
		     &(struct load_ctx){.t = t, .why = why, .why_len = why_len});
	if (rc != 0)
		goto fail;
	*out = t;
	return 0;
fail:
	stor_target_close(t);
	return rc;
}

void stor_target_close(struct stor_target *t)
{
	if (t == NULL)
		return;
	ASSERT(stor_target_idle(t));
	for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
		while (t->buckets[i] != NULL) {
			struct stor_chunk *c = t->buckets[i];

			t->buckets[i] = c->hnext;
			chunk_free(c);
		}
	}
	for (unsigned c = 0; c < SLUICE_STOR_CLASSES; c++)
		for (unsigned f = 0; f < SLUICE_STOR_FILES_PER_CLASS; f++)
			if (t->fds[c][f] >= 0)
				close(t->fds[c][f]);
	kv_close(t->kv);
	kv_batch_destroy(t->commit.batch);
	stor_alloc_destroy(t->alloc);
	free(t->buckets);
	free(t->encode_buf);
	free(t->path);
	free(t);
}
