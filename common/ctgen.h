/*
 * ctgen.h - chain table generation (DESIGN.md section 4: `sluice chain-table gen`).
 *
 * Input: storage nodes, each with an id and a list of target ids, and a replication factor
 * R. Output: chains, each an ordered list (head first) of R targets on R distinct nodes,
 * every target in at most one chain. The goals, in priority order:
 *
 *   (a) the R members of a chain are on R distinct nodes (always holds);
 *   (b) as many chains as the targets allow, each node in as many chains as it has targets.
 *       All targets are used exactly when the total is a multiple of R and no node has more
 *       than total / R targets; otherwise the fewest possible targets are left over, taken
 *       from the nodes with the most targets, and reported;
 *   (c) pair balance: the number of chains two nodes share is as even as possible, so that
 *       when a node fails, its chains' surviving members (who take over its reads) spread
 *       evenly over the other nodes;
 *   (d) each node is head of about the same number of chains; then, likewise, position 1
 *       (the head after a failover), 2, ... up to R-2.
 *
 * Method: a greedy build (forced nodes first, then the nodes sharing fewest chains with
 * the members so far), then a local search that swaps members between chains to minimise
 * the sum over node pairs of (chains shared)^2, repeated from `restarts` randomised starts;
 * the best wins, and the search stops early at the lower bound of that sum. Where a balanced
 * incomplete block design exists, reaching the bound means finding one (every pair shares
 * the same number of chains); it did so on every case tried: 7 nodes x 3 targets R=3 (the
 * Fano plane), 9 x 4 and 13 x 6 with R=3, 16 x 5 with R=4. Positions are then balanced by
 * augmenting paths (exact: in the end no node can pass a head to one with two fewer).
 * Randomness is the splitmix64 of common/layout.h seeded by spec->seed: the same input and
 * seed give the same table on every machine. Work is bounded: at most restarts *
 * CTGEN_MOVES_MAX swap attempts plus polynomial bookkeeping (see ctgen.c for timings).
 *
 * Memory: ctgen_generate makes exactly two malloc calls: scratch space (4 * nnodes^2 bytes
 * plus 20 bytes per target, at most ~60 MiB at the limits below), freed before it returns,
 * and the result (12 bytes per target, 24 per node), one block freed with ctgen_table_free.
 *
 * Pure apart from that: no logging, no global state; any thread, concurrent calls are fine.
 */
#ifndef SLUICE_COMMON_CTGEN_H
#define SLUICE_COMMON_CTGEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"

/* Input bounds. Belong in common/limits.h once its owner adds them; here meanwhile. */
#define CTGEN_NODES_MAX	       2048u
#define CTGEN_NODE_TARGETS_MAX 1024u
#define CTGEN_RESTARTS_DEFAULT 8u
#define CTGEN_RESTARTS_MAX     64u
#define CTGEN_MOVES_MAX	       (2u * 1000u * 1000u) /* swap attempts per restart, at most */

struct ctgen_node {
	uint32_t node_id;
	uint32_t ntargets;	    /* 0 allowed: the node takes no part */
	const uint64_t *target_ids; /* ntargets ids, owned by the caller */
};

struct ctgen_spec {
	const struct ctgen_node *nodes; /* owned by the caller, read only during the call */
	uint32_t nnodes;		/* 1..CTGEN_NODES_MAX */
	uint32_t r;			/* replication factor, 1..SLUICE_CHAIN_LEN_MAX */
	uint64_t seed;			/* same seed, same table */
	uint32_t restarts;		/* 0 means CTGEN_RESTARTS_DEFAULT; <= CTGEN_RESTARTS_MAX */
};

/* What one node got. "Peers" are the other members of the node's chains. */
struct ctgen_node_stats {
	uint32_t node_id;
	uint32_t targets;    /* given */
	uint32_t chains;     /* chains it is in (targets used) */
	uint32_t heads;	     /* chains it heads */
	uint32_t peer_max;   /* most chains shared with any single other node */
	uint32_t peer_ideal; /* ceil(chains * (r - 1) / (nodes - 1)), nodes = nodes in chains */
};

/* Summary over the whole table. Pairs and peers only count nodes that are in chains. */
struct ctgen_balance {
	uint32_t r;
	uint32_t chains;
	uint32_t nodes;			 /* nodes in at least one chain */
	uint32_t leftover;		 /* targets in no chain */
	uint32_t chains_min, chains_max; /* chains per node, over nodes with targets */
	uint32_t pair_min, pair_max;	 /* chains shared per node pair; 0, 0 when r == 1 */
	uint32_t peer_max;		 /* max of node_stats.peer_max */
	uint32_t peer_ideal;		 /* max of node_stats.peer_ideal */
	uint32_t peer_excess;		 /* max of (peer_max - peer_ideal), 0 if none above */
	uint32_t head_min, head_max;	 /* chains headed per node in chains */
	uint64_t pair_cost;		 /* sum over node pairs of shared^2 (minimised) */
	uint64_t pair_cost_bound;	 /* a lower bound of pair_cost (reached means ideal) */
};

/* The generated table: one malloc block, free with ctgen_table_free. */
struct ctgen_table {
	uint32_t r;
	uint32_t nchains;
	uint32_t nnodes;
	uint32_t nleftover;
	uint64_t *targets;		     /* chain c is targets[c*r .. c*r+r-1], head first */
	uint32_t *nodes;		     /* node id of each entry of targets */
	uint64_t *leftover;		     /* nleftover targets in no chain, in input order */
	struct ctgen_node_stats *node_stats; /* nnodes entries, in input order */
	struct ctgen_balance balance;
};

/*
 * Generate a chain table. On success returns 0 and sets *out (the caller frees it with
 * ctgen_table_free). Errors, with a one-line reason in msg (if msg_len > 0) and *out
 * untouched:
 *   -EINVAL  no nodes or too many, r out of 1..SLUICE_CHAIN_LEN_MAX, fewer than r nodes with
 *            targets, no targets at all, too many targets on a node, a NULL target list,
 *            duplicate node ids, duplicate target ids (across all nodes), restarts too big;
 *   -ENOMEM.
 * Any thread; spec and its arrays are only read.
 */
SLUICE_MUST_USE int ctgen_generate(const struct ctgen_spec *spec, struct ctgen_table **out,
				   char *msg, size_t msg_len);

void ctgen_table_free(struct ctgen_table *t); /* NULL ok */

/*
 * Print b as a few human-readable lines into buf (always NUL-terminated when len > 0).
 * Returns the length the full text needs, like snprintf.
 */
int ctgen_format_balance(const struct ctgen_balance *b, char *buf, size_t len);

#endif
