/*
 * net_tcp.c - the TCP transport backend on the reactor.
 *
 * DESIGN
 * Sockets are non-blocking. Readiness comes from one-shot IORING_OP_POLL_ADD requests on
 * the owning reactor's io_uring; the actual I/O is recvmsg/sendmsg on the socket, repeated
 * until EAGAIN, after which a poll is armed again. A busy stream therefore costs one
 * syscall per read or write and no poll at all.
 *
 * Receiving: bytes land in a 64 KiB staging buffer per connection, from which headers are
 * decoded (frame_hdr_decode validates everything before any allocation) and small payloads
 * copied into pooled buffers. Large payloads and bulks are read straight into their final
 * buffer - a pooled one, or the caller's memory named by handler->bulk_dest - with a readv
 * whose second vector is the staging buffer, so the next header arrives in the same call.
 * CRCs are checked before a frame is delivered. If the pool is out of budget the connection
 * stops reading and retries on a short backoff timer: the peer sees TCP backpressure.
 *
 * Sending: net_send queues the frame and schedules one flush per reactor turn (a message to
 * the connection's own reactor), so frames queued while handling a batch of completions go
 * out in a single sendmsg gathering up to SLUICE_NET_SEND_IOV_MAX vectors. When the socket
 * is full a POLLOUT is armed. A peer that stops reading is closed after
 * SLUICE_NET_STALL_TIMEOUT_MS without progress; one that sends nothing after idle_timeout.
 *
 * Closing: net_close (or any error) marks the connection closing, closes the socket after
 * removing its polls, and defers the notifications - failed sends, then on_close - to a
 * zero-delay timer, so callers never see their own callbacks re-entered from net_close. The
 * memory is freed when the last pending poll completion has come back (refs).
 *
 * Listening on several reactors (net_listener_share): every listener belongs to a group
 * (struct tcp_lgroup) - alone, or with the listeners that share its address. Only the
 * listener that opened the socket (the acceptor) polls and accepts; each accepted socket is
 * assigned to the member with the fewest connections (in transit or open), round robin
 * among equals, and handed to that member's reactor by a message carrying the fd; the
 * connection is created there and announced by that member's on_accept. The kernel's own
 * spreading (SO_REUSEPORT, one socket per reactor) was not used because it hashes the
 * 4-tuple: with few connections it often stacks them on one reactor (2 connections over 2
 * listeners land on the same one half of the time), which is exactly the case of a client
 * node opening a handful of connections for bulk traffic. Handing accepted sockets over is
 * what folly (3FS's base) and Seastar do.
 *
 * THREADS: everything runs on the reactor that created the connection or listener, except
 * the group: its member list is guarded by its mutex, a listener's refs and nconns are
 * atomics (the acceptor's reactor counts a handed-over connection against the member that
 * will own it), and the handoff message runs on the member's reactor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net/net.h"
#include "common/reactor.h"

LOG_FACILITY("net");

#define TCP_CONNECT_TIMEOUT_MS 5000u
#define TCP_CHECK_INTERVAL_MS  1000u
#define TCP_BACKOFF_MIN_MS     1u
#define TCP_BACKOFF_MAX_MS     64u
#define TCP_READS_PER_EVENT    32 /* work budget per readiness event (STYLE: loops over input) */
/*
 * Send and receive buffer size per socket (the kernel doubles it: 4 MiB each), enough for
 * about 300 us of 100 Gbit/s. Bigger is slower: a sender runs that much further ahead of
 * a receiver that is off the CPU, and the bytes it queues go cold in the cache before they
 * are copied out - with 4 MiB here (8 MiB each) the loopback RPC benchmark (4 MiB calls)
 * moved ~25% less per CPU second than with 2 MiB. 2 MiB also beat autotuning by ~5%
 * (receive autotuning grows the buffer to tcp_rmem's maximum, 32 MiB here) and 1 MiB was
 * no better. See sockbuf_bytes for when the kernel would not grant it.
 */
#define TCP_SOCKBUF_BYTES (2 * 1024 * 1024)
/* Stage bytes read along with the rest of a large payload or bulk: room for the next
 * frame's header and a small payload. Filling the whole stage there would mostly pull the
 * next frame's bulk into it, to be copied out again (6% of a 1 MiB bulk stream). */
#define TCP_STAGE_TAIL_BYTES 4096u

enum conn_state { CONN_CONNECTING, CONN_OPEN, CONN_CLOSING };
enum rx_phase { RX_HDR, RX_PAYLOAD, RX_BULK };

struct tcp_lgroup;

struct tcp_listener {
	struct net_conn_base base; /* first: net.c dispatches through it */
	int fd;			   /* -1 for a listener sharing another one's socket */
	struct reactor *r;
	struct net_addr addr;
	struct net_listen_cfg cfg;
	void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg);
	void *arg;
	struct reactor_io poll_io;
	bool poll_armed;
	bool closing;
	struct tcp_lgroup *group; /* set before the listener is published, then constant */
	/* Atomics (the group's acceptor updates them from its own reactor): */
	uint32_t nconns; /* connections assigned to this listener: in transit or open */
	uint32_t refs;	 /* 1 while open + 1 per assigned connection + 1 per armed poll */
};

/* Listeners sharing one listening socket; the first member is the acceptor. */
struct tcp_lgroup {
	pthread_mutex_t mu; /* guards members, nmembers and next */
	struct tcp_listener *members[SLUICE_NET_LISTEN_SHARE_MAX];
	unsigned nmembers;
	unsigned next; /* where the search for the least loaded member starts */
	uint32_t refs; /* atomic: listeners whose memory points here */
};

/* An accepted socket on its way to the reactor of the member that will own it. */
struct tcp_handoff {
	struct reactor_msg msg;
	struct tcp_listener *to; /* holds one of to's refs and one of its nconns */
	int fd;
};

struct tcp_conn {
	struct net_conn_base base; /* first */
	int fd;
	enum conn_state state;
	int close_reason;
	const struct net_handler *h;
	void *arg;
	struct bufpool *pool;
	struct tcp_listener *listener; /* accepted connections: counts against max_conns */
	uint32_t refs;		       /* 1 until on_close was delivered + 1 per armed poll */

	struct reactor_io in_io, out_io;
	bool in_armed, out_armed;
	bool paused;  /* by the layer above */
	bool busy;    /* the layer above owes the peer replies: not idle */
	bool starved; /* by an empty buffer pool; retry_timer armed */
	uint32_t backoff_ms;

	/* receive state */
	uint8_t *stage;
	size_t stage_off, stage_len; /* unconsumed bytes are stage[stage_off, stage_len) */
	enum rx_phase phase;
	struct frame_hdr rx;
	struct buf *rx_payload, *rx_bulk;
	uint8_t *rx_dst; /* where the current payload or bulk goes */
	size_t rx_need, rx_got;

	/* send queue */
	struct net_send *sq_head, *sq_tail;
	bool flush_posted;
	struct reactor_msg flush_msg;

	/* timers */
	struct reactor_timer check_timer;  /* idle, stall and connect timeouts */
	struct reactor_timer retry_timer;  /* pool backoff */
	struct reactor_timer notify_timer; /* deferred close notifications */
	uint64_t last_rx_ns, last_tx_ns, started_ns;
	uint64_t frame_deadline_ns; /* the frame being received must be complete by then */
	uint32_t idle_timeout_ms, stall_timeout_ms, connect_timeout_ms;
};

static uint64_t next_conn_id = 1;

static struct tcp_conn *conn_of(struct net_conn *c)
{
	return (struct tcp_conn *)(void *)c;
}
static struct net_conn *as_net(struct tcp_conn *c)
{
	return (struct net_conn *)(void *)c;
}
static struct reactor *reactor_of(struct tcp_conn *c)
{
	return c->base.reactor;
}

static void conn_close(struct tcp_conn *c, int reason, const char *why);
static void rx_drive(struct tcp_conn *c);
static void tx_drive(struct tcp_conn *c);

/* ---- reference counting and teardown ---------------------------------------------------- */

static void lgroup_unref(struct tcp_lgroup *g)
{
	uint32_t old = __atomic_fetch_sub(&g->refs, 1, __ATOMIC_ACQ_REL);

	ASSERT(old > 0);
	if (old > 1)
		return;
	ASSERT(g->nmembers == 0);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* Any thread: the last reference may be dropped on the acceptor's reactor (a handoff that
 * could not be delivered); by then nothing else points at l. */
static void listener_unref(struct tcp_listener *l)
{
	uint32_t old = __atomic_fetch_sub(&l->refs, 1, __ATOMIC_ACQ_REL);

	ASSERT(old > 0);
	if (old > 1)
		return;
	if (l->group)
		lgroup_unref(l->group);
	free(l);
}

static void listener_ref(struct tcp_listener *l)
{
	__atomic_fetch_add(&l->refs, 1, __ATOMIC_RELAXED);
}

/* Give back a connection slot taken by lgroup_pick: the connection is gone or never was. */
static void listener_slot_put(struct tcp_listener *l)
{
	uint32_t old = __atomic_fetch_sub(&l->nconns, 1, __ATOMIC_RELAXED);

	ASSERT(old > 0);
	listener_unref(l);
}

static void conn_unref(struct tcp_conn *c)
{
	ASSERT(c->refs > 0);
	if (--c->refs > 0)
		return;
	ASSERT(c->state == CONN_CLOSING && !c->in_armed && !c->out_armed);
	if (c->listener)
		listener_slot_put(c->listener);
	free(c->stage);
	free(c);
}

static void arm_poll(struct tcp_conn *c, struct reactor_io *io, bool *armed, short events)
{
	struct io_uring_sqe *sqe;

	if (*armed)
		return;
	sqe = reactor_sqe(reactor_of(c), io);
	if (!sqe) {
		conn_close(c, -EIO, "io_uring refused a poll");
		return;
	}
	io_uring_prep_poll_add(sqe, c->fd, (unsigned)events);
	*armed = true;
	c->refs++;
}

static void cancel_poll(struct reactor *r, struct reactor_io *io, bool armed)
{
	struct io_uring_sqe *sqe;

	if (!armed)
		return;
	/* Completion of the removal itself carries no reactor_io (user_data NULL). */
	sqe = reactor_sqe(r, NULL);
	ASSERT(sqe); /* the reactor flushes a full SQ, so only a broken ring fails here */
	io_uring_prep_poll_remove(sqe, (__u64)(uintptr_t)io);
}

static void rx_release(struct tcp_conn *c)
{
	buf_put(c->rx_payload);
	buf_put(c->rx_bulk);
	c->rx_payload = c->rx_bulk = NULL;
	c->rx_dst = NULL;
}

/* Runs from the notify timer: a turn after the close, outside any caller's stack. */
static void notify_closed(struct reactor_timer *t)
{
	struct tcp_conn *c = SLUICE_CONTAINER_OF(t, struct tcp_conn, notify_timer);
	int send_rc = c->close_reason < 0 ? c->close_reason : -SLUICE_ECONNLOST;

	while (c->sq_head) {
		struct net_send *s = c->sq_head;

		c->sq_head = s->next_;
		s->done(s, send_rc);
	}
	c->sq_tail = NULL;
	if (c->h && c->h->on_close)
		c->h->on_close(as_net(c), c->close_reason, c->arg);
	conn_unref(c);
}

static void conn_close(struct tcp_conn *c, int reason, const char *why)
{
	struct reactor *r = reactor_of(c);

	if (c->state == CONN_CLOSING)
		return;
	if (reason < 0 && why)
		log_debug("conn %llu closing: %s: %s (%d)", (unsigned long long)c->base.id, why,
			  sluice_strerror(reason), reason);
	c->state = CONN_CLOSING;
	c->close_reason = reason;
	cancel_poll(r, &c->in_io, c->in_armed);
	cancel_poll(r, &c->out_io, c->out_armed);
	reactor_timer_cancel(r, &c->check_timer);
	reactor_timer_cancel(r, &c->retry_timer);
	rx_release(c);
	/* The removals name the polls by user_data, not fd, so closing now is safe. */
	close(c->fd);
	c->fd = -1;
	if (reactor_timer_arm(r, &c->notify_timer, 0) != 0)
		notify_closed(&c->notify_timer); /* timer heap full: notify inline */
}

/* ---- socket setup ------------------------------------------------------------------------- */

static int to_sockaddr(const struct net_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	const char *host = strcmp(a->host, "localhost") == 0 ? "127.0.0.1" : a->host;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

/*
 * The socket buffer size to set, or 0 to leave both buffers to the kernel's autotuning.
 * A fixed size only helps when the kernel grants it: above net.core.wmem_max/rmem_max it is
 * clamped (to 208 KiB on a stock kernel) and the buffer then neither has the size asked
 * for nor grows, which is worse than autotuning. So one probe socket per process checks
 * what the kernel grants (it doubles the value for its bookkeeping). Any thread: racing
 * probes reach the same answer.
 */
static int sockbuf_bytes(void)
{
	static int cached = -1;
	int v = __atomic_load_n(&cached, __ATOMIC_RELAXED), want = TCP_SOCKBUF_BYTES, snd = 0,
	    rcv = 0, fd;
	socklen_t len = sizeof(int);

	if (v >= 0)
		return v;
	v = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want)) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, &len) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len) == 0 && snd >= 2 * want &&
	    rcv >= 2 * want)
		v = want;
	if (fd >= 0)
		close(fd);
	log_debug("socket buffers: %s", v ? "fixed" : "autotuned (the kernel clamps fixed ones)");
	__atomic_store_n(&cached, v, __ATOMIC_RELAXED);
	return v;
}

static void tune_socket(int fd)
{
	int one = 1, sz = sockbuf_bytes();

	/* Small RPCs must not wait for Nagle. Failures only cost performance, so they are
	 * ignored on purpose. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (sz) {
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
}

static void check_timer_fired(struct reactor_timer *t);
static void retry_timer_fired(struct reactor_timer *t);
static void in_ready(struct reactor_io *io, int res, uint32_t flags);
static void out_ready(struct reactor_io *io, int res, uint32_t flags);

static struct tcp_conn *conn_new(struct reactor *r, int fd, struct bufpool *pool)
{
	struct tcp_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->stage = malloc(SLUICE_NET_RECV_STAGE_BYTES);
	if (!c->stage) {
		free(c);
		return NULL;
	}
	c->base.ops = &net_tcp_ops;
	c->base.reactor = r;
	c->base.id = __atomic_fetch_add(&next_conn_id, 1, __ATOMIC_RELAXED); /* for logs */
	c->fd = fd;
	c->pool = pool;
	c->refs = 1;
	c->in_io.cb = in_ready;
	c->out_io.cb = out_ready;
	c->backoff_ms = TCP_BACKOFF_MIN_MS;
	c->stall_timeout_ms = SLUICE_NET_STALL_TIMEOUT_MS;
	reactor_timer_init(&c->check_timer, check_timer_fired);
	reactor_timer_init(&c->retry_timer, retry_timer_fired);
	reactor_timer_init(&c->notify_timer, notify_closed);
	c->started_ns = c->last_rx_ns = c->last_tx_ns = reactor_now_ns(r);
	tune_socket(fd);
	return c;
}

static void arm_check_timer(struct tcp_conn *c)
{
	if (reactor_timer_arm(reactor_of(c), &c->check_timer,
			      TCP_CHECK_INTERVAL_MS * ENV_NS_PER_MS) != 0)
		log_debug("conn %llu: timer heap full, timeouts unchecked this interval",
			  (unsigned long long)c->base.id);
}

/* Idle, stall and connect timeouts, checked once a second per connection. */
static void check_timer_fired(struct reactor_timer *t)
{
	struct tcp_conn *c = SLUICE_CONTAINER_OF(t, struct tcp_conn, check_timer);
	uint64_t now = reactor_now_ns(reactor_of(c));

	if (c->state == CONN_CONNECTING &&
	    now - c->started_ns >= (uint64_t)c->connect_timeout_ms * ENV_NS_PER_MS) {
		conn_close(c, -ETIMEDOUT, "connect timed out");
		return;
	}
	if (c->phase != RX_HDR && now > c->frame_deadline_ns) {
		conn_close(c, -ETIMEDOUT, "frame arriving too slowly");
		return;
	}
	if (c->sq_head && now - c->last_tx_ns >= (uint64_t)c->stall_timeout_ms * ENV_NS_PER_MS) {
		conn_close(c, -ETIMEDOUT, "peer stopped reading");
		return;
	}
	/* Not while paused or starved: then it is us, not the peer, who stopped reading. */
	if (c->idle_timeout_ms && !c->sq_head && !c->paused && !c->starved && !c->busy &&
	    now - c->last_rx_ns >= (uint64_t)c->idle_timeout_ms * ENV_NS_PER_MS) {
		conn_close(c, -ETIMEDOUT, "idle timeout");
		return;
	}
	arm_check_timer(c);
}

/* ---- receiving ---------------------------------------------------------------------------- */

static size_t stage_avail(const struct tcp_conn *c)
{
	return c->stage_len - c->stage_off;
}

/* Get a pooled buffer or start backing off; false means "stop reading for now". */
static bool rx_get_buf(struct tcp_conn *c, size_t len, struct buf **out)
{
	int rc = bufpool_get(c->pool, len, out);

	if (rc == 0) {
		c->backoff_ms = TCP_BACKOFF_MIN_MS;
		return true;
	}
	if (rc != -EAGAIN) {
		conn_close(c, rc, "receive buffer allocation failed");
		return false;
	}
	c->starved = true;
	if (reactor_timer_arm(reactor_of(c), &c->retry_timer, c->backoff_ms * ENV_NS_PER_MS))
		conn_close(c, -ENOMEM, "no timer for pool backoff");
	if (c->backoff_ms < TCP_BACKOFF_MAX_MS)
		c->backoff_ms *= 2;
	return false;
}

static void retry_timer_fired(struct reactor_timer *t)
{
	struct tcp_conn *c = SLUICE_CONTAINER_OF(t, struct tcp_conn, retry_timer);

	c->starved = false;
	rx_drive(c);
}

static void rx_reset(struct tcp_conn *c)
{
	c->phase = RX_HDR;
	c->rx_payload = c->rx_bulk = NULL;
	c->rx_dst = NULL;
	c->rx_need = c->rx_got = 0;
}

/* Header complete in the stage: validate and set up the payload phase. */
static bool rx_begin_frame(struct tcp_conn *c)
{
	const char *why = NULL;
	int rc = frame_hdr_decode(c->stage + c->stage_off, &c->rx, &why);

	if (rc) {
		log_debug("conn %llu: bad frame header: %s", (unsigned long long)c->base.id, why);
		conn_close(c, rc, why);
		return false;
	}
	c->stage_off += FRAME_HDR_SIZE;
	c->frame_deadline_ns = reactor_now_ns(reactor_of(c)) +
			       (uint64_t)SLUICE_NET_FRAME_GRACE_MS * ENV_NS_PER_MS +
			       ((uint64_t)c->rx.payload_len + c->rx.bulk_len) * ENV_NS_PER_S /
				       SLUICE_NET_FRAME_MIN_RATE;
	c->phase = RX_PAYLOAD;
	c->rx_need = c->rx.payload_len;
	c->rx_got = 0;
	return true;
}

/* Find where the current payload or bulk goes: a pooled buffer or the caller's memory.
 * May run more than once for a frame when the pool is starved (so may bulk_dest). */
static bool rx_setup_dst(struct tcp_conn *c)
{
	void *dst = NULL;

	if (c->phase == RX_PAYLOAD) {
		if (!rx_get_buf(c, c->rx_need, &c->rx_payload))
			return false;
		c->rx_dst = c->rx_payload->data;
		return true;
	}
	if (c->h->bulk_dest && c->h->bulk_dest(as_net(c), &c->rx, &dst, c->arg)) {
		c->rx_dst = dst;
		return true;
	}
	if (!rx_get_buf(c, c->rx_need, &c->rx_bulk))
		return false;
	c->rx_dst = c->rx_bulk->data;
	return true;
}

static void rx_deliver(struct tcp_conn *c)
{
	struct buf *payload = c->rx_payload, *bulk = c->rx_bulk;
	struct frame_hdr h = c->rx;

	if (payload && crc32c(0, payload->data, h.payload_len) != h.payload_crc) {
		conn_close(c, -SLUICE_ECRC, "payload crc mismatch");
		return;
	}
	if ((h.flags & FRAME_F_BULK_CRC) && h.bulk_len &&
	    crc32c(0, c->rx_dst, h.bulk_len) != h.bulk_crc) {
		conn_close(c, -SLUICE_ECRC, "bulk crc mismatch");
		return;
	}
	if (payload)
		payload->len = h.payload_len;
	if (bulk)
		bulk->len = h.bulk_len;
	rx_reset(c);
	c->h->on_frame(as_net(c), &h, payload, bulk, c->arg);
}

/* Move staged bytes into the current payload or bulk. True when it is complete. */
static bool rx_fill(struct tcp_conn *c)
{
	size_t n = c->rx_need - c->rx_got;

	if (n > stage_avail(c))
		n = stage_avail(c);
	if (n) {
		memcpy(c->rx_dst + c->rx_got, c->stage + c->stage_off, n);
		c->stage_off += n;
		c->rx_got += n;
	}
	return c->rx_got == c->rx_need;
}

/*
 * Advance the frame state machine using the bytes in the stage. Returns true when it needs
 * more bytes from the socket, false when it must stop (closed, starved or paused).
 */
static bool rx_parse(struct tcp_conn *c)
{
	for (;;) {
		if (c->state != CONN_OPEN || c->paused || c->starved)
			return false;
		if (c->phase == RX_HDR) {
			if (stage_avail(c) < FRAME_HDR_SIZE)
				return true;
			if (!rx_begin_frame(c))
				return false;
			continue;
		}
		if (c->rx_need && !c->rx_dst && !rx_setup_dst(c))
			return false;
		if (!rx_fill(c))
			return true;
		if (c->phase == RX_PAYLOAD) {
			c->phase = RX_BULK;
			c->rx_need = c->rx.bulk_len;
			c->rx_got = 0;
			c->rx_dst = NULL;
		} else {
			rx_deliver(c);
		}
	}
}

/* One read: into the current frame's buffer and the stage at once, or the stage alone. */
static ssize_t rx_read(struct tcp_conn *c)
{
	struct iovec iov[2];
	struct msghdr mh = {.msg_iov = iov};
	size_t direct = c->phase != RX_HDR && c->rx_dst ? c->rx_need - c->rx_got : 0, room;
	ssize_t n;

	if (c->stage_off == c->stage_len)
		c->stage_off = c->stage_len = 0;
	else if (c->stage_off > 0 && direct == 0) {
		memmove(c->stage, c->stage + c->stage_off, stage_avail(c));
		c->stage_len -= c->stage_off;
		c->stage_off = 0;
	}
	if (direct) {
		iov[mh.msg_iovlen++] = (struct iovec){c->rx_dst + c->rx_got, direct};
		ASSERT(stage_avail(c) == 0);
		c->stage_off = c->stage_len = 0;
	}
	room = SLUICE_NET_RECV_STAGE_BYTES - c->stage_len;
	if (direct && room > TCP_STAGE_TAIL_BYTES)
		room = TCP_STAGE_TAIL_BYTES;
	iov[mh.msg_iovlen++] = (struct iovec){c->stage + c->stage_len, room};
	do
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	if ((size_t)n <= direct) {
		c->rx_got += (size_t)n;
	} else {
		c->rx_got += direct;
		c->stage_len += (size_t)n - direct;
	}
	c->last_rx_ns = reactor_now_ns(reactor_of(c));
	return n;
}

static void rx_drive(struct tcp_conn *c)
{
	c->refs++; /* callbacks below may close c; keep the memory until we return */
	for (int i = 0; i < TCP_READS_PER_EVENT; i++) {
		ssize_t n;

		if (!rx_parse(c))
			break;
		n = rx_read(c);
		if (n == -EAGAIN || n == -EWOULDBLOCK) {
			arm_poll(c, &c->in_io, &c->in_armed, POLLIN);
			break;
		}
		if (n <= 0) {
			conn_close(c, n == 0 ? -ECONNRESET : (int)n,
				   n == 0 ? "peer closed" : "recv failed");
			break;
		}
		if (i == TCP_READS_PER_EVENT - 1 && rx_parse(c))
			arm_poll(c, &c->in_io, &c->in_armed, POLLIN); /* budget used: yield */
	}
	conn_unref(c);
}

static void in_ready(struct reactor_io *io, int res, uint32_t flags)
{
	struct tcp_conn *c = SLUICE_CONTAINER_OF(io, struct tcp_conn, in_io);

	c->in_armed = false;
	if (c->state == CONN_OPEN && res >= 0)
		rx_drive(c);
	else if (c->state == CONN_OPEN)
		conn_close(c, res, "poll failed");
	conn_unref(c);
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Gather the unsent parts of queued frames into iov; returns the count. */
static unsigned tx_gather(struct tcp_conn *c, struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	for (struct net_send *s = c->sq_head; s && n + 2 + s->nbulk <= max; s = s->next_) {
		size_t skip = s->sent_;
		struct iovec parts[SLUICE_NET_SEND_IOV_MAX];
		unsigned np = 0;

		parts[np++] = (struct iovec){s->wire_hdr_, FRAME_HDR_SIZE};
		parts[np++] = s->payload;
		for (unsigned i = 0; i < s->nbulk; i++)
			parts[np++] = s->bulk[i];
		for (unsigned i = 0; i < np; i++) {
			if (parts[i].iov_len <= skip) {
				skip -= parts[i].iov_len;
				continue;
			}
			iov[n++] = (struct iovec){(char *)parts[i].iov_base + skip,
						  parts[i].iov_len - skip};
			skip = 0;
		}
	}
	return n;
}

/* Account n written bytes; complete the frames that are now fully sent. */
static void tx_advance(struct tcp_conn *c, size_t n)
{
	while (n > 0 || (c->sq_head && c->sq_head->sent_ == c->sq_head->total_)) {
		struct net_send *s = c->sq_head;
		size_t left = s->total_ - s->sent_;
		size_t take = n < left ? n : left;

		s->sent_ += take;
		n -= take;
		if (s->sent_ < s->total_)
			break;
		c->sq_head = s->next_;
		if (!c->sq_head)
			c->sq_tail = NULL;
		s->done(s, 0);
		if (c->state != CONN_OPEN)
			return;
	}
}

static void tx_drive(struct tcp_conn *c)
{
	struct iovec iov[SLUICE_NET_SEND_IOV_MAX];

	c->refs++;
	while (c->state == CONN_OPEN && c->sq_head && !c->out_armed) {
		struct msghdr mh = {.msg_iov = iov};
		ssize_t n;

		mh.msg_iovlen = tx_gather(c, iov, SLUICE_NET_SEND_IOV_MAX);
		ASSERT(mh.msg_iovlen > 0);
		do
			n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			arm_poll(c, &c->out_io, &c->out_armed, POLLOUT);
			break;
		}
		if (n < 0) {
			conn_close(c, -errno, "send failed");
			break;
		}
		c->last_tx_ns = reactor_now_ns(reactor_of(c));
		tx_advance(c, (size_t)n);
	}
	conn_unref(c);
}

static void out_ready(struct reactor_io *io, int res, uint32_t flags)
{
	struct tcp_conn *c = SLUICE_CONTAINER_OF(io, struct tcp_conn, out_io);

	c->out_armed = false;
	if (c->state == CONN_CONNECTING && res >= 0) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			conn_close(c, -err, "connect failed");
		} else {
			c->state = CONN_OPEN;
			c->last_rx_ns = c->last_tx_ns = reactor_now_ns(reactor_of(c));
			if (c->h->on_connected)
				c->h->on_connected(as_net(c), c->arg);
			if (c->state == CONN_OPEN)
				rx_drive(c);
			if (c->state == CONN_OPEN)
				tx_drive(c);
		}
	} else if (c->state != CONN_CLOSING && res >= 0) {
		tx_drive(c);
	} else if (c->state != CONN_CLOSING) {
		conn_close(c, res, "poll failed");
	}
	conn_unref(c);
}

static void flush_msg_fn(struct reactor_msg *m)
{
	struct tcp_conn *c = SLUICE_CONTAINER_OF(m, struct tcp_conn, flush_msg);

	c->flush_posted = false;
	if (c->state == CONN_OPEN)
		tx_drive(c);
	conn_unref(c); /* taken when the flush was posted */
}

static int tcp_send(struct net_conn *nc, struct net_send *s)
{
	struct tcp_conn *c = conn_of(nc);
	size_t bulk_len = 0;

	ASSERT(reactor_on_thread(reactor_of(c)));
	if (c->state == CONN_CLOSING)
		return -ENOTCONN;
	if (s->payload.iov_len > SLUICE_FRAME_PAYLOAD_MAX || s->nbulk > SLUICE_NET_SEND_IOV_MAX - 2)
		return -EINVAL;
	for (unsigned i = 0; i < s->nbulk; i++)
		bulk_len += s->bulk[i].iov_len;
	if (bulk_len > SLUICE_FRAME_BULK_MAX)
		return -EINVAL;
	s->hdr.payload_len = (uint32_t)s->payload.iov_len;
	s->hdr.bulk_len = (uint32_t)bulk_len;
	s->hdr.payload_crc = crc32c(0, s->payload.iov_base, s->payload.iov_len);
	s->hdr.bulk_crc = (s->hdr.flags & FRAME_F_BULK_CRC) ? crc32c_iov(0, s->bulk, s->nbulk) : 0;
	frame_hdr_encode(&s->hdr, s->wire_hdr_);
	s->sent_ = 0;
	s->total_ = FRAME_HDR_SIZE + s->payload.iov_len + bulk_len;
	s->next_ = NULL;
	if (c->sq_tail)
		c->sq_tail->next_ = s;
	else
		c->sq_head = s;
	c->sq_tail = s;
	if (!c->sq_head->next_)
		c->last_tx_ns = reactor_now_ns(reactor_of(c)); /* stall clock starts now */
	if (c->state != CONN_OPEN || c->out_armed || c->flush_posted)
		return 0;
	/* Coalesce: flush once this reactor turn's other sends are queued too. */
	c->flush_msg.fn = flush_msg_fn;
	if (reactor_post(reactor_of(c), &c->flush_msg) == 0) {
		c->flush_posted = true;
		c->refs++;
	} else {
		tx_drive(c);
	}
	return 0;
}

/* ---- connections: ops ----------------------------------------------------------------------- */

static void tcp_close(struct net_conn *nc, int reason)
{
	conn_close(conn_of(nc), reason, "closed by owner");
}

static void tcp_pause_recv(struct net_conn *nc, bool paused)
{
	struct tcp_conn *c = conn_of(nc);

	if (c->paused == paused)
		return;
	c->paused = paused;
	if (!paused && c->state == CONN_OPEN && !c->in_armed)
		rx_drive(c);
}

static void tcp_set_busy(struct net_conn *nc, bool busy)
{
	struct tcp_conn *c = conn_of(nc);

	if (c->busy && !busy)
		c->last_rx_ns = reactor_now_ns(reactor_of(c)); /* idle from the last reply */
	c->busy = busy;
}

static void tcp_set_handler(struct net_conn *nc, const struct net_handler *h, void *arg)
{
	struct tcp_conn *c = conn_of(nc);

	ASSERT(h && h->on_frame);
	c->h = h;
	c->arg = arg;
}

static int tcp_peer_name(const struct net_conn *nc, char *buf, size_t len)
{
	const struct tcp_conn *c = (const struct tcp_conn *)(const void *)nc;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	int n;

	if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0)
		return snprintf(buf, len, "tcp://?");
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		n = snprintf(buf, len, "tcp://[%s]:%u", host, (unsigned)port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		n = snprintf(buf, len, "tcp://%s:%u", host, (unsigned)port);
	}
	return n;
}

static int tcp_connect(struct reactor *r, const struct net_addr *a,
		       const struct net_connect_cfg *cfg, const struct net_handler *h, void *arg,
		       struct net_conn **out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct tcp_conn *c;
	int fd, rc;

	ASSERT(reactor_on_thread(r) && h && h->on_frame && cfg && cfg->pool);
	rc = to_sockaddr(a, &ss, &sl);
	if (rc)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	c = conn_new(r, fd, cfg->pool);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->h = h;
	c->arg = arg;
	c->state = CONN_CONNECTING;
	c->idle_timeout_ms = cfg->idle_timeout_ms;
	if (cfg->stall_timeout_ms)
		c->stall_timeout_ms = cfg->stall_timeout_ms;
	c->connect_timeout_ms =
		cfg->connect_timeout_ms ? cfg->connect_timeout_ms : TCP_CONNECT_TIMEOUT_MS;
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
		rc = -errno;
		free(c->stage);
		free(c);
		close(fd);
		return rc;
	}
	/* Even an immediate loopback success is reported through the POLLOUT path. */
	arm_poll(c, &c->out_io, &c->out_armed, POLLOUT);
	arm_check_timer(c);
	*out = as_net(c);
	return 0;
}

/* ---- listeners ------------------------------------------------------------------------------ */

static int lgroup_new(struct tcp_lgroup **out)
{
	struct tcp_lgroup *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return -ENOMEM;
	}
	*out = g;
	return 0;
}

/* Any thread. The listener keeps the group alive until its memory is freed. */
static int lgroup_join(struct tcp_lgroup *g, struct tcp_listener *l)
{
	pthread_mutex_lock(&g->mu);
	if (g->nmembers == SLUICE_NET_LISTEN_SHARE_MAX) {
		pthread_mutex_unlock(&g->mu);
		return -ENOSPC;
	}
	g->members[g->nmembers++] = l;
	pthread_mutex_unlock(&g->mu);
	__atomic_fetch_add(&g->refs, 1, __ATOMIC_RELAXED);
	l->group = g;
	return 0;
}

/* On l's reactor, when l closes: no new connection will be assigned to it. */
static void lgroup_leave(struct tcp_lgroup *g, struct tcp_listener *l)
{
	pthread_mutex_lock(&g->mu);
	for (unsigned i = 0; i < g->nmembers; i++) {
		if (g->members[i] == l) {
			g->members[i] = g->members[--g->nmembers];
			break;
		}
	}
	g->next = 0;
	pthread_mutex_unlock(&g->mu);
}

/*
 * On the acceptor's reactor: the member that will own a new connection - the fewest
 * assigned connections, round robin among equals. Takes a connection slot and a reference
 * on it (listener_slot_put gives both back); counting the slot now, not when the member
 * gets around to the handoff, keeps a burst of accepts from all picking the same member.
 */
static struct tcp_listener *lgroup_pick(struct tcp_lgroup *g)
{
	struct tcp_listener *best = NULL;
	uint32_t best_n = UINT32_MAX;
	unsigned best_i = 0;

	pthread_mutex_lock(&g->mu);
	for (unsigned k = 0; k < g->nmembers; k++) {
		unsigned i = (g->next + k) % g->nmembers;
		uint32_t n = __atomic_load_n(&g->members[i]->nconns, __ATOMIC_RELAXED);

		if (n < best_n) {
			best = g->members[i];
			best_n = n;
			best_i = i;
		}
	}
	if (best) {
		g->next = (best_i + 1) % g->nmembers;
		__atomic_fetch_add(&best->nconns, 1, __ATOMIC_RELAXED);
		listener_ref(best);
	}
	pthread_mutex_unlock(&g->mu);
	return best;
}

/* On l's reactor, holding a slot of l (lgroup_pick): make fd a connection of l. */
static void accept_one(struct tcp_listener *l, int fd)
{
	uint32_t n = __atomic_load_n(&l->nconns, __ATOMIC_RELAXED);
	struct tcp_conn *c;

	if (n > l->cfg.max_conns) { /* n counts this one */
		log_warn_rl("listener %s:%u: %u connections open, refusing one more", l->addr.host,
			    (unsigned)l->addr.port, n - 1);
		close(fd);
		listener_slot_put(l);
		return;
	}
	c = conn_new(l->r, fd, l->cfg.pool);
	if (!c) {
		close(fd);
		listener_slot_put(l);
		return;
	}
	c->state = CONN_OPEN;
	c->listener = l; /* the slot is the connection's now; conn_unref gives it back */
	c->idle_timeout_ms = l->cfg.idle_timeout_ms;
	c->stall_timeout_ms = l->cfg.stall_timeout_ms;
	l->on_accept((struct net_listener *)(void *)l, as_net(c), l->arg);
	ASSERT(c->h); /* on_accept must install a handler */
	arm_check_timer(c);
	rx_drive(c);
}

/* On the member's reactor: a socket accepted for it by the acceptor. */
static void handoff_fn(struct reactor_msg *m)
{
	struct tcp_handoff *h = SLUICE_CONTAINER_OF(m, struct tcp_handoff, msg);
	struct tcp_listener *to = h->to;
	int fd = h->fd;

	free(h);
	if (to->closing) { /* closed after the acceptor picked it: the peer sees a reset */
		close(fd);
		listener_slot_put(to);
		return;
	}
	accept_one(to, fd);
}

/* On the acceptor's reactor: give fd to the least loaded member of l's group. */
static void accept_assign(struct tcp_listener *l, int fd)
{
	struct tcp_listener *to = lgroup_pick(l->group);
	struct tcp_handoff *h;

	ASSERT(to); /* l is open, so it is a member */
	if (to == l) {
		accept_one(l, fd);
		return;
	}
	h = malloc(sizeof(*h)); /* control path: once per connection */
	if (h) {
		*h = (struct tcp_handoff){.msg.fn = handoff_fn, .to = to, .fd = fd};
		if (reactor_post(to->r, &h->msg) == 0)
			return;
		free(h);
	}
	/* The member's inbox is full or its reactor is stopping: serve it here. */
	log_debug("listener %s:%u: handoff failed, keeping the connection", l->addr.host,
		  (unsigned)l->addr.port);
	listener_slot_put(to);
	__atomic_fetch_add(&l->nconns, 1, __ATOMIC_RELAXED);
	listener_ref(l);
	accept_one(l, fd);
}

static void listener_arm(struct tcp_listener *l);

static void listener_ready(struct reactor_io *io, int res, uint32_t flags)
{
	struct tcp_listener *l = SLUICE_CONTAINER_OF(io, struct tcp_listener, poll_io);

	l->poll_armed = false;
	if (!l->closing) {
		for (int i = 0; i < TCP_READS_PER_EVENT; i++) {
			int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
					log_warn_rl("accept on port %u: %s", (unsigned)l->addr.port,
						    strerror(errno));
				break;
			}
			accept_assign(l, fd);
		}
		listener_arm(l);
	}
	listener_unref(l);
}

static void listener_arm(struct tcp_listener *l)
{
	struct io_uring_sqe *sqe = reactor_sqe(l->r, &l->poll_io);

	ASSERT(sqe);
	io_uring_prep_poll_add(sqe, l->fd, POLLIN);
	l->poll_armed = true;
	listener_ref(l);
}

static int listen_socket(const struct net_addr *a, int *out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd, rc = to_sockaddr(a, &ss, &sl);

	if (rc)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* A listener without socket or group yet. */
static struct tcp_listener *
listener_new(struct reactor *r, const struct net_addr *a, const struct net_listen_cfg *cfg,
	     void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg), void *arg)
{
	struct tcp_listener *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->base.ops = &net_tcp_ops;
	l->base.reactor = r;
	l->base.id = __atomic_fetch_add(&next_conn_id, 1, __ATOMIC_RELAXED);
	l->fd = -1;
	l->r = r;
	l->addr = *a;
	l->cfg = *cfg;
	if (!l->cfg.idle_timeout_ms)
		l->cfg.idle_timeout_ms = SLUICE_NET_IDLE_TIMEOUT_MS;
	if (!l->cfg.stall_timeout_ms)
		l->cfg.stall_timeout_ms = SLUICE_NET_STALL_TIMEOUT_MS;
	if (!l->cfg.max_conns || l->cfg.max_conns > SLUICE_NET_CONNS_MAX)
		l->cfg.max_conns = SLUICE_NET_CONNS_MAX;
	l->on_accept = on_accept;
	l->arg = arg;
	l->poll_io.cb = listener_ready;
	l->refs = 1;
	return l;
}

static int tcp_listen(struct reactor *r, const struct net_addr *a, const struct net_listen_cfg *cfg,
		      void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg),
		      void *arg, struct net_listener **out)
{
	struct tcp_listener *l;
	struct tcp_lgroup *g;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, rc;

	ASSERT(reactor_on_thread(r) && cfg && cfg->pool && on_accept);
	rc = listen_socket(a, &fd);
	if (rc)
		return rc;
	l = listener_new(r, a, cfg, on_accept, arg);
	rc = l ? lgroup_new(&g) : -ENOMEM;
	if (rc) {
		free(l);
		close(fd);
		return rc;
	}
	rc = lgroup_join(g, l); /* cannot fail: the group is empty */
	ASSERT(rc == 0);
	l->fd = fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		l->addr.port =
			ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
	listener_arm(l);
	*out = (struct net_listener *)(void *)l;
	return 0;
}

static int
tcp_listener_share(struct reactor *r, struct net_listener *nl, const struct net_listen_cfg *cfg,
		   void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg),
		   void *arg, struct net_listener **out)
{
	struct tcp_listener *src = (struct tcp_listener *)(void *)nl, *l;
	int rc;

	ASSERT(reactor_on_thread(r) && cfg && cfg->pool && on_accept);
	/* src's addr and group were set before it was published and never change. */
	l = listener_new(r, &src->addr, cfg, on_accept, arg);
	if (!l)
		return -ENOMEM;
	rc = lgroup_join(src->group, l);
	if (rc) {
		free(l);
		return rc;
	}
	*out = (struct net_listener *)(void *)l;
	return 0;
}

static void tcp_listener_close(struct net_listener *nl)
{
	struct tcp_listener *l = (struct tcp_listener *)(void *)nl;

	ASSERT(reactor_on_thread(l->r) && !l->closing);
	l->closing = true;
	lgroup_leave(l->group, l);
	if (l->fd >= 0) {
		cancel_poll(l->r, &l->poll_io, l->poll_armed);
		close(l->fd);
		l->fd = -1;
	}
	listener_unref(l);
}

static int tcp_listener_addr(const struct net_listener *nl, struct net_addr *out)
{
	*out = ((const struct tcp_listener *)(const void *)nl)->addr;
	return 0;
}

/* ---- registered memory and bulk: the TCP meaning ------------------------------------------ */

static int tcp_mr_register(struct reactor *r, void *addr, size_t len, struct net_mr *out)
{
	/* Nothing to pin: TCP copies through the kernel. Keep the bookkeeping uniform. */
	*out = (struct net_mr){.addr = addr, .len = len, .key = 0, .impl_ = NULL};
	return 0;
}

static void tcp_mr_deregister(struct net_mr *mr)
{
	memset(mr, 0, sizeof(*mr));
}

/* Over TCP the request's bulk arrived inside its frame: hand it over (or copy to dst). */
static int tcp_pull(struct net_conn *nc, const struct net_bulk *b, void *dst,
		    void (*done)(void *arg, int rc, struct buf *data), void *arg)
{
	if (!b->frame_bulk || b->frame_bulk->len < b->len)
		return -SLUICE_EPROTO;
	if (dst) {
		memcpy(dst, b->frame_bulk->data, b->len);
		buf_put(b->frame_bulk);
		done(arg, 0, NULL);
	} else {
		done(arg, 0, b->frame_bulk);
	}
	return 0;
}

const struct net_ops net_tcp_ops = {
	.scheme = "tcp",
	.listen = tcp_listen,
	.listener_close = tcp_listener_close,
	.listener_addr = tcp_listener_addr,
	.listener_share = tcp_listener_share,
	.connect = tcp_connect,
	.set_handler = tcp_set_handler,
	.send = tcp_send,
	.close = tcp_close,
	.pause_recv = tcp_pause_recv,
	.set_busy = tcp_set_busy,
	.mr_register = tcp_mr_register,
	.mr_deregister = tcp_mr_deregister,
	.pull = tcp_pull,
	.peer_name = tcp_peer_name,
};
