/*
 * test_nodeagent.c - the node agent (client/nodeagent.c) against a fake mgmtd in this
 * process: registration and persisted ids, heartbeats with reports, routing callbacks,
 * self-fencing when mgmtd stops answering, unfencing when it answers again, re-registration
 * on ESTALE_LEASE, restart with the same ids, a damaged ids file, bad configurations, the
 * worker-pool path for persisting, and stopping with a call in flight.
 *
 * Threads: the fake mgmtd runs on its own reactor thread, the agent on a test client's
 * reactor thread; the main thread drives both through run_on_reactor and polls with short
 * sleeps. Timing: heartbeat 50 ms, lease 400 ms (fence after 200 ms without success).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/nodeagent.h"
#include "common/env.h"
#include "common/err.h"
#include "common/net/net.h"
#include "common/worker.h"
#include "proto/mgmt_ops.h"
#include "tests/lib/testlib.h"

#define HB_MS	 50u
#define LEASE_MS 400u

/* ---- fake mgmtd -------------------------------------------------------------------------- */

enum fake_mode { FAKE_NORMAL, FAKE_HOLD, FAKE_FAIL };

struct fake_mgmtd {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *rpc;
	char uri[SLUICE_NET_ADDR_MAX];
	int rc;
	/* set by the main thread, read on the reactor */
	_Atomic int mode;
	_Atomic uint64_t routing_version;
	/* reactor-owned; the main thread reads them through run_on_reactor or atomics */
	_Atomic unsigned registers, heartbeats, stale_replies;
	uint32_t next_node;
	uint64_t next_target;
	uint64_t incarnation; /* current incarnation of node 1 (the only node we track) */
	uint32_t last_reg_node;
	uint64_t last_reg_ids[8];
	unsigned last_reg_n;
	Sluice__LocalState last_states[8];
	struct rpc_req *held[256];
	unsigned nheld;
};

static struct fake_mgmtd fake;

static void fake_reply_err(struct rpc_req *req, int rc)
{
	rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
}

/* Returns true if the request was held or failed by the mode. */
static bool fake_mode_takes(struct rpc_req *req)
{
	int mode = atomic_load(&fake.mode);

	if (mode == FAKE_HOLD && fake.nheld < SLUICE_ARRAY_SIZE(fake.held)) {
		fake.held[fake.nheld++] = req;
		return true;
	}
	if (mode != FAKE_NORMAL) {
		fake_reply_err(req, -EIO);
		return true;
	}
	return false;
}

void mgmt_h_register(struct rpc_req *req, const Sluice__RegisterReq *m, void *ctx)
{
	Sluice__RegisterResp resp = SLUICE__REGISTER_RESP__INIT;
	uint64_t ids[8];

	atomic_fetch_add(&fake.registers, 1);
	if (fake_mode_takes(req))
		return;
	if (m->n_targets > 8 || m->n_addrs == 0 || m->type != SLUICE__NODE_TYPE__NODE_STORAGE) {
		fake_reply_err(req, -EINVAL);
		return;
	}
	if (m->node_id && m->node_id >= fake.next_node) {
		fake_reply_err(req, -ENOENT);
		return;
	}
	fake.last_reg_node = m->node_id;
	fake.last_reg_n = (unsigned)m->n_targets;
	for (size_t i = 0; i < m->n_targets; i++) {
		fake.last_reg_ids[i] = m->targets[i]->id;
		ids[i] = m->targets[i]->id ? m->targets[i]->id : fake.next_target++;
	}
	resp.node_id = m->node_id ? m->node_id : fake.next_node++;
	resp.n_target_ids = m->n_targets;
	resp.target_ids = ids;
	resp.incarnation = ++fake.incarnation;
	resp.heartbeat_ms = HB_MS;
	resp.lease_ms = LEASE_MS;
	resp.routing_version = atomic_load(&fake.routing_version);
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

void mgmt_h_heartbeat(struct rpc_req *req, const Sluice__HeartbeatReq *m, void *ctx)
{
	Sluice__HeartbeatResp resp = SLUICE__HEARTBEAT_RESP__INIT;

	atomic_fetch_add(&fake.heartbeats, 1);
	if (fake_mode_takes(req))
		return;
	if (m->node_id == 0 || m->node_id >= fake.next_node) {
		fake_reply_err(req, -ENOENT);
		return;
	}
	if (m->incarnation != fake.incarnation) {
		atomic_fetch_add(&fake.stale_replies, 1);
		fake_reply_err(req, -SLUICE_ESTALE_LEASE);
		return;
	}
	for (size_t i = 0; i < m->n_targets && i < 8; i++)
		fake.last_states[i] = m->targets[i]->local_state;
	resp.routing_version = atomic_load(&fake.routing_version);
	resp.lease_ms = LEASE_MS;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

void mgmt_h_get_routing(struct rpc_req *req, const Sluice__GetRoutingReq *m, void *ctx)
{
	fake_reply_err(req, -ENOSYS);
}

void mgmt_h_set_chain_table(struct rpc_req *req, const Sluice__SetChainTableReq *m, void *ctx)
{
	fake_reply_err(req, -ENOSYS);
}

void mgmt_h_target_offline(struct rpc_req *req, const Sluice__TargetOfflineReq *m, void *ctx)
{
	fake_reply_err(req, -ENOSYS);
}

void mgmt_h_chain_set_order(struct rpc_req *req, const Sluice__ChainSetOrderReq *m, void *ctx)
{
	fake_reply_err(req, -ENOSYS);
}

RPC_DEFINE_HANDLERS(mgmt, MGMT_OPS)

static void fake_start_fn(void *arg)
{
	struct rpc_server_cfg cfg = {.pool = fake.pool};

	fake.rc = rpc_server_create(fake.r, &cfg, &fake.rpc);
	if (fake.rc == 0)
		fake.rc = rpc_server_add_service(fake.rpc, &mgmt_service_handlers, &fake);
	if (fake.rc == 0)
		fake.rc = rpc_server_listen(fake.rpc, "tcp://127.0.0.1:0", fake.uri,
					    sizeof(fake.uri));
}

/* Answer every held request (late: the agent gave up on them long ago). */
static void fake_release_fn(void *arg)
{
	for (unsigned i = 0; i < fake.nheld; i++)
		fake_reply_err(fake.held[i], -EIO);
	fake.nheld = 0;
}

static void fake_stop_fn(void *arg)
{
	fake_release_fn(NULL);
	rpc_server_destroy(fake.rpc);
}

/* Simulate mgmtd failing the node (lease expired): its incarnation is no longer current. */
static void fake_expire_fn(void *arg)
{
	fake.incarnation++;
}

struct reg_seen {
	uint32_t node;
	unsigned n;
	uint64_t ids[8];
	Sluice__LocalState states[8];
};

static void fake_seen_fn(void *arg)
{
	struct reg_seen *s = arg;

	s->node = fake.last_reg_node;
	s->n = fake.last_reg_n;
	memcpy(s->ids, fake.last_reg_ids, sizeof(s->ids));
	memcpy(s->states, fake.last_states, sizeof(s->states));
}

static void fake_set_mode(int mode)
{
	atomic_store(&fake.mode, mode);
	if (mode != FAKE_HOLD)
		run_on_reactor(fake.r, fake_release_fn, NULL);
}

static int fake_start(void)
{
	int rc;

	net_register_builtin();
	fake.next_node = 1;
	fake.next_target = 101;
	atomic_store(&fake.routing_version, 7);
	rc = bufpool_create("fake-mgmtd", 16u * SLUICE_MiB, &fake.pool);
	if (rc == 0)
		rc = reactor_create("fake-mgmtd", &fake.r);
	if (rc == 0)
		rc = reactor_start(fake.r);
	if (rc == 0) {
		run_on_reactor(fake.r, fake_start_fn, NULL);
		rc = fake.rc;
	}
	return rc;
}

static void fake_stop(void)
{
	run_on_reactor(fake.r, fake_stop_fn, NULL);
	env_sleep_ms(50); /* let deferred connection teardown run */
	reactor_destroy(fake.r);
	bufpool_destroy(fake.pool);
}

/* ---- the agent under test ---------------------------------------------------------------- */

struct agent_ctx {
	struct test_client *tc;
	struct nodeagent_cfg cfg;
	struct nodeagent *a;
	int rc;
	/* reactor-owned, read through run_on_reactor */
	unsigned fence_calls, unfence_calls;
	uint64_t routing_seen;
	unsigned routing_calls;
	Sluice__LocalState report_state;
};

struct agent_snap {
	uint32_t node;
	uint64_t ids[8];
	uint64_t incarnation, routing;
	bool fenced, registered;
	unsigned fence_calls, unfence_calls, routing_calls;
	uint64_t routing_seen;
};

static void report_cb(void *arg, uint64_t id, unsigned index, Sluice__TargetReport *out)
{
	struct agent_ctx *ac = arg;

	if (index == 1)
		out->local_state = ac->report_state;
}

static void fence_cb(void *arg, bool fenced)
{
	struct agent_ctx *ac = arg;

	if (fenced)
		ac->fence_calls++;
	else
		ac->unfence_calls++;
}

static void routing_cb(void *arg, uint64_t version)
{
	struct agent_ctx *ac = arg;

	ac->routing_seen = version;
	ac->routing_calls++;
}

static void agent_start_fn(void *arg)
{
	struct agent_ctx *ac = arg;

	ac->cfg.report = report_cb;
	ac->cfg.on_fence = fence_cb;
	ac->cfg.on_routing = routing_cb;
	ac->cfg.arg = ac;
	ac->rc = nodeagent_start(ac->tc->r, ac->tc->rpc, &ac->cfg, &ac->a);
}

static void agent_stop_fn(void *arg)
{
	struct agent_ctx *ac = arg;

	nodeagent_stop(ac->a);
	ac->a = NULL;
}

struct snap_req {
	struct agent_ctx *ac;
	struct agent_snap s;
};

static void agent_snap_fn(void *arg)
{
	struct snap_req *q = arg;
	struct nodeagent *a = q->ac->a;

	memset(&q->s, 0, sizeof(q->s));
	q->s.node = nodeagent_node_id(a);
	for (unsigned i = 0; i < q->ac->cfg.ntargets && i < 8; i++)
		q->s.ids[i] = nodeagent_target_id(a, i);
	q->s.incarnation = nodeagent_incarnation(a);
	q->s.routing = nodeagent_routing_version(a);
	q->s.fenced = nodeagent_fenced(a);
	q->s.registered = nodeagent_registered(a);
	q->s.fence_calls = q->ac->fence_calls;
	q->s.unfence_calls = q->ac->unfence_calls;
	q->s.routing_calls = q->ac->routing_calls;
	q->s.routing_seen = q->ac->routing_seen;
}

static struct agent_snap snap(struct agent_ctx *ac)
{
	struct snap_req q = {.ac = ac};

	run_on_reactor(ac->tc->r, agent_snap_fn, &q);
	return q.s;
}

struct set_state {
	struct agent_ctx *ac;
	Sluice__LocalState st;
};

static void set_state_fn(void *arg)
{
	struct set_state *ss = arg;

	ss->ac->report_state = ss->st;
}

/* Poll until the agent is registered and unfenced (or fenced), up to ms. */
static bool wait_fenced(struct agent_ctx *ac, bool fenced, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 10) {
		struct agent_snap s = snap(ac);

		if (s.fenced == fenced && (fenced || s.registered))
			return true;
		env_sleep_ms(10);
	}
	return false;
}

static char state_dir[256];
static const char *addrs[] = {"tcp://127.0.0.1:1"};
static char paths[3][300];
static struct nodeagent_target targets[3];

static void agent_cfg(struct agent_ctx *ac, struct test_client *tc, unsigned ntargets,
		      struct worker_pool *workers)
{
	memset(ac, 0, sizeof(*ac));
	ac->tc = tc;
	ac->report_state = SLUICE__LOCAL_STATE__LS_ONLINE;
	ac->cfg = (struct nodeagent_cfg){
		.mgmtd_uri = fake.uri,
		.type = SLUICE__NODE_TYPE__NODE_STORAGE,
		.addrs = addrs,
		.naddrs = 1,
		.hostname = "testhost",
		.state_dir = state_dir,
		.targets = targets,
		.ntargets = ntargets,
		.workers = workers,
	};
}

static int start_agent(struct agent_ctx *ac)
{
	run_on_reactor(ac->tc->r, agent_start_fn, ac);
	return ac->rc;
}

static void stop_agent(struct agent_ctx *ac)
{
	run_on_reactor(ac->tc->r, agent_stop_fn, ac);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ASSERT(f);
	fputs(text, f);
	fclose(f);
}

/* ---- scenarios ---------------------------------------------------------------------------- */

static void test_first_registration(struct test_client *tc)
{
	struct agent_ctx ac;
	struct agent_snap s;
	struct reg_seen seen;
	char ids_path[300], want[1024];
	unsigned hb0;
	uint64_t t0;

	agent_cfg(&ac, tc, 2, NULL);
	CHECK_EQ(start_agent(&ac), 0);
	s = snap(&ac);
	CHECK(s.fenced); /* starts fenced */
	CHECK(wait_fenced(&ac, false, 2000));
	s = snap(&ac);
	CHECK_EQ(s.node, 1);
	CHECK_EQ(s.ids[0], 101);
	CHECK_EQ(s.ids[1], 102);
	CHECK_EQ(s.incarnation, 1);
	CHECK_EQ(s.unfence_calls, 1);
	CHECK_EQ(s.fence_calls, 0);
	CHECK_EQ(s.routing_seen, 7);
	CHECK_EQ(s.routing_calls, 1);
	run_on_reactor(fake.r, fake_seen_fn, &seen);
	CHECK_EQ(seen.node, 0);
	CHECK_EQ(seen.ids[0], 0);

	snprintf(ids_path, sizeof(ids_path), "%s/node.ids", state_dir);
	snprintf(want, sizeof(want), "node_id 1\ntarget %s 101\ntarget %s 102\n", paths[0],
		 paths[1]);
	CHECK(slurp(ids_path) && strcmp(slurp(ids_path), want) == 0);

	/* Heartbeats flow at the interval, with the reports the callback filled. */
	struct set_state ss = {&ac, SLUICE__LOCAL_STATE__LS_UPTODATE};
	run_on_reactor(tc->r, set_state_fn, &ss);
	hb0 = atomic_load(&fake.heartbeats);
	env_sleep_ms(10 * HB_MS);
	CHECK(atomic_load(&fake.heartbeats) - hb0 >= 6);
	CHECK(atomic_load(&fake.heartbeats) - hb0 <= 12);
	run_on_reactor(fake.r, fake_seen_fn, &seen);
	CHECK_EQ(seen.states[0], SLUICE__LOCAL_STATE__LS_ONLINE);
	CHECK_EQ(seen.states[1], SLUICE__LOCAL_STATE__LS_UPTODATE);

	/* A routing change in a heartbeat reply reaches on_routing. */
	atomic_store(&fake.routing_version, 9);
	env_sleep_ms(3 * HB_MS);
	s = snap(&ac);
	CHECK_EQ(s.routing_seen, 9);
	CHECK_EQ(s.routing, 9);
	CHECK_EQ(s.routing_calls, 2);

	/* mgmtd stops answering: fenced after lease/2, not much later, heartbeats don't pile
	 * up (one per interval at most, each timing out before the next). */
	hb0 = atomic_load(&fake.heartbeats);
	t0 = env_now_ns();
	fake_set_mode(FAKE_HOLD);
	CHECK(wait_fenced(&ac, true, 2000));
	{
		uint64_t el_ms = (env_now_ns() - t0) / ENV_NS_PER_MS;

		CHECK(el_ms >= LEASE_MS / 2 - 2 * HB_MS);
		CHECK(el_ms <= LEASE_MS / 2 + 2 * HB_MS);
		CHECK(atomic_load(&fake.heartbeats) - hb0 <= el_ms / HB_MS + 2);
	}
	s = snap(&ac);
	CHECK_EQ(s.fence_calls, 1);
	CHECK(s.registered); /* still registered: mgmtd may not have failed it yet */
	env_sleep_ms(100);

	/* mgmtd answers again, the lease still holds there: unfenced, same incarnation. */
	fake_set_mode(FAKE_NORMAL);
	CHECK(wait_fenced(&ac, false, 1000));
	s = snap(&ac);
	CHECK_EQ(s.incarnation, 1);
	CHECK_EQ(s.unfence_calls, 2);
	CHECK_EQ(atomic_load(&fake.registers), 1);

	/* mgmtd failed the node meanwhile: ESTALE_LEASE fences at once and re-registers with
	 * the same ids under a new incarnation, then unfences. */
	run_on_reactor(fake.r, fake_expire_fn, NULL);
	for (unsigned t = 0; t < 1000; t += 10) { /* the fenced window may be very short */
		s = snap(&ac);
		if (s.fence_calls == 2 && !s.fenced)
			break;
		env_sleep_ms(10);
	}
	CHECK_EQ(s.incarnation, 3); /* the fake bumped once to expire, once to register */
	CHECK_EQ(s.node, 1);
	CHECK_EQ(s.fence_calls, 2);
	CHECK_EQ(s.unfence_calls, 3);
	CHECK(atomic_load(&fake.stale_replies) >= 1);
	CHECK_EQ(atomic_load(&fake.registers), 2);
	run_on_reactor(fake.r, fake_seen_fn, &seen);
	CHECK_EQ(seen.node, 1);
	CHECK_EQ(seen.ids[0], 101);
	CHECK_EQ(seen.ids[1], 102);
	stop_agent(&ac);
}

/* A restarted node registers with its persisted ids; a new target gets a new id. */
static void test_restart(struct test_client *tc, struct worker_pool *workers)
{
	struct agent_ctx ac;
	struct agent_snap s;
	struct reg_seen seen;
	char ids_path[300], want[1024];
	struct stat st0, st1;

	snprintf(ids_path, sizeof(ids_path), "%s/node.ids", state_dir);
	CHECK_EQ(stat(ids_path, &st0), 0);
	agent_cfg(&ac, tc, 2, workers);
	CHECK_EQ(start_agent(&ac), 0);
	s = snap(&ac);
	CHECK_EQ(s.node, 1); /* known before registering */
	CHECK_EQ(s.ids[1], 102);
	CHECK(wait_fenced(&ac, false, 2000));
	run_on_reactor(fake.r, fake_seen_fn, &seen);
	CHECK_EQ(seen.node, 1);
	CHECK_EQ(seen.ids[0], 101);
	CHECK_EQ(seen.ids[1], 102);
	CHECK_EQ(stat(ids_path, &st1), 0);
	CHECK_EQ(st0.st_ino, st1.st_ino); /* unchanged ids: the file is not rewritten */
	stop_agent(&ac);

	/* One more target, and the old ones in a different order. */
	targets[2] = targets[0];
	targets[0] = (struct nodeagent_target){paths[2], 1ull << 40};
	agent_cfg(&ac, tc, 3, workers);
	CHECK_EQ(start_agent(&ac), 0);
	CHECK(wait_fenced(&ac, false, 2000));
	s = snap(&ac);
	CHECK_EQ(s.ids[0], 103);
	CHECK_EQ(s.ids[1], 102);
	CHECK_EQ(s.ids[2], 101);
	run_on_reactor(fake.r, fake_seen_fn, &seen);
	CHECK_EQ(seen.ids[0], 0);
	CHECK_EQ(seen.ids[1], 102);
	CHECK_EQ(seen.ids[2], 101);
	snprintf(want, sizeof(want), "node_id 1\ntarget %s 103\ntarget %s 102\ntarget %s 101\n",
		 paths[2], paths[1], paths[0]);
	CHECK(slurp(ids_path) && strcmp(slurp(ids_path), want) == 0);
	stop_agent(&ac);
	targets[0] = targets[2];
}

/* mgmtd unreachable at first: the agent keeps retrying, fenced, then registers. */
static void test_register_retry(struct test_client *tc)
{
	struct agent_ctx ac;
	unsigned r0 = atomic_load(&fake.registers);

	fake_set_mode(FAKE_FAIL);
	agent_cfg(&ac, tc, 2, NULL);
	CHECK_EQ(start_agent(&ac), 0);
	env_sleep_ms(5 * NODEAGENT_DEFAULT_HEARTBEAT_MS / 2);
	CHECK(snap(&ac).fenced);
	CHECK(!snap(&ac).registered);
	/* Before knowing mgmtd's interval, retries go at the default one. */
	CHECK(atomic_load(&fake.registers) - r0 >= 2);
	CHECK(atomic_load(&fake.registers) - r0 <= 4);
	fake_set_mode(FAKE_NORMAL);
	CHECK(wait_fenced(&ac, false, 2 * NODEAGENT_DEFAULT_HEARTBEAT_MS));
	stop_agent(&ac);
}

/* Stop with a call in flight: nothing runs afterwards, memory freed when it completes. */
static void test_stop_inflight(struct test_client *tc)
{
	struct agent_ctx ac;

	agent_cfg(&ac, tc, 2, NULL);
	CHECK_EQ(start_agent(&ac), 0);
	CHECK(wait_fenced(&ac, false, 2000));
	fake_set_mode(FAKE_HOLD);
	env_sleep_ms(HB_MS + 10); /* a heartbeat is now held */
	stop_agent(&ac);
	env_sleep_ms(2 * HB_MS);
	CHECK_EQ(ac.fence_calls, 0); /* reactor quiet now: no callback after stop */
	fake_set_mode(FAKE_NORMAL);
}

static void test_bad_start(struct test_client *tc)
{
	struct agent_ctx ac;
	char ids_path[300], saved[4096];
	static const char *const bad_files[] = {
		"",
		"node_id 1",
		"node_id 0\n",
		"node_id x\n",
		"node_id 1\nnode_id 2\n",
		"target /a 1\n",
		"node_id 1\ntarget /a\n",
		"node_id 1\ntarget /a 0\n",
		"node_id 1\ngarbage\n",
		"node_id 99999999999\n",
	};

	snprintf(ids_path, sizeof(ids_path), "%s/node.ids", state_dir);
	snprintf(saved, sizeof(saved), "%s", slurp(ids_path));
	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(bad_files); i++) {
		write_text(ids_path, bad_files[i]);
		agent_cfg(&ac, tc, 2, NULL);
		if (start_agent(&ac) != -EBADMSG) {
			fprintf(stderr, "bad ids file %u accepted (%d)\n", i, ac.rc);
			CHECK(0);
			if (ac.rc == 0)
				stop_agent(&ac);
		}
	}
	/* The same path twice in the file. */
	snprintf(saved + strlen(saved), sizeof(saved) - strlen(saved), "target %s 101\n", paths[0]);
	write_text(ids_path, saved);
	agent_cfg(&ac, tc, 2, NULL);
	CHECK_EQ(start_agent(&ac), -EBADMSG);
	unlink(ids_path);

	agent_cfg(&ac, tc, 2, NULL);
	ac.cfg.state_dir = "/nonexistent/sluice-test";
	CHECK_EQ(start_agent(&ac), -ENOENT);
	agent_cfg(&ac, tc, 2, NULL);
	ac.cfg.naddrs = 0;
	CHECK_EQ(start_agent(&ac), -EINVAL);
	agent_cfg(&ac, tc, 2, NULL);
	ac.cfg.type = SLUICE__NODE_TYPE__NODE_UNKNOWN;
	CHECK_EQ(start_agent(&ac), -EINVAL);
	agent_cfg(&ac, tc, 2, NULL);
	ac.cfg.type = (Sluice__NodeType)77;
	CHECK_EQ(start_agent(&ac), -EINVAL);
	agent_cfg(&ac, tc, 2, NULL);
	ac.cfg.mgmtd_uri = NULL;
	CHECK_EQ(start_agent(&ac), -EINVAL);
	agent_cfg(&ac, tc, 2, NULL);
	ac.cfg.mgmtd_uri = "127.0.0.1:7100"; /* no scheme */
	CHECK_EQ(start_agent(&ac), -EINVAL);
	{
		struct nodeagent_target dup[2] = {targets[0], targets[0]};

		agent_cfg(&ac, tc, 2, NULL);
		ac.cfg.targets = dup;
		CHECK_EQ(start_agent(&ac), -EINVAL);
		dup[1].path = "/a\nb";
		CHECK_EQ(start_agent(&ac), -EINVAL);
	}
}

int main(void)
{
	struct test_client tc;
	struct worker_pool *workers = NULL;
	char tmpl[] = "/tmp/test_nodeagent.XXXXXX";

	if (!mkdtemp(tmpl))
		test_skip("mkdtemp failed");
	snprintf(state_dir, sizeof(state_dir), "%s", tmpl);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/target %u", state_dir, i); /* a space */
		targets[i] = (struct nodeagent_target){paths[i], 1ull << 40};
	}
	if (fake_start() != 0)
		test_skip("cannot start the fake mgmtd");
	if (test_client_start(&tc, NULL, 16u * SLUICE_MiB) != 0)
		test_skip("cannot start a client");
	if (worker_pool_create("persist", 1, 16, &workers) != 0)
		test_skip("cannot start a worker pool");

	test_first_registration(&tc);
	test_restart(&tc, workers);
	test_register_retry(&tc);
	test_stop_inflight(&tc);
	test_bad_start(&tc);

	test_client_stop(&tc);
	worker_pool_destroy(workers);
	fake_stop();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", state_dir);
	}
	return test_result();
}
