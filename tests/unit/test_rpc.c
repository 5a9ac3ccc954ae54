/*
 * test_rpc.c - the RPC layer end to end in one process: an echo server and a client on
 * their own reactors over loopback TCP. Covers payload and bulk both ways (into a pool
 * buffer and into the caller's memory), remote errors, deadlines, cancellation, connection
 * refused, retry budget, and frame/address validation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/net/frame.h"
#include "common/net/net.h"
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

	c->status = res->status;
	c->calls++;
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
	CHECK_EQ(c.calls, 1);
	CHECK_EQ(c.status, -SLUICE_ECANCELED);
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
	test_client_stop(&tc);
	echo_server_stop(srv);
	return test_result();
}
