/*
 * nodeagent.h - the node side of mgmtd (DESIGN.md section 5): registration, persisted ids,
 * heartbeats, the lease and self-fencing. Every storage and meta daemon runs one.
 *
 * The agent lives on one reactor and talks to mgmtd through an rpc_client on that reactor.
 * It registers the node and its targets, keeps the ids mgmtd assigns in
 * <state_dir>/node.ids so a restarted daemon comes back under the same ids, heartbeats every
 * heartbeat_ms with a report per target, and decides when the node is fenced:
 *
 *   - it starts fenced, and stays fenced until a registration and then a heartbeat succeed;
 *   - when no heartbeat has succeeded for lease_ms/2 it fences itself (mgmtd declares the
 *     node failed after lease_ms, so a fenced node has stopped writing long before mgmtd
 *     hands its targets' roles to someone else);
 *   - a heartbeat answered -SLUICE_ESTALE_LEASE (mgmtd already failed the node) fences at
 *     once and registers again, which starts a new incarnation.
 *
 * A fenced daemon must not serve writes. The agent only reports; the daemon acts in its
 * on_fence callback. Routing changes are reported the same way (on_routing) so the daemon
 * can refresh its routing table.
 *
 * Threads: everything here runs on, and every function must be called from, the reactor
 * thread of the rpc_client given to nodeagent_start (callbacks included).
 */
#ifndef SLUICE_CLIENT_NODEAGENT_H
#define SLUICE_CLIENT_NODEAGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/assert.h"
#include "proto/mgmt_ops.h" /* the generated mgmt.pb-c.h lives in each target's build dir */

struct reactor;
struct rpc_client;
struct worker_pool;
struct nodeagent;

/* Until the first registration tells us mgmtd's heartbeat interval, registration is retried
 * this often. */
#define NODEAGENT_DEFAULT_HEARTBEAT_MS 1000u
/* Name of the ids file inside state_dir. */
#define NODEAGENT_IDS_FILE "node.ids"

struct nodeagent_target {
	const char *path; /* identifies the target across restarts; no newline */
	uint64_t capacity_bytes;
};

struct nodeagent_cfg {
	const char *mgmtd_uri;	  /* required */
	Sluice__NodeType type;	  /* required, not NODE_UNKNOWN */
	const char *const *addrs; /* the node's URIs, preferred first; at least one */
	unsigned naddrs;
	const char *hostname;			/* NULL: gethostname() */
	const char *state_dir;			/* required, must exist: holds NODEAGENT_IDS_FILE */
	const struct nodeagent_target *targets; /* may be empty (meta nodes) */
	unsigned ntargets;
	/*
	 * Optional pool for the fsync of the ids file. NULL: written on the reactor thread,
	 * which blocks it for one small write+fsync+rename, and only when mgmtd assigned ids
	 * that differ from the persisted ones (first start, new targets).
	 */
	struct worker_pool *workers;

	/* Callbacks, all optional, all on the reactor thread. They must not call
	 * nodeagent_stop. */

	/* Fill the report of target index (id target_id) for the heartbeat being built: out
	 * arrives with id set, local_state LS_ONLINE, capacity_bytes from the config and the
	 * rest 0. NULL: those defaults are sent. */
	void (*report)(void *arg, uint64_t target_id, unsigned index, Sluice__TargetReport *out);
	/* The fence state changed (the agent starts fenced; only changes are reported). */
	void (*on_fence)(void *arg, bool fenced);
	/* mgmtd's routing version differs from the last one seen (registration or heartbeat
	 * reply); the daemon should refresh its routing table. */
	void (*on_routing)(void *arg, uint64_t version);
	void *arg;
};

/*
 * Load the persisted ids, then start registering (retried every heartbeat interval until
 * it works) and heartbeating. Everything in cfg is copied; c must outlive the agent.
 * Reactor thread of c. Errors: -EINVAL (missing field, bad type, no address, an address or
 * mgmtd_uri that is not a valid URI, a target path empty, duplicated or containing a
 * newline), -ENOENT (state_dir missing), -EBADMSG (the ids file is damaged: the daemon
 * must not guess its identity), -ENOMEM, -EAGAIN (timer heap full), or the errno of
 * reading the ids file.
 */
SLUICE_MUST_USE int nodeagent_start(struct reactor *r, struct rpc_client *c,
				    const struct nodeagent_cfg *cfg, struct nodeagent **out);

/*
 * Stop: no callback runs after this returns and no new RPC is sent. An RPC or an ids write
 * still in flight is canceled or awaited, and the memory is freed when it completes - so
 * keep the reactor (and the rpc client, or destroy it, which completes the call) running
 * until then. Reactor thread. NULL ok.
 */
void nodeagent_stop(struct nodeagent *a);

/* 0 until the first registration succeeded (or the persisted id before that). */
uint32_t nodeagent_node_id(const struct nodeagent *a);
/* Id of target index i (< ntargets), 0 while unknown. */
uint64_t nodeagent_target_id(const struct nodeagent *a, unsigned i);
/* Incarnation of the current registration; 0 while unregistered. */
uint64_t nodeagent_incarnation(const struct nodeagent *a);
bool nodeagent_fenced(const struct nodeagent *a);
/* Last routing version mgmtd reported; 0 before any. */
uint64_t nodeagent_routing_version(const struct nodeagent *a);
/* True between a successful registration and the next need to register again. */
bool nodeagent_registered(const struct nodeagent *a);

#endif
