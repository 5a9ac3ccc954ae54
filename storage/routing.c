/*
 * routing.c - snapshots of mgmtd's routing table for the storage daemon (routing.h).
 *
 * Chains are kept sorted by id and a (target id -> chain, position) index sorted by target
 * id, both searched with bsearch: a daemon looks up the chain of a target on every update.
 * Nodes are only needed while building (for the members' addresses).
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

static int cmp_chain(const void *a, const void *b)
{
	uint32_t x = ((const struct stor_rt_chain *)a)->id,
		 y = ((const struct stor_rt_chain *)b)->id;

	return x < y ? -1 : x > y;
}

static int cmp_slot(const void *a, const void *b)
{
	uint64_t x = ((const struct target_slot *)a)->target_id;
	uint64_t y = ((const struct target_slot *)b)->target_id;

	return x < y ? -1 : x > y;
}

static const Sluice__TargetInfo *find_target(const Sluice__RoutingTable *rt, uint64_t id)
{
	for (size_t i = 0; i < rt->n_targets; i++)
		if (rt->targets[i]->id == id)
			return rt->targets[i];
	return NULL;
}

static const Sluice__NodeInfo *find_node(const Sluice__RoutingTable *rt, uint32_t id)
{
	for (size_t i = 0; i < rt->n_nodes; i++)
		if (rt->nodes[i]->id == id)
			return rt->nodes[i];
	return NULL;
}

/* Fill chain c from its message; -EBADMSG with why on a member that does not resolve. */
static int fill_chain(const Sluice__RoutingTable *rt, const Sluice__ChainInfo *ci,
		      struct stor_rt_chain *c, char *why, size_t why_len)
{
	c->id = ci->id;
	c->version = ci->version;
	c->n = (unsigned)ci->n_targets;
	for (size_t k = 0; k < ci->n_targets; k++) {
		const Sluice__TargetInfo *t = find_target(rt, ci->targets[k]);
		const Sluice__NodeInfo *node;

		if (t == NULL) {
			snprintf(why, why_len, "chain %u names unknown target %" PRIu64, ci->id,
				 ci->targets[k]);
			return -EBADMSG;
		}
		node = find_node(rt, t->node_id);
		c->m[k] = (struct stor_rt_member){
			.target_id = t->id, .node_id = t->node_id, .state = t->state};
		if (node != NULL && node->n_addrs > 0)
			snprintf(c->m[k].addr, sizeof(c->m[k].addr), "%s", node->addrs[0]);
		if (node != NULL)
			c->m[k].node_incarnation = node->incarnation;
	}
	return 0;
}

int stor_rt_build(const Sluice__RoutingTable *rt, struct stor_rt **out, char *why, size_t why_len)
{
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
		goto fail;
	rc = -EBADMSG;
	for (size_t i = 0; i < rt->n_chains; i++) {
		const Sluice__ChainInfo *ci = rt->chains[i];

		if (ci->n_targets == 0 || ci->n_targets > SLUICE_CHAIN_LEN_MAX) {
			snprintf(why, why_len, "chain %u has %zu members", ci->id, ci->n_targets);
			goto fail;
		}
		if (fill_chain(rt, ci, &r->chains[i], why, why_len) != 0)
			goto fail;
	}
	r->nchains = (unsigned)rt->n_chains;
	qsort(r->chains, r->nchains, sizeof(*r->chains), cmp_chain);
	for (unsigned i = 0; i < r->nchains; i++) {
		if (i > 0 && r->chains[i].id == r->chains[i - 1].id) {
			snprintf(why, why_len, "chain %u listed twice", r->chains[i].id);
			goto fail;
		}
		for (unsigned k = 0; k < r->chains[i].n; k++)
			r->slots[r->nslots++] = (struct target_slot){
				.target_id = r->chains[i].m[k].target_id, .chain = i, .pos = k};
	}
	qsort(r->slots, r->nslots, sizeof(*r->slots), cmp_slot);
	for (unsigned i = 1; i < r->nslots; i++) {
		if (r->slots[i].target_id == r->slots[i - 1].target_id) {
			snprintf(why, why_len,
				 "target %" PRIu64 " is in two chains (or twice in one)",
				 r->slots[i].target_id);
			goto fail;
		}
	}
	*out = r;
	return 0;
fail:
	stor_rt_free(r);
	return rc;
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
	unsigned i = 0;

	while (i < c->n && c->m[i].target_id != target_id)
		i++;
	for (i++; i < c->n; i++)
		if (stor_rt_writable(&c->m[i]))
			return &c->m[i];
	return NULL;
}
