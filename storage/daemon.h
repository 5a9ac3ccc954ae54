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
#include "storage/target.h"

struct stor_daemon {
	struct stor_target *targets[SLUICE_STOR_TARGETS_MAX];
	uint64_t target_ids[SLUICE_STOR_TARGETS_MAX]; /* 0 until mgmtd assigned one */
	unsigned ntargets;
	bool standalone;      /* no mgmtd: ids are 1..n and the node never fences */
	bool fenced;	      /* lease lost: writes refused */
	bool fault_injection; /* debug.fault_injection */
	bool stopping;
};

/* Handlers of the storage service; ctx is the struct stor_daemon. */
extern const struct rpc_service_handlers storage_service_handlers;

#endif
