/*
 * cli_chain.c - the commands that change placement: `chain-table gen|set|show`,
 * `target offline`, `chain set-order`.
 *
 * chain-table gen: fetch the routing table; take the storage targets that are in no chain
 * yet, on the alive storage nodes (or on the nodes given with --nodes, alive or not); let
 * common/ctgen build balanced chains of R targets on R distinct nodes (same seed, same
 * table); print the balance summary and the chains; then, unless --dry-run, send them in
 * one SET_CHAIN_TABLE. With --table naming an existing table the new chains are appended:
 * SET_CHAIN_TABLE sets the whole list, so the request names the table's current chains
 * first, by id with no members ("keep as it is").
 *
 * chain-table set: explicit chains in table order, `--chain T1,T2,T3` for a new chain,
 * `--chain C:` to keep existing chain C as it is (`C:T1,T2,T3` also keeps it; mgmtd checks
 * the members are C's, in any order). Validating the chains (distinct nodes, free targets)
 * is left to mgmtd, which answers -EINVAL, -ENOENT or -EBUSY.
 *
 * Main thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctgen.h"
#include "common/err.h"
#include "common/limits.h"
#include "tools/cli.h"

static struct rpc_call_opts call_opts(const struct cli *c)
{
	struct rpc_call_opts o = {.timeout_ms = c->timeout_ms, .retries = -1};

	return o;
}

/* ---- SET_CHAIN_TABLE ---------------------------------------------------------------------- */

/* One SET_CHAIN_TABLE; prints the outcome (text or JSON members added to j). */
static int send_table(struct cli *c, uint32_t table_id, Sluice__ChainSpec **specs, size_t n,
		      size_t nkept, struct cli_json *j)
{
	Sluice__SetChainTableReq req = SLUICE__SET_CHAIN_TABLE_REQ__INIT;
	struct rpc_call_opts opts = call_opts(c);
	struct rpc_result res = {0};
	Sluice__SetChainTableResp *resp;
	int rc;

	req.table_id = table_id;
	req.chains = specs;
	req.n_chains = n;
	rc = mgmtc_set_chain_table(cli_rpc_client(c->rpc), c->mgmtd, &req, &opts, &res);
	if (rc) {
		if (table_id)
			rc = cli_fail_res(&res, "set chain table %u (%zu %s)", table_id, n,
					  n == 1 ? "chain" : "chains");
		else
			rc = cli_fail_res(&res, "create chain table (%zu %s)", n,
					  n == 1 ? "chain" : "chains");
		rpc_result_release(&res);
		return rc;
	}
	resp = (Sluice__SetChainTableResp *)(void *)res.resp;
	if (j) {
		cli_json_u64(j, "table_id", resp->table_id);
		cli_json_arr_flat(j, "chain_ids");
		for (size_t i = 0; i < resp->n_chain_ids; i++)
			cli_json_u64(j, NULL, resp->chain_ids[i]);
		cli_json_close(j);
		cli_json_u64(j, "routing_version", resp->routing_version);
	} else {
		printf("chain table %u set: %zu chains (%zu new), routing version %" PRIu64 "\n",
		       resp->table_id, n, n - nkept, resp->routing_version);
		if (resp->n_chain_ids > nkept) {
			printf("new chain ids:");
			for (size_t i = nkept; i < resp->n_chain_ids; i++)
				printf(" %u", resp->chain_ids[i]);
			printf("\n");
		}
	}
	rpc_result_release(&res);
	return CLI_EXIT_OK;
}

/* ---- chain-table gen ---------------------------------------------------------------------- */

struct gen_input {
	struct ctgen_node *nodes; /* selected storage nodes with free targets, by id */
	uint32_t nnodes;
	uint64_t *target_ids; /* backing store of nodes[].target_ids */
	size_t ntargets;
};

static void gen_input_free(struct gen_input *in)
{
	free(in->nodes);
	free(in->target_ids);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The candidate node ids, sorted: --nodes (checked to be storage nodes) or alive storage
 * nodes. Returns the count or an exit status < 0 as -(status). */
static int gen_pick_nodes(const struct cli *c, const struct cli_routing *r, uint32_t *ids,
			  unsigned cap)
{
	uint64_t given[CTGEN_NODES_MAX];
	unsigned n = 0;
	int rc;

	if (!c->nodes) {
		for (size_t i = 0; i < r->rt->n_nodes; i++) {
			const Sluice__NodeInfo *ni = r->rt->nodes[i];

			if (!ni->alive || ni->type != SLUICE__NODE_TYPE__NODE_STORAGE)
				continue;
			if (n == cap)
				return -cli_fail(-E2BIG,
						 "chain-table gen: more than %u storage "
						 "nodes; pick some with --nodes",
						 cap);
			ids[n++] = ni->id;
		}
		return (int)n; /* routing nodes are sorted by id already */
	}
	rc = cli_parse_id_list(c->nodes, UINT32_MAX, given, SLUICE_ARRAY_SIZE(given));
	if (rc < 0)
		return -cli_usage(CLI_USAGE_TABLE_GEN,
				  "--nodes: expected a list of node ids, got '%s'", c->nodes);
	for (int i = 0; i < rc; i++) {
		const Sluice__NodeInfo *ni = cli_routing_node(r, (uint32_t)given[i]);

		if (!ni)
			return -cli_fail(-ENOENT, "chain-table gen: node %" PRIu64, given[i]);
		if (ni->type != SLUICE__NODE_TYPE__NODE_STORAGE)
			return -cli_fail(-EINVAL,
					 "chain-table gen: node %" PRIu64 " is %s, not storage",
					 given[i], cli_node_type_name(ni->type));
		ids[n++] = (uint32_t)given[i];
	}
	qsort(ids, n, sizeof(*ids), u32_cmp);
	for (unsigned i = 1; i < n; i++)
		if (ids[i] == ids[i - 1])
			return -cli_usage(CLI_USAGE_TABLE_GEN, "--nodes: node %u listed twice",
					  ids[i]);
	return (int)n;
}

/* Index of target t's node among the picked ids, or -1 if t is not a free target of one. */
static long gen_slot(const Sluice__TargetInfo *t, const uint32_t *ids, size_t n)
{
	const uint32_t *hit;

	if (t->chain_id != 0)
		return -1;
	hit = bsearch(&t->node_id, ids, n, sizeof(*ids), u32_cmp);
	return hit ? hit - ids : -1;
}

/* Group the free targets (chain_id 0) of the picked nodes by node; nodes without any are
 * left out. Returns an exit status (0 ok). */
static int gen_collect(const struct cli *c, const struct cli_routing *r, struct gen_input *in)
{
	static uint32_t ids[CTGEN_NODES_MAX];
	static size_t count[CTGEN_NODES_MAX], fill[CTGEN_NODES_MAX];
	const Sluice__RoutingTable *rt = r->rt;
	size_t n, off = 0;
	long k;
	int rc;

	rc = gen_pick_nodes(c, r, ids, SLUICE_ARRAY_SIZE(ids));
	if (rc < 0)
		return -rc;
	n = (size_t)rc;
	in->nodes = calloc(n + 1, sizeof(*in->nodes));
	in->target_ids = calloc(rt->n_targets + 1, sizeof(*in->target_ids));
	if (!in->nodes || !in->target_ids)
		return cli_fail(-ENOMEM, "chain-table gen");
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < rt->n_targets; i++)
		if ((k = gen_slot(rt->targets[i], ids, n)) >= 0)
			count[k]++;
	for (size_t i = 0; i < n; i++) {
		fill[i] = off;
		if (count[i] == 0)
			continue;
		in->nodes[in->nnodes].node_id = ids[i];
		in->nodes[in->nnodes].ntargets = (uint32_t)count[i];
		in->nodes[in->nnodes].target_ids = in->target_ids + off;
		in->nnodes++;
		off += count[i];
	}
	/* Targets are sorted by id, so each node's slice comes out sorted too. */
	for (size_t i = 0; i < rt->n_targets; i++)
		if ((k = gen_slot(rt->targets[i], ids, n)) >= 0)
			in->target_ids[fill[k]++] = rt->targets[i]->id;
	in->ntargets = off;
	if (in->ntargets == 0)
		return cli_fail(-ENODATA, "chain-table gen: no targets outside chains on the %s",
				c->nodes ? "listed nodes" : "alive storage nodes");
	return CLI_EXIT_OK;
}

static void gen_print_text(const struct cli *c, const struct gen_input *in,
			   const struct ctgen_table *t)
{
	char bal[1024];

	printf("chain-table gen: %u nodes, %zu free targets, replicas %u, seed %" PRIu64 "\n",
	       in->nnodes, in->ntargets, c->replicas, c->seed);
	(void)ctgen_format_balance(&t->balance, bal, sizeof(bal)); /* truncation is harmless */
	fputs(bal, stdout);
	printf("chains (head .. tail, target@node):\n");
	for (uint32_t i = 0; i < t->nchains; i++) {
		printf("  %4u:", i + 1);
		for (uint32_t k = 0; k < t->r; k++)
			printf(" %" PRIu64 "@%u", t->targets[(size_t)i * t->r + k],
			       t->nodes[(size_t)i * t->r + k]);
		printf("\n");
	}
	if (t->nleftover) {
		printf("left over (in no chain):");
		for (uint32_t i = 0; i < t->nleftover; i++)
			printf(" %" PRIu64, t->leftover[i]);
		printf("\n");
	}
}

static void gen_print_json(struct cli_json *j, const struct cli *c, const struct ctgen_table *t)
{
	const struct ctgen_balance *b = &t->balance;

	cli_json_bool(j, "dry_run", c->dry_run);
	cli_json_u64(j, "replicas", c->replicas);
	cli_json_u64(j, "seed", c->seed);
	cli_json_arr(j, "chains");
	for (uint32_t i = 0; i < t->nchains; i++) {
		cli_json_obj(j, NULL);
		cli_json_arr_flat(j, "targets");
		for (uint32_t k = 0; k < t->r; k++)
			cli_json_u64(j, NULL, t->targets[(size_t)i * t->r + k]);
		cli_json_close(j);
		cli_json_arr_flat(j, "nodes");
		for (uint32_t k = 0; k < t->r; k++)
			cli_json_u64(j, NULL, t->nodes[(size_t)i * t->r + k]);
		cli_json_close(j);
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_arr_flat(j, "leftover");
	for (uint32_t i = 0; i < t->nleftover; i++)
		cli_json_u64(j, NULL, t->leftover[i]);
	cli_json_close(j);
	cli_json_obj(j, "balance");
	cli_json_u64(j, "chains", b->chains);
	cli_json_u64(j, "nodes", b->nodes);
	cli_json_u64(j, "leftover", b->leftover);
	cli_json_u64(j, "chains_min", b->chains_min);
	cli_json_u64(j, "chains_max", b->chains_max);
	cli_json_u64(j, "pair_min", b->pair_min);
	cli_json_u64(j, "pair_max", b->pair_max);
	cli_json_u64(j, "peer_max", b->peer_max);
	cli_json_u64(j, "peer_ideal", b->peer_ideal);
	cli_json_u64(j, "peer_excess", b->peer_excess);
	cli_json_u64(j, "head_min", b->head_min);
	cli_json_u64(j, "head_max", b->head_max);
	cli_json_u64(j, "pair_cost", b->pair_cost);
	cli_json_u64(j, "pair_cost_bound", b->pair_cost_bound);
	cli_json_close(j);
}

/* Chain specs: the existing chains of table_id (kept, if it exists), then t's new ones. */
static int gen_send(struct cli *c, const struct cli_routing *r, const struct ctgen_table *t,
		    struct cli_json *j)
{
	const Sluice__ChainTableInfo *old = c->table_id ? cli_routing_table(r, c->table_id) : NULL;
	size_t nkept = old ? old->n_chains : 0, n = nkept + t->nchains;
	Sluice__ChainSpec *specs = calloc(n, sizeof(*specs));
	Sluice__ChainSpec **ptrs = calloc(n, sizeof(*ptrs));
	int rc;

	if (!specs || !ptrs) {
		rc = cli_fail(-ENOMEM, "chain-table gen");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sluice__chain_spec__init(&specs[i]);
		ptrs[i] = &specs[i];
	}
	/* A kept chain is sent with its id and no members: mgmtd leaves it as it is. */
	for (size_t i = 0; i < nkept; i++)
		specs[i].id = old->chains[i];
	for (size_t i = 0; i < t->nchains; i++) {
		specs[nkept + i].targets = t->targets + i * t->r;
		specs[nkept + i].n_targets = t->r;
	}
	if (!j && nkept)
		printf("appending to table %u, which has %zu chains\n", c->table_id, nkept);
	rc = send_table(c, c->table_id, ptrs, n, nkept, j);
out:
	free(ptrs);
	free(specs);
	return rc;
}

int cli_cmd_table_gen(struct cli *c)
{
	struct gen_input in = {0};
	struct ctgen_table *t = NULL;
	struct ctgen_spec spec = {0};
	struct cli_routing r;
	struct cli_json j;
	char msg[256] = "";
	int rc, status;

	if (!(c->opts_seen & CLI_OPT_REPLICAS))
		return cli_usage(CLI_USAGE_TABLE_GEN, "--replicas is required");
	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_ERR;
	status = gen_collect(c, &r, &in);
	if (status)
		goto out;
	spec.nodes = in.nodes;
	spec.nnodes = in.nnodes;
	spec.r = c->replicas;
	spec.seed = c->seed;
	rc = ctgen_generate(&spec, &t, msg, sizeof(msg));
	if (rc) {
		status = cli_fail(rc, "chain-table gen: %s", msg[0] ? msg : "cannot generate");
		goto out;
	}
	if (c->json) {
		cli_json_begin(&j, stdout);
		gen_print_json(&j, c, t);
	} else {
		gen_print_text(c, &in, t);
	}
	if (c->dry_run) {
		if (!c->json)
			printf("dry run: nothing sent to mgmtd\n");
	} else {
		status = gen_send(c, &r, t, c->json ? &j : NULL);
	}
	if (c->json)
		cli_json_end(&j); /* after an error too: the object stays well formed */
out:
	ctgen_table_free(t);
	gen_input_free(&in);
	cli_routing_release(&r);
	return status;
}

/* ---- chain-table set ---------------------------------------------------------------------- */

/* Parse one --chain value, "T1,T2,..." or "C:T1,T2,...", into spec (targets in ids). */
static int parse_chain_arg(const char *arg, Sluice__ChainSpec *spec, uint64_t *ids)
{
	const char *colon = strchr(arg, ':');
	uint64_t id = 0;
	char word[16];
	int n;

	if (colon) {
		size_t len = (size_t)(colon - arg);

		if (len == 0 || len >= sizeof(word))
			return -EINVAL;
		memcpy(word, arg, len);
		word[len] = '\0';
		if (cli_parse_u64(word, 1, UINT32_MAX, &id))
			return -EINVAL;
		arg = colon + 1;
	}
	if (colon && *arg == '\0') {
		n = 0; /* "C:": keep chain C as it is */
	} else {
		n = cli_parse_id_list(arg, UINT64_MAX, ids, SLUICE_CHAIN_LEN_MAX);
		if (n < 0)
			return n;
	}
	spec->id = (uint32_t)id;
	spec->targets = ids;
	spec->n_targets = (size_t)n;
	return 0;
}

int cli_cmd_table_set(struct cli *c)
{
	static Sluice__ChainSpec specs[CLI_CHAINS_ARG_MAX];
	static Sluice__ChainSpec *ptrs[CLI_CHAINS_ARG_MAX];
	static uint64_t ids[CLI_CHAINS_ARG_MAX][SLUICE_CHAIN_LEN_MAX];
	struct cli_json j;
	size_t nkept = 0;
	int rc;

	if (c->nchains == 0)
		return cli_usage(CLI_USAGE_TABLE_SET, "at least one --chain is required");
	for (unsigned i = 0; i < c->nchains; i++) {
		sluice__chain_spec__init(&specs[i]);
		ptrs[i] = &specs[i];
		rc = parse_chain_arg(c->chains[i], &specs[i], ids[i]);
		if (rc == -E2BIG)
			return cli_usage(CLI_USAGE_TABLE_SET, "--chain %s: more than %d targets",
					 c->chains[i], SLUICE_CHAIN_LEN_MAX);
		if (rc)
			return cli_usage(CLI_USAGE_TABLE_SET,
					 "--chain: expected [C:]T1,T2,..., got '%s'", c->chains[i]);
		nkept += specs[i].id != 0;
	}
	if (cli_connect(c))
		return CLI_EXIT_ERR;
	if (!c->json)
		return send_table(c, c->table_id, ptrs, c->nchains, nkept, NULL);
	cli_json_begin(&j, stdout);
	rc = send_table(c, c->table_id, ptrs, c->nchains, nkept, &j);
	cli_json_end(&j);
	return rc;
}

/* ---- chain-table show --------------------------------------------------------------------- */

static void table_text(const struct cli_routing *r, const Sluice__ChainTableInfo *tb)
{
	unsigned h[3] = {0}, unknown = 0;

	for (size_t i = 0; i < tb->n_chains; i++) {
		const Sluice__ChainInfo *ch = cli_routing_chain(r, tb->chains[i]);

		if (ch)
			h[cli_chain_health(r, ch)]++;
		else
			unknown++;
	}
	printf("chain table %u: version %" PRIu64 ", %zu chains (%u healthy, %u degraded, "
	       "%u offline",
	       tb->id, tb->version, tb->n_chains, h[CLI_CHAIN_HEALTHY], h[CLI_CHAIN_DEGRADED],
	       h[CLI_CHAIN_OFFLINE]);
	if (unknown)
		printf(", %u unknown", unknown);
	printf(")\n");
	cli_chain_header();
	for (size_t i = 0; i < tb->n_chains; i++) {
		const Sluice__ChainInfo *ch = cli_routing_chain(r, tb->chains[i]);

		if (ch)
			cli_chain_text(r, ch);
		else
			printf("%-7u (not in the routing table)\n", tb->chains[i]);
	}
}

static void table_json(struct cli_json *j, const struct cli_routing *r,
		       const Sluice__ChainTableInfo *tb)
{
	cli_json_obj(j, NULL);
	cli_json_u64(j, "id", tb->id);
	cli_json_u64(j, "version", tb->version);
	cli_json_arr(j, "chains"); /* in table order: the order layouts index */
	for (size_t i = 0; i < tb->n_chains; i++) {
		const Sluice__ChainInfo *ch = cli_routing_chain(r, tb->chains[i]);

		if (ch) {
			cli_chain_json(j, r, ch);
			continue;
		}
		cli_json_obj(j, NULL);
		cli_json_u64(j, "id", tb->chains[i]);
		cli_json_str(j, "health", "unknown");
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_close(j);
}

int cli_cmd_table_show(struct cli *c)
{
	const Sluice__ChainTableInfo *one = NULL;
	struct cli_routing r;
	struct cli_json j;
	size_t n;

	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_ERR;
	if (c->table_id) {
		one = cli_routing_table(&r, c->table_id);
		if (!one) {
			cli_routing_release(&r);
			return cli_fail(-ENOENT, "chain table %u", c->table_id);
		}
	}
	n = one ? 1 : r.rt->n_tables;
	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_u64(&j, "routing_version", r.rt->version);
		cli_json_arr(&j, "tables");
		for (size_t i = 0; i < n; i++)
			table_json(&j, &r, one ? one : r.rt->tables[i]);
		cli_json_close(&j);
		cli_json_end(&j);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (i)
				printf("\n");
			table_text(&r, one ? one : r.rt->tables[i]);
		}
		if (n == 0)
			printf("no chain tables\n");
	}
	cli_routing_release(&r);
	return CLI_EXIT_OK;
}

/* ---- target offline, chain set-order ------------------------------------------------------ */

static int admin_done(struct cli *c, struct rpc_result *res, const char *what, uint64_t id)
{
	const Sluice__AdminResp *resp = (const Sluice__AdminResp *)(void *)res->resp;
	struct cli_json j;

	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_u64(&j, what, id);
		cli_json_u64(&j, "routing_version", resp->routing_version);
		cli_json_end(&j);
	} else {
		printf("done; routing version %" PRIu64 "\n", resp->routing_version);
	}
	rpc_result_release(res);
	return CLI_EXIT_OK;
}

int cli_cmd_target_offline(struct cli *c)
{
	Sluice__TargetOfflineReq req = SLUICE__TARGET_OFFLINE_REQ__INIT;
	struct rpc_call_opts opts = call_opts(c);
	struct rpc_result res = {0};
	uint64_t id;
	int rc;

	if (cli_parse_u64(c->args[0], 1, UINT64_MAX, &id))
		return cli_usage(CLI_USAGE_TARGET_OFF, "bad target id '%s'", c->args[0]);
	if (cli_connect(c))
		return CLI_EXIT_ERR;
	req.target_id = id;
	rc = mgmtc_target_offline(cli_rpc_client(c->rpc), c->mgmtd, &req, &opts, &res);
	if (rc) {
		rc = cli_fail_res(&res, "target offline %" PRIu64, id);
		rpc_result_release(&res);
		return rc;
	}
	if (!c->json)
		printf("target %" PRIu64 " forced offline: ", id);
	return admin_done(c, &res, "target", id);
}

int cli_cmd_chain_set_order(struct cli *c)
{
	Sluice__ChainSetOrderReq req = SLUICE__CHAIN_SET_ORDER_REQ__INIT;
	struct rpc_call_opts opts = call_opts(c);
	uint64_t ids[SLUICE_CHAIN_LEN_MAX];
	struct rpc_result res = {0};
	uint64_t chain;
	int rc, n;

	if (cli_parse_u64(c->args[0], 1, UINT32_MAX, &chain))
		return cli_usage(CLI_USAGE_CHAIN_ORDER, "bad chain id '%s'", c->args[0]);
	n = cli_parse_id_list(c->args[1], UINT64_MAX, ids, SLUICE_ARRAY_SIZE(ids));
	if (n < 0)
		return cli_usage(CLI_USAGE_CHAIN_ORDER,
				 "expected up to %d target ids separated by commas, got '%s'",
				 SLUICE_CHAIN_LEN_MAX, c->args[1]);
	if (cli_connect(c))
		return CLI_EXIT_ERR;
	req.chain_id = (uint32_t)chain;
	req.targets = ids;
	req.n_targets = (size_t)n;
	rc = mgmtc_chain_set_order(cli_rpc_client(c->rpc), c->mgmtd, &req, &opts, &res);
	if (rc) {
		rc = cli_fail_res(&res, "chain set-order %" PRIu64 " %s", chain, c->args[1]);
		rpc_result_release(&res);
		return rc;
	}
	if (!c->json)
		printf("chain %" PRIu64 " reordered to %s: ", chain, c->args[1]);
	return admin_done(c, &res, "chain", chain);
}
