/*
 * net.h - the transport interface (DESIGN.md section 2, STYLE.md rule 12).
 *
 * A transport backend is an ops table (struct net_ops), registered once at startup and
 * selected by the scheme of an address URI ("tcp://127.0.0.1:7000", "rdma://10.0.0.5:7000").
 * The rest of Sluice sees only struct net_conn and frames (common/net/frame.h): it sends a
 * header + payload + bulk, and receives the same, already validated.
 *
 * Bulk data is shaped for RDMA. The side that serves a request moves the bulk:
 *  - pull: a request's bulk (write data) is fetched from the requester's registered memory;
 *  - push: a response's bulk (read data) is placed into the requester's registered memory.
 * Over TCP, the bulk travels inside the frame: "pull" completes at once from the frame that
 * was received, and "push" is sending the response with its bulk attached. The requester
 * names where a response bulk should land (bulk_dest) so TCP receives it straight into the
 * caller's buffer and RDMA can WRITE it there: zero extra copies either way.
 *
 * Threads: a connection belongs to the reactor it was created on; every function taking a
 * net_conn or net_listener must be called on that reactor's thread, and every callback runs
 * there. Completion rule: a call taking a callback that returns 0 runs it exactly once.
 */
#ifndef SLUICE_COMMON_NET_NET_H
#define SLUICE_COMMON_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/assert.h"
#include "common/bufpool.h"
#include "common/limits.h"
#include "common/net/frame.h"

struct reactor;
struct net_conn;
struct net_listener;

/* ---- addresses ------------------------------------------------------------------------ */

struct net_addr {
	char scheme[8]; /* "tcp", "rdma" */
	char host[64];	/* numeric IPv4/IPv6 or "localhost"; no DNS on the reactor */
	uint16_t port;	/* 0 when listening means "pick a free port" */
};

/* "tcp://127.0.0.1:7000", "tcp://[::1]:7000". -EINVAL on anything else (no partial parse). */
SLUICE_MUST_USE int net_addr_parse(const char *uri, struct net_addr *out);

/* Back to URI text. Returns the length, or -ENAMETOOLONG if it does not fit. */
int net_addr_format(const struct net_addr *a, char *buf, size_t len);

/* ---- receiving ------------------------------------------------------------------------ */

/* What a connection calls. Set on connect, or from the listener's on_accept. */
struct net_handler {
	/*
	 * A complete frame, header and CRCs validated. Ownership of payload and bulk passes to
	 * the callee (return them with buf_put). payload is NULL when payload_len is 0. bulk is
	 * NULL when bulk_len is 0 or when bulk_dest placed the bulk in the caller's memory.
	 */
	void (*on_frame)(struct net_conn *c, const struct frame_hdr *h, struct buf *payload,
			 struct buf *bulk, void *arg);
	/*
	 * Optional. Called once the header of a frame with a bulk is validated: return true and
	 * set *dst to memory of at least h->bulk_len bytes to receive the bulk there (it must
	 * stay valid until on_frame or on_close runs for this connection); false to receive it
	 * into a pool buffer.
	 */
	bool (*bulk_dest)(struct net_conn *c, const struct frame_hdr *h, void **dst, void *arg);
	/* Outbound connections: the connection is established (once, before any frame). */
	void (*on_connected)(struct net_conn *c, void *arg);
	/*
	 * Exactly once per connection, after which c is gone: reason 0 for a local net_close
	 * with 0, a negative error otherwise (connect failure, peer closed -ECONNRESET, bad
	 * frame -SLUICE_EPROTO/-SLUICE_ECRC/-SLUICE_ETOOBIG, idle -ETIMEDOUT). Every pending
	 * net_send has had its done callback before this runs.
	 */
	void (*on_close)(struct net_conn *c, int reason, void *arg);
};

/* ---- sending ------------------------------------------------------------------------- */

/*
 * A frame to send. The caller fills hdr.flags, opcode, status, req_id and timeout_ms, the
 * payload and bulk vectors and done; the transport fills the lengths and CRCs (bulk CRC only
 * if FRAME_F_BULK_CRC is in flags). The struct and every byte it points to belong to the
 * transport until done(s, rc) runs: rc 0 when fully handed to the kernel (or the RDMA
 * NIC), negative when the connection closed first.
 */
struct net_send {
	struct frame_hdr hdr;
	struct iovec payload;	  /* iov_len <= SLUICE_FRAME_PAYLOAD_MAX */
	const struct iovec *bulk; /* total <= SLUICE_FRAME_BULK_MAX */
	unsigned nbulk;		  /* <= SLUICE_NET_SEND_IOV_MAX - 2 */
	void (*done)(struct net_send *s, int rc);
	/* transport-private */
	uint8_t wire_hdr_[FRAME_HDR_SIZE];
	size_t sent_;
	size_t total_;
	struct net_send *next_;
};

/* ---- registered memory and bulk (RDMA-shaped) ------------------------------------------ */

/* A region registered with the transport so a peer may pull from or push into it. */
struct net_mr {
	void *addr;
	size_t len;
	uint32_t key; /* remote key; 0 for TCP */
	void *impl_;  /* backend handle (ibv_mr) */
};

/* Where a request's bulk lives. Over TCP: the bulk section of the received request frame. */
struct net_bulk {
	struct buf *frame_bulk; /* TCP: the received bulk */
	uint64_t remote_addr;	/* RDMA: requester's address, key and length */
	uint32_t remote_key;
	uint32_t len;
};

/* ---- the ops table --------------------------------------------------------------------- */

struct net_listen_cfg {
	struct bufpool *pool;	   /* receive buffers for payloads and bulks */
	uint32_t idle_timeout_ms;  /* close connections silent this long; 0 = default */
	uint32_t stall_timeout_ms; /* close peers not reading our frames; 0 = default */
	uint32_t max_conns;	   /* 0 = SLUICE_NET_CONNS_MAX */
};

struct net_connect_cfg {
	struct bufpool *pool;
	uint32_t connect_timeout_ms; /* 0 = 5000 */
	uint32_t idle_timeout_ms;    /* 0 = never (clients keep pooled connections) */
	uint32_t stall_timeout_ms;   /* 0 = SLUICE_NET_STALL_TIMEOUT_MS */
};

struct net_ops {
	const char *scheme;
	int (*listen)(struct reactor *r, const struct net_addr *a, const struct net_listen_cfg *cfg,
		      void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg),
		      void *arg, struct net_listener **out);
	void (*listener_close)(struct net_listener *l);
	int (*listener_addr)(const struct net_listener *l, struct net_addr *out);
	/* Optional (NULL: net_listener_share says -EOPNOTSUPP); see net_listener_share. */
	int (*listener_share)(struct reactor *r, struct net_listener *l,
			      const struct net_listen_cfg *cfg,
			      void (*on_accept)(struct net_listener *l, struct net_conn *c,
						void *arg),
			      void *arg, struct net_listener **out);
	int (*connect)(struct reactor *r, const struct net_addr *a,
		       const struct net_connect_cfg *cfg, const struct net_handler *h, void *arg,
		       struct net_conn **out);
	void (*set_handler)(struct net_conn *c, const struct net_handler *h, void *arg);
	int (*send)(struct net_conn *c, struct net_send *s);
	void (*close)(struct net_conn *c, int reason);
	void (*pause_recv)(struct net_conn *c, bool paused);
	void (*set_busy)(struct net_conn *c, bool busy);
	int (*mr_register)(struct reactor *r, void *addr, size_t len, struct net_mr *out);
	void (*mr_deregister)(struct net_mr *mr);
	int (*pull)(struct net_conn *c, const struct net_bulk *b, void *dst,
		    void (*done)(void *arg, int rc, struct buf *data), void *arg);
	int (*peer_name)(const struct net_conn *c, char *buf, size_t len);
};

/* Register a backend (before threads start). -EEXIST for a known scheme, -ENOSPC if full. */
SLUICE_MUST_USE int net_register(const struct net_ops *ops);

/* Register every backend built in (tcp, and rdma when compiled). Idempotent. */
void net_register_builtin(void);

const struct net_ops *net_ops_for(const char *scheme);

/* Every connection starts with this header; backends embed it first in their struct. */
struct net_conn_base {
	const struct net_ops *ops;
	struct reactor *reactor;
	uint64_t id; /* unique per process, for logs */
};

/* ---- convenience wrappers: dispatch through the connection's ops ----------------------- */

/* Listen on uri. 0 or -EINVAL (bad URI), -EPROTONOSUPPORT (unknown scheme), -errno. */
SLUICE_MUST_USE int net_listen(struct reactor *r, const char *uri, const struct net_listen_cfg *cfg,
			       void (*on_accept)(struct net_listener *l, struct net_conn *c,
						 void *arg),
			       void *arg, struct net_listener **out);
/* Stops accepting (or, for a sharing listener, receiving) connections; open conns stay. Closing
 * the listener that owns the socket stops the accepting for every listener sharing it. */
void net_listener_close(struct net_listener *l);
/* The bound address (port filled in when listening on port 0). */
SLUICE_MUST_USE int net_listener_addr(const struct net_listener *l, struct net_addr *out);

/*
 * Listen on l's address from reactor r as well (DESIGN.md section 3: one reactor per core).
 * The new listener *out owns no socket: the connections l accepts are spread over l and
 * every listener sharing it - to the one with the fewest connections assigned (open or on
 * their way), round robin among equals - and each is created on its listener's reactor and
 * announced there by that listener's on_accept(arg); cfg (pool, timeouts, max_conns) applies
 * to the connections *out receives. So a daemon runs one server per reactor on one port,
 * and even two connections from one client land on two reactors.
 *
 * Call on r's thread. l may belong to another reactor; it must be open, and its
 * net_listen must have returned before this call started (e.g. the caller waited for it):
 * only its address and group are read, never changed. Afterwards either may be closed at
 * any time, each on its own thread. Closing *out stops assigning connections to it;
 * closing l closes the socket, so no listener of the group gets new connections.
 * 0, -ENOMEM, -ENOSPC (SLUICE_NET_LISTEN_SHARE_MAX listeners share l already),
 * -EOPNOTSUPP (the backend cannot share listeners).
 */
SLUICE_MUST_USE int
net_listener_share(struct reactor *r, struct net_listener *l, const struct net_listen_cfg *cfg,
		   void (*on_accept)(struct net_listener *l, struct net_conn *c, void *arg),
		   void *arg, struct net_listener **out);

/* Start connecting; handler->on_connected or on_close reports the outcome. */
SLUICE_MUST_USE int net_connect(struct reactor *r, const char *uri,
				const struct net_connect_cfg *cfg, const struct net_handler *h,
				void *arg, struct net_conn **out);

static inline const struct net_ops *net_conn_ops(const struct net_conn *c)
{
	return ((const struct net_conn_base *)(const void *)c)->ops;
}
static inline uint64_t net_conn_id(const struct net_conn *c)
{
	return ((const struct net_conn_base *)(const void *)c)->id;
}
static inline void net_set_handler(struct net_conn *c, const struct net_handler *h, void *arg)
{
	net_conn_ops(c)->set_handler(c, h, arg);
}
/* Queue s. 0 (done will run), -ENOTCONN if closing, -EINVAL for bad lengths. */
SLUICE_MUST_USE static inline int net_send(struct net_conn *c, struct net_send *s)
{
	return net_conn_ops(c)->send(c, s);
}
/* Close (idempotent). Pending sends complete with an error, then on_close(reason). */
static inline void net_close(struct net_conn *c, int reason)
{
	net_conn_ops(c)->close(c, reason);
}
/* Stop (or resume) reading frames: backpressure from the layer above. */
static inline void net_pause_recv(struct net_conn *c, bool paused)
{
	net_conn_ops(c)->pause_recv(c, paused);
}
/* The layer above has work outstanding for this peer (a request in a handler): a quiet
 * peer is then waiting, not idle, so the idle timeout does not apply. */
static inline void net_set_busy(struct net_conn *c, bool busy)
{
	net_conn_ops(c)->set_busy(c, busy);
}
static inline int net_peer_name(const struct net_conn *c, char *buf, size_t len)
{
	return net_conn_ops(c)->peer_name(c, buf, len);
}

extern const struct net_ops net_tcp_ops;

#endif
