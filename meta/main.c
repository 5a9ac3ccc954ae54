/*
 * main.c - sluice-meta: the metadata server daemon (DESIGN.md section 7).
 *
 * DESIGN
 * Threads: the main thread parses the configuration, opens the store, starts everything
 * and then only waits for shutdown; one reactor thread runs the RPC server (meta and admin
 * services), the rpc client (node agent registration and heartbeats, routing fetches for
 * statfs, layouts and GC; the GC's calls to storage daemons), the timers and the
 * SIGTERM/SIGINT signalfd (common/daemon.h: the signals are blocked in every thread); a
 * worker pool runs the store calls (they block on RocksDB) and posts the replies back to
 * the reactor, except point reads the reactor can answer from memory (service.c).
 *
 * Background work, each at most one job at a time, on the same pool:
 *   - GC (every meta.gc_interval): meta_gc_run, whose chunk removal goes through
 *     remove_chunks below: REMOVE_RANGE [ino:0, ino+1:0) on every target of every chain of
 *     the file's stripe, found in the last routing table (a copy shared with the workers
 *     under routing_mu), with blocking rpc calls from the worker (rpc_call_sync);
 *   - expiry (every meta.expire_interval): sessions and stored results of clients not
 *     heard from within meta.session_timeout.
 *
 * Shutdown runs from the main thread so that the reactor keeps running while the pieces
 * that need it finish: stop serving, stop the agent and timers (on the reactor), drain the
 * worker pool (its done callbacks run on the reactor), destroy the rpc client, then the
 * reactor, then close the store.
 *
 * The node is registered with mgmtd as a NODE_META node without targets. A meta server
 * keeps serving while fenced: there is one meta server per namespace today and no one to
 * take over; the fence state is logged. (With Raft replicas this changes.)
 *
 * Usage: sluice-meta [--config FILE] [--set section.key=value]... [--help]
 *        sluice-meta --format [--force] [--config FILE] [--set ...]
 * --format creates an empty namespace in meta.data_dir and exits; it refuses a store that
 * holds anything unless --force (which destroys it). A normal start on an empty store
 * formats it (first start); a store that is not ours is refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/nodeagent.h"
#include "common/bufpool.h"
#include "common/cfg.h"
#include "common/daemon.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"
#include "common/worker.h"
#include "meta/service.h"
#include "proto/admin_ops.h"
#include "proto/mgmt_ops.h"
#include "proto/storage_ops.h"
#include "sluice_config.h"

LOG_FACILITY("meta");

struct meta_cfg {
	char *listen, *data_dir, *ready_file, *mgmtd;
	uint64_t workers, lock_timeout_ms, cache_bytes;
	bool sync, gc_skip_chunks;
	uint64_t gc_delay_ms, gc_interval_ms, gc_batch;
	uint64_t session_timeout_ms, expire_interval_ms, routing_interval_ms;
	uint64_t chunk_size, stripe, chain_table;
	int log_level;
};

static const char *const log_levels[] = {"err", "warn", "notice", "info", "debug", NULL};

#define K(name, type, field, def, min, max, doc)                                       \
	{                                                                              \
		name, type, offsetof(struct meta_cfg, field), def, min, max, NULL, doc \
	}

static const struct cfg_key meta_keys[] = {
	K("meta.listen", CFG_STRING, listen, "tcp://127.0.0.1:7200", 0, 0,
	  "address to serve on (port 0 picks a free port)"),
	K("meta.data_dir", CFG_STRING, data_dir, "/var/lib/sluice/meta", 0, 0,
	  "directory of the node ids and of the namespace store (store/)"),
	K("meta.ready_file", CFG_STRING, ready_file, "", 0, 0,
	  "if set, the bound address is written here once serving"),
	K("meta.mgmtd", CFG_STRING, mgmtd, "tcp://127.0.0.1:7100", 0, 0,
	  "mgmtd to register with; empty: run without one (no statfs capacity)"),
	K("meta.workers", CFG_UINT, workers, "4", 1, SLUICE_WORKERS_MAX,
	  "threads running store transactions"),
	K("meta.sync", CFG_BOOL, sync, "true", 0, 0,
	  "fdatasync the WAL before acknowledging (false: a power loss may lose acked ops)"),
	K("meta.lock_timeout_ms", CFG_DURATION, lock_timeout_ms, "1s", 1, 60000,
	  "a transaction waits this long for a locked key, then retries"),
	K("meta.cache_size", CFG_SIZE, cache_bytes, "256M", 1 << 20, 1ll << 40,
	  "RocksDB block cache"),
	K("meta.gc_delay_ms", CFG_DURATION, gc_delay_ms, "60s", 0, 0,
	  "an unlinked file's chunks are removed this long after its last link went"),
	K("meta.gc_interval_ms", CFG_DURATION, gc_interval_ms, "1s", 10, 3600000,
	  "how often the GC queue is looked at"),
	K("meta.gc_batch", CFG_UINT, gc_batch, "256", 1, 65536, "GC entries handled per pass"),
	K("meta.gc_skip_chunks", CFG_BOOL, gc_skip_chunks, "false", 0, 0,
	  "delete unlinked inodes without removing chunks (no storage daemons: tests)"),
	K("meta.session_timeout_ms", CFG_DURATION, session_timeout_ms, "60s", 100, 86400000,
	  "write sessions of a client silent this long are ended"),
	K("meta.expire_interval_ms", CFG_DURATION, expire_interval_ms, "5s", 10, 3600000,
	  "how often sessions are checked for expiry"),
	K("meta.routing_interval_ms", CFG_DURATION, routing_interval_ms, "10s", 100, 3600000,
	  "how often the routing table (capacity, chain tables) is fetched"),
	K("layout.chunk_size", CFG_SIZE, chunk_size, "1M", SLUICE_CHUNK_SIZE_MIN,
	  SLUICE_CHUNK_SIZE_MAX, "root directory's chunk size, at format (power of two)"),
	K("layout.stripe", CFG_UINT, stripe, "16", 1, LAYOUT_STRIPE_MAX,
	  "root directory's stripe, at format"),
	K("layout.chain_table", CFG_UINT, chain_table, "1", 0, UINT32_MAX,
	  "root directory's chain table, at format"),
	{"log.level", CFG_ENUM, offsetof(struct meta_cfg, log_level), "info", 0, 0, log_levels,
	 "log threshold"},
};

static const struct cfg_schema meta_schema = {
	.program = "sluice-meta",
	.keys = meta_keys,
	.nkeys = SLUICE_ARRAY_SIZE(meta_keys),
};

/* A private copy of a routing table (unpacked from its packed form, so it owns its memory),
 * shared by the reactor and the GC's workers. */
struct routing_copy {
	Sluice__RoutingTable *rt;
	unsigned refs; /* under metad.routing_mu */
};

/* REMOVE_RANGE calls on one target within one GC step before the inode is left queued for
 * the next pass (each call removes up to the storage daemon's batch; a file has at most
 * LAYOUT_CHUNKS_MAX chunks). */
#define GC_REMOVE_CALLS_MAX  1024u
#define GC_REMOVE_TIMEOUT_MS 10000u

struct metad {
	struct meta_cfg cfg;
	struct meta_store_cfg scfg;
	struct meta_service svc;
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *rpc;
	struct rpc_client *client;
	struct nodeagent *agent;
	char bound[SLUICE_NET_ADDR_MAX];
	uint64_t start_ns;
	/* reactor thread: */
	struct reactor_timer gc_timer, expire_timer, routing_timer;
	struct worker_job gc_job, expire_job;
	bool gc_running, expire_running, routing_inflight;
	int gc_result, expire_result;
	struct daemon_signals signals;
	sem_t stop_sem; /* posted by the signal handler (reactor) for main() */
	/* The last routing table, for the GC's workers: replaced by the reactor, read by
	 * workers holding a reference (routing_get/routing_put). */
	pthread_mutex_t routing_mu;
	struct routing_copy *routing;
	atomic_bool gc_stop; /* shutdown: a GC pass in a worker stops between calls */
};

static struct metad daemon_;

/* ---- running a function on the reactor from the main thread ----------------------------- */

struct on_reactor {
	struct reactor_msg msg;
	void (*fn)(struct metad *d);
	struct metad *d;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void on_reactor_fn(struct reactor_msg *m)
{
	struct on_reactor *o = SLUICE_CONTAINER_OF(m, struct on_reactor, msg);

	o->fn(o->d);
	pthread_mutex_lock(&o->mu);
	o->done = true;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static void run_on_reactor_sync(struct metad *d, void (*fn)(struct metad *d))
{
	struct on_reactor o = {.msg.fn = on_reactor_fn, .fn = fn, .d = d};

	pthread_mutex_init(&o.mu, NULL);
	pthread_cond_init(&o.cv, NULL);
	reactor_post_wait(d->r, &o.msg);
	pthread_mutex_lock(&o.mu);
	while (!o.done)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
}

/* ---- GC and expiry (jobs on the pool; timers on the reactor) ---------------------------- */

/* ---- the routing table copy (reactor writes, workers read) ------------------------------- */

static void routing_put(struct metad *d, struct routing_copy *c)
{
	bool last;

	if (!c)
		return;
	pthread_mutex_lock(&d->routing_mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&d->routing_mu);
	if (last) {
		sluice__routing_table__free_unpacked(c->rt, NULL);
		free(c);
	}
}

static struct routing_copy *routing_get(struct metad *d)
{
	struct routing_copy *c;

	pthread_mutex_lock(&d->routing_mu);
	c = d->routing;
	if (c)
		c->refs++;
	pthread_mutex_unlock(&d->routing_mu);
	return c;
}

/* Reactor thread: keep a copy of rt for the GC. A failure keeps the previous copy. */
static void routing_keep(struct metad *d, const Sluice__RoutingTable *rt)
{
	size_t n = sluice__routing_table__get_packed_size(rt);
	uint8_t *buf = malloc(n ? n : 1);
	struct routing_copy *c = calloc(1, sizeof(*c)), *old;

	if (buf && c) {
		sluice__routing_table__pack(rt, buf);
		c->rt = sluice__routing_table__unpack(NULL, n, buf);
	}
	free(buf);
	if (!c || !c->rt) {
		free(c);
		log_warn_rl("no memory to keep the routing table for the GC");
		return;
	}
	c->refs = 1;
	pthread_mutex_lock(&d->routing_mu);
	old = d->routing;
	d->routing = c;
	pthread_mutex_unlock(&d->routing_mu);
	routing_put(d, old);
}

/* ---- GC chunk removal (a worker thread) --------------------------------------------------- */

static const Sluice__ChainTableInfo *rt_table(const Sluice__RoutingTable *rt, uint32_t id)
{
	for (size_t i = 0; i < rt->n_tables; i++)
		if (rt->tables[i]->id == id)
			return rt->tables[i];
	return NULL;
}

static const Sluice__ChainInfo *rt_chain(const Sluice__RoutingTable *rt, uint32_t id)
{
	for (size_t i = 0; i < rt->n_chains; i++)
		if (rt->chains[i]->id == id)
			return rt->chains[i];
	return NULL;
}

/* The address of the node serving target tid, or NULL. */
static const char *rt_target_addr(const Sluice__RoutingTable *rt, uint64_t tid)
{
	uint32_t node = 0;

	for (size_t i = 0; i < rt->n_targets; i++)
		if (rt->targets[i]->id == tid)
			node = rt->targets[i]->node_id;
	for (size_t i = 0; node && i < rt->n_nodes; i++)
		if (rt->nodes[i]->id == node && rt->nodes[i]->n_addrs)
			return rt->nodes[i]->addrs[0];
	return NULL;
}

/* Remove chunks [ino:0, ino+1:0) from target tid at addr, call after call while the
 * daemon says there are more. */
static int remove_on_target(struct metad *d, const char *addr, uint64_t tid, uint64_t ino)
{
	Sluice__ChunkRemoveRangeReq req = SLUICE__CHUNK_REMOVE_RANGE_REQ__INIT;
	struct rpc_call_opts opts = {.timeout_ms = GC_REMOVE_TIMEOUT_MS, .retries = 2};

	req.target_id = tid;
	req.begin_inode = ino;
	req.begin_index = 0;
	req.end_inode = ino + 1;
	req.end_index = 0;
	req.max_chunks = 0; /* the daemon's batch */
	for (unsigned i = 0; i < GC_REMOVE_CALLS_MAX; i++) {
		struct rpc_result res = {0};
		int rc;
		bool more;

		if (atomic_load(&d->gc_stop))
			return -SLUICE_ESHUTDOWN;
		rc = storagec_remove_range(d->client, addr, &req, &opts, &res);
		more = rc == 0 && ((Sluice__ChunkRemoveRangeResp *)(void *)res.resp)->more;
		rpc_result_release(&res);
		if (rc) {
			log_debug("REMOVE_RANGE of inode %" PRIu64 " on target %" PRIu64 " at %s: "
				  "%s (%d)",
				  ino, tid, addr, sluice_strerror(rc), rc);
			return rc;
		}
		if (!more)
			return 0;
	}
	return -EAGAIN; /* a huge file: the rest at the next pass */
}

/*
 * Remove every chunk of inode ino (GC, a worker thread). The chunks of a file live on the
 * chains at positions chain_base .. chain_base + stripe - 1 (mod the table length) of its
 * chain table (layout.h: the permutation only reorders those), on every target of each.
 * Without chain replication each target is told directly; once CRAQ lands, removes go to
 * the chain head and flow down the chain like any update (and a syncing target gets them
 * through resync), so this loop becomes one call per chain. Any failure (routing not known
 * yet, unknown table or chain, a target unreachable or offline) returns an error: the GC
 * keeps the inode queued and retries with backoff. Removal is idempotent.
 */
static int remove_chunks(void *arg, uint64_t ino, const struct layout *l, uint64_t size)
{
	struct metad *d = arg;
	struct routing_copy *c;
	const Sluice__ChainTableInfo *tab;
	int rc = 0;

	if (d->cfg.gc_skip_chunks || l->stripe == 0)
		return 0; /* no storage configured; or a file without a layout never had chunks */
	if (ino == UINT64_MAX)
		return -EOVERFLOW; /* [ino:0, ino+1:0) has no end; ids never get there */
	c = routing_get(d);
	tab = c ? rt_table(c->rt, l->chain_table_id) : NULL;
	if (!tab || tab->n_chains == 0) {
		log_warn_rl("GC: chain table %u of inode %" PRIu64 " not in the routing table%s; "
			    "inode stays queued",
			    l->chain_table_id, ino, c ? "" : " (none fetched yet)");
		routing_put(d, c);
		return -SLUICE_EROUTING;
	}
	for (uint32_t k = 0; rc == 0 && k < l->stripe && k < tab->n_chains; k++) {
		uint32_t cid = tab->chains[((uint64_t)l->chain_base + k) % tab->n_chains];
		const Sluice__ChainInfo *ch = rt_chain(c->rt, cid);

		if (!ch) {
			rc = -SLUICE_EROUTING;
			break;
		}
		for (size_t t = 0; rc == 0 && t < ch->n_targets; t++) {
			const char *addr = rt_target_addr(c->rt, ch->targets[t]);

			rc = addr ? remove_on_target(d, addr, ch->targets[t], ino)
				  : -SLUICE_EROUTING;
		}
	}
	routing_put(d, c);
	if (rc && rc != -SLUICE_ESHUTDOWN)
		log_warn_rl("GC: chunks of inode %" PRIu64 " (%" PRIu64 " bytes) not removed: %s "
			    "(%d); inode stays queued",
			    ino, size, sluice_strerror(rc), rc);
	return rc;
}

static void gc_run(struct worker_job *j)
{
	struct metad *d = SLUICE_CONTAINER_OF(j, struct metad, gc_job);

	d->gc_result = meta_gc_run(d->svc.store, (unsigned)d->cfg.gc_batch, remove_chunks, d);
}

static void expire_run(struct worker_job *j)
{
	struct metad *d = SLUICE_CONTAINER_OF(j, struct metad, expire_job);

	d->expire_result = meta_expire(d->svc.store, d->cfg.session_timeout_ms * ENV_NS_PER_MS,
				       SLUICE_META_GC_BATCH * 4u);
}

static void rearm(struct metad *d, struct reactor_timer *t, uint64_t ms)
{
	if (!d->svc.stopping && reactor_timer_arm(d->r, t, ms * ENV_NS_PER_MS) != 0)
		PANIC("cannot arm a meta timer");
}

static void gc_done(struct worker_job *j)
{
	struct metad *d = SLUICE_CONTAINER_OF(j, struct metad, gc_job);

	d->gc_running = false;
	if (d->gc_result > 0)
		log_info("GC deleted %d inode(s)", d->gc_result);
	else if (d->gc_result < 0)
		log_warn_rl("GC pass failed: %s (%d)", sluice_strerror(d->gc_result), d->gc_result);
	rearm(d, &d->gc_timer, d->cfg.gc_interval_ms);
}

static void expire_done(struct worker_job *j)
{
	struct metad *d = SLUICE_CONTAINER_OF(j, struct metad, expire_job);

	d->expire_running = false;
	if (d->expire_result > 0)
		log_notice("%d write session(s) of silent clients expired", d->expire_result);
	else if (d->expire_result < 0)
		log_warn_rl("session expiry failed: %s (%d)", sluice_strerror(d->expire_result),
			    d->expire_result);
	rearm(d, &d->expire_timer, d->cfg.expire_interval_ms);
}

static void start_job(struct metad *d, struct worker_job *j, bool *running, struct reactor_timer *t,
		      uint64_t ms)
{
	if (d->svc.stopping || *running)
		return;
	*running = true;
	if (worker_submit(d->svc.pool, d->r, j) != 0) {
		*running = false; /* queue full of client work: try next time */
		rearm(d, t, ms);
	}
}

static void gc_tick(struct reactor_timer *t)
{
	struct metad *d = SLUICE_CONTAINER_OF(t, struct metad, gc_timer);

	d->gc_job.run = gc_run;
	d->gc_job.done = gc_done;
	start_job(d, &d->gc_job, &d->gc_running, t, d->cfg.gc_interval_ms);
}

static void expire_tick(struct reactor_timer *t)
{
	struct metad *d = SLUICE_CONTAINER_OF(t, struct metad, expire_timer);

	d->expire_job.run = expire_run;
	d->expire_job.done = expire_done;
	start_job(d, &d->expire_job, &d->expire_running, t, d->cfg.expire_interval_ms);
}

/* ---- routing: capacity for statfs, chain table lengths for layouts ---------------------- */

static void routing_done(struct rpc_result *res, void *arg)
{
	struct metad *d = arg;
	const Sluice__GetRoutingResp *resp = (const void *)res->resp;
	const Sluice__RoutingTable *rt = resp ? resp->routing : NULL;

	d->routing_inflight = false;
	if (res->status || !rt) {
		if (res->status != -SLUICE_ESHUTDOWN)
			log_warn_rl("routing table from %s: %s (%d)", d->cfg.mgmtd,
				    sluice_strerror(res->status), res->status);
		rpc_result_release(res);
		return;
	}
	d->svc.cap_bytes = d->svc.used_bytes = 0;
	d->svc.ntargets = 0;
	for (size_t i = 0; i < rt->n_targets; i++) {
		const Sluice__TargetInfo *t = rt->targets[i];

		if (t->state == SLUICE__TARGET_STATE__TS_OFFLINE)
			continue; /* its space is not usable now */
		d->svc.cap_bytes += t->capacity_bytes;
		d->svc.used_bytes += t->used_bytes;
		d->svc.ntargets++;
	}
	for (size_t i = 0; i < rt->n_tables; i++)
		meta_store_set_table_len(d->svc.store, rt->tables[i]->id,
					 (uint32_t)rt->tables[i]->n_chains);
	routing_keep(d, rt);
	if (rt->version != d->svc.routing_version)
		log_info("routing version %" PRIu64 ": %u targets, %" PRIu64 " bytes, %zu chain "
			 "tables",
			 rt->version, d->svc.ntargets, d->svc.cap_bytes, rt->n_tables);
	d->svc.routing_version = rt->version;
	rpc_result_release(res);
}

static void fetch_routing(struct metad *d)
{
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_call_opts opts = {.timeout_ms = 5000, .retries = 1};

	if (d->routing_inflight || d->svc.stopping || !d->cfg.mgmtd[0])
		return;
	req.since_version = 0; /* whole table: capacity sums need every target */
	if (mgmtc_get_routing_async(d->client, d->cfg.mgmtd, &req, &opts, routing_done, d, NULL) ==
	    0)
		d->routing_inflight = true;
}

static void routing_tick(struct reactor_timer *t)
{
	struct metad *d = SLUICE_CONTAINER_OF(t, struct metad, routing_timer);

	fetch_routing(d);
	rearm(d, t, d->cfg.routing_interval_ms);
}

static void on_routing(void *arg, uint64_t version)
{
	struct metad *d = arg;

	if (version != d->svc.routing_version)
		fetch_routing(d);
}

static void on_fence(void *arg, bool fenced)
{
	if (fenced)
		log_warn("fenced: no heartbeat reached mgmtd within half a lease (still serving: "
			 "one meta server, no failover)");
	else
		log_notice("registered with mgmtd and heartbeating");
}

/* ---- admin service ---------------------------------------------------------------------- */

void admin_h_ping(struct rpc_req *req, const Sluice__PingReq *msg, void *ctx)
{
	struct meta_service *svc = ctx;
	struct metad *d = SLUICE_CONTAINER_OF(svc, struct metad, svc);
	Sluice__PingResp resp = SLUICE__PING_RESP__INIT;

	resp.nonce = msg->nonce;
	resp.version = (char *)SLUICE_VERSION;
	resp.role = (char *)"meta";
	resp.uptime_ms = (env_now_ns() - d->start_ns) / ENV_NS_PER_MS;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

RPC_DEFINE_HANDLERS(admin, ADMIN_OPS)

/* ---- startup and shutdown ------------------------------------------------------------------ */

static int start_agent(struct metad *d)
{
	const char *addrs[1] = {d->bound};
	struct nodeagent_cfg acfg = {
		.mgmtd_uri = d->cfg.mgmtd,
		.type = SLUICE__NODE_TYPE__NODE_META,
		.addrs = addrs,
		.naddrs = 1,
		.state_dir = d->cfg.data_dir,
		.workers = d->svc.pool,
		.on_fence = on_fence,
		.on_routing = on_routing,
		.arg = d,
	};

	if (!d->cfg.mgmtd[0]) {
		log_notice("no mgmtd configured: not registering");
		return 0;
	}
	return nodeagent_start(d->r, d->client, &acfg, &d->agent);
}

/* SIGTERM/SIGINT (reactor thread): wake main(), which runs the shutdown. */
static void on_signal(struct daemon_signals *sig)
{
	struct metad *d = SLUICE_CONTAINER_OF(sig, struct metad, signals);

	log_notice("signal received, shutting down");
	sem_post(&d->stop_sem);
}

static int start_serving(struct metad *d)
{
	struct rpc_server_cfg scfg = {0};
	struct rpc_client_cfg ccfg = {0};
	int rc;

	scfg.pool = ccfg.pool = d->pool;
	rc = rpc_server_create(d->r, &scfg, &d->rpc);
	if (rc == 0)
		rc = rpc_server_add_service(d->rpc, &meta_service_handlers, &d->svc);
	if (rc == 0)
		rc = rpc_server_add_service(d->rpc, &admin_service_handlers, &d->svc);
	if (rc == 0)
		rc = rpc_client_create(d->r, &ccfg, &d->client);
	if (rc)
		return rc;
	rc = rpc_server_listen(d->rpc, d->cfg.listen, d->bound, sizeof(d->bound));
	if (rc) {
		log_err("cannot listen on %s: %s (%d)", d->cfg.listen, sluice_strerror(rc), rc);
		return rc;
	}
	rc = start_agent(d);
	if (rc) {
		log_err("cannot start the node agent: %s (%d)", sluice_strerror(rc), rc);
		return rc;
	}
	reactor_timer_init(&d->gc_timer, gc_tick);
	reactor_timer_init(&d->expire_timer, expire_tick);
	reactor_timer_init(&d->routing_timer, routing_tick);
	rearm(d, &d->gc_timer, d->cfg.gc_interval_ms);
	rearm(d, &d->expire_timer, d->cfg.expire_interval_ms);
	fetch_routing(d);
	rearm(d, &d->routing_timer, d->cfg.routing_interval_ms);
	rc = daemon_watch_signals(d->r, &d->signals, on_signal);
	if (rc == 0 && d->cfg.ready_file[0])
		rc = daemon_write_ready_file(d->cfg.ready_file, d->bound);
	if (rc == 0)
		log_notice("serving on %s (%u workers, sync %s, GC delay %" PRIu64 " ms)", d->bound,
			   (unsigned)d->cfg.workers, d->cfg.sync ? "on" : "off",
			   d->cfg.gc_delay_ms);
	return rc;
}

static int start_rc_;

static void start_fn(struct metad *d)
{
	start_rc_ = start_serving(d);
}

static void stop_fn(struct metad *d)
{
	d->svc.stopping = true;
	atomic_store(&d->gc_stop, true);
	rpc_server_destroy(d->rpc);
	d->rpc = NULL;
	nodeagent_stop(d->agent);
	d->agent = NULL;
	reactor_timer_cancel(d->r, &d->gc_timer);
	reactor_timer_cancel(d->r, &d->expire_timer);
	reactor_timer_cancel(d->r, &d->routing_timer);
}

static void store_cfg(struct metad *d)
{
	d->scfg.db.sync = d->cfg.sync;
	d->scfg.db.lock_timeout_ms = (uint32_t)d->cfg.lock_timeout_ms;
	d->scfg.db.cache_bytes = d->cfg.cache_bytes;
	d->scfg.root_layout =
		(struct layout){(uint32_t)d->cfg.chain_table, (uint32_t)d->cfg.chunk_size,
				(uint32_t)d->cfg.stripe, 0, 0};
	d->scfg.root_mode = 0755;
	d->scfg.gc_delay_ns = d->cfg.gc_delay_ms * ENV_NS_PER_MS;
}

/* Open the store, formatting an empty one (first start) unless format_only. */
static int open_store(struct metad *d, const char *path, bool format_only, bool force)
{
	char why[512] = "";
	int rc;

	if (mkdir(d->cfg.data_dir, 0750) != 0 && errno != EEXIST) {
		rc = -errno;
		log_err("data dir %s: %s", d->cfg.data_dir, sluice_strerror(rc));
		return rc;
	}
	if (format_only) {
		rc = meta_store_format(path, &d->scfg, force, why, sizeof(why));
		if (rc)
			log_err("cannot format %s: %s (%d): %s", path, sluice_strerror(rc), rc,
				why);
		else
			log_notice("formatted a new namespace in %s", path);
		return rc;
	}
	rc = meta_store_open(path, &d->scfg, &d->svc.store, why, sizeof(why));
	if (rc == -ENOENT) {
		log_notice("empty store in %s: formatting a new namespace (first start)", path);
		rc = meta_store_format(path, &d->scfg, false, why, sizeof(why));
		if (rc == 0)
			rc = meta_store_open(path, &d->scfg, &d->svc.store, why, sizeof(why));
	}
	if (rc)
		log_err("cannot open the store in %s: %s (%d): %s", path, sluice_strerror(rc), rc,
			why);
	return rc;
}

/* Take --format and --force out of argv (cfg_parse_args knows only the standard ones). */
static int take_flags(int *argc, char **argv, bool *format, bool *force)
{
	int n = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--format") == 0)
			*format = true;
		else if (strcmp(argv[i], "--force") == 0)
			*force = true;
		else
			argv[n++] = argv[i];
	}
	*argc = n;
	argv[n] = NULL;
	return *force && !*format ? -EINVAL : 0;
}

static int run(struct metad *d)
{
	int rc = worker_pool_create("meta", (unsigned)d->cfg.workers, SLUICE_WORKER_QUEUE_DEPTH / 4,
				    &d->svc.pool);

	if (rc == 0)
		rc = bufpool_create("meta", 64u << 20, &d->pool);
	if (rc == 0)
		rc = reactor_create("meta", &d->r);
	if (rc == 0)
		rc = reactor_start(d->r);
	if (rc)
		return rc;
	d->svc.r = d->r;
	d->svc.session_timeout_ms = (uint32_t)d->cfg.session_timeout_ms;
	run_on_reactor_sync(d, start_fn);
	rc = start_rc_;
	if (rc == 0)
		while (sem_wait(&d->stop_sem) != 0)
			; /* EINTR */
	run_on_reactor_sync(d, stop_fn);
	worker_pool_destroy(d->svc.pool); /* done callbacks still reach the running reactor */
	d->svc.pool = NULL;
	rpc_client_destroy(d->client);
	d->client = NULL;
	return rc;
}

int main(int argc, char **argv)
{
	struct metad *d = &daemon_;
	bool format = false, force = false;
	struct cfg_err cerr;
	char path[4096];
	sigset_t set;
	int rc;

	/* Before any thread exists (RocksDB's included), so signals reach only the signalfd. */
	daemon_block_signals(&set);
	sem_init(&d->stop_sem, 0, 0);
	pthread_mutex_init(&d->routing_mu, NULL);
	if (take_flags(&argc, argv, &format, &force)) {
		fprintf(stderr, "sluice-meta: --force only goes with --format\n");
		return 2;
	}
	rc = cfg_parse_args(&meta_schema, argc, argv, &d->cfg, &cerr);
	if (rc == 1)
		return 0;
	if (rc) {
		fprintf(stderr, "sluice-meta: %s\n", cerr.msg);
		return 2;
	}
	if (d->cfg.chunk_size & (d->cfg.chunk_size - 1)) {
		fprintf(stderr, "sluice-meta: layout.chunk_size must be a power of two\n");
		return 2;
	}
	log_set_level(LOG_LVL_ERR + d->cfg.log_level);
	net_register_builtin();
	d->start_ns = env_now_ns();
	store_cfg(d);
	if (snprintf(path, sizeof(path), "%s/store", d->cfg.data_dir) >= (int)sizeof(path)) {
		fprintf(stderr, "sluice-meta: meta.data_dir is too long\n");
		return 2;
	}
	rc = open_store(d, path, format, force);
	if (rc == 0 && !format)
		rc = run(d);
	if (rc)
		log_err("exiting: %s (%d)", sluice_strerror(rc), rc);
	reactor_destroy(d->r);
	meta_store_close(d->svc.store);
	bufpool_destroy(d->pool);
	routing_put(d, d->routing);
	cfg_free(&meta_schema, &d->cfg);
	return rc ? 1 : 0;
}
