/*
 * fuzz_frames.c - the frame decoder, the TCP transport and the RPC server against
 * malformed input from the network.
 *
 *     fuzz_frames [count] [seed] [threads]        (defaults: 100000, random, 4)
 *
 * DESIGN
 * An echo server (tests/lib) runs in this process on its own reactor thread, so ASan and
 * LSan see the server code, with a 128 MiB buffer pool and a 2 s idle timeout. A few worker
 * threads feed it count malformed frames in total over raw blocking TCP sockets, each kind
 * drawn from the worker's own splitmix64 stream (seeded from the seed and the worker
 * number, so a worker's frames replay from the printed seed; the interleaving of workers
 * does not). For every kind the test knows what the server must do, and checks it:
 *
 *   - answer and keep the connection: garbage protobuf payload (-SLUICE_EPROTO), unknown
 *     service or op (-SLUICE_EBADOP), valid requests (data echoed, pattern bulk);
 *   - close at once: a header with a bit flipped or a byte replaced, a header whose CRC is
 *     right but whose fields are not, lengths over the limits, wrong payload or bulk CRC, a
 *     response frame, random bytes. The worker reads until EOF/ECONNRESET with a receive
 *     timeout shorter than the idle timeout, so a server that hangs on a bad frame is
 *     caught rather than rescued by its idle timer. These frames must each add exactly one
 *     to the server's bad_frames;
 *   - notice the peer leaving: huge but legal lengths with none or only part of the bytes
 *     sent, truncated frames. The worker half-closes and waits for the server's close (a
 *     longer wait: a connection starved of pool budget reads its EOF only once it gets a
 *     buffer), or resets the connection.
 *
 * A connection is reused while the server keeps serving it and replaced after a frame that
 * closes it. Huge claims are made one at a time (claim_mu): two of them can hold the whole
 * pool, and then the server stops reading every other connection (and answers a request
 * for a response bulk -EAGAIN) until they go - backpressure by design, which would only
 * make the checks here flaky. The pool-pressure rounds (before and after the workers)
 * starve connections on purpose: one connection holds a bulk-max buffer, the others back
 * off, a well-formed client must still be served, and all must close once the peers leave.
 *
 * Every 1,000 frames a well-formed rpc client (test_client + echoc_echo) must get a correct
 * echo with pattern bulks both ways. At the end the server's stats are checked (bad_frames
 * equal to the frames that must count; no connection left open; the pool within budget with
 * every buffer back) and everything is stopped, so LeakSanitizer and bufpool_destroy's
 * all-buffers-returned assertion look for leaks.
 * Printed: frames and average time per kind, connections opened and closed by the server,
 * the server's stats, the elapsed time. Exit 0 pass, 1 fail.
 *
 * THREADS: main (setup, pool-pressure rounds, final checks) and the workers (raw sockets,
 * the periodic rpc check under check_mu). The server and the client run on their own
 * reactor threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/net/frame.h"
#include "common/net/net.h"
#include "tests/lib/testlib.h"

#define FF_DEFAULT_COUNT   100000ul
#define FF_DEFAULT_THREADS 4u
#define FF_THREADS_MAX	   16u
#define FF_POOL_BYTES	   (128ull * SLUICE_MiB)
#define FF_CLIENT_POOL	   (32ull * SLUICE_MiB)
#define FF_IDLE_MS	   2000u
#define FF_CLOSE_WAIT_MS   1500u /* < FF_IDLE_MS: a hang is not hidden by the idle timer */
#define FF_EOF_WAIT_MS	   5000u /* a starved conn sees EOF when it gets a buffer */
#define FF_REPLY_WAIT_MS   5000u
#define FF_SEND_WAIT_MS	   5000u
#define FF_CHECK_EVERY	   1000ul
#define FF_DATA_MAX	   64	/* EchoReq.data of the valid requests */
#define FF_VBULK_MAX	   4096 /* request and response bulks of the valid requests */
#define FF_PAYLOAD_MAX	   512	/* garbage payloads */
#define FF_FRAME_MAX	   (FRAME_HDR_SIZE + FF_PAYLOAD_MAX + FF_VBULK_MAX)
#define FF_PIPELINE_MAX	   8	       /* valid requests before the bad one */
#define FF_PARTIAL_MAX	   (64 * 1024) /* part of a huge frame: fits socket buffers */
#define FF_PRESSURE_CONNS  6
#define FF_FAILS_PRINTED   30
#define FF_FAILS_GIVE_UP   200

#define FF_KINDS(X)                                 \
	X(RANDOM, "random bytes")                   \
	X(HDR_FLIP, "header bit flipped")           \
	X(HDR_BYTE, "header byte replaced")         \
	X(HDR_FIELDS, "header fields bad, crc ok")  \
	X(OVER_LIMIT, "length over limit")          \
	X(CLAIM_CLOSE, "huge length, nothing sent") \
	X(CLAIM_PARTIAL, "huge length, part sent")  \
	X(TRUNCATED, "truncated frame")             \
	X(PAYLOAD_CRC, "wrong payload crc")         \
	X(BULK_CRC, "wrong bulk crc")               \
	X(GARBAGE_PB, "garbage protobuf")           \
	X(BAD_OP, "unknown service/op")             \
	X(RESPONSE, "response frame")               \
	X(VALID_THEN_BAD, "valid requests, then bad")

enum kind {
#define FF_KIND_ENUM_(name, desc) K_##name,
	FF_KINDS(FF_KIND_ENUM_)
#undef FF_KIND_ENUM_
		K_COUNT_
};

static const char *const kind_names[] = {
#define FF_KIND_NAME_(name, desc) desc,
	FF_KINDS(FF_KIND_NAME_)
#undef FF_KIND_NAME_
};

/* What the response to one valid request must contain. */
struct expect {
	uint64_t req_id;
	uint32_t opcode;
	uint8_t data[FF_DATA_MAX];
	size_t data_len;
	uint32_t req_bulk_len, req_bulk_crc;
	uint32_t resp_bulk_len;
	uint64_t seed;
};

struct worker {
	unsigned id;
	uint64_t rng;
	unsigned long quota, index;
	enum kind kind;
	int fd; /* current connection, -1 = none */
	pthread_t thread;

	/* counters, summed by main after join */
	unsigned long kinds[K_COUNT_];
	uint64_t kind_ns[K_COUNT_]; /* time spent per kind */
	unsigned long frames_sent;  /* valid ones included */
	unsigned long conns, server_closed, resets, must_be_bad, replies_checked;
	unsigned long connect_retries;

	struct expect exp[FF_PIPELINE_MAX];
	uint8_t bulk[FF_VBULK_MAX];
	uint8_t tx[(FF_PIPELINE_MAX + 1) * FF_FRAME_MAX];
	uint8_t rx[FF_FRAME_MAX];
	uint8_t junk[FF_PARTIAL_MAX];
};

static struct echo_server *srv;
static struct test_client tc;
static struct sockaddr_in srv_addr;
static uint64_t seed;
static unsigned long frames_done, checks_done;
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER; /* serializes client_check */
static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER; /* one huge claim at a time */

/* ---- failures ---------------------------------------------------------------------------- */

static bool giving_up(void)
{
	return __atomic_load_n(&test_failures, __ATOMIC_RELAXED) >= FF_FAILS_GIVE_UP;
}

__attribute__((format(printf, 3, 4))) static void fail_at(const struct worker *w, int line,
							  const char *fmt, ...)
{
	int n = __atomic_add_fetch(&test_failures, 1, __ATOMIC_RELAXED);
	char msg[256];
	va_list ap;

	if (n > FF_FAILS_PRINTED)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w)
		fprintf(stderr, "%s:%d: worker %u frame %lu (%s): %s [seed 0x%" PRIx64 "]\n",
			__FILE__, line, w->id, w->index, kind_names[w->kind], msg, seed);
	else
		fprintf(stderr, "%s:%d: %s [seed 0x%" PRIx64 "]\n", __FILE__, line, msg, seed);
}

#define FAIL(w, ...) fail_at(w, __LINE__, __VA_ARGS__)

/* ---- randomness (splitmix64, one stream per worker) -------------------------------------- */

static uint64_t rnd(struct worker *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(struct worker *w, uint64_t n)
{
	return n ? rnd(w) % n : 0;
}

static bool chance(struct worker *w, unsigned pct)
{
	return below(w, 100) < pct;
}

/* A value in [lo, hi], often one of the edges. */
static uint64_t edgy(struct worker *w, uint64_t lo, uint64_t hi)
{
	switch (below(w, 4)) {
	case 0:
		return lo;
	case 1:
		return hi;
	default:
		return lo + below(w, hi - lo + 1);
	}
}

static void fill_random(struct worker *w, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rnd(w);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* ---- frame building ---------------------------------------------------------------------- */

struct fspec {
	uint16_t flags;
	uint32_t opcode;
	int32_t status;
	uint64_t req_id;
	uint32_t timeout_ms;
	const void *payload;
	size_t payload_len;
	const void *bulk;
	size_t bulk_len;
};

/* Write a well-formed frame (every CRC right) to out; returns its length. */
static size_t frame_put(uint8_t *out, const struct fspec *f)
{
	struct frame_hdr h = {
		.flags = f->flags,
		.opcode = f->opcode,
		.status = f->status,
		.req_id = f->req_id,
		.payload_len = (uint32_t)f->payload_len,
		.bulk_len = (uint32_t)f->bulk_len,
		.payload_crc = crc32c(0, f->payload, f->payload_len),
		.bulk_crc = (f->flags & FRAME_F_BULK_CRC) ? crc32c(0, f->bulk, f->bulk_len) : 0,
		.timeout_ms = f->timeout_ms,
	};

	frame_hdr_encode(&h, out);
	if (f->payload_len)
		memcpy(out + FRAME_HDR_SIZE, f->payload, f->payload_len);
	if (f->bulk_len)
		memcpy(out + FRAME_HDR_SIZE + f->payload_len, f->bulk, f->bulk_len);
	return FRAME_HDR_SIZE + f->payload_len + f->bulk_len;
}

static void le32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Recompute the header CRC after the header bytes were edited in place. */
static void hdr_reseal(uint8_t *hdr)
{
	le32_put(hdr + FRAME_HDR_SIZE - 4, crc32c(0, hdr, FRAME_HDR_SIZE - 4));
}

static int decode(const uint8_t *wire, struct frame_hdr *h)
{
	return frame_hdr_decode(wire, h, NULL);
}

/* A request the echo service serves: random data, request bulk, response bulk. */
static size_t build_valid(struct worker *w, uint8_t *out, struct expect *e)
{
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	uint8_t payload[FF_DATA_MAX + 64];
	struct fspec f = {.flags = FRAME_F_REQUEST, .status = (int32_t)rnd(w)};

	e->req_id = rnd(w);
	e->opcode = frame_opcode(ECHO_SERVICE_ID, chance(w, 50) ? echo_OP_ECHO : echo_OP_ECHO_ONCE);
	e->data_len = below(w, FF_DATA_MAX + 1);
	fill_random(w, e->data, e->data_len);
	e->req_bulk_len = chance(w, 50) ? (uint32_t)edgy(w, 1, FF_VBULK_MAX) : 0;
	fill_random(w, w->bulk, e->req_bulk_len);
	e->req_bulk_crc = crc32c(0, w->bulk, e->req_bulk_len);
	e->resp_bulk_len = chance(w, 50) ? (uint32_t)edgy(w, 1, FF_VBULK_MAX) : 0;
	e->seed = rnd(w) | 1; /* 0 would mean "any bytes" */

	req.data = (ProtobufCBinaryData){e->data_len, e->data};
	req.resp_bulk_len = e->resp_bulk_len;
	req.seed = e->seed;
	req.req_bulk_crc = e->req_bulk_crc;
	ASSERT(sluice__test__echo_req__get_packed_size(&req) <= sizeof(payload));

	f.opcode = e->opcode;
	f.req_id = e->req_id;
	f.flags |= chance(w, 50) ? FRAME_F_BULK_CRC : 0;
	/* A deadline far enough away never to expire, or none. */
	f.timeout_ms = chance(w, 50) ? 0 : (uint32_t)edgy(w, 10000, UINT32_MAX);
	f.payload = payload;
	f.payload_len = sluice__test__echo_req__pack(&req, payload);
	f.bulk = w->bulk;
	f.bulk_len = e->req_bulk_len;
	return frame_put(out, &f);
}

/* 1..FF_PAYLOAD_MAX bytes that EchoReq does not decode from (checked here, the same
 * library and descriptor the server uses). */
static size_t garbage_pb(struct worker *w, uint8_t *out)
{
	size_t len = (size_t)edgy(w, 1, FF_PAYLOAD_MAX);
	Sluice__Test__EchoReq *m;

	fill_random(w, out, len);
	switch (below(w, 4)) {
	case 0: /* a wire type protobuf-c does not accept (groups, 6, 7) */
		out[0] = (uint8_t)((1 + below(w, 15)) << 3 | (3 + below(w, 5)));
		break;
	case 1: /* a length-delimited field longer than what follows */
		out[0] = 1 << 3 | 2;
		if (len > 1)
			out[1] = (uint8_t)(0x80 | below(w, 128)); /* varint continues... */
		if (len > 2)
			out[2] = 0x7f; /* ...to at least 16 KiB */
		break;
	case 2: /* a varint that never ends */
		out[0] = 2 << 3;
		memset(out + 1, 0xff, len - 1);
		break;
	default: /* plain random bytes (often decode: then fall back below) */
		break;
	}
	m = sluice__test__echo_req__unpack(NULL, len, out);
	if (m) {
		sluice__test__echo_req__free_unpacked(m, NULL);
		out[0] = 0x07; /* field 0, wire type 7: rejected whatever follows */
		m = sluice__test__echo_req__unpack(NULL, len, out);
		if (m) {
			sluice__test__echo_req__free_unpacked(m, NULL);
			FAIL(w, "garbage payload of %zu bytes decodes as an EchoReq", len);
		}
	}
	return len;
}

/* A request whose payload does not decode; the server must answer -SLUICE_EPROTO. */
static size_t build_garbage(struct worker *w, uint8_t *out, struct expect *e)
{
	uint8_t payload[FF_PAYLOAD_MAX];
	struct fspec f = {.flags = FRAME_F_REQUEST, .status = (int32_t)rnd(w)};

	e->req_id = f.req_id = rnd(w);
	e->opcode = f.opcode =
		frame_opcode(ECHO_SERVICE_ID, chance(w, 50) ? echo_OP_ECHO : echo_OP_ECHO_ONCE);
	f.timeout_ms = (uint32_t)rnd(w); /* decoding fails before the deadline is looked at */
	f.payload = payload;
	f.payload_len = garbage_pb(w, payload);
	f.bulk_len = chance(w, 30) ? (size_t)edgy(w, 1, FF_VBULK_MAX) : 0;
	fill_random(w, w->bulk, f.bulk_len);
	f.bulk = w->bulk;
	f.flags |= chance(w, 50) ? FRAME_F_BULK_CRC : 0;
	return frame_put(out, &f);
}

/* A request for a service or op nobody serves; the server must answer -SLUICE_EBADOP. */
static size_t build_bad_op(struct worker *w, uint8_t *out, struct expect *e)
{
	static const uint16_t svcs[] = {0, 1, ECHO_SERVICE_ID - 1, ECHO_SERVICE_ID + 1, 0xffff};
	uint16_t svc = ECHO_SERVICE_ID, op;
	size_t n;

	if (chance(w, 50)) {
		svc = chance(w, 50) ? svcs[below(w, SLUICE_ARRAY_SIZE(svcs))] : (uint16_t)rnd(w);
		if (svc == ECHO_SERVICE_ID)
			svc = 0;
		op = (uint16_t)(chance(w, 50) ? below(w, 4) : rnd(w));
	} else {
		op = chance(w, 50) ? 0 : (uint16_t)edgy(w, echo_OP_ECHO_ONCE + 1, 0xffff);
	}
	/* Any payload: the op is looked up before the payload is decoded. */
	n = chance(w, 50) ? build_valid(w, out, e) : build_garbage(w, out, e);
	e->opcode = frame_opcode(svc, op);
	out[8] = (uint8_t)op;
	out[9] = (uint8_t)(op >> 8);
	out[10] = (uint8_t)svc;
	out[11] = (uint8_t)(svc >> 8);
	hdr_reseal(out);
	return n;
}

/* ---- frames the server must close the connection on -------------------------------------- */

static size_t build_any_request(struct worker *w, uint8_t *out)
{
	struct expect e;

	return chance(w, 50) ? build_valid(w, out, &e) : build_garbage(w, out, &e);
}

static size_t build_hdr_flip(struct worker *w, uint8_t *out)
{
	size_t n = build_any_request(w, out);
	unsigned bit = (unsigned)below(w, FRAME_HDR_SIZE * 8);

	out[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	return n;
}

static size_t build_hdr_byte(struct worker *w, uint8_t *out)
{
	size_t n = build_any_request(w, out);

	out[below(w, FRAME_HDR_SIZE)] ^= (uint8_t)(1 + below(w, 255)); /* never the same byte */
	return n;
}

/* The header CRC is right, a field is not. */
static size_t build_hdr_fields(struct worker *w, uint8_t *out)
{
	static const uint16_t bad_flags[] = {
		0,
		FRAME_F_REQUEST | FRAME_F_RESPONSE,
		FRAME_F_RESPONSE | FRAME_F_ONEWAY,
		FRAME_F_ONEWAY,
		FRAME_F_BULK_CRC,
		FRAME_F_REQUEST | FRAME_F_RESPONSE | FRAME_F_BULK_CRC,
	};
	size_t n = build_any_request(w, out);
	uint16_t v;

	switch (below(w, 4)) {
	case 0: /* version */
		v = (uint16_t)rnd(w);
		if (v == FRAME_VERSION)
			v = 0;
		out[4] = (uint8_t)v;
		out[5] = (uint8_t)(v >> 8);
		break;
	case 1: /* no direction, both, or oneway response */
		v = bad_flags[below(w, SLUICE_ARRAY_SIZE(bad_flags))];
		out[6] = (uint8_t)v;
		out[7] = (uint8_t)(v >> 8);
		break;
	case 2: /* an unknown flag bit */
		v = (uint16_t)(FRAME_F_REQUEST | (FRAME_F_KNOWN_ + 1) << below(w, 12));
		out[6] = (uint8_t)v;
		out[7] = (uint8_t)(v >> 8);
		break;
	default: /* a bulk crc without its flag */
		out[6] &= (uint8_t)~FRAME_F_BULK_CRC;
		le32_put(out + 36, (uint32_t)(1 + below(w, UINT32_MAX)));
		break;
	}
	hdr_reseal(out);
	return n;
}

/* A header whose payload or bulk length is over its limit, and a few bytes. */
static size_t build_over_limit(struct worker *w, uint8_t *out)
{
	struct frame_hdr h = {.flags = FRAME_F_REQUEST,
			      .opcode = frame_opcode(ECHO_SERVICE_ID, echo_OP_ECHO),
			      .req_id = rnd(w)};
	size_t extra = below(w, 64);
	unsigned which = (unsigned)below(w, 3);

	if (which != 1)
		h.payload_len = (uint32_t)edgy(w, SLUICE_FRAME_PAYLOAD_MAX + 1, UINT32_MAX);
	else
		h.payload_len = (uint32_t)below(w, SLUICE_FRAME_PAYLOAD_MAX + 1);
	if (which != 0)
		h.bulk_len = (uint32_t)edgy(w, SLUICE_FRAME_BULK_MAX + 1, UINT32_MAX);
	else
		h.bulk_len = (uint32_t)below(w, SLUICE_FRAME_BULK_MAX + 1);
	if (chance(w, 50)) {
		h.flags |= FRAME_F_BULK_CRC;
		h.bulk_crc = (uint32_t)rnd(w);
	}
	h.payload_crc = (uint32_t)rnd(w);
	frame_hdr_encode(&h, out);
	fill_random(w, out + FRAME_HDR_SIZE, extra);
	return FRAME_HDR_SIZE + extra;
}

/* A valid request with a non-empty payload whose CRC is wrong. */
static size_t build_payload_crc(struct worker *w, uint8_t *out)
{
	struct frame_hdr h;
	size_t n = build_any_request(w, out);

	ASSERT(decode(out, &h) == 0 && h.payload_len > 0);
	h.payload_crc ^= (uint32_t)(1 + below(w, UINT32_MAX));
	frame_hdr_encode(&h, out);
	return n;
}

/* A valid request with a non-empty, checksummed bulk whose CRC is wrong. */
static size_t build_bulk_crc(struct worker *w, uint8_t *out)
{
	struct expect e;
	struct frame_hdr h;
	size_t n;

	do
		n = build_valid(w, out, &e);
	while (e.req_bulk_len == 0);
	ASSERT(decode(out, &h) == 0);
	h.flags |= FRAME_F_BULK_CRC;
	h.bulk_crc = e.req_bulk_crc ^ (uint32_t)(1 + below(w, UINT32_MAX));
	frame_hdr_encode(&h, out);
	return n;
}

/* A well-formed response frame, which a server never accepts. */
static size_t build_response(struct worker *w, uint8_t *out)
{
	uint8_t payload[FF_DATA_MAX];
	struct fspec f = {.flags = FRAME_F_RESPONSE, .req_id = rnd(w), .payload = payload};

	f.opcode = chance(w, 50) ? frame_opcode(ECHO_SERVICE_ID, echo_OP_ECHO) : (uint32_t)rnd(w);
	f.status = chance(w, 50) ? 0 : -(int32_t)below(w, SLUICE_ERR_END_);
	f.payload_len = below(w, sizeof(payload) + 1);
	fill_random(w, payload, f.payload_len);
	f.bulk_len = chance(w, 30) ? (size_t)edgy(w, 1, FF_VBULK_MAX) : 0;
	fill_random(w, w->bulk, f.bulk_len);
	f.bulk = w->bulk;
	f.flags |= chance(w, 50) ? FRAME_F_BULK_CRC : 0;
	return frame_put(out, &f);
}

typedef size_t (*bad_builder)(struct worker *w, uint8_t *out);

static const bad_builder bad_builders[] = {
	build_hdr_flip,	   build_hdr_byte, build_hdr_fields, build_over_limit,
	build_payload_crc, build_bulk_crc, build_response,
};

/* ---- sockets ----------------------------------------------------------------------------- */

static void set_timeout(int fd, int opt, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	/* Failure only loses the hang detection; the test still ends through the idle timer. */
	(void)setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static int sock_connect(unsigned long *retries)
{
	int one = 1;

	for (int attempt = 0; attempt < 200; attempt++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		set_timeout(fd, SO_RCVTIMEO, FF_REPLY_WAIT_MS);
		set_timeout(fd, SO_SNDTIMEO, FF_SEND_WAIT_MS);
		if (connect(fd, (const struct sockaddr *)&srv_addr, sizeof(srv_addr)) == 0)
			return fd;
		close(fd);
		/* Out of ephemeral ports (TIME_WAIT from our half-closes): wait a little. */
		if (errno != EADDRNOTAVAIL && errno != EINTR && errno != EAGAIN)
			return -errno;
		(*retries)++;
		env_sleep_ms(10);
	}
	return -EADDRNOTAVAIL;
}

static bool conn_ensure(struct worker *w)
{
	int fd;

	if (w->fd >= 0)
		return true;
	fd = sock_connect(&w->connect_retries);
	if (fd < 0) {
		FAIL(w, "connect: %s", strerror(-fd));
		return false;
	}
	w->fd = fd;
	w->conns++;
	return true;
}

/* Abortive close (RST): no TIME_WAIT here, and the server sees ECONNRESET. */
static void conn_reset(struct worker *w)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(w->fd);
	w->fd = -1;
	w->resets++;
}

/* Send it all. 0, or -EPIPE/-ECONNRESET when the server closed first (expected for frames it
 * rejects midway), or another -errno (-EAGAIN: the send stalled FF_SEND_WAIT_MS). */
static int send_all(struct worker *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(w->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes: 0, 1 if the connection closed first, or -errno (-EAGAIN: timeout). */
static int recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? 1 : -errno;
		if (n == 0)
			return 1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The server must close this connection within wait_ms: read until EOF or ECONNRESET. Bytes
 * before the close are an error unless allow_data. The socket is closed either way.
 */
static void expect_close(struct worker *w, unsigned wait_ms, bool allow_data, const char *after)
{
	size_t extra = 0;

	set_timeout(w->fd, SO_RCVTIMEO, wait_ms);
	for (;;) {
		ssize_t n = recv(w->fd, w->rx, sizeof(w->rx), 0);

		if (n > 0) {
			extra += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno == ECONNRESET) {
			w->server_closed++;
			break;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			FAIL(w, "server did not close the connection within %u ms after %s",
			     wait_ms, after);
		else
			FAIL(w, "recv while waiting for the close: %s", strerror(errno));
		break;
	}
	if (extra && !allow_data)
		FAIL(w, "server sent %zu bytes after %s", extra, after);
	close(w->fd);
	w->fd = -1;
}

/* Send a frame the server must reject, then see it close the connection. */
static void send_bad(struct worker *w, const uint8_t *frame, size_t len)
{
	int rc = send_all(w, frame, len);

	if (rc && rc != -EPIPE && rc != -ECONNRESET)
		FAIL(w, "send: %s", strerror(-rc));
	w->frames_sent++;
	w->must_be_bad++;
	expect_close(w, FF_CLOSE_WAIT_MS, false, "a bad frame");
}

/* We leave mid-frame: half-close and see the server close too, or reset. */
static void leave_early(struct worker *w)
{
	if (chance(w, 25)) {
		conn_reset(w);
		return;
	}
	if (shutdown(w->fd, SHUT_WR) != 0)
		FAIL(w, "shutdown: %s", strerror(errno));
	expect_close(w, FF_EOF_WAIT_MS, false, "our half-close mid-frame");
}

/* ---- responses --------------------------------------------------------------------------- */

/*
 * Read one response into h and w->rx (payload then bulk) and check its framing: response
 * flag, the request's id and opcode, payload CRC. Returns 0, 1 if the connection closed
 * first (a failure unless may_close), -1 on a failure (recorded).
 */
static int read_response(struct worker *w, struct frame_hdr *h, uint64_t req_id, uint32_t opcode,
			 bool may_close, const char *what)
{
	uint8_t wire[FRAME_HDR_SIZE];
	int rc = recv_all(w->fd, wire, sizeof(wire));
	const char *why = "?";

	if (rc == 0 && frame_hdr_decode(wire, h, &why) != 0) {
		FAIL(w, "response to %s: bad header (%s)", what, why);
		return -1;
	}
	if (rc == 0 && (size_t)h->payload_len + h->bulk_len > sizeof(w->rx)) {
		FAIL(w, "response to %s: %u + %u bytes, more than expected", what, h->payload_len,
		     h->bulk_len);
		return -1;
	}
	if (rc == 0)
		rc = recv_all(w->fd, w->rx, (size_t)h->payload_len + h->bulk_len);
	if (rc == 1 && may_close)
		return 1;
	if (rc != 0) {
		FAIL(w, "no response to %s: %s", what,
		     rc == 1 ? "server closed the connection" : strerror(-rc));
		return -1;
	}
	if (!(h->flags & FRAME_F_RESPONSE) || h->req_id != req_id || h->opcode != opcode ||
	    crc32c(0, w->rx, h->payload_len) != h->payload_crc) {
		FAIL(w,
		     "response to %s: flags 0x%x, req_id %" PRIx64 " (want %" PRIx64
		     "), opcode 0x%08x (want 0x%08x) or payload crc wrong",
		     what, h->flags, h->req_id, req_id, h->opcode, opcode);
		return -1;
	}
	w->replies_checked++;
	return 0;
}

/* The error response, without payload or bulk, that e must get. False on a failure. */
static bool expect_status(struct worker *w, const struct expect *e, int status, const char *what)
{
	struct frame_hdr h;

	if (read_response(w, &h, e->req_id, e->opcode, false, what) != 0)
		return false;
	if (h.status == status && h.payload_len == 0 && h.bulk_len == 0)
		return true;
	FAIL(w, "response to %s: status %d (%s), payload %u, bulk %u; want %d (%s)", what, h.status,
	     sluice_errname(h.status), h.payload_len, h.bulk_len, status, sluice_errname(status));
	return false;
}

/* The echo of valid request e. 0, 1 if the connection closed first and may_close, -1. */
static int expect_echo(struct worker *w, const struct expect *e, bool may_close)
{
	struct frame_hdr h;
	Sluice__Test__EchoResp *m;
	const uint8_t *bulk = w->rx;
	int rc = read_response(w, &h, e->req_id, e->opcode, may_close, "a valid request");

	if (rc != 0)
		return rc;
	if (h.status != 0) {
		FAIL(w, "valid request answered %d (%s)", h.status, sluice_errname(h.status));
		return -1;
	}
	m = sluice__test__echo_resp__unpack(NULL, h.payload_len, w->rx);
	bulk += h.payload_len;
	rc = -1;
	if (!m || m->data.len != e->data_len ||
	    (e->data_len && memcmp(m->data.data, e->data, e->data_len) != 0) ||
	    m->req_bulk_len != e->req_bulk_len || m->req_bulk_crc != e->req_bulk_crc)
		FAIL(w, "echo response payload does not match the request");
	else if (h.bulk_len != e->resp_bulk_len || pattern_check(bulk, h.bulk_len, e->seed) != -1)
		FAIL(w, "echo response bulk: %u bytes (want %u) or pattern wrong", h.bulk_len,
		     e->resp_bulk_len);
	else
		rc = 0;
	if (m)
		sluice__test__echo_resp__free_unpacked(m, NULL);
	return rc;
}

/* ---- the kinds --------------------------------------------------------------------------- */

static void do_random(struct worker *w)
{
	size_t len = below(w, 201);
	struct frame_hdr h;

	fill_random(w, w->tx, len);
	if (len >= FRAME_HDR_SIZE && decode(w->tx, &h) != 0) {
		send_bad(w, w->tx, len);
		return;
	}
	/* Too short for a header (or, once in 2^64, a valid one): the server waits for more. */
	if (send_all(w, w->tx, len) != 0)
		FAIL(w, "send of %zu random bytes failed", len);
	w->frames_sent++;
	leave_early(w);
}

/* A header with legal but huge lengths, then nothing or part of the bytes, then we leave. */
static void do_claim(struct worker *w, bool partial)
{
	struct frame_hdr h = {.flags = FRAME_F_REQUEST, .req_id = rnd(w)};
	size_t total, part = 0;
	int rc;

	h.opcode = chance(w, 80) ? frame_opcode(ECHO_SERVICE_ID, echo_OP_ECHO) : (uint32_t)rnd(w);
	h.payload_len =
		(uint32_t)(chance(w, 50) ? edgy(w, 64 * SLUICE_KiB, SLUICE_FRAME_PAYLOAD_MAX)
					 : below(w, 1024));
	h.bulk_len = (uint32_t)(chance(w, 70) ? edgy(w, SLUICE_MiB, SLUICE_FRAME_BULK_MAX)
					      : below(w, 4096));
	if (h.payload_len + h.bulk_len <= FF_PARTIAL_MAX) /* huge: a part is never the whole */
		h.bulk_len = (uint32_t)edgy(w, SLUICE_MiB, SLUICE_FRAME_BULK_MAX);
	if (chance(w, 50)) {
		h.flags |= FRAME_F_BULK_CRC;
		h.bulk_crc = (uint32_t)rnd(w);
	}
	h.payload_crc = (uint32_t)rnd(w);
	/* An empty section with a nonzero CRC is a bad header, not a claim (frame.c). */
	if (h.payload_len == 0)
		h.payload_crc = 0;
	if (h.bulk_len == 0)
		h.bulk_crc = 0;
	frame_hdr_encode(&h, w->tx);
	total = (size_t)h.payload_len + h.bulk_len;
	if (partial)
		part = (size_t)edgy(w, 1, FF_PARTIAL_MAX);

	pthread_mutex_lock(&claim_mu);
	rc = send_all(w, w->tx, FRAME_HDR_SIZE);
	if (rc == 0 && part)
		rc = send_all(w, w->junk, part);
	if (rc != 0)
		FAIL(w, "send of a %zu-byte claim (%zu sent): %s", total, part, strerror(-rc));
	w->frames_sent++;
	/* Half-close always: the pool buffer is back before the server's close reaches us, so
	 * the next claim never finds two huge buffers taken. */
	if (shutdown(w->fd, SHUT_WR) != 0)
		FAIL(w, "shutdown: %s", strerror(errno));
	expect_close(w, FF_EOF_WAIT_MS, false, "our half-close mid-frame");
	pthread_mutex_unlock(&claim_mu);
}

static void do_truncated(struct worker *w)
{
	size_t n = chance(w, 50) ? build_any_request(w, w->tx) : build_response(w, w->tx);

	if (send_all(w, w->tx, below(w, n)) != 0)
		FAIL(w, "send of a truncated frame failed");
	w->frames_sent++;
	leave_early(w);
}

/* Frames the server answers with an error and keeps the connection for. */
static void do_answered(struct worker *w, bool garbage)
{
	struct expect e;
	size_t n = garbage ? build_garbage(w, w->tx, &e) : build_bad_op(w, w->tx, &e);
	int rc = send_all(w, w->tx, n);
	bool ok;

	w->frames_sent++;
	if (rc) {
		FAIL(w, "send: %s", strerror(-rc));
		conn_reset(w);
		return;
	}
	if (garbage)
		ok = expect_status(w, &e, -SLUICE_EPROTO, "a garbage payload");
	else
		ok = expect_status(w, &e, -SLUICE_EBADOP, "an unknown op");
	if (!ok)
		conn_reset(w); /* where the stream stands is unknown: start afresh */
}

/*
 * 1..FF_PIPELINE_MAX valid requests in one write, then a bad frame: usually after all the
 * responses were read (each one checked), sometimes right behind them in the same write, when
 * the server may close before all responses are out: then any complete prefix of them must
 * be right.
 */
static void do_valid_then_bad(struct worker *w)
{
	unsigned k = 1 + (unsigned)below(w, FF_PIPELINE_MAX);
	bool same_write = chance(w, 25);
	size_t len = 0, bad;
	int rc;

	for (unsigned i = 0; i < k; i++)
		len += build_valid(w, w->tx + len, &w->exp[i]);
	bad = bad_builders[below(w, SLUICE_ARRAY_SIZE(bad_builders))](w, w->tx + len);
	rc = send_all(w, w->tx, same_write ? len + bad : len);
	w->frames_sent += k;
	if (rc && !(same_write && (rc == -EPIPE || rc == -ECONNRESET))) {
		FAIL(w, "send of %u valid requests: %s", k, strerror(-rc));
		conn_reset(w);
		return;
	}
	if (same_write) {
		w->frames_sent++;
		w->must_be_bad++;
		for (unsigned i = 0; i < k; i++)
			if (expect_echo(w, &w->exp[i], true) != 0)
				break;
		expect_close(w, FF_CLOSE_WAIT_MS, false, "valid requests and a bad frame");
		return;
	}
	for (unsigned i = 0; i < k; i++) {
		if (expect_echo(w, &w->exp[i], false) != 0) {
			conn_reset(w);
			return;
		}
	}
	send_bad(w, w->tx + len, bad);
}

/* A header frame_hdr_decode must refuse (checked here first), and the server with it. */
static void do_bad_header(struct worker *w)
{
	static const bad_builder builders[] = {
		[K_HDR_FLIP] = build_hdr_flip,
		[K_HDR_BYTE] = build_hdr_byte,
		[K_HDR_FIELDS] = build_hdr_fields,
		[K_OVER_LIMIT] = build_over_limit,
	};
	size_t n = builders[w->kind](w, w->tx);
	struct frame_hdr h;
	int rc = decode(w->tx, &h);

	if (rc != -SLUICE_EPROTO && rc != -SLUICE_ECRC && rc != -SLUICE_ETOOBIG) {
		FAIL(w, "frame_hdr_decode returned %d (%s) for a bad header", rc,
		     sluice_errname(rc));
		conn_reset(w);
		return;
	}
	send_bad(w, w->tx, n);
}

static void one_frame(struct worker *w)
{
	uint64_t t0;

	w->kind = (enum kind)below(w, K_COUNT_);
	w->kinds[w->kind]++;
	t0 = env_now_ns();
	if (!conn_ensure(w))
		return;
	switch (w->kind) {
	case K_RANDOM:
		do_random(w);
		break;
	case K_HDR_FLIP:
	case K_HDR_BYTE:
	case K_HDR_FIELDS:
	case K_OVER_LIMIT:
		do_bad_header(w);
		break;
	case K_CLAIM_CLOSE:
	case K_CLAIM_PARTIAL:
		do_claim(w, w->kind == K_CLAIM_PARTIAL);
		break;
	case K_TRUNCATED:
		do_truncated(w);
		break;
	case K_PAYLOAD_CRC:
		send_bad(w, w->tx, build_payload_crc(w, w->tx));
		break;
	case K_BULK_CRC:
		send_bad(w, w->tx, build_bulk_crc(w, w->tx));
		break;
	case K_GARBAGE_PB:
	case K_BAD_OP:
		do_answered(w, w->kind == K_GARBAGE_PB);
		break;
	case K_RESPONSE:
		send_bad(w, w->tx, build_response(w, w->tx));
		break;
	case K_VALID_THEN_BAD:
		do_valid_then_bad(w);
		break;
	case K_COUNT_:
		ASSERT(0);
	}
	w->kind_ns[w->kind] += env_now_ns() - t0;
}

/* ---- the well-formed client -------------------------------------------------------------- */

/* One echo through the real rpc client, pattern bulks both ways, all of it checked. */
static void client_check(uint64_t salt)
{
	static uint8_t out[FF_VBULK_MAX], in[FF_VBULK_MAX];
	Sluice__Test__EchoReq req = SLUICE__TEST__ECHO_REQ__INIT;
	struct iovec iov = {out, 1 + salt % FF_VBULK_MAX};
	struct rpc_call_opts o = {.bulk = &iov, .nbulk = 1, .bulk_crc = salt & 1};
	struct rpc_result res;
	Sluice__Test__EchoResp *resp;
	uint64_t pseed = seed ^ (salt * 0x9e3779b97f4a7c15ull) ^ 1;
	int rc;

	pthread_mutex_lock(&check_mu);
	pattern_fill(out, iov.iov_len, pseed);
	req.data = (ProtobufCBinaryData){8, (uint8_t *)&pseed};
	req.req_bulk_crc = crc32c(0, out, iov.iov_len);
	req.resp_bulk_len = (uint32_t)(FF_VBULK_MAX - salt % FF_VBULK_MAX);
	req.seed = pseed + 1;
	if (salt & 2) {
		o.resp_bulk = in;
		o.resp_bulk_cap = sizeof(in);
	}
	rc = echoc_echo(tc.rpc, echo_server_uri(srv), &req, &o, &res);
	resp = (Sluice__Test__EchoResp *)res.resp;
	if (rc != 0) {
		FAIL(NULL, "well-formed client after %" PRIu64 " frames: %d (%s)", salt, rc,
		     sluice_errname(rc));
	} else if (!resp || resp->data.len != 8 || memcmp(resp->data.data, &pseed, 8) != 0 ||
		   resp->req_bulk_len != iov.iov_len || resp->req_bulk_crc != req.req_bulk_crc ||
		   res.resp_bulk_len != req.resp_bulk_len) {
		FAIL(NULL, "well-formed client after %" PRIu64 " frames: wrong response", salt);
	} else if (pattern_check(res.resp_bulk ? res.resp_bulk->data : in, res.resp_bulk_len,
				 req.seed) != -1) {
		FAIL(NULL, "well-formed client after %" PRIu64 " frames: bulk pattern", salt);
	}
	rpc_result_release(&res);
	checks_done++;
	pthread_mutex_unlock(&check_mu);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	fill_random(w, w->junk, sizeof(w->junk));
	for (w->index = 0; w->index < w->quota && !giving_up(); w->index++) {
		unsigned long n;

		one_frame(w);
		n = __atomic_add_fetch(&frames_done, 1, __ATOMIC_RELAXED);
		if (n % FF_CHECK_EVERY == 0)
			client_check(n);
	}
	if (w->fd >= 0)
		close(w->fd);
	return NULL;
}

/* ---- pool pressure ------------------------------------------------------------------------ */

/*
 * FF_PRESSURE_CONNS connections each claim a bulk of SLUICE_FRAME_BULK_MAX and send 4 KiB of
 * it: the pool (128 MiB) holds one such buffer, so the others starve and back off. A
 * well-formed client must still be served meanwhile, and after our half-closes every one of
 * them must close: the holder at once, the starved ones when they get their turn.
 */
static void pool_pressure(struct worker *w)
{
	int fds[FF_PRESSURE_CONNS];
	struct frame_hdr h = {.flags = FRAME_F_REQUEST,
			      .opcode = frame_opcode(ECHO_SERVICE_ID, echo_OP_ECHO),
			      .bulk_len = SLUICE_FRAME_BULK_MAX};
	uint64_t t0;

	w->kind = K_CLAIM_PARTIAL;
	for (unsigned i = 0; i < FF_PRESSURE_CONNS; i++) {
		fds[i] = -1;
		if (!conn_ensure(w))
			continue;
		h.req_id = i;
		frame_hdr_encode(&h, w->tx);
		if (send_all(w, w->tx, FRAME_HDR_SIZE) || send_all(w, w->junk, 4096))
			FAIL(w, "pool pressure: send failed");
		fds[i] = w->fd;
		w->fd = -1;
	}
	env_sleep_ms(50); /* let the server take its buffer and the others start backing off */
	client_check(__atomic_load_n(&frames_done, __ATOMIC_RELAXED));
	t0 = env_now_ns();
	for (unsigned i = 0; i < FF_PRESSURE_CONNS; i++)
		if (fds[i] >= 0)
			(void)shutdown(fds[i], SHUT_WR); /* failure shows as a missing close */
	for (unsigned i = 0; i < FF_PRESSURE_CONNS; i++) {
		if (fds[i] < 0)
			continue;
		w->fd = fds[i];
		expect_close(w, FF_EOF_WAIT_MS, false, "pool pressure half-close");
	}
	printf("pool pressure: %u connections on a bulk-max claim, all closed %.0f ms after "
	       "the peers left\n",
	       FF_PRESSURE_CONNS, (double)(env_now_ns() - t0) / 1e6);
}

/*
 * Regression (bad_frames counted a response frame twice: once in on_frame, once more in
 * on_close for the -SLUICE_EPROTO close): one response frame adds exactly one.
 */
static void regress_response_counted_once(struct worker *w)
{
	struct rpc_server_stats before, after;
	uint64_t t0 = env_now_ns();

	w->kind = K_RESPONSE;
	echo_server_stats(srv, &before);
	if (!conn_ensure(w))
		return;
	send_bad(w, w->tx, build_response(w, w->tx));
	do
		echo_server_stats(srv, &after);
	while (after.conns_open != before.conns_open && env_now_ns() - t0 < ENV_NS_PER_S);
	CHECK_EQ(after.bad_frames - before.bad_frames, 1);
}

/* ---- main -------------------------------------------------------------------------------- */

/* Sum the workers' and the pressure rounds' counters into sum and print them. */
static void sum_and_print(const struct worker *ws, unsigned nw, const struct worker *pw,
			  struct worker *sum, double secs)
{
	for (unsigned i = 0; i <= nw; i++) {
		const struct worker *w = i < nw ? &ws[i] : pw;

		for (int k = 0; k < K_COUNT_ && i < nw; k++) {
			sum->kinds[k] += w->kinds[k];
			sum->kind_ns[k] += w->kind_ns[k];
		}
		sum->frames_sent += w->frames_sent;
		sum->conns += w->conns;
		sum->server_closed += w->server_closed;
		sum->resets += w->resets;
		sum->must_be_bad += w->must_be_bad;
		sum->replies_checked += w->replies_checked;
		sum->connect_retries += w->connect_retries;
	}
	for (int k = 0; k < K_COUNT_; k++)
		printf("  %-32s %8lu  %7.1f us avg\n", kind_names[k], sum->kinds[k],
		       sum->kinds[k] ? (double)sum->kind_ns[k] / 1e3 / (double)sum->kinds[k] : 0.0);
	printf("malformed frames %lu (frames sent %lu) in %.1f s: %.0f malformed/s\n", frames_done,
	       sum->frames_sent, secs, (double)frames_done / secs);
	printf("connections %lu: closed by the server %lu, reset by us %lu; responses checked %lu; "
	       "well-formed client checks %lu; connect retries %lu\n",
	       sum->conns, sum->server_closed, sum->resets, sum->replies_checked, checks_done,
	       sum->connect_retries);
}

static void final_server_checks(const struct worker *total)
{
	struct rpc_server_stats st;
	struct bufpool_stats ps;
	uint64_t t0 = env_now_ns();
	struct rusage ru;

	/* Every connection must go: we closed or reset all of ours. */
	do {
		echo_server_stats(srv, &st);
		if (st.conns_open == 0)
			break;
		env_sleep_ms(20);
	} while (env_now_ns() - t0 < FF_EOF_WAIT_MS * ENV_NS_PER_MS);
	printf("server: requests %" PRIu64 " replies %" PRIu64 " errors_sent %" PRIu64
	       " bad_frames %" PRIu64 " conns_accepted %" PRIu64 " conns_open %" PRIu64 "\n",
	       st.requests, st.replies, st.errors_sent, st.bad_frames, st.conns_accepted,
	       st.conns_open);
	CHECK(st.bad_frames > 0);
	CHECK_EQ(st.bad_frames, total->must_be_bad);
	CHECK_EQ(st.conns_open, 0);
	CHECK(st.conns_accepted >= total->conns);
	CHECK(st.errors_sent >= total->kinds[K_GARBAGE_PB] + total->kinds[K_BAD_OP]);

	/* Within budget, every buffer back, and the pressure rounds did starve connections. */
	bufpool_stats(echo_server_pool(srv), &ps);
	printf("server pool: budget %zu MiB, allocated %zu MiB, in use %zu bytes, gets %" PRIu64
	       ", refused over budget %" PRIu64 "\n",
	       ps.budget_bytes / SLUICE_MiB, ps.allocated_bytes / SLUICE_MiB, ps.in_use_bytes,
	       ps.gets, ps.misses_eagain);
	CHECK(ps.allocated_bytes <= ps.budget_bytes);
	CHECK_EQ(ps.in_use_bytes, 0);
	CHECK(ps.misses_eagain > 0);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("max RSS %ld MiB (server pool budget %llu MiB)\n", ru.ru_maxrss / 1024,
		       FF_POOL_BYTES / SLUICE_MiB);
}

static int parse_args(int argc, char **argv, unsigned long *count, unsigned *threads)
{
	char *end;

	*count = FF_DEFAULT_COUNT;
	*threads = FF_DEFAULT_THREADS;
	seed = env_random_u64();
	if (argc > 4)
		return -EINVAL;
	if (argc > 1 && ((*count = strtoul(argv[1], &end, 0)) == 0 || *end))
		return -EINVAL;
	if (argc > 2 && (seed = strtoull(argv[2], &end, 0), *end))
		return -EINVAL;
	if (argc > 3 && ((*threads = (unsigned)strtoul(argv[3], &end, 0)) == 0 || *end ||
			 *threads > FF_THREADS_MAX))
		return -EINVAL;
	return 0;
}

static int start(void)
{
	struct rpc_server_cfg cfg = {.idle_timeout_ms = FF_IDLE_MS};
	struct net_addr a;
	int rc;

	rc = echo_server_start_cfg("tcp://127.0.0.1:0", &cfg, FF_POOL_BYTES, &srv);
	if (rc)
		return rc;
	rc = net_addr_parse(echo_server_uri(srv), &a);
	if (rc)
		return rc;
	srv_addr.sin_family = AF_INET;
	srv_addr.sin_port = htons(a.port);
	if (inet_pton(AF_INET, a.host, &srv_addr.sin_addr) != 1)
		return -EINVAL;
	return test_client_start(&tc, NULL, FF_CLIENT_POOL);
}

int main(int argc, char **argv)
{
	static struct worker ws[FF_THREADS_MAX], pw, sum;
	unsigned long count;
	unsigned nw;
	uint64_t t0;
	double secs;
	int rc;

	if (parse_args(argc, argv, &count, &nw)) {
		fprintf(stderr, "usage: fuzz_frames [count] [seed] [threads (1..%u)]\n",
			FF_THREADS_MAX);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_set_level(LOG_LVL_ERR); /* the server's warnings about our frames are the point */
	printf("fuzz_frames: %lu malformed frames, seed 0x%" PRIx64 ", %u threads "
	       "(rerun: fuzz_frames %lu 0x%" PRIx64 " %u)\n",
	       count, seed, nw, count, seed, nw);
	rc = start();
	if (rc) {
		fprintf(stderr, "%s:%d: setup failed: %s\n", __FILE__, __LINE__,
			sluice_strerror(rc));
		return 1;
	}
	/* The pressure rounds run from main with a worker of their own (id FF_THREADS_MAX). */
	pw = (struct worker){.id = FF_THREADS_MAX, .fd = -1, .rng = seed ^ 0x5eedu};
	fill_random(&pw, pw.junk, sizeof(pw.junk));
	client_check(0);
	regress_response_counted_once(&pw);
	pool_pressure(&pw);

	t0 = env_now_ns();
	for (unsigned i = 0; i < nw; i++) {
		ws[i] = (struct worker){.id = i,
					.fd = -1,
					.quota = count / nw + (i < count % nw),
					.rng = seed + (i + 1) * 0xd1b54a32d192ed03ull};
		rc = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
		ASSERT(rc == 0);
	}
	for (unsigned i = 0; i < nw; i++)
		pthread_join(ws[i].thread, NULL);
	secs = (double)(env_now_ns() - t0) / 1e9;

	client_check(frames_done);
	pool_pressure(&pw);
	sum_and_print(ws, nw, &pw, &sum, secs);
	test_client_stop(&tc);
	final_server_checks(&sum);
	echo_server_stop(srv);
	printf("fuzz_frames: %s; %.1f s for the frames (seed 0x%" PRIx64 ")\n",
	       test_failures ? "FAILED" : "passed", secs, seed);
	return test_result();
}
