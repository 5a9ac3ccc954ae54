/*
 * nodeagent.c - registration, persisted ids, heartbeats and self-fencing of a node
 * (DESIGN.md section 5; interface and rules in nodeagent.h).
 *
 * Design. One tick timer drives everything: every heartbeat interval it sends a
 * registration (while unregistered) or a heartbeat (while registered). At most one RPC is
 * in flight - registration and heartbeat share one slot - and its timeout is shorter than
 * the interval, so heartbeats never pile up behind a slow or partitioned mgmtd; a tick that
 * finds the slot busy is skipped.
 *
 *   REGISTERING --register ok--> PERSISTING --ids on disk--> ACTIVE --heartbeat loop-->
 *        ^                         (skipped when the ids did not change)   |
 *        +--------- heartbeat answered ESTALE_LEASE / ENOENT / EINVAL -----+
 *
 * Ids are persisted before the registration counts as done, so a daemon that crashes right
 * after registering comes back under the ids mgmtd knows. If persisting fails the assigned
 * ids are still used for the next attempt (re-registering the same node rather than
 * minting another one) and persisting is retried after it.
 *
 * Fencing: the fence deadline is lease_ms/2 after the *send* time of the last successful
 * heartbeat - mgmtd renewed the lease no earlier than that, so measuring from the send is
 * the conservative side. A separate fence timer fires at the deadline; only a successful
 * heartbeat of the current incarnation pushes it forward and unfences.
 *
 * The ids file is small text, "node_id N\ntarget PATH ID\n...", written atomically (tmp,
 * fsync, rename, fsync of the directory). It is rewritten only when its text would change.
 *
 * Thread: the reactor thread of the rpc_client, for everything, except the optional
 * worker-pool job that writes the ids file (it touches only its own copy of the text).
 * Owns: its copies of the configuration, its two timers, at most one RPC and one job.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/nodeagent.h"
#include "common/env.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"
#include "common/worker.h"
#include "proto/mgmt_ops.h"

LOG_FACILITY("nodeagent");

/* A generous bound on the ids file: a line per target of at most a path and an id. */
#define IDS_LINE_MAX	(SLUICE_PATH_MAX + 64)
#define IDS_TARGETS_MAX 4096u
#define IDS_FILE_MAX	((size_t)IDS_LINE_MAX * (IDS_TARGETS_MAX + 1))

enum agent_state {
	AGENT_REGISTERING, /* register RPC due (or in flight) */
	AGENT_PERSISTING,  /* registered, writing the ids before counting it */
	AGENT_ACTIVE,	   /* registered: heartbeating */
};

enum call_kind { CALL_NONE, CALL_REGISTER, CALL_HEARTBEAT };

struct persist_job {
	struct worker_job job;
	struct nodeagent *a;
	char *path, *tmp_path, *dir, *text; /* the job's own copies */
	int rc;
};

struct nodeagent {
	struct reactor *r;
	struct rpc_client *rpc;
	struct worker_pool *workers;

	/* configuration (copies) */
	char *mgmtd_uri;
	char **addrs;
	unsigned naddrs;
	char *hostname;
	char *state_dir;
	char **paths;
	uint64_t *capacity;
	unsigned ntargets;
	void (*report)(void *arg, uint64_t target_id, unsigned index, Sluice__TargetReport *out);
	void (*on_fence)(void *arg, bool fenced);
	void (*on_routing)(void *arg, uint64_t version);
	void *arg;

	/* identity: the ids to register with, and the text of the ids file on disk */
	uint32_t node_id;
	uint64_t *target_ids;
	char *persisted_text; /* NULL: no file yet */

	/* registration in force (ACTIVE), or being persisted (PERSISTING) */
	enum agent_state state;
	uint64_t incarnation;
	uint32_t heartbeat_ms, lease_ms;
	uint64_t routing_version;

	/* lease and fencing */
	bool fenced;
	uint64_t fence_deadline_ns; /* 0: none pending (fenced, or never unfenced) */
	unsigned hb_failures;	    /* consecutive, for logging only */
	unsigned reg_failures;

	/* the one RPC slot */
	enum call_kind call;
	uint64_t call_id;
	uint64_t call_sent_ns;
	struct persist_job *job; /* ids write in flight on the worker pool */

	bool stopping, in_stop;
	struct reactor_timer tick, fence_timer;

	/* messages built once, refilled per call (rpc_call packs them before returning) */
	Sluice__RegisterReq reg;
	Sluice__TargetReg *treg, **treg_ptrs;
	Sluice__HeartbeatReq hb;
	Sluice__TargetReport *reps, **rep_ptrs;
};

static void send_register(struct nodeagent *a);
static void send_heartbeat(struct nodeagent *a);

/* ---- small helpers ------------------------------------------------------------------- */

static uint32_t interval_ms(const struct nodeagent *a)
{
	return a->heartbeat_ms ? a->heartbeat_ms : NODEAGENT_DEFAULT_HEARTBEAT_MS;
}

/* Shorter than the interval, so a call always ends before the next tick wants the slot. */
static uint32_t call_timeout_ms(const struct nodeagent *a)
{
	uint32_t t = interval_ms(a) / 4 * 3;

	return t ? t : 1;
}

static void arm(struct nodeagent *a, struct reactor_timer *t, uint64_t delay_ns)
{
	int rc = reactor_timer_arm(a->r, t, delay_ns);

	/* The heap has room for one timer per RPC call plus SLUICE_REACTOR_TIMERS_MAX -
	 * SLUICE_RPC_CALLS_MAX spare; our two are part of that spare. */
	ASSERT(rc == 0);
}

static void set_fenced(struct nodeagent *a, bool fenced, const char *why)
{
	if (a->fenced == fenced)
		return;
	a->fenced = fenced;
	if (fenced) {
		a->fence_deadline_ns = 0;
		reactor_timer_cancel(a->r, &a->fence_timer);
		log_warn("node %" PRIu32 " fenced: %s", a->node_id, why);
	} else {
		log_notice("node %" PRIu32 " unfenced (incarnation %" PRIu64 ")", a->node_id,
			   a->incarnation);
	}
	if (a->on_fence)
		a->on_fence(a->arg, fenced);
}

static void note_routing(struct nodeagent *a, uint64_t version)
{
	if (version == a->routing_version)
		return;
	log_info("routing version %" PRIu64 " -> %" PRIu64, a->routing_version, version);
	a->routing_version = version;
	if (a->on_routing)
		a->on_routing(a->arg, version);
}

static void agent_free(struct nodeagent *a)
{
	for (unsigned i = 0; i < a->naddrs; i++)
		free(a->addrs[i]);
	for (unsigned i = 0; i < a->ntargets; i++)
		free(a->paths ? a->paths[i] : NULL);
	free(a->addrs);
	free(a->paths);
	free(a->capacity);
	free(a->target_ids);
	free(a->mgmtd_uri);
	free(a->hostname);
	free(a->state_dir);
	free(a->persisted_text);
	free(a->treg);
	free(a->treg_ptrs);
	free(a->reps);
	free(a->rep_ptrs);
	free(a);
}

/* Free once stopped and nothing in flight still points at a. */
static void maybe_free(struct nodeagent *a)
{
	if (a->stopping && !a->in_stop && a->call == CALL_NONE && !a->job)
		agent_free(a);
}

/* ---- the ids file ------------------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Text of the ids file for the current ids; NULL on -ENOMEM. */
static char *ids_text(const struct nodeagent *a)
{
	size_t cap = 32;
	size_t len = 0;
	char *s;

	for (unsigned i = 0; i < a->ntargets; i++)
		cap += strlen(a->paths[i]) + 32;
	s = malloc(cap);
	if (!s)
		return NULL;
	len += (size_t)snprintf(s + len, cap - len, "node_id %" PRIu32 "\n", a->node_id);
	for (unsigned i = 0; i < a->ntargets; i++)
		len += (size_t)snprintf(s + len, cap - len, "target %s %" PRIu64 "\n", a->paths[i],
					a->target_ids[i]);
	ASSERT(len < cap);
	return s;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EBADMSG;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > max)
		return -EBADMSG;
	*out = v;
	return 0;
}

/* One line (no newline) of the ids file into a; targets matched by path. */
static int ids_parse_line(struct nodeagent *a, char *line, bool *have_node, uint64_t *seen_ids)
{
	uint64_t v;
	char *sp;
	int rc;

	if (strncmp(line, "node_id ", 8) == 0) {
		if (*have_node)
			return -EBADMSG;
		rc = parse_u64(line + 8, UINT32_MAX, &v);
		if (rc)
			return rc;
		a->node_id = (uint32_t)v;
		*have_node = true;
		return 0;
	}
	if (strncmp(line, "target ", 7) != 0)
		return -EBADMSG;
	/* The path may hold spaces; the id is after the last one. */
	sp = strrchr(line + 7, ' ');
	if (!sp || sp == line + 7)
		return -EBADMSG;
	*sp = 0;
	rc = parse_u64(sp + 1, UINT64_MAX, &v);
	if (rc)
		return rc;
	for (unsigned i = 0; i < a->ntargets; i++) {
		if (strcmp(a->paths[i], line + 7) != 0)
			continue;
		if (seen_ids[i])
			return -EBADMSG; /* the same path twice */
		seen_ids[i] = v;
		return 0;
	}
	/* A target no longer configured: mgmtd keeps it until an admin removes it. */
	log_notice("target %s (id %" PRIu64 ") in the ids file is not configured any more",
		   line + 7, v);
	return 0;
}

static int read_file(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *nb = cap * 2 > IDS_FILE_MAX ? NULL : realloc(buf, cap * 2);

			if (!nb) {
				rc = cap * 2 > IDS_FILE_MAX ? -EBADMSG : -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

/* Load state_dir/node.ids into node_id/target_ids. A missing file means a new node. */
static int ids_load(struct nodeagent *a)
{
	char *path = path_join(a->state_dir, NODEAGENT_IDS_FILE);
	char *text = NULL, *copy = NULL, *line, *save = NULL;
	bool have_node = false;
	int rc;

	if (!path)
		return -ENOMEM;
	rc = read_file(path, &text);
	if (rc == -ENOENT) {
		log_notice("no %s: registering as a new node", path);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	copy = strdup(text);
	if (!copy) {
		rc = -ENOMEM;
		goto out;
	}
	if (strlen(copy) == 0 || copy[strlen(copy) - 1] != '\n' || strchr(copy, '\r')) {
		rc = -EBADMSG; /* renamed into place whole, so never torn: damaged */
		goto out;
	}
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rc = ids_parse_line(a, line, &have_node, a->target_ids);
		if (rc)
			goto out;
	}
	if (!have_node) {
		rc = -EBADMSG;
		goto out;
	}
	log_notice("%s: node %" PRIu32, path, a->node_id);
	a->persisted_text = text;
	text = NULL;
out:
	if (rc == -EBADMSG)
		log_err("%s is damaged; not guessing this node's identity", path);
	if (rc) {
		a->node_id = 0;
		memset(a->target_ids, 0, a->ntargets * sizeof(*a->target_ids));
	}
	free(copy);
	free(text);
	free(path);
	return rc;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* tmp + fsync + rename + fsync(dir). Blocking: a worker thread or, briefly, the reactor. */
static int ids_write(const char *path, const char *tmp_path, const char *dir, const char *text)
{
	int fd, rc;

	fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp_path, path) != 0)
		rc = -errno;
	if (rc) {
		(void)unlink(tmp_path); /* best effort: a stale tmp is overwritten next time */
		return rc;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* ---- registration ---------------------------------------------------------------------- */

/* The registration (with the ids now in a) is on disk: it counts from here. */
static void registration_done(struct nodeagent *a)
{
	a->state = AGENT_ACTIVE;
	a->reg_failures = 0;
	log_notice("registered with %s as node %" PRIu32 " incarnation %" PRIu64
		   " (%u targets, heartbeat %" PRIu32 " ms, lease %" PRIu32 " ms)",
		   a->mgmtd_uri, a->node_id, a->incarnation, a->ntargets, a->heartbeat_ms,
		   a->lease_ms);
	/* Heartbeat at once: the node stays fenced until one succeeds. */
	arm(a, &a->tick, (uint64_t)interval_ms(a) * ENV_NS_PER_MS);
	send_heartbeat(a);
}

static void persist_finish(struct nodeagent *a, char *text, int rc)
{
	if (rc) {
		log_err("cannot persist ids to %s/%s: %s (%d); registering again", a->state_dir,
			NODEAGENT_IDS_FILE, sluice_strerror(rc), rc);
		free(text);
		a->state = AGENT_REGISTERING;
		a->incarnation = 0;
		return; /* the tick retries, with the ids mgmtd assigned */
	}
	free(a->persisted_text);
	a->persisted_text = text;
	registration_done(a);
}

static void persist_job_run(struct worker_job *j)
{
	struct persist_job *pj = SLUICE_CONTAINER_OF(j, struct persist_job, job);

	pj->rc = ids_write(pj->path, pj->tmp_path, pj->dir, pj->text);
}

static void persist_job_free(struct persist_job *pj, bool keep_text)
{
	free(pj->path);
	free(pj->tmp_path);
	free(pj->dir);
	if (!keep_text)
		free(pj->text);
	free(pj);
}

static void persist_job_done(struct worker_job *j)
{
	struct persist_job *pj = SLUICE_CONTAINER_OF(j, struct persist_job, job);
	struct nodeagent *a = pj->a;
	char *text = pj->text;
	int rc = pj->rc;

	a->job = NULL;
	persist_job_free(pj, true);
	if (a->stopping) {
		free(text);
		maybe_free(a);
		return;
	}
	persist_finish(a, text, rc);
}

/* Write text as the ids file, then continue in persist_finish. Takes text. */
static void persist(struct nodeagent *a, char *text)
{
	struct persist_job *pj = calloc(1, sizeof(*pj));
	int rc = -ENOMEM;

	a->state = AGENT_PERSISTING;
	if (!pj)
		goto fail;
	pj->a = a;
	pj->text = text;
	pj->path = path_join(a->state_dir, NODEAGENT_IDS_FILE);
	pj->tmp_path = path_join(a->state_dir, NODEAGENT_IDS_FILE ".tmp");
	pj->dir = strdup(a->state_dir);
	if (!pj->path || !pj->tmp_path || !pj->dir)
		goto fail_job;
	if (!a->workers) {
		rc = ids_write(pj->path, pj->tmp_path, pj->dir, pj->text);
		persist_job_free(pj, true);
		persist_finish(a, text, rc);
		return;
	}
	pj->job.run = persist_job_run;
	pj->job.done = persist_job_done;
	rc = worker_submit(a->workers, a->r, &pj->job);
	if (rc == 0) {
		a->job = pj;
		return;
	}
fail_job:
	persist_job_free(pj, true);
fail:
	persist_finish(a, text, rc ? rc : -ENOMEM);
}

/* Check a register response against what we asked; -SLUICE_EPROTO if it does not fit. */
static int check_register_resp(const struct nodeagent *a, const Sluice__RegisterResp *resp)
{
	if (resp->node_id == 0 || resp->n_target_ids != a->ntargets || resp->heartbeat_ms == 0 ||
	    resp->lease_ms == 0 || resp->incarnation == 0)
		return -SLUICE_EPROTO;
	if (a->node_id && resp->node_id != a->node_id)
		return -SLUICE_EPROTO; /* we asked for our own id back */
	for (unsigned i = 0; i < a->ntargets; i++)
		if (resp->target_ids[i] == 0 ||
		    (a->target_ids[i] && resp->target_ids[i] != a->target_ids[i]))
			return -SLUICE_EPROTO;
	return 0;
}

static void register_failed(struct nodeagent *a, int rc)
{
	/* Log the first failure and every 10th: a node waiting for mgmtd says so, quietly. */
	if (a->reg_failures++ % 10 == 0)
		log_warn("register with %s failed: %s (%d); retrying every %" PRIu32 " ms",
			 a->mgmtd_uri, sluice_strerror(rc), rc, interval_ms(a));
	else
		log_debug("register with %s failed: %s (%d)", a->mgmtd_uri, sluice_strerror(rc),
			  rc);
}

static void register_done(struct rpc_result *res, void *arg)
{
	struct nodeagent *a = arg;
	const Sluice__RegisterResp *resp = (const Sluice__RegisterResp *)res->resp;
	int rc = res->status;
	char *text;

	ASSERT(a->call == CALL_REGISTER);
	a->call = CALL_NONE;
	if (a->stopping)
		goto out;
	if (rc == 0)
		rc = check_register_resp(a, resp);
	if (rc) {
		register_failed(a, rc);
		goto out;
	}
	/* From here on these are the ids to use, persisted or not. */
	a->node_id = resp->node_id;
	if (a->ntargets > 0) /* meta nodes have none, and then resp->target_ids is NULL */
		memcpy(a->target_ids, resp->target_ids, a->ntargets * sizeof(*a->target_ids));
	a->incarnation = resp->incarnation;
	a->heartbeat_ms = resp->heartbeat_ms;
	a->lease_ms = resp->lease_ms;
	note_routing(a, resp->routing_version);
	text = ids_text(a);
	if (!text) {
		register_failed(a, -ENOMEM);
		a->incarnation = 0;
		goto out;
	}
	if (a->persisted_text && strcmp(text, a->persisted_text) == 0) {
		free(text);
		registration_done(a);
	} else {
		persist(a, text);
	}
out:
	rpc_result_release(res);
	maybe_free(a);
}

static void send_register(struct nodeagent *a)
{
	struct rpc_call_opts opts = {.timeout_ms = call_timeout_ms(a), .retries = -1};
	int rc;

	if (a->call != CALL_NONE || a->stopping)
		return;
	a->reg.node_id = a->node_id;
	for (unsigned i = 0; i < a->ntargets; i++)
		a->treg[i].id = a->target_ids[i];
	rc = mgmtc_register_async(a->rpc, a->mgmtd_uri, &a->reg, &opts, register_done, a,
				  &a->call_id);
	if (rc) {
		register_failed(a, rc);
		return;
	}
	a->call = CALL_REGISTER;
	a->call_sent_ns = env_now_ns();
}

/* ---- heartbeats and the lease --------------------------------------------------------- */

static void fence_timer_fired(struct reactor_timer *t)
{
	struct nodeagent *a = SLUICE_CONTAINER_OF(t, struct nodeagent, fence_timer);

	set_fenced(a, true, "no successful heartbeat for half the lease");
}

/* mgmtd no longer accepts this incarnation: fence now, register again now. */
static void must_reregister(struct nodeagent *a, int rc)
{
	log_warn("heartbeat of node %" PRIu32 " incarnation %" PRIu64 " refused: %s (%d); "
		 "registering again",
		 a->node_id, a->incarnation, sluice_strerror(rc), rc);
	a->state = AGENT_REGISTERING;
	a->incarnation = 0;
	set_fenced(a, true, "mgmtd refused the heartbeat");
	send_register(a);
}

static void heartbeat_ok(struct nodeagent *a, const Sluice__HeartbeatResp *resp)
{
	uint64_t now = env_now_ns();
	uint64_t deadline;

	if (a->hb_failures)
		log_notice("heartbeat to %s works again after %u failures", a->mgmtd_uri,
			   a->hb_failures);
	a->hb_failures = 0;
	if (resp->lease_ms)
		a->lease_ms = resp->lease_ms;
	deadline = a->call_sent_ns + (uint64_t)a->lease_ms / 2 * ENV_NS_PER_MS;
	if (deadline > now) {
		a->fence_deadline_ns = deadline;
		arm(a, &a->fence_timer, deadline - now);
		set_fenced(a, false, NULL);
	}
	/* else: the answer came too late to prove the lease still holds; the next one may. */
	note_routing(a, resp->routing_version);
}

static void heartbeat_done(struct rpc_result *res, void *arg)
{
	struct nodeagent *a = arg;
	int rc = res->status;

	ASSERT(a->call == CALL_HEARTBEAT);
	a->call = CALL_NONE;
	if (a->stopping || a->state != AGENT_ACTIVE)
		goto out;
	if (rc == 0) {
		heartbeat_ok(a, (const Sluice__HeartbeatResp *)res->resp);
	} else if (rc == -SLUICE_ESTALE_LEASE || rc == -ENOENT || rc == -EINVAL) {
		/* ENOENT: mgmtd forgot the node; EINVAL: it disagrees about our targets. Both
		 * are settled by registering again (which reports the conflict if it stays). */
		must_reregister(a, rc);
	} else {
		/* Transport trouble: the fence timer decides when it has lasted too long. */
		if (a->hb_failures++ == 0)
			log_warn("heartbeat to %s failed: %s (%d)", a->mgmtd_uri,
				 sluice_strerror(rc), rc);
		else
			log_debug("heartbeat to %s failed: %s (%d)", a->mgmtd_uri,
				  sluice_strerror(rc), rc);
	}
out:
	rpc_result_release(res);
	maybe_free(a);
}

static void send_heartbeat(struct nodeagent *a)
{
	struct rpc_call_opts opts = {.timeout_ms = call_timeout_ms(a), .retries = -1};
	int rc;

	if (a->stopping)
		return;
	if (a->call != CALL_NONE) {
		log_debug("heartbeat skipped: previous call still in flight");
		return;
	}
	for (unsigned i = 0; i < a->ntargets; i++) {
		Sluice__TargetReport *t = &a->reps[i];

		sluice__target_report__init(t);
		t->id = a->target_ids[i];
		t->local_state = SLUICE__LOCAL_STATE__LS_ONLINE;
		t->capacity_bytes = a->capacity[i];
		if (a->report)
			a->report(a->arg, a->target_ids[i], i, t);
		t->id = a->target_ids[i]; /* not the callback's to change */
	}
	a->hb.node_id = a->node_id;
	a->hb.incarnation = a->incarnation;
	a->hb.routing_version = a->routing_version;
	rc = mgmtc_heartbeat_async(a->rpc, a->mgmtd_uri, &a->hb, &opts, heartbeat_done, a,
				   &a->call_id);
	if (rc) {
		log_warn_rl("cannot send heartbeat: %s (%d)", sluice_strerror(rc), rc);
		return;
	}
	a->call = CALL_HEARTBEAT;
	a->call_sent_ns = env_now_ns();
}

static void tick_fired(struct reactor_timer *t)
{
	struct nodeagent *a = SLUICE_CONTAINER_OF(t, struct nodeagent, tick);

	arm(a, &a->tick, (uint64_t)interval_ms(a) * ENV_NS_PER_MS);
	switch (a->state) {
	case AGENT_REGISTERING:
		send_register(a);
		break;
	case AGENT_PERSISTING:
		break;
	case AGENT_ACTIVE:
		send_heartbeat(a);
		break;
	}
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static int check_cfg(const struct nodeagent_cfg *cfg)
{
	struct net_addr na;

	if (!cfg->mgmtd_uri || !cfg->state_dir || !cfg->addrs || cfg->naddrs == 0 ||
	    cfg->type == SLUICE__NODE_TYPE__NODE_UNKNOWN ||
	    !protobuf_c_enum_descriptor_get_value(&sluice__node_type__descriptor, cfg->type) ||
	    cfg->ntargets > IDS_TARGETS_MAX || (cfg->ntargets && !cfg->targets))
		return -EINVAL;
	if (net_addr_parse(cfg->mgmtd_uri, &na) != 0)
		return -EINVAL;
	for (unsigned i = 0; i < cfg->naddrs; i++)
		if (!cfg->addrs[i] || net_addr_parse(cfg->addrs[i], &na) != 0)
			return -EINVAL;
	for (unsigned i = 0; i < cfg->ntargets; i++) {
		const char *p = cfg->targets[i].path;

		if (!p || !*p || strchr(p, '\n') || strlen(p) >= SLUICE_PATH_MAX)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (strcmp(p, cfg->targets[j].path) == 0)
				return -EINVAL;
	}
	return 0;
}

static int copy_cfg(struct nodeagent *a, const struct nodeagent_cfg *cfg)
{
	char host[256];
	unsigned n = cfg->ntargets;

	if (cfg->hostname) {
		a->hostname = strdup(cfg->hostname);
	} else {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "unknown");
		host[sizeof(host) - 1] = 0;
		a->hostname = strdup(host);
	}
	a->mgmtd_uri = strdup(cfg->mgmtd_uri);
	a->state_dir = strdup(cfg->state_dir);
	a->addrs = calloc(cfg->naddrs, sizeof(*a->addrs));
	/* calloc(n ? n : 1): a meta node has no targets but the arrays stay non-NULL. */
	a->paths = calloc(n ? n : 1, sizeof(*a->paths));
	a->capacity = calloc(n ? n : 1, sizeof(*a->capacity));
	a->target_ids = calloc(n ? n : 1, sizeof(*a->target_ids));
	a->treg = calloc(n ? n : 1, sizeof(*a->treg));
	a->treg_ptrs = calloc(n ? n : 1, sizeof(*a->treg_ptrs));
	a->reps = calloc(n ? n : 1, sizeof(*a->reps));
	a->rep_ptrs = calloc(n ? n : 1, sizeof(*a->rep_ptrs));
	if (!a->hostname || !a->mgmtd_uri || !a->state_dir || !a->addrs || !a->paths ||
	    !a->capacity || !a->target_ids || !a->treg || !a->treg_ptrs || !a->reps || !a->rep_ptrs)
		return -ENOMEM;
	a->ntargets = n;
	for (unsigned i = 0; i < n; i++) {
		a->paths[i] = strdup(cfg->targets[i].path);
		if (!a->paths[i])
			return -ENOMEM;
		a->capacity[i] = cfg->targets[i].capacity_bytes;
	}
	a->naddrs = cfg->naddrs;
	for (unsigned i = 0; i < cfg->naddrs; i++) {
		a->addrs[i] = strdup(cfg->addrs[i]);
		if (!a->addrs[i])
			return -ENOMEM;
	}
	return 0;
}

/* The request messages point into a's copies; only ids change per call. */
static void build_messages(struct nodeagent *a, Sluice__NodeType type)
{
	sluice__register_req__init(&a->reg);
	a->reg.type = type;
	a->reg.n_addrs = a->naddrs;
	a->reg.addrs = a->addrs;
	a->reg.hostname = a->hostname;
	a->reg.n_targets = a->ntargets;
	a->reg.targets = a->treg_ptrs;
	for (unsigned i = 0; i < a->ntargets; i++) {
		sluice__target_reg__init(&a->treg[i]);
		a->treg[i].path = a->paths[i];
		a->treg[i].capacity_bytes = a->capacity[i];
		a->treg_ptrs[i] = &a->treg[i];
		a->rep_ptrs[i] = &a->reps[i];
	}
	sluice__heartbeat_req__init(&a->hb);
	a->hb.n_targets = a->ntargets;
	a->hb.targets = a->rep_ptrs;
}

int nodeagent_start(struct reactor *r, struct rpc_client *c, const struct nodeagent_cfg *cfg,
		    struct nodeagent **out)
{
	struct nodeagent *a;
	struct stat st;
	int rc;

	ASSERT(reactor_on_thread(r) && rpc_client_reactor(c) == r);
	rc = check_cfg(cfg);
	if (rc)
		return rc;
	if (stat(cfg->state_dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->r = r;
	a->rpc = c;
	a->workers = cfg->workers;
	a->report = cfg->report;
	a->on_fence = cfg->on_fence;
	a->on_routing = cfg->on_routing;
	a->arg = cfg->arg;
	a->state = AGENT_REGISTERING;
	a->fenced = true; /* until registered and heartbeating */
	reactor_timer_init(&a->tick, tick_fired);
	reactor_timer_init(&a->fence_timer, fence_timer_fired);
	rc = copy_cfg(a, cfg);
	if (rc == 0)
		rc = ids_load(a);
	if (rc)
		goto fail;
	build_messages(a, cfg->type);
	/* First registration on the next loop turn, never from inside this call. */
	rc = reactor_timer_arm(r, &a->tick, 0);
	if (rc)
		goto fail;
	log_notice("node agent started: mgmtd %s, %u targets, state in %s", a->mgmtd_uri,
		   a->ntargets, a->state_dir);
	*out = a;
	return 0;
fail:
	agent_free(a);
	return rc;
}

void nodeagent_stop(struct nodeagent *a)
{
	if (!a)
		return;
	ASSERT(reactor_on_thread(a->r) && !a->stopping);
	a->stopping = true;
	a->in_stop = true; /* a canceled call may complete inside rpc_cancel */
	reactor_timer_cancel(a->r, &a->tick);
	reactor_timer_cancel(a->r, &a->fence_timer);
	if (a->call != CALL_NONE)
		rpc_cancel(a->rpc, a->call_id);
	a->in_stop = false;
	maybe_free(a);
}

uint32_t nodeagent_node_id(const struct nodeagent *a)
{
	return a->node_id;
}

uint64_t nodeagent_target_id(const struct nodeagent *a, unsigned i)
{
	ASSERT(i < a->ntargets);
	return a->target_ids[i];
}

uint64_t nodeagent_incarnation(const struct nodeagent *a)
{
	return a->state == AGENT_ACTIVE ? a->incarnation : 0;
}

bool nodeagent_fenced(const struct nodeagent *a)
{
	return a->fenced;
}

uint64_t nodeagent_routing_version(const struct nodeagent *a)
{
	return a->routing_version;
}

bool nodeagent_registered(const struct nodeagent *a)
{
	return a->state == AGENT_ACTIVE;
}
