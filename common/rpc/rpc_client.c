/*
 * rpc_client.c - the calling side of RPC: connection pools, matching, deadlines, retries.
 *
 * DESIGN
 * An rpc_client lives on one reactor. Calls occupy slots of a table allocated at creation
 * (max_calls of them): the request id on the wire is (generation << 32 | slot), so a
 * response is matched in O(1) and a late response to a finished call - whose slot has a new
 * generation or is no longer waiting - is recognised and dropped.
 *
 * Each peer URI has up to conns_per_peer connections, opened on demand: a call goes to the
 * open connection with the fewest calls in flight, and a new connection is started while
 * every open one is busy and the pool is not full. Calls wait in the peer's queue while its
 * connections are being established.
 *
 * A call's life: QUEUED (no open connection yet) -> SENT (handed to a connection) ->
 * finished. Connection loss sends it to BACKOFF and back to QUEUED when retrying is safe -
 * the op is idempotent, or the request never reached a connection - and the retry budget
 * and deadline allow; otherwise it finishes with the connection's error. One timer per call
 * covers both the deadline and the backoff.
 *
 * Finishing a call and running its callback are separate: while the transport still holds
 * the caller's request bulk (send queued) or is receiving a response bulk into the caller's
 * buffer, the callback waits, so caller memory is never touched after done() returns.
 *
 * THREADS: the client's reactor only, except rpc_call_sync and rpc_client_destroy, which
 * post to it and wait.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"

LOG_FACILITY("rpc");

#define PEER_BUCKETS	   256
#define PEERS_MAX	   4096
#define DEFAULT_MAX_CALLS  4096
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_RETRIES	   3
#define DEFAULT_BACKOFF_MS 10
#define BACKOFF_MAX_MS	   1000
#define CALL_BULK_IOV_MAX  (SLUICE_NET_SEND_IOV_MAX - 2)

enum call_state { CALL_FREE, CALL_QUEUED, CALL_BACKOFF, CALL_SENT, CALL_FINISHED };

struct peer;
struct cconn;

struct call {
	struct rpc_client *cl;
	uint32_t slot, gen;
	enum call_state state;
	struct peer *peer;
	struct cconn *conn;	  /* CALL_SENT */
	struct call *prev, *next; /* peer queue or conn's sent list */
	const struct rpc_op_desc *op;
	uint32_t opcode;
	struct buf *payload;
	struct iovec bulk[CALL_BULK_IOV_MAX];
	unsigned nbulk;
	bool bulk_crc;
	void *resp_bulk;
	size_t resp_bulk_cap;
	bool send_busy;	   /* transport holds our send */
	bool bulk_busy;	   /* transport is receiving into resp_bulk */
	bool reached_wire; /* handed to a connection at least once */
	bool in_submit;	   /* inside rpc_call: completion must wait for the next turn */
	unsigned retries_left;
	uint32_t backoff_ms;
	uint64_t deadline_ns;
	struct reactor_timer timer;
	struct net_send send;
	struct rpc_result res;
	rpc_done_fn done;
	void *arg;
	struct call *next_free;
};

struct call_list {
	struct call *head, *tail;
};

struct cconn {
	struct rpc_client *cl;
	struct peer *peer;
	struct net_conn *nc;
	bool open;
	unsigned inflight;
	struct call_list sent;
	struct call *bulk_call; /* whose buffer the frame being received lands in, or NULL */
};

struct peer {
	struct rpc_client *cl;
	char uri[SLUICE_NET_ADDR_MAX];
	struct cconn *conns[SLUICE_RPC_CONNS_PER_PEER_MAX];
	unsigned nconns;
	struct call_list queue;
	struct peer *hnext;
};

struct rpc_client {
	struct reactor *r;
	struct rpc_client_cfg cfg;
	struct call *calls; /* max_calls slots */
	struct call *free_calls;
	unsigned active_calls;
	struct peer *buckets[PEER_BUCKETS];
	unsigned npeers;
	unsigned nconns;
	bool shutting_down;
	/* destroy handshake with the destroying thread */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool drained;
	struct reactor_msg destroy_msg;
};

static void call_dispatch(struct call *k);

/* ---- lists ------------------------------------------------------------------------------ */

static void list_push(struct call_list *l, struct call *k)
{
	k->next = NULL;
	k->prev = l->tail;
	if (l->tail)
		l->tail->next = k;
	else
		l->head = k;
	l->tail = k;
}

static void list_remove(struct call_list *l, struct call *k)
{
	if (k->prev)
		k->prev->next = k->next;
	else
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = NULL;
}

static struct call *list_pop(struct call_list *l)
{
	struct call *k = l->head;

	if (k)
		list_remove(l, k);
	return k;
}

/* ---- completion ------------------------------------------------------------------------- */

static void check_drained(struct rpc_client *c)
{
	if (!c->shutting_down || c->active_calls || c->nconns)
		return;
	pthread_mutex_lock(&c->mu);
	c->drained = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Run the callback once the transport no longer holds caller memory. */
static void call_try_complete(struct call *k)
{
	struct rpc_client *c = k->cl;
	struct rpc_result res;

	if (k->state != CALL_FINISHED || k->send_busy || k->bulk_busy)
		return;
	if (k->in_submit) {
		/* Never call back from inside rpc_call: finish on the next reactor turn. */
		int rc = reactor_timer_arm(c->r, &k->timer, 0);

		ASSERT(rc == 0); /* the timer heap is sized for one timer per call */
		return;
	}
	res = k->res;
	buf_put(k->payload);
	k->payload = NULL;
	k->state = CALL_FREE;
	k->gen++;
	k->next_free = c->free_calls;
	c->free_calls = k;
	c->active_calls--;
	k->done(&res, k->arg);
	check_drained(c);
}

static void unlink_call(struct call *k)
{
	if (k->state == CALL_QUEUED)
		list_remove(&k->peer->queue, k);
	else if (k->state == CALL_SENT) {
		list_remove(&k->conn->sent, k);
		k->conn->inflight--;
		k->conn = NULL;
	}
}

/* Decide the outcome. The caller has put any response into k->res already. */
static void call_finish(struct call *k, int status)
{
	ASSERT(k->state != CALL_FREE && k->state != CALL_FINISHED);
	unlink_call(k);
	reactor_timer_cancel(k->cl->r, &k->timer);
	k->res.status = status;
	k->state = CALL_FINISHED;
	call_try_complete(k);
}

/* The connection carrying (or about to carry) k failed with reason. */
static void call_conn_failed(struct call *k, int reason)
{
	struct rpc_client *c = k->cl;
	uint64_t now = reactor_now_ns(c->r);
	bool safe = !k->reached_wire || k->op->idempotent;

	unlink_call(k);
	k->state = CALL_BACKOFF; /* not linked anywhere while deciding */
	if (c->shutting_down || !safe || k->retries_left == 0 ||
	    now + (uint64_t)k->backoff_ms * ENV_NS_PER_MS >= k->deadline_ns) {
		call_finish(k, reason < 0 ? reason : -SLUICE_ECONNLOST);
		return;
	}
	k->retries_left--;
	log_debug("call %s to %s: retry in %u ms after %s", k->op->name, k->peer->uri,
		  k->backoff_ms, sluice_strerror(reason));
	if (reactor_timer_arm(c->r, &k->timer, (uint64_t)k->backoff_ms * ENV_NS_PER_MS) != 0) {
		call_finish(k, -SLUICE_ECONNLOST);
		return;
	}
	k->backoff_ms = k->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : k->backoff_ms * 2;
}

static void call_timer_fired(struct reactor_timer *t)
{
	struct call *k = SLUICE_CONTAINER_OF(t, struct call, timer);
	uint64_t now = reactor_now_ns(k->cl->r);

	if (k->state == CALL_FINISHED) {
		call_try_complete(k); /* deferred out of rpc_call */
		return;
	}
	if (k->state == CALL_BACKOFF && now < k->deadline_ns) {
		if (reactor_timer_arm(k->cl->r, &k->timer, k->deadline_ns - now) != 0) {
			call_finish(k, -SLUICE_EDEADLINE);
			return;
		}
		call_dispatch(k);
		return;
	}
	call_finish(k, -SLUICE_EDEADLINE);
}

/* ---- connections ------------------------------------------------------------------------- */

static void cconn_on_connected(struct net_conn *nc, void *arg)
{
	struct cconn *cc = arg;
	struct peer *p = cc->peer;
	struct call_list q = p->queue;

	cc->open = true;
	p->queue = (struct call_list){0};
	/* Re-dispatch everything that waited: it spreads over whatever is open now. */
	for (struct call *k = list_pop(&q); k; k = list_pop(&q)) {
		k->state = CALL_BACKOFF;
		call_dispatch(k);
	}
}

/* The call a response frame answers on this connection, or NULL if it is stale. */
static struct call *match_call(struct cconn *cc, uint64_t req_id)
{
	struct rpc_client *c = cc->cl;
	uint32_t slot = (uint32_t)req_id, gen = (uint32_t)(req_id >> 32);
	struct call *k;

	if (slot >= c->cfg.max_calls)
		return NULL;
	k = &c->calls[slot];
	if (k->gen != gen || k->state != CALL_SENT || k->conn != cc)
		return NULL;
	return k;
}

static bool cconn_bulk_dest(struct net_conn *nc, const struct frame_hdr *h, void **dst, void *arg)
{
	struct call *k = match_call(arg, h->req_id);

	if (!k || !k->resp_bulk || h->bulk_len > k->resp_bulk_cap)
		return false;
	k->bulk_busy = true;
	((struct cconn *)arg)->bulk_call = k;
	*dst = k->resp_bulk;
	return true;
}

/* A printable copy of an error reply's reason text (see rpc_reply_error). */
static char *error_detail(const struct buf *payload)
{
	size_t len = payload->len < SLUICE_RPC_ERROR_DETAIL_MAX ? payload->len
								: SLUICE_RPC_ERROR_DETAIL_MAX;
	char *s = malloc(len + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char ch = ((const char *)payload->data)[i];

		s[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
	}
	s[len] = 0;
	return s;
}

static void set_response(struct call *k, const struct frame_hdr *h, struct buf *payload,
			 struct buf *bulk)
{
	int status = h->status;

	if (status > 0)
		status = -SLUICE_EPROTO; /* statuses on the wire are 0 or negative */
	if (status < 0 && payload && payload->len)
		k->res.error_detail = error_detail(payload);
	if (status == 0) {
		k->res.resp =
			protobuf_c_message_unpack(k->op->resp, NULL, payload ? payload->len : 0,
						  payload ? payload->data : (const uint8_t *)"");
		if (!k->res.resp)
			status = -SLUICE_EPROTO;
	}
	if (status == 0 && bulk && k->resp_bulk) {
		status = -EOVERFLOW; /* bigger than the buffer the caller gave */
	} else if (status == 0 && bulk) {
		k->res.resp_bulk = bulk;
		bulk = NULL;
	}
	if (status == 0)
		k->res.resp_bulk_len = h->bulk_len;
	if (status != 0 && k->res.resp) {
		protobuf_c_message_free_unpacked(k->res.resp, NULL);
		k->res.resp = NULL;
	}
	buf_put(bulk);
	call_finish(k, status);
}

static void cconn_on_frame(struct net_conn *nc, const struct frame_hdr *h, struct buf *payload,
			   struct buf *bulk, void *arg)
{
	struct cconn *cc = arg;
	struct rpc_client *c = cc->cl;
	uint32_t slot = (uint32_t)h->req_id;
	struct call *k;

	cc->bulk_call = NULL; /* that frame is complete */
	if (!(h->flags & FRAME_F_RESPONSE)) {
		buf_put(payload);
		buf_put(bulk);
		net_close(nc, -SLUICE_EPROTO);
		return;
	}
	/* A finished call may still wait for the bulk we were receiving into its buffer. */
	if (slot < c->cfg.max_calls && c->calls[slot].gen == (uint32_t)(h->req_id >> 32) &&
	    c->calls[slot].bulk_busy) {
		c->calls[slot].bulk_busy = false;
		call_try_complete(&c->calls[slot]);
	}
	k = match_call(cc, h->req_id);
	if (!k) {
		log_debug("%s: dropping stale response %llx", cc->peer->uri,
			  (unsigned long long)h->req_id);
		buf_put(payload);
		buf_put(bulk);
		return;
	}
	set_response(k, h, payload, bulk);
	buf_put(payload);
}

static void cconn_on_close(struct net_conn *nc, int reason, void *arg)
{
	struct cconn *cc = arg;
	struct peer *p = cc->peer;
	struct rpc_client *c = cc->cl;
	struct call *k;
	unsigned i;

	for (i = 0; i < p->nconns && p->conns[i] != cc; i++)
		;
	ASSERT(i < p->nconns);
	p->conns[i] = p->conns[--p->nconns];
	/* A call that finished (deadline, cancel) while its response bulk was landing in its
	 * buffer waits for that frame, which will never complete now. */
	k = cc->bulk_call;
	if (k && k->bulk_busy) {
		k->bulk_busy = false;
		call_try_complete(k);
	}
	while ((k = cc->sent.head)) {
		k->bulk_busy = false;
		call_conn_failed(k, reason);
	}
	/* A failed connect also fails the calls waiting for it when no other connection
	 * of this peer is left to take them; they retry with backoff if they may. */
	if (p->nconns == 0) {
		struct call_list q = p->queue;

		p->queue = (struct call_list){0};
		while ((k = list_pop(&q))) {
			k->state = CALL_BACKOFF;
			call_conn_failed(k, reason);
		}
	}
	free(cc);
	c->nconns--;
	check_drained(c);
}

static const struct net_handler client_handler = {
	.on_frame = cconn_on_frame,
	.bulk_dest = cconn_bulk_dest,
	.on_connected = cconn_on_connected,
	.on_close = cconn_on_close,
};

static int peer_connect(struct peer *p)
{
	struct rpc_client *c = p->cl;
	struct net_connect_cfg nc_cfg = {
		.pool = c->cfg.pool,
		.connect_timeout_ms = c->cfg.connect_timeout_ms,
	};
	struct cconn *cc = calloc(1, sizeof(*cc));
	int rc;

	if (!cc)
		return -ENOMEM;
	cc->cl = c;
	cc->peer = p;
	rc = net_connect(c->r, p->uri, &nc_cfg, &client_handler, cc, &cc->nc);
	if (rc) {
		free(cc);
		return rc;
	}
	p->conns[p->nconns++] = cc;
	c->nconns++;
	return 0;
}

/* ---- peers ------------------------------------------------------------------------------- */

static unsigned peer_hash(const char *uri)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *uri; uri++)
		h = (h ^ (uint8_t)*uri) * 16777619u;
	return h % PEER_BUCKETS;
}

static int peer_get(struct rpc_client *c, const char *uri, struct peer **out)
{
	unsigned b = peer_hash(uri);
	struct net_addr a;
	struct peer *p;

	for (p = c->buckets[b]; p; p = p->hnext) {
		if (strcmp(p->uri, uri) == 0) {
			*out = p;
			return 0;
		}
	}
	if (net_addr_parse(uri, &a) != 0)
		return -EINVAL;
	if (c->npeers == PEERS_MAX)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cl = c;
	strcpy(p->uri, uri); /* fits: net_addr_parse checked the length */
	p->hnext = c->buckets[b];
	c->buckets[b] = p;
	c->npeers++;
	*out = p;
	return 0;
}

/* The open connection with the fewest calls, starting another one when all are busy. */
static struct cconn *peer_pick(struct peer *p)
{
	struct cconn *best = NULL;
	bool connecting = false;

	for (unsigned i = 0; i < p->nconns; i++) {
		struct cconn *cc = p->conns[i];

		if (!cc->open)
			connecting = true;
		else if (!best || cc->inflight < best->inflight)
			best = cc;
	}
	if ((!best || best->inflight > 0) && !connecting && p->nconns < p->cl->cfg.conns_per_peer) {
		int rc = peer_connect(p);

		if (rc)
			log_debug("connect to %s: %s", p->uri, sluice_strerror(rc));
	}
	return best;
}

/* ---- sending ----------------------------------------------------------------------------- */

static void call_send_done(struct net_send *s, int rc)
{
	struct call *k = SLUICE_CONTAINER_OF(s, struct call, send);

	k->send_busy = false;
	call_try_complete(k); /* a failure is handled by the connection's on_close */
}

static void call_send(struct call *k, struct cconn *cc)
{
	uint64_t now = reactor_now_ns(k->cl->r);
	uint64_t left_ms = k->deadline_ns > now ? (k->deadline_ns - now) / ENV_NS_PER_MS + 1 : 1;
	int rc;

	k->state = CALL_SENT;
	k->conn = cc;
	cc->inflight++;
	list_push(&cc->sent, k);
	k->send = (struct net_send){
		.hdr = {.flags = FRAME_F_REQUEST | (k->bulk_crc ? FRAME_F_BULK_CRC : 0),
			.opcode = k->opcode,
			.req_id = (uint64_t)k->gen << 32 | k->slot,
			.timeout_ms = left_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)left_ms},
		.payload = {k->payload->data, k->payload->len},
		.bulk = k->bulk,
		.nbulk = k->nbulk,
		.done = call_send_done,
	};
	k->reached_wire = true;
	k->send_busy = true;
	rc = net_send(cc->nc, &k->send);
	if (rc) {
		k->send_busy = false;
		call_conn_failed(k, rc);
	}
}

static void call_dispatch(struct call *k)
{
	struct peer *p = k->peer;
	struct cconn *cc;

	ASSERT(k->state == CALL_BACKOFF);
	if (k->cl->shutting_down) {
		call_finish(k, -SLUICE_ESHUTDOWN);
		return;
	}
	cc = peer_pick(p);
	if (cc) {
		call_send(k, cc);
		return;
	}
	if (p->nconns == 0) {
		/* Could not even start a connection (no fd, bad address): back off. */
		call_conn_failed(k, -SLUICE_ECONNLOST);
		return;
	}
	k->state = CALL_QUEUED;
	list_push(&p->queue, k);
}

/* ---- public API ------------------------------------------------------------------------- */

static int call_prepare(struct call *k, const ProtobufCMessage *req, const struct rpc_call_opts *o)
{
	struct rpc_client *c = k->cl;
	size_t len = protobuf_c_message_get_packed_size(req), bulk_len = 0;
	int rc;

	if (o->nbulk > CALL_BULK_IOV_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < o->nbulk; i++)
		bulk_len += o->bulk[i].iov_len;
	if (bulk_len > SLUICE_FRAME_BULK_MAX)
		return -EINVAL;
	if (len > SLUICE_FRAME_PAYLOAD_MAX)
		return -SLUICE_ETOOBIG;
	rc = bufpool_get(c->cfg.pool, len, &k->payload);
	if (rc)
		return rc;
	k->payload->len = protobuf_c_message_pack(req, k->payload->data);
	if (o->nbulk) /* o->bulk may be NULL: memcpy from NULL is undefined even for 0 */
		memcpy(k->bulk, o->bulk, o->nbulk * sizeof(*o->bulk));
	k->nbulk = o->nbulk;
	k->bulk_crc = o->bulk_crc;
	k->resp_bulk = o->resp_bulk;
	k->resp_bulk_cap = o->resp_bulk_cap;
	return 0;
}

int rpc_call(struct rpc_client *c, const char *peer, const struct rpc_service_desc *svc,
	     uint16_t op, const ProtobufCMessage *req, const struct rpc_call_opts *opts,
	     rpc_done_fn done, void *arg, uint64_t *call_id)
{
	static const struct rpc_call_opts no_opts;
	const struct rpc_call_opts *o = opts ? opts : &no_opts;
	const struct rpc_op_desc *od = rpc_op_lookup(svc, op);
	uint32_t timeout_ms = o->timeout_ms ? o->timeout_ms : c->cfg.default_timeout_ms;
	struct peer *p;
	struct call *k;
	int rc;

	ASSERT(reactor_on_thread(c->r) && done);
	if (c->shutting_down)
		return -SLUICE_ESHUTDOWN;
	if (!od || req->descriptor != od->req)
		return -EINVAL;
	rc = peer_get(c, peer, &p);
	if (rc)
		return rc;
	k = c->free_calls;
	if (!k)
		return -EAGAIN;
	rc = call_prepare(k, req, o);
	if (rc)
		return rc;
	c->free_calls = k->next_free;
	c->active_calls++;
	k->peer = p;
	k->op = od;
	k->opcode = frame_opcode(svc->id, op);
	k->res = (struct rpc_result){0};
	k->reached_wire = k->send_busy = k->bulk_busy = false;
	k->retries_left = o->retries < 0 ? c->cfg.default_retries : (unsigned)o->retries;
	if (k->retries_left > SLUICE_RPC_RETRIES_MAX)
		k->retries_left = SLUICE_RPC_RETRIES_MAX;
	k->backoff_ms = c->cfg.retry_backoff_ms;
	if (timeout_ms > SLUICE_RPC_DEADLINE_MAX_MS)
		timeout_ms = SLUICE_RPC_DEADLINE_MAX_MS;
	k->deadline_ns = reactor_now_ns(c->r) + (uint64_t)timeout_ms * ENV_NS_PER_MS;
	k->done = done;
	k->arg = arg;
	k->state = CALL_BACKOFF;
	rc = reactor_timer_arm(c->r, &k->timer, (uint64_t)timeout_ms * ENV_NS_PER_MS);
	ASSERT(rc == 0); /* the heap is sized for SLUICE_RPC_CALLS_MAX calls */
	if (call_id)
		*call_id = (uint64_t)k->gen << 32 | k->slot;
	k->in_submit = true;
	call_dispatch(k); /* may finish k; the callback is then deferred a turn */
	k->in_submit = false;
	return 0;
}

void rpc_cancel(struct rpc_client *c, uint64_t call_id)
{
	uint32_t slot = (uint32_t)call_id;
	struct call *k;

	ASSERT(reactor_on_thread(c->r));
	if (slot >= c->cfg.max_calls)
		return;
	k = &c->calls[slot];
	if (k->gen != (uint32_t)(call_id >> 32) || k->state == CALL_FREE ||
	    k->state == CALL_FINISHED)
		return;
	call_finish(k, -SLUICE_ECANCELED);
}

void rpc_result_release(struct rpc_result *res)
{
	if (res->resp)
		protobuf_c_message_free_unpacked(res->resp, NULL);
	buf_put(res->resp_bulk);
	free(res->error_detail);
	res->resp = NULL;
	res->resp_bulk = NULL;
	res->error_detail = NULL;
}

struct reactor *rpc_client_reactor(const struct rpc_client *c)
{
	return c->r;
}

int rpc_client_create(struct reactor *r, const struct rpc_client_cfg *cfg, struct rpc_client **out)
{
	struct rpc_client *c;

	ASSERT(cfg && cfg->pool);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->r = r;
	c->cfg = *cfg;
	if (!c->cfg.conns_per_peer)
		c->cfg.conns_per_peer = 1;
	if (c->cfg.conns_per_peer > SLUICE_RPC_CONNS_PER_PEER_MAX)
		c->cfg.conns_per_peer = SLUICE_RPC_CONNS_PER_PEER_MAX;
	if (!c->cfg.max_calls)
		c->cfg.max_calls = DEFAULT_MAX_CALLS;
	if (c->cfg.max_calls > SLUICE_RPC_CALLS_MAX)
		c->cfg.max_calls = SLUICE_RPC_CALLS_MAX;
	if (!c->cfg.default_timeout_ms)
		c->cfg.default_timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!c->cfg.default_retries)
		c->cfg.default_retries = DEFAULT_RETRIES;
	if (!c->cfg.retry_backoff_ms)
		c->cfg.retry_backoff_ms = DEFAULT_BACKOFF_MS;
	c->calls = calloc(c->cfg.max_calls, sizeof(*c->calls));
	if (!c->calls) {
		free(c);
		return -ENOMEM;
	}
	for (unsigned i = c->cfg.max_calls; i-- > 0;) {
		struct call *k = &c->calls[i];

		k->cl = c;
		k->slot = i;
		k->gen = 1;
		reactor_timer_init(&k->timer, call_timer_fired);
		k->next_free = c->free_calls;
		c->free_calls = k;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	*out = c;
	return 0;
}

/* On the reactor: finish every call, close every connection. */
static void destroy_on_reactor(struct reactor_msg *m)
{
	struct rpc_client *c = SLUICE_CONTAINER_OF(m, struct rpc_client, destroy_msg);

	c->shutting_down = true;
	for (unsigned i = 0; i < c->cfg.max_calls; i++) {
		struct call *k = &c->calls[i];

		if (k->state != CALL_FREE && k->state != CALL_FINISHED)
			call_finish(k, -SLUICE_ESHUTDOWN);
	}
	for (unsigned b = 0; b < PEER_BUCKETS; b++)
		for (struct peer *p = c->buckets[b]; p; p = p->hnext)
			for (unsigned i = 0; i < p->nconns; i++)
				net_close(p->conns[i]->nc, -SLUICE_ESHUTDOWN);
	check_drained(c);
}

void rpc_client_destroy(struct rpc_client *c)
{
	if (!c)
		return;
	ASSERT(!reactor_on_thread(c->r));
	c->destroy_msg.fn = destroy_on_reactor;
	reactor_post_wait(c->r, &c->destroy_msg);
	pthread_mutex_lock(&c->mu);
	while (!c->drained)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	for (unsigned b = 0; b < PEER_BUCKETS; b++) {
		while (c->buckets[b]) {
			struct peer *p = c->buckets[b];

			c->buckets[b] = p->hnext;
			free(p);
		}
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->calls);
	free(c);
}

/* ---- blocking calls ------------------------------------------------------------------- */

struct sync_call {
	struct reactor_msg msg;
	struct rpc_client *c;
	const char *peer;
	const struct rpc_service_desc *svc;
	uint16_t op;
	const ProtobufCMessage *req;
	const struct rpc_call_opts *opts;
	struct rpc_result *res;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void sync_signal(struct sync_call *s)
{
	pthread_mutex_lock(&s->mu);
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void sync_done(struct rpc_result *res, void *arg)
{
	struct sync_call *s = arg;

	*s->res = *res; /* ownership moves to the blocked caller */
	sync_signal(s);
}

static void sync_start(struct reactor_msg *m)
{
	struct sync_call *s = SLUICE_CONTAINER_OF(m, struct sync_call, msg);
	int rc = rpc_call(s->c, s->peer, s->svc, s->op, s->req, s->opts, sync_done, s, NULL);

	if (rc) {
		*s->res = (struct rpc_result){.status = rc};
		sync_signal(s);
	}
}

int rpc_call_sync(struct rpc_client *c, const char *peer, const struct rpc_service_desc *svc,
		  uint16_t op, const ProtobufCMessage *req, const struct rpc_call_opts *opts,
		  struct rpc_result *res)
{
	struct sync_call s = {
		.msg.fn = sync_start,
		.c = c,
		.peer = peer,
		.svc = svc,
		.op = op,
		.req = req,
		.opts = opts,
		.res = res,
	};

	ASSERT(!reactor_on_thread(c->r));
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	reactor_post_wait(c->r, &s.msg);
	pthread_mutex_lock(&s.mu);
	while (!s.done)
		pthread_cond_wait(&s.cv, &s.mu);
	pthread_mutex_unlock(&s.mu);
	pthread_mutex_destroy(&s.mu);
	pthread_cond_destroy(&s.cv);
	return res->status;
}
