/*
 * daemon.h - the storage daemon's state shared by main.c (startup, mgmtd, shutdown) and
 * service.c (the storage RPC handlers). Private to storage/.
 */
#ifndef SLUICE_STORAGE_DAEMON_H
#define SLUICE_STORAGE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "common/limits.h"
#include "common/rpc/rpc.h"
#include "proto/storage_ops.h"
#include "storage/target.h"

struct stor_rt;
struct craq;

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
};

/* The open target with id (NULL: unknown, or it did not open). */
struct stor_target *stor_daemon_target(const struct stor_daemon *d, uint64_t id);
/* The wire form of a chunk's metadata (with its block position for listings). */
void stor_meta_to_msg(const struct chunk_meta *m, bool with_pos, Sluice__ChunkMeta *out);

/* Handlers of the storage service; ctx is the struct stor_daemon. */
extern const struct rpc_service_handlers storage_service_handlers;

#endif
