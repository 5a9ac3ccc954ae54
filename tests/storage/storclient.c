/*
 * storclient.c - the sluice-storage test helpers (see storclient.h): the daemon as a child
 * process, and typed wrappers around the storage service's client stubs.
 *
 * Design: the daemon is run exactly as an operator would (fork + exec, --set overrides,
 * ready file), so the tests exercise its real startup, recovery and signal handling. The
 * child gets PR_SET_PDEATHSIG(SIGKILL) so a crashed or killed test never leaves a daemon
 * behind, and only that pid is ever signalled. The wrappers flatten the protobuf replies
 * into plain structs so tests compare fields without protobuf-c memory rules in the way.
 *
 * THREADS: the daemon and sync-call functions run on the test's main thread (any thread
 * but the client reactor's); the _async wrappers and their callbacks on the client reactor.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "tests/storage/storclient.h"

#define PORT_LO		  20000 /* below the ephemeral range: no self-connects on restart */
#define PORT_SPAN	  12000
#define PORT_ATTEMPTS	  20
#define READY_TIMEOUT_MS  60000u
#define STOP_TIMEOUT_MS	  30000u
#define CLIENT_POOL_BYTES (512ull * SLUICE_MiB)
#define CALL_TIMEOUT_MS	  60000u
#define ARGV_MAX	  (2 * (TSTOR_EXTRA_MAX + 8) + 2)

/* ---- daemon ------------------------------------------------------------------------------ */

const char *tstor_daemon_path(int argc, char **argv)
{
	if (argc < 2 || !argv[1][0]) {
		fprintf(stderr, "usage: %s PATH_TO_sluice-storage [SEED]\n", argv[0]);
		test_skip("no sluice-storage path given (the daemon is not built yet?)");
	}
	if (access(argv[1], X_OK) != 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		test_skip("sluice-storage is not built (storage/meson.build defines no "
			  "sluice_storage yet?)");
	}
	return argv[1];
}

int tstor_daemon_init(struct tstor_daemon *d, const char *bin, const char *name, unsigned ntargets)
{
	const char *tmp = getenv("TMPDIR");

	ASSERT(ntargets >= 1 && ntargets <= TSTOR_TARGETS_MAX);
	memset(d, 0, sizeof(*d));
	if (access(bin, X_OK) != 0)
		return -ENOENT;
	d->bin = bin;
	d->ntargets = ntargets;
	d->ready_timeout_ms = READY_TIMEOUT_MS;
	snprintf(d->dir, sizeof(d->dir), "%s/sluice-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(d->dir))
		return -errno;
	for (unsigned i = 0; i < ntargets; i++)
		snprintf(d->target_paths[i], sizeof(d->target_paths[i]), "%s/t%u", d->dir, i + 1);
	return 0;
}

void tstor_daemon_set(struct tstor_daemon *d, const char *kv)
{
	ASSERT(d->nextra < TSTOR_EXTRA_MAX);
	d->extra[d->nextra++] = kv;
}

void tstor_data_path(const struct tstor_daemon *d, unsigned tid, uint32_t block_size, uint32_t file,
		     char *out, size_t cap)
{
	unsigned k = block_size ? (unsigned)__builtin_ctz(block_size) : 0;

	ASSERT(tid >= 1 && tid <= d->ntargets);
	snprintf(out, cap, "%s/data/c%u.%" PRIu32, d->target_paths[tid - 1], k, file);
}

/* Whether an extra setting overrides key (so the default is not given twice). */
static bool overridden(const struct tstor_daemon *d, const char *key)
{
	size_t n = strlen(key);

	for (unsigned i = 0; i < d->nextra; i++)
		if (strncmp(d->extra[i], key, n) == 0 && d->extra[i][n] == '=')
			return true;
	return false;
}

static void print_log_tail(const struct tstor_daemon *d)
{
	char path[PATH_MAX + 16], line[1024];
	long starts[TSTOR_LOG_TAIL] = {0};
	unsigned nlines = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon.log", d->dir);
	f = fopen(path, "r");
	if (!f)
		return;
	for (;;) { /* remember where each of the last TSTOR_LOG_TAIL lines starts */
		long at = ftell(f);

		if (!fgets(line, sizeof(line), f))
			break;
		starts[nlines++ % TSTOR_LOG_TAIL] = at;
	}
	fprintf(stderr, "---- last lines of %s ----\n", path);
	if (nlines)
		fseek(f, nlines > TSTOR_LOG_TAIL ? starts[nlines % TSTOR_LOG_TAIL] : 0, SEEK_SET);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "---- end of daemon log ----\n");
	fclose(f);
}

/* The daemon's command line, built before fork: the child of a multithreaded parent may
 * only make async-signal-safe calls (a malloc lock held by a reactor thread at fork time
 * would hang it). Strings live in args. */
struct cmdline {
	char sets[8][PATH_MAX * 2];
	char log[PATH_MAX + 16];
	const char *argv[ARGV_MAX];
};

static void build_cmdline(const struct tstor_daemon *d, const char *listen, struct cmdline *cl)
{
	unsigned n = 0, ns = 0;

	snprintf(cl->log, sizeof(cl->log), "%s/daemon.log", d->dir);
	cl->argv[n++] = d->bin;
	snprintf(cl->sets[ns++], sizeof(cl->sets[0]), "storage.listen=%s", listen);
	snprintf(cl->sets[ns++], sizeof(cl->sets[0]), "storage.ready_file=%s/ready", d->dir);
	if (!overridden(d, "storage.targets")) {
		size_t at = (size_t)snprintf(cl->sets[ns], sizeof(cl->sets[0]), "storage.targets=");

		for (unsigned i = 0; i < d->ntargets && at < sizeof(cl->sets[0]); i++)
			at += (size_t)snprintf(cl->sets[ns] + at, sizeof(cl->sets[0]) - at, "%s%s",
					       i ? "," : "", d->target_paths[i]);
		ns++;
	}
	if (!overridden(d, "storage.state_dir"))
		snprintf(cl->sets[ns++], sizeof(cl->sets[0]), "storage.state_dir=%s/state", d->dir);
	if (!overridden(d, "storage.group_bytes"))
		snprintf(cl->sets[ns++], sizeof(cl->sets[0]), "storage.group_bytes=4MiB");
	if (!overridden(d, "debug.fault_injection"))
		snprintf(cl->sets[ns++], sizeof(cl->sets[0]), "debug.fault_injection=true");
	if (!overridden(d, "storage.buffer_bytes"))
		snprintf(cl->sets[ns++], sizeof(cl->sets[0]), "storage.buffer_bytes=256MiB");
	ASSERT(ns <= SLUICE_ARRAY_SIZE(cl->sets));
	for (unsigned i = 0; i < ns; i++) {
		cl->argv[n++] = "--set";
		cl->argv[n++] = cl->sets[i];
	}
	for (unsigned i = 0; i < d->nextra; i++) {
		cl->argv[n++] = "--set";
		cl->argv[n++] = d->extra[i];
	}
	ASSERT(n < ARGV_MAX);
	cl->argv[n] = NULL;
}

/* Child side of the fork: async-signal-safe calls only; never returns. */
static _Noreturn void exec_daemon(const struct cmdline *cl, pid_t parent)
{
	static const char msg[] = "exec of sluice-storage failed\n";
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) /* the test died before prctl took effect */
		_exit(127);
	fd = open(cl->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	execv(cl->argv[0], (char *const *)cl->argv);
	if (write(2, msg, sizeof(msg) - 1) < 0) /* nothing more to do about it */
		_exit(127);
	_exit(127);
}

static void describe_exit(const struct tstor_daemon *d, int status)
{
	if (WIFEXITED(status))
		fprintf(stderr, "sluice-storage (pid %d) exited with status %d\n", (int)d->pid,
			WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "sluice-storage (pid %d) died of signal %d (%s)\n", (int)d->pid,
			WTERMSIG(status), strsignal(WTERMSIG(status)));
}

/* Read the ready file's URI if it is there: 1, 0 not yet, negative on a bad file. */
static int read_ready(struct tstor_daemon *d, char *uri, size_t cap)
{
	char path[PATH_MAX + 16];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ready", d->dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(uri, 1, cap - 1, f);
	fclose(f);
	while (n && (uri[n - 1] == '\n' || uri[n - 1] == ' '))
		n--;
	uri[n] = 0;
	if (n == 0)
		return 0; /* written in place and not flushed yet: look again */
	if (strncmp(uri, "tcp://", 6) != 0) {
		fprintf(stderr, "ready file %s holds '%s', not a tcp:// URI\n", path, uri);
		return -EPROTO;
	}
	return 1;
}

/* One attempt on listen: 0 ready, -EADDRINUSE if the child exited early (maybe the port),
 * other negative errors. */
static int start_on(struct tstor_daemon *d, const char *listen)
{
	static struct cmdline cl; /* one caller at a time (tests start daemons from main) */
	char path[PATH_MAX + 16], uri[SLUICE_NET_ADDR_MAX];
	uint64_t t0 = tstor_now_ms();
	pid_t parent = getpid();
	int status, rc;

	build_cmdline(d, listen, &cl);
	snprintf(path, sizeof(path), "%s/ready", d->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/ready.tmp", d->dir);
	unlink(path);
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0) {
		d->pid = 0;
		return -errno;
	}
	if (d->pid == 0)
		exec_daemon(&cl, parent);
	for (;;) {
		rc = read_ready(d, uri, sizeof(uri));
		if (rc != 0)
			break;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			describe_exit(d, status);
			d->pid = 0;
			return -EADDRINUSE;
		}
		if (tstor_now_ms() - t0 > d->ready_timeout_ms) {
			fprintf(stderr, "sluice-storage not ready after %u ms\n",
				d->ready_timeout_ms);
			rc = -ETIMEDOUT;
			break;
		}
		env_sleep_ms(5);
	}
	if (rc < 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
		return rc;
	}
	snprintf(d->uri, sizeof(d->uri), "%s", uri);
	d->starts++;
	return 0;
}

int tstor_daemon_start(struct tstor_daemon *d)
{
	char listen[SLUICE_NET_ADDR_MAX];
	uint64_t t0 = tstor_now_ms();
	int rc = -EADDRINUSE;

	ASSERT(d->pid == 0);
	if (d->uri[0]) {
		/* Same port as before; it may be briefly unavailable right after a kill. */
		snprintf(listen, sizeof(listen), "%s", d->uri);
		do {
			rc = start_on(d, listen);
			if (rc != -EADDRINUSE)
				break;
			env_sleep_ms(200);
		} while (tstor_now_ms() - t0 < 5000);
	} else {
		for (int i = 0; i < PORT_ATTEMPTS && rc == -EADDRINUSE; i++) {
			snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%u",
				 PORT_LO + (unsigned)env_random_below(PORT_SPAN));
			rc = start_on(d, listen);
		}
	}
	if (rc) {
		fprintf(stderr, "sluice-storage did not start (%s): %s (%d); dir %s\n", d->bin,
			sluice_strerror(rc), rc, d->dir);
		print_log_tail(d);
	}
	return rc;
}

int tstor_daemon_stop(struct tstor_daemon *d, int sig)
{
	uint64_t t0 = tstor_now_ms();
	int status, rc = 0;

	if (d->pid == 0)
		return 0;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		fprintf(stderr, "sluice-storage died before we stopped it: ");
		describe_exit(d, status);
		d->pid = 0;
		return -ECHILD;
	}
	kill(d->pid, sig);
	for (;;) {
		pid_t p = waitpid(d->pid, &status, sig == SIGKILL ? 0 : WNOHANG);

		if (p == d->pid)
			break;
		if (p < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (tstor_now_ms() - t0 > STOP_TIMEOUT_MS) {
			fprintf(stderr,
				"sluice-storage did not exit %u ms after signal %d: killing\n",
				STOP_TIMEOUT_MS, sig);
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			rc = -ETIMEDOUT;
			break;
		}
		env_sleep_ms(5);
	}
	if (rc == 0 && sig != SIGKILL && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		fprintf(stderr, "after signal %d: ", sig);
		describe_exit(d, status);
		rc = -EIO;
	}
	d->pid = 0;
	return rc;
}

int tstor_daemon_restart(struct tstor_daemon *d, int sig)
{
	int rc = tstor_daemon_stop(d, sig);

	if (rc)
		fprintf(stderr, "stopping sluice-storage with signal %d: %s (%d)\n", sig,
			sluice_strerror(rc), rc);
	if (rc != 0 && rc != -ECHILD && rc != -EIO)
		return rc;
	if (tstor_daemon_start(d) != 0)
		return -EIO;
	return rc;
}

bool tstor_daemon_alive(struct tstor_daemon *d)
{
	int status;

	if (d->pid == 0)
		return false;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
		describe_exit(d, status);
		d->pid = 0;
		return false;
	}
	return true;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0)
		fprintf(stderr, "cleanup: %s: %s\n", path, strerror(errno));
	return 0;
}

void tstor_daemon_finish(struct tstor_daemon *d, bool passed)
{
	if (!d->dir[0])
		return;
	if (d->pid)
		(void)tstor_daemon_stop(d, SIGKILL); /* end of test: how it ends is not checked */
	if (passed) {
		(void)nftw(d->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	} else {
		print_log_tail(d);
		fprintf(stderr, "test dir kept: %s\n", d->dir);
	}
	d->dir[0] = 0;
}

/* ---- client ------------------------------------------------------------------------------ */

int tstor_client_start(struct tstor_client *c, struct tstor_daemon *d)
{
	struct rpc_client_cfg cfg = {.default_timeout_ms = CALL_TIMEOUT_MS};

	memset(c, 0, sizeof(*c));
	snprintf(c->uri, sizeof(c->uri), "%s", d->uri);
	c->daemon = d;
	c->timeout_ms = CALL_TIMEOUT_MS;
	c->retries = -1;
	return test_client_start(&c->tc, &cfg, CLIENT_POOL_BYTES);
}

void tstor_client_stop(struct tstor_client *c)
{
	if (c->tc.r)
		test_client_stop(&c->tc);
}

void tstor_on_reactor(struct tstor_client *c, void (*fn)(void *arg), void *arg)
{
	run_on_reactor(c->tc.r, fn, arg);
}

static void chunk_from(const Sluice__ChunkMeta *m, struct tstor_chunk *out)
{
	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	out->inode = m->inode;
	out->index = m->index;
	out->length = m->length;
	out->chunk_size = m->chunk_size;
	out->crc = m->crc;
	out->commit_ver = m->commit_ver;
	out->update_ver = m->update_ver;
	out->chain_ver = m->chain_ver;
	out->block_size = m->block_size;
	out->file = m->file;
	out->block = m->block;
}

/* A synchronous call of op with opts from the client; keeps the error reason. */
static int call_sync(struct tstor_client *c, const struct rpc_service_desc *svc, uint16_t op,
		     const ProtobufCMessage *req, const struct iovec *bulk, unsigned nbulk,
		     void *resp_buf, size_t cap, struct rpc_result *res)
{
	struct rpc_call_opts o = {.timeout_ms = c->timeout_ms,
				  .retries = c->retries,
				  .bulk = bulk,
				  .nbulk = nbulk,
				  .resp_bulk = resp_buf,
				  .resp_bulk_cap = cap};
	int rc;

	memset(res, 0, sizeof(*res));
	rc = rpc_call_sync(c->tc.rpc, c->uri, svc, op, req, &o, res);
	snprintf(c->detail, sizeof(c->detail), "%s",
		 rc && res->error_detail ? res->error_detail : "");
	if ((rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -EPIPE || rc == -SLUICE_ECONNLOST ||
	     rc == -SLUICE_EDEADLINE) &&
	    c->daemon && c->daemon->pid && !tstor_daemon_alive(c->daemon))
		fprintf(stderr, "FAIL: sluice-storage died during a %s call (%s)\n",
			rpc_op_lookup(svc, op) ? rpc_op_lookup(svc, op)->name : "?",
			sluice_errname(rc));
	if (rc == 0 && !res->resp) {
		fprintf(stderr, "storage op %u: status 0 without a response message\n", op);
		rc = -SLUICE_EPROTO;
	}
	return rc;
}

static void fill_write_req(Sluice__ChunkWriteReq *w, uint64_t target, uint64_t inode,
			   uint32_t index, uint32_t chunk_size, uint32_t offset, const void *data,
			   uint32_t len)
{
	sluice__chunk_write_req__init(w);
	w->target_id = target;
	w->inode = inode;
	w->index = index;
	w->chunk_size = chunk_size;
	w->offset = offset;
	w->length = len;
	w->data_crc = crc32c(0, data, len);
}

int tstor_write(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		uint32_t chunk_size, uint32_t offset, const void *data, uint32_t len,
		struct tstor_chunk *out)
{
	struct iovec iov = {(void *)data, len};
	Sluice__ChunkWriteReq w;

	fill_write_req(&w, target, inode, index, chunk_size, offset, data, len);
	return tstor_write_raw(c, &w, &iov, len ? 1 : 0, out);
}

static int update_reply(int rc, struct rpc_result *res, struct tstor_chunk *out)
{
	if (rc == 0 && out)
		chunk_from(((const Sluice__ChunkUpdateResp *)res->resp)->chunk, out);
	rpc_result_release(res);
	return rc;
}

int tstor_write_raw(struct tstor_client *c, const Sluice__ChunkWriteReq *req,
		    const struct iovec *bulk, unsigned nbulk, struct tstor_chunk *out)
{
	struct rpc_result res;
	int rc = call_sync(c, &storage_service_desc, storage_OP_WRITE, &req->base, bulk, nbulk,
			   NULL, 0, &res);

	return update_reply(rc, &res, out);
}

int tstor_truncate(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		   uint32_t chunk_size, uint32_t length, struct tstor_chunk *out)
{
	Sluice__ChunkTruncateReq t = SLUICE__CHUNK_TRUNCATE_REQ__INIT;
	struct rpc_result res;
	int rc;

	t.target_id = target;
	t.inode = inode;
	t.index = index;
	t.chunk_size = chunk_size;
	t.length = length;
	rc = call_sync(c, &storage_service_desc, storage_OP_TRUNCATE, &t.base, NULL, 0, NULL, 0,
		       &res);
	return update_reply(rc, &res, out);
}

int tstor_remove(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		 bool *existed)
{
	Sluice__ChunkRemoveReq q = SLUICE__CHUNK_REMOVE_REQ__INIT;
	struct rpc_result res;
	int rc;

	q.target_id = target;
	q.inode = inode;
	q.index = index;
	rc = call_sync(c, &storage_service_desc, storage_OP_REMOVE, &q.base, NULL, 0, NULL, 0,
		       &res);
	if (rc == 0 && existed)
		*existed = ((const Sluice__ChunkRemoveResp *)res.resp)->existed;
	rpc_result_release(&res);
	return rc;
}

int tstor_remove_range(struct tstor_client *c, uint64_t target, uint64_t begin_inode,
		       uint32_t begin_index, uint64_t end_inode, uint32_t end_index,
		       uint32_t max_chunks, uint32_t *removed, bool *more)
{
	Sluice__ChunkRemoveRangeReq q = SLUICE__CHUNK_REMOVE_RANGE_REQ__INIT;
	const Sluice__ChunkRemoveRangeResp *r;
	struct rpc_result res;
	int rc;

	q.target_id = target;
	q.begin_inode = begin_inode;
	q.begin_index = begin_index;
	q.end_inode = end_inode;
	q.end_index = end_index;
	q.max_chunks = max_chunks;
	rc = call_sync(c, &storage_service_desc, storage_OP_REMOVE_RANGE, &q.base, NULL, 0, NULL, 0,
		       &res);
	if (rc == 0) {
		r = (const Sluice__ChunkRemoveRangeResp *)res.resp;
		if (removed)
			*removed = r->removed;
		if (more)
			*more = r->more;
	}
	rpc_result_release(&res);
	return rc;
}

/* ---- reads ------------------------------------------------------------------------------- */

struct read_req {
	Sluice__ChunkBatchReadReq q;
	Sluice__ChunkReadRange *rr;
	Sluice__ChunkReadRange **rp;
};

static int read_req_build(struct read_req *b, uint64_t target, const struct tstor_range *r,
			  unsigned n, size_t *want)
{
	sluice__chunk_batch_read_req__init(&b->q);
	b->rr = calloc(n ? n : 1, sizeof(*b->rr));
	b->rp = calloc(n ? n : 1, sizeof(*b->rp));
	if (!b->rr || !b->rp) {
		free(b->rr);
		free(b->rp);
		return -ENOMEM;
	}
	*want = 0;
	for (unsigned i = 0; i < n; i++) {
		sluice__chunk_read_range__init(&b->rr[i]);
		b->rr[i].inode = r[i].inode;
		b->rr[i].index = r[i].index;
		b->rr[i].offset = r[i].offset;
		b->rr[i].length = r[i].length;
		b->rp[i] = &b->rr[i];
		*want += r[i].length;
	}
	b->q.target_id = target;
	b->q.n_ranges = n;
	b->q.ranges = b->rp;
	return 0;
}

static void read_req_free(struct read_req *b)
{
	free(b->rr);
	free(b->rp);
}

/* Flatten a BATCH_READ reply; data pointers into buf. -SLUICE_EPROTO if malformed. */
static int read_results(const struct tstor_range *r, unsigned n, struct rpc_result *res, void *buf,
			size_t cap, struct tstor_read_result *out)
{
	const Sluice__ChunkBatchReadResp *m = (const Sluice__ChunkBatchReadResp *)res->resp;
	size_t at = 0;

	if (m->n_results != n) {
		fprintf(stderr, "BATCH_READ: %zu results for %u ranges\n", m->n_results, n);
		return -SLUICE_EPROTO;
	}
	if (res->resp_bulk) { /* landed in a pool buffer after all: copy */
		if (res->resp_bulk->len > cap) {
			fprintf(stderr, "BATCH_READ: bulk of %zu bytes, at most %zu asked\n",
				res->resp_bulk->len, cap);
			return -SLUICE_EPROTO;
		}
		memcpy(buf, res->resp_bulk->data, res->resp_bulk->len);
	}
	for (unsigned i = 0; i < n; i++) {
		const Sluice__ChunkReadResult *x = m->results[i];

		out[i].status = x->status;
		out[i].length = x->status == 0 ? x->length : 0;
		out[i].chunk_length = x->chunk_length;
		out[i].commit_ver = x->commit_ver;
		out[i].data = NULL;
		if (x->status > 0 || (x->status == 0 && x->length > r[i].length)) {
			fprintf(stderr, "BATCH_READ range %u: status %d, length %u of %u asked\n",
				i, x->status, x->length, r[i].length);
			return -SLUICE_EPROTO;
		}
		if (x->status == 0) {
			out[i].data = (const uint8_t *)buf + at;
			at += x->length;
		}
	}
	if (at != res->resp_bulk_len) {
		fprintf(stderr, "BATCH_READ: bulk of %zu bytes, results add up to %zu\n",
			res->resp_bulk_len, at);
		return -SLUICE_EPROTO;
	}
	return 0;
}

int tstor_batch_read(struct tstor_client *c, uint64_t target, const struct tstor_range *r,
		     unsigned n, void *buf, size_t cap, struct tstor_read_result *out)
{
	struct rpc_result res;
	struct read_req b;
	size_t want;
	int rc = read_req_build(&b, target, r, n, &want);

	if (rc)
		return rc;
	(void)want; /* the caller sized buf */
	rc = call_sync(c, &storage_service_desc, storage_OP_BATCH_READ, &b.q.base, NULL, 0, buf,
		       cap, &res);
	if (rc == 0)
		rc = read_results(r, n, &res, buf, cap, out);
	rpc_result_release(&res);
	read_req_free(&b);
	return rc;
}

int tstor_read_chunk(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		     uint32_t chunk_size, void *buf, uint32_t *len)
{
	struct tstor_range r = {inode, index, 0, chunk_size};
	struct tstor_read_result out;
	int rc = tstor_batch_read(c, target, &r, 1, buf, chunk_size, &out);

	if (rc)
		return rc;
	if (out.status == 0)
		*len = out.length;
	return out.status;
}

/* ---- listings ------------------------------------------------------------------------- */

static int copy_chunks(Sluice__ChunkMeta **m, size_t nm, struct tstor_chunk *out, unsigned cap,
		       unsigned *n)
{
	if (nm > cap) {
		fprintf(stderr, "listing of %zu chunks, limit %u\n", nm, cap);
		return -SLUICE_EPROTO;
	}
	for (size_t i = 0; i < nm; i++)
		chunk_from(m[i], &out[i]);
	*n = (unsigned)nm;
	return 0;
}

int tstor_query(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t begin_index,
		uint32_t end_index, uint32_t limit, struct tstor_chunk *out, unsigned cap,
		unsigned *n, bool *more)
{
	Sluice__QueryChunksReq q = SLUICE__QUERY_CHUNKS_REQ__INIT;
	const Sluice__QueryChunksResp *m;
	struct rpc_result res;
	int rc;

	q.target_id = target;
	q.inode = inode;
	q.begin_index = begin_index;
	q.end_index = end_index;
	q.limit = limit;
	rc = call_sync(c, &storage_service_desc, storage_OP_QUERY_CHUNKS, &q.base, NULL, 0, NULL, 0,
		       &res);
	if (rc == 0) {
		m = (const Sluice__QueryChunksResp *)res.resp;
		rc = copy_chunks(m->chunks, m->n_chunks, out, cap, n);
		if (rc == 0 && more)
			*more = m->more;
	}
	rpc_result_release(&res);
	return rc;
}

int tstor_list(struct tstor_client *c, uint64_t target, bool start_after, uint64_t after_inode,
	       uint32_t after_index, uint32_t limit, struct tstor_chunk *out, unsigned cap,
	       unsigned *n, bool *more)
{
	Sluice__ListChunksReq q = SLUICE__LIST_CHUNKS_REQ__INIT;
	const Sluice__ListChunksResp *m;
	struct rpc_result res;
	int rc;

	q.target_id = target;
	q.start_after = start_after;
	q.after_inode = after_inode;
	q.after_index = after_index;
	q.limit = limit;
	rc = call_sync(c, &storage_service_desc, storage_OP_LIST_CHUNKS, &q.base, NULL, 0, NULL, 0,
		       &res);
	if (rc == 0) {
		m = (const Sluice__ListChunksResp *)res.resp;
		rc = copy_chunks(m->chunks, m->n_chunks, out, cap, n);
		if (rc == 0 && more)
			*more = m->more;
	}
	rpc_result_release(&res);
	return rc;
}

static bool id_less(const struct tstor_chunk *a, const struct tstor_chunk *b)
{
	return a->inode < b->inode || (a->inode == b->inode && a->index < b->index);
}

int tstor_list_all(struct tstor_client *c, uint64_t target, uint32_t limit,
		   struct tstor_chunk **out, unsigned *n)
{
	unsigned have = 0, cap = 0, got, page = limit ? limit : 4096;
	struct tstor_chunk *all = NULL;
	bool more = true;
	int rc = 0;

	while (more) {
		struct tstor_chunk *grown = realloc(all, (cap + page) * sizeof(*all));

		if (!grown) {
			rc = -ENOMEM;
			break;
		}
		all = grown;
		cap += page;
		rc = tstor_list(c, target, have > 0, have ? all[have - 1].inode : 0,
				have ? all[have - 1].index : 0, limit, all + have, cap - have, &got,
				&more);
		if (rc)
			break;
		for (unsigned i = have; i < have + got; i++)
			if (i > 0 && !id_less(&all[i - 1], &all[i])) {
				fprintf(stderr,
					"LIST_CHUNKS: %" PRIu64 "/%u after %" PRIu64 "/%u\n",
					all[i].inode, all[i].index, all[i - 1].inode,
					all[i - 1].index);
				rc = -SLUICE_EPROTO;
			}
		if (rc == 0 && more && got == 0) {
			fprintf(stderr, "LIST_CHUNKS: more set on an empty page\n");
			rc = -SLUICE_EPROTO;
		}
		have += got;
		if (rc)
			break;
	}
	if (rc) {
		free(all);
		return rc;
	}
	*out = all;
	*n = have;
	return 0;
}

int tstor_stat_chunk(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		     struct tstor_chunk *out)
{
	struct tstor_chunk got[4];
	unsigned n = 0;
	int rc = tstor_query(c, target, inode, index, index + 1, 0, got, SLUICE_ARRAY_SIZE(got), &n,
			     NULL);

	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		if (got[i].inode != inode || got[i].index != index) {
			fprintf(stderr,
				"QUERY_CHUNKS %" PRIu64 " [%u, %u) returned %" PRIu64 "/%u\n",
				inode, index, index + 1, got[i].inode, got[i].index);
			return -SLUICE_EPROTO;
		}
		*out = got[i];
		return 0;
	}
	return -ENOENT;
}

int tstor_statfs(struct tstor_client *c, uint64_t target, struct tstor_space *out, unsigned cap,
		 unsigned *n)
{
	Sluice__TargetStatfsReq q = SLUICE__TARGET_STATFS_REQ__INIT;
	const Sluice__TargetStatfsResp *m;
	struct rpc_result res;
	int rc;

	q.target_id = target;
	rc = call_sync(c, &storage_service_desc, storage_OP_STATFS, &q.base, NULL, 0, NULL, 0,
		       &res);
	if (rc == 0) {
		m = (const Sluice__TargetStatfsResp *)res.resp;
		if (m->n_targets > cap) {
			fprintf(stderr, "STATFS: %zu targets, room for %u\n", m->n_targets, cap);
			rc = -SLUICE_EPROTO;
		}
		for (size_t i = 0; rc == 0 && i < m->n_targets; i++) {
			const Sluice__TargetSpace *t = m->targets[i];

			memset(&out[i], 0, sizeof(out[i]));
			out[i].target_id = t->target_id;
			snprintf(out[i].path, sizeof(out[i].path), "%s", t->path ? t->path : "");
			out[i].online = t->online;
			snprintf(out[i].offline_reason, sizeof(out[i].offline_reason), "%s",
				 t->offline_reason ? t->offline_reason : "");
			out[i].capacity_bytes = t->capacity_bytes;
			out[i].used_bytes = t->used_bytes;
			out[i].allocated_bytes = t->allocated_bytes;
			out[i].free_bytes = t->free_bytes;
			out[i].chunks = t->chunks;
		}
		if (rc == 0)
			*n = (unsigned)m->n_targets;
	}
	rpc_result_release(&res);
	return rc;
}

/* ---- fault injection ----------------------------------------------------------------- */

int tstor_fault_inject(struct tstor_client *c, uint64_t target, const char *site, uint32_t count)
{
	Sluice__FaultInjectReq q = SLUICE__FAULT_INJECT_REQ__INIT;
	struct rpc_result res;
	int rc;

	q.target_id = target;
	q.site = (char *)site; /* protobuf-c wants a mutable pointer; it only reads it */
	q.count = count;
	rc = call_sync(c, &storage_service_desc, storage_OP_FAULT_INJECT, &q.base, NULL, 0, NULL, 0,
		       &res);
	rpc_result_release(&res);
	return rc;
}

/* ---- async ------------------------------------------------------------------------------- */

struct async_call {
	struct tstor_client *c;
	tstor_update_cb ucb;
	tstor_remove_cb rcb;
	tstor_read_cb dcb;
	void *arg;
	struct iovec iov;
	void *buf;
	size_t cap;
	struct tstor_range *ranges;
	unsigned n;
};

static struct rpc_call_opts async_opts(struct tstor_client *c, int retries)
{
	return (struct rpc_call_opts){.timeout_ms = c->timeout_ms,
				      .retries = retries < 0 ? c->retries : retries};
}

static void async_free(struct async_call *a)
{
	free(a->iov.iov_base);
	free(a->ranges);
	free(a);
}

static void update_done(struct rpc_result *res, void *arg)
{
	struct async_call *a = arg;
	struct tstor_chunk chunk;
	int status = res->status;

	if (status == 0 && !res->resp)
		status = -SLUICE_EPROTO;
	if (status == 0)
		chunk_from(((const Sluice__ChunkUpdateResp *)res->resp)->chunk, &chunk);
	rpc_result_release(res);
	a->ucb(status, status == 0 ? &chunk : NULL, a->arg);
	async_free(a);
}

int tstor_write_async(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		      uint32_t chunk_size, uint32_t offset, const void *data, uint32_t len,
		      int retries, tstor_update_cb cb, void *arg)
{
	struct async_call *a = calloc(1, sizeof(*a));
	struct rpc_call_opts o = async_opts(c, retries);
	Sluice__ChunkWriteReq w;
	int rc;

	if (!a)
		return -ENOMEM;
	a->c = c;
	a->ucb = cb;
	a->arg = arg;
	a->iov.iov_base = malloc(len ? len : 1);
	a->iov.iov_len = len;
	if (!a->iov.iov_base) {
		async_free(a);
		return -ENOMEM;
	}
	memcpy(a->iov.iov_base, data, len);
	fill_write_req(&w, target, inode, index, chunk_size, offset, data, len);
	o.bulk = &a->iov;
	o.nbulk = len ? 1 : 0;
	rc = storagec_write_async(c->tc.rpc, c->uri, &w, &o, update_done, a, NULL);
	if (rc)
		async_free(a);
	return rc;
}

int tstor_truncate_async(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
			 uint32_t chunk_size, uint32_t length, int retries, tstor_update_cb cb,
			 void *arg)
{
	Sluice__ChunkTruncateReq t = SLUICE__CHUNK_TRUNCATE_REQ__INIT;
	struct async_call *a = calloc(1, sizeof(*a));
	struct rpc_call_opts o = async_opts(c, retries);
	int rc;

	if (!a)
		return -ENOMEM;
	a->c = c;
	a->ucb = cb;
	a->arg = arg;
	t.target_id = target;
	t.inode = inode;
	t.index = index;
	t.chunk_size = chunk_size;
	t.length = length;
	rc = storagec_truncate_async(c->tc.rpc, c->uri, &t, &o, update_done, a, NULL);
	if (rc)
		async_free(a);
	return rc;
}

static void remove_done(struct rpc_result *res, void *arg)
{
	struct async_call *a = arg;
	int status = res->status;
	bool existed = false;

	if (status == 0 && !res->resp)
		status = -SLUICE_EPROTO;
	if (status == 0)
		existed = ((const Sluice__ChunkRemoveResp *)res->resp)->existed;
	rpc_result_release(res);
	a->rcb(status, existed, a->arg);
	async_free(a);
}

int tstor_remove_async(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		       int retries, tstor_remove_cb cb, void *arg)
{
	Sluice__ChunkRemoveReq q = SLUICE__CHUNK_REMOVE_REQ__INIT;
	struct async_call *a = calloc(1, sizeof(*a));
	struct rpc_call_opts o = async_opts(c, retries);
	int rc;

	if (!a)
		return -ENOMEM;
	a->c = c;
	a->rcb = cb;
	a->arg = arg;
	q.target_id = target;
	q.inode = inode;
	q.index = index;
	rc = storagec_remove_async(c->tc.rpc, c->uri, &q, &o, remove_done, a, NULL);
	if (rc)
		async_free(a);
	return rc;
}

static void read_done(struct rpc_result *res, void *arg)
{
	struct async_call *a = arg;
	struct tstor_read_result *out = calloc(a->n ? a->n : 1, sizeof(*out));
	int status = res->status;

	if (!out)
		status = -ENOMEM;
	if (status == 0 && !res->resp)
		status = -SLUICE_EPROTO;
	if (status == 0)
		status = read_results(a->ranges, a->n, res, a->buf, a->cap, out);
	rpc_result_release(res);
	a->dcb(status, status == 0 ? out : NULL, status == 0 ? a->n : 0, a->arg);
	free(out);
	async_free(a);
}

int tstor_batch_read_async(struct tstor_client *c, uint64_t target, const struct tstor_range *r,
			   unsigned n, void *buf, size_t cap, tstor_read_cb cb, void *arg)
{
	struct async_call *a = calloc(1, sizeof(*a));
	struct rpc_call_opts o = async_opts(c, -1);
	struct read_req b;
	size_t want;
	int rc;

	if (!a)
		return -ENOMEM;
	rc = read_req_build(&b, target, r, n, &want);
	a->ranges = malloc((n ? n : 1) * sizeof(*r));
	if (rc || !a->ranges) {
		if (rc == 0)
			read_req_free(&b);
		async_free(a);
		return rc ? rc : -ENOMEM;
	}
	memcpy(a->ranges, r, n * sizeof(*r));
	a->c = c;
	a->dcb = cb;
	a->arg = arg;
	a->buf = buf;
	a->cap = cap;
	a->n = n;
	o.resp_bulk = buf;
	o.resp_bulk_cap = cap;
	rc = storagec_batch_read_async(c->tc.rpc, c->uri, &b.q, &o, read_done, a, NULL);
	read_req_free(&b);
	if (rc)
		async_free(a);
	return rc;
}

/* ---- misc ---------------------------------------------------------------------------------- */

uint64_t tstor_rng_next(struct tstor_rng *r)
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t tstor_rng_below(struct tstor_rng *r, uint64_t bound)
{
	return bound ? tstor_rng_next(r) % bound : 0; /* bias is irrelevant here */
}

uint64_t tstor_seed(int argc, char **argv, int i)
{
	const char *s = argc > i ? argv[i] : getenv("SLUICE_TEST_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return env_wall_ns() ^ ((uint64_t)getpid() << 32);
}

uint64_t tstor_now_ms(void)
{
	return env_now_ns() / ENV_NS_PER_MS;
}

long tstor_memdiff(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	if (memcmp(a, b, n) == 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}
