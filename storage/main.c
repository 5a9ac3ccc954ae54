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
#include "storage/daemon.h"

LOG_FACILITY("storage");

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
	uint64_t workers;
	bool fault_injection;
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
	{"storage.workers", CFG_UINT, offsetof(struct storage_cfg, workers), "4", 1,
	 SLUICE_WORKERS_MAX, NULL, "threads for synced commits, fallocate and scans"},
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
	/* Without replication a serving target is up to date by definition; chain
	 * replication (resync) will report LS_ONLINE until a target has caught up. */
	out->local_state = stor_target_online(t, NULL) ? SLUICE__LOCAL_STATE__LS_UPTODATE
						       : SLUICE__LOCAL_STATE__LS_OFFLINE;
	out->used_bytes = sp.used_bytes;
	out->capacity_bytes = sp.capacity_bytes;
}

static void on_fence(void *arg, bool fenced)
{
	struct storage *s = arg;

	s->d.fenced = fenced;
	if (fenced)
		log_warn("fenced: no mgmtd lease, refusing updates");
	else
		log_notice("lease held: serving updates");
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
	int rc = rpc_server_create(s->r, &scfg, &s->rpc);

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

/* Runs as the loop's first message: the RPC server and the agent live on its thread. */
static void start_on_reactor(struct reactor_msg *m)
{
	struct storage *s = SLUICE_CONTAINER_OF(m, struct storage, start_msg);

	s->start_rc = start_serving(s);
	if (s->start_rc)
		sem_post(&s->stopped);
}

static int setup(struct storage *s)
{
	int rc = parse_targets(s);

	if (rc)
		return rc;
	s->d.standalone = s->cfg.mgmtd[0] == '\0';
	s->d.fenced = !s->d.standalone; /* until the agent holds a lease */
	s->d.fault_injection = s->cfg.fault_injection;
	if (s->d.fault_injection)
		log_warn("debug.fault_injection is on: FAULT_INJECT calls are accepted");
	rc = reactor_create("storage", &s->r);
	if (rc == 0)
		rc = bufpool_create("storage", s->cfg.buffer_bytes, &s->pool);
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
	worker_pool_destroy(s->workers);
	reactor_destroy(s->r);
	for (unsigned i = 0; i < s->d.ntargets; i++)
		stor_target_close(s->d.targets[i]);
	bufpool_destroy(s->pool);
	for (unsigned i = 0; i < s->npaths; i++)
		free(s->target_paths[i]);
	cfg_free(&storage_schema, &s->cfg);
	return rc ? 1 : 0;
}
