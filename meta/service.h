/*
 * service.h - the meta RPC service of sluice-meta (handlers in service.c, the daemon in
 * main.c). Private to meta/.
 *
 * Handlers run on the reactor thread. Point reads (lookup, getattr, readlink, getxattr,
 * get_layout) are first tried right there with memory-only RocksDB reads; every other call
 * that touches the store (and a point read that would need a file) is handed to the worker
 * pool and answered from the job's done callback, back on the reactor thread. STATFS needs
 * no I/O and is answered at once.
 */
#ifndef SLUICE_META_SERVICE_H
#define SLUICE_META_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/worker.h"
#include "meta/store.h"
#include "proto/meta_ops.h"

struct meta_service {
	struct meta_store *store; /* thread-safe */
	struct worker_pool *pool;
	struct reactor *r;
	uint32_t session_timeout_ms;
	/* Reactor thread only: capacity of the storage targets in the last routing table. */
	uint64_t cap_bytes, used_bytes, routing_version;
	uint32_t ntargets;
	bool stopping; /* reactor thread: no new jobs */
};

#endif
