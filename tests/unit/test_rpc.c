/*
 * test_rpc.c - the RPC layer end to end in one process: an echo server and a client on
 * their own reactors over loopback TCP. Covers payload and bulk both ways (into a pool
 * buffer and into the caller's memory), remote errors, deadlines, cancellation, connection
 * refused, retry budget, and frame/address validation; and servers on several reactors
 * sharing one port (rpc_server_join): connections spread evenly (one after the other and
 * all at once), each served on its own server's reactor; a member or the leader going away,
 * also amid connection churn and with a connection already handed to the member; and a
 * member on the leader's own reactor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/net/frame.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "tests/lib/testlib.h"

static struct echo_server *srv;
static struct test_client tc;

static int echo(Sluice__Test__EchoReq *req, const struct rpc_call_opts *o, struct rpc_result *res)
{
	return echoc_echo(tc.rpc, echo_server_uri(srv), req, o, res);
}

static void test_small(void)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_result res;
	Sluice__Test__EchoResp *resp;

	req.data.data = (uint8_t *)"hello";
	req.data.len = 5;
	CHECK_EQ(echo(&req, NULL, &res), 0);
	resp = (Sluice__Test__EchoResp *)res.resp;
	CHECK(resp && resp->data.len == 5 && memcmp(resp->data.data, "hello", 5) == 0);
	CHECK_EQ(res.resp_bulk_len, 0);
	rpc_result_release(&res);
}

static void test_bulk(size_t req_len, size_t resp_len, bool into_caller, bool crc)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	uint8_t *out = malloc(req_len + 1), *in = malloc(resp_len + 1);
	struct iovec iov[2] = {{out, req_len / 2}, {out + req_len / 2, req_len - req_len / 2}};
	struct rpc_call_opts o = {.bulk = iov, .nbulk = 2, .bulk_crc = crc};
	struct rpc_result res;
	Sluice__Test__EchoResp *resp;

	pattern_fill(out, req_len, 77);
	req.req_bulk_crc = crc32c(0, out, req_len);
	req.resp_bulk_len = (uint32_t)resp_len;
	req.seed = 99;
	if (into_caller) {
		o.resp_bulk = in;
		o.resp_bulk_cap = resp_len;
	}
	CHECK_EQ(echo(&req, &o, &res), 0);
	resp = (Sluice__Test__EchoResp *)res.resp;
	CHECK(resp && resp->req_bulk_len == req_len && resp->req_bulk_crc == req.req_bulk_crc);
	CHECK_EQ(res.resp_bulk_len, resp_len);
	if (into_caller) {
		CHECK(res.resp_bulk == NULL);
		CHECK_EQ(pattern_check(in, resp_len, 99), -1);
	} else if (resp_len) {
		CHECK(res.resp_bulk && res.resp_bulk->len == resp_len);
		if (res.resp_bulk)
			CHECK_EQ(pattern_check(res.resp_bulk->data, resp_len, 99), -1);
	}
	rpc_result_release(&res);
	free(out);
	free(in);
}

static void test_errors(void)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = 100};
	struct rpc_result res;
	uint8_t small[16];
	uint64_t t0;

	/* remote error status comes back as is */
	req.fail_with = -ENOENT;
	CHECK_EQ(echo(&req, NULL, &res), -ENOENT);
	CHECK(res.resp == NULL);
	req.fail_with = 0;

	/* wrong request bulk crc: the server says so */
	req.req_bulk_crc = 1;
	CHECK_EQ(echo(&req, NULL, &res), -SLUICE_ECHECKSUM);
	req.req_bulk_crc = 0;

	/* deadline fires while the server sits on the request */
	req.delay_ms = 1000;
	t0 = env_now_ns();
	CHECK_EQ(echo(&req, &o, &res), -SLUICE_EDEADLINE);
	CHECK(env_now_ns() - t0 >= 100 * ENV_NS_PER_MS);
	CHECK(env_now_ns() - t0 < 900 * ENV_NS_PER_MS);
	req.delay_ms = 0;

	/* a response bulk bigger than the caller's buffer is refused, not overrun */
	req.resp_bulk_len = 4096;
	req.seed = 5;
	o = (struct rpc_call_opts){.resp_bulk = small, .resp_bulk_cap = sizeof(small)};
	CHECK_EQ(echo(&req, &o, &res), -EOVERFLOW);
	rpc_result_release(&res);

	/* nobody listens: connection refused after the retries */
	t0 = env_now_ns();
	o = (struct rpc_call_opts){.timeout_ms = 5000, .retries = 2};
	CHECK_EQ(echoc_echo(tc.rpc, "tcp://127.0.0.1:1", &req, &o, &res), -ECONNREFUSED);
	CHECK(env_now_ns() - t0 < 4000 * ENV_NS_PER_MS);

	/* bad peer URI */
	CHECK_EQ(echoc_echo(tc.rpc, "tcp://nowhere", &req, NULL, &res), -EINVAL);
}

struct cancel_ctx {
	int status;
	int calls;
	uint64_t id;
};

static void cancel_done(struct rpc_result *res, void *arg)
{
	struct cancel_ctx *c = arg;

	/* Atomics: the main thread reads these after a sleep, not a handshake. */
	__atomic_store_n(&c->status, res->status, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->calls, 1, __ATOMIC_RELEASE);
	rpc_result_release(res);
}

static void cancel_fn(void *arg)
{
	struct cancel_ctx *c = arg;
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	int rc;

	req.delay_ms = 2000;
	rc = echoc_echo_async(tc.rpc, echo_server_uri(srv), &req, NULL, cancel_done, c, &c->id);
	CHECK_EQ(rc, 0);
	CHECK_EQ(c->calls, 0); /* never inline */
	rpc_cancel(tc.rpc, c->id);
}

static void test_cancel(void)
{
	struct cancel_ctx c = {0};

	run_on_reactor(tc.r, cancel_fn, &c);
	env_sleep_ms(50);
	CHECK_EQ(__atomic_load_n(&c.calls, __ATOMIC_ACQUIRE), 1);
	CHECK_EQ(__atomic_load_n(&c.status, __ATOMIC_RELAXED), -SLUICE_ECANCELED);
}

/* Regression (slow_handler_not_idle): a request still in its handler kept its connection
 * alive past the server's idle timeout. Found by test_rpc_faults' author. */
static void test_slow_handler_not_idle(void)
{
	struct rpc_server_cfg cfg = {.idle_timeout_ms = 1000};
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = 10000, .retries = 0};
	struct echo_server *slow;
	struct rpc_result res;

	CHECK_EQ(echo_server_start_cfg("tcp://127.0.0.1:0", &cfg, 64u << 20, &slow), 0);
	req.delay_ms = 2500;
	CHECK_EQ(echoc_echo_once(tc.rpc, echo_server_uri(slow), &req, &o, &res), 0);
	rpc_result_release(&res);
	echo_server_stop(slow);
}

static void test_frame_codec(void)
{
	struct frame_hdr h = {.flags = FRAME_F_REQUEST,
			      .opcode = frame_opcode(3, 7),
			      .req_id = 0x1122334455667788ull,
			      .payload_len = 10,
			      .bulk_len = 20,
			      .payload_crc = 1,
			      .timeout_ms = 5},
			 d;
	uint8_t wire[FRAME_HDR_SIZE];
	const char *why;

	frame_hdr_encode(&h, wire);
	CHECK_EQ(frame_hdr_decode(wire, &d, &why), 0);
	CHECK(d.req_id == h.req_id && d.opcode == h.opcode && d.bulk_len == 20);
	CHECK_EQ(frame_service(d.opcode), 3);
	CHECK_EQ(frame_op(d.opcode), 7);
	wire[20] ^= 1;
	CHECK_EQ(frame_hdr_decode(wire, &d, &why), -SLUICE_ECRC);
	h.bulk_len = SLUICE_FRAME_BULK_MAX + 1;
	frame_hdr_encode(&h, wire);
	CHECK_EQ(frame_hdr_decode(wire, &d, &why), -SLUICE_ETOOBIG);
	h.bulk_len = 0;
	h.flags = FRAME_F_REQUEST | FRAME_F_RESPONSE;
	frame_hdr_encode(&h, wire);
	CHECK_EQ(frame_hdr_decode(wire, &d, &why), -SLUICE_EPROTO);
	wire[0] = 'X';
	CHECK_EQ(frame_hdr_decode(wire, &d, &why), -SLUICE_EPROTO);
}

static void test_addr(void)
{
	struct net_addr a;
	char buf[SLUICE_NET_ADDR_MAX];

	CHECK_EQ(net_addr_parse("tcp://127.0.0.1:7000", &a), 0);
	CHECK(strcmp(a.host, "127.0.0.1") == 0 && a.port == 7000);
	CHECK_EQ(net_addr_parse("tcp://[::1]:80", &a), 0);
	CHECK(net_addr_format(&a, buf, sizeof(buf)) > 0 && strcmp(buf, "tcp://[::1]:80") == 0);
	CHECK_EQ(net_addr_parse("tcp://127.0.0.1:70000", &a), -EINVAL);
	CHECK_EQ(net_addr_parse("tcp://127.0.0.1:", &a), -EINVAL);
	CHECK_EQ(net_addr_parse("127.0.0.1:80", &a), -EINVAL);
	CHECK_EQ(net_addr_parse("tcp://example.com:80", &a), -EINVAL);
	CHECK_EQ(net_addr_parse("tcp://1.2.3.4:8x", &a), -EINVAL);
}

/* ---- servers on several reactors sharing one port --------------------------------------- */

#define JOIN_SERVERS	   3
#define JOIN_CLIENTS	   6 /* two connections per server */
#define JOIN_CONC_CLIENTS  12
#define JOIN_CONC_REACTORS 3
#define JOIN_POOL_BYTES	   (64u << 20)

struct jsrv {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *rpc;
	struct rpc_server *leader; /* the server to join; NULL: listen */
	unsigned idx;
	char uri[SLUICE_NET_ADDR_MAX];
	struct rpc_server_stats st;
	int rc;
};

/* Answers with its server's index; each request must be served on that server's reactor. */
static void join_h_echo(struct rpc_req *req, const ProtobufCMessage *msg, void *ctx)
{
	struct jsrv *s = ctx;
	Sluice__Test__EchoResp resp = SLUICE__TEST__ECHO_RESP__INIT;

	(void)msg;
	resp.served = reactor_on_thread(s->r) ? s->idx : 1000;
	rpc_reply(req, 0, &resp.base, NULL, 0, NULL, NULL);
}

static const rpc_handler_fn join_fns[] = {
	[echo_OP_ECHO] = join_h_echo, [echo_OP_ECHO_ONCE] = join_h_echo};
static const struct rpc_service_handlers join_handlers = {.desc = &echo_service_desc,
							  .fns = join_fns};

static void jsrv_start_fn(void *arg)
{
	struct jsrv *s = arg;
	struct rpc_server_cfg cfg = {.pool = s->pool};

	s->rc = rpc_server_create(s->r, &cfg, &s->rpc);
	if (s->rc == 0)
		s->rc = rpc_server_add_service(s->rpc, &join_handlers, s);
	if (s->rc == 0 && s->leader)
		s->rc = rpc_server_join(s->rpc, s->leader);
	else if (s->rc == 0)
		s->rc = rpc_server_listen(s->rpc, "tcp://127.0.0.1:0", s->uri, sizeof(s->uri));
}

static void jsrv_stats_fn(void *arg)
{
	struct jsrv *s = arg;

	rpc_server_stats(s->rpc, &s->st);
}

static void jsrv_destroy_fn(void *arg)
{
	struct jsrv *s = arg;

	rpc_server_destroy(s->rpc);
	s->rpc = NULL;
}

static int jsrvs_start(struct jsrv *js, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct jsrv *s = &js[i];
		int rc = bufpool_create("join", JOIN_POOL_BYTES, &s->pool);

		if (rc == 0)
			rc = reactor_create("join", &s->r);
		if (rc == 0)
			rc = reactor_start(s->r);
		if (rc)
			return rc;
		s->idx = i;
		s->leader = i ? js[0].rpc : NULL;
		run_on_reactor(s->r, jsrv_start_fn, s);
		if (s->rc)
			return s->rc;
	}
	return 0;
}

static void jsrvs_stop(struct jsrv *js, unsigned n)
{
	for (unsigned i = n; i-- > 0;)
		if (js[i].rpc)
			run_on_reactor(js[i].r, jsrv_destroy_fn, &js[i]);
	env_sleep_ms(20); /* deferred close notifications */
	for (unsigned i = 0; i < n; i++) {
		reactor_destroy(js[i].r);
		bufpool_destroy(js[i].pool);
	}
}

struct jclients {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_client *c[JOIN_CLIENTS];
	unsigned n;
	int rc;
};

static void jclients_create_fn(void *arg)
{
	struct jclients *jc = arg;
	struct rpc_client_cfg cfg = {.pool = jc->pool, .retry_backoff_ms = 5};

	for (unsigned i = 0; i < jc->n && jc->rc == 0; i++)
		jc->rc = rpc_client_create(jc->r, &cfg, &jc->c[i]);
}

/* One call through client c; the index of the server that answered, or a negative error. */
static int join_call(struct rpc_client *c, const char *uri)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = 5000, .retries = -1}; /* the client's default */
	struct rpc_result res;
	int rc = echoc_echo(c, uri, &req, &o, &res);

	if (rc == 0)
		rc = res.resp ? (int)((Sluice__Test__EchoResp *)res.resp)->served : -SLUICE_EPROTO;
	rpc_result_release(&res);
	return rc;
}

static unsigned jsrv_conns(struct jsrv *s)
{
	run_on_reactor(s->r, jsrv_stats_fn, s);
	return (unsigned)s->st.conns_open;
}

/* Clients connecting one after the other: exactly two per server; then a member and the
 * leader go away. */
static void test_join_spread(struct jsrv *js, struct jclients *jc)
{
	int on[JOIN_CLIENTS];
	unsigned count[JOIN_SERVERS] = {0};

	for (unsigned i = 0; i < JOIN_CLIENTS; i++) {
		on[i] = join_call(jc->c[i], js[0].uri);
		CHECK(on[i] >= 0 && on[i] < JOIN_SERVERS);
		if (on[i] >= 0 && on[i] < JOIN_SERVERS)
			count[on[i]]++;
	}
	for (unsigned i = 0; i < JOIN_SERVERS; i++) {
		CHECK_EQ(count[i], JOIN_CLIENTS / JOIN_SERVERS);
		CHECK_EQ(jsrv_conns(&js[i]), JOIN_CLIENTS / JOIN_SERVERS);
		CHECK_EQ(js[i].st.requests, JOIN_CLIENTS / JOIN_SERVERS);
	}

	/* A member goes: its clients reconnect (idempotent op, retried) to the others. */
	run_on_reactor(js[1].r, jsrv_destroy_fn, &js[1]);
	env_sleep_ms(20);
	for (unsigned i = 0; i < JOIN_CLIENTS; i++) {
		on[i] = join_call(jc->c[i], js[0].uri);
		CHECK(on[i] == 0 || on[i] == 2);
	}
	CHECK_EQ(jsrv_conns(&js[0]) + jsrv_conns(&js[2]), JOIN_CLIENTS);
	CHECK_EQ(js[0].st.conns_open, JOIN_CLIENTS / 2);

	/* The leader goes: its socket is closed, so its clients find nobody listening, while
	 * the connections the remaining member holds keep working. */
	run_on_reactor(js[0].r, jsrv_destroy_fn, &js[0]);
	env_sleep_ms(20);
	for (unsigned i = 0; i < JOIN_CLIENTS; i++) {
		int rc = join_call(jc->c[i], js[0].uri);

		CHECK_EQ(rc, on[i] == 2 ? 2 : -ECONNREFUSED);
	}
}

struct jconc {
	struct reactor *r; /* the client's */
	struct rpc_client *c;
	const char *uri;
	int served;
	unsigned *done;
};

static void jconc_done(struct rpc_result *res, void *arg)
{
	struct jconc *j = arg;

	j->served = res->status ? res->status : (int)((Sluice__Test__EchoResp *)res->resp)->served;
	rpc_result_release(res);
	__atomic_add_fetch(j->done, 1, __ATOMIC_RELEASE);
}

/* On the client's reactor: create it and start one call, without waiting for it. */
static void jconc_start_fn(void *arg)
{
	struct jconc *j = arg;
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.retries = -1};
	struct rpc_client_cfg cfg = {.pool = tc.pool};
	int rc = rpc_client_create(j->r, &cfg, &j->c);

	if (rc == 0)
		rc = echoc_echo_async(j->c, j->uri, &req, &o, jconc_done, j, NULL);
	if (rc) {
		j->served = rc;
		__atomic_add_fetch(j->done, 1, __ATOMIC_RELEASE);
	}
}

/* On the client's reactor: start one call on an existing client, without waiting. */
static void jconc_call_fn(void *arg)
{
	struct jconc *j = arg;
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.retries = -1};
	int rc = echoc_echo_async(j->c, j->uri, &req, &o, jconc_done, j, NULL);

	if (rc) {
		j->served = rc;
		__atomic_add_fetch(j->done, 1, __ATOMIC_RELEASE);
	}
}

/* Many clients on several reactors connecting at once: still an even spread. */
static void test_join_concurrent(void)
{
	struct jsrv js[JOIN_SERVERS] = {0};
	struct reactor *cr[JOIN_CONC_REACTORS] = {0};
	struct jconc j[JOIN_CONC_CLIENTS] = {0};
	unsigned done = 0, count[JOIN_SERVERS] = {0};
	uint64_t give_up;
	int rc = jsrvs_start(js, JOIN_SERVERS);

	CHECK_EQ(rc, 0);
	for (unsigned i = 0; i < JOIN_CONC_REACTORS && rc == 0; i++) {
		rc = reactor_create("jcli", &cr[i]);
		if (rc == 0)
			rc = reactor_start(cr[i]);
		CHECK_EQ(rc, 0);
	}
	for (unsigned i = 0; i < JOIN_CONC_CLIENTS && rc == 0; i++) {
		j[i] = (struct jconc){
			.r = cr[i % JOIN_CONC_REACTORS], .uri = js[0].uri, .done = &done};
		run_on_reactor(j[i].r, jconc_start_fn, &j[i]); /* returns once the call is out */
	}
	give_up = env_now_ns() + 10 * ENV_NS_PER_S;
	while (rc == 0 && __atomic_load_n(&done, __ATOMIC_ACQUIRE) < JOIN_CONC_CLIENTS &&
	       env_now_ns() < give_up)
		env_sleep_ms(1);
	for (unsigned i = 0; i < JOIN_CONC_CLIENTS && rc == 0; i++) {
		CHECK(j[i].served >= 0 && j[i].served < JOIN_SERVERS);
		if (j[i].served >= 0 && j[i].served < JOIN_SERVERS)
			count[j[i].served]++;
	}
	for (unsigned i = 0; i < JOIN_SERVERS && rc == 0; i++)
		CHECK_EQ(count[i], JOIN_CONC_CLIENTS / JOIN_SERVERS);
	for (unsigned i = 0; i < JOIN_CONC_CLIENTS; i++)
		rpc_client_destroy(j[i].c);
	for (unsigned i = 0; i < JOIN_CONC_REACTORS; i++)
		reactor_destroy(cr[i]);
	jsrvs_stop(js, JOIN_SERVERS);
}

/* Connection churn against a group while a member goes away: every call still succeeds. */
#define CHURN_THREADS 3
#define CHURN_ROUNDS  60

struct churn {
	struct reactor *r;
	const char *uri;
	unsigned ok, failed;
	unsigned *started; /* shared: rounds begun by all threads */
	pthread_t th;
};

static void *churn_main(void *arg)
{
	struct churn *ch = arg;

	for (unsigned i = 0; i < CHURN_ROUNDS; i++) {
		struct jclients jc = {.r = ch->r, .pool = tc.pool, .n = 1};
		int rc;

		__atomic_add_fetch(ch->started, 1, __ATOMIC_RELAXED);
		run_on_reactor(jc.r, jclients_create_fn, &jc);
		rc = jc.rc ? jc.rc : join_call(jc.c[0], ch->uri);
		if (rc >= 0)
			ch->ok++;
		else
			ch->failed++;
		rpc_client_destroy(jc.c[0]); /* closes its connection: the slot is freed */
	}
	return NULL;
}

static void test_join_churn(void)
{
	struct jsrv js[JOIN_SERVERS] = {0};
	struct churn ch[CHURN_THREADS] = {0};
	unsigned started = 0, ok = 0;
	int rc = jsrvs_start(js, JOIN_SERVERS);

	CHECK_EQ(rc, 0);
	for (unsigned i = 0; i < CHURN_THREADS && rc == 0; i++) {
		ch[i] = (struct churn){.uri = js[0].uri, .started = &started};
		rc = reactor_create("churn", &ch[i].r);
		if (rc == 0)
			rc = reactor_start(ch[i].r);
		if (rc == 0)
			rc = -pthread_create(&ch[i].th, NULL, churn_main, &ch[i]);
		CHECK_EQ(rc, 0);
		if (rc) {
			reactor_destroy(ch[i].r);
			ch[i].r = NULL;
		}
	}
	/* Halfway, a member leaves while connections keep being handed to it. */
	while (rc == 0 &&
	       __atomic_load_n(&started, __ATOMIC_RELAXED) < CHURN_THREADS * CHURN_ROUNDS / 2)
		env_sleep_ms(1);
	if (rc == 0)
		run_on_reactor(js[1].r, jsrv_destroy_fn, &js[1]);
	for (unsigned i = 0; i < CHURN_THREADS; i++) {
		if (!ch[i].r)
			continue;
		pthread_join(ch[i].th, NULL);
		ok += ch[i].ok;
		CHECK_EQ(ch[i].failed, 0);
		reactor_destroy(ch[i].r);
	}
	if (rc == 0)
		CHECK_EQ(ok, CHURN_THREADS * CHURN_ROUNDS);
	jsrvs_stop(js, JOIN_SERVERS);
}

/* A connection handed to a member that closes before it takes it: the client is reset,
 * retries, and lands on a server that is still there. The member's reactor is held busy
 * (a message waiting for the test) while the acceptor hands it the connection. */
struct hold {
	struct reactor_msg msg;
	struct jsrv *member;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool release, done;
};

static void hold_fn(struct reactor_msg *m)
{
	struct hold *h = SLUICE_CONTAINER_OF(m, struct hold, msg);

	pthread_mutex_lock(&h->mu);
	while (!h->release)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	/* The handoff is queued behind us: the member closes before it runs. */
	rpc_server_destroy(h->member->rpc);
	h->member->rpc = NULL;
	pthread_mutex_lock(&h->mu);
	h->done = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void test_join_handoff_to_closed(void)
{
	struct jsrv js[2] = {0};
	struct jclients jc = {.r = tc.r, .pool = tc.pool, .n = 2};
	struct hold h = {.msg.fn = hold_fn, .member = &js[1]};
	struct jconc call = {.r = tc.r};
	unsigned done = 0;
	int rc = jsrvs_start(js, 2);

	CHECK_EQ(rc, 0);
	if (rc == 0) {
		run_on_reactor(jc.r, jclients_create_fn, &jc);
		CHECK_EQ(jc.rc, 0);
	}
	if (rc || jc.rc)
		goto out;
	/* The leader gets one connection, so the member is the least loaded. */
	CHECK_EQ(join_call(jc.c[0], js[0].uri), 0);
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	reactor_post_wait(js[1].r, &h.msg);
	call = (struct jconc){.r = tc.r, .c = jc.c[1], .uri = js[0].uri, .done = &done};
	run_on_reactor(tc.r, jconc_call_fn, &call);
	env_sleep_ms(100); /* accepted and handed to the held member by now */
	pthread_mutex_lock(&h.mu);
	h.release = true;
	pthread_cond_signal(&h.cv);
	while (!h.done)
		pthread_cond_wait(&h.cv, &h.mu);
	pthread_mutex_unlock(&h.mu);
	for (int i = 0; i < 5000 && !__atomic_load_n(&done, __ATOMIC_ACQUIRE); i++)
		env_sleep_ms(1);
	CHECK_EQ(__atomic_load_n(&done, __ATOMIC_ACQUIRE), 1);
	CHECK_EQ(call.served, 0); /* reset, retried, served by the leader */
	pthread_mutex_destroy(&h.mu);
	pthread_cond_destroy(&h.cv);
out:
	for (unsigned i = 0; i < 2; i++)
		rpc_client_destroy(jc.c[i]);
	jsrvs_stop(js, 2);
}

struct jsame {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *leader, *member;
	struct jsrv me; /* the member's handler context */
	char uri[SLUICE_NET_ADDR_MAX];
};

/* Joining a server that listens nowhere fails; joining one on the same reactor works. */
static void join_same_fn(void *arg)
{
	struct jsame *q = arg;
	struct rpc_server_cfg cfg = {.pool = q->pool};

	CHECK_EQ(rpc_server_create(q->r, &cfg, &q->leader), 0);
	CHECK_EQ(rpc_server_create(q->r, &cfg, &q->member), 0);
	if (!q->leader || !q->member)
		return;
	q->me.r = q->r;
	CHECK_EQ(rpc_server_add_service(q->member, &join_handlers, &q->me), 0);
	CHECK_EQ(rpc_server_join(q->member, q->leader), -EINVAL);
	CHECK_EQ(rpc_server_listen(q->leader, "tcp://127.0.0.1:0", q->uri, sizeof(q->uri)), 0);
	CHECK_EQ(rpc_server_join(q->member, q->leader), 0);
}

static void join_same_stop_fn(void *arg)
{
	struct jsame *q = arg;

	rpc_server_destroy(q->member);
	rpc_server_destroy(q->leader);
}

/* A member on the leader's own reactor: the handoff is a message to that reactor. The
 * leader serves no echo service, so the member's answers are told apart from its
 * -SLUICE_EBADOP: with both at zero connections, the first client lands on one of them and
 * the second on the other. */
static void test_join_same_reactor(void)
{
	struct jsame q = {0};
	struct jclients jc = {.r = tc.r, .pool = tc.pool, .n = 2};
	int rc = bufpool_create("join", JOIN_POOL_BYTES, &q.pool), got[2];

	if (rc == 0)
		rc = reactor_create("join", &q.r);
	if (rc == 0)
		rc = reactor_start(q.r);
	CHECK_EQ(rc, 0);
	if (rc == 0) {
		run_on_reactor(q.r, join_same_fn, &q);
		run_on_reactor(tc.r, jclients_create_fn, &jc);
		CHECK_EQ(jc.rc, 0);
		for (unsigned i = 0; i < 2 && jc.rc == 0; i++) {
			Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
			struct rpc_call_opts o = {.retries = 0};
			struct rpc_result res;

			got[i] = echoc_echo(jc.c[i], q.uri, &req, &o, &res);
			rpc_result_release(&res);
		}
		if (jc.rc == 0)
			CHECK((got[0] == 0 && got[1] == -SLUICE_EBADOP) ||
			      (got[1] == 0 && got[0] == -SLUICE_EBADOP));
		for (unsigned i = 0; i < 2; i++)
			rpc_client_destroy(jc.c[i]);
		run_on_reactor(q.r, join_same_stop_fn, &q);
		env_sleep_ms(20);
	}
	reactor_destroy(q.r);
	bufpool_destroy(q.pool);
}

static void test_join(void)
{
	struct jsrv js[JOIN_SERVERS] = {0};
	struct jclients jc = {.r = tc.r, .pool = tc.pool, .n = JOIN_CLIENTS};
	int rc = jsrvs_start(js, JOIN_SERVERS);

	CHECK_EQ(rc, 0);
	if (rc == 0) {
		run_on_reactor(jc.r, jclients_create_fn, &jc);
		CHECK_EQ(jc.rc, 0);
	}
	if (rc == 0 && jc.rc == 0)
		test_join_spread(js, &jc);
	for (unsigned i = 0; i < JOIN_CLIENTS; i++)
		rpc_client_destroy(jc.c[i]);
	jsrvs_stop(js, JOIN_SERVERS);
}

int main(void)
{
	int rc;

	test_frame_codec();
	test_addr();
	rc = echo_server_start("tcp://127.0.0.1:0", 256u << 20, &srv);
	CHECK_EQ(rc, 0);
	if (rc)
		return 1;
	rc = test_client_start(&tc, NULL, 256u << 20);
	CHECK_EQ(rc, 0);
	if (rc)
		return 1;
	test_small();
	test_bulk(0, 0, false, false);
	test_bulk(1, 1, false, true);
	test_bulk(65536 + 3, 100000, true, true);
	test_bulk(4u << 20, 16u << 20, true, false);
	test_bulk(16u << 20, 4u << 20, false, true);
	test_errors();
	test_cancel();
	test_slow_handler_not_idle();
	test_join();
	test_join_concurrent();
	test_join_churn();
	test_join_handoff_to_closed();
	test_join_same_reactor();
	test_client_stop(&tc);
	echo_server_stop(srv);
	return test_result();
}
