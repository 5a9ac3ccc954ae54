/*
 * cli_fsck.c - `sluice fsck [--json]`: check the metadata store of the cluster's meta
 * server (its FSCK RPC, proto/meta_ops.h) and print what it found.
 *
 * The meta server is found in mgmtd's routing table: the first live NODE_META node, at its
 * first address. FSCK reads the whole store at one snapshot (meta/fsck.c): every dentry
 * names an existing inode of the same type, link counts match, every inode is reachable or
 * queued for GC, sessions, xattrs and GC entries belong to existing inodes. It runs as root
 * (uid 0 in the request: the server refuses others) and may take a while on a large
 * namespace, so its timeout is ten times --timeout.
 *
 * Exit status: 0 clean, 1 problems found or the call failed.
 *
 * Main thread only.
 */
#include <inttypes.h>
#include <stdio.h>

#include "common/err.h"
#include "proto/meta_ops.h"
#include "tools/cli.h"

/* The first address of the first live meta node, or NULL. */
static const char *meta_addr(const struct cli_routing *r)
{
	for (size_t i = 0; i < r->rt->n_nodes; i++) {
		const Sluice__NodeInfo *n = r->rt->nodes[i];

		if (n->type == SLUICE__NODE_TYPE__NODE_META && n->alive && n->n_addrs)
			return n->addrs[0];
	}
	return NULL;
}

static void print_json(const char *addr, const Sluice__FsckResp *f, bool clean)
{
	struct cli_json j;

	cli_json_begin(&j, stdout);
	cli_json_str(&j, "meta", addr);
	cli_json_bool(&j, "clean", clean);
	cli_json_u64(&j, "inodes", f->inodes);
	cli_json_u64(&j, "dentries", f->dentries);
	cli_json_u64(&j, "sessions", f->sessions);
	cli_json_u64(&j, "gc_queued", f->gc_queued);
	cli_json_u64(&j, "dangling_dentries", f->dangling_dentries);
	cli_json_u64(&j, "nlink_mismatches", f->nlink_mismatches);
	cli_json_u64(&j, "orphans", f->orphans);
	cli_json_u64(&j, "other_problems", f->other_problems);
	cli_json_arr(&j, "problems");
	for (size_t i = 0; i < f->n_problems; i++)
		cli_json_str(&j, NULL, f->problems[i]);
	cli_json_close(&j);
	cli_json_end(&j);
}

static void print_text(const char *addr, const Sluice__FsckResp *f, bool clean)
{
	uint64_t problems =
		f->dangling_dentries + f->nlink_mismatches + f->orphans + f->other_problems;

	printf("meta %s: %" PRIu64 " inodes, %" PRIu64 " dentries, %" PRIu64
	       " write sessions, %" PRIu64 " queued for GC\n",
	       addr, f->inodes, f->dentries, f->sessions, f->gc_queued);
	if (clean) {
		printf("clean\n");
		return;
	}
	printf("%" PRIu64 " problem(s): %" PRIu64 " dangling dentries, %" PRIu64
	       " link count mismatches, %" PRIu64 " orphans, %" PRIu64 " other\n",
	       problems, f->dangling_dentries, f->nlink_mismatches, f->orphans, f->other_problems);
	for (size_t i = 0; i < f->n_problems; i++)
		printf("  %s\n", f->problems[i]);
	if (f->n_problems < problems)
		printf("  (%" PRIu64 " more not listed)\n", problems - f->n_problems);
}

int cli_cmd_fsck(struct cli *c)
{
	Sluice__FsckReq req = SLUICE__FSCK_REQ__INIT;
	Sluice__ReqHdr hdr = SLUICE__REQ_HDR__INIT;
	Sluice__Creds creds = SLUICE__CREDS__INIT; /* uid 0: FSCK is for administrators */
	struct rpc_call_opts opts = {.timeout_ms = c->timeout_ms * 10, .retries = -1};
	struct rpc_result res = {0};
	struct cli_routing r;
	const Sluice__FsckResp *f;
	const char *addr;
	bool clean;
	int rc = cli_routing_fetch(c, &r);

	if (rc)
		return CLI_EXIT_ERR;
	addr = meta_addr(&r);
	if (!addr) {
		cli_routing_release(&r);
		return cli_fail(-ENOENT, "no live meta server registered with %s", c->mgmtd);
	}
	hdr.creds = &creds;
	req.hdr = &hdr;
	rc = metac_fsck(cli_rpc_client(c->rpc), addr, &req, &opts, &res);
	if (rc) {
		cli_fail_res(&res, "fsck of meta server %s", addr);
		rpc_result_release(&res);
		cli_routing_release(&r);
		return CLI_EXIT_ERR;
	}
	f = (const Sluice__FsckResp *)(const void *)res.resp;
	clean = !f->dangling_dentries && !f->nlink_mismatches && !f->orphans && !f->other_problems;
	if (c->json)
		print_json(addr, f, clean);
	else
		print_text(addr, f, clean);
	rpc_result_release(&res);
	cli_routing_release(&r);
	return clean ? CLI_EXIT_OK : CLI_EXIT_ERR;
}
