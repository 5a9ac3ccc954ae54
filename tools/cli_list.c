/*
 * cli_list.c - `sluice node list`, `sluice target list`, `sluice chain list`: the routing
 * table's entities, one line each, sorted by id.
 *
 * Text mode: a header line and fixed-width columns, the one variable-width column (addresses,
 * path, members) last so long values never misalign the rest. Sizes are human-readable
 * (GiB), heartbeat ages relative to this machine's clock. JSON mode: one object with the
 * routing version and an array of entities with raw numbers (bytes, wall-clock ms).
 *
 * Main thread only.
 */
#include <inttypes.h>

#include "tools/cli.h"

/* ---- nodes ------------------------------------------------------------------------------- */

static void node_text(const Sluice__NodeInfo *n, uint64_t now_ms)
{
	char age[32];

	printf("%-6u %-8s %-5s %-11" PRIu64 " %-9s %-20s ", n->id, cli_node_type_name(n->type),
	       n->alive ? "up" : "down", n->incarnation,
	       cli_fmt_age(n->last_heartbeat_ms, now_ms, age, sizeof(age)),
	       n->hostname[0] ? n->hostname : "-");
	for (size_t i = 0; i < n->n_addrs; i++)
		printf("%s%s", i ? "," : "", n->addrs[i]);
	printf("%s\n", n->n_addrs ? "" : "-");
}

static void node_json(struct cli_json *j, const Sluice__NodeInfo *n)
{
	cli_json_obj(j, NULL);
	cli_json_u64(j, "id", n->id);
	cli_json_str(j, "type", cli_node_type_name(n->type));
	cli_json_bool(j, "alive", n->alive);
	cli_json_arr_flat(j, "addrs");
	for (size_t i = 0; i < n->n_addrs; i++)
		cli_json_str(j, NULL, n->addrs[i]);
	cli_json_close(j);
	cli_json_str(j, "hostname", n->hostname);
	cli_json_u64(j, "incarnation", n->incarnation);
	cli_json_u64(j, "last_heartbeat_ms", n->last_heartbeat_ms);
	cli_json_close(j);
}

int cli_cmd_node_list(struct cli *c)
{
	uint64_t now_ms = cli_now_wall_ms();
	struct cli_routing r;
	struct cli_json j;

	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_ERR;
	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_u64(&j, "routing_version", r.rt->version);
		cli_json_arr(&j, "nodes");
		for (size_t i = 0; i < r.rt->n_nodes; i++)
			node_json(&j, r.rt->nodes[i]);
		cli_json_close(&j);
		cli_json_end(&j);
	} else {
		printf("%-6s %-8s %-5s %-11s %-9s %-20s %s\n", "ID", "TYPE", "ALIVE", "INCARNATION",
		       "HEARTBEAT", "HOSTNAME", "ADDRS");
		for (size_t i = 0; i < r.rt->n_nodes; i++)
			node_text(r.rt->nodes[i], now_ms);
	}
	cli_routing_release(&r);
	return CLI_EXIT_OK;
}

/* ---- targets ----------------------------------------------------------------------------- */

static void target_text(const Sluice__TargetInfo *t)
{
	char used[32], cap[32], pct[16], chain[16];

	snprintf(chain, sizeof(chain), "%u", t->chain_id);
	printf("%-8" PRIu64 " %-5u %-8s %-8s %-6s %10s %10s %6s  %s\n", t->id, t->node_id,
	       cli_target_state_name(t->state), cli_local_state_name(t->local_state),
	       t->chain_id ? chain : "-", cli_fmt_bytes(t->used_bytes, used, sizeof(used)),
	       cli_fmt_bytes(t->capacity_bytes, cap, sizeof(cap)),
	       cli_fmt_pct(t->used_bytes, t->capacity_bytes, pct, sizeof(pct)),
	       t->path[0] ? t->path : "-");
}

static void target_json(struct cli_json *j, const Sluice__TargetInfo *t)
{
	cli_json_obj(j, NULL);
	cli_json_u64(j, "id", t->id);
	cli_json_u64(j, "node", t->node_id);
	cli_json_str(j, "state", cli_target_state_name(t->state));
	cli_json_str(j, "local_state", cli_local_state_name(t->local_state));
	cli_json_u64(j, "chain", t->chain_id);
	cli_json_u64(j, "used_bytes", t->used_bytes);
	cli_json_u64(j, "capacity_bytes", t->capacity_bytes);
	cli_json_u64(j, "sync_done", t->sync_done);
	cli_json_u64(j, "sync_total", t->sync_total);
	cli_json_str(j, "path", t->path);
	cli_json_close(j);
}

int cli_cmd_target_list(struct cli *c)
{
	struct cli_routing r;
	struct cli_json j;

	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_ERR;
	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_u64(&j, "routing_version", r.rt->version);
		cli_json_arr(&j, "targets");
		for (size_t i = 0; i < r.rt->n_targets; i++)
			target_json(&j, r.rt->targets[i]);
		cli_json_close(&j);
		cli_json_end(&j);
	} else {
		printf("%-8s %-5s %-8s %-8s %-6s %10s %10s %6s  %s\n", "ID", "NODE", "STATE",
		       "LOCAL", "CHAIN", "USED", "CAPACITY", "USE%", "PATH");
		for (size_t i = 0; i < r.rt->n_targets; i++)
			target_text(r.rt->targets[i]);
	}
	cli_routing_release(&r);
	return CLI_EXIT_OK;
}

/* ---- chains ------------------------------------------------------------------------------ */

/* "101(serving) 102(serving) 103(offline)": members head to tail with their states. */
static void chain_members_text(const struct cli_routing *r, const Sluice__ChainInfo *ch)
{
	for (size_t i = 0; i < ch->n_targets; i++) {
		const Sluice__TargetInfo *t = cli_routing_target(r, ch->targets[i]);

		printf("%s%" PRIu64 "(%s)", i ? " " : "", ch->targets[i],
		       t ? cli_target_state_name(t->state) : "unknown");
	}
}

void cli_chain_text(const struct cli_routing *r, const Sluice__ChainInfo *ch)
{
	printf("%-7u %-8" PRIu64 " %-9s ", ch->id, ch->version,
	       cli_chain_health_name(cli_chain_health(r, ch)));
	chain_members_text(r, ch);
	printf("\n");
}

void cli_chain_json(struct cli_json *j, const struct cli_routing *r, const Sluice__ChainInfo *ch)
{
	cli_json_obj(j, NULL);
	cli_json_u64(j, "id", ch->id);
	cli_json_u64(j, "version", ch->version);
	cli_json_str(j, "health", cli_chain_health_name(cli_chain_health(r, ch)));
	cli_json_arr(j, "members");
	for (size_t i = 0; i < ch->n_targets; i++) {
		const Sluice__TargetInfo *t = cli_routing_target(r, ch->targets[i]);

		cli_json_obj(j, NULL);
		cli_json_u64(j, "target", ch->targets[i]);
		if (t)
			cli_json_u64(j, "node", t->node_id);
		else
			cli_json_str(j, "node", NULL);
		cli_json_str(j, "state", t ? cli_target_state_name(t->state) : "unknown");
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_close(j);
}

void cli_chain_header(void)
{
	printf("%-7s %-8s %-9s %s\n", "ID", "VERSION", "HEALTH", "MEMBERS (head .. tail)");
}

int cli_cmd_chain_list(struct cli *c)
{
	struct cli_routing r;
	struct cli_json j;

	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_ERR;
	if (c->json) {
		cli_json_begin(&j, stdout);
		cli_json_u64(&j, "routing_version", r.rt->version);
		cli_json_arr(&j, "chains");
		for (size_t i = 0; i < r.rt->n_chains; i++)
			cli_chain_json(&j, &r, r.rt->chains[i]);
		cli_json_close(&j);
		cli_json_end(&j);
	} else {
		cli_chain_header();
		for (size_t i = 0; i < r.rt->n_chains; i++)
			cli_chain_text(&r, r.rt->chains[i]);
	}
	cli_routing_release(&r);
	return CLI_EXIT_OK;
}
