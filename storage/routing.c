/*
 * routing.c - snapshots of mgmtd's routing table for the storage daemon (routing.h).
 *
 * Chains are kept sorted by id and a (target id -> chain, position) index sorted by target
 * id, both searched with bsearch: a daemon looks up the chain of a target on every update.
 * Nodes and targets are only needed while building (for the members' states and
 * addresses): they are indexed in temporary sorted arrays, so a table of thousands of
 * chains builds in O(n log n) on the reactor thread, not O(n^2).
 *
 * A table is checked against mgmtd's invariants before it is used (every id once, chains
 * of 1 to SLUICE_CHAIN_LEN_MAX distinct members that exist and say they belong to that
 * chain, addresses that fit): one that breaks them came from a bug or a corrupt reply, and
 * forwarding updates along it could lose them. The order of members is not checked - the
 * helpers below go by state, not by position alone.
 *
 * Pure code: no I/O, no logging, no globals; any thread may use a snapshot it owns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/routing.h"

struct target_slot {
	uint64_t target_id;
	uint32_t chain; /* index into chains */
	uint32_t pos;	/* index into that chain's members */
};

struct stor_rt {
	uint64_t version;
	struct stor_rt_chain *chains; /* sorted by id */
	unsigned nchains;
	struct target_slot *slots; /* sorted by target id */
	unsigned nslots;
};

/* The table's targets and nodes sorted by id, while building. */
struct build_index {
	const Sluice__TargetInfo **targets;
	size_t ntargets;
	const Sluice__NodeInfo **nodes;
	size_t nnodes;
};

static int cmp_u64(uint64_t x, uint64_t y)
{
	return x < y ? -1 : x > y;
}

static int cmp_chain(const void *a, const void *b)
{
	return cmp_u64(((const struct stor_rt_chain *)a)->id,
		       ((const struct stor_rt_chain *)b)->id);
}

static int cmp_slot(const void *a, const void *b)
{
	return cmp_u64(((const struct target_slot *)a)->target_id,
		       ((const struct target_slot *)b)->target_id);
}

static int cmp_target(const void *a, const void *b)
{
	return cmp_u64((*(const Sluice__TargetInfo *const *)a)->id,
		       (*(const Sluice__TargetInfo *const *)b)->id);
}

static int cmp_node(const void *a, const void *b)
{
	return cmp_u64((*(const Sluice__NodeInfo *const *)a)->id,
		       (*(const Sluice__NodeInfo *const *)b)->id);
}

/* Sort the table's targets and nodes into ix; -EBADMSG with why on an id listed twice. */
static int index_table(const Sluice__RoutingTable *rt, struct build_index *ix, char *why,
		       size_t why_len)
{
	ix->targets = malloc((rt->n_targets ? rt->n_targets : 1) * sizeof(*ix->targets));
	ix->nodes = malloc((rt->n_nodes ? rt->n_nodes : 1) * sizeof(*ix->nodes));
	if (ix->targets == NULL || ix->nodes == NULL)
		return -ENOMEM;
	ix->ntargets = rt->n_targets;
	ix->nnodes = rt->n_nodes;
	for (size_t i = 0; i < rt->n_targets; i++)
		ix->targets[i] = rt->targets[i];
	for (size_t i = 0; i < rt->n_nodes; i++)
		ix->nodes[i] = rt->nodes[i];
	qsort(ix->targets, ix->ntargets, sizeof(*ix->targets), cmp_target);
	qsort(ix->nodes, ix->nnodes, sizeof(*ix->nodes), cmp_node);
	for (size_t i = 0; i < ix->ntargets; i++) {
		if (ix->targets[i]->id == 0 ||
		    (i > 0 && ix->targets[i]->id == ix->targets[i - 1]->id)) {
			snprintf(why, why_len, "target id %" PRIu64 " is zero or listed twice",
				 ix->targets[i]->id);
			return -EBADMSG;
		}
	}
	for (size_t i = 1; i < ix->nnodes; i++) {
		if (ix->nodes[i]->id == ix->nodes[i - 1]->id) {
			snprintf(why, why_len, "node %u listed twice", ix->nodes[i]->id);
			return -EBADMSG;
		}
	}
	return 0;
}

static const Sluice__TargetInfo *find_target(const struct build_index *ix, uint64_t id)
{
	Sluice__TargetInfo key = {.id = id};
	const Sluice__TargetInfo *kp = &key;
	const Sluice__TargetInfo *const *t =
		bsearch(&kp, ix->targets, ix->ntargets, sizeof(*ix->targets), cmp_target);

	return t ? *t : NULL;
}

static const Sluice__NodeInfo *find_node(const struct build_index *ix, uint32_t id)
{
	Sluice__NodeInfo key = {.id = id};
	const Sluice__NodeInfo *kp = &key;
	const Sluice__NodeInfo *const *n =
		bsearch(&kp, ix->nodes, ix->nnodes, sizeof(*ix->nodes), cmp_node);

	return n ? *n : NULL;
}

/* Fill chain c from its message; -EBADMSG with why on a member that does not resolve. */
static int fill_chain(const struct build_index *ix, const Sluice__ChainInfo *ci,
		      struct stor_rt_chain *c, char *why, size_t why_len)
{
	if (ci->id == 0 || ci->n_targets == 0 || ci->n_targets > SLUICE_CHAIN_LEN_MAX) {
		snprintf(why, why_len, "chain %u has %zu members (1 to %d allowed, id not 0)",
			 ci->id, ci->n_targets, SLUICE_CHAIN_LEN_MAX);
		return -EBADMSG;
	}
	c->id = ci->id;
	c->version = ci->version;
	c->n = (unsigned)ci->n_targets;
	for (size_t k = 0; k < ci->n_targets; k++) {
		const Sluice__TargetInfo *t = find_target(ix, ci->targets[k]);
		const Sluice__NodeInfo *node;

		if (t == NULL || t->chain_id != ci->id) {
			snprintf(why, why_len, "chain %u names %s target %" PRIu64, ci->id,
				 t ? "another chain's" : "unknown", ci->targets[k]);
			return -EBADMSG;
		}
		node = find_node(ix, t->node_id);
		c->m[k] = (struct stor_rt_member){
			.target_id = t->id, .node_id = t->node_id, .state = t->state};
		if (node == NULL)
			continue; /* no address: forwarding to it fails, and is retried */
		c->m[k].node_incarnation = node->incarnation;
		if (node->n_addrs > 0 && strlen(node->addrs[0]) >= sizeof(c->m[k].addr)) {
			snprintf(why, why_len, "node %u has an address of %zu bytes", node->id,
				 strlen(node->addrs[0]));
			return -EBADMSG;
		}
		if (node->n_addrs > 0)
			strcpy(c->m[k].addr, node->addrs[0]); /* length checked above */
	}
	return 0;
}

/* Sort r's chains and index their members; -EBADMSG with why on an id seen twice. */
static int index_chains(struct stor_rt *r, char *why, size_t why_len)
{
	qsort(r->chains, r->nchains, sizeof(*r->chains), cmp_chain);
	for (unsigned i = 0; i < r->nchains; i++) {
		if (i > 0 && r->chains[i].id == r->chains[i - 1].id) {
			snprintf(why, why_len, "chain %u listed twice", r->chains[i].id);
			return -EBADMSG;
		}
		for (unsigned k = 0; k < r->chains[i].n; k++)
			r->slots[r->nslots++] = (struct target_slot){
				.target_id = r->chains[i].m[k].target_id, .chain = i, .pos = k};
	}
	qsort(r->slots, r->nslots, sizeof(*r->slots), cmp_slot);
	for (unsigned i = 1; i < r->nslots; i++) {
		if (r->slots[i].target_id == r->slots[i - 1].target_id) {
			snprintf(why, why_len, "target %" PRIu64 " is twice in chain %u",
				 r->slots[i].target_id, r->chains[r->slots[i].chain].id);
			return -EBADMSG;
		}
	}
	return 0;
}

/* Every target that says it is in a chain is listed by that chain (the members were
 * checked the other way round): -EBADMSG with why if not. */
static int check_claims(const Sluice__RoutingTable *rt, const struct stor_rt *r, char *why,
			size_t why_len)
{
	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if (t->chain_id != 0 && stor_rt_chain_of_target(r, t->id, NULL) == NULL) {
			snprintf(why, why_len, "target %" PRIu64 " says chain %u, which lacks it",
				 t->id, t->chain_id);
			return -EBADMSG;
		}
	}
	return 0;
}

int stor_rt_build(const Sluice__RoutingTable *rt, struct stor_rt **out, char *why, size_t why_len)
{
	struct build_index ix = {0};
	struct stor_rt *r = calloc(1, sizeof(*r));
	size_t nslots = 0;
	int rc = -ENOMEM;

	snprintf(why, why_len, "out of memory");
	if (r == NULL)
		return -ENOMEM;
	r->version = rt->version;
	for (size_t i = 0; i < rt->n_chains; i++)
		nslots += rt->chains[i]->n_targets;
	r->chains = calloc(rt->n_chains ? rt->n_chains : 1, sizeof(*r->chains));
	r->slots = calloc(nslots ? nslots : 1, sizeof(*r->slots));
	if (r->chains == NULL || r->slots == NULL)
		goto out;
	if (!rt->full) {
		snprintf(why, why_len, "not a full table (changes since v%" PRIu64 ")",
			 rt->since_version);
		rc = -EBADMSG;
		goto out;
	}
	rc = index_table(rt, &ix, why, why_len);
	for (size_t i = 0; rc == 0 && i < rt->n_chains; i++)
		rc = fill_chain(&ix, rt->chains[i], &r->chains[i], why, why_len);
	r->nchains = (unsigned)rt->n_chains;
	if (rc == 0)
		rc = index_chains(r, why, why_len);
	if (rc == 0)
		rc = check_claims(rt, r, why, why_len);
out:
	free(ix.targets);
	free(ix.nodes);
	if (rc != 0) {
		stor_rt_free(r);
		return rc;
	}
	snprintf(why, why_len, "%s", "");
	*out = r;
	return 0;
}

void stor_rt_free(struct stor_rt *rt)
{
	if (rt == NULL)
		return;
	free(rt->chains);
	free(rt->slots);
	free(rt);
}

uint64_t stor_rt_version(const struct stor_rt *rt)
{
	return rt->version;
}

unsigned stor_rt_nchains(const struct stor_rt *rt)
{
	return rt->nchains;
}

const struct stor_rt_chain *stor_rt_chain(const struct stor_rt *rt, uint32_t chain_id)
{
	struct stor_rt_chain key = {.id = chain_id};

	return bsearch(&key, rt->chains, rt->nchains, sizeof(*rt->chains), cmp_chain);
}

const struct stor_rt_chain *stor_rt_chain_of_target(const struct stor_rt *rt, uint64_t target_id,
						    unsigned *pos)
{
	struct target_slot key = {.target_id = target_id};
	const struct target_slot *s =
		bsearch(&key, rt->slots, rt->nslots, sizeof(*rt->slots), cmp_slot);

	if (s == NULL)
		return NULL;
	if (pos)
		*pos = s->pos;
	return &rt->chains[s->chain];
}

const struct stor_rt_member *stor_rt_member(const struct stor_rt_chain *c, uint64_t target_id)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->m[i].target_id == target_id)
			return &c->m[i];
	return NULL;
}

bool stor_rt_writable(const struct stor_rt_member *m)
{
	return m->state == SLUICE__TARGET_STATE__TS_SERVING ||
	       m->state == SLUICE__TARGET_STATE__TS_SYNCING;
}

bool stor_rt_is_head(const struct stor_rt_chain *c, uint64_t target_id)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->m[i].state == SLUICE__TARGET_STATE__TS_SERVING)
			return c->m[i].target_id == target_id;
	return false;
}

const struct stor_rt_member *stor_rt_successor(const struct stor_rt_chain *c, uint64_t target_id)
{
	const struct stor_rt_member *me = stor_rt_member(c, target_id);

	if (me == NULL)
		return NULL;
	for (const struct stor_rt_member *m = me + 1; m < c->m + c->n; m++)
		if (stor_rt_writable(m))
			return m;
	return NULL;
}

const struct stor_rt_member *stor_rt_predecessor(const struct stor_rt_chain *c, uint64_t target_id)
{
	const struct stor_rt_member *me = stor_rt_member(c, target_id);

	/* Exactly the member whose successor we are: nothing is forwarded to a member that
	 * is not writable. */
	if (me == NULL || !stor_rt_writable(me))
		return NULL;
	for (const struct stor_rt_member *m = me; m-- > c->m;)
		if (stor_rt_writable(m))
			return m;
	return NULL;
}
