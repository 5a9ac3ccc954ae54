/*
 * main.c - sluice-storage: the storage daemon (DESIGN.md section 6).
 *
 * DESIGN
 * One reactor thread runs the RPC server, every target's disk I/O (io_uring, O_DIRECT) and
 * the node agent; a small worker pool runs what blocks (synced RocksDB batches, fallocate,
 * metadata scans). Targets open on the main thread before the reactor starts (opening loads
 * every chunk's metadata, which blocks). A target that fails to open is logged with its
 * reason and the daemon serves the others; it exits only when no target opens.
 *
 * With storage.mgmtd set the node registers its targets through the node agent, reports
 * their state and space in heartbeats, refuses updates while fenced (no lease), and learns
 * its target ids from mgmtd (requests for a target before that get -SLUICE_EROUTING).
 * Without it (standalone, for tests and benchmarks) target ids are 1..n in config order.
 *
 * Fixed buffers. One buffer pool serves the RPC layer (request and response bulks) and the
 * targets (read and bounce buffers), so write data arrives in the same memory reads use.
 * At startup storage.fixed_bytes of it is pinned (never freed, handed out first) and, once
 * the reactor runs, registered with its io_uring, so the targets' O_DIRECT I/O on it is
 * fixed-buffer I/O. Registration stops at the first buffer the kernel refuses (RLIMIT_MEMLOCK
 * for a process without CAP_IPC_LOCK; the soft limit is raised to the hard one first): one
 * info line says so, and I/O on the other buffers is plain. It never fails the daemon.
 *
 * The reactor runs on its own thread; main() waits for shutdown. Shutdown (SIGTERM/SIGINT):
 * stop the agent, stop listening and close connections, wait until every target is idle
 * (in-flight disk I/O and commits finish: their replies are dropped); then main() destroys
 * the mgmtd client and the worker pool while the loop still runs, stops the loop, closes
 * the targets and exits 0.
 *
 * Usage: sluice-storage [--config FILE] [--set section.key=value]... [--help]
 */
#include <errno.h>
#include <semaphore.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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
#include "proto/admin_ops.h"
#include "proto/storage_ops.h"
#include "sluice_config.h"
#include "storage/craq.h"
#include "storage/daemon.h"
#include "storage/resync.h"
#include "storage/routing.h"

LOG_FACILITY("storage");

/* A failed routing table fetch is retried this often (heartbeats announce new versions). */
#define ROUTING_RETRY_MS 1000u

struct storage_cfg {
	char *listen;
	char *mgmtd;
	char *targets;
	char *state_dir;
	char *ready_file;
	uint64_t group_bytes;
	uint64_t reserve_bytes;
	uint64_t capacity_bytes;
	uint64_t queue_depth;
	uint64_t buffer_bytes;
	uint64_t fixed_bytes;
	uint64_t fixed_size;
	uint64_t workers;
	bool fault_injection;
	uint64_t resync_bytes_per_s;
	int log_level;
};

static const char *const log_levels[] = {"err", "warn", "notice", "info", "debug", NULL};

static const struct cfg_key storage_keys[] = {
	{"storage.listen", CFG_STRING, offsetof(struct storage_cfg, listen), "tcp://127.0.0.1:7300",
	 0, 0, NULL, "address to serve on (port 0 picks a free port)"},
	{"storage.mgmtd", CFG_STRING, offsetof(struct storage_cfg, mgmtd), "", 0, 0, NULL,
	 "mgmtd URI; empty = standalone (no registration, target ids 1..n; tests, benchmarks)"},
	{"storage.targets", CFG_STRING, offsetof(struct storage_cfg, targets), "", 0, 0, NULL,
	 "comma-separated target directories, one per disk (created if missing)"},
	{"storage.state_dir", CFG_STRING, offsetof(struct storage_cfg, state_dir),
	 "/var/lib/sluice/storage", 0, 0, NULL, "directory of the node ids file"},
	{"storage.ready_file", CFG_STRING, offsetof(struct storage_cfg, ready_file), "", 0, 0, NULL,
	 "if set, the bound address is written here once serving"},
	{"storage.group_bytes", CFG_SIZE, offsetof(struct storage_cfg, group_bytes), "64MiB",
	 SLUICE_CHUNK_SIZE_MIN, 1ull << 40, NULL, "data files grow by this much at a time"},
	{"storage.reserve_bytes", CFG_SIZE, offsetof(struct storage_cfg, reserve_bytes), "64MiB", 0,
	 1ull << 50, NULL, "file system space never used for data, so metadata can commit"},
	{"storage.capacity_bytes", CFG_SIZE, offsetof(struct storage_cfg, capacity_bytes), "0", 0,
	 1ull << 60, NULL, "cap on each target's data bytes (0 = the file system's size)"},
	{"storage.queue_depth", CFG_UINT, offsetof(struct storage_cfg, queue_depth), "64", 1,
	 SLUICE_STOR_QUEUE_DEPTH_MAX, NULL, "disk I/Os in flight per target"},
	{"storage.buffer_bytes", CFG_SIZE, offsetof(struct storage_cfg, buffer_bytes), "512MiB",
	 16ull << 20, 1ull << 40, NULL, "I/O buffer pool (request data, reads)"},
	{"storage.fixed_bytes", CFG_SIZE, offsetof(struct storage_cfg, fixed_bytes), "64MiB", 0,
	 1ull << 40, NULL,
	 "of the buffer pool, allocated at start and registered with io_uring for disk I/O "
	 "(at most a quarter of it; 0 = none)"},
	{"storage.fixed_size", CFG_SIZE, offsetof(struct storage_cfg, fixed_size), "1MiB",
	 SLUICE_BUFPOOL_MIN_BYTES, SLUICE_CHUNK_SIZE_MAX, NULL,
	 "size of most fixed buffers (1/16 of them are 4 KiB): the chunk size in use"},
	{"storage.workers", CFG_UINT, offsetof(struct storage_cfg, workers), "4", 1,
	 SLUICE_WORKERS_MAX, NULL, "threads for synced commits, fallocate and scans"},
	{"storage.resync_bytes_per_s", CFG_SIZE, offsetof(struct storage_cfg, resync_bytes_per_s),
	 "0", 0, 1ull << 40, NULL,
	 "cap on the bytes a resync sends per second, per target (0 = none: only its window of "
	 "in-flight chunks bounds it)"},
	{"debug.fault_injection", CFG_BOOL, offsetof(struct storage_cfg, fault_injection), "false",
	 0, 0, NULL, "accept the FAULT_INJECT call (tests only)"},
	{"log.level", CFG_ENUM, offsetof(struct storage_cfg, log_level), "info", 0, 0, log_levels,
	 "log threshold"},
};

static const struct cfg_schema storage_schema = {
	.program = "sluice-storage",
	.keys = storage_keys,
	.nkeys = SLUICE_ARRAY_SIZE(storage_keys),
};

struct storage {
	struct storage_cfg cfg;
	struct stor_daemon d;
	char *target_paths[SLUICE_STOR_TARGETS_MAX];
	unsigned npaths;
	struct reactor *r;
	struct bufpool *pool;
	struct worker_pool *workers;
	struct rpc_server *rpc;
	struct rpc_client *mgmt_rpc;
	struct nodeagent *agent;
	struct daemon_signals signals;
	struct reactor_timer stop_timer;
	struct reactor_timer routing_timer; /* retry of a failed routing fetch */
	bool routing_inflight;
	uint64_t routing_seen; /* the version mgmtd announced last */
	struct reactor_msg start_msg;
	sem_t stopped; /* posted on the reactor when main() may tear down */
	char bound[SLUICE_NET_ADDR_MAX];
	uint64_t start_ns;
	int start_rc;
};

static struct storage daemon_;

void admin_h_ping(struct rpc_req *req, const Sluice__PingReq *msg, void *ctx)
{
	struct storage *s = ctx;
	Sluice__PingResp resp = SLUICE__PING_RESP__INIT;

	resp.nonce = msg->nonce;
	resp.version = (char *)SLUICE_VERSION;
	resp.role = (char *)"storage";
	resp.uptime_ms = (env_now_ns() - s->start_ns) / ENV_NS_PER_MS;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

RPC_DEFINE_HANDLERS(admin, ADMIN_OPS)

/* ---- node agent callbacks (reactor thread) --------------------------------------------- */

/*
 * What an open target reports: up to date only when we know it - in no chain (nothing to
 * catch up with), or in sync with its chain (resync.c). Until the routing table is here we
 * do not know which, and a restarted target must not claim to be current: mgmtd would
 * make it serve as soon as it let it sync.
 */
static Sluice__LocalState local_state(const struct storage *s, unsigned i)
{
	if (s->d.routing == NULL)
		return SLUICE__LOCAL_STATE__LS_ONLINE;
	if (stor_rt_chain_of_target(s->d.routing, s->d.target_ids[i], NULL) == NULL ||
	    s->d.sync[i].synced)
		return SLUICE__LOCAL_STATE__LS_UPTODATE;
	return SLUICE__LOCAL_STATE__LS_ONLINE;
}

static void report_target(void *arg, uint64_t target_id, unsigned index, Sluice__TargetReport *out)
{
	struct storage *s = arg;
	struct stor_target *t = s->d.targets[index];
	struct stor_space sp;

	s->d.target_ids[index] = target_id;
	if (t == NULL) { /* did not open */
		out->local_state = SLUICE__LOCAL_STATE__LS_OFFLINE;
		return;
	}
	stor_target_space(t, &sp);
	out->local_state = stor_target_online(t, NULL) ? local_state(s, index)
						       : SLUICE__LOCAL_STATE__LS_OFFLINE;
	out->sync_done = s->d.sync[index].chunks_done;
	out->sync_total = s->d.sync[index].chunks_total;
	out->sync_bytes_done = s->d.sync[index].bytes_done;
	out->sync_bytes_total = s->d.sync[index].bytes_total;
	out->used_bytes = sp.used_bytes;
	out->capacity_bytes = sp.capacity_bytes;
}

/* ---- routing table (the chains of our targets, for craq.c) ------------------------------- */

static void fetch_routing(struct storage *s);

/* How many chains of the table hold one of our targets (for the log line). */
static unsigned local_chains(const struct storage *s, const struct stor_rt *rt)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->d.ntargets; i++)
		if (s->d.target_ids[i] && stor_rt_chain_of_target(rt, s->d.target_ids[i], NULL))
			n++;
	return n;
}

static void routing_done(struct rpc_result *res, void *arg)
{
	struct storage *s = arg;
	const Sluice__GetRoutingResp *resp = (const void *)res->resp;
	struct stor_rt *rt = NULL;
	char why[160];
	int rc;

	s->routing_inflight = false;
	if (s->d.stopping) {
		rpc_result_release(res);
		return;
	}
	rc = res->status;
	if (rc == 0 && (resp == NULL || resp->routing == NULL))
		rc = -SLUICE_EPROTO;
	if (rc == 0) {
		rc = stor_rt_build(resp->routing, &rt, why, sizeof(why));
		if (rc != 0)
			log_err_rl("routing table v%" PRIu64 " from %s refused: %s",
				   resp->routing->version, s->cfg.mgmtd, why);
	} else {
		log_warn_rl("routing table from %s: %s (%d)", s->cfg.mgmtd, sluice_strerror(rc),
			    rc);
	}
	rpc_result_release(res);
	if (rc != 0) { /* keep the old table; try again shortly */
		if (reactor_timer_arm(s->r, &s->routing_timer, ROUTING_RETRY_MS * ENV_NS_PER_MS))
			log_err("routing: cannot arm the retry timer");
		return;
	}
	if (s->d.routing == NULL || stor_rt_version(s->d.routing) != stor_rt_version(rt))
		log_info("routing v%" PRIu64 ": %u chains, %u with local targets",
			 stor_rt_version(rt), stor_rt_nchains(rt), local_chains(s, rt));
	stor_rt_free(s->d.routing);
	s->d.routing = rt;
	s->d.incarnation = nodeagent_incarnation(s->agent);
	resync_routing_changed(&s->d);
	if (s->routing_seen > stor_rt_version(rt))
		fetch_routing(s); /* it moved on while we fetched */
}

/* Fetch the whole table (one fetch at a time). */
static void fetch_routing(struct storage *s)
{
	Sluice__GetRoutingReq req = SLUICE__GET_ROUTING_REQ__INIT;
	struct rpc_call_opts opts = {.timeout_ms = 5000, .retries = 1};

	if (s->routing_inflight || s->d.stopping || s->d.standalone)
		return;
	if (mgmtc_get_routing_async(s->mgmt_rpc, s->cfg.mgmtd, &req, &opts, routing_done, s,
				    NULL) == 0)
		s->routing_inflight = true;
	else if (reactor_timer_arm(s->r, &s->routing_timer, ROUTING_RETRY_MS * ENV_NS_PER_MS))
		log_err("routing: cannot arm the retry timer");
}

static void routing_retry(struct reactor_timer *t)
{
	fetch_routing(SLUICE_CONTAINER_OF(t, struct storage, routing_timer));
}

/* mgmtd announced a routing version (registration or heartbeat reply) we may not have. */
static void on_routing(void *arg, uint64_t version)
{
	struct storage *s = arg;

	/* The latest announcement, not the highest: were mgmtd's versions ever to go back
	 * (its data lost), we follow it rather than wait for a version that never comes. */
	s->routing_seen = version;
	if (s->d.routing == NULL || stor_rt_version(s->d.routing) != version)
		fetch_routing(s);
}

static void on_fence(void *arg, bool fenced)
{
	struct storage *s = arg;

	s->d.fenced = fenced;
	if (fenced) {
		log_warn("fenced: no mgmtd lease, refusing updates");
		resync_fenced(&s->d);
	} else {
		log_notice("lease held: serving updates");
	}
}

/* ---- shutdown ------------------------------------------------------------------------------ */

static bool all_idle(const struct storage *s)
{
	for (unsigned i = 0; i < s->d.ntargets; i++)
		if (s->d.targets[i] && !stor_target_idle(s->d.targets[i]))
			return false;
	return true;
}

/* Poll until every target's in-flight I/O and commits are done, then wake main(), which
 * tears down the rest while the loop still runs (see main). */
static void stop_when_idle(struct reactor_timer *t)
{
	struct storage *s = SLUICE_CONTAINER_OF(t, struct storage, stop_timer);

	if (all_idle(s) || reactor_timer_arm(s->r, t, 20 * ENV_NS_PER_MS) != 0)
		sem_post(&s->stopped);
}

static void on_signal(struct daemon_signals *sig)
{
	struct storage *s = SLUICE_CONTAINER_OF(sig, struct storage, signals);

	log_notice("signal received, shutting down");
	s->d.stopping = true;
	reactor_timer_cancel(s->r, &s->routing_timer);
	resync_stop_all(&s->d);
	nodeagent_stop(s->agent);
	s->agent = NULL;
	rpc_server_destroy(s->rpc);
	s->rpc = NULL;
	reactor_timer_init(&s->stop_timer, stop_when_idle);
	if (reactor_timer_arm(s->r, &s->stop_timer, 50 * ENV_NS_PER_MS) != 0)
		sem_post(&s->stopped);
}

/* ---- startup ------------------------------------------------------------------------------- */

/* Split storage.targets on commas into s->target_paths. */
static int parse_targets(struct storage *s)
{
	char *list = strdup(s->cfg.targets), *save = NULL;

	if (list == NULL)
		return -ENOMEM;
	for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			continue;
		if (s->npaths == SLUICE_STOR_TARGETS_MAX) {
			fprintf(stderr, "sluice-storage: more than %u targets\n",
				SLUICE_STOR_TARGETS_MAX);
			free(list);
			return -EINVAL;
		}
		s->target_paths[s->npaths] = strdup(p);
		if (s->target_paths[s->npaths++] == NULL) {
			free(list);
			return -ENOMEM;
		}
	}
	free(list);
	if (s->npaths == 0) {
		fprintf(stderr, "sluice-storage: storage.targets is empty: name at least one "
				"target directory\n");
		return -EINVAL;
	}
	return 0;
}

/* Open every target (blocking, before the loop runs). 0 if at least one opened. */
static int open_targets(struct storage *s)
{
	unsigned opened = 0;

	for (unsigned i = 0; i < s->npaths; i++) {
		struct stor_target_cfg tc = {
			.path = s->target_paths[i],
			.id = s->d.standalone ? i + 1 : 0,
			.group_bytes = s->cfg.group_bytes,
			.reserve_bytes = s->cfg.reserve_bytes,
			.capacity_bytes = s->cfg.capacity_bytes,
			.queue_depth = (unsigned)s->cfg.queue_depth,
			.reactor = s->r,
			.workers = s->workers,
			.pool = s->pool,
		};
		char why[256] = "";
		int rc = stor_target_open(&tc, &s->d.targets[i], why, sizeof(why));

		if (rc != 0) {
			log_err("target %s does not open, serving without it: %s (%s)", tc.path,
				why, sluice_strerror(rc));
			s->d.targets[i] = NULL;
			continue;
		}
		if (s->d.standalone)
			s->d.target_ids[i] = i + 1;
		struct stor_space sp;

		stor_target_space(s->d.targets[i], &sp);
		log_notice("target %s open: %" PRIu64 " chunks, %" PRIu64 " MiB used", tc.path,
			   sp.chunks, sp.used_bytes >> 20);
		opened++;
	}
	s->d.ntargets = s->npaths;
	return opened > 0 ? 0 : -EIO;
}

static int start_agent(struct storage *s)
{
	struct nodeagent_target targets[SLUICE_STOR_TARGETS_MAX];
	const char *addrs[1] = {s->bound};
	struct rpc_client_cfg ccfg = {.pool = s->pool};
	int rc;

	for (unsigned i = 0; i < s->npaths; i++) {
		struct stor_space sp = {0};

		if (s->d.targets[i])
			stor_target_space(s->d.targets[i], &sp);
		targets[i] = (struct nodeagent_target){.path = s->target_paths[i],
						       .capacity_bytes = sp.capacity_bytes};
	}
	struct nodeagent_cfg acfg = {
		.mgmtd_uri = s->cfg.mgmtd,
		.type = SLUICE__NODE_TYPE__NODE_STORAGE,
		.addrs = addrs,
		.naddrs = 1,
		.state_dir = s->cfg.state_dir,
		.targets = targets,
		.ntargets = s->npaths,
		.workers = s->workers,
		.report = report_target,
		.on_fence = on_fence,
		.on_routing = on_routing,
		.arg = s,
	};
	if (mkdir(s->cfg.state_dir, 0750) != 0 && errno != EEXIST)
		return -errno;
	rc = rpc_client_create(s->r, &ccfg, &s->mgmt_rpc);
	if (rc == 0)
		rc = nodeagent_start(s->r, s->mgmt_rpc, &acfg, &s->agent);
	return rc;
}

static int start_serving(struct storage *s)
{
	struct rpc_server_cfg scfg = {.pool = s->pool};
	struct rpc_client_cfg pcfg = {.pool = s->pool};
	int rc = craq_create(&s->d.craq);

	reactor_timer_init(&s->routing_timer, routing_retry);

	if (rc == 0) /* updates forwarded down the chains */
		rc = rpc_client_create(s->r, &pcfg, &s->d.peer_rpc);
	if (rc == 0)
		rc = rpc_server_create(s->r, &scfg, &s->rpc);

	if (rc == 0)
		rc = rpc_server_add_service(s->rpc, &storage_service_handlers, &s->d);
	if (rc == 0)
		rc = rpc_server_add_service(s->rpc, &admin_service_handlers, s);
	if (rc)
		return rc;
	rc = rpc_server_listen(s->rpc, s->cfg.listen, s->bound, sizeof(s->bound));
	if (rc) {
		log_err("cannot listen on %s: %s (%d)", s->cfg.listen, sluice_strerror(rc), rc);
		return rc;
	}
	rc = daemon_watch_signals(s->r, &s->signals, on_signal);
	if (rc == 0 && !s->d.standalone)
		rc = start_agent(s);
	if (rc == 0 && s->cfg.ready_file[0])
		rc = daemon_write_ready_file(s->cfg.ready_file, s->bound);
	if (rc == 0)
		log_notice("serving %u target(s) on %s%s%s", s->d.ntargets, s->bound,
			   s->d.standalone ? " (standalone)" : ", mgmtd ",
			   s->d.standalone ? "" : s->cfg.mgmtd);
	return rc;
}

/* Register the pool's pinned buffers with the reactor's ring (reactor thread: the ring has a
 * single issuer). Whatever the kernel refuses just does plain I/O. */
static void register_fixed(struct storage *s)
{
	unsigned n = bufpool_pinned(s->pool, NULL, 0);
	struct iovec *iov;
	uint64_t bytes = 0;
	int rc, refused = 0;

	if (n == 0)
		return;
	iov = calloc(n, sizeof(*iov));
	if (iov == NULL) {
		log_info("io_uring fixed buffers not registered: out of memory; disk I/O is plain");
		return;
	}
	rc = (int)bufpool_pinned(s->pool, iov, n);
	ASSERT(rc == (int)n); /* buffers are pinned only in setup, before the loop runs */
	rc = reactor_register_buffers(s->r, iov, n, &refused);
	for (int i = 0; i < rc; i++)
		bytes += iov[i].iov_len;
	if (rc == (int)n)
		log_info("io_uring fixed buffers: %u (%" PRIu64 " MiB) registered", n, bytes >> 20);
	else if (rc >= 0)
		log_info("io_uring fixed buffers: %d of %u (%" PRIu64 " KiB) registered, the "
			 "kernel refused the next: %s (%d) (RLIMIT_MEMLOCK without CAP_IPC_LOCK?); "
			 "disk I/O on the others is plain",
			 rc, n, bytes >> 10, sluice_strerror(refused), refused);
	else
		log_info("io_uring fixed buffers not registered: %s (%d); disk I/O is plain",
			 sluice_strerror(rc), rc);
	free(iov);
}

/* Runs as the loop's first message: the RPC server and the agent live on its thread. */
static void start_on_reactor(struct reactor_msg *m)
{
	struct storage *s = SLUICE_CONTAINER_OF(m, struct storage, start_msg);

	register_fixed(s);
	s->start_rc = start_serving(s);
	if (s->start_rc)
		sem_post(&s->stopped);
}

/*
 * Pin the fixed buffers in the pool (main thread, before the loop): storage.fixed_bytes, at
 * most 1/SLUICE_STOR_FIXED_POOL_DIV of the pool so other sizes still fit, of which
 * 1/SLUICE_STOR_FIXED_SMALL_DIV in 4 KiB buffers (random reads, sector rereads) and the rest
 * in storage.fixed_size ones (whole-chunk writes and reads). 4 KiB first: they come first
 * in the registration too, so a low locked-memory limit still covers them. A failure only
 * costs speed, so it is logged and the daemon goes on.
 */
static void reserve_fixed(struct storage *s)
{
	uint64_t bytes = s->cfg.fixed_bytes, cap = s->cfg.buffer_bytes / SLUICE_STOR_FIXED_POOL_DIV;
	size_t big = bufpool_class_size(s->cfg.fixed_size);
	uint64_t nsmall, nbig;
	struct rlimit rl;
	int rc;

	if (bytes > cap) {
		log_info("storage.fixed_bytes capped at a quarter of storage.buffer_bytes: %" PRIu64
			 " MiB",
			 cap >> 20);
		bytes = cap;
	}
	nsmall = bytes / SLUICE_STOR_FIXED_SMALL_DIV / SLUICE_BUFPOOL_MIN_BYTES;
	if (nsmall > SLUICE_REACTOR_FIXED_BUFS_MAX / 2)
		nsmall = SLUICE_REACTOR_FIXED_BUFS_MAX / 2;
	nbig = (bytes - nsmall * SLUICE_BUFPOOL_MIN_BYTES) / big;
	if (nbig > SLUICE_REACTOR_FIXED_BUFS_MAX - nsmall)
		nbig = SLUICE_REACTOR_FIXED_BUFS_MAX - nsmall;
	if (nsmall + nbig == 0)
		return;
	/* Registered buffers count as locked memory for a process without CAP_IPC_LOCK. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_MEMLOCK, &rl); /* best effort: registration reports */
	}
	rc = bufpool_reserve_pinned(s->pool, SLUICE_BUFPOOL_MIN_BYTES, (unsigned)nsmall);
	if (rc == 0)
		rc = bufpool_reserve_pinned(s->pool, big, (unsigned)nbig);
	if (rc != 0)
		log_warn("cannot allocate all fixed buffers (%" PRIu64 " MiB): %s (%d); the rest "
			 "do plain I/O",
			 bytes >> 20, sluice_strerror(rc), rc);
}

static int setup(struct storage *s)
{
	int rc = parse_targets(s);

	if (rc)
		return rc;
	s->d.standalone = s->cfg.mgmtd[0] == '\0';
	s->d.fenced = !s->d.standalone; /* until the agent holds a lease */
	s->d.fault_injection = s->cfg.fault_injection;
	s->d.resync_bytes_per_s = s->cfg.resync_bytes_per_s;
	if (s->d.fault_injection)
		log_warn("debug.fault_injection is on: FAULT_INJECT calls are accepted");
	rc = reactor_create("storage", &s->r);
	if (rc == 0)
		rc = bufpool_create("storage", s->cfg.buffer_bytes, &s->pool);
	if (rc == 0)
		reserve_fixed(s);
	if (rc == 0)
		rc = worker_pool_create("stor-wk", (unsigned)s->cfg.workers,
					SLUICE_WORKER_QUEUE_DEPTH, &s->workers);
	if (rc == 0)
		rc = open_targets(s);
	return rc;
}

int main(int argc, char **argv)
{
	struct storage *s = &daemon_;
	struct cfg_err cerr;
	sigset_t set;
	int rc;

	daemon_block_signals(&set);
	rc = cfg_parse_args(&storage_schema, argc, argv, &s->cfg, &cerr);
	if (rc == 1)
		return 0;
	if (rc) {
		fprintf(stderr, "sluice-storage: %s\n", cerr.msg);
		return 2;
	}
	log_set_level(LOG_LVL_ERR + s->cfg.log_level);
	net_register_builtin();
	s->start_ns = env_now_ns();
	sem_init(&s->stopped, 0, 0);
	rc = setup(s);
	s->start_msg.fn = start_on_reactor;
	if (rc == 0)
		rc = reactor_start(s->r);
	if (rc == 0)
		rc = reactor_post(s->r, &s->start_msg);
	if (rc == 0) {
		while (sem_wait(&s->stopped) != 0)
			; /* EINTR */
		rc = s->start_rc;
	}
	if (rc)
		log_err("exiting: %s (%d)", sluice_strerror(rc), rc);
	/* The loop still runs: the mgmtd client cancels its calls on it, and worker jobs
	 * still queued (the agent's ids file) deliver their completions to it. */
	rpc_client_destroy(s->mgmt_rpc);
	rpc_client_destroy(s->d.peer_rpc); /* nothing in flight: every target went idle */
	worker_pool_destroy(s->workers);
	reactor_destroy(s->r); /* drops the fixed buffer table: before the pool frees them */
	for (unsigned i = 0; i < s->d.ntargets; i++)
		stor_target_close(s->d.targets[i]);
	craq_destroy(s->d.craq);
	stor_rt_free(s->d.routing);
	bufpool_destroy(s->pool);
	for (unsigned i = 0; i < s->npaths; i++)
		free(s->target_paths[i]);
	cfg_free(&storage_schema, &s->cfg);
	return rc ? 1 : 0;
}
