/*
 * daemon.h - the storage daemon's state shared by main.c (startup, mgmtd, shutdown) and
 * service.c (the storage RPC handlers). Private to storage/.
 */
#ifndef SLUICE_STORAGE_DAEMON_H
#define SLUICE_STORAGE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/limits.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"
#include "proto/storage_ops.h"
#include "storage/target.h"

struct stor_rt;
struct craq;
struct resync;

/* A target's place in its chain's resync (storage/resync.c). */
struct stor_sync_state {
	/* The target holds everything its chain has: reported up to date to mgmtd. False
	 * from start (a restarted target always resyncs), on a fence, and whenever the
	 * routing shows it out of service; true when the routing shows it serving under our
	 * current registration, or when its predecessor finished resyncing it. */
	bool synced;
	/* Progress of the resync into it, from the predecessor's last SYNC_STATUS. */
	uint64_t chunks_done, chunks_total, bytes_done, bytes_total;
};

struct stor_daemon {
	struct stor_target *targets[SLUICE_STOR_TARGETS_MAX];
	uint64_t target_ids[SLUICE_STOR_TARGETS_MAX]; /* 0 until mgmtd assigned one */
	unsigned ntargets;
	bool standalone;      /* no mgmtd: ids are 1..n and the node never fences */
	bool fenced;	      /* lease lost: writes refused */
	bool fault_injection; /* debug.fault_injection */
	bool stopping;
	struct stor_rt *routing;     /* mgmtd's routing table (storage/routing.h); NULL: none yet */
	struct craq *craq;	     /* chain replication state (storage/craq.h) */
	struct rpc_client *peer_rpc; /* to other storage daemons: forwarded updates */
	uint64_t incarnation;	     /* of our registration with mgmtd (0: none yet) */
	uint64_t resync_bytes_per_s; /* storage.resync_bytes_per_s: 0 = no cap */
	struct stor_sync_state sync[SLUICE_STOR_TARGETS_MAX]; /* by target index */
	struct resync *resyncs[SLUICE_STOR_TARGETS_MAX];      /* from target i to its successor */
	/* Starts a failed resync of target i over (resync.c): a timer of the daemon, not of
	 * the failed pass, so nothing the pass still has in flight can hold it up. */
	struct stor_resync_retry {
		struct reactor_timer timer;
		struct stor_daemon *d;
		unsigned ti;
	} resync_retry[SLUICE_STOR_TARGETS_MAX];
};

/* The open target with id (NULL: unknown, or it did not open). */
struct stor_target *stor_daemon_target(const struct stor_daemon *d, uint64_t id);
/* The wire form of a chunk's metadata (with its block position for listings). */
void stor_meta_to_msg(const struct chunk_meta *m, bool with_pos, Sluice__ChunkMeta *out);

/* Handlers of the storage service; ctx is the struct stor_daemon. */
extern const struct rpc_service_handlers storage_service_handlers;

#endif
