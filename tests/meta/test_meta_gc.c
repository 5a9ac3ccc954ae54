/*
 * test_meta_gc.c - the GC removes a deleted file's chunks from real storage daemons.
 *
 * A sluice-mgmtd, two sluice-storage daemons with two targets each, a chain table of two
 * chains of two targets (one on each daemon) and a sluice-meta (stripe 2, short GC delay).
 * The test creates files through meta and writes their chunks to the storage service
 * (storagec_write) through the chain the layout picks for each chunk (the head replicates
 * to the other target).
 *
 * Checks: after unlink the GC removes every chunk of the file from every target and then
 * deletes the inode, while the chunks of another file stay; with one storage daemon down
 * the inode stays queued (removal fails, counted in STATS) and is collected once the daemon
 * is back; FSCK is clean at the end.
 *
 * Usage: test_meta_gc SLUICE_MGMTD SLUICE_META SLUICE_STORAGE. Exit 0 pass, 1 fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/layout.h"
#include "common/net/net.h"
#include "proto/mgmt_ops.h"
#include "proto/storage_ops.h"
#include "tests/lib/testlib.h"
#include "tests/meta/meta_procs.h"

#define CLIENT	 7
#define TABLE_ID 1
#define NCHAINS	 2
#define DATA	 4096u

static char dir_[128];
static struct mp_daemon mgmtd, meta, stor[2];
static struct test_client tc;
static uint64_t reqseq;
static const struct rpc_call_opts opts = {.timeout_ms = 5000, .retries = 2};

/* The chain table as the test set it up: chain ids and their targets. */
static struct {
	uint32_t id;
	uint64_t targets[2];
	const char *addr[2];
} chains[NCHAINS];

static void fail_exit(const char *what)
{
	struct mp_daemon *all[] = {&meta, &stor[0], &stor[1], &mgmtd};

	fprintf(stderr, "test_meta_gc: %s (logs in %s)\n", what, dir_);
	mp_kill_all(all, SLUICE_ARRAY_SIZE(all));
	exit(1);
}

/* ---- cluster setup ---------------------------------------------------------------------- */

/* Wait until mgmtd lists 4 live targets; fill the chains (target ids, addresses). */
static void wait_targets(void)
{
	for (int i = 0; i < 300; i++) {
		Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
		struct rpc_result res = {0};
		int n = 0;

		if (mgmtc_get_routing(tc.rpc, mgmtd.uri, &req, &opts, &res) == 0) {
			const Sluice__RoutingTable *rt =
				((Sluice__GetRoutingResp *)(void *)res.resp)->routing;

			/* chain k = target k of s0, target k of s1: replicas on both daemons */
			for (size_t t = 0; rt && t < rt->n_targets; t++) {
				for (size_t nd = 0; nd < rt->n_nodes; nd++) {
					const Sluice__NodeInfo *node = rt->nodes[nd];

					if (node->id != rt->targets[t]->node_id || !node->alive ||
					    node->n_addrs == 0)
						continue;
					for (int s = 0; s < 2; s++) {
						size_t plen =
							strlen(dir_) + 1 + strlen(stor[s].name);
						const char *p = rt->targets[t]->path;

						if (strcmp(node->addrs[0], stor[s].uri) != 0 ||
						    strncmp(p, dir_, strlen(dir_)) != 0)
							continue;
						int k = atoi(p + plen + 2); /* ".../sN-tK" */

						chains[k].targets[s] = rt->targets[t]->id;
						chains[k].addr[s] = stor[s].uri;
						n++;
					}
				}
			}
		}
		rpc_result_release(&res);
		if (n == 4)
			return;
		env_sleep_ms(50);
	}
	fail_exit("storage targets did not register");
}

static void set_chain_table(void)
{
	Sluice__SetChainTableReq req = SLUICE__SET_CHAIN_TABLE_REQ__INIT;
	Sluice__ChainSpec specs[NCHAINS], *sp[NCHAINS];
	struct rpc_result res = {0};
	int rc;

	for (int k = 0; k < NCHAINS; k++) {
		sluice__chain_spec__init(&specs[k]);
		specs[k].targets = chains[k].targets;
		specs[k].n_targets = 2;
		sp[k] = &specs[k];
	}
	req.table_id = TABLE_ID;
	req.chains = sp;
	req.n_chains = NCHAINS;
	rc = mgmtc_set_chain_table(tc.rpc, mgmtd.uri, &req, &opts, &res);
	if (rc == 0) {
		const Sluice__SetChainTableResp *r = (const void *)res.resp;

		for (int k = 0; k < NCHAINS && k < (int)r->n_chain_ids; k++)
			chains[k].id = r->chain_ids[k];
	}
	rpc_result_release(&res);
	if (rc)
		fail_exit("SET_CHAIN_TABLE failed");
}

/* Wait until meta has fetched a routing table with the 4 targets. */
static void wait_meta_routing(void)
{
	for (int i = 0; i < 300; i++) {
		Sluice__StatfsReq req = SLUICE__STATFS_REQ__INIT;
		struct rpc_result res = {0};
		struct mp_hdr hb;
		uint32_t n = 0;

		req.hdr = mp_hdr(&hb, 0, 0);
		if (metac_statfs(tc.rpc, meta.uri, &req, &opts, &res) == 0)
			n = ((Sluice__StatfsResp *)(void *)res.resp)->targets;
		rpc_result_release(&res);
		if (n == 4)
			return;
		env_sleep_ms(50);
	}
	fail_exit("meta did not learn the routing table");
}

/* ---- meta and storage calls ------------------------------------------------------------- */

/* Create a file in the root: its inode, layout in *l. */
static uint64_t create_file(const char *name, struct layout *l)
{
	Sluice__CreateReq req = SLUICE__CREATE_REQ__INIT;
	struct rpc_result res = {0};
	struct mp_hdr hb;
	uint64_t ino = 0;

	req.hdr = mp_hdr(&hb, CLIENT, ++reqseq);
	req.parent = 1;
	req.name = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
	req.mode = 0644;
	req.flags = O_CREAT | O_EXCL | O_RDONLY;
	if (metac_create(tc.rpc, meta.uri, &req, &opts, &res) == 0) {
		const Sluice__Attr *a = ((Sluice__OpenResp *)(void *)res.resp)->attr;

		ino = a->ino;
		if (a->layout)
			*l = (struct layout){a->layout->chain_table_id, a->layout->chunk_size,
					     a->layout->stripe, a->layout->chain_base,
					     a->layout->seed};
		else
			ino = 0;
	}
	rpc_result_release(&res);
	if (!ino)
		fail_exit("create failed");
	return ino;
}

static int unlink_file(const char *name)
{
	Sluice__RemoveReq req = SLUICE__REMOVE_REQ__INIT;
	struct rpc_result res = {0};
	struct mp_hdr hb;
	int rc;

	req.hdr = mp_hdr(&hb, CLIENT, ++reqseq);
	req.parent = 1;
	req.name = (ProtobufCBinaryData){strlen(name), (uint8_t *)name};
	rc = metac_unlink(tc.rpc, meta.uri, &req, &opts, &res);
	rpc_result_release(&res);
	return rc;
}

/* 0 if the inode exists, -ENOENT once deleted, or another error. */
static int getattr(uint64_t ino)
{
	Sluice__GetattrReq req = SLUICE__GETATTR_REQ__INIT;
	struct rpc_result res = {0};
	struct mp_hdr hb;
	int rc;

	req.hdr = mp_hdr(&hb, 0, 0);
	req.ino = ino;
	rc = metac_getattr(tc.rpc, meta.uri, &req, &opts, &res);
	rpc_result_release(&res);
	return rc;
}

static void stats(Sluice__StatsResp *out)
{
	Sluice__StatsReq req = SLUICE__STATS_REQ__INIT;
	struct rpc_result res = {0};
	struct mp_hdr hb;

	req.hdr = mp_hdr(&hb, 0, 0);
	memset(out, 0, sizeof(*out));
	if (metac_stats(tc.rpc, meta.uri, &req, &opts, &res) == 0)
		*out = *(Sluice__StatsResp *)(void *)res.resp;
	rpc_result_release(&res);
}

/* Version of chain id in mgmtd's routing table now (0 if it is not there). */
static uint64_t chain_version(uint32_t id)
{
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_result res = {0};
	uint64_t ver = 0;

	if (mgmtc_get_routing(tc.rpc, mgmtd.uri, &req, &opts, &res) == 0) {
		const Sluice__RoutingTable *rt =
			((Sluice__GetRoutingResp *)(void *)res.resp)->routing;

		for (size_t i = 0; rt && i < rt->n_chains; i++)
			if (rt->chains[i]->id == id)
				ver = rt->chains[i]->version;
	}
	rpc_result_release(&res);
	return ver;
}

/*
 * Write chunk idx of ino (layout l) through its chain: to the head (the chain's first
 * target), which replicates it to the other. Until the storage daemons have fetched the
 * routing table with the chain they refuse (EROUTING, ECHAINVER): retry a while.
 */
static void write_chunk(uint64_t ino, const struct layout *l, uint32_t idx)
{
	static uint8_t data[DATA];
	uint32_t perm[LAYOUT_STRIPE_MAX];
	Sluice__UpdateTag tag = SLUICE__UPDATE_TAG__INIT;
	int k, rc = -1;

	pattern_fill(data, sizeof(data), ino * 1000 + idx);
	CHECK(layout_perm(l->seed, l->stripe, perm) == 0);
	k = (int)layout_chain_index(l, perm, NCHAINS, idx);
	tag.client_id = 1;
	tag.channel = 0;
	tag.seq = ++reqseq;
	for (int attempt = 0; attempt < 100; attempt++) {
		Sluice__ChunkWriteReq req = SLUICE__CHUNK_WRITE_REQ__INIT;
		struct iovec iov = {data, sizeof(data)};
		struct rpc_call_opts wo = opts;
		struct rpc_result res = {0};

		req.target_id = chains[k].targets[0];
		req.inode = ino;
		req.index = idx;
		req.chunk_size = l->chunk_size;
		req.length = DATA;
		req.data_crc = crc32c(0, data, DATA);
		req.chain_id = chains[k].id;
		req.chain_ver = chain_version(chains[k].id);
		req.tag = &tag;
		wo.bulk = &iov;
		wo.nbulk = 1;
		rc = storagec_write(tc.rpc, chains[k].addr[0], &req, &wo, &res);
		rpc_result_release(&res);
		if (rc != -SLUICE_EROUTING && rc != -SLUICE_ECHAINVER)
			break;
		env_sleep_ms(50);
	}
	if (rc) {
		fprintf(stderr, "write of chunk %" PRIu64 ":%u to chain %u: %s\n", ino, idx,
			chains[k].id, sluice_strerror(rc));
		fail_exit("storage write failed");
	}
}

/* Chunks of ino on all four targets together (each replica counts). */
static int count_chunks(uint64_t ino)
{
	int n = 0;

	for (int k = 0; k < NCHAINS; k++) {
		for (int r = 0; r < 2; r++) {
			Sluice__QueryChunksReq req = SLUICE__QUERY_CHUNKS_REQ__INIT;
			struct rpc_result res = {0};

			req.target_id = chains[k].targets[r];
			req.inode = ino;
			if (storagec_query_chunks(tc.rpc, chains[k].addr[r], &req, &opts, &res) ==
			    0)
				n += (int)((Sluice__QueryChunksResp *)(void *)res.resp)->n_chunks;
			else
				n = -1000;
			rpc_result_release(&res);
		}
	}
	return n;
}

static bool wait_gone(uint64_t ino, int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		if (getattr(ino) == -ENOENT)
			return true;
		env_sleep_ms(50);
	}
	return false;
}

int main(int argc, char **argv)
{
	const char *meta_opts[] = {"meta.sync=false",	       "meta.gc_delay_ms=200ms",
				   "meta.gc_interval_ms=50ms", "meta.routing_interval_ms=200ms",
				   "layout.stripe=2",	       "layout.chunk_size=64K",
				   "layout.chain_table=1",     NULL};
	struct layout la, lb, lc;
	Sluice__StatsResp st;
	uint64_t a, b, c;

	if (argc != 4) {
		fprintf(stderr, "usage: test_meta_gc SLUICE_MGMTD SLUICE_META SLUICE_STORAGE\n");
		return 2;
	}
	if (mp_tmpdir("meta-gc", dir_, sizeof(dir_)))
		return 1;
	net_register_builtin();
	mp_mgmtd_init(&mgmtd, argv[1], dir_);
	if (mp_start(&mgmtd, dir_))
		fail_exit("mgmtd did not start");
	for (int s = 0; s < 2; s++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", s);
		mp_storage_init(&stor[s], argv[3], dir_, name, s, mgmtd.uri, 2);
		if (mp_start(&stor[s], dir_))
			fail_exit("sluice-storage did not start");
	}
	if (test_client_start(&tc, NULL, 64u << 20))
		fail_exit("client start failed");
	wait_targets();
	set_chain_table();
	mp_meta_init(&meta, argv[2], dir_, mgmtd.uri, meta_opts);
	if (mp_start(&meta, dir_))
		fail_exit("sluice-meta did not start");
	wait_meta_routing();

	/* a: 6 chunks (over both chains), c: 2 chunks that must survive a's GC */
	a = create_file("a", &la);
	c = create_file("c", &lc);
	CHECK_EQ(la.stripe, 2);
	CHECK_EQ(la.chain_table_id, TABLE_ID);
	for (uint32_t i = 0; i < 6; i++)
		write_chunk(a, &la, i);
	write_chunk(c, &lc, 0);
	write_chunk(c, &lc, 1);
	CHECK_EQ(count_chunks(a), 12);
	CHECK_EQ(count_chunks(c), 4);

	CHECK_EQ(unlink_file("a"), 0);
	CHECK(wait_gone(a, 20));
	CHECK_EQ(count_chunks(a), 0);
	CHECK_EQ(count_chunks(c), 4);

	/* b with one storage daemon down: the removal fails, the inode stays queued */
	b = create_file("b", &lb);
	for (uint32_t i = 0; i < 4; i++)
		write_chunk(b, &lb, i);
	CHECK_EQ(count_chunks(b), 8);
	CHECK_EQ(mp_stop(&stor[1], SIGKILL) != -1, 1);
	CHECK_EQ(unlink_file("b"), 0);
	for (int i = 0; i < 200; i++) {
		stats(&st);
		if (st.gc_failures > 0)
			break;
		env_sleep_ms(50);
	}
	CHECK(st.gc_failures > 0);
	CHECK_EQ(getattr(b), 0); /* still there, nlink 0, queued */
	CHECK_EQ(mp_fsck(tc.rpc, meta.uri, "storage down"), 0);
	if (mp_start(&stor[1], dir_))
		fail_exit("sluice-storage did not restart");
	CHECK(wait_gone(b, 30)); /* the backoff (1 s, 2 s, ...) then success */
	CHECK_EQ(count_chunks(b), 0);
	CHECK_EQ(count_chunks(c), 4);
	CHECK_EQ(getattr(c), 0);
	CHECK_EQ(mp_fsck(tc.rpc, meta.uri, "end"), 0);

	test_client_stop(&tc);
	CHECK_EQ(mp_stop(&meta, SIGTERM), 0);
	for (int s = 0; s < 2; s++)
		CHECK_EQ(mp_stop(&stor[s], SIGTERM), 0);
	CHECK_EQ(mp_stop(&mgmtd, SIGTERM), 0);
	if (test_result() == 0) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir_);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", dir_);
	} else {
		fprintf(stderr, "logs kept in %s\n", dir_);
	}
	return test_result();
}
