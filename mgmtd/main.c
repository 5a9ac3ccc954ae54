/*
 * main.c - sluice-mgmtd: the cluster manager daemon (DESIGN.md section 5).
 *
 * DESIGN
 * One reactor thread runs everything: the RPC server (mgmt and admin services), the lease
 * check timer and the signal handling. The cluster map (mgmt_state.c) changes only on that
 * thread, and every change is made durable before any reply goes out: persist() writes the
 * changed entities in one synced RocksDB batch right after the operation, on the reactor.
 *
 * That breaks the "blocking calls go to the worker pool" rule on purpose: mgmtd serves
 * control traffic only (registrations, heartbeats, routing fetches: a few thousand per
 * second at most, and heartbeats that change nothing write nothing), and writing inline
 * means no reply - not even a routing fetch - can expose a state that a crash would undo,
 * so the routing version never goes backwards and is never reused for different contents.
 * If a write fails, mgmtd exits: the durable state is the truth, and a restart reloads it.
 *
 * Usage: sluice-mgmtd [--config FILE] [--set section.key=value]... [--help]
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bufpool.h"
#include "common/cfg.h"
#include "common/daemon.h"
#include "common/env.h"
#include "common/err.h"
#include "common/kv.h"
#include "common/log.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"
#include "mgmtd/mgmt_state.h"
#include "proto/admin_ops.h"
#include "proto/mgmt_ops.h"
#include "sluice_config.h"

LOG_FACILITY("mgmtd");

struct mgmtd_cfg {
	char *listen;
	char *data_dir;
	char *ready_file;
	uint64_t heartbeat_ms;
	uint64_t lease_ms;
	uint64_t check_interval_ms;
	int log_level;
};

static const char *const log_levels[] = {"err", "warn", "notice", "info", "debug", NULL};

static const struct cfg_key mgmtd_keys[] = {
	{"mgmtd.listen", CFG_STRING, offsetof(struct mgmtd_cfg, listen), "tcp://127.0.0.1:7100", 0,
	 0, NULL, "address to serve on (port 0 picks a free port)"},
	{"mgmtd.data_dir", CFG_STRING, offsetof(struct mgmtd_cfg, data_dir),
	 "/var/lib/sluice/mgmtd", 0, 0, NULL, "directory of the RocksDB cluster map"},
	{"mgmtd.ready_file", CFG_STRING, offsetof(struct mgmtd_cfg, ready_file), "", 0, 0, NULL,
	 "if set, the bound address is written here once serving"},
	{"mgmtd.heartbeat_ms", CFG_DURATION, offsetof(struct mgmtd_cfg, heartbeat_ms), "1s", 10,
	 60000, NULL, "how often nodes heartbeat"},
	{"mgmtd.lease_ms", CFG_DURATION, offsetof(struct mgmtd_cfg, lease_ms), "10s", 50, 600000,
	 NULL, "a node not heard from this long is failed (it fences itself at half)"},
	{"mgmtd.check_interval_ms", CFG_DURATION, offsetof(struct mgmtd_cfg, check_interval_ms),
	 "500ms", 10, 60000, NULL, "how often leases are checked"},
	{"log.level", CFG_ENUM, offsetof(struct mgmtd_cfg, log_level), "info", 0, 0, log_levels,
	 "log threshold"},
};

static const struct cfg_schema mgmtd_schema = {
	.program = "sluice-mgmtd",
	.keys = mgmtd_keys,
	.nkeys = SLUICE_ARRAY_SIZE(mgmtd_keys),
};

struct mgmtd {
	struct mgmtd_cfg cfg;
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *rpc;
	struct kv *kv;
	struct kv_batch *batch;
	struct mgmt_state *st;
	struct reactor_timer lease_timer;
	uint64_t last_check_ns;
	struct reactor_timer stop_timer;
	struct daemon_signals signals;
	uint64_t start_ns;
	struct reactor_msg start_msg;
	int start_rc;
};

static struct mgmtd daemon_;

/* Make every change so far durable; exit if the disk refuses (see the top comment). */
static void persist(struct mgmtd *d)
{
	int n = mgmt_state_collect(d->st, d->batch), rc;
	char why[256];

	if (n == 0)
		return;
	rc = n < 0 ? n : kv_write(d->kv, d->batch, true);
	kv_batch_clear(d->batch);
	if (rc == 0)
		return;
	kv_last_error(d->kv, why, sizeof(why));
	log_err("cannot persist the cluster map: %s (%d) %s; exiting", sluice_strerror(rc), rc,
		why);
	exit(1);
}

/* A macro, not a function, so each kind of refusal has its own log rate limit: a burst of
 * bad admin requests must not hide refused heartbeats. */
#define REFUSED(req, what, rc, err)                                                               \
	do {                                                                                      \
		log_warn_rl("%s from %s refused: %s (%s)", (what), rpc_req_peer(req), (err)->msg, \
			    sluice_strerror(rc));                                                 \
		rpc_reply_error((req), (rc), (err)->msg);                                         \
	} while (0)

/* ---- mgmt service handlers ------------------------------------------------------------- */

void mgmt_h_register(struct rpc_req *req, const Sluice__RegisterReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	struct mgmt_err err = {""};
	Sluice__RegisterResp resp;
	int rc = mgmt_register(d->st, msg, env_now_ns(), &resp, &err);

	if (rc) {
		REFUSED(req, "registration", rc, &err);
		return;
	}
	persist(d);
	log_notice("node %u (%s, %s) registered, incarnation %llu, %zu targets", resp.node_id,
		   msg->hostname, msg->addrs[0], (unsigned long long)resp.incarnation,
		   msg->n_targets);
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
	mgmt_register_resp_release(&resp);
}

void mgmt_h_heartbeat(struct rpc_req *req, const Sluice__HeartbeatReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	struct mgmt_err err = {""};
	Sluice__HeartbeatResp resp;
	uint64_t before = mgmt_state_version(d->st);
	int rc = mgmt_heartbeat(d->st, msg, env_now_ns(), &resp, &err);

	if (rc) {
		REFUSED(req, "heartbeat", rc, &err);
		return;
	}
	persist(d);
	if (resp.routing_version != before)
		log_info("routing version %llu after a heartbeat of node %u",
			 (unsigned long long)resp.routing_version, msg->node_id);
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

void mgmt_h_get_routing(struct rpc_req *req, const Sluice__GetRoutingReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	Sluice__GetRoutingResp resp = SLUICE__GET_ROUTING_RESP__INIT;
	Sluice__RoutingTable rt;
	int rc = mgmt_routing(d->st, msg->since_version, &rt);

	if (rc) {
		rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
		return;
	}
	resp.routing = &rt;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL); /* packs now: rt may then go */
	mgmt_routing_release(&rt);
}

void mgmt_h_set_chain_table(struct rpc_req *req, const Sluice__SetChainTableReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	struct mgmt_err err = {""};
	Sluice__SetChainTableResp resp;
	int rc = mgmt_set_chain_table(d->st, msg, &resp, &err);

	if (rc) {
		REFUSED(req, "chain table", rc, &err);
		return;
	}
	persist(d);
	log_notice("chain table %u set: %zu chains, routing version %llu", resp.table_id,
		   resp.n_chain_ids, (unsigned long long)resp.routing_version);
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
	mgmt_set_chain_table_resp_release(&resp);
}

static void reply_admin(struct mgmtd *d, struct rpc_req *req)
{
	Sluice__AdminResp resp = SLUICE__ADMIN_RESP__INIT;

	persist(d);
	resp.routing_version = mgmt_state_version(d->st);
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

void mgmt_h_target_offline(struct rpc_req *req, const Sluice__TargetOfflineReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	struct mgmt_err err = {""};
	int rc = mgmt_target_offline(d->st, msg->target_id, &err);

	if (rc) {
		REFUSED(req, "target offline", rc, &err);
		return;
	}
	log_notice("admin set target %llu offline (from %s)", (unsigned long long)msg->target_id,
		   rpc_req_peer(req));
	reply_admin(d, req);
}

void mgmt_h_chain_set_order(struct rpc_req *req, const Sluice__ChainSetOrderReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	struct mgmt_err err = {""};
	int rc = mgmt_chain_set_order(d->st, msg, &err);

	if (rc) {
		REFUSED(req, "chain set-order", rc, &err);
		return;
	}
	log_notice("admin reordered chain %u (from %s)", msg->chain_id, rpc_req_peer(req));
	reply_admin(d, req);
}

void admin_h_ping(struct rpc_req *req, const Sluice__PingReq *msg, void *ctx)
{
	struct mgmtd *d = ctx;
	Sluice__PingResp resp = SLUICE__PING_RESP__INIT;

	resp.nonce = msg->nonce;
	resp.version = (char *)SLUICE_VERSION;
	resp.role = (char *)"mgmtd";
	resp.uptime_ms = (env_now_ns() - d->start_ns) / ENV_NS_PER_MS;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

RPC_DEFINE_HANDLERS(mgmt, MGMT_OPS)
RPC_DEFINE_HANDLERS(admin, ADMIN_OPS)

/* ---- timers, signals, startup ------------------------------------------------------------ */

static void lease_check(struct reactor_timer *t)
{
	struct mgmtd *d = SLUICE_CONTAINER_OF(t, struct mgmtd, lease_timer);
	uint64_t now = env_now_ns();
	unsigned n = 0;

	if (d->last_check_ns && now - d->last_check_ns > d->cfg.lease_ms * ENV_NS_PER_MS / 2) {
		/* We were not running (stopped, swapped out): the silence was ours, not the
		 * nodes'. Failing everyone now would take every chain down at once. */
		log_warn("lease check %llu ms late: mgmtd was stalled; renewing every lease",
			 (unsigned long long)((now - d->last_check_ns) / ENV_NS_PER_MS));
		mgmt_refresh_leases(d->st, now);
	} else {
		n = mgmt_expire(d->st, now);
	}
	d->last_check_ns = now;
	if (n) {
		persist(d);
		log_warn("%u node(s) lost their lease; routing version %llu", n,
			 (unsigned long long)mgmt_state_version(d->st));
	}
	if (reactor_timer_arm(d->r, t, d->cfg.check_interval_ms * ENV_NS_PER_MS) != 0)
		PANIC("cannot re-arm the lease timer");
}

static void stop_now(struct reactor_timer *t)
{
	struct mgmtd *d = SLUICE_CONTAINER_OF(t, struct mgmtd, stop_timer);

	reactor_stop(d->r);
}

static void on_signal(struct daemon_signals *s)
{
	struct mgmtd *d = SLUICE_CONTAINER_OF(s, struct mgmtd, signals);

	log_notice("signal received, shutting down");
	rpc_server_destroy(d->rpc);
	d->rpc = NULL;
	/* Stop the loop once the closed connections' notifications (a turn or two) have
	 * run. Leases are no longer checked: nothing changes the map any more. */
	reactor_timer_cancel(d->r, &d->lease_timer);
	reactor_timer_init(&d->stop_timer, stop_now);
	if (reactor_timer_arm(d->r, &d->stop_timer, 50 * ENV_NS_PER_MS) != 0)
		reactor_stop(d->r);
}

static int open_state(struct mgmtd *d)
{
	struct mgmt_err err = {""};
	int rc;

	if (mkdir(d->cfg.data_dir, 0750) != 0 && errno != EEXIST) {
		rc = -errno;
		log_err("data dir %s: %s", d->cfg.data_dir, sluice_strerror(rc));
		return rc;
	}
	rc = kv_open(d->cfg.data_dir, &d->kv, err.msg, sizeof(err.msg));
	if (rc) {
		log_err("cannot open the cluster map in %s: %s: %s", d->cfg.data_dir,
			sluice_strerror(rc), err.msg);
		return rc;
	}
	rc = kv_batch_create(&d->batch);
	if (rc == 0)
		rc = mgmt_state_create((uint32_t)d->cfg.heartbeat_ms, (uint32_t)d->cfg.lease_ms,
				       &d->st);
	if (rc == 0)
		rc = mgmt_state_load(d->st, d->kv, env_now_ns(), &err);
	if (rc) {
		log_err("cannot load the cluster map from %s: %s: %s", d->cfg.data_dir,
			sluice_strerror(rc), err.msg);
		return rc;
	}
	persist(d); /* a fresh store gets its counters */
	log_notice("cluster map loaded: routing version %llu",
		   (unsigned long long)mgmt_state_version(d->st));
	return 0;
}

static int start_serving(struct mgmtd *d)
{
	struct rpc_server_cfg scfg = {0};
	char bound[SLUICE_NET_ADDR_MAX];
	int rc;

	rc = bufpool_create("mgmtd", 64u << 20, &d->pool);
	if (rc)
		return rc;
	scfg.pool = d->pool;
	rc = rpc_server_create(d->r, &scfg, &d->rpc);
	if (rc == 0)
		rc = rpc_server_add_service(d->rpc, &mgmt_service_handlers, d);
	if (rc == 0)
		rc = rpc_server_add_service(d->rpc, &admin_service_handlers, d);
	if (rc)
		return rc;
	rc = rpc_server_listen(d->rpc, d->cfg.listen, bound, sizeof(bound));
	if (rc) {
		log_err("cannot listen on %s: %s (%d)", d->cfg.listen, sluice_strerror(rc), rc);
		return rc;
	}
	reactor_timer_init(&d->lease_timer, lease_check);
	rc = reactor_timer_arm(d->r, &d->lease_timer, d->cfg.check_interval_ms * ENV_NS_PER_MS);
	if (rc == 0)
		rc = daemon_watch_signals(d->r, &d->signals, on_signal);
	if (rc == 0 && d->cfg.ready_file[0])
		rc = daemon_write_ready_file(d->cfg.ready_file, bound);
	if (rc == 0)
		log_notice("serving on %s (heartbeat %llu ms, lease %llu ms)", bound,
			   (unsigned long long)d->cfg.heartbeat_ms,
			   (unsigned long long)d->cfg.lease_ms);
	return rc;
}

/* Runs as the loop's first message: everything that touches the reactor's state must be on
 * its thread. */
static void start_on_reactor(struct reactor_msg *m)
{
	struct mgmtd *d = SLUICE_CONTAINER_OF(m, struct mgmtd, start_msg);

	d->start_rc = start_serving(d);
	if (d->start_rc)
		reactor_stop(d->r);
}

int main(int argc, char **argv)
{
	struct mgmtd *d = &daemon_;
	struct cfg_err cerr;
	sigset_t set;
	int rc;

	daemon_block_signals(&set);
	rc = cfg_parse_args(&mgmtd_schema, argc, argv, &d->cfg, &cerr);
	if (rc == 1)
		return 0;
	if (rc) {
		fprintf(stderr, "sluice-mgmtd: %s\n", cerr.msg);
		return 2;
	}
	log_set_level(LOG_LVL_ERR + d->cfg.log_level);
	net_register_builtin();
	d->start_ns = env_now_ns();
	rc = reactor_create("mgmtd", &d->r);
	if (rc == 0)
		rc = open_state(d);
	d->start_msg.fn = start_on_reactor;
	if (rc == 0)
		rc = reactor_post(d->r, &d->start_msg);
	if (rc == 0)
		rc = reactor_run(d->r);
	if (rc == 0)
		rc = d->start_rc;
	if (rc)
		log_err("exiting: %s (%d)", sluice_strerror(rc), rc);
	reactor_destroy(d->r);
	kv_batch_destroy(d->batch);
	kv_close(d->kv);
	mgmt_state_destroy(d->st);
	cfg_free(&mgmtd_schema, &d->cfg);
	return rc ? 1 : 0;
}
