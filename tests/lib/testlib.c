/*
 * testlib.c - shared helpers for test and benchmark programs (see testlib.h).
 *
 * The echo server handlers run on the server reactor's thread. Delayed replies use a
 * reactor timer per request. Response bulks come from the server's buffer pool and are
 * filled with pattern_fill(seed); seed 0 means "any bytes" so benchmarks measure the
 * transport, not the pattern generator.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/net/net.h"
#include "tests/lib/testlib.h"

RPC_DEFINE_SERVICE(echo, ECHO_SERVICE_ID, ECHO_OPS)
RPC_DEFINE_HANDLERS(echo, ECHO_OPS)

int test_failures;

void test_skip(const char *why)
{
	fprintf(stderr, "SKIP: %s\n", why);
	exit(77);
}

/* splitmix64 of the word index: any offset can be generated independently. */
static uint64_t pattern_word(uint64_t seed, uint64_t i)
{
	uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void pattern_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word(seed, i / 8);

		memcpy(p + i, &w, 8);
	}
	if (i < len) {
		uint64_t w = pattern_word(seed, i / 8);

		memcpy(p + i, &w, len - i);
	}
}

long pattern_check(const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pattern_word(seed, i / 8);
		size_t n = len - i < 8 ? len - i : 8;

		if (memcmp(p + i, &w, n) != 0) {
			for (size_t j = 0; j < n; j++)
				if (p[i + j] != ((uint8_t *)&w)[j])
					return (long)(i + j);
		}
	}
	return -1;
}

/* ---- running things on a reactor ------------------------------------------------------- */

struct on_reactor {
	struct reactor_msg msg;
	void (*fn)(void *arg);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void on_reactor_fn(struct reactor_msg *m)
{
	struct on_reactor *o = SLUICE_CONTAINER_OF(m, struct on_reactor, msg);

	o->fn(o->arg);
	pthread_mutex_lock(&o->mu);
	o->done = true;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

void run_on_reactor(struct reactor *r, void (*fn)(void *arg), void *arg)
{
	struct on_reactor o = {.msg.fn = on_reactor_fn, .fn = fn, .arg = arg};

	pthread_mutex_init(&o.mu, NULL);
	pthread_cond_init(&o.cv, NULL);
	reactor_post_wait(r, &o.msg);
	pthread_mutex_lock(&o.mu);
	while (!o.done)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
}

/* ---- echo server ------------------------------------------------------------------------ */

struct echo_server {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *rpc;
	char uri[SLUICE_NET_ADDR_MAX];
	struct rpc_server_cfg cfg;
	uint64_t served;
	int delayed;	    /* replies waiting on a timer */
	bool skip_bulk_crc; /* echo_server_verify_bulk(false); atomic: set by another thread */
	int rc;		    /* of the start step */
};

struct delayed_reply {
	struct reactor_timer timer;
	struct rpc_req *req;
	struct echo_server *s;
	Sluice__Test__EchoResp resp;
	struct buf *bulk;
};

static void release_buf(void *arg)
{
	buf_put(arg);
}

static void send_echo(struct rpc_req *req, Sluice__Test__EchoResp *resp, struct buf *bulk)
{
	struct iovec iov = {bulk ? bulk->data : NULL, bulk ? bulk->len : 0};

	rpc_reply(req, 0, &resp->base, &iov, bulk ? 1 : 0, release_buf, bulk);
}

static void delayed_fired(struct reactor_timer *t)
{
	struct delayed_reply *d = SLUICE_CONTAINER_OF(t, struct delayed_reply, timer);

	send_echo(d->req, &d->resp, d->bulk);
	__atomic_fetch_sub(&d->s->delayed, 1, __ATOMIC_RELAXED);
	free(d);
}

static void echo_common(struct rpc_req *req, const Sluice__Test__EchoReq *m, void *ctx)
{
	struct echo_server *s = ctx;
	struct buf *in = rpc_req_bulk(req), *out = NULL;
	Sluice__Test__EchoResp resp = SLUICE__TEST__ECHO_RESP__INIT;
	uint32_t crc = 0;
	int rc;

	if (in && __atomic_load_n(&s->skip_bulk_crc, __ATOMIC_RELAXED))
		crc = m->req_bulk_crc; /* trust the caller: benchmarks measure the transport */
	else if (in)
		crc = crc32c(0, in->data, in->len);
	s->served++;
	if (m->fail_with < 0) {
		rpc_reply(req, m->fail_with, NULL, NULL, 0, NULL, NULL);
		return;
	}
	if (crc != m->req_bulk_crc) {
		rpc_reply(req, -SLUICE_ECHECKSUM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	if (m->resp_bulk_len) {
		rc = bufpool_get(s->pool, m->resp_bulk_len, &out);
		if (rc) {
			rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
			return;
		}
		if (m->seed)
			pattern_fill(out->data, out->len, m->seed);
	}
	resp.data = m->data; /* points into the request, which lives until the reply */
	resp.req_bulk_len = in ? (uint32_t)in->len : 0;
	resp.req_bulk_crc = crc;
	resp.served = s->served;
	if (m->delay_ms) {
		struct delayed_reply *d = calloc(1, sizeof(*d));

		ASSERT(d);
		d->req = req;
		d->s = s;
		d->resp = resp;
		d->bulk = out;
		reactor_timer_init(&d->timer, delayed_fired);
		__atomic_fetch_add(&s->delayed, 1, __ATOMIC_RELAXED);
		rc = reactor_timer_arm(s->r, &d->timer, (uint64_t)m->delay_ms * ENV_NS_PER_MS);
		ASSERT(rc == 0);
		return;
	}
	send_echo(req, &resp, out);
}

void echo_h_echo(struct rpc_req *req, const Sluice__Test__EchoReq *m, void *ctx)
{
	echo_common(req, m, ctx);
}

void echo_h_echo_once(struct rpc_req *req, const Sluice__Test__EchoReq *m, void *ctx)
{
	echo_common(req, m, ctx);
}

static void echo_start_fn(void *arg)
{
	struct echo_server *s = arg;

	s->cfg.pool = s->pool;
	s->rc = rpc_server_create(s->r, &s->cfg, &s->rpc);
	if (s->rc)
		return;
	s->rc = rpc_server_add_service(s->rpc, &echo_service_handlers, s);
	if (s->rc == 0)
		s->rc = rpc_server_listen(s->rpc, s->uri, s->uri, sizeof(s->uri));
}

int echo_server_start(const char *uri, size_t pool_bytes, struct echo_server **out)
{
	struct rpc_server_cfg cfg = {0};

	return echo_server_start_cfg(uri, &cfg, pool_bytes, out);
}

struct stats_req {
	struct echo_server *s;
	struct rpc_server_stats *out;
};

static void stats_fn(void *arg)
{
	struct stats_req *q = arg;

	rpc_server_stats(q->s->rpc, q->out);
}

void echo_server_stats(struct echo_server *s, struct rpc_server_stats *out)
{
	struct stats_req q = {s, out};

	run_on_reactor(s->r, stats_fn, &q);
}

int echo_server_start_cfg(const char *uri, const struct rpc_server_cfg *cfg, size_t pool_bytes,
			  struct echo_server **out)
{
	struct echo_server *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	net_register_builtin();
	snprintf(s->uri, sizeof(s->uri), "%s", uri);
	rc = bufpool_create("echo", pool_bytes, &s->pool);
	if (rc == 0)
		rc = reactor_create("echo-srv", &s->r);
	if (rc == 0)
		rc = reactor_start(s->r);
	if (rc == 0) {
		run_on_reactor(s->r, echo_start_fn, s);
		rc = s->rc;
	}
	if (rc) {
		echo_server_stop(s);
		return rc;
	}
	*out = s;
	return 0;
}

const char *echo_server_uri(const struct echo_server *s)
{
	return s->uri;
}

struct bufpool *echo_server_pool(struct echo_server *s)
{
	return s->pool;
}

void echo_server_verify_bulk(struct echo_server *s, bool verify)
{
	__atomic_store_n(&s->skip_bulk_crc, !verify, __ATOMIC_RELAXED);
}

static void echo_stop_fn(void *arg)
{
	struct echo_server *s = arg;

	rpc_server_destroy(s->rpc);
}

void echo_server_stop(struct echo_server *s)
{
	if (!s)
		return;
	if (s->rpc) {
		run_on_reactor(s->r, echo_stop_fn, s);
		/* Delayed replies still hold their requests' buffers: let them fire (their
		 * replies are dropped), and the deferred close notifications run. */
		while (__atomic_load_n(&s->delayed, __ATOMIC_RELAXED) > 0)
			env_sleep_ms(10);
		env_sleep_ms(20);
	}
	reactor_destroy(s->r);
	bufpool_destroy(s->pool);
	free(s);
}

pid_t echo_server_spawn(const char *echod_path, char *uri, size_t uri_len)
{
	int fds[2];
	pid_t pid;
	ssize_t n;

	if (pipe(fds) != 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char fd_arg[16];

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		snprintf(fd_arg, sizeof(fd_arg), "%d", fds[1]);
		execl(echod_path, echod_path, "tcp://127.0.0.1:0", fd_arg, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], uri, uri_len - 1);
	close(fds[0]);
	if (n <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -EIO;
	}
	uri[n] = 0;
	return pid;
}

/* ---- test client ------------------------------------------------------------------------- */

struct client_start {
	struct test_client *tc;
	struct rpc_client_cfg cfg;
	int rc;
};

static void client_start_fn(void *arg)
{
	struct client_start *cs = arg;

	cs->rc = rpc_client_create(cs->tc->r, &cs->cfg, &cs->tc->rpc);
}

int test_client_start(struct test_client *tc, const struct rpc_client_cfg *cfg_or_null,
		      size_t pool_bytes)
{
	struct client_start cs = {.tc = tc};
	int rc;

	memset(tc, 0, sizeof(*tc));
	net_register_builtin();
	if (cfg_or_null)
		cs.cfg = *cfg_or_null;
	rc = bufpool_create("client", pool_bytes, &tc->pool);
	if (rc)
		return rc;
	cs.cfg.pool = tc->pool;
	rc = reactor_create("client", &tc->r);
	if (rc == 0)
		rc = reactor_start(tc->r);
	if (rc == 0) {
		run_on_reactor(tc->r, client_start_fn, &cs);
		rc = cs.rc;
	}
	if (rc)
		test_client_stop(tc);
	return rc;
}

void test_client_stop(struct test_client *tc)
{
	rpc_client_destroy(tc->rpc);
	reactor_destroy(tc->r);
	bufpool_destroy(tc->pool);
	memset(tc, 0, sizeof(*tc));
}
