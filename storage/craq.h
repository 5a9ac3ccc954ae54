/*
 * craq.h - chain replication of chunk updates (CRAQ, DESIGN.md section 6) in the storage
 * daemon. Private to storage/; the handlers in service.c hand every update that names a
 * chain (chain_id != 0) to craq_update.
 *
 * Threads: the daemon's reactor thread only.
 */
#ifndef SLUICE_STORAGE_CRAQ_H
#define SLUICE_STORAGE_CRAQ_H

#include <stdint.h>

#include "common/assert.h"
#include "proto/storage_ops.h"
#include "storage/target.h"

struct stor_daemon;
struct rpc_req;

/* The replicated-update state of a daemon: the request-tag table. */
struct craq;

SLUICE_MUST_USE int craq_create(struct craq **out);
/* No update may be in flight (the daemon stops the server and waits for idle first). */
void craq_destroy(struct craq *c);

/* The fields of a write, truncate or remove request that matter here, from any of them. */
struct craq_req {
	enum stor_update_kind kind;
	uint64_t target_id;
	struct layout_chunk_id id;
	uint32_t chunk_size, offset, length, data_crc;
	uint32_t chain_id;
	uint64_t chain_ver;
	const Sluice__UpdateTag *tag; /* NULL: untagged */
	bool forwarded, full_replace;
	uint64_t update_ver;
};

/*
 * Apply an update that names a chain: on the head (from a client) or on a later member
 * (forwarded by its predecessor), then forward it down the chain and reply once the rest of
 * the chain has committed. Replies to req in every case (write data is the request bulk).
 */
void craq_update(struct stor_daemon *d, struct rpc_req *req, const struct craq_req *r);

/*
 * For resync.c: the replicated updates of our target index ti get rising numbers as they
 * start. craq_next_seq is the number the next one will get; craq_oldest_inflight the
 * smallest still in flight (UINT64_MAX: none). Every update that ends calls
 * resync_update_ended.
 */
uint64_t craq_next_seq(const struct craq *c, unsigned ti);
uint64_t craq_oldest_inflight(const struct craq *c, unsigned ti);

/*
 * For resync.c: the replicated updates of our target index ti get rising numbers as they
 * start. craq_next_seq is the number the next one will get; craq_oldest_inflight the
 * smallest still in flight (UINT64_MAX: none). Every update that ends calls
 * resync_update_ended.
 */
uint64_t craq_next_seq(const struct craq *c, unsigned ti);
uint64_t craq_oldest_inflight(const struct craq *c, unsigned ti);

#endif
