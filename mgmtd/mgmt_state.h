/*
 * mgmt_state.h - mgmtd's cluster map and every operation on it (DESIGN.md section 5).
 *
 * The map is nodes, targets, chains and chain tables, each held as its protobuf-c message
 * (so routing replies reference them without copying and persistence packs them as they
 * are), plus a routing version that increases once per operation that changes anything.
 * Every changed entity records that version in updated_version, which is what routing
 * deltas are cut by, and is marked dirty until mgmt_state_collect() packs it into a batch.
 *
 * Operations validate their whole input before changing anything: a refused request leaves
 * the map (and the version) exactly as it was. Error details go into err (for the log).
 *
 * Time is passed in (now_ns, from env_now_ns) so the state machine is deterministic.
 * Not thread-safe: mgmtd calls it from its one reactor thread.
 */
#ifndef SLUICE_MGMTD_MGMT_STATE_H
#define SLUICE_MGMTD_MGMT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/kv.h"
#include "mgmt.pb-c.h"

struct mgmt_state;

struct mgmt_err {
	char msg[256];
};

SLUICE_MUST_USE int mgmt_state_create(uint32_t heartbeat_ms, uint32_t lease_ms,
				      struct mgmt_state **out);
void mgmt_state_destroy(struct mgmt_state *st);

/* Load a persisted map (startup). Every live node gets a fresh lease from now_ns. */
SLUICE_MUST_USE int mgmt_state_load(struct mgmt_state *st, struct kv *kv, uint64_t now_ns,
				    struct mgmt_err *err);

/* Pack every dirty entity and the counters into b; clears the dirty marks. Returns the
 * number of entities packed (0: nothing changed since the last collect). */
SLUICE_MUST_USE int mgmt_state_collect(struct mgmt_state *st, struct kv_batch *b);

uint64_t mgmt_state_version(const struct mgmt_state *st);

/* REGISTER. resp->target_ids is malloc'd (free with mgmt_register_resp_release). */
SLUICE_MUST_USE int mgmt_register(struct mgmt_state *st, const Sluice__RegisterReq *req,
				  uint64_t now_ns, Sluice__RegisterResp *resp,
				  struct mgmt_err *err);
void mgmt_register_resp_release(Sluice__RegisterResp *resp);

SLUICE_MUST_USE int mgmt_heartbeat(struct mgmt_state *st, const Sluice__HeartbeatReq *req,
				   uint64_t now_ns, Sluice__HeartbeatResp *resp,
				   struct mgmt_err *err);

/*
 * Fail nodes whose lease ran out; returns how many. Expiry is decided here, by mgmtd's
 * periodic check, not by the heartbeat path: a heartbeat that arrives late but before the
 * check that would fail its node still renews the lease. That is safe - no chain changed -
 * and the node had fenced itself at lease/2 meanwhile.
 */
unsigned mgmt_expire(struct mgmt_state *st, uint64_t now_ns);

/* Give every live node a fresh lease from now_ns: for when mgmtd itself was stalled (a
 * frozen process must not fail the whole cluster on waking up). */
void mgmt_refresh_leases(struct mgmt_state *st, uint64_t now_ns);

/* resp->chain_ids is malloc'd (free with mgmt_set_chain_table_resp_release). */
SLUICE_MUST_USE int mgmt_set_chain_table(struct mgmt_state *st, const Sluice__SetChainTableReq *req,
					 Sluice__SetChainTableResp *resp, struct mgmt_err *err);
void mgmt_set_chain_table_resp_release(Sluice__SetChainTableResp *resp);

SLUICE_MUST_USE int mgmt_target_offline(struct mgmt_state *st, uint64_t target_id,
					struct mgmt_err *err);
SLUICE_MUST_USE int mgmt_chain_set_order(struct mgmt_state *st, const Sluice__ChainSetOrderReq *req,
					 struct mgmt_err *err);

/*
 * Fill rt with the whole map (since_version 0 or older than anything) or the entities
 * changed after since_version. rt references the map's messages: pack it before the next
 * operation, then mgmt_routing_release(rt) (frees only the pointer arrays).
 */
SLUICE_MUST_USE int mgmt_routing(struct mgmt_state *st, uint64_t since_version,
				 Sluice__RoutingTable *rt);
void mgmt_routing_release(Sluice__RoutingTable *rt);

#endif
