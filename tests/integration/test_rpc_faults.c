/*
 * test_rpc_faults.c - the RPC layer when things go wrong, one scenario at a time.
 *
 *   a) the server process is killed (SIGKILL) while calls sit in its handlers: calls of the
 *      non-idempotent op fail at once with the connection error, calls of the idempotent
 *      op fail after their retries with -ECONNREFUSED, all long before their deadline;
 *   b) a new server comes up on the same port: calls issued while it was down succeed
 *      once it is back (reconnect on demand), idempotent or not (they never left us);
 *   c) deadlines fire on time, a late response is dropped and never confused with the
 *      call that reused its slot;
 *   d) 100 in-flight calls canceled: each callback runs once with -SLUICE_ECANCELED and
 *      the caller's response buffer is not written after it;
 *   e) max_calls: the call past the limit gets -EAGAIN;
 *   f) an idle raw socket and a raw socket that floods requests without reading replies
 *      are both closed by the server, whose memory stays within its pool budget and which
 *      serves a well-behaved client's call made meanwhile (today only once the stuck peer
 *      is dropped: its unsent replies hold the whole pool) and afterwards;
 *   g) regression (lost callback mid-bulk): a call that gives up (deadline) while its
 *      response bulk is being received into the caller's buffer still calls back when that
 *      connection then dies (it never did, and rpc_client_destroy then hung).
 *
 * (f) is also the regression test for "idle timeout while starved": a connection whose
 * request the server could not read for lack of pool buffers was closed as idle.
 *
 * Usage: test_rpc_faults PATH_TO_sluice-test-echod (meson passes it). Children are started
 * with PR_SET_PDEATHSIG and only pids started here are ever killed. The raw-socket peers
 * of (f) and (g) call socket(2) directly on purpose: they play a broken remote process.
 *
 * Timing bounds are generous hang checks, not performance assertions.
 *
 * THREADS: main drives the scenarios; clients and in-process servers run on their own
 * reactor threads; async calls are issued there through run_on_reactor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/net/frame.h"
#include "common/net/net.h"
#include "tests/lib/testlib.h"

#define MS	      ((uint64_t)ENV_NS_PER_MS)
#define POOL_BYTES    (256ull * SLUICE_MiB)
#define PORT_LO	      20000 /* below the usual ephemeral range: no self-connects */
#define PORT_SPAN     12000
#define PORT_ATTEMPTS 50

static const char *echod_path;
static pid_t children[8];
static unsigned nchildren;

static uint64_t ms_since(uint64_t t0)
{
	return (env_now_ns() - t0) / MS;
}

static void scenario(const char *name)
{
	printf("--- %s\n", name);
	fflush(stdout);
}

/* ---- child servers ------------------------------------------------------------------ */

/* Run echod on uri (a fixed port, unlike echo_server_spawn); its bound URI goes to bound.
 * The pid, or -EIO if it did not come up (port taken). */
static pid_t echod_start(const char *uri, char *bound, size_t len)
{
	pid_t parent = getpid(), pid;
	char fd_arg[16];
	size_t got = 0;
	int fds[2];

	if (pipe(fds) != 0)
		return -errno;
	snprintf(fd_arg, sizeof(fd_arg), "%d", fds[1]);
	pid = fork();
	if (pid < 0) {
		pid = -errno;
		close(fds[0]);
		close(fds[1]);
		return pid;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the parent died before prctl took effect */
			_exit(127);
		close(fds[0]);
		execl(echod_path, echod_path, uri, fd_arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	for (;;) { /* echod writes the URI and closes; EOF alone means it failed */
		ssize_t n = read(fds[0], bound + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (got += (size_t)n) == len - 1)
			break;
	}
	close(fds[0]);
	bound[got] = 0;
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -EIO;
	}
	ASSERT(nchildren < SLUICE_ARRAY_SIZE(children));
	children[nchildren++] = pid;
	return pid;
}

static void echod_kill(pid_t pid)
{
	for (unsigned i = 0; i < nchildren; i++) {
		if (children[i] == pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			children[i] = children[--nchildren];
			return;
		}
	}
	ASSERT(!"not our child");
}

/* echod on a free port of our choosing, so that it can be restarted on the same one. */
static pid_t echod_start_any(char *bound, size_t len)
{
	for (int i = 0; i < PORT_ATTEMPTS; i++) {
		char uri[SLUICE_NET_ADDR_MAX];
		pid_t pid;

		snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u",
			 PORT_LO + (unsigned)env_random_below(PORT_SPAN));
		pid = echod_start(uri, bound, len);
		if (pid > 0)
			return pid;
	}
	return -EADDRINUSE;
}

/* ---- async calls from the reactor, awaited from main ------------------------------------ */

/* Callbacks counted under a mutex; main polls it (tracker_wait) with a deadline. */
struct tracker {
	pthread_mutex_t mu; /* guards every acall field written by the callback, and ndone */
	unsigned ndone;
};

struct acall {
	struct tracker *t;
	int submit_rc;
	uint64_t id;
	int status; /* written by the callback, under t->mu */
	int runs;
	uint64_t done_ns;
	bool data_ok;
	char data[32];
	uint8_t *resp_buf; /* optional caller buffer for the response bulk */
	size_t resp_cap;
};

struct batch {
	struct rpc_client *rpc;
	const char *uri;
	bool once; /* the non-idempotent op */
	uint32_t delay_ms, resp_bulk_len;
	struct rpc_call_opts opts;
	struct acall *calls;
	unsigned n;
	bool cancel_at_once; /* cancel each call right after starting it */
};

static void tracker_init(struct tracker *t)
{
	pthread_mutex_init(&t->mu, NULL);
	t->ndone = 0;
}

static void tracker_fini(struct tracker *t)
{
	pthread_mutex_destroy(&t->mu);
}

static void acall_done(struct rpc_result *res, void *arg)
{
	struct acall *a = arg;
	const Sluice__Test__EchoResp *resp = (const Sluice__Test__EchoResp *)res->resp;
	bool ok = resp && resp->data.len == strlen(a->data) &&
		  memcmp(resp->data.data, a->data, resp->data.len) == 0;
	int status = res->status;

	rpc_result_release(res);
	if (a->resp_buf) /* canary: nobody may write here once we are called back */
		memset(a->resp_buf, 0xA5, a->resp_cap);
	pthread_mutex_lock(&a->t->mu);
	a->status = status;
	a->data_ok = ok;
	a->runs++;
	a->done_ns = env_now_ns();
	a->t->ndone++;
	pthread_mutex_unlock(&a->t->mu);
}

static void batch_issue_fn(void *arg)
{
	struct batch *b = arg;

	for (unsigned i = 0; i < b->n; i++) {
		struct acall *a = &b->calls[i];
		Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
		struct rpc_call_opts o = b->opts;

		req.data.data = (uint8_t *)a->data;
		req.data.len = strlen(a->data);
		req.delay_ms = b->delay_ms;
		req.resp_bulk_len = b->resp_bulk_len;
		req.seed = 7;
		o.resp_bulk = a->resp_buf;
		o.resp_bulk_cap = a->resp_cap;
		if (b->once)
			a->submit_rc = echoc_echo_once_async(b->rpc, b->uri, &req, &o, acall_done,
							     a, &a->id);
		else
			a->submit_rc =
				echoc_echo_async(b->rpc, b->uri, &req, &o, acall_done, a, &a->id);
		if (a->submit_rc == 0 && b->cancel_at_once)
			rpc_cancel(b->rpc, a->id);
	}
}

/* Start b's calls on its client's reactor; returns how many were accepted. */
static unsigned batch_issue(struct batch *b, struct tracker *t, const char *tag)
{
	unsigned ok = 0;

	for (unsigned i = 0; i < b->n; i++) {
		b->calls[i].t = t;
		snprintf(b->calls[i].data, sizeof(b->calls[i].data), "%s-%u", tag, i);
	}
	run_on_reactor(rpc_client_reactor(b->rpc), batch_issue_fn, b);
	for (unsigned i = 0; i < b->n; i++)
		ok += b->calls[i].submit_rc == 0;
	return ok;
}

/* Wait until n callbacks have run in total, at most timeout_ms. True if they did. */
static bool tracker_wait(struct tracker *t, unsigned n, uint32_t timeout_ms)
{
	uint64_t end = env_now_ns() + (uint64_t)timeout_ms * MS;
	bool ok;

	pthread_mutex_lock(&t->mu);
	while (t->ndone < n && env_now_ns() < end) {
		pthread_mutex_unlock(&t->mu);
		env_sleep_ms(2);
		pthread_mutex_lock(&t->mu);
	}
	ok = t->ndone >= n;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

static int sync_echo(struct rpc_client *rpc, const char *uri, bool once, const char *data,
		     uint32_t timeout_ms, uint64_t *served)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = timeout_ms, .retries = -1};
	struct rpc_result res;
	const Sluice__Test__EchoResp *resp;
	int rc;

	req.data.data = (uint8_t *)data;
	req.data.len = strlen(data);
	rc = once ? echoc_echo_once(rpc, uri, &req, &o, &res)
		  : echoc_echo(rpc, uri, &req, &o, &res);
	resp = (const Sluice__Test__EchoResp *)res.resp;
	if (rc == 0) {
		CHECK(resp && resp->data.len == strlen(data) &&
		      memcmp(resp->data.data, data, strlen(data)) == 0);
		if (resp && served)
			*served = resp->served;
	}
	rpc_result_release(&res);
	return rc;
}

/* ---- a, b: killed and restarted server ---------------------------------------------------- */

static void test_killed_and_restarted(void)
{
	/* Backoffs of 50 ms doubling to 1 s: 8 retries span 4.5 s for echod to come back. */
	struct rpc_client_cfg cfg = {.retry_backoff_ms = 50};
	struct test_client tc;
	struct tracker t;
	struct acall idem[8] = {0}, once[8] = {0}, down[2] = {0};
	struct batch bi = {.delay_ms = 2000,
			   .opts = {.timeout_ms = 10000, .retries = 3},
			   .calls = idem,
			   .n = 8};
	struct batch bo = bi;
	char uri[SLUICE_NET_ADDR_MAX], uri2[SLUICE_NET_ADDR_MAX];
	uint64_t t_kill, t_up, served = 0;
	pid_t pid;
	int rc;

	scenario("a) server killed with calls in flight");
	pid = echod_start_any(uri, sizeof(uri));
	CHECK(pid > 0);
	if (pid <= 0)
		return;
	rc = test_client_start(&tc, &cfg, POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc) {
		echod_kill(pid);
		return;
	}
	CHECK_EQ(sync_echo(tc.rpc, uri, false, "warm-up", 5000, NULL), 0);
	tracker_init(&t);
	bi.rpc = bo.rpc = tc.rpc;
	bi.uri = bo.uri = uri;
	bo.once = true;
	bo.calls = once;
	CHECK_EQ(batch_issue(&bi, &t, "idem"), 8);
	CHECK_EQ(batch_issue(&bo, &t, "once"), 8);
	env_sleep_ms(300); /* every request is now parked in a 2 s handler delay */
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(t.ndone, 0);
	pthread_mutex_unlock(&t.mu);
	t_kill = env_now_ns();
	echod_kill(pid);
	CHECK(tracker_wait(&t, 16, 8000));
	pthread_mutex_lock(&t.mu);
	for (unsigned i = 0; i < 8; i++) {
		CHECK(once[i].status == -SLUICE_ECONNLOST || once[i].status == -ECONNRESET);
		CHECK_EQ(once[i].runs, 1);
		CHECK(once[i].done_ns > t_kill && once[i].done_ns - t_kill < 5000 * MS);
		CHECK_EQ(idem[i].status, -ECONNREFUSED); /* only a reconnect can see this */
		CHECK_EQ(idem[i].runs, 1);
		CHECK(idem[i].done_ns > t_kill && idem[i].done_ns - t_kill < 5000 * MS);
	}
	printf("non-idempotent failed %" PRIu64 " ms after the kill (%s), idempotent %" PRIu64
	       " ms (%s)\n",
	       (once[7].done_ns - t_kill) / MS, sluice_errname(once[7].status),
	       (idem[7].done_ns - t_kill) / MS, sluice_errname(idem[7].status));
	pthread_mutex_unlock(&t.mu);

	scenario("b) server restarted on the same port while calls wait");
	tracker_init(&t);
	bi = (struct batch){.rpc = tc.rpc,
			    .uri = uri,
			    .calls = &down[0],
			    .n = 1,
			    .opts = {.timeout_ms = 5000, .retries = SLUICE_RPC_RETRIES_MAX}};
	bo = bi;
	bo.once = true; /* never reaches a connection while the server is down: retried too */
	bo.calls = &down[1];
	CHECK_EQ(batch_issue(&bi, &t, "down-idem"), 1);
	CHECK_EQ(batch_issue(&bo, &t, "down-once"), 1);
	env_sleep_ms(300);
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(t.ndone, 0); /* still retrying */
	pthread_mutex_unlock(&t.mu);
	t_up = env_now_ns();
	pid = echod_start(uri, uri2, sizeof(uri2));
	CHECK(pid > 0);
	if (pid > 0)
		CHECK(strcmp(uri, uri2) == 0);
	CHECK(tracker_wait(&t, 2, 7000));
	pthread_mutex_lock(&t.mu);
	for (unsigned i = 0; i < 2; i++) {
		CHECK_EQ(down[i].status, 0);
		CHECK(down[i].data_ok);
		CHECK_EQ(down[i].runs, 1);
		CHECK(down[i].done_ns > t_up);
	}
	printf("calls made while down completed %" PRIu64 " ms after the restart\n",
	       (down[0].done_ns - t_up) / MS);
	pthread_mutex_unlock(&t.mu);
	/* A fresh process: it has served only the two calls above, and this one. */
	CHECK_EQ(sync_echo(tc.rpc, uri, true, "after-restart", 5000, &served), 0);
	CHECK_EQ(served, 3);
	tracker_fini(&t);
	test_client_stop(&tc);
	if (pid > 0)
		echod_kill(pid);
}

/* ---- c: deadlines ------------------------------------------------------------------------- */

static void test_deadlines(const char *uri)
{
	struct test_client tc;
	struct tracker t;
	struct acall late[4] = {0}, slow[1] = {0};
	struct batch b = {
		.uri = uri, .delay_ms = 2000, .opts = {.timeout_ms = 200}, .calls = late, .n = 4};
	uint64_t t0;
	int rc;

	scenario("c) deadlines fire; late responses are dropped");
	rc = test_client_start(&tc, NULL, POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc)
		return;
	tracker_init(&t);
	b.rpc = tc.rpc;
	t0 = env_now_ns();
	CHECK_EQ(batch_issue(&b, &t, "late"), 4);
	CHECK(tracker_wait(&t, 4, 3000));
	pthread_mutex_lock(&t.mu);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(late[i].status, -SLUICE_EDEADLINE);
		CHECK(late[i].done_ns - t0 >= 200 * MS);
		CHECK(late[i].done_ns - t0 < 1500 * MS);
	}
	printf("deadline of 200 ms fired after %" PRIu64 " ms\n", (late[3].done_ns - t0) / MS);
	pthread_mutex_unlock(&t.mu);
	/* The same client works at once, and a call in flight when the stale responses come
	 * (it reuses one of their slots) gets its own answer, not theirs. */
	CHECK_EQ(sync_echo(tc.rpc, uri, false, "right-after", 5000, NULL), 0);
	b = (struct batch){.rpc = tc.rpc,
			   .uri = uri,
			   .delay_ms = 2500,
			   .opts = {.timeout_ms = 10000},
			   .calls = slow,
			   .n = 1};
	CHECK_EQ(batch_issue(&b, &t, "slow"), 1);
	CHECK(tracker_wait(&t, 5, 6000));
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(slow[0].status, 0);
	CHECK(slow[0].data_ok);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(late[i].runs, 1);
	pthread_mutex_unlock(&t.mu);
	CHECK(ms_since(t0) >= 2000); /* the late responses have arrived by now */
	CHECK_EQ(sync_echo(tc.rpc, uri, false, "afterwards", 5000, NULL), 0);
	tracker_fini(&t);
	test_client_stop(&tc);
}

/* ---- d: cancellation ------------------------------------------------------------------------ */

struct cancel_all {
	struct rpc_client *rpc;
	struct acall *calls;
	unsigned n;
};

static void cancel_all_fn(void *arg)
{
	struct cancel_all *c = arg;

	for (unsigned i = 0; i < c->n; i++)
		rpc_cancel(c->rpc, c->calls[i].id);
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void test_cancel(const char *uri)
{
	enum { N = 100, BULK = 64 * 1024 };
	static struct acall calls[N];
	struct test_client tc;
	struct tracker t;
	struct batch b1 = {.uri = uri,
			   .delay_ms = 2000,
			   .resp_bulk_len = BULK,
			   .opts = {.timeout_ms = 10000},
			   .calls = calls,
			   .n = N / 2};
	struct batch b2 = b1;
	struct cancel_all ca = {.calls = calls, .n = N};
	uint8_t *bufs = malloc((size_t)N * BULK);
	unsigned ok = 0;
	int rc;

	scenario("d) cancel 100 calls in flight");
	ASSERT(bufs);
	memset(calls, 0, sizeof(calls));
	rc = test_client_start(&tc, NULL, POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc) {
		free(bufs);
		return;
	}
	tracker_init(&t);
	/* Half receive their bulk into our buffers (checked untouched after the callback),
	 * half into pool buffers; the second half is canceled in the turn it starts. */
	for (unsigned i = 0; i < N; i++) {
		calls[i].resp_buf = i % 2 ? bufs + (size_t)i * BULK : NULL;
		calls[i].resp_cap = i % 2 ? BULK : 0;
	}
	b1.rpc = b2.rpc = ca.rpc = tc.rpc;
	b2.calls = calls + N / 2;
	b2.cancel_at_once = true;
	CHECK_EQ(batch_issue(&b1, &t, "cancel"), N / 2);
	CHECK_EQ(batch_issue(&b2, &t, "cancel-now"), N / 2);
	env_sleep_ms(100); /* the first half is at the server now */
	run_on_reactor(tc.r, cancel_all_fn, &ca);
	run_on_reactor(tc.r, cancel_all_fn, &ca); /* canceling again changes nothing */
	CHECK(tracker_wait(&t, N, 3000));
	env_sleep_ms(2500); /* the late responses, bulks included, arrive and are dropped */
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(t.ndone, N);
	for (unsigned i = 0; i < N; i++) {
		CHECK_EQ(calls[i].runs, 1);
		CHECK_EQ(calls[i].status, -SLUICE_ECANCELED);
		ok += calls[i].runs == 1 && calls[i].status == -SLUICE_ECANCELED;
		if (calls[i].resp_buf)
			CHECK(all_bytes(calls[i].resp_buf, BULK, 0xA5));
	}
	pthread_mutex_unlock(&t.mu);
	printf("%u of %d calls called back once with SLUICE_ECANCELED\n", ok, N);
	CHECK_EQ(sync_echo(tc.rpc, uri, false, "after-cancel", 5000, NULL), 0);
	tracker_fini(&t);
	test_client_stop(&tc);
	free(bufs);
}

/* ---- e: max_calls ------------------------------------------------------------------------- */

static void test_max_calls(const char *uri)
{
	struct rpc_client_cfg cfg = {.max_calls = 8};
	struct test_client tc;
	struct tracker t;
	struct acall calls[10] = {0};
	struct batch b = {
		.uri = uri, .delay_ms = 300, .opts = {.timeout_ms = 5000}, .calls = calls, .n = 9};
	int rc;

	scenario("e) max_calls = 8: the 9th concurrent call gets -EAGAIN");
	rc = test_client_start(&tc, &cfg, POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc)
		return;
	tracker_init(&t);
	b.rpc = tc.rpc;
	CHECK_EQ(batch_issue(&b, &t, "max"), 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(calls[i].submit_rc, 0);
	CHECK_EQ(calls[8].submit_rc, -EAGAIN);
	CHECK(tracker_wait(&t, 8, 5000));
	env_sleep_ms(50);
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(t.ndone, 8); /* the refused call never calls back */
	for (unsigned i = 0; i < 8; i++)
		CHECK(calls[i].status == 0 && calls[i].data_ok);
	pthread_mutex_unlock(&t.mu);
	b.calls = &calls[9]; /* slots are free again */
	b.n = 1;
	b.delay_ms = 0;
	CHECK_EQ(batch_issue(&b, &t, "max-again"), 1);
	CHECK(tracker_wait(&t, 9, 5000));
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(calls[9].status, 0);
	pthread_mutex_unlock(&t.mu);
	tracker_fini(&t);
	test_client_stop(&tc);
}

/* ---- f: idle and stuck peers ----------------------------------------------------------------- */

static int raw_connect(const char *uri, int rcvbuf)
{
	struct net_addr a;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 5};
	int fd;

	if (net_addr_parse(uri, &a) != 0 || inet_pton(AF_INET, a.host, &sin.sin_addr) != 1)
		return -EINVAL;
	sin.sin_port = htons(a.port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (rcvbuf)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				 sizeof(rcvbuf));			/* best effort */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* never hang in send */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

/* Wait until the peer closed fd, without reading: ms waited, or -1 after timeout_ms. */
static long wait_closed(int fd, uint32_t timeout_ms)
{
	uint64_t t0 = env_now_ns();
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	if (poll(&p, 1, (int)timeout_ms) != 1)
		return -1;
	return (long)ms_since(t0);
}

/* 0 if the stream ended (EOF or reset) after at most some unread data, else -1. */
static int drained_to_eof(int fd)
{
	static uint8_t sink[1 << 16];

	for (int i = 0; i < 100000; i++) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0)
			return -1;
	}
	return -1;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = -1, rss = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Send n echo requests, each asking for a 1 MiB response bulk, as raw frames. */
static int flood(int fd, unsigned n)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	uint8_t frame[FRAME_HDR_SIZE + 64];
	size_t plen;

	req.resp_bulk_len = SLUICE_MiB;
	req.seed = 3; /* the server touches every byte it allocates */
	plen = sluice__test__echo_req__get_packed_size(&req);
	ASSERT(plen <= sizeof(frame) - FRAME_HDR_SIZE);
	sluice__test__echo_req__pack(&req, frame + FRAME_HDR_SIZE);
	for (unsigned i = 0; i < n; i++) {
		struct frame_hdr h = {.flags = FRAME_F_REQUEST,
				      .opcode = frame_opcode(ECHO_SERVICE_ID, echo_OP_ECHO),
				      .req_id = i + 1,
				      .payload_len = (uint32_t)plen,
				      .payload_crc = crc32c(0, frame + FRAME_HDR_SIZE, plen)};

		frame_hdr_encode(&h, frame);
		if (send(fd, frame, FRAME_HDR_SIZE + plen, MSG_NOSIGNAL) !=
		    (ssize_t)(FRAME_HDR_SIZE + plen))
			return -1;
	}
	return 0;
}

static void test_idle_and_stuck(void)
{
	enum { FLOOD = 2000 };
	const size_t budget = 64u * SLUICE_MiB;
	struct rpc_server_cfg cfg = {.idle_timeout_ms = 1000, .stall_timeout_ms = 1000};
	struct echo_server *srv;
	struct rpc_server_stats st;
	struct bufpool_stats ps;
	struct test_client tc;
	struct tracker t;
	struct acall call = {0};
	struct batch mid = {.opts = {.timeout_ms = 10000}, .calls = &call, .n = 1};
	long waited, rss0, rss_max, rss;
	size_t pool_max = 0;
	uint64_t t0;
	int fd, rc;

	scenario("f) idle and stuck peers are closed; the server stays bounded and serving");
	rc = echo_server_start_cfg("tcp://127.0.0.1:0", &cfg, budget, &srv);
	CHECK_EQ(rc, 0);
	if (rc)
		return;
	rc = test_client_start(&tc, NULL, POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc) {
		echo_server_stop(srv);
		return;
	}

	/* idle: connects, says nothing */
	fd = raw_connect(echo_server_uri(srv), 0);
	CHECK(fd >= 0);
	if (fd >= 0) {
		waited = wait_closed(fd, 5000);
		printf("idle connection closed by the server after %ld ms\n", waited);
		CHECK(waited >= 500 && waited < 3000);
		CHECK_EQ(drained_to_eof(fd), 0);
		close(fd);
	}

	/* stuck: floods requests for 1 MiB bulks and never reads */
	CHECK_EQ(sync_echo(tc.rpc, echo_server_uri(srv), false, "before", 5000, NULL), 0);
	rss0 = rss_max = rss_kib();
	fd = raw_connect(echo_server_uri(srv), 64 * 1024);
	CHECK(fd >= 0);
	if (fd < 0)
		goto out;
	CHECK_EQ(flood(fd, FLOOD), 0);
	t0 = env_now_ns();
	env_sleep_ms(200); /* the server has filled its pool and the socket by now */
	mid.rpc = tc.rpc;
	mid.uri = echo_server_uri(srv);
	/* A well-behaved client is served meanwhile - in practice only once the stuck peer
	 * is gone: its replies hold the whole pool until the stall timeout frees them. */
	tracker_init(&t);
	CHECK_EQ(batch_issue(&mid, &t, "meanwhile"), 1);
	for (waited = -1; ms_since(t0) < 15000 && (waited < 0 || !tracker_wait(&t, 1, 0));) {
		rss = rss_kib();
		rss_max = rss > rss_max ? rss : rss_max;
		bufpool_stats(echo_server_pool(srv), &ps);
		pool_max = ps.allocated_bytes > pool_max ? ps.allocated_bytes : pool_max;
		if (waited >= 0)
			env_sleep_ms(10);
		else if (wait_closed(fd, 20) >= 0)
			waited = (long)ms_since(t0);
	}
	bufpool_stats(echo_server_pool(srv), &ps);
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(call.runs, 1);
	/* retries 0: regression "idle timeout while starved" (its connection was closed) */
	CHECK_EQ(call.status, 0);
	CHECK(call.data_ok);
	printf("stuck connection closed %ld ms after its flood; a normal call made during the "
	       "flood completed at %" PRIu64 " ms\n",
	       waited, call.runs ? (call.done_ns - t0) / MS : 0);
	pthread_mutex_unlock(&t.mu);
	printf("RSS grew by at most %ld KiB; server pool peaked at %zu KiB of its %zu KiB "
	       "budget (%" PRIu64 " refusals)\n",
	       rss_max - rss0, pool_max / 1024, budget / 1024, ps.misses_eagain);
	CHECK(waited >= 0 && waited < 10000);
	CHECK_EQ(drained_to_eof(fd), 0);
	close(fd);
	/* Untouched pool memory does not count: the server fills every bulk (seed != 0). A
	 * budget ignored would show as 256 requests x 1 MiB. */
	CHECK(rss0 > 0 && rss_max - rss0 < (long)(budget / 1024) + 48 * 1024);
	CHECK(pool_max <= budget);
	CHECK(ps.misses_eagain > 0); /* the budget, not luck, is what bounded it */
	/* The server counts a connection until its close notification, which runs a reactor
	 * turn after the socket was closed - what we saw above. On a loaded machine (or under
	 * the sanitizers) that turn can come after our stats request: give it a moment.
	 * Regression (conns_open_counted_before_close_notify): failed 1 run in ~5 under ASan
	 * on a busy host. */
	for (int i = 0; i < 100; i++) {
		echo_server_stats(srv, &st);
		if (st.conns_open <= 1)
			break;
		env_sleep_ms(10);
	}
	printf("server: %" PRIu64 " requests, %" PRIu64 " replies, %" PRIu64 " errors, %" PRIu64
	       " conns open\n",
	       st.requests, st.replies, st.errors_sent, st.conns_open);
	CHECK(st.requests >= 2 && st.requests < 2 + FLOOD); /* it stopped reading the flood */
	CHECK(st.conns_open <= 1); /* the normal client's, if not closed as idle by now */
	CHECK_EQ(sync_echo(tc.rpc, echo_server_uri(srv), false, "afterwards", 5000, NULL), 0);
	tracker_fini(&t);
out:
	test_client_stop(&tc);
	echo_server_stop(srv);
}

/* ---- g: deadline while the response bulk lands in caller memory, then the conn dies ---- */

struct fake_server {
	int lfd;
	char uri[SLUICE_NET_ADDR_MAX];
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool half_sent, release;
};

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Answer one request with a frame announcing a 1 MiB bulk, send half of it, wait to be
 * released, close. */
static void *fake_server_main(void *arg)
{
	static uint8_t half[SLUICE_MiB / 2], payload[SLUICE_MiB];
	struct fake_server *fs = arg;
	Sluice__Test__EchoResp resp = SLUICE__TEST__ECHO_RESP__INIT;
	uint8_t hdr[FRAME_HDR_SIZE];
	struct frame_hdr h;
	size_t plen;
	int fd = accept(fs->lfd, NULL, NULL);

	if (fd < 0 || read_full(fd, hdr, sizeof(hdr)) != 0 || frame_hdr_decode(hdr, &h, NULL) ||
	    h.payload_len > sizeof(payload) || read_full(fd, payload, h.payload_len) != 0)
		goto out;
	plen = sluice__test__echo_resp__pack(&resp, payload);
	h = (struct frame_hdr){.flags = FRAME_F_RESPONSE,
			       .opcode = h.opcode,
			       .req_id = h.req_id,
			       .payload_len = (uint32_t)plen,
			       .bulk_len = SLUICE_MiB,
			       .payload_crc = crc32c(0, payload, plen)};
	frame_hdr_encode(&h, hdr);
	if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != sizeof(hdr) ||
	    (plen && send(fd, payload, plen, MSG_NOSIGNAL) != (ssize_t)plen) ||
	    send(fd, half, sizeof(half), MSG_NOSIGNAL) != sizeof(half))
		goto out;
out:
	pthread_mutex_lock(&fs->mu);
	fs->half_sent = true;
	pthread_cond_broadcast(&fs->cv);
	while (!fs->release)
		pthread_cond_wait(&fs->cv, &fs->mu);
	pthread_mutex_unlock(&fs->mu);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void regress_lost_callback_mid_bulk(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	static struct fake_server fs;
	static uint8_t buf[SLUICE_MiB];
	struct test_client tc;
	struct tracker t;
	struct acall call = {.resp_buf = buf, .resp_cap = sizeof(buf)};
	struct batch b = {.resp_bulk_len = SLUICE_MiB,
			  .opts = {.timeout_ms = 300, .retries = 0},
			  .calls = &call,
			  .n = 1};
	uint64_t t0, t_release;
	int rc;

	scenario("g) deadline while the response bulk is landing, then the connection dies");
	fs.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fs.lfd >= 0);
	if (fs.lfd < 0 || bind(fs.lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fs.lfd, 1) != 0 || getsockname(fs.lfd, (struct sockaddr *)&sin, &sl) != 0) {
		CHECK(!"fake server socket");
		return;
	}
	snprintf(fs.uri, sizeof(fs.uri), "tcp://127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	pthread_mutex_init(&fs.mu, NULL);
	pthread_cond_init(&fs.cv, NULL);
	CHECK_EQ(pthread_create(&fs.th, NULL, fake_server_main, &fs), 0);
	rc = test_client_start(&tc, NULL, POOL_BYTES);
	CHECK_EQ(rc, 0);
	if (rc)
		return; /* the fake server thread leaks: the process exits anyway */
	tracker_init(&t);
	b.rpc = tc.rpc;
	b.uri = fs.uri;
	t0 = env_now_ns();
	CHECK_EQ(batch_issue(&b, &t, "mid-bulk"), 1);
	pthread_mutex_lock(&fs.mu);
	while (!fs.half_sent)
		pthread_cond_wait(&fs.cv, &fs.mu);
	pthread_mutex_unlock(&fs.mu);
	env_sleep_ms(600); /* the deadline passes with half the bulk in our buffer */
	t_release = env_now_ns();
	pthread_mutex_lock(&fs.mu);
	fs.release = true; /* the server now dies without sending the rest */
	pthread_cond_broadcast(&fs.cv);
	pthread_mutex_unlock(&fs.mu);
	pthread_join(fs.th, NULL);
	CHECK(tracker_wait(&t, 1, 3000));
	pthread_mutex_lock(&t.mu);
	CHECK_EQ(call.runs, 1);
	CHECK_EQ(call.status, -SLUICE_EDEADLINE);
	/* It had to wait for the transport to let go of our buffer: proof that the bulk was
	 * landing there when the deadline fired, i.e. that this path was taken. */
	CHECK(call.runs == 1 && call.done_ns > t_release);
	printf("called back %s after %" PRIu64 " ms\n",
	       call.runs ? sluice_errname(call.status) : "never", ms_since(t0));
	pthread_mutex_unlock(&t.mu);
	close(fs.lfd);
	if (call.runs == 0) {
		/* test_client_stop would wait forever for the lost call: leave it. */
		fprintf(stderr, "lost callback: skipping client teardown\n");
		return;
	}
	tracker_fini(&t);
	test_client_stop(&tc);
}

/*
 * Regression (slowloris_frame): a peer that claims a large bulk and then trickles bytes
 * held its receive buffer forever (it never looked idle). Frames must now arrive within
 * SLUICE_NET_FRAME_GRACE_MS plus their length at SLUICE_NET_FRAME_MIN_RATE.
 */
static void regress_slowloris_frame(const char *uri)
{
	struct frame_hdr h = {.flags = FRAME_F_REQUEST,
			      .opcode = frame_opcode(ECHO_SERVICE_ID, echo_OP_ECHO),
			      .req_id = 1,
			      .bulk_len = 1u << 20};
	uint8_t wire[FRAME_HDR_SIZE];
	uint64_t t0 = env_now_ns();
	bool closed = false;
	int fd;

	scenario("h) a frame trickling in is cut off: it cannot pin a receive buffer");
	fd = raw_connect(uri, 0);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	frame_hdr_encode(&h, wire);
	CHECK_EQ(send(fd, wire, sizeof(wire), MSG_NOSIGNAL), (long)sizeof(wire));
	/* one byte every 200 ms: never idle, hopelessly slow */
	while (!closed && ms_since(t0) < 15000) {
		closed = send(fd, "x", 1, MSG_NOSIGNAL) != 1 || wait_closed(fd, 200) >= 0;
	}
	CHECK(closed);
	CHECK(ms_since(t0) >= SLUICE_NET_FRAME_GRACE_MS);
	printf("  closed after %llu ms\n", (unsigned long long)ms_since(t0));
	close(fd);
}

int main(int argc, char **argv)
{
	struct echo_server *srv;
	int rc;

	if (argc < 2 || access(argv[1], X_OK) != 0)
		test_skip("usage: test_rpc_faults PATH_TO_sluice-test-echod");
	echod_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	test_killed_and_restarted();
	rc = echo_server_start("tcp://127.0.0.1:0", POOL_BYTES, &srv);
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		test_deadlines(echo_server_uri(srv));
		test_cancel(echo_server_uri(srv));
		test_max_calls(echo_server_uri(srv));
		regress_slowloris_frame(echo_server_uri(srv));
		echo_server_stop(srv);
	}
	test_idle_and_stuck();
	regress_lost_callback_mid_bulk();
	while (nchildren)
		echod_kill(children[0]);
	if (test_failures)
		fprintf(stderr, "%d check(s) failed\n", test_failures);
	return test_result();
}
