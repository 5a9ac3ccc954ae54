/*
 * rpc_server.c - the serving side of RPC: decode, dispatch, reply, backpressure.
 *
 * DESIGN
 * An rpc_server lives on one reactor. Each accepted connection gets a struct sconn; every
 * request frame becomes a struct rpc_req (taken from a free list, so steady-state serving
 * does not allocate), its payload is unpacked with the op's protobuf-c descriptor and the
 * handler runs on the reactor thread. The handler calls rpc_reply now or later; the reply
 * payload is packed into a pooled buffer and sent with the caller's bulk vectors attached
 * (the TCP meaning of "push"). A request counts against its connection's in-flight limit
 * from the moment it is read until its reply has been handed to the kernel; at the limit
 * the connection is paused, so a client that floods requests or stops reading responses
 * only stalls itself.
 *
 * Errors in a frame (from the transport: magic, CRC, lengths) or a response-flagged frame
 * close that connection with a rate-limited log line; an unknown service or op, or a
 * payload that does not decode, is answered with -SLUICE_EBADOP / -SLUICE_EPROTO. A
 * request whose deadline passed before its handler ran is answered -SLUICE_EDEADLINE.
 *
 * Several reactors (DESIGN.md section 3): a daemon runs one rpc_server per reactor, each
 * with its own services and ctx (that reactor's slice of state). One of them listens; the
 * others rpc_server_join it, which shares its listeners (net_listener_share): accepted
 * connections are spread over the servers and each is served entirely on the reactor of
 * the server it was given to. Servers share nothing else.
 *
 * Lifetimes: a request holds a reference on its sconn, so a connection that closes while
 * handlers are still working stays allocated (marked dead; replies are dropped) until the
 * last reply. The server itself is freed when destroyed and its last sconn is gone.
 *
 * THREADS: the server's reactor only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"

LOG_FACILITY("rpc");

#define RPC_SERVICES_MAX 16

struct service_slot {
	const struct rpc_service_handlers *h;
	void *ctx;
};

struct rpc_server {
	struct reactor *r;
	struct rpc_server_cfg cfg;
	struct service_slot services[RPC_SERVICES_MAX];
	unsigned nservices;
	struct net_listener *listeners[8];
	unsigned nlisteners;
	struct sconn *conns; /* open connections (doubly linked) */
	struct rpc_req *free_reqs;
	uint32_t refs; /* 1 until destroyed + 1 per sconn */
	bool destroyed;
	struct rpc_server_stats stats;
};

struct sconn {
	struct rpc_server *srv;
	struct net_conn *nc; /* NULL once closed */
	struct sconn *prev, *next;
	char peer[SLUICE_NET_ADDR_MAX];
	uint32_t inflight;
	uint32_t refs; /* 1 while open + 1 per request in progress */
	bool paused;
};

struct rpc_req {
	/* req_get zeroes everything before `send` for each request */
	struct sconn *sc;
	struct frame_hdr hdr;
	const struct rpc_op_desc *op;
	ProtobufCMessage *msg;
	struct buf *payload, *bulk, *resp_payload;
	uint64_t deadline_ns;
	bool replied;
	void (*release)(void *arg);
	void *release_arg;
	struct rpc_req *next_free;
	/* rpc_reply fills these before they are used: not worth zeroing (1 KiB) per request */
	struct net_send send;
	struct iovec resp_bulk[SLUICE_NET_SEND_IOV_MAX - 2];
};

static void server_unref(struct rpc_server *s)
{
	ASSERT(s->refs > 0);
	if (--s->refs > 0)
		return;
	while (s->free_reqs) {
		struct rpc_req *q = s->free_reqs;

		s->free_reqs = q->next_free;
		free(q);
	}
	free(s);
}

static void sconn_unref(struct sconn *sc)
{
	ASSERT(sc->refs > 0);
	if (--sc->refs > 0)
		return;
	server_unref(sc->srv);
	free(sc);
}

static void sconn_update_pause(struct sconn *sc)
{
	bool want = sc->inflight >= sc->srv->cfg.inflight_per_conn;

	if (sc->nc && (sc->inflight == 0 || sc->inflight == 1))
		net_set_busy(sc->nc, sc->inflight > 0); /* a slow handler is not an idle peer */
	if (sc->nc && want != sc->paused) {
		sc->paused = want;
		net_pause_recv(sc->nc, want);
	}
}

/* ---- request objects ---------------------------------------------------------------------- */

static struct rpc_req *req_get(struct rpc_server *s)
{
	struct rpc_req *q = s->free_reqs;

	if (q)
		s->free_reqs = q->next_free;
	else
		q = malloc(sizeof(*q)); /* grows to the peak in-flight count, then reused */
	if (q)
		memset(q, 0, offsetof(struct rpc_req, send));
	return q;
}

/* The request is finished: its reply was sent or dropped. */
static void req_finish(struct rpc_req *q)
{
	struct sconn *sc = q->sc;
	struct rpc_server *s = sc->srv;

	if (q->release)
		q->release(q->release_arg);
	buf_put(q->resp_payload);
	buf_put(q->payload);
	buf_put(q->bulk);
	if (q->msg)
		protobuf_c_message_free_unpacked(q->msg, NULL);
	sc->inflight--;
	sconn_update_pause(sc);
	q->next_free = s->free_reqs;
	s->free_reqs = q;
	sconn_unref(sc);
}

static void reply_sent(struct net_send *send, int rc)
{
	struct rpc_req *q = SLUICE_CONTAINER_OF(send, struct rpc_req, send);

	if (rc == 0)
		q->sc->srv->stats.replies++;
	req_finish(q);
}

/* ---- accessors for handlers ---------------------------------------------------------------- */

struct buf *rpc_req_bulk(struct rpc_req *req)
{
	return req->bulk;
}

struct buf *rpc_req_take_bulk(struct rpc_req *req)
{
	struct buf *b = req->bulk;

	req->bulk = NULL;
	return b;
}

uint64_t rpc_req_deadline_ns(const struct rpc_req *req)
{
	return req->deadline_ns;
}

const struct rpc_op_desc *rpc_req_op(const struct rpc_req *req)
{
	return req->op;
}

const char *rpc_req_peer(const struct rpc_req *req)
{
	return req->sc->peer;
}

/* ---- replying ------------------------------------------------------------------------------ */

/* Pack resp into a pooled buffer; on failure the reply becomes an error status. */
static int pack_response(struct rpc_req *q, int status, const ProtobufCMessage *resp)
{
	size_t len;
	int rc;

	if (status != 0 || !resp)
		return status;
	if (resp->descriptor != q->op->resp) {
		log_err("%s.%s: handler replied with %s", "rpc", q->op->name,
			resp->descriptor->name);
		return -SLUICE_EPROTO;
	}
	len = protobuf_c_message_get_packed_size(resp);
	if (len > SLUICE_FRAME_PAYLOAD_MAX)
		return -SLUICE_ETOOBIG;
	rc = bufpool_get(q->sc->srv->cfg.pool, len, &q->resp_payload);
	if (rc)
		return rc;
	q->resp_payload->len = protobuf_c_message_pack(resp, q->resp_payload->data);
	return 0;
}

void rpc_reply_error(struct rpc_req *q, int status, const char *detail)
{
	size_t len = strnlen(detail, SLUICE_RPC_ERROR_DETAIL_MAX);

	ASSERT(status < 0 && !q->resp_payload);
	/* The reason travels as the payload of the error reply: plain text, no protobuf. */
	if (len && bufpool_get(q->sc->srv->cfg.pool, len, &q->resp_payload) == 0) {
		memcpy(q->resp_payload->data, detail, len);
		q->resp_payload->len = len;
	}
	rpc_reply(q, status, NULL, NULL, 0, NULL, NULL);
}

void rpc_reply(struct rpc_req *q, int status, const ProtobufCMessage *resp,
	       const struct iovec *bulk, unsigned nbulk, void (*release)(void *arg),
	       void *release_arg)
{
	struct sconn *sc = q->sc;
	int rc;

	ASSERT(reactor_on_thread(sc->srv->r));
	ASSERT(!q->replied);
	ASSERT(nbulk <= SLUICE_ARRAY_SIZE(q->resp_bulk));
	q->replied = true;
	q->release = release;
	q->release_arg = release_arg;
	if (!sc->nc || (q->hdr.flags & FRAME_F_ONEWAY)) {
		req_finish(q);
		return;
	}
	status = pack_response(q, status, resp);
	if (status != 0) {
		nbulk = 0;
		sc->srv->stats.errors_sent++;
	}
	if (nbulk) /* error replies pass bulk NULL: memcpy from NULL is undefined even for 0 */
		memcpy(q->resp_bulk, bulk, nbulk * sizeof(*bulk));
	q->send = (struct net_send){
		.hdr = {.flags = FRAME_F_RESPONSE,
			.opcode = q->hdr.opcode,
			.status = status,
			.req_id = q->hdr.req_id},
		.payload = {q->resp_payload ? q->resp_payload->data : NULL,
			    q->resp_payload ? q->resp_payload->len : 0},
		.bulk = q->resp_bulk,
		.nbulk = nbulk,
		.done = reply_sent,
	};
	rc = net_send(sc->nc, &q->send);
	if (rc)
		req_finish(q); /* connection closing: nobody to answer */
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const struct service_slot *find_service(struct rpc_server *s, uint16_t id)
{
	for (unsigned i = 0; i < s->nservices; i++)
		if (s->services[i].h->desc->id == id)
			return &s->services[i];
	return NULL;
}

const struct rpc_op_desc *rpc_op_lookup(const struct rpc_service_desc *svc, uint16_t op)
{
	if (op == 0 || op >= svc->nops || svc->ops[op].op != op)
		return NULL;
	return &svc->ops[op];
}

static void dispatch(struct rpc_req *q)
{
	struct rpc_server *s = q->sc->srv;
	const struct service_slot *slot = find_service(s, frame_service(q->hdr.opcode));
	uint16_t op = frame_op(q->hdr.opcode);

	q->op = slot ? rpc_op_lookup(slot->h->desc, op) : NULL;
	if (!q->op || !slot->h->fns[op]) {
		log_warn_rl("%s: unknown opcode 0x%08x", q->sc->peer, q->hdr.opcode);
		rpc_reply(q, -SLUICE_EBADOP, NULL, NULL, 0, NULL, NULL);
		return;
	}
	q->msg = protobuf_c_message_unpack(q->op->req, NULL, q->payload ? q->payload->len : 0,
					   q->payload ? q->payload->data : (const uint8_t *)"");
	if (!q->msg) {
		log_warn_rl("%s: %s request does not decode", q->sc->peer, q->op->name);
		rpc_reply(q, -SLUICE_EPROTO, NULL, NULL, 0, NULL, NULL);
		return;
	}
	if (q->deadline_ns && reactor_now_ns(s->r) >= q->deadline_ns) {
		rpc_reply(q, -SLUICE_EDEADLINE, NULL, NULL, 0, NULL, NULL);
		return;
	}
	slot->h->fns[op](q, q->msg, slot->ctx);
}

static void on_frame(struct net_conn *nc, const struct frame_hdr *h, struct buf *payload,
		     struct buf *bulk, void *arg)
{
	struct sconn *sc = arg;
	struct rpc_req *q;

	if (!(h->flags & FRAME_F_REQUEST)) {
		buf_put(payload);
		buf_put(bulk);
		log_warn_rl("%s: response frame sent to a server, closing", sc->peer);
		net_close(nc, -SLUICE_EPROTO); /* on_close counts it in bad_frames */
		return;
	}
	q = req_get(sc->srv);
	if (!q) {
		buf_put(payload);
		buf_put(bulk);
		net_close(nc, -ENOMEM);
		return;
	}
	q->sc = sc;
	q->hdr = *h;
	q->payload = payload;
	q->bulk = bulk;
	if (h->timeout_ms)
		q->deadline_ns =
			reactor_now_ns(sc->srv->r) + (uint64_t)h->timeout_ms * ENV_NS_PER_MS;
	sc->refs++;
	sc->inflight++;
	sc->srv->stats.requests++;
	sconn_update_pause(sc);
	dispatch(q);
}

static void on_close(struct net_conn *nc, int reason, void *arg)
{
	struct sconn *sc = arg;
	struct rpc_server *s = sc->srv;

	if (reason != 0 && reason != -ECONNRESET && reason != -SLUICE_ESHUTDOWN) {
		s->stats.bad_frames += reason == -SLUICE_EPROTO || reason == -SLUICE_ECRC ||
				       reason == -SLUICE_ETOOBIG;
		log_warn_rl("closing connection from %s: %s (%d)", sc->peer,
			    sluice_strerror(reason), reason);
	}
	sc->nc = NULL;
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		s->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	s->stats.conns_open--;
	sconn_unref(sc);
}

static const struct net_handler server_handler = {
	.on_frame = on_frame,
	.on_close = on_close,
};

static void on_accept(struct net_listener *l, struct net_conn *nc, void *arg)
{
	struct rpc_server *s = arg;
	struct sconn *sc = calloc(1, sizeof(*sc));

	if (!sc) {
		/* on_accept must install a handler; one that closes at once will do. */
		static const struct net_handler reject = {.on_frame = on_frame};

		net_set_handler(nc, &reject, NULL);
		net_close(nc, -ENOMEM);
		return;
	}
	sc->srv = s;
	sc->nc = nc;
	sc->refs = 1;
	if (net_peer_name(nc, sc->peer, sizeof(sc->peer)) < 0)
		snprintf(sc->peer, sizeof(sc->peer), "conn %llu",
			 (unsigned long long)net_conn_id(nc));
	sc->next = s->conns;
	if (s->conns)
		s->conns->prev = sc;
	s->conns = sc;
	s->refs++;
	s->stats.conns_accepted++;
	s->stats.conns_open++;
	net_set_handler(nc, &server_handler, sc);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int rpc_server_create(struct reactor *r, const struct rpc_server_cfg *cfg, struct rpc_server **out)
{
	struct rpc_server *s;

	ASSERT(cfg && cfg->pool);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->r = r;
	s->cfg = *cfg;
	if (!s->cfg.inflight_per_conn || s->cfg.inflight_per_conn > SLUICE_RPC_INFLIGHT_PER_CONN)
		s->cfg.inflight_per_conn = SLUICE_RPC_INFLIGHT_PER_CONN;
	s->refs = 1;
	*out = s;
	return 0;
}

int rpc_server_add_service(struct rpc_server *s, const struct rpc_service_handlers *h, void *ctx)
{
	ASSERT(h && h->desc && h->fns);
	if (find_service(s, h->desc->id))
		return -EEXIST;
	if (s->nservices == RPC_SERVICES_MAX)
		return -ENOSPC;
	s->services[s->nservices++] = (struct service_slot){h, ctx};
	return 0;
}

int rpc_server_listen(struct rpc_server *s, const char *uri, char *bound, size_t bound_len)
{
	struct net_listen_cfg lc = {
		.pool = s->cfg.pool,
		.idle_timeout_ms = s->cfg.idle_timeout_ms,
		.stall_timeout_ms = s->cfg.stall_timeout_ms,
		.max_conns = s->cfg.max_conns,
	};
	struct net_listener *l;
	struct net_addr a;
	int rc;

	ASSERT(reactor_on_thread(s->r));
	if (s->nlisteners == SLUICE_ARRAY_SIZE(s->listeners))
		return -ENOSPC;
	rc = net_listen(s->r, uri, &lc, on_accept, s, &l);
	if (rc)
		return rc;
	s->listeners[s->nlisteners++] = l;
	if (bound) {
		rc = net_listener_addr(l, &a);
		if (rc == 0)
			rc = net_addr_format(&a, bound, bound_len);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int rpc_server_join(struct rpc_server *s, struct rpc_server *leader)
{
	struct net_listen_cfg lc = {
		.pool = s->cfg.pool,
		.idle_timeout_ms = s->cfg.idle_timeout_ms,
		.stall_timeout_ms = s->cfg.stall_timeout_ms,
		.max_conns = s->cfg.max_conns,
	};
	unsigned n = leader->nlisteners; /* the caller ordered leader's listens before us */

	ASSERT(reactor_on_thread(s->r) && s != leader && !s->destroyed);
	if (n == 0)
		return -EINVAL;
	if (s->nlisteners + n > SLUICE_ARRAY_SIZE(s->listeners))
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++) {
		struct net_listener *l;
		int rc = net_listener_share(s->r, leader->listeners[i], &lc, on_accept, s, &l);

		if (rc)
			return rc; /* those shared so far stay; rpc_server_destroy closes them */
		s->listeners[s->nlisteners++] = l;
	}
	return 0;
}

void rpc_server_destroy(struct rpc_server *s)
{
	if (!s)
		return;
	ASSERT(reactor_on_thread(s->r) && !s->destroyed);
	s->destroyed = true;
	for (unsigned i = 0; i < s->nlisteners; i++)
		net_listener_close(s->listeners[i]);
	for (struct sconn *sc = s->conns; sc; sc = sc->next)
		net_close(sc->nc, -SLUICE_ESHUTDOWN); /* on_close unlinks later, not now */
	server_unref(s);
}

void rpc_server_stats(const struct rpc_server *s, struct rpc_server_stats *out)
{
	*out = s->stats;
}
