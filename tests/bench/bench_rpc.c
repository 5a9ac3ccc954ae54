/*
 * bench_rpc.c - RPC round trips and bulk throughput next to the raw TCP limit
 * (tests/bench/run rpc).
 *
 * Every RPC figure is printed beside a plain TCP figure (tests/bench/tcp_blaster.h) with
 * the same message sizes and connection count, measured in the same run just before it,
 * because this machine's numbers vary 2-3x between runs (DESIGN.md section 11):
 *
 *   rtt1, rttN   small calls (EchoReq with RTT_DATA_BYTES of data, no bulk) on one
 *                connection with 1 and N in flight       vs blaster_rtt(1), blaster_rtt(N)
 *   bulk write   request bulk of S bytes, tiny response (sent from the caller's iovec)
 *   bulk read    tiny request, response bulk of S bytes received into the caller's buffer
 *                (opts.resp_bulk, the zero-copy path); both with S = 1 MiB and 4 MiB and
 *                K calls in flight per connection over C connections   vs blaster_bulk(S, C)
 *
 * The last line is the JSON every benchmark ends with; its main figure ("value") is the
 * 4 MiB write-shaped throughput in GB/s (1e9 bytes), "limit" the raw TCP throughput for
 * the same size and connections, and the other measurements follow as extra keys. Numbers
 * keep 3 significant digits.
 *
 * DESIGN
 * One echo server (testlib) and two clients on their own reactor threads, all in this
 * process: one with conns_per_peer 1 for round trips (the blaster uses one connection) and
 * one with conns_per_peer C for bulk. The calls are driven asynchronously on the client
 * reactor: a fixed set of slots, each issuing its next call from the previous call's done
 * callback, so exactly `inflight` calls are outstanding. The main thread sleeps through a
 * warm-up (as long as the blaster's), samples the completion counters, sleeps through the
 * timed window, samples again, then stops the slots and waits for the outstanding calls to
 * drain.
 *
 * What is measured is the transport and the RPC layer, so the echo server does no work per
 * byte: it sends its pooled response bulk unfilled (seed 0) and, unless -v, does not
 * checksum request bulks (a CRC32C pass over every byte cost about a quarter of the server
 * thread in the write shape). The client's bulk memory mirrors the blaster's: one buffer
 * per connection, shared by the calls (the data is never looked at); -p gives every call
 * its own buffer instead, as a real client would have, which adds cache misses to the
 * kernel's copies.
 *
 * Memory is allocated and touched before anything is timed (first touch of fresh memory is
 * slow on our VMs): the client bulk buffers and, through bufpool_reserve, the buffers both
 * pools will hand out for payloads and bulks. The pools' budgets are large enough that
 * nothing is released and reallocated while measuring.
 *
 * Usage: bench_rpc [-t SECONDS] [-c CONNS] [-n BULK_INFLIGHT_PER_CONN] [-r RTT_INFLIGHT]
 *                  [-p] [-v]
 *        (defaults 2.0, 2, 8, 64; -p private client buffers, -v server checks bulk CRCs).
 *        Runs about 12.5 x SECONDS plus a second of setup.
 *
 * THREADS: main drives and samples; the call slots run on the client reactors; the echo
 * server on its own reactor; the blaster measurements start and join their own threads.
 * Counters shared between a reactor and main are accessed with atomics.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "tests/bench/tcp_blaster.h"
#include "tests/lib/testlib.h"

#define MIB		(1024u * 1024u)
#define RTT_DATA_BYTES	BLASTER_RTT_MSG_BYTES /* EchoReq.data; the blaster's message size */
#define POOL_BYTES	(512ull * MIB)
#define BULK_SIZE_MAX	(4u * MIB)
#define SMALL_BUFS	256u /* pooled payload buffers to reserve per pool */
#define CALL_TIMEOUT_MS 10000u
/* Outstanding calls finish within their timeout: waiting longer means something is stuck. */
#define DRAIN_TIMEOUT_MS (3u * CALL_TIMEOUT_MS)
#define INFLIGHT_MAX	 1024u /* per measurement, both kinds */

enum shape { SHAPE_RTT, SHAPE_WRITE, SHAPE_READ };

struct run;

/* One call kept in flight: it issues its successor from its done callback. */
struct slot {
	struct run *run;
	struct iovec bulk; /* write: the request bulk; read: where the response bulk lands */
	uint32_t bulk_crc; /* write: what the echo server will compute over bulk */
};

/* One measurement. Fields below `shared` are written on the client reactor and read by the
 * main thread, both with atomics. */
struct run {
	struct test_client *tc;
	const char *peer;
	enum shape shape;
	size_t size; /* bulk bytes per call; 0 for round trips */
	unsigned nslots;
	struct slot *slots;
	/* shared */
	uint64_t ops, bytes;
	unsigned outstanding;
	int err; /* the first failure */
	bool stop;
};

struct opts {
	double seconds;
	unsigned conns;
	unsigned bulk_inflight; /* per connection */
	unsigned rtt_inflight;
	bool private_bufs; /* -p: a client bulk buffer per call instead of per connection */
	bool verify_crc;   /* -v: the server checksums every request bulk */
};

/* Everything the measurements share, set up once. */
struct bench {
	struct opts o;
	struct echo_server *srv;
	struct test_client rtt_tc, bulk_tc;
	uint8_t *bulk_mem;  /* nbufs buffers of BULK_SIZE_MAX */
	unsigned nbufs;	    /* conns, or one per bulk call with -p */
	struct slot *slots; /* INFLIGHT_MAX */
};

static uint8_t rtt_data[RTT_DATA_BYTES];

/* ---- the call slots (client reactor thread) ---------------------------------------------- */

static void run_fail(struct run *r, int rc)
{
	int none = 0;

	(void)__atomic_compare_exchange_n(&r->err, &none, rc, false, __ATOMIC_RELAXED,
					  __ATOMIC_RELAXED); /* keep the first error only */
	__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
}

/* Cheap sanity checks: a benchmark of wrong answers would be meaningless. */
static int check_result(const struct run *r, const struct rpc_result *res)
{
	const Sluice__Test__EchoResp *resp = (const Sluice__Test__EchoResp *)res->resp;

	if (res->status)
		return res->status;
	if (!resp)
		return -SLUICE_EPROTO;
	switch (r->shape) {
	case SHAPE_RTT:
		return resp->data.len == RTT_DATA_BYTES ? 0 : -SLUICE_EPROTO;
	case SHAPE_WRITE:
		return resp->req_bulk_len == r->size ? 0 : -SLUICE_EPROTO;
	case SHAPE_READ:
		return res->resp_bulk_len == r->size && !res->resp_bulk ? 0 : -SLUICE_EPROTO;
	}
	return -SLUICE_EPROTO;
}

static void slot_issue(struct slot *sl);

static void call_done(struct rpc_result *res, void *arg)
{
	struct slot *sl = arg;
	struct run *r = sl->run;
	int rc = check_result(r, res);

	rpc_result_release(res);
	if (rc) {
		run_fail(r, rc);
	} else {
		/* Only this thread writes the counters; main reads them. */
		__atomic_store_n(&r->ops, r->ops + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&r->bytes, r->bytes + r->size, __ATOMIC_RELAXED);
	}
	if (__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		__atomic_sub_fetch(&r->outstanding, 1, __ATOMIC_RELEASE);
		return;
	}
	slot_issue(sl);
}

static void slot_issue(struct slot *sl)
{
	struct run *r = sl->run;
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct rpc_call_opts o = {.timeout_ms = CALL_TIMEOUT_MS};
	int rc;

	switch (r->shape) {
	case SHAPE_RTT:
		req.data.data = rtt_data;
		req.data.len = RTT_DATA_BYTES;
		break;
	case SHAPE_WRITE:
		req.req_bulk_crc = sl->bulk_crc;
		o.bulk = &sl->bulk;
		o.nbulk = 1;
		break;
	case SHAPE_READ:
		req.resp_bulk_len = (uint32_t)r->size; /* seed 0: the server leaves it unfilled */
		o.resp_bulk = sl->bulk.iov_base;
		o.resp_bulk_cap = sl->bulk.iov_len;
		break;
	}
	rc = echoc_echo_async(r->tc->rpc, r->peer, &req, &o, call_done, sl, NULL);
	if (rc) {
		run_fail(r, rc);
		__atomic_sub_fetch(&r->outstanding, 1, __ATOMIC_RELEASE);
	}
}

static void run_start_fn(void *arg)
{
	struct run *r = arg;

	for (unsigned i = 0; i < r->nslots; i++)
		slot_issue(&r->slots[i]);
}

/* ---- measuring (main thread) --------------------------------------------------------------- */

/* Keep r->nslots calls in flight; the rates over the timed window after the warm-up. */
static int run_measure(struct run *r, double seconds, double *ops_s, double *bytes_s)
{
	uint64_t o0, b0, t0, o1, b1, t1, give_up;

	r->ops = r->bytes = 0;
	r->err = 0;
	r->stop = false;
	__atomic_store_n(&r->outstanding, r->nslots, __ATOMIC_RELEASE);
	run_on_reactor(r->tc->r, run_start_fn, r);

	env_sleep_ns(blaster_warmup_ns(seconds));
	o0 = __atomic_load_n(&r->ops, __ATOMIC_RELAXED);
	b0 = __atomic_load_n(&r->bytes, __ATOMIC_RELAXED);
	t0 = env_now_ns();
	env_sleep_ns((uint64_t)(seconds * 1e9));
	o1 = __atomic_load_n(&r->ops, __ATOMIC_RELAXED);
	b1 = __atomic_load_n(&r->bytes, __ATOMIC_RELAXED);
	t1 = env_now_ns();

	__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
	give_up = env_now_ns() + (uint64_t)DRAIN_TIMEOUT_MS * ENV_NS_PER_MS;
	while (__atomic_load_n(&r->outstanding, __ATOMIC_ACQUIRE) > 0) {
		if (env_now_ns() > give_up) {
			/* Calls still hold r and our buffers: tearing down under them would
			 * crash, so leave without cleaning up. */
			fprintf(stderr, "bench_rpc: %u calls did not finish\n",
				__atomic_load_n(&r->outstanding, __ATOMIC_ACQUIRE));
			exit(1);
		}
		env_sleep_ms(1);
	}
	if (r->err)
		return r->err;
	*ops_s = (double)(o1 - o0) * 1e9 / (double)(t1 - t0);
	*bytes_s = (double)(b1 - b0) * 1e9 / (double)(t1 - t0);
	return 0;
}

/* ---- output ------------------------------------------------------------------------------- */

/* v with 3 significant digits, as plain decimal text (valid JSON for finite v). */
static const char *fmt3(char *buf, size_t len, double v)
{
	double a = v < 0 ? -v : v, scale = 1;
	int decimals = 0;

	if (!(a > 0) || a > 1e300) { /* 0, NaN, inf: nothing sensible to round */
		snprintf(buf, len, "%s", a == 0 ? "0" : "null");
		return buf;
	}
	while (a * scale >= 1000)
		scale /= 10;
	while (a * scale < 100) {
		scale *= 10;
		decimals++;
	}
	a = (double)(uint64_t)(a * scale + 0.5) / scale;
	if (decimals > 0 && a * scale >= 999.5) /* rounded up to the next decade */
		decimals--;
	snprintf(buf, len, "%.*f", decimals, v < 0 ? -a : a);
	return buf;
}

struct result {
	char key[16]; /* JSON key prefix of round trips: "rtt1", "rtt64" */
	double value, limit;
};

static void print_line(const char *what, const char *unit, double value, double limit)
{
	char v[32], l[32], q[32];

	printf("%-34s %8s %-5s  limit %8s %-5s  ratio %s\n", what, fmt3(v, sizeof(v), value), unit,
	       fmt3(l, sizeof(l), limit), unit, fmt3(q, sizeof(q), value / limit));
}

/* ---- setup ------------------------------------------------------------------------------- */

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_rpc: %s failed: %s (%d)\n", what, sluice_strerror(rc), rc);
	return rc < 0 ? rc : -EIO;
}

/* Touch now, on our time: the first touch of fresh memory is slow on our VMs. */
static int reserve_pools(struct bench *b, unsigned bulk_calls)
{
	static const size_t sizes[] = {1 * MIB, 4 * MIB};
	struct bufpool *sp = echo_server_pool(b->srv);
	int rc;

	/* The server holds a request bulk (write) or a response bulk (read) per call. */
	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(sizes); i++) {
		rc = bufpool_reserve(sp, sizes[i], bulk_calls + b->o.conns);
		if (rc)
			return fail("reserving server bulk buffers", rc);
	}
	/* Payloads both ways: requests and responses in flight plus those being built. */
	rc = bufpool_reserve(sp, 0, SMALL_BUFS);
	if (rc == 0)
		rc = bufpool_reserve(b->rtt_tc.pool, 0, SMALL_BUFS);
	if (rc == 0)
		rc = bufpool_reserve(b->bulk_tc.pool, 0, SMALL_BUFS);
	if (rc)
		return fail("reserving payload buffers", rc);
	return 0;
}

static int bench_setup(struct bench *b)
{
	struct rpc_client_cfg rtt_cfg = {.conns_per_peer = 1};
	struct rpc_client_cfg bulk_cfg = {.conns_per_peer = b->o.conns};
	unsigned bulk_calls = b->o.conns * b->o.bulk_inflight;
	int rc;

	memset(rtt_data, 0x5a, sizeof(rtt_data));
	b->nbufs = b->o.private_bufs ? bulk_calls : b->o.conns;
	b->slots = calloc(INFLIGHT_MAX, sizeof(*b->slots));
	b->bulk_mem = aligned_alloc(SLUICE_BUFPOOL_ALIGN, (size_t)b->nbufs * BULK_SIZE_MAX);
	if (!b->slots || !b->bulk_mem)
		return fail("allocating client buffers", -ENOMEM);
	memset(b->bulk_mem, 0x5a, (size_t)b->nbufs * BULK_SIZE_MAX);

	rc = echo_server_start("tcp://127.0.0.1:0", POOL_BYTES, &b->srv);
	if (rc)
		return fail("starting the echo server", rc);
	echo_server_verify_bulk(b->srv, b->o.verify_crc);
	rc = test_client_start(&b->rtt_tc, &rtt_cfg, POOL_BYTES);
	if (rc)
		return fail("starting the round-trip client", rc);
	rc = test_client_start(&b->bulk_tc, &bulk_cfg, POOL_BYTES);
	if (rc)
		return fail("starting the bulk client", rc);
	return reserve_pools(b, bulk_calls);
}

static void bench_teardown(struct bench *b)
{
	if (b->bulk_tc.rpc)
		test_client_stop(&b->bulk_tc);
	if (b->rtt_tc.rpc)
		test_client_stop(&b->rtt_tc);
	echo_server_stop(b->srv);
	free(b->bulk_mem);
	free(b->slots);
}

/* ---- the measurements ---------------------------------------------------------------------- */

static int measure_rtt(struct bench *b, unsigned inflight, struct result *out)
{
	struct run r = {.tc = &b->rtt_tc,
			.peer = echo_server_uri(b->srv),
			.shape = SHAPE_RTT,
			.nslots = inflight,
			.slots = b->slots};
	double bytes_s;
	char what[64];
	int rc;

	rc = blaster_rtt(inflight, b->o.seconds, &out->limit);
	if (rc)
		return fail("tcp round trips", rc);
	for (unsigned i = 0; i < inflight; i++)
		b->slots[i] = (struct slot){.run = &r};
	rc = run_measure(&r, b->o.seconds, &out->value, &bytes_s);
	if (rc)
		return fail("rpc round trips", rc);
	snprintf(out->key, sizeof(out->key), "rtt%u", inflight);
	snprintf(what, sizeof(what), "rtt %u B, %u in flight", RTT_DATA_BYTES, inflight);
	print_line(what, "ops/s", out->value, out->limit);
	return 0;
}

/* Write- and read-shaped calls of size bytes; out[0] write, out[1] read, in bytes/s. */
static int measure_bulk(struct bench *b, size_t size, struct result out[2])
{
	unsigned n = b->o.conns * b->o.bulk_inflight;
	struct run r = {.tc = &b->bulk_tc,
			.peer = echo_server_uri(b->srv),
			.size = size,
			.nslots = n,
			.slots = b->slots};
	static const char *const names[] = {"write", "read"};
	double limit, ops_s;
	char what[64];
	int rc;

	rc = blaster_bulk(size, b->o.conns, b->o.seconds, &limit);
	if (rc)
		return fail("tcp bulk", rc);
	for (unsigned i = 0; i < n; i++) {
		struct slot *sl = &b->slots[i];

		*sl = (struct slot){
			.run = &r,
			.bulk = {b->bulk_mem + (size_t)(i % b->nbufs) * BULK_SIZE_MAX, size}};
		sl->bulk_crc = crc32c(0, sl->bulk.iov_base, size);
	}
	for (unsigned k = 0; k < 2; k++) {
		r.shape = k == 0 ? SHAPE_WRITE : SHAPE_READ;
		out[k].limit = limit;
		rc = run_measure(&r, b->o.seconds, &ops_s, &out[k].value);
		if (rc)
			return fail(k == 0 ? "rpc bulk write" : "rpc bulk read", rc);
		snprintf(what, sizeof(what), "bulk %-5s %zu MiB, %u conns x %u", names[k],
			 size / MIB, b->o.conns, b->o.bulk_inflight);
		print_line(what, "GB/s", out[k].value / 1e9, limit / 1e9);
	}
	return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "t:c:n:r:pvh")) != -1) {
		char *end;
		int rc = 0;

		switch (c) {
		case 't':
			o->seconds = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(o->seconds > 0) ||
			    o->seconds > BLASTER_SECONDS_MAX)
				return -EINVAL;
			break;
		case 'c':
			rc = parse_uint(optarg, 1, SLUICE_RPC_CONNS_PER_PEER_MAX, &o->conns);
			break;
		case 'n':
			rc = parse_uint(optarg, 1, 64, &o->bulk_inflight);
			break;
		case 'r':
			rc = parse_uint(optarg, 1, INFLIGHT_MAX, &o->rtt_inflight);
			break;
		case 'p':
			o->private_bufs = true;
			break;
		case 'v':
			o->verify_crc = true;
			break;
		default:
			return -EINVAL;
		}
		if (rc)
			return rc;
	}
	if (o->conns * o->bulk_inflight > INFLIGHT_MAX ||
	    (uint64_t)o->conns * o->bulk_inflight * BULK_SIZE_MAX > POOL_BYTES / 2)
		return -EINVAL; /* the server pool must hold every bulk in flight, twice over */
	return optind == argc ? 0 : -EINVAL;
}

static void print_json(const struct bench *b, const struct result rtt[2], struct result bulk[2][2])
{
	static const char *const sizes[] = {"1m", "4m"}, *const shapes[] = {"write", "read"};
	const struct result *main_fig = &bulk[1][0];
	char v[32], l[32], q[32];

	printf("{\"bench\":\"rpc\",\"value\":%s,\"unit\":\"GB/s\",\"limit\":%s,\"ratio\":%s",
	       fmt3(v, sizeof(v), main_fig->value / 1e9), fmt3(l, sizeof(l), main_fig->limit / 1e9),
	       fmt3(q, sizeof(q), main_fig->value / main_fig->limit));
	printf(",\"seconds\":%s,\"conns\":%u,\"bulk_inflight_per_conn\":%u,\"rtt_inflight\":%u"
	       ",\"private_bufs\":%s,\"server_crc\":%s",
	       fmt3(v, sizeof(v), b->o.seconds), b->o.conns, b->o.bulk_inflight, b->o.rtt_inflight,
	       b->o.private_bufs ? "true" : "false", b->o.verify_crc ? "true" : "false");
	for (unsigned i = 0; i < 2; i++)
		printf(",\"%s_ops\":%s,\"%s_limit\":%s,\"%s_ratio\":%s", rtt[i].key,
		       fmt3(v, sizeof(v), rtt[i].value), rtt[i].key,
		       fmt3(l, sizeof(l), rtt[i].limit), rtt[i].key,
		       fmt3(q, sizeof(q), rtt[i].value / rtt[i].limit));
	for (unsigned s = 0; s < 2; s++) {
		printf(",\"bulk%s_limit\":%s", sizes[s],
		       fmt3(l, sizeof(l), bulk[s][0].limit / 1e9));
		for (unsigned k = 0; k < 2; k++)
			printf(",\"bulk%s_%s_gbs\":%s,\"bulk%s_%s_ratio\":%s", sizes[s], shapes[k],
			       fmt3(v, sizeof(v), bulk[s][k].value / 1e9), sizes[s], shapes[k],
			       fmt3(q, sizeof(q), bulk[s][k].value / bulk[s][k].limit));
	}
	printf("}\n");
}

int main(int argc, char **argv)
{
	struct bench b = {
		.o = {.seconds = 2.0, .conns = 2, .bulk_inflight = 8, .rtt_inflight = 64}};
	struct result rtt[2] = {0}, bulk[2][2] = {0};
	int rc;

	if (parse_opts(argc, argv, &b.o) < 0) {
		fprintf(stderr,
			"usage: bench_rpc [-t SECONDS] [-c CONNS 1..%u] [-n BULK_INFLIGHT 1..64] "
			"[-r RTT_INFLIGHT 1..%u] [-p] [-v]\n",
			SLUICE_RPC_CONNS_PER_PEER_MAX, INFLIGHT_MAX);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = bench_setup(&b);
	if (rc == 0)
		rc = measure_rtt(&b, 1, &rtt[0]);
	if (rc == 0)
		rc = measure_rtt(&b, b.o.rtt_inflight, &rtt[1]);
	if (rc == 0)
		rc = measure_bulk(&b, 1 * MIB, bulk[0]);
	if (rc == 0)
		rc = measure_bulk(&b, 4 * MIB, bulk[1]);
	bench_teardown(&b);
	if (rc)
		return 1;
	print_json(&b, rtt, bulk);
	return 0;
}
