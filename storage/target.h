/*
 * target.h - one storage target: the chunk engine of DESIGN.md section 6.
 *
 * A target is a directory on one disk (see storage/README.md for its files). It keeps the
 * metadata of every chunk in memory (struct chunk_meta, about 0.1% of the data for the
 * sector CRCs) with RocksDB as the durable copy, a free-block map rebuilt at open, and does
 * all disk I/O with O_DIRECT through the io_uring of its reactor.
 *
 * Updates (write, truncate, remove) to one chunk run one at a time in arrival order (a
 * per-chunk lock); updates to different chunks run concurrently. Each update writes new
 * content copy-on-write into a free block (or, for an append that fits the current block,
 * past the committed end of it), then makes the data durable (one fdatasync per data file
 * per commit batch) and commits the new metadata in one
 * synced RocksDB batch shared with the other updates waiting at that moment (group commit),
 * and only then completes. A crash at any point leaves the last committed version intact,
 * and blocks an uncommitted update took are free again at the next open.
 *
 * Reads take the committed state at their start and check the CRC of every sector they
 * return; a block an update replaced stays allocated until the reads using it are done.
 *
 * Disk I/O on memory registered with the reactor's ring (reactor_register_buffers, e.g.
 * pinned pool buffers) uses the ring's fixed buffers; other memory works the same, through
 * plain reads and writes.
 *
 * A disk I/O error (or a failed metadata commit) takes the target offline: everything then
 * fails with -SLUICE_ETARGET_OFFLINE and the daemon reports the target offline to mgmtd.
 *
 * Threads: stor_target_open blocks and may run on any thread; everything else runs on the
 * target's reactor thread, and completion callbacks run there too, possibly before the
 * submitting call returns. Submit functions return 0 iff their callback will run exactly
 * once.
 */
#ifndef SLUICE_STORAGE_TARGET_H
#define SLUICE_STORAGE_TARGET_H

#include <stdbool.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/bufpool.h"
#include "common/layout.h"
#include "storage/chunk_meta.h"

struct reactor;
struct worker_pool;
struct stor_target;

struct stor_target_cfg {
	const char *path;	 /* target directory (created if missing) */
	uint64_t id;		 /* for logs and replies */
	uint64_t group_bytes;	 /* data files grow by this much (rounded to whole blocks) */
	uint64_t reserve_bytes;	 /* file system bytes never taken for data */
	uint64_t capacity_bytes; /* cap on data file bytes; 0 = the file system */
	unsigned queue_depth;	 /* disk I/Os in flight; 1..SLUICE_STOR_QUEUE_DEPTH_MAX */
	struct reactor *reactor;
	struct worker_pool *workers; /* synced commits, fallocate, scans */
	struct bufpool *pool;	     /* read and read-modify-write buffers */
};

/*
 * Open (creating if needed) the target: open RocksDB, the data files, load every chunk's
 * metadata and rebuild the free map. On failure *why says what is wrong ("chunk 12:3
 * metadata damaged", RocksDB's message, ...). Blocks. Errors: -errno of the file system,
 * -EIO (RocksDB), -EBADMSG (damaged metadata, data files not matching it), -ENOMEM.
 */
SLUICE_MUST_USE int stor_target_open(const struct stor_target_cfg *cfg, struct stor_target **out,
				     char *why, size_t why_len);
/* Close. No operation may be in flight (stor_target_idle). Reactor thread or, if the
 * reactor is not running, any thread. NULL ok. */
void stor_target_close(struct stor_target *t);
bool stor_target_idle(const struct stor_target *t);

uint64_t stor_target_id(const struct stor_target *t);
const char *stor_target_path(const struct stor_target *t);
/* False after an I/O error; reason says which (valid while t lives). */
bool stor_target_online(const struct stor_target *t, const char **reason);

/* ---- updates -------------------------------------------------------------------------- */

/* m: the chunk after the update, valid during the call; NULL after a remove or on error. */
typedef void (*stor_update_cb)(void *arg, int status, const struct chunk_meta *m);

struct stor_write_args {
	struct layout_chunk_id id;
	uint32_t chunk_size;
	uint32_t offset;
	struct buf *data; /* length = data->len bytes; ownership passes to the target */
	uint32_t data_crc;
};
/*
 * Write data at offset. Errors before submission (callback not run, data still the
 * caller's): -EINVAL (chunk_size not valid, zero length, past chunk_size, chunk_size
 * differing from the chunk's), -SLUICE_ECHECKSUM (data_crc does not match the data),
 * -SLUICE_ETARGET_OFFLINE, -ENOMEM. Completion errors: -ENOSPC, -EIO, -EAGAIN (buffer pool
 * exhausted), -SLUICE_ECHECKSUM (old content needed for a partial update failed its check),
 * -SLUICE_ETARGET_OFFLINE.
 */
SLUICE_MUST_USE int stor_write(struct stor_target *t, const struct stor_write_args *a,
			       stor_update_cb cb, void *arg);
/* Set the chunk's length (zero-extending). Errors as stor_write. A missing chunk truncated
 * to 0 completes with m NULL. */
SLUICE_MUST_USE int stor_truncate(struct stor_target *t, const struct layout_chunk_id *id,
				  uint32_t chunk_size, uint32_t length, stor_update_cb cb,
				  void *arg);
/* Remove the chunk; status 0 and m NULL either way, *existed says if it was there (the
 * int lives in the caller's memory until cb runs). */
SLUICE_MUST_USE int stor_remove(struct stor_target *t, const struct layout_chunk_id *id,
				bool *existed, stor_update_cb cb, void *arg);

/* ---- reads ---------------------------------------------------------------------------- */

/*
 * data: a pool buffer whose bytes [off, off + len) are the result (len is short past the
 * chunk's end, 0 past it; data may then be NULL). Ownership of data passes to the callback.
 * m: the chunk's committed metadata as read (length, versions), valid during the call.
 */
typedef void (*stor_read_cb)(void *arg, int status, struct buf *data, uint32_t off, uint32_t len,
			     const struct chunk_meta *m);
/* Read length bytes at offset. Errors before submission: -ENOENT (no such chunk), -EINVAL
 * (length 0 or past SLUICE_CHUNK_SIZE_MAX), -SLUICE_ETARGET_OFFLINE, -EAGAIN (no buffer).
 * Completion errors: -SLUICE_ECHECKSUM, -EIO. */
SLUICE_MUST_USE int stor_read(struct stor_target *t, const struct layout_chunk_id *id,
			      uint32_t offset, uint32_t length, stor_read_cb cb, void *arg);

/* ---- updates of chain replicas (CRAQ, storage/craq.c) -------------------------------------- */

/*
 * A prepared update: its data is written and durable, its metadata not committed, and it
 * holds the chunk's lock, so later updates of the chunk wait and reads that check
 * stor_chunk_pending see it. Exactly one of stor_pending_commit or stor_pending_abort
 * must follow (reactor thread).
 */
struct stor_pending;

/*
 * Two-phase updates call this instead of committing: p is the prepared update, m its
 * pending metadata (the version and CRC the commit will make; NULL for a remove), changed
 * false when the update changes nothing (truncate to the current length, remove of a
 * missing chunk: commit then completes with the chunk as it is, no version bump).
 */
typedef void (*stor_prepared_cb)(void *arg, struct stor_pending *p, const struct chunk_meta *m,
				 bool changed);

/* HOLD changes nothing: it only takes the chunk's lock (two-phase only; prepared gets the
 * committed metadata, NULL if missing, and changed false), so a resync can read the chunk
 * and send it on while no update of it runs here. */
enum stor_update_kind { STOR_UPD_WRITE, STOR_UPD_TRUNCATE, STOR_UPD_REMOVE, STOR_UPD_HOLD };

struct stor_update_args {
	enum stor_update_kind kind;
	struct layout_chunk_id id;
	uint32_t chunk_size; /* write, truncate */
	uint32_t offset;     /* write */
	uint32_t length;     /* truncate: the new length */
	struct buf *data;    /* write: data->len bytes; ownership passes to the target */
	uint32_t data_crc;   /* write: CRC32C of the data */
	bool *existed;	     /* remove: set before cb runs */
	/*
	 * 0: the update makes version commit_ver + 1 (the head of a chain, or no chain).
	 * Else the version the head gave it; unless full_replace (or a remove), the chunk must
	 * be at update_ver - 1 (a missing chunk is at 0) when the update runs, otherwise it
	 * completes with -SLUICE_ECHUNKVER and m = the chunk's committed metadata (NULL if
	 * missing), so the predecessor can send the whole chunk instead.
	 */
	uint64_t update_ver;
	/* write: data (NULL or empty: no content) is the chunk's whole new content, applied at
	 * update_ver whatever the chunk holds (a truncate to 0 with it: the same as no
	 * content). */
	bool full_replace;
	uint64_t chain_ver; /* recorded in the chunk's metadata */
	/*
	 * The request tag (zero: none), recorded in the chunk's metadata. An update (not a
	 * full replace) whose tag is the chunk's is a retry of the update that made the
	 * chunk's version: it changes nothing and completes with the chunk as it is
	 * (two-phase: prepared with changed false). A full replace records the tag it is
	 * given: the source chunk's.
	 */
	struct stor_tag tag;
	/* NULL: commit at once. Else two-phase: see stor_prepared_cb; cb still runs once at
	 * the end (after the commit or abort, or with an error if preparing failed, in which
	 * case prepared never runs). */
	stor_prepared_cb prepared;
};

/* Any update, with the chain options. Errors before submission as stor_write. */
SLUICE_MUST_USE int stor_update(struct stor_target *t, const struct stor_update_args *a,
				stor_update_cb cb, void *arg);
/* Commit a prepared update: cb runs with the result (the commit may still fail: -EIO,
 * -SLUICE_ETARGET_OFFLINE). */
void stor_pending_commit(struct stor_pending *p);
/* Drop a prepared update (its blocks are freed): cb runs with status (< 0). */
void stor_pending_abort(struct stor_pending *p, int status);
/*
 * Read the whole prepared content of a write or truncate (to forward it as a full replace),
 * checked against its sector CRCs like any read: cb(arg, status, data, off, len, m) with m
 * the pending metadata. p stays prepared. Errors before submission as stor_read.
 */
SLUICE_MUST_USE int stor_pending_read(struct stor_pending *p, stor_read_cb cb, void *arg);
/* The chunk's committed metadata into *out (sector CRCs not filled); false if missing. */
bool stor_chunk_committed(struct stor_target *t, const struct layout_chunk_id *id,
			  struct chunk_meta *out);
/* True while a two-phase update of the chunk is running or prepared: its replicas may
 * already differ from the committed state here, so a strict read must not be served. */
bool stor_chunk_pending(struct stor_target *t, const struct layout_chunk_id *id);

/* ---- scans ------------------------------------------------------------------------------ */

/*
 * Committed metadata of up to limit chunks with ids in [begin, end) (end NULL: no upper
 * bound) in id order, from
 * RocksDB on a worker thread: cb(arg, status, metas, n, more) on the reactor thread, metas
 * valid during the call (sector CRCs not filled). more: the range holds further chunks.
 */
typedef void (*stor_scan_cb)(void *arg, int status, const struct chunk_meta *metas, unsigned n,
			     bool more);
SLUICE_MUST_USE int stor_scan(struct stor_target *t, const struct layout_chunk_id *begin,
			      const struct layout_chunk_id *end, unsigned limit, stor_scan_cb cb,
			      void *arg);

/* ---- space, counters, faults ---------------------------------------------------------- */

struct stor_space {
	uint64_t capacity_bytes;
	uint64_t used_bytes;
	uint64_t allocated_bytes;
	uint64_t free_bytes;
	uint64_t chunks;
};
/* Space of the target (one statvfs; reactor thread). */
void stor_target_space(struct stor_target *t, struct stor_space *out);

/* Counters kept for the metrics endpoint (monotonic). */
struct stor_counters {
	uint64_t writes, truncates, removes, reads;
	uint64_t bytes_written, bytes_read;
	uint64_t commits, commit_batches;
	uint64_t checksum_errors, io_errors, enospc;
	uint64_t grows;
	/* disk I/O submissions on a registered (fixed) buffer of the reactor's ring, and on
	 * other memory (plain read/write); a resubmitted short transfer counts again */
	uint64_t ios_fixed, ios_plain;
};
void stor_target_counters(const struct stor_target *t, struct stor_counters *out);

/* Tests: fail the next count disk I/Os with EIO (0 = all from now on). */
void stor_target_inject_eio(struct stor_target *t, uint32_t count);

#endif
