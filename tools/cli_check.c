/*
 * cli_check.c - `sluice chain check CHAIN_ID [--json]`: are a chain's replicas the same?
 *
 * Fetch the routing table, take the chain's members (head to tail, then the non-serving
 * ones) and where their nodes are, and merge the members' chunk listings (LIST_CHUNKS,
 * CLI_LIST_PAGE chunks a call) in one pass with cli_merge.c, so memory is one page per
 * member whatever the chunk count. A chunk differs when some member lacks it or the
 * members disagree on its length, commit_ver or crc; chain_ver (which update last touched
 * it) may differ harmlessly and is not compared.
 *
 * Every member is compared, serving or not, but a non-serving one is flagged: a syncing
 * member is expected to differ until its sync completes, so each difference also says
 * whether the serving members alone agree ("serving_differ" in JSON). A member that cannot
 * be listed (node down, target offline, a bad page) is an error: it leaves the comparison
 * and the check is incomplete.
 *
 * Each member is listed at its own pace, so on a chain taking writes a chunk updated
 * between two pages can show as a difference that is gone a moment later: check a quiet
 * chain, or run again and compare.
 *
 * Output: text prints one line per difference (the first CLI_CHECK_SHOW_MAX, then "... N
 * more differences") and a summary; JSON streams the differences (at most
 * CLI_CHECK_JSON_MAX) as they are found, then the members and the counts.
 * Exit status (diff's convention): 0 every member listed and identical, 1 differences
 * found, 2 usage error or trouble (mgmtd or a member unreachable, unknown chain).
 *
 * Main thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/err.h"
#include "tools/cli.h"

struct check_member {
	uint64_t target_id;
	const Sluice__TargetInfo *t; /* NULL if the routing table does not list it */
	const Sluice__NodeInfo *node;
	const char *addr; /* NULL when unknown (no_addr says why) */
	const char *no_addr;
	bool serving;
	struct rpc_result res; /* the current page's response */
	char error_text[SLUICE_RPC_ERROR_DETAIL_MAX + 64];
};

struct check {
	struct cli *c;
	const struct cli_routing *r;
	const Sluice__ChainInfo *ch;
	unsigned n;
	struct check_member m[SLUICE_CHAIN_LEN_MAX];
	struct cli_merge mg;
	struct cli_json j;
	uint64_t chunks, diffs, diffs_serving, listed;
};

static const char *member_state(const struct check_member *m)
{
	return m->t ? cli_target_state_name(m->t->state) : "unknown";
}

/* Report member i's failure: one line on stderr and the text kept for the JSON. */
static void member_failed(struct check *k, unsigned i, int rc, const char *detail)
{
	struct check_member *m = &k->m[i];

	snprintf(m->error_text, sizeof(m->error_text), "%s%s%s (%d)", detail ? detail : "",
		 detail ? ": " : "", sluice_strerror(rc), rc);
	cli_fail(rc, "chain check %u: target %" PRIu64 " (%s) on node %u at %s: %s", k->ch->id,
		 m->target_id, member_state(m), m->t ? m->t->node_id : 0, m->addr ? m->addr : "-",
		 detail ? detail : "cannot list its chunks");
}

static int fetch(void *arg, unsigned i, bool after, uint64_t inode, uint32_t index,
		 struct cli_merge_page *page)
{
	struct check *k = arg;
	struct check_member *m = &k->m[i];
	const Sluice__ListChunksResp *resp;
	int rc;

	if (!m->addr) {
		member_failed(k, i, -ENOENT, m->no_addr);
		return -ENOENT;
	}
	memset(&m->res, 0, sizeof(m->res));
	rc = cli_list_chunks(k->c, m->addr, m->target_id, after, inode, index, &m->res);
	if (rc) {
		member_failed(k, i, rc, m->res.error_detail);
		rpc_result_release(&m->res);
		return rc;
	}
	resp = (const Sluice__ListChunksResp *)(const void *)m->res.resp;
	page->chunks = resp->chunks;
	page->n = resp->n_chunks;
	page->more = resp->more;
	page->owner = &m->res;
	return 0;
}

static void release(void *arg, unsigned i, struct cli_merge_page *page)
{
	(void)arg;
	(void)i;
	rpc_result_release(page->owner);
}

static void invalid(void *arg, unsigned i, int rc, const char *why)
{
	member_failed(arg, i, rc, why);
}

static const struct cli_merge_ops check_ops = {
	.fetch = fetch, .release = release, .invalid = invalid};

/* ---- one difference --------------------------------------------------------------------- */

static void diff_text(const struct check *k, const struct cli_merge_row *row)
{
	printf("chunk %" PRIu64 ":%u ", row->inode, row->index);
	for (unsigned i = 0, first = 1; i < k->n; i++) {
		const struct check_member *m = &k->m[i];
		const Sluice__ChunkMeta *cm = row->meta[i];
		char flag[32] = "";

		if (!row->compared[i])
			continue;
		if (!m->serving)
			snprintf(flag, sizeof(flag), " [%s]", member_state(m));
		printf("%s target %" PRIu64 "%s", first ? "" : " |", m->target_id, flag);
		first = 0;
		if (cm)
			printf(" len %u ver %" PRIu64 " crc 0x%08x", cm->length, cm->commit_ver,
			       cm->crc);
		else
			printf(" missing");
	}
	printf("\n");
}

static void diff_json(struct check *k, const struct cli_merge_row *row, bool serving_differ)
{
	struct cli_json *j = &k->j;

	cli_json_obj(j, NULL);
	cli_json_u64(j, "inode", row->inode);
	cli_json_u64(j, "index", row->index);
	cli_json_bool(j, "serving_differ", serving_differ);
	cli_json_arr(j, "replicas");
	for (unsigned i = 0; i < k->n; i++) {
		const struct check_member *m = &k->m[i];
		const Sluice__ChunkMeta *cm = row->meta[i];

		if (!row->compared[i])
			continue;
		cli_json_obj(j, NULL);
		cli_json_u64(j, "target", m->target_id);
		cli_json_str(j, "state", member_state(m));
		cli_json_bool(j, "present", cm != NULL);
		if (cm) {
			cli_json_u64(j, "length", cm->length);
			cli_json_u64(j, "commit_ver", cm->commit_ver);
			cli_json_u64(j, "crc", cm->crc);
			cli_json_u64(j, "chain_ver", cm->chain_ver);
			cli_json_u64(j, "chunk_size", cm->chunk_size);
		}
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_close(j);
}

/* Merge every member's listing, reporting the differences as they come. */
static void run(struct check *k)
{
	uint64_t cap = k->c->json ? CLI_CHECK_JSON_MAX : CLI_CHECK_SHOW_MAX;
	bool serving[SLUICE_CHAIN_LEN_MAX];
	struct cli_merge_row row;

	for (unsigned i = 0; i < k->n; i++)
		serving[i] = k->m[i].serving;
	cli_merge_start(&k->mg, k->n, &check_ops, k);
	while (cli_merge_next(&k->mg, &row)) {
		bool sd;

		k->chunks++;
		if (!cli_merge_row_differs(&row, k->n, NULL))
			continue;
		sd = cli_merge_row_differs(&row, k->n, serving);
		k->diffs++;
		k->diffs_serving += sd;
		if (k->listed == cap)
			continue;
		k->listed++;
		if (k->c->json)
			diff_json(k, &row, sd);
		else
			diff_text(k, &row);
	}
	cli_merge_end(&k->mg);
}

/* ---- setup and summary ------------------------------------------------------------------ */

static void setup_members(struct check *k)
{
	k->n = (unsigned)k->ch->n_targets;
	for (unsigned i = 0; i < k->n; i++) {
		struct check_member *m = &k->m[i];

		m->target_id = k->ch->targets[i];
		m->addr = cli_target_addr(k->r, m->target_id, &m->t, &m->node, &m->no_addr);
		m->serving = m->t && m->t->state == SLUICE__TARGET_STATE__TS_SERVING;
	}
}

static void summary_text(const struct check *k)
{
	unsigned failed = k->n - cli_merge_live(&k->mg);

	if (k->diffs > k->listed)
		printf("... %" PRIu64 " more differences\n", k->diffs - k->listed);
	printf("chain %u (v%" PRIu64 "): %u members", k->ch->id, k->ch->version, k->n);
	if (failed)
		printf(" (%u unreachable)", failed);
	printf(", %" PRIu64 " chunks, %" PRIu64 " differences", k->chunks, k->diffs);
	if (k->diffs)
		printf(" (%" PRIu64 " among serving members)", k->diffs_serving);
	printf("\n");
	for (unsigned i = 0; i < k->n; i++) {
		const struct check_member *m = &k->m[i];

		if (m->serving && !k->mg.m[i].error)
			continue;
		printf("  target %" PRIu64 " (%s): ", m->target_id, member_state(m));
		if (k->mg.m[i].error && k->mg.m[i].listed == 0)
			printf("unreachable, not compared: %s\n", m->error_text);
		else if (k->mg.m[i].error)
			printf("failed after %" PRIu64 " chunks, not compared past them: %s\n",
			       k->mg.m[i].listed, m->error_text);
		else
			printf("not serving, compared anyway (a syncing member differs until its "
			       "sync completes)\n");
	}
	if (k->ch->n_targets == 0)
		printf("  the chain has no members\n");
}

static void summary_json(struct check *k)
{
	struct cli_json *j = &k->j;

	cli_json_arr(j, "members"); /* head to tail, then the non-serving ones */
	for (unsigned i = 0; i < k->n; i++) {
		const struct check_member *m = &k->m[i];

		cli_json_obj(j, NULL);
		cli_json_u64(j, "target", m->target_id);
		if (m->t)
			cli_json_u64(j, "node", m->t->node_id);
		else
			cli_json_str(j, "node", NULL);
		cli_json_str(j, "addr", m->addr);
		cli_json_str(j, "state", member_state(m));
		cli_json_bool(j, "reachable", k->mg.m[i].error == 0);
		cli_json_str(j, "error", k->mg.m[i].error ? m->error_text : NULL);
		cli_json_u64(j, "chunks", k->mg.m[i].listed);
		cli_json_close(j);
	}
	cli_json_close(j);
	cli_json_u64(j, "chunks", k->chunks);
	cli_json_u64(j, "differences_total", k->diffs);
	cli_json_u64(j, "differences_serving", k->diffs_serving);
	cli_json_u64(j, "differences_listed", k->listed);
	cli_json_bool(j, "complete", cli_merge_live(&k->mg) == k->n);
	cli_json_bool(j, "identical", k->diffs == 0);
}

int cli_cmd_chain_check(struct cli *c)
{
	static struct check check; /* big (pages, error texts): not on the stack */
	struct check *k = &check;
	struct cli_routing r;
	uint64_t id;

	if (cli_parse_u64(c->args[0], 1, UINT32_MAX, &id))
		return cli_usage(CLI_USAGE_CHAIN_CHECK, "bad chain id '%s'", c->args[0]);
	if (cli_routing_fetch(c, &r))
		return CLI_EXIT_TROUBLE;
	memset(k, 0, sizeof(*k));
	k->c = c;
	k->r = &r;
	k->ch = cli_routing_chain(&r, (uint32_t)id);
	if (!k->ch) {
		cli_routing_release(&r);
		cli_fail(-ENOENT, "chain check: chain %" PRIu64, id);
		return CLI_EXIT_TROUBLE;
	}
	if (k->ch->n_targets > SLUICE_CHAIN_LEN_MAX) { /* from the network: not trusted */
		cli_fail(-SLUICE_EPROTO, "chain check: chain %u has %zu members (max %d)",
			 k->ch->id, k->ch->n_targets, SLUICE_CHAIN_LEN_MAX);
		cli_routing_release(&r);
		return CLI_EXIT_TROUBLE;
	}
	setup_members(k);
	if (c->json) {
		cli_json_begin(&k->j, stdout);
		cli_json_u64(&k->j, "chain", k->ch->id);
		cli_json_u64(&k->j, "chain_version", k->ch->version);
		cli_json_u64(&k->j, "routing_version", r.rt->version);
		cli_json_arr(&k->j, "differences");
		run(k);
		cli_json_close(&k->j);
		summary_json(k);
		cli_json_end(&k->j);
	} else {
		run(k);
		summary_text(k);
	}
	cli_routing_release(&r);
	if (cli_merge_live(&k->mg) < k->n)
		return CLI_EXIT_TROUBLE;
	return k->diffs ? CLI_EXIT_DIFF : CLI_EXIT_OK;
}
