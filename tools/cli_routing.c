/*
 * cli_routing.c - fetch mgmtd's routing table for the CLI and look entities up by id.
 *
 * One GET_ROUTING with since_version 0 returns the whole table (nodes, targets, chains,
 * chain tables). The CLI keeps the unpacked response as is and sorts its entity arrays by
 * id in place, which gives stable, readable output order and O(log n) lookups. The table
 * comes from the network: nothing in it is trusted (a chain may name a target that is not
 * listed; callers treat that as offline / unknown rather than asserting).
 *
 * Main thread only.
 */
#include <stdlib.h>

#include "common/err.h"
#include "tools/cli.h"

#define DEFINE_BY_ID_CMP(name, type)                                                   \
	static int name(const void *a, const void *b)                                  \
	{                                                                              \
		const type *x = *(const type *const *)a, *y = *(const type *const *)b; \
		return x->id < y->id ? -1 : x->id > y->id;                             \
	}

DEFINE_BY_ID_CMP(node_cmp, Sluice__NodeInfo)
DEFINE_BY_ID_CMP(target_cmp, Sluice__TargetInfo)
DEFINE_BY_ID_CMP(chain_cmp, Sluice__ChainInfo)
DEFINE_BY_ID_CMP(table_cmp, Sluice__ChainTableInfo)

/* An empty repeated field is a NULL array, which qsort must not be given. */
static void sort_by_id(void *arr, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(arr, n, size, cmp);
}

int cli_routing_fetch(struct cli *c, struct cli_routing *out)
{
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_call_opts opts = {.timeout_ms = c->timeout_ms, .retries = -1};
	struct cli_routing r = {0};
	Sluice__GetRoutingResp *resp;
	int rc;

	rc = cli_connect(c);
	if (rc)
		return rc;
	req.since_version = 0;
	rc = mgmtc_get_routing(cli_rpc_client(c->rpc), c->mgmtd, &req, &opts, &r.res);
	if (rc) {
		cli_fail_res(&r.res, "get routing table from %s", c->mgmtd);
		rpc_result_release(&r.res);
		return rc;
	}
	resp = (Sluice__GetRoutingResp *)(void *)r.res.resp;
	if (!resp || !resp->routing) {
		rc = -SLUICE_EPROTO;
		cli_fail(rc, "get routing table from %s: no table in the reply", c->mgmtd);
		rpc_result_release(&r.res);
		return rc;
	}
	r.rt = resp->routing;
	sort_by_id(r.rt->nodes, r.rt->n_nodes, sizeof(*r.rt->nodes), node_cmp);
	sort_by_id(r.rt->targets, r.rt->n_targets, sizeof(*r.rt->targets), target_cmp);
	sort_by_id(r.rt->chains, r.rt->n_chains, sizeof(*r.rt->chains), chain_cmp);
	sort_by_id(r.rt->tables, r.rt->n_tables, sizeof(*r.rt->tables), table_cmp);
	*out = r;
	return 0;
}

void cli_routing_release(struct cli_routing *r)
{
	if (!r)
		return;
	rpc_result_release(&r->res);
	r->rt = NULL;
}

/* Binary search over an array of message pointers sorted by their id field. */
#define DEFINE_FIND(name, type, idtype, arr, count)              \
	const type *name(const struct cli_routing *r, idtype id) \
	{                                                        \
		size_t lo = 0, hi = r->rt->count;                \
		while (lo < hi) {                                \
			size_t mid = lo + (hi - lo) / 2;         \
			const type *e = r->rt->arr[mid];         \
			if (e->id == id)                         \
				return e;                        \
			if (e->id < id)                          \
				lo = mid + 1;                    \
			else                                     \
				hi = mid;                        \
		}                                                \
		return NULL;                                     \
	}

DEFINE_FIND(cli_routing_node, Sluice__NodeInfo, uint32_t, nodes, n_nodes)
DEFINE_FIND(cli_routing_target, Sluice__TargetInfo, uint64_t, targets, n_targets)
DEFINE_FIND(cli_routing_chain, Sluice__ChainInfo, uint32_t, chains, n_chains)
DEFINE_FIND(cli_routing_table, Sluice__ChainTableInfo, uint32_t, tables, n_tables)

enum cli_chain_health cli_chain_health(const struct cli_routing *r, const Sluice__ChainInfo *ch)
{
	size_t serving = 0;

	for (size_t i = 0; i < ch->n_targets; i++) {
		const Sluice__TargetInfo *t = cli_routing_target(r, ch->targets[i]);

		if (t && t->state == SLUICE__TARGET_STATE__TS_SERVING)
			serving++;
	}
	if (serving == 0)
		return CLI_CHAIN_OFFLINE;
	return serving == ch->n_targets ? CLI_CHAIN_HEALTHY : CLI_CHAIN_DEGRADED;
}

const char *cli_target_addr(const struct cli_routing *r, uint64_t id, const Sluice__TargetInfo **t,
			    const Sluice__NodeInfo **n, const char **why)
{
	*t = cli_routing_target(r, id);
	*n = *t ? cli_routing_node(r, (*t)->node_id) : NULL;
	if (!*t)
		*why = "not in the routing table";
	else if (!*n)
		*why = "its node is not in the routing table";
	else if ((*n)->n_addrs == 0 || !(*n)->addrs[0][0])
		*why = "its node has no address";
	else
		return (*n)->addrs[0];
	return NULL;
}
