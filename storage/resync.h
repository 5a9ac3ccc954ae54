/*
 * resync.h - bringing a returning chain member up to date (DESIGN.md section 6). Private to
 * storage/.
 *
 * When the routing shows the successor of one of our targets syncing, we (its predecessor)
 * compare our chunk list with its own, page by page, and send it every chunk that is missing
 * or differs (a full replace at our committed version) and remove the ones we do not have,
 * at most SLUICE_STOR_RESYNC_INFLIGHT chunks at a time. Each chunk is held (its lock here)
 * while it is read and sent, so a live update of it - which reaches a syncing member as a
 * full replace anyway - cannot interleave. Then SYNC_STATUS finished tells the target, which
 * reports itself up to date; mgmtd makes it serving. Failures restart the pass after
 * SLUICE_STOR_RESYNC_RETRY_MS; a changed chain version or successor stops it.
 *
 * On the syncing side, the SYNC_STATUS handler (service.c) records progress and, once
 * finished, marks the target synced (daemon.h, struct stor_sync_state).
 *
 * Threads: the daemon's reactor thread.
 */
#ifndef SLUICE_STORAGE_RESYNC_H
#define SLUICE_STORAGE_RESYNC_H

#include <stdbool.h>

struct stor_daemon;

/* The routing changed: update every target's synced flag, start the resyncs our targets
 * owe their successors, stop those that no longer apply. */
void resync_routing_changed(struct stor_daemon *d);
/*
 * A replicated update of our target index ti ended (craq.c): committed or not, and the
 * successor that acked it (0: none). A committed one that did not reach the target being
 * resynced may have changed a chunk the merge already passed: it is sent again before the
 * resync finishes. The resync also waits for every update that started before it to end.
 */
void resync_update_ended(struct stor_daemon *d, unsigned ti, const struct layout_chunk_id *id,
			 bool committed, uint64_t reached);
/* The node lost its lease: no target of ours can claim to be in sync any more. */
void resync_fenced(struct stor_daemon *d);
/* Shutdown: stop every resync; those with calls in flight free themselves when the calls
 * complete (they hold chunk locks, so the targets are not idle before that). */
void resync_stop_all(struct stor_daemon *d);

#endif
