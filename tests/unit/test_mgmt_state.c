/*
 * test_mgmt_state.c - mgmtd's cluster map without processes: registration and ids,
 * heartbeats driving chain states, lease expiry, chain-table validation (refusals change
 * nothing), routing deltas, admin overrides, and a persistence round trip through a real
 * RocksDB store in a temp dir.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "mgmtd/mgmt_state.h"
#include "tests/lib/testlib.h"

#define MS ENV_NS_PER_MS

static struct mgmt_state *st;
static uint64_t now;

struct node {
	uint32_t id;
	uint64_t inc;
	uint64_t targets[2];
};

static int do_register(struct node *n, const char *host, uint32_t id, bool reuse_targets)
{
	Sluice__RegisterReq req = SLUICE__REGISTER_REQ__INIT;
	Sluice__TargetReg t0 = SLUICE__TARGET_REG__INIT, t1 = SLUICE__TARGET_REG__INIT;
	Sluice__TargetReg *ts[2] = {&t0, &t1};
	char *addrs[1] = {(char *)"tcp://127.0.0.1:9000"};
	Sluice__RegisterResp resp;
	struct mgmt_err err;
	int rc;

	req.node_id = id;
	req.type = SLUICE__NODE_TYPE__NODE_STORAGE;
	req.n_addrs = 1;
	req.addrs = addrs;
	req.hostname = (char *)host;
	t0.path = (char *)"/d0";
	t1.path = (char *)"/d1";
	t0.capacity_bytes = t1.capacity_bytes = 1 << 30;
	if (reuse_targets) {
		t0.id = n->targets[0];
		t1.id = n->targets[1];
	}
	req.n_targets = 2;
	req.targets = ts;
	rc = mgmt_register(st, &req, now, &resp, &err);
	if (rc)
		return rc;
	n->id = resp.node_id;
	n->inc = resp.incarnation;
	n->targets[0] = resp.target_ids[0];
	n->targets[1] = resp.target_ids[1];
	mgmt_register_resp_release(&resp);
	return 0;
}

static int heartbeat(struct node *n, Sluice__LocalState l0, Sluice__LocalState l1)
{
	Sluice__HeartbeatReq req = SLUICE__HEARTBEAT_REQ__INIT;
	Sluice__TargetReport r0 = SLUICE__TARGET_REPORT__INIT, r1 = SLUICE__TARGET_REPORT__INIT;
	Sluice__TargetReport *rs[2] = {&r0, &r1};
	Sluice__HeartbeatResp resp;
	struct mgmt_err err;

	req.node_id = n->id;
	req.incarnation = n->inc;
	r0.id = n->targets[0];
	r1.id = n->targets[1];
	r0.local_state = l0;
	r1.local_state = l1;
	req.n_targets = 2;
	req.targets = rs;
	return mgmt_heartbeat(st, &req, now, &resp, &err);
}

/* Find a target's public state through a full routing table. */
static int target_state(uint64_t id)
{
	Sluice__RoutingTable rt;
	int s = -1;

	CHECK_EQ(mgmt_routing(st, 0, &rt), 0);
	for (size_t i = 0; i < rt.n_targets; i++)
		if (rt.targets[i]->id == id)
			s = rt.targets[i]->state;
	mgmt_routing_release(&rt);
	return s;
}

static const Sluice__ChainInfo *chain0(Sluice__RoutingTable *rt)
{
	CHECK_EQ(mgmt_routing(st, 0, rt), 0);
	CHECK(rt->n_chains >= 1);
	return rt->chains[0];
}

static int make_table(uint64_t a, uint64_t b, uint64_t c, uint32_t *table)
{
	Sluice__SetChainTableReq req = SLUICE__SET_CHAIN_TABLE_REQ__INIT;
	Sluice__ChainSpec cs = SLUICE__CHAIN_SPEC__INIT, *css[1] = {&cs};
	uint64_t t[3] = {a, b, c};
	Sluice__SetChainTableResp resp;
	struct mgmt_err err;
	int rc;

	cs.targets = t;
	cs.n_targets = 3;
	req.chains = css;
	req.n_chains = 1;
	rc = mgmt_set_chain_table(st, &req, &resp, &err);
	if (rc == 0) {
		*table = resp.table_id;
		mgmt_set_chain_table_resp_release(&resp);
	} else {
		printf("  refused as expected: %s\n", err.msg);
	}
	return rc;
}

int main(void)
{
	char dir[] = "/tmp/sluice-test-mgmt-XXXXXX";
	struct node n[4] = {0};
	struct kv *kv;
	struct kv_batch *b;
	Sluice__RoutingTable rt;
	uint64_t v, v_before;
	uint32_t table = 0;
	int rc;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ(mgmt_state_create(100, 1000, &st), 0);
	now = 1000 * MS;
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(do_register(&n[i], "host", 0, false), 0);
		CHECK_EQ(heartbeat(&n[i], SLUICE__LOCAL_STATE__LS_UPTODATE,
				   SLUICE__LOCAL_STATE__LS_UPTODATE),
			 0);
	}
	CHECK(n[0].id != n[1].id && n[0].targets[0] != n[1].targets[0]);
	CHECK_EQ(target_state(n[0].targets[0]), SLUICE__TARGET_STATE__TS_SERVING);

	/* bad input changes nothing */
	v_before = mgmt_state_version(st);
	CHECK_EQ(heartbeat(&(struct node){.id = 999}, 0, 0), -ENOENT);
	CHECK_EQ(do_register(&(struct node){0}, "x", 999, false), -ENOENT);
	CHECK_EQ(make_table(n[0].targets[0], n[0].targets[1], n[1].targets[0], &table), -EINVAL);
	CHECK_EQ(make_table(n[0].targets[0], 424242, n[1].targets[0], &table), -ENOENT);
	CHECK_EQ(mgmt_state_version(st), v_before);

	CHECK_EQ(make_table(n[0].targets[0], n[1].targets[0], n[2].targets[0], &table), 0);
	CHECK(table > 0);
	CHECK_EQ(make_table(n[0].targets[0], n[1].targets[1], n[3].targets[0], &table), -EBUSY);
	v = mgmt_state_version(st);
	CHECK(v > v_before);

	/* node 1 misses its lease: its target goes offline, chain version bumps */
	now += 600 * MS;
	for (int i = 0; i < 4; i++)
		if (i != 1)
			CHECK_EQ(heartbeat(&n[i], SLUICE__LOCAL_STATE__LS_UPTODATE,
					   SLUICE__LOCAL_STATE__LS_UPTODATE),
				 0);
	now += 600 * MS;
	CHECK_EQ(mgmt_expire(st, now), 1);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_OFFLINE);
	{
		const Sluice__ChainInfo *c = chain0(&rt);

		CHECK_EQ(c->version, 2); /* created at 1, bumped once by the failure */
		CHECK_EQ(c->targets[2], n[1].targets[0]);
		mgmt_routing_release(&rt);
	}
	/* a fenced node's heartbeat is refused; it re-registers with the same ids */
	CHECK_EQ(heartbeat(&n[1], SLUICE__LOCAL_STATE__LS_ONLINE, SLUICE__LOCAL_STATE__LS_ONLINE),
		 -SLUICE_ESTALE_LEASE);
	{
		uint64_t old_t0 = n[1].targets[0], old_inc = n[1].inc;

		CHECK_EQ(do_register(&n[1], "host", n[1].id, true), 0);
		CHECK_EQ(n[1].targets[0], old_t0);
		CHECK(n[1].inc == old_inc + 1);
	}
	CHECK_EQ(heartbeat(&n[1], SLUICE__LOCAL_STATE__LS_ONLINE, SLUICE__LOCAL_STATE__LS_ONLINE),
		 0);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_SYNCING);
	CHECK_EQ(heartbeat(&n[1], SLUICE__LOCAL_STATE__LS_UPTODATE,
			   SLUICE__LOCAL_STATE__LS_UPTODATE),
		 0);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_SERVING);

	/* Regression (stuck_syncing): a member that already says up-to-date when its turn to
	 * sync comes is promoted at its next report instead of staying syncing forever. */
	now += 10 * MS;
	CHECK_EQ(heartbeat(&n[1], SLUICE__LOCAL_STATE__LS_OFFLINE, SLUICE__LOCAL_STATE__LS_OFFLINE),
		 0);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_OFFLINE);
	CHECK_EQ(heartbeat(&n[1], SLUICE__LOCAL_STATE__LS_UPTODATE,
			   SLUICE__LOCAL_STATE__LS_UPTODATE),
		 0);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_SYNCING);
	CHECK_EQ(heartbeat(&n[1], SLUICE__LOCAL_STATE__LS_UPTODATE,
			   SLUICE__LOCAL_STATE__LS_UPTODATE),
		 0);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_SERVING);

	/* routing delta: only what changed after v */
	v = mgmt_state_version(st);
	CHECK_EQ(mgmt_target_offline(st, n[2].targets[0], &(struct mgmt_err){0}), 0);
	CHECK(mgmt_state_version(st) == v + 1);
	CHECK_EQ(mgmt_routing(st, v, &rt), 0);
	CHECK(!rt.full && rt.n_targets == 1 && rt.targets[0]->id == n[2].targets[0]);
	CHECK(rt.n_chains == 1 && rt.n_nodes == 0);
	mgmt_routing_release(&rt);
	/* the override sticks while the node keeps saying online */
	CHECK_EQ(heartbeat(&n[2], SLUICE__LOCAL_STATE__LS_UPTODATE,
			   SLUICE__LOCAL_STATE__LS_UPTODATE),
		 0);
	CHECK_EQ(target_state(n[2].targets[0]), SLUICE__TARGET_STATE__TS_OFFLINE);

	/* persistence round trip: same version, same states */
	rc = kv_open(dir, &kv, NULL, 0);
	CHECK_EQ(rc, 0);
	CHECK_EQ(kv_batch_create(&b), 0);
	CHECK(mgmt_state_collect(st, b) > 0);
	CHECK_EQ(kv_write(kv, b, true), 0);
	CHECK_EQ(mgmt_state_collect(st, b), 0); /* nothing dirty any more */
	v = mgmt_state_version(st);
	mgmt_state_destroy(st);
	CHECK_EQ(mgmt_state_create(100, 1000, &st), 0);
	CHECK_EQ(mgmt_state_load(st, kv, now, &(struct mgmt_err){0}), 0);
	CHECK_EQ(mgmt_state_version(st), v);
	CHECK_EQ(target_state(n[2].targets[0]), SLUICE__TARGET_STATE__TS_OFFLINE);
	CHECK_EQ(target_state(n[1].targets[0]), SLUICE__TARGET_STATE__TS_SERVING);
	/* loaded nodes get a fresh lease */
	CHECK_EQ(mgmt_expire(st, now + 500 * MS), 0);
	CHECK_EQ(heartbeat(&n[0], SLUICE__LOCAL_STATE__LS_UPTODATE,
			   SLUICE__LOCAL_STATE__LS_UPTODATE),
		 0);
	kv_batch_destroy(b);
	kv_close(kv);
	mgmt_state_destroy(st);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK_EQ(system(cmd), 0);
	}
	return test_result();
}
