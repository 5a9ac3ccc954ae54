/*
 * routing.h - the storage daemon's view of mgmtd's routing table: for every chain, its
 * version and members (head .. tail, then the members not serving) with their states and
 * addresses, looked up by chain id or by target id. Private to storage/.
 *
 * A snapshot is immutable: the daemon builds a new one from each full table it fetches
 * (main.c) and swaps it in on the reactor thread, so a pointer taken during one callback
 * stays valid for that callback.
 */
#ifndef SLUICE_STORAGE_ROUTING_H
#define SLUICE_STORAGE_ROUTING_H

#include <stdbool.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/limits.h"
#include "proto/mgmt_ops.h"

struct stor_rt;

struct stor_rt_member {
	uint64_t target_id;
	uint32_t node_id;
	Sluice__TargetState state;
	uint64_t node_incarnation;	/* of the node's registration the table reflects */
	char addr[SLUICE_NET_ADDR_MAX]; /* the node's first address; "" if unknown */
};

struct stor_rt_chain {
	uint32_t id;
	uint64_t version;
	unsigned n;
	struct stor_rt_member m[SLUICE_CHAIN_LEN_MAX]; /* mgmtd's order: head .. tail, others */
};

/*
 * Build a snapshot of a full routing table (GET_ROUTING with since_version 0). Everything
 * needed is copied: rt may be freed as soon as this returns. On success *out is the
 * caller's, freed with stor_rt_free. Errors (*out untouched, why says what; why_len may
 * be 0):
 *   -EBADMSG  a table that is not full, or contradicts itself: an id listed twice (node,
 *             target, chain, or a target twice in chains), target id 0, chain id 0, a chain
 *             of 0 or more than SLUICE_CHAIN_LEN_MAX members, a chain naming an unknown
 *             target or one whose chain_id is another, a target claiming a chain that does
 *             not list it, a node address of SLUICE_NET_ADDR_MAX bytes or more.
 *   -ENOMEM
 * A member whose node is missing from the table gets addr "" (forwarding to it fails).
 * Pure: any thread; the daemon builds and swaps snapshots on its reactor thread.
 */
SLUICE_MUST_USE int stor_rt_build(const Sluice__RoutingTable *rt, struct stor_rt **out, char *why,
				  size_t why_len);
void stor_rt_free(struct stor_rt *rt); /* NULL ok */
uint64_t stor_rt_version(const struct stor_rt *rt);
unsigned stor_rt_nchains(const struct stor_rt *rt);

/* Lookups, O(log n). Returned pointers live as long as the snapshot. */

/* The chain with this id, or NULL. */
const struct stor_rt_chain *stor_rt_chain(const struct stor_rt *rt, uint32_t chain_id);
/* The chain holding target_id (and its index in m, if pos), or NULL: in no chain. */
const struct stor_rt_chain *stor_rt_chain_of_target(const struct stor_rt *rt, uint64_t target_id,
						    unsigned *pos);

/* Chain roles, from the members' states (not their positions alone), so they hold for any
 * order; mgmtd's order (serving, then syncing, then the rest) makes them the usual ones. */

/* target_id's entry in c, or NULL. */
const struct stor_rt_member *stor_rt_member(const struct stor_rt_chain *c, uint64_t target_id);
/* Serving or syncing: the members updates go to. */
bool stor_rt_writable(const struct stor_rt_member *m);
/* target_id is the chain's first serving member: clients send it their updates. */
bool stor_rt_is_head(const struct stor_rt_chain *c, uint64_t target_id);
/* The member after target_id that updates are forwarded to (the next writable one in
 * order), or NULL: target_id is the tail (or not in c). */
const struct stor_rt_member *stor_rt_successor(const struct stor_rt_chain *c, uint64_t target_id);
/* The member that forwards updates to target_id - the one whose successor it is: the
 * previous writable member (for a serving member the previous serving one, for the
 * syncing member the tail). NULL: target_id is the head, not writable, or not in c. */
const struct stor_rt_member *stor_rt_predecessor(const struct stor_rt_chain *c, uint64_t target_id);

#endif
