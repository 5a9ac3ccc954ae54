/*
 * test_craq_client.c - the client side of tests/integration/test_craq.py: replicated
 * updates through a real chain of sluice-storage daemons registered with mgmtd.
 *
 * Usage: test_craq_client MGMTD_URI CHAIN_ID TAIL_PID   (exit 0 pass, 1 fail)
 *        test_craq_client MGMTD_URI CHAIN_ID fill N       (exit 0 done, 1 fail)
 *
 * fill: write N whole chunks (indexes 1000..) through the chain's current head, whatever
 * its other members are doing, retrying on routing errors until the routing settles; for
 * the resync test, which checks the replicas with `sluice chain check` afterwards.
 *
 * The chain must have 3 serving members whose daemons run with debug.fault_injection (for
 * the divergence step); TAIL_PID is the tail's daemon, which this program SIGSTOPs and
 * SIGCONTs once (a stalled tail keeps an update pending up the chain).
 *
 * Steps, each checked on every member by reading the chunk back (bytes, length, CRC,
 * version):
 *   1. tagged writes through the head: whole chunks, then unaligned partial overwrites,
 *      32 of them in flight at once on different chunks;
 *   2. retries: the same tag again is answered from the tag table (no version bump); an
 *      older seq of the channel is answered as applied and changes nothing;
 *   3. refusals: a stale chain version (SLUICE_ECHAINVER), a write to a non-head member
 *      (SLUICE_ENOTHEAD), update_ver from a client (EINVAL);
 *   4. divergence: a local write (chain_id 0) makes the middle member differ; the next
 *      replicated write repairs it (the head sends a full replace) and all members agree;
 *   5. pending reads: with the tail stopped, a write waits in the chain and a strict read of
 *      the chunk on the head answers SLUICE_ENOTCOMMIT while a relaxed one gets the
 *      committed bytes; after SIGCONT the write completes everywhere;
 *   6. truncate and remove through the chain.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "proto/mgmt_ops.h"
#include "tests/storage/storclient.h"

#define CHUNK_SIZE (256u * 1024u)
#define NCHUNKS	   32
#define INODE	   777
#define MEMBERS	   3

struct member {
	uint64_t target;
	char addr[SLUICE_NET_ADDR_MAX];
	struct tstor_client cl;
};

static struct member mem[MEMBERS];
static uint32_t chain_id;
static uint64_t chain_ver;
static uint64_t client_id;
static uint8_t model[NCHUNKS][CHUNK_SIZE];
static uint32_t model_len[NCHUNKS];
static uint64_t model_ver[NCHUNKS];
static uint64_t next_seq[NCHUNKS]; /* one channel per chunk */

/* ---- routing ---------------------------------------------------------------------------- */

/* Load the chain's members from mgmtd. all_serving: fail unless MEMBERS members serve;
 * else the serving ones come first (the head is mem[0]) and nmem counts them. */
static unsigned nmem;

static int load_chain(const char *mgmtd, bool all_serving)
{
	struct tstor_client mc;
	struct tstor_daemon fake = {0};
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = 10000};
	struct rpc_result res = {0};
	const Sluice__RoutingTable *rt;
	const Sluice__ChainInfo *ch = NULL;
	int rc;

	snprintf(fake.uri, sizeof(fake.uri), "%s", mgmtd);
	if (tstor_client_start(&mc, &fake) != 0)
		return -1;
	rc = mgmtc_get_routing(mc.tc.rpc, mgmtd, &req, &o, &res);
	if (rc != 0) {
		fprintf(stderr, "get routing: %s\n", sluice_strerror(rc));
		goto out;
	}
	rt = ((const Sluice__GetRoutingResp *)(const void *)res.resp)->routing;
	for (size_t i = 0; i < rt->n_chains; i++)
		if (rt->chains[i]->id == chain_id)
			ch = rt->chains[i];
	rc = -1;
	if (ch == NULL || ch->n_targets != MEMBERS) {
		fprintf(stderr, "chain %u missing or not %d members\n", chain_id, MEMBERS);
		goto out;
	}
	chain_ver = ch->version;
	nmem = 0;
	for (unsigned i = 0; i < MEMBERS; i++) {
		const Sluice__TargetInfo *t = NULL;

		for (size_t k = 0; k < rt->n_targets; k++)
			if (rt->targets[k]->id == ch->targets[i])
				t = rt->targets[k];
		if (t == NULL || t->state != SLUICE__TARGET_STATE__TS_SERVING) {
			if (all_serving)
				goto out;
			continue;
		}
		struct member *m = &mem[nmem++]; /* serving members only, in chain order */

		m->target = t->id;
		for (size_t k = 0; k < rt->n_nodes; k++)
			if (rt->nodes[k]->id == t->node_id && rt->nodes[k]->n_addrs > 0)
				snprintf(m->addr, sizeof(m->addr), "%s", rt->nodes[k]->addrs[0]);
	}
	rc = nmem > 0 ? 0 : -1;
out:
	rpc_result_release(&res);
	tstor_client_stop(&mc);
	return rc;
}

static void connect_members(void)
{
	for (unsigned i = 0; i < MEMBERS; i++) {
		struct tstor_daemon fake = {0};

		snprintf(fake.uri, sizeof(fake.uri), "%s", mem[i].addr);
		ASSERT(tstor_client_start(&mem[i].cl, &fake) == 0);
		mem[i].cl.daemon = NULL;
		mem[i].cl.retries = 0;
	}
}

/* ---- updates ------------------------------------------------------------------------------ */

static Sluice__UpdateTag tag_of(uint32_t idx, uint64_t seq)
{
	Sluice__UpdateTag t = SLUICE__UPDATE_TAG__INIT;

	t.client_id = client_id;
	t.channel = idx;
	t.seq = seq;
	return t;
}

/* A replicated write of chunk idx through member m (the head unless testing refusals). */
static int chain_write(unsigned m, uint32_t idx, uint32_t off, const uint8_t *data, uint32_t len,
		       uint64_t seq, uint64_t ver, struct tstor_chunk *out)
{
	Sluice__ChunkWriteReq w = SLUICE__CHUNK_WRITE_REQ__INIT;
	Sluice__UpdateTag tag = tag_of(idx, seq);
	struct iovec iov = {(void *)data, len};

	w.target_id = mem[m].target;
	w.inode = INODE;
	w.index = idx;
	w.chunk_size = CHUNK_SIZE;
	w.offset = off;
	w.length = len;
	w.data_crc = crc32c(0, data, len);
	w.chain_id = chain_id;
	w.chain_ver = ver;
	w.tag = &tag;
	return tstor_write_raw(&mem[m].cl, &w, &iov, 1, out);
}

static void model_write(uint32_t idx, uint32_t off, const uint8_t *data, uint32_t len)
{
	if (off > model_len[idx])
		memset(model[idx] + model_len[idx], 0, off - model_len[idx]);
	memcpy(model[idx] + off, data, len);
	if (off + len > model_len[idx])
		model_len[idx] = off + len;
	model_ver[idx]++;
}

/* Write through the head with the next seq of the chunk's channel; check the reply. */
static void write_ok(uint32_t idx, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct tstor_chunk ch;
	int rc = chain_write(0, idx, off, data, len, ++next_seq[idx], chain_ver, &ch);

	CHECK_RC(rc, 0);
	if (rc != 0) {
		fprintf(stderr, "  (%s)\n", mem[0].cl.detail);
		return;
	}
	model_write(idx, off, data, len);
	CHECK_EQ(ch.commit_ver, model_ver[idx]);
	CHECK_EQ(ch.length, model_len[idx]);
	CHECK_EQ(ch.crc, crc32c(0, model[idx], model_len[idx]));
}

/* Every member holds exactly the model's chunk idx. */
static void verify(uint32_t idx, const char *when)
{
	static uint8_t got[CHUNK_SIZE];

	for (unsigned m = 0; m < MEMBERS; m++) {
		struct tstor_range r = {.inode = INODE, .index = idx, .length = CHUNK_SIZE};
		struct tstor_read_result rr;
		int rc = tstor_batch_read(&mem[m].cl, mem[m].target, &r, 1, got, sizeof(got), &rr);

		if (model_ver[idx] == 0) { /* removed or never written */
			if (rc != 0 || rr.status != -ENOENT) {
				fprintf(stderr,
					"%s: chunk %u on member %u: want ENOENT, got %d/%d\n", when,
					idx, m, rc, rr.status);
				test_failures++;
			}
			continue;
		}
		if (rc != 0 || rr.status != 0 || rr.length != model_len[idx] ||
		    rr.commit_ver != model_ver[idx] || memcmp(got, model[idx], model_len[idx])) {
			fprintf(stderr,
				"%s: chunk %u on member %u (target %" PRIu64 "): rc %d status %d "
				"len %u/%u ver %" PRIu64 "/%" PRIu64 "\n",
				when, idx, m, mem[m].target, rc, rr.status, rr.length,
				model_len[idx], rr.commit_ver, model_ver[idx]);
			test_failures++;
		}
	}
}

/* ---- steps ------------------------------------------------------------------------------------
 */

struct async_w {
	uint32_t idx;
	uint8_t *data;
	int rc;
	struct tstor_chunk ch;
};

static void *async_writer(void *arg)
{
	struct async_w *a = arg;

	a->rc = chain_write(0, a->idx, 0, a->data, CHUNK_SIZE, next_seq[a->idx], chain_ver, &a->ch);
	return NULL;
}

static void step_writes(uint8_t *buf)
{
	pthread_t th[NCHUNKS];
	struct async_w aw[NCHUNKS];

	/* 32 whole-chunk writes in flight (one thread each: the sync calls block) */
	for (uint32_t i = 0; i < NCHUNKS; i++) {
		aw[i] = (struct async_w){.idx = i, .data = buf + (size_t)i * 4096};
		next_seq[i]++;
		ASSERT(pthread_create(&th[i], NULL, async_writer, &aw[i]) == 0);
	}
	for (uint32_t i = 0; i < NCHUNKS; i++) {
		pthread_join(th[i], NULL);
		CHECK_RC(aw[i].rc, 0);
		model_write(i, 0, aw[i].data, CHUNK_SIZE);
		CHECK_EQ(aw[i].ch.commit_ver, model_ver[i]);
	}
	/* partial and unaligned overwrites, appends past the end */
	write_ok(1, 12345, buf + 7, 5000);
	write_ok(2, 0, buf + 3, 4096);
	write_ok(2, CHUNK_SIZE - 10, buf, 10);
	for (uint32_t i = 0; i < NCHUNKS; i++)
		verify(i, "after writes");
}

static void step_retries(uint8_t *buf)
{
	struct tstor_chunk ch;

	/* the same tag again: the remembered result, nothing applied twice */
	CHECK_RC(chain_write(0, 1, 100, buf + 999, 300, next_seq[1], chain_ver, &ch), 0);
	CHECK_EQ(ch.commit_ver, model_ver[1]);
	/* an older seq of the channel: answered, not applied */
	CHECK_RC(chain_write(0, 1, 0, buf + 1234, 4096, next_seq[1] - 1, chain_ver, &ch), 0);
	verify(1, "after retries");
}

static void step_refusals(uint8_t *buf)
{
	Sluice__ChunkWriteReq w = SLUICE__CHUNK_WRITE_REQ__INIT;
	struct iovec iov = {buf, 4096};

	CHECK_RC(chain_write(0, 3, 0, buf, 4096, ++next_seq[3], chain_ver + 1, NULL),
		 -SLUICE_ECHAINVER);
	CHECK_RC(chain_write(1, 3, 0, buf, 4096, ++next_seq[3], chain_ver, NULL), -SLUICE_ENOTHEAD);
	w.target_id = mem[0].target;
	w.inode = INODE;
	w.index = 3;
	w.chunk_size = CHUNK_SIZE;
	w.length = 4096;
	w.data_crc = crc32c(0, buf, 4096);
	w.chain_id = chain_id;
	w.chain_ver = chain_ver;
	w.update_ver = 9; /* only predecessors say which version */
	CHECK_RC(tstor_write_raw(&mem[0].cl, &w, &iov, 1, NULL), -EINVAL);
	verify(3, "after refusals");
}

static void step_divergence(uint8_t *buf)
{
	struct tstor_chunk ch;

	/* the middle member gets a write the chain never saw */
	CHECK_RC(tstor_write(&mem[1].cl, mem[1].target, INODE, 4, CHUNK_SIZE, 0, buf + 77, 9000,
			     &ch),
		 0);
	/* the next replicated write finds its version differs and sends the whole chunk */
	write_ok(4, 50000, buf + 11, 20000);
	verify(4, "after repairing a diverged member");
	write_ok(4, 0, buf + 5, 100);
	verify(4, "after the next write");

	/* head and middle both changed on their own: the middle's result then has the right
	 * version but other bytes (its CRC differs), so the head replaces it too */
	CHECK_RC(tstor_write(&mem[0].cl, mem[0].target, INODE, 8, CHUNK_SIZE, 0, buf + 500, 7000,
			     &ch),
		 0);
	model_write(8, 0, buf + 500, 7000);
	CHECK_RC(tstor_write(&mem[1].cl, mem[1].target, INODE, 8, CHUNK_SIZE, 0, buf + 900, 7000,
			     &ch),
		 0);
	write_ok(8, 100000, buf + 13, 3000);
	verify(8, "after repairing a member with the same version and other bytes");
}

struct stalled {
	uint8_t *data;
	int rc;
};

static void *stalled_writer(void *arg)
{
	struct stalled *s = arg;

	s->rc = chain_write(0, 5, 0, s->data, 8192, next_seq[5], chain_ver, NULL);
	return NULL;
}

static void step_pending(uint8_t *buf, pid_t tail)
{
	static uint8_t got[CHUNK_SIZE];
	struct stalled s = {.data = buf + 4444};
	struct tstor_range r = {.inode = INODE, .index = 5, .length = CHUNK_SIZE};
	struct tstor_read_result rr;
	pthread_t th;
	int rc = -1;

	CHECK_EQ(kill(tail, SIGSTOP), 0);
	next_seq[5]++;
	ASSERT(pthread_create(&th, NULL, stalled_writer, &s) == 0);
	/* wait until the head holds the update */
	for (int i = 0; i < 200; i++) {
		rc = tstor_batch_read(&mem[0].cl, mem[0].target, &r, 1, got, sizeof(got), &rr);
		if (rc == 0 && rr.status == -SLUICE_ENOTCOMMIT)
			break;
		env_sleep_ns(10 * ENV_NS_PER_MS);
	}
	CHECK_RC(rc, 0);
	CHECK_RC(rr.status, -SLUICE_ENOTCOMMIT);
	if (rc == 0 && rr.status == -SLUICE_ENOTCOMMIT)
		printf("pending reads: ENOTCOMMIT seen on the head while the tail was stopped\n");
	/* a relaxed read gets the last committed version at once */
	{
		Sluice__ChunkBatchReadReq q = SLUICE__CHUNK_BATCH_READ_REQ__INIT;
		Sluice__ChunkReadRange rg = SLUICE__CHUNK_READ_RANGE__INIT;
		Sluice__ChunkReadRange *rgp = &rg;
		struct rpc_call_opts o = {
			.timeout_ms = 10000, .resp_bulk = got, .resp_bulk_cap = sizeof(got)};
		struct rpc_result res = {0};

		rg.inode = INODE;
		rg.index = 5;
		rg.length = CHUNK_SIZE;
		q.target_id = mem[0].target;
		q.ranges = &rgp;
		q.n_ranges = 1;
		q.relaxed = true;
		rc = storagec_batch_read(mem[0].cl.tc.rpc, mem[0].addr, &q, &o, &res);
		CHECK_RC(rc, 0);
		if (rc == 0) {
			const Sluice__ChunkBatchReadResp *resp = (const void *)res.resp;

			CHECK(resp->n_results == 1 && resp->results[0]->status == 0);
			CHECK(resp->results[0]->commit_ver == model_ver[5]);
			CHECK(memcmp(got, model[5], model_len[5]) == 0);
		}
		rpc_result_release(&res);
	}
	CHECK_EQ(kill(tail, SIGCONT), 0);
	pthread_join(th, NULL);
	CHECK_RC(s.rc, 0);
	model_write(5, 0, s.data, 8192);
	verify(5, "after the stalled write");
}

static void step_truncate_remove(void)
{
	Sluice__ChunkTruncateReq t = SLUICE__CHUNK_TRUNCATE_REQ__INIT;
	Sluice__ChunkRemoveReq r = SLUICE__CHUNK_REMOVE_REQ__INIT;
	Sluice__UpdateTag tag;
	struct rpc_call_opts o = {.timeout_ms = 20000, .retries = 0};
	struct rpc_result res = {0};
	int rc;

	tag = tag_of(6, ++next_seq[6]);
	t.target_id = mem[0].target;
	t.inode = INODE;
	t.index = 6;
	t.chunk_size = CHUNK_SIZE;
	t.length = 1000;
	t.chain_id = chain_id;
	t.chain_ver = chain_ver;
	t.tag = &tag;
	rc = storagec_truncate(mem[0].cl.tc.rpc, mem[0].addr, &t, &o, &res);
	CHECK_RC(rc, 0);
	rpc_result_release(&res);
	model_len[6] = 1000;
	model_ver[6]++;
	verify(6, "after truncate");

	tag = tag_of(7, ++next_seq[7]);
	r.target_id = mem[0].target;
	r.inode = INODE;
	r.index = 7;
	r.chain_id = chain_id;
	r.chain_ver = chain_ver;
	r.tag = &tag;
	rc = storagec_remove(mem[0].cl.tc.rpc, mem[0].addr, &r, &o, &res);
	CHECK_RC(rc, 0);
	if (rc == 0)
		CHECK(((const Sluice__ChunkRemoveResp *)(const void *)res.resp)->existed);
	rpc_result_release(&res);
	model_ver[7] = 0;
	model_len[7] = 0;
	verify(7, "after remove");
}

static void disconnect_members(void)
{
	for (unsigned i = 0; i < MEMBERS; i++)
		if (mem[i].cl.tc.r)
			tstor_client_stop(&mem[i].cl);
	memset(mem, 0, sizeof(mem));
}

/* fill mode: n whole chunks through the current head, retried until the chain lets them in */
static int fill(const char *mgmtd, unsigned n)
{
	uint8_t *data = malloc(CHUNK_SIZE);

	ASSERT(data != NULL);
	for (unsigned k = 0; k < n; k++) {
		uint32_t idx = 1000 + k;
		int rc = -1;

		env_random_bytes(data, CHUNK_SIZE);
		for (int attempt = 0; attempt < 200 && rc != 0; attempt++) {
			if (attempt > 0)
				env_sleep_ns(50 * ENV_NS_PER_MS);
			disconnect_members();
			if (load_chain(mgmtd, false) != 0)
				continue;
			connect_members();
			/* channel idx, seq 1: the same tag on every retry, so applied once */
			rc = chain_write(0, idx, 0, data, CHUNK_SIZE, 1, chain_ver, NULL);
			if (rc != 0)
				fprintf(stderr, "fill: chunk %u: %s (%s), retrying\n", idx,
					sluice_strerror(rc), mem[0].cl.detail);
		}
		if (rc != 0) {
			fprintf(stderr, "fill: chunk %u never went in\n", idx);
			free(data);
			return 1;
		}
	}
	disconnect_members();
	free(data);
	printf("fill: %u chunks written\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t *buf;
	pid_t tail;

	if (argc != 4 && !(argc == 5 && strcmp(argv[3], "fill") == 0)) {
		fprintf(stderr, "usage: %s MGMTD_URI CHAIN_ID (TAIL_PID | fill N)\n", argv[0]);
		return 2;
	}
	chain_id = (uint32_t)strtoul(argv[2], NULL, 10);
	env_seed((uint64_t)getpid());
	env_random_bytes(&client_id, sizeof(client_id));
	client_id |= 1;
	if (argc == 5)
		return fill(argv[1], (unsigned)strtoul(argv[4], NULL, 10));
	tail = (pid_t)strtol(argv[3], NULL, 10);
	if (load_chain(argv[1], true) != 0)
		return 1;
	connect_members();
	buf = malloc(CHUNK_SIZE + NCHUNKS * 4096);
	ASSERT(buf != NULL);
	env_random_bytes(buf, CHUNK_SIZE + NCHUNKS * 4096);

	step_writes(buf);
	step_retries(buf);
	step_refusals(buf);
	step_divergence(buf);
	step_pending(buf, tail);
	step_truncate_remove();

	disconnect_members();
	free(buf);
	return test_result();
}
