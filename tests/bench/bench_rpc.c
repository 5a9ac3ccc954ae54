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
 * Both sides run the way a daemon does (DESIGN.md section 3): R reactors per side, one
 * rpc_server per server reactor - the first listens, the others rpc_server_join it, so the
 * connections are spread over them - and one rpc_client per client reactor, each with its
 * share of the C bulk connections (conns_per_peer); every reactor has its own buffer pool.
 * The fair default is R = C: the blaster runs one thread per connection end (C senders and
 * C receivers), so the RPC side gets one reactor per connection end too; both thread counts
 * are printed. Round trips use one connection, like the blaster's: an rpc_client with
 * conns_per_peer 1 on the first client reactor, against a 2-thread blaster (client + echo).
 *
 * The calls are driven asynchronously on the client reactors: a fixed set of slots per
 * client, each issuing its next call from the previous call's done callback, so exactly
 * `inflight` calls are outstanding. The main thread sleeps through a warm-up (as long as
 * the blaster's), samples the completion counters, sleeps through the timed window, samples
 * again, then stops the slots and waits for the outstanding calls to drain.
 *
 * Noise: each figure is measured in -k rounds, each round a limit and the RPC figures right
 * after it; the round with the median ratio is reported (its value, limit and ratio, so
 * they stay consistent). Pairing every RPC figure with a limit measured seconds before it
 * cancels slow drifts of the machine; the median drops a round hit by a burst of load.
 * Every line also shows the cores the process kept busy (getrusage over the measurement)
 * for the RPC figure and for its limit: equal cores and a lower figure mean more CPU per
 * byte; fewer cores mean waiting. The blaster keeps every CPU busy, so a limit measured
 * with fewer busy cores means other processes took them, and a note says the ratios are
 * unreliable (with other programs running, ratios swing between 0.5 and 2).
 *
 * What is measured is the transport and the RPC layer, so the echo server here does no
 * work per byte: it never fills its response bulks and, unless -v, does not checksum
 * request bulks (a CRC32C pass over every byte cost about a quarter of the server thread in
 * the write shape). The bulk memory mirrors the blaster's, whose sender and receiver
 * reuse one buffer each: the client has one buffer per connection, shared by its calls
 * (the data is never looked at); the server sends every response bulk from one buffer and
 * returns each request bulk to its pool on arrival, so the next one lands in the same
 * pool buffer. That matters: the kernel's copies dominate, and copying into memory that is
 * not in the cache cost up to a quarter of the throughput. -p instead gives every client call
 * its own buffer and every response a pool buffer, and keeps request bulks until the
 * reply is sent, as a real client and server would, which adds cache misses.
 *
 * Memory is allocated and touched before anything is timed (first touch of fresh memory is
 * slow on our VMs): the client bulk buffers and, through bufpool_reserve, the buffers every
 * pool will hand out for payloads and bulks. The pools' budgets are large enough that
 * nothing is released and reallocated while measuring.
 *
 * Usage: bench_rpc [-t SECONDS] [-c CONNS] [-R REACTORS] [-n BULK_INFLIGHT_PER_CONN]
 *                  [-r RTT_INFLIGHT] [-k ROUNDS] [-p] [-v] [-V]
 *        (defaults 1.0, 2, CONNS, 8, 64, 3). -R is per side, at most CONNS; -V prints every
 *        round on stderr. Runs about ROUNDS x 12.5 x SECONDS plus a second of setup.
 *
 * THREADS: main drives and samples; the call slots run on the client reactors; the echo
 * servers on theirs; the blaster measurements start and join their own threads. Counters
 * shared between a reactor and main are accessed with atomics.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/net/net.h"
#include "tests/bench/tcp_blaster.h"
#include "tests/lib/testlib.h"

#define MIB		(1024u * 1024u)
#define RTT_DATA_BYTES	BLASTER_RTT_MSG_BYTES /* EchoReq.data; the blaster's message size */
#define POOL_BYTES	(512ull * MIB)	      /* per reactor */
#define BULK_SIZE_MAX	(4u * MIB)
#define SMALL_BUFS	256u /* pooled payload buffers to reserve per pool */
#define CALL_TIMEOUT_MS 10000u
/* Outstanding calls finish within their timeout: waiting longer means something is stuck. */
#define DRAIN_TIMEOUT_MS (3u * CALL_TIMEOUT_MS)
#define INFLIGHT_MAX	 1024u			       /* per measurement, both kinds */
#define REACTORS_MAX	 SLUICE_RPC_CONNS_PER_PEER_MAX /* per side; at most one per conn */
#define ROUNDS_MAX	 15u
#define SERVER_IDLE_MS	 UINT32_MAX /* 49 days: never, for a benchmark */
#define CACHE_LINE	 64
/* Below this fraction of the usable cores busy during a limit, the machine was shared. */
#define BUSY_CORES_FRACTION 0.8

enum shape { SHAPE_RTT, SHAPE_WRITE, SHAPE_READ };

struct run;
struct client;

/* One call kept in flight: it issues its successor from its done callback. */
struct slot {
	struct run *run;
	struct rpc_client *rpc; /* on the reactor the slot runs on */
	unsigned lane;		/* index of that client: where the slot counts */
	struct iovec bulk;	/* write: the request bulk; read: where the response bulk lands */
	uint32_t bulk_crc;	/* write: what the echo server would compute over bulk */
};

/* A client reactor's counters in one measurement. Written on that reactor, read by main,
 * both with atomics; a cache line each so reactors do not share one. */
struct lane {
	_Alignas(CACHE_LINE) uint64_t ops, bytes;
};

/* One measurement. */
struct run {
	const char *peer;
	enum shape shape;
	size_t size; /* bulk bytes per call; 0 for round trips */
	unsigned nslots;
	struct slot *slots;
	struct lane lanes[REACTORS_MAX];
	/* shared by the client reactors and main, atomics */
	unsigned outstanding;
	int err; /* the first failure */
	bool stop;
};

struct opts {
	double seconds;
	unsigned conns;
	unsigned reactors;	/* per side; 0 = conns */
	unsigned bulk_inflight; /* per connection */
	unsigned rtt_inflight;
	unsigned rounds;
	bool private_bufs; /* -p: bulk buffers per call on both sides (see DESIGN) */
	bool verify_crc;   /* -v: the server checksums every request bulk */
	bool verbose;	   /* -V: every round on stderr */
};

/* A server reactor: its pool and rpc_server. The echo handler runs on it. */
struct server {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_server *rpc;
	struct rpc_server *leader; /* the one to join; NULL for the leader itself */
	uint8_t *resp_mem;	   /* BULK_SIZE_MAX: what every response bulk is sent from */
	bool private_bufs;	   /* -p */
	bool verify_crc;
	int rc; /* of the last step run on r */
};

/* A client reactor: its pool and bulk rpc_client (and, on the first, the round-trip one). */
struct client {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_client *bulk, *rtt;
	unsigned conns;	     /* its share of the bulk connections */
	unsigned first_conn; /* index of its first connection, for the bulk buffers */
	struct run *run;     /* the measurement being started */
	int rc;
};

/* Everything the measurements share, set up once. */
struct bench {
	struct opts o;
	unsigned nr;   /* reactors per side */
	unsigned ncpu; /* online CPUs */
	struct server srv[REACTORS_MAX];
	struct client cli[REACTORS_MAX];
	char uri[SLUICE_NET_ADDR_MAX];
	uint8_t *bulk_mem;  /* nbufs buffers of BULK_SIZE_MAX */
	unsigned nbufs;	    /* conns, or one per bulk call with -p */
	struct slot *slots; /* INFLIGHT_MAX */
};

static uint8_t rtt_data[RTT_DATA_BYTES];

/* ---- the echo server (server reactors) ------------------------------------------------- */

static void release_buf(void *arg)
{
	buf_put(arg);
}

/*
 * Echo: data back, request bulk acknowledged, response bulk of the asked size (never
 * filled). By default the request bulk goes back to the pool at once and the response bulk
 * is sent from the server's one buffer, so the next request lands in the same (cache-warm)
 * pool buffer and every response is sent from the same memory: the blaster's receiver
 * and sender reuse one buffer each too. With -p a request keeps its bulk until the reply
 * is sent and each response gets its own pool buffer, as a real server's would.
 */
static void bench_h_echo(struct rpc_req *req, const ProtobufCMessage *msg, void *ctx)
{
	const Sluice__Test__EchoReq *m = (const Sluice__Test__EchoReq *)(const void *)msg;
	Sluice__Test__EchoResp resp = SLUICE__TEST__ECHO_RESP__INIT;
	struct server *s = ctx;
	struct buf *in = rpc_req_bulk(req), *out = NULL;
	uint32_t crc = m->req_bulk_crc; /* trusted unless -v: we measure the transport */
	struct iovec iov = {s->resp_mem, m->resp_bulk_len};
	int rc;

	if (in && s->verify_crc)
		crc = crc32c(0, in->data, in->len);
	if (crc != m->req_bulk_crc || m->resp_bulk_len > BULK_SIZE_MAX) {
		rpc_reply(req, -SLUICE_ECHECKSUM, NULL, NULL, 0, NULL, NULL);
		return;
	}
	resp.data = m->data; /* points into the request, which lives until the reply */
	resp.req_bulk_len = in ? (uint32_t)in->len : 0;
	resp.req_bulk_crc = crc;
	if (!s->private_bufs)
		buf_put(rpc_req_take_bulk(req));
	if (s->private_bufs && m->resp_bulk_len) {
		rc = bufpool_get(s->pool, m->resp_bulk_len, &out);
		if (rc) {
			rpc_reply(req, rc, NULL, NULL, 0, NULL, NULL);
			return;
		}
		iov.iov_base = out->data;
	}
	rpc_reply(req, 0, &resp.base, &iov, m->resp_bulk_len ? 1 : 0, release_buf, out);
}

static const rpc_handler_fn bench_echo_fns[] = {
	[echo_OP_ECHO] = bench_h_echo,
	[echo_OP_ECHO_ONCE] = bench_h_echo,
};
static const struct rpc_service_handlers bench_echo_handlers = {
	.desc = &echo_service_desc,
	.fns = bench_echo_fns,
};
static_assert(SLUICE_ARRAY_SIZE(bench_echo_fns) == 3, "one entry per echo op, plus op 0");

/* On the server's reactor: create its rpc_server; listen (leader) or join the leader. */
static void server_start_fn(void *arg)
{
	struct server *s = arg;
	/* The round-trip connection sits idle through the bulk measurements: no idle close. */
	struct rpc_server_cfg cfg = {.pool = s->pool, .idle_timeout_ms = SERVER_IDLE_MS};

	s->rc = rpc_server_create(s->r, &cfg, &s->rpc);
	if (s->rc == 0)
		s->rc = rpc_server_add_service(s->rpc, &bench_echo_handlers, s);
	if (s->rc == 0 && s->leader)
		s->rc = rpc_server_join(s->rpc, s->leader);
}

struct listen_req {
	struct server *s;
	char *uri;
	size_t len;
};

static void server_listen_fn(void *arg)
{
	struct listen_req *q = arg;

	q->s->rc = rpc_server_listen(q->s->rpc, "tcp://127.0.0.1:0", q->uri, q->len);
}

static void server_stop_fn(void *arg)
{
	struct server *s = arg;

	rpc_server_destroy(s->rpc);
	s->rpc = NULL;
}

static void server_stats_fn(void *arg)
{
	struct server *s = arg;
	struct rpc_server_stats st;

	rpc_server_stats(s->rpc, &st);
	s->rc = (int)st.conns_open;
}

/* ---- the call slots (client reactors) ----------------------------------------------------- */

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
	struct lane *ln = &r->lanes[sl->lane];
	int rc = check_result(r, res);

	rpc_result_release(res);
	if (rc) {
		run_fail(r, rc);
	} else {
		/* Only this reactor writes its lane; main reads it. */
		__atomic_store_n(&ln->ops, ln->ops + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&ln->bytes, ln->bytes + r->size, __ATOMIC_RELAXED);
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
		req.resp_bulk_len = (uint32_t)r->size;
		o.resp_bulk = sl->bulk.iov_base;
		o.resp_bulk_cap = sl->bulk.iov_len;
		break;
	}
	rc = echoc_echo_async(sl->rpc, r->peer, &req, &o, call_done, sl, NULL);
	if (rc) {
		run_fail(r, rc);
		__atomic_sub_fetch(&r->outstanding, 1, __ATOMIC_RELEASE);
	}
}

/* On a client reactor: start the slots that run there. */
static void client_start_slots_fn(void *arg)
{
	struct client *c = arg;
	struct run *r = c->run;

	for (unsigned i = 0; i < r->nslots; i++)
		if (r->slots[i].rpc == c->bulk || r->slots[i].rpc == c->rtt)
			slot_issue(&r->slots[i]);
}

/* ---- measuring (main thread) --------------------------------------------------------------- */

static void run_sample(struct run *r, unsigned nr, uint64_t *ops, uint64_t *bytes)
{
	*ops = *bytes = 0;
	for (unsigned i = 0; i < nr; i++) {
		*ops += __atomic_load_n(&r->lanes[i].ops, __ATOMIC_RELAXED);
		*bytes += __atomic_load_n(&r->lanes[i].bytes, __ATOMIC_RELAXED);
	}
}

/* Keep r->nslots calls in flight; the rates over the timed window after the warm-up. */
static int run_measure(struct bench *b, struct run *r, double *ops_s, double *bytes_s)
{
	uint64_t o0, b0, t0, o1, b1, t1, give_up;

	memset(r->lanes, 0, sizeof(r->lanes));
	r->err = 0;
	r->stop = false;
	__atomic_store_n(&r->outstanding, r->nslots, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < b->nr; i++) {
		b->cli[i].run = r;
		run_on_reactor(b->cli[i].r, client_start_slots_fn, &b->cli[i]);
	}

	env_sleep_ns(blaster_warmup_ns(b->o.seconds));
	run_sample(r, b->nr, &o0, &b0);
	t0 = env_now_ns();
	env_sleep_ns((uint64_t)(b->o.seconds * 1e9));
	run_sample(r, b->nr, &o1, &b1);
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

/* A figure and its limit: those of the round with the median ratio. */
struct result {
	char key[16]; /* JSON key prefix of round trips: "rtt1", "rtt64" */
	double value, limit;
	double ratio_min, ratio_max; /* over the rounds, to show the spread */
	double cores, limit_cores;   /* CPUs the process kept busy while measuring each */
};

/* ---- CPU use: how many cores a measurement kept busy ------------------------------------ */

struct cpu_mark {
	uint64_t cpu_ns, wall_ns;
};

static void cpu_mark(struct cpu_mark *m)
{
	struct rusage ru;

	(void)getrusage(RUSAGE_SELF, &ru); /* cannot fail with these arguments */
	m->cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * ENV_NS_PER_S +
		    ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
	m->wall_ns = env_now_ns();
}

/* Busy cores since m: a kernel-bound measurement that keeps fewer cores busy than the
 * blaster waits somewhere (wake-ups, an empty pipeline) rather than working harder. */
static double cpu_cores_since(const struct cpu_mark *m)
{
	struct cpu_mark now;

	cpu_mark(&now);
	return (double)(now.cpu_ns - m->cpu_ns) / (double)(now.wall_ns - m->wall_ns);
}

static void print_line(const char *what, const char *unit, double scale, const struct result *r,
		       unsigned rounds)
{
	char v[32], l[32], q[32], lo[32], hi[32];

	printf("%-34s %8s %-5s  limit %8s %-5s  ratio %s", what,
	       fmt3(v, sizeof(v), r->value / scale), unit, fmt3(l, sizeof(l), r->limit / scale),
	       unit, fmt3(q, sizeof(q), r->value / r->limit));
	printf("  cores %.2f/%.2f", r->cores, r->limit_cores);
	if (rounds > 1)
		printf("  (%u rounds: %s..%s)", rounds, fmt3(lo, sizeof(lo), r->ratio_min),
		       fmt3(hi, sizeof(hi), r->ratio_max));
	printf("\n");
}

/* -V: one round's figures on stderr, to see where the spread comes from. */
static void print_round(const struct bench *b, const char *what, unsigned k, double value,
			double limit, double cores, double limit_cores)
{
	if (b->o.verbose)
		fprintf(stderr, "round %u %-24s value %.4g limit %.4g ratio %.3f cores %.2f/%.2f\n",
			k, what, value, limit, value / limit, cores, limit_cores);
}

/* Pick the round with the median ratio (the upper one of an even count). cores and
 * limit_cores are per round too. */
static void pick_median(const double *value, const double *limit, const double *cores,
			const double *limit_cores, unsigned n, struct result *out)
{
	unsigned best = 0;

	out->ratio_min = out->ratio_max = value[0] / limit[0];
	for (unsigned i = 0; i < n; i++) {
		double q = value[i] / limit[i];
		unsigned below = 0, equal_before = 0;

		out->ratio_min = q < out->ratio_min ? q : out->ratio_min;
		out->ratio_max = q > out->ratio_max ? q : out->ratio_max;
		for (unsigned j = 0; j < n; j++) {
			double qj = value[j] / limit[j];

			below += qj < q;
			equal_before += qj == q && j < i;
		}
		if (below + equal_before == n / 2)
			best = i;
	}
	out->value = value[best];
	out->limit = limit[best];
	out->cores = cores[best];
	out->limit_cores = limit_cores[best];
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
	int rc = 0;

	for (unsigned i = 0; i < b->nr && rc == 0; i++) {
		/* A server holds a request bulk (write) or a response bulk (read) per call; the
		 * connections are spread, but any one of them may get the most. */
		for (unsigned k = 0; k < SLUICE_ARRAY_SIZE(sizes) && rc == 0; k++)
			rc = bufpool_reserve(b->srv[i].pool, sizes[k], bulk_calls + b->o.conns);
		/* Payloads both ways: requests and responses in flight plus those being built. */
		if (rc == 0)
			rc = bufpool_reserve(b->srv[i].pool, 0, SMALL_BUFS);
		if (rc == 0)
			rc = bufpool_reserve(b->cli[i].pool, 0, SMALL_BUFS);
	}
	return rc ? fail("reserving pool buffers", rc) : 0;
}

static void client_create_fn(void *arg)
{
	struct client *c = arg;
	struct rpc_client_cfg cfg = {.pool = c->pool, .conns_per_peer = c->conns};
	struct rpc_client_cfg rtt_cfg = {.pool = c->pool, .conns_per_peer = 1};

	c->rc = rpc_client_create(c->r, &cfg, &c->bulk);
	if (c->rc == 0 && c->first_conn == 0)
		c->rc = rpc_client_create(c->r, &rtt_cfg, &c->rtt);
}

static int reactor_with_pool(const char *name, unsigned i, struct reactor **r, struct bufpool **p)
{
	char nm[32];
	int rc;

	snprintf(nm, sizeof(nm), "%s%u", name, i);
	rc = bufpool_create(nm, POOL_BYTES, p);
	if (rc == 0)
		rc = reactor_create(nm, r);
	if (rc == 0)
		rc = reactor_start(*r);
	return rc;
}

static int servers_start(struct bench *b)
{
	struct listen_req q = {&b->srv[0], b->uri, sizeof(b->uri)};
	int rc;

	for (unsigned i = 0; i < b->nr; i++) {
		struct server *s = &b->srv[i];

		rc = reactor_with_pool("bsrv", i, &s->r, &s->pool);
		if (rc)
			return fail("starting a server reactor", rc);
		s->verify_crc = b->o.verify_crc;
		s->private_bufs = b->o.private_bufs;
		s->resp_mem = aligned_alloc(SLUICE_BUFPOOL_ALIGN, BULK_SIZE_MAX);
		if (!s->resp_mem)
			return fail("allocating server buffers", -ENOMEM);
		memset(s->resp_mem, 0x5a, BULK_SIZE_MAX);
		s->leader = i ? b->srv[0].rpc : NULL;
		run_on_reactor(s->r, server_start_fn, s);
		if (s->rc)
			return fail("starting an rpc server", s->rc);
		if (i == 0) { /* the others join it: it must listen first */
			run_on_reactor(s->r, server_listen_fn, &q);
			if (s->rc < 0)
				return fail("listening", s->rc);
		}
	}
	return 0;
}

static int clients_start(struct bench *b)
{
	unsigned first = 0;
	int rc;

	for (unsigned i = 0; i < b->nr; i++) {
		struct client *c = &b->cli[i];

		rc = reactor_with_pool("bcli", i, &c->r, &c->pool);
		if (rc)
			return fail("starting a client reactor", rc);
		c->conns = b->o.conns / b->nr + (i < b->o.conns % b->nr);
		c->first_conn = first;
		first += c->conns;
		run_on_reactor(c->r, client_create_fn, c);
		if (c->rc)
			return fail("creating an rpc client", c->rc);
	}
	return 0;
}

static int bench_setup(struct bench *b)
{
	unsigned bulk_calls = b->o.conns * b->o.bulk_inflight;
	int rc;

	net_register_builtin();
	memset(rtt_data, 0x5a, sizeof(rtt_data));
	b->nbufs = b->o.private_bufs ? bulk_calls : b->o.conns;
	b->slots = calloc(INFLIGHT_MAX, sizeof(*b->slots));
	b->bulk_mem = aligned_alloc(SLUICE_BUFPOOL_ALIGN, (size_t)b->nbufs * BULK_SIZE_MAX);
	if (!b->slots || !b->bulk_mem)
		return fail("allocating client buffers", -ENOMEM);
	memset(b->bulk_mem, 0x5a, (size_t)b->nbufs * BULK_SIZE_MAX);
	rc = servers_start(b);
	if (rc == 0)
		rc = clients_start(b);
	if (rc == 0)
		rc = reserve_pools(b, bulk_calls);
	return rc;
}

static void bench_teardown(struct bench *b)
{
	for (unsigned i = 0; i < b->nr; i++) {
		struct client *c = &b->cli[i];

		if (c->r) { /* from main: it posts to the reactor and waits */
			rpc_client_destroy(c->rtt);
			rpc_client_destroy(c->bulk);
		}
	}
	for (unsigned i = b->nr; i-- > 0;) { /* the leader last: it owns the socket */
		struct server *s = &b->srv[i];

		if (s->rpc)
			run_on_reactor(s->r, server_stop_fn, s);
	}
	env_sleep_ms(20); /* deferred close notifications run on the reactors */
	for (unsigned i = 0; i < b->nr; i++) {
		reactor_destroy(b->cli[i].r);
		reactor_destroy(b->srv[i].r);
		bufpool_destroy(b->cli[i].pool);
		bufpool_destroy(b->srv[i].pool);
		free(b->srv[i].resp_mem);
	}
	free(b->bulk_mem);
	free(b->slots);
}

/* The blaster's threads could keep every CPU busy; when they did not, either other
 * processes took CPU time in the middle of the measurements, or its blocking sockets waited
 * on each other (seen on a quiet 2-core VM: ~1.1 of 2 cores). Either way the RPC figure and
 * its limit used unequal CPU, and a ratio above 1 says so rather than beating the kernel. */
static void print_busy_note(const struct bench *b, struct result bulk[2][2])
{
	unsigned usable = b->ncpu < 2 * b->o.conns ? b->ncpu : 2 * b->o.conns;
	double least = usable;

	for (unsigned s = 0; s < 2; s++)
		for (unsigned k = 0; k < 2; k++)
			least = bulk[s][k].limit_cores < least ? bulk[s][k].limit_cores : least;
	if (least < BUSY_CORES_FRACTION * usable)
		printf("note: the blaster kept only %.2f of %u cores busy (other processes, or its "
		       "blocking sockets waiting on each other): compare the cores columns\n",
		       least, usable);
}

/* Connections each server reactor holds, "2,1" (to show the spread). */
static void print_spread(struct bench *b)
{
	printf("threads: rpc %u client + %u server reactors; blaster bulk %u (%u senders + %u "
	       "receivers), blaster rtt 2; server connections:",
	       b->nr, b->nr, 2 * b->o.conns, b->o.conns, b->o.conns);
	for (unsigned i = 0; i < b->nr; i++) {
		run_on_reactor(b->srv[i].r, server_stats_fn, &b->srv[i]);
		printf("%s%d", i ? "," : " ", b->srv[i].rc);
	}
	printf("\n");
}

/* ---- the measurements ---------------------------------------------------------------------- */

static int measure_rtt(struct bench *b, unsigned inflight, struct result *out)
{
	struct run r = {.peer = b->uri, .shape = SHAPE_RTT, .nslots = inflight, .slots = b->slots};
	double value[ROUNDS_MAX], limit[ROUNDS_MAX], bytes_s;
	double cores[ROUNDS_MAX], limit_cores[ROUNDS_MAX];
	struct cpu_mark m;
	char what[64];
	int rc;

	for (unsigned i = 0; i < inflight; i++)
		b->slots[i] = (struct slot){.run = &r, .rpc = b->cli[0].rtt, .lane = 0};
	for (unsigned k = 0; k < b->o.rounds; k++) {
		cpu_mark(&m);
		rc = blaster_rtt(inflight, b->o.seconds, &limit[k]);
		if (rc)
			return fail("tcp round trips", rc);
		limit_cores[k] = cpu_cores_since(&m);
		cpu_mark(&m);
		rc = run_measure(b, &r, &value[k], &bytes_s);
		if (rc)
			return fail("rpc round trips", rc);
		cores[k] = cpu_cores_since(&m);
		print_round(b, inflight == 1 ? "rtt1" : "rttN", k, value[k], limit[k], cores[k],
			    limit_cores[k]);
	}
	pick_median(value, limit, cores, limit_cores, b->o.rounds, out);
	snprintf(out->key, sizeof(out->key), "rtt%u", inflight);
	snprintf(what, sizeof(what), "rtt %u B, %u in flight", RTT_DATA_BYTES, inflight);
	print_line(what, "ops/s", 1, out, b->o.rounds);
	return 0;
}

/* The bulk slots: each client's share of the calls, on its connections' buffers. */
static unsigned bulk_slots(struct bench *b, struct run *r, size_t size)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->nr; i++) {
		struct client *c = &b->cli[i];

		for (unsigned k = 0; k < c->conns * b->o.bulk_inflight; k++, n++) {
			unsigned buf = b->o.private_bufs ? n : c->first_conn + k % c->conns;
			struct slot *sl = &b->slots[n];

			*sl = (struct slot){
				.run = r,
				.rpc = c->bulk,
				.lane = i,
				.bulk = {b->bulk_mem + (size_t)buf * BULK_SIZE_MAX, size}};
			sl->bulk_crc = crc32c(0, sl->bulk.iov_base, size);
		}
	}
	return n;
}

/* Write- and read-shaped calls of size bytes; out[0] write, out[1] read, in bytes/s. */
static int measure_bulk(struct bench *b, size_t size, struct result out[2])
{
	struct run r = {.peer = b->uri, .size = size, .slots = b->slots};
	static const char *const names[] = {"write", "read"};
	double value[2][ROUNDS_MAX], limit[ROUNDS_MAX], ops_s;
	double cores[2][ROUNDS_MAX], limit_cores[ROUNDS_MAX];
	struct cpu_mark m;
	char what[64];
	int rc;

	r.nslots = bulk_slots(b, &r, size);
	for (unsigned k = 0; k < b->o.rounds; k++) {
		cpu_mark(&m);
		rc = blaster_bulk(size, b->o.conns, b->o.seconds, &limit[k]);
		if (rc)
			return fail("tcp bulk", rc);
		limit_cores[k] = cpu_cores_since(&m);
		for (unsigned s = 0; s < 2; s++) {
			r.shape = s == 0 ? SHAPE_WRITE : SHAPE_READ;
			cpu_mark(&m);
			rc = run_measure(b, &r, &ops_s, &value[s][k]);
			if (rc)
				return fail(s == 0 ? "rpc bulk write" : "rpc bulk read", rc);
			cores[s][k] = cpu_cores_since(&m);
			print_round(b, s == 0 ? "write" : "read", k, value[s][k], limit[k],
				    cores[s][k], limit_cores[k]);
		}
	}
	for (unsigned s = 0; s < 2; s++) {
		pick_median(value[s], limit, cores[s], limit_cores, b->o.rounds, &out[s]);
		snprintf(what, sizeof(what), "bulk %-5s %zu MiB, %u conns x %u", names[s],
			 size / MIB, b->o.conns, b->o.bulk_inflight);
		print_line(what, "GB/s", 1e9, &out[s], b->o.rounds);
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

	while ((c = getopt(argc, argv, "t:c:R:n:r:k:pvVh")) != -1) {
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
		case 'R':
			rc = parse_uint(optarg, 1, REACTORS_MAX, &o->reactors);
			break;
		case 'n':
			rc = parse_uint(optarg, 1, 64, &o->bulk_inflight);
			break;
		case 'r':
			rc = parse_uint(optarg, 1, INFLIGHT_MAX, &o->rtt_inflight);
			break;
		case 'k':
			rc = parse_uint(optarg, 1, ROUNDS_MAX, &o->rounds);
			break;
		case 'p':
			o->private_bufs = true;
			break;
		case 'v':
			o->verify_crc = true;
			break;
		case 'V':
			o->verbose = true;
			break;
		default:
			return -EINVAL;
		}
		if (rc)
			return rc;
	}
	if (!o->reactors)
		o->reactors = o->conns;
	if (o->reactors > o->conns)
		return -EINVAL; /* a client reactor without a connection would sit idle */
	if (o->conns * o->bulk_inflight > INFLIGHT_MAX ||
	    (uint64_t)o->conns * o->bulk_inflight * BULK_SIZE_MAX > POOL_BYTES / 2)
		return -EINVAL; /* a server pool must hold every bulk in flight, twice over */
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
	printf(",\"seconds\":%s,\"rounds\":%u,\"conns\":%u,\"bulk_inflight_per_conn\":%u"
	       ",\"rtt_inflight\":%u,\"private_bufs\":%s,\"server_crc\":%s",
	       fmt3(v, sizeof(v), b->o.seconds), b->o.rounds, b->o.conns, b->o.bulk_inflight,
	       b->o.rtt_inflight, b->o.private_bufs ? "true" : "false",
	       b->o.verify_crc ? "true" : "false");
	printf(",\"rpc_client_reactors\":%u,\"rpc_server_reactors\":%u,\"blaster_bulk_threads\":%u"
	       ",\"blaster_rtt_threads\":2,\"cpus\":%u,\"cores\":%.2f,\"limit_cores\":%.2f",
	       b->nr, b->nr, 2 * b->o.conns, b->ncpu, main_fig->cores, main_fig->limit_cores);
	for (unsigned i = 0; i < 2; i++)
		printf(",\"%s_ops\":%s,\"%s_limit\":%s,\"%s_ratio\":%s", rtt[i].key,
		       fmt3(v, sizeof(v), rtt[i].value), rtt[i].key,
		       fmt3(l, sizeof(l), rtt[i].limit), rtt[i].key,
		       fmt3(q, sizeof(q), rtt[i].value / rtt[i].limit));
	for (unsigned s = 0; s < 2; s++) {
		for (unsigned k = 0; k < 2; k++)
			printf(",\"bulk%s_%s_gbs\":%s,\"bulk%s_%s_limit\":%s,\"bulk%s_%s_ratio\":%"
			       "s",
			       sizes[s], shapes[k], fmt3(v, sizeof(v), bulk[s][k].value / 1e9),
			       sizes[s], shapes[k], fmt3(l, sizeof(l), bulk[s][k].limit / 1e9),
			       sizes[s], shapes[k],
			       fmt3(q, sizeof(q), bulk[s][k].value / bulk[s][k].limit));
	}
	printf("}\n");
}

int main(int argc, char **argv)
{
	struct bench b = {.o = {.seconds = 1.0,
				.conns = 2,
				.bulk_inflight = 8,
				.rtt_inflight = 64,
				.rounds = 3}};
	struct result rtt[2] = {0}, bulk[2][2] = {0};
	int rc;

	if (parse_opts(argc, argv, &b.o) < 0) {
		fprintf(stderr,
			"usage: bench_rpc [-t SECONDS] [-c CONNS 1..%u] [-R REACTORS 1..CONNS] "
			"[-n BULK_INFLIGHT 1..64] [-r RTT_INFLIGHT 1..%u] [-k ROUNDS 1..%u] [-p] "
			"[-v] [-V]\n",
			SLUICE_RPC_CONNS_PER_PEER_MAX, INFLIGHT_MAX, ROUNDS_MAX);
		return 2;
	}
	b.nr = b.o.reactors;
	b.ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
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
	if (rc == 0)
		print_spread(&b);
	if (rc == 0)
		print_busy_note(&b, bulk);
	bench_teardown(&b);
	if (rc)
		return 1;
	print_json(&b, rtt, bulk);
	return 0;
}
