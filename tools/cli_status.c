/*
 * cli_status.c - `sluice status`: one screen that says whether the cluster is healthy, in
 * the spirit of `ceph -s`.
 *
 * Design: fetch the routing table once, reduce it to counts (struct summary: nodes up/down
 * by type, targets by public state, chains by health, space), derive a health verdict and
 * the list of reasons, then print either text or one JSON object from the same summary.
 * Health: HEALTH_ERR when some chain has no serving member (its data is unavailable),
 * HEALTH_WARN when a node is down, a target is not serving or a chain is degraded,
 * HEALTH_OK otherwise. Text mode lists at most CLI_LIST_SHOW_MAX each of the syncing targets
 * (with progress), down nodes and other non-serving targets, then "... and N more"; JSON
 * lists them all (its nonserving_targets includes the syncing ones).
 *
 * Main thread only.
 */
#include <inttypes.h>
#include <string.h>

#include "tools/cli.h"

#define NODE_TYPES    5 /* NodeType values 0..4; anything else counts as unknown (0) */
#define TARGET_STATES 5 /* TargetState values 0..4 */

struct summary {
	unsigned nodes_up[NODE_TYPES], nodes_down[NODE_TYPES];
	unsigned nodes_up_total, nodes_down_total;
	unsigned targets[TARGET_STATES]; /* by public state */
	unsigned targets_unknown_state, targets_unplaced;
	uint64_t used_bytes, capacity_bytes;
	unsigned chains[3]; /* by enum cli_chain_health */
	const char *health;
};

/* Order in which states are shown. */
static const Sluice__TargetState state_order[TARGET_STATES] = {
	SLUICE__TARGET_STATE__TS_SERVING, SLUICE__TARGET_STATE__TS_SYNCING,
	SLUICE__TARGET_STATE__TS_WAITING, SLUICE__TARGET_STATE__TS_LASTSRV,
	SLUICE__TARGET_STATE__TS_OFFLINE,
};

static unsigned node_type_idx(Sluice__NodeType t)
{
	return (unsigned)t < NODE_TYPES ? (unsigned)t : 0;
}

static void summarize(const struct cli_routing *r, struct summary *s)
{
	const Sluice__RoutingTable *rt = r->rt;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < rt->n_nodes; i++) {
		const Sluice__NodeInfo *n = rt->nodes[i];

		if (n->alive) {
			s->nodes_up[node_type_idx(n->type)]++;
			s->nodes_up_total++;
		} else {
			s->nodes_down[node_type_idx(n->type)]++;
			s->nodes_down_total++;
		}
	}
	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if ((unsigned)t->state < TARGET_STATES)
			s->targets[t->state]++;
		else
			s->targets_unknown_state++;
		if (t->chain_id == 0)
			s->targets_unplaced++;
		s->used_bytes += t->used_bytes;
		s->capacity_bytes += t->capacity_bytes;
	}
	for (size_t i = 0; i < rt->n_chains; i++)
		s->chains[cli_chain_health(r, rt->chains[i])]++;
	if (s->chains[CLI_CHAIN_OFFLINE])
		s->health = "HEALTH_ERR";
	else if (s->nodes_down_total || s->chains[CLI_CHAIN_DEGRADED] ||
		 s->targets[SLUICE__TARGET_STATE__TS_SERVING] != rt->n_targets)
		s->health = "HEALTH_WARN";
	else
		s->health = "HEALTH_OK";
}

static const char *plural(unsigned n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* The reasons behind a non-OK verdict, one line each ("2 chains degraded"). */
static void print_checks(const struct summary *s, size_t ntargets)
{
	unsigned nonserving = (unsigned)ntargets - s->targets[SLUICE__TARGET_STATE__TS_SERVING];

	if (s->chains[CLI_CHAIN_OFFLINE])
		printf("             %u %s offline (no serving member)\n",
		       s->chains[CLI_CHAIN_OFFLINE],
		       plural(s->chains[CLI_CHAIN_OFFLINE], "chain", "chains"));
	if (s->chains[CLI_CHAIN_DEGRADED])
		printf("             %u %s degraded\n", s->chains[CLI_CHAIN_DEGRADED],
		       plural(s->chains[CLI_CHAIN_DEGRADED], "chain", "chains"));
	if (s->nodes_down_total)
		printf("             %u %s down\n", s->nodes_down_total,
		       plural(s->nodes_down_total, "node", "nodes"));
	if (nonserving)
		printf("             %u %s not serving\n", nonserving,
		       plural(nonserving, "target", "targets"));
}

static void print_counts(const struct cli *c, const struct cli_routing *r, const struct summary *s)
{
	char used[32], cap[32], pct[16];
	bool first = true;

	printf("  cluster:\n");
	printf("    mgmtd:   %s\n", c->mgmtd);
	printf("    routing: version %" PRIu64 "\n", r->rt->version);
	printf("    health:  %s\n", s->health);
	print_checks(s, r->rt->n_targets);
	printf("\n  nodes:     %u up, %u down\n", s->nodes_up_total, s->nodes_down_total);
	for (unsigned t = 0; t < NODE_TYPES; t++) {
		if (s->nodes_up[t] + s->nodes_down[t] == 0)
			continue;
		printf("    %-8s %u up, %u down\n", cli_node_type_name((Sluice__NodeType)t),
		       s->nodes_up[t], s->nodes_down[t]);
	}
	printf("  targets:   %zu total: ", r->rt->n_targets);
	for (unsigned i = 0; i < TARGET_STATES; i++) {
		printf("%s%u %s", first ? "" : ", ", s->targets[state_order[i]],
		       cli_target_state_name(state_order[i]));
		first = false;
	}
	if (s->targets_unknown_state)
		printf(", %u unknown", s->targets_unknown_state);
	printf("\n");
	if (s->targets_unplaced)
		printf("             %u not in any chain\n", s->targets_unplaced);
	printf("  chains:    %zu total: %u healthy, %u degraded, %u offline\n", r->rt->n_chains,
	       s->chains[CLI_CHAIN_HEALTHY], s->chains[CLI_CHAIN_DEGRADED],
	       s->chains[CLI_CHAIN_OFFLINE]);
	printf("  tables:    %zu chain %s\n", r->rt->n_tables,
	       plural((unsigned)r->rt->n_tables, "table", "tables"));
	printf("  usage:     %s used of %s (%s)\n",
	       cli_fmt_bytes(s->used_bytes, used, sizeof(used)),
	       cli_fmt_bytes(s->capacity_bytes, cap, sizeof(cap)),
	       cli_fmt_pct(s->used_bytes, s->capacity_bytes, pct, sizeof(pct)));
}

static void print_more(unsigned shown, unsigned total)
{
	if (total > shown)
		printf("    ... and %u more\n", total - shown);
}

static void print_syncing(const Sluice__RoutingTable *rt)
{
	unsigned shown = 0, total = 0;
	char pct[16];

	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if (t->state != SLUICE__TARGET_STATE__TS_SYNCING)
			continue;
		if (total++ == 0)
			printf("\n  syncing:\n");
		if (shown == CLI_LIST_SHOW_MAX)
			continue;
		shown++;
		printf("    target %-6" PRIu64 " node %-4u chain %-5u ", t->id, t->node_id,
		       t->chain_id);
		if (t->sync_total)
			printf("%" PRIu64 "/%" PRIu64 " chunks (%s), %" PRIu64 "/%" PRIu64 " MiB\n",
			       t->sync_done, t->sync_total,
			       cli_fmt_pct(t->sync_done, t->sync_total, pct, sizeof(pct)),
			       t->sync_bytes_done >> 20, t->sync_bytes_total >> 20);
		else
			printf("no progress reported yet\n");
	}
	print_more(shown, total);
}

static void print_down_nodes(const Sluice__RoutingTable *rt)
{
	uint64_t now_ms = cli_now_wall_ms();
	unsigned shown = 0, total = 0;
	char age[32];

	for (size_t i = 0; i < rt->n_nodes; i++) {
		const Sluice__NodeInfo *n = rt->nodes[i];

		if (n->alive)
			continue;
		if (total++ == 0)
			printf("\n  down nodes:\n");
		if (shown == CLI_LIST_SHOW_MAX)
			continue;
		shown++;
		printf("    node %-5u %-8s %-16s %s  last heartbeat %s ago\n", n->id,
		       cli_node_type_name(n->type), n->hostname[0] ? n->hostname : "-",
		       n->n_addrs ? n->addrs[0] : "-",
		       cli_fmt_age(n->last_heartbeat_ms, now_ms, age, sizeof(age)));
	}
	print_more(shown, total);
}

/* Targets neither serving nor syncing (those were listed with their progress). */
static void print_not_serving(const Sluice__RoutingTable *rt)
{
	unsigned shown = 0, total = 0;
	char chain[16];

	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if (t->state == SLUICE__TARGET_STATE__TS_SERVING ||
		    t->state == SLUICE__TARGET_STATE__TS_SYNCING)
			continue;
		if (total++ == 0)
			printf("\n  not serving:\n");
		if (shown == CLI_LIST_SHOW_MAX)
			continue;
		shown++;
		snprintf(chain, sizeof(chain), "%u", t->chain_id);
		printf("    target %-6" PRIu64 " node %-4u chain %-5s %-8s local %s\n", t->id,
		       t->node_id, t->chain_id ? chain : "-", cli_target_state_name(t->state),
		       cli_local_state_name(t->local_state));
	}
	print_more(shown, total);
}

static void json_counts(struct cli_json *j, const struct cli_routing *r, const struct summary *s)
{
	cli_json_obj(j, "nodes");
	cli_json_u64(j, "total", r->rt->n_nodes);
	cli_json_u64(j, "up", s->nodes_up_total);
	cli_json_u64(j, "down", s->nodes_down_total);
	cli_json_obj(j, "by_type");
	for (unsigned t = 0; t < NODE_TYPES; t++) {
		cli_json_obj(j, cli_node_type_name((Sluice__NodeType)t));
		cli_json_u64(j, "up", s->nodes_up[t]);
		cli_json_u64(j, "down", s->nodes_down[t]);
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_close(j);

	cli_json_obj(j, "targets");
	cli_json_u64(j, "total", r->rt->n_targets);
	for (unsigned i = 0; i < TARGET_STATES; i++)
		cli_json_u64(j, cli_target_state_name(state_order[i]), s->targets[state_order[i]]);
	cli_json_u64(j, "unknown_state", s->targets_unknown_state);
	cli_json_u64(j, "not_in_chain", s->targets_unplaced);
	cli_json_u64(j, "used_bytes", s->used_bytes);
	cli_json_u64(j, "capacity_bytes", s->capacity_bytes);
	cli_json_close(j);

	cli_json_obj(j, "chains");
	cli_json_u64(j, "total", r->rt->n_chains);
	cli_json_u64(j, "healthy", s->chains[CLI_CHAIN_HEALTHY]);
	cli_json_u64(j, "degraded", s->chains[CLI_CHAIN_DEGRADED]);
	cli_json_u64(j, "offline", s->chains[CLI_CHAIN_OFFLINE]);
	cli_json_close(j);
	cli_json_u64(j, "chain_tables", r->rt->n_tables);
}

static void json_lists(struct cli_json *j, const struct cli_routing *r)
{
	const Sluice__RoutingTable *rt = r->rt;

	cli_json_arr(j, "syncing");
	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if (t->state != SLUICE__TARGET_STATE__TS_SYNCING)
			continue;
		cli_json_obj(j, NULL);
		cli_json_u64(j, "target", t->id);
		cli_json_u64(j, "node", t->node_id);
		cli_json_u64(j, "chain", t->chain_id);
		cli_json_u64(j, "sync_done", t->sync_done);
		cli_json_u64(j, "sync_total", t->sync_total);
		cli_json_u64(j, "sync_bytes_done", t->sync_bytes_done);
		cli_json_u64(j, "sync_bytes_total", t->sync_bytes_total);
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_arr(j, "down_nodes");
	for (size_t i = 0; i < rt->n_nodes; i++) {
		const Sluice__NodeInfo *n = rt->nodes[i];

		if (n->alive)
			continue;
		cli_json_obj(j, NULL);
		cli_json_u64(j, "id", n->id);
		cli_json_str(j, "type", cli_node_type_name(n->type));
		cli_json_str(j, "hostname", n->hostname);
		cli_json_u64(j, "last_heartbeat_ms", n->last_heartbeat_ms);
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_arr(j, "nonserving_targets");
	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if (t->state == SLUICE__TARGET_STATE__TS_SERVING)
			continue;
		cli_json_obj(j, NULL);
		cli_json_u64(j, "id", t->id);
		cli_json_u64(j, "node", t->node_id);
		cli_json_u64(j, "chain", t->chain_id);
		cli_json_str(j, "state", cli_target_state_name(t->state));
		cli_json_str(j, "local_state", cli_local_state_name(t->local_state));
		cli_json_close(j);
	}
	cli_json_close(j);
}

int cli_cmd_status(struct cli *c)
{
	struct cli_routing r;
	struct summary s;
	struct cli_json j;

	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_ERR;
	summarize(&r, &s);
	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_str(&j, "mgmtd", c->mgmtd);
		cli_json_u64(&j, "routing_version", r.rt->version);
		cli_json_str(&j, "health", s.health);
		json_counts(&j, &r, &s);
		json_lists(&j, &r);
		cli_json_end(&j);
	} else {
		print_counts(c, &r, &s);
		print_syncing(r.rt);
		print_down_nodes(r.rt);
		print_not_serving(r.rt);
	}
	cli_routing_release(&r);
	return CLI_EXIT_OK;
}
