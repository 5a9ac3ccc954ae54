/*
 * chain_rules.h - how a chain's member states and order follow from what its targets report
 * (DESIGN.md section 5; the rules of 3FS's mgmtd).
 *
 * Input: the members in their current order, each with its public state (what the routing
 * table says) and its local state (what its storage node last reported; offline when the
 * node's lease expired). Output: new public states and a new order. The rules:
 *
 *  - A serving member whose target went offline becomes offline - unless it was the last
 *    serving one, in which case it becomes lastsrv (the first in chain order if several
 *    fail in the same step). A lastsrv member stays lastsrv while offline and is the first
 *    to serve again when it returns.
 *  - Any other member that goes offline becomes offline.
 *  - An offline member that comes back becomes waiting: it missed writes and must resync,
 *    whatever it claims.
 *  - At most one member per chain syncs at a time, and only while some member serves (it
 *    is synced from its predecessor): the first waiting member in order becomes syncing.
 *  - A syncing member that reports up-to-date becomes serving.
 *  - Order: serving, syncing, waiting, lastsrv, offline; relative order kept within each
 *    group. So an offline member moves to the end and a syncing one sits right after the
 *    serving tail, where its predecessor forwards writes to it.
 *
 * Pure functions; no allocation; any thread.
 */
#ifndef SLUICE_MGMTD_CHAIN_RULES_H
#define SLUICE_MGMTD_CHAIN_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/mgmt_ops.h"

struct chain_member {
	uint64_t target_id;
	Sluice__TargetState state; /* public */
	Sluice__LocalState local;  /* reported */
};

/* Apply the rules to members[0..n) in place. Returns true if any state or the order
 * changed (the caller then bumps the chain version). n <= SLUICE_CHAIN_LEN_MAX. */
bool chain_rules_apply(struct chain_member *members, unsigned n);

/* Initial public state of a member when a chain is created. */
Sluice__TargetState chain_rules_initial(Sluice__LocalState local);

#endif
