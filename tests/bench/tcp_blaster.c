/*
 * tcp_blaster.c - raw loopback TCP round trips and bulk throughput (API in tcp_blaster.h).
 *
 * Design: the simplest code that reaches the kernel's limit, so that RPC benchmarks can
 * report their throughput as a fraction of it. Every measurement opens a listener on
 * 127.0.0.1 with an ephemeral port, connects the pairs it needs (a blocking connect on
 * loopback completes in the kernel before accept, so one thread can do both ends), and
 * runs one thread per connection end with blocking sockets. Buffers are allocated and
 * written once before the warm-up (first touch of fresh memory is slow on our VMs) and
 * reused for every message.
 *
 * Termination: the timed side stops on its own clock and half-closes (SHUT_WR); the other
 * side sees EOF and returns. If something fails, the caller shuts down every socket, which
 * wakes any thread blocked in send or recv; socket timeouts (BLASTER_IO_TIMEOUT_S) are the
 * backstop so no error path can hang the benchmark.
 *
 * Threads: blaster_rtt runs its client loop on the calling thread plus one echo thread.
 * blaster_bulk runs a sender and a receiver thread per connection while the calling thread
 * sleeps and samples the byte counters. Each call owns all its sockets, buffers and threads
 * and releases them before returning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/bench/tcp_blaster.h"

/* A blocked send or recv gives up after this long: only reached when the peer is gone. */
#define BLASTER_IO_TIMEOUT_S 10
/* Total buffer memory blaster_bulk may allocate (2 x conns x msg_bytes). */
#define BLASTER_MEMORY_MAX    (1024ull * 1024 * 1024)
#define BLASTER_RTT_BUF_BYTES (BLASTER_INFLIGHT_MAX * BLASTER_RTT_MSG_BYTES)
#define BLASTER_PAGE	      4096u

static bool seconds_ok(double s)
{
	return s > 0 && s <= BLASTER_SECONDS_MAX; /* also false for NaN */
}

static uint64_t window_ns(double s)
{
	uint64_t ns = (uint64_t)(s * 1e9);

	return ns < 1000 ? 1000 : ns;
}

uint64_t blaster_warmup_ns(double seconds)
{
	double w = seconds / 4;

	if (w < BLASTER_WARMUP_MIN_S)
		w = BLASTER_WARMUP_MIN_S;
	if (w > BLASTER_WARMUP_MAX_S)
		w = BLASTER_WARMUP_MAX_S;
	return window_ns(w);
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sock_tune(int fd)
{
	struct timeval tv = {.tv_sec = BLASTER_IO_TIMEOUT_S};
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* Listen on 127.0.0.1, ephemeral port. Loopback only: benchmarks never leave the host. */
static int listener_open(int *lfd_out, struct sockaddr_in *addr)
{
	socklen_t alen = sizeof(*addr);
	int fd, rc;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    listen(fd, (int)BLASTER_CONNS_MAX) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &alen) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*lfd_out = fd;
	return 0;
}

/* One connected pair: *cfd is the client end, *sfd the accepted server end. */
static int pair_open(int lfd, const struct sockaddr_in *addr, int *cfd, int *sfd)
{
	int c, s, rc;

	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -errno;
	if (connect(c, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		rc = -errno;
		goto fail_c;
	}
	s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		rc = -errno;
		goto fail_c;
	}
	rc = sock_tune(c);
	if (rc == 0)
		rc = sock_tune(s);
	if (rc < 0)
		goto fail_s;
	*cfd = c;
	*sfd = s;
	return 0;
fail_s:
	close(s);
fail_c:
	close(c);
	return rc;
}

static void *page_alloc_touched(size_t len)
{
	size_t rounded = (len + BLASTER_PAGE - 1) / BLASTER_PAGE * BLASTER_PAGE;
	void *p = aligned_alloc(BLASTER_PAGE, rounded);

	if (p != NULL)
		memset(p, 0x5a, rounded);
	return p;
}

/* ---- round trips ------------------------------------------------------------------- */

struct rtt_ctx {
	int cfd, sfd;
	int echo_rc;				   /* written by the echo thread, read after join */
	char *srv_in, *srv_out, *cli_in, *cli_out; /* BLASTER_RTT_BUF_BYTES each */
};

/* Echo thread: answer every complete request read so far with one write. */
static void *echo_main(void *arg)
{
	struct rtt_ctx *x = arg;
	size_t partial = 0;

	for (;;) {
		ssize_t n = recv(x->sfd, x->srv_in, BLASTER_RTT_BUF_BYTES, 0);
		size_t k;

		if (n == 0)
			break; /* client half-closed: done */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			x->echo_rc = -errno;
			break;
		}
		partial += (size_t)n;
		k = partial / BLASTER_RTT_MSG_BYTES;
		partial %= BLASTER_RTT_MSG_BYTES;
		/* n <= BLASTER_RTT_BUF_BYTES and the old remainder is < one message, so the k
		 * answers fit in srv_out (BLASTER_RTT_BUF_BYTES). */
		if (k > 0) {
			x->echo_rc = send_all(x->sfd, x->srv_out, k * BLASTER_RTT_MSG_BYTES);
			if (x->echo_rc < 0)
				break;
		}
	}
	return NULL;
}

/*
 * Client loop on the calling thread. Counting starts at the first batch of responses after
 * the warm-up and stops at the first batch at or after the end of the window; then no new
 * requests go out and the outstanding ones are drained.
 */
static int rtt_client(struct rtt_ctx *x, unsigned inflight, double seconds, double *ops)
{
	uint64_t warm_end = env_now_ns() + blaster_warmup_ns(seconds), t_end = 0, t0 = 0, count = 0;
	size_t outstanding = inflight, partial = 0;
	bool counting = false, stopping = false;
	int rc;

	rc = send_all(x->cfd, x->cli_out, (size_t)inflight * BLASTER_RTT_MSG_BYTES);
	while (rc == 0 && outstanding > 0) {
		ssize_t n = recv(x->cfd, x->cli_in, BLASTER_RTT_BUF_BYTES, 0);
		uint64_t now;
		size_t k;

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			rc = n == 0 ? -EPROTO : -errno;
			break;
		}
		partial += (size_t)n;
		k = partial / BLASTER_RTT_MSG_BYTES;
		partial %= BLASTER_RTT_MSG_BYTES;
		outstanding -= k;
		if (k == 0 || stopping)
			continue;
		now = env_now_ns();
		if (!counting && now >= warm_end) {
			counting = true;
			t0 = now;
			t_end = now + window_ns(seconds);
		} else if (counting) {
			count += k;
			stopping = now >= t_end;
		}
		if (!stopping) {
			rc = send_all(x->cfd, x->cli_out, k * BLASTER_RTT_MSG_BYTES);
			outstanding += k;
		} else {
			*ops = (double)count * 1e9 / (double)(now - t0);
		}
	}
	return rc;
}

static int rtt_alloc(struct rtt_ctx *x)
{
	char *p = page_alloc_touched(4 * (size_t)BLASTER_RTT_BUF_BYTES);

	if (p == NULL)
		return -ENOMEM;
	x->srv_in = p;
	x->srv_out = p + BLASTER_RTT_BUF_BYTES;
	x->cli_in = p + 2 * BLASTER_RTT_BUF_BYTES;
	x->cli_out = p + 3 * BLASTER_RTT_BUF_BYTES;
	return 0;
}

int blaster_rtt(unsigned inflight, double seconds, double *ops_per_s)
{
	struct rtt_ctx x = {.cfd = -1, .sfd = -1};
	struct sockaddr_in addr;
	pthread_t echo;
	double ops = 0;
	int lfd, rc;

	if (inflight < 1 || inflight > BLASTER_INFLIGHT_MAX || !seconds_ok(seconds) ||
	    ops_per_s == NULL)
		return -EINVAL;
	rc = rtt_alloc(&x);
	if (rc < 0)
		return rc;
	rc = listener_open(&lfd, &addr);
	if (rc < 0)
		goto out_free;
	rc = pair_open(lfd, &addr, &x.cfd, &x.sfd);
	close(lfd);
	if (rc < 0)
		goto out_free;
	rc = -pthread_create(&echo, NULL, echo_main, &x);
	if (rc < 0)
		goto out_close;

	rc = rtt_client(&x, inflight, seconds, &ops);
	/* Normal end: EOF lets the echo thread return. Error: wake it wherever it blocks. */
	(void)shutdown(x.cfd, rc == 0 ? SHUT_WR : SHUT_RDWR);
	if (rc < 0)
		(void)shutdown(x.sfd, SHUT_RDWR);
	pthread_join(echo, NULL);
	if (rc == 0 && x.echo_rc < 0)
		rc = x.echo_rc;
	if (rc == 0)
		*ops_per_s = ops;
out_close:
	close(x.cfd);
	close(x.sfd);
out_free:
	free(x.srv_in);
	return rc;
}

/* ---- bulk throughput --------------------------------------------------------------- */

/* One end of one connection. Aligned so the counters of different threads never share a
 * cache line with each other. */
struct bulk_end {
	_Alignas(64) _Atomic uint64_t bytes; /* receivers: bytes read so far */
	int fd;
	int rc; /* written by the thread, read after join */
	char *buf;
	size_t len;
	atomic_bool *stop;
	pthread_t th;
	bool started;
};

static void *sender_main(void *arg)
{
	struct bulk_end *e = arg;

	while (!atomic_load_explicit(e->stop, memory_order_relaxed)) {
		e->rc = send_all(e->fd, e->buf, e->len);
		if (e->rc < 0)
			break;
	}
	(void)shutdown(e->fd, SHUT_WR); /* the receiver sees EOF after the last message */
	return NULL;
}

static void *receiver_main(void *arg)
{
	struct bulk_end *e = arg;

	for (;;) {
		ssize_t n = recv(e->fd, e->buf, e->len, 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			e->rc = -errno;
			break;
		}
		atomic_fetch_add_explicit(&e->bytes, (uint64_t)n, memory_order_relaxed);
	}
	return NULL;
}

static uint64_t bulk_received(struct bulk_end *rx, unsigned conns)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < conns; i++)
		sum += atomic_load_explicit(&rx[i].bytes, memory_order_relaxed);
	return sum;
}

/* Open conns pairs and their buffers. Senders are ends[0, conns) on the client ends,
 * receivers ends[conns, 2 conns) on the server ends. On failure the caller's bulk_teardown
 * releases what was opened. */
static int bulk_setup(struct bulk_end *ends, unsigned conns, size_t msg_bytes, atomic_bool *stop)
{
	struct sockaddr_in addr;
	int lfd, rc;

	for (unsigned i = 0; i < 2 * conns; i++) {
		ends[i].fd = -1;
		ends[i].stop = stop;
		ends[i].len = msg_bytes;
	}
	for (unsigned i = 0; i < 2 * conns; i++) {
		ends[i].buf = page_alloc_touched(msg_bytes);
		if (ends[i].buf == NULL)
			return -ENOMEM;
	}
	rc = listener_open(&lfd, &addr);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < conns && rc == 0; i++)
		rc = pair_open(lfd, &addr, &ends[i].fd, &ends[conns + i].fd);
	close(lfd);
	return rc;
}

static int bulk_start(struct bulk_end *ends, unsigned conns)
{
	for (unsigned i = 0; i < 2 * conns; i++) {
		int rc = -pthread_create(&ends[i].th, NULL, i < conns ? sender_main : receiver_main,
					 &ends[i]);

		if (rc < 0)
			return rc;
		ends[i].started = true;
	}
	return 0;
}

static void bulk_teardown(struct bulk_end *ends, unsigned conns, atomic_bool *stop, bool failed)
{
	atomic_store(stop, true);
	/* After a failure a peer may never read or write again: wake every blocked thread. */
	for (unsigned i = 0; failed && i < 2 * conns; i++)
		if (ends[i].fd >= 0)
			(void)shutdown(ends[i].fd, SHUT_RDWR);
	for (unsigned i = 0; i < 2 * conns; i++)
		if (ends[i].started)
			pthread_join(ends[i].th, NULL);
	for (unsigned i = 0; i < 2 * conns; i++) {
		if (ends[i].fd >= 0)
			close(ends[i].fd);
		free(ends[i].buf);
	}
}

int blaster_bulk(size_t msg_bytes, unsigned conns, double seconds, double *bytes_per_s)
{
	atomic_bool stop = false;
	struct bulk_end *ends;
	uint64_t b0 = 0, b1 = 0, t0 = 0, t1 = 0;
	size_t ends_bytes;
	int rc;

	if (msg_bytes < 1 || msg_bytes > BLASTER_MSG_BYTES_MAX || conns < 1 ||
	    conns > BLASTER_CONNS_MAX || !seconds_ok(seconds) || bytes_per_s == NULL ||
	    2ull * conns * msg_bytes > BLASTER_MEMORY_MAX)
		return -EINVAL;
	ends_bytes = 2 * conns * sizeof(*ends); /* a multiple of the 64-byte alignment */
	ends = aligned_alloc(64, ends_bytes);
	if (ends == NULL)
		return -ENOMEM;
	memset(ends, 0, ends_bytes);
	rc = bulk_setup(ends, conns, msg_bytes, &stop);
	if (rc == 0)
		rc = bulk_start(ends, conns);
	if (rc == 0) {
		/* Sample the receivers' counters around the timed window, after the warm-up. */
		env_sleep_ns(blaster_warmup_ns(seconds));
		b0 = bulk_received(ends + conns, conns);
		t0 = env_now_ns();
		env_sleep_ns(window_ns(seconds));
		b1 = bulk_received(ends + conns, conns);
		t1 = env_now_ns();
	}
	bulk_teardown(ends, conns, &stop, rc < 0);
	for (unsigned i = 0; i < 2 * conns && rc == 0; i++)
		rc = ends[i].rc;
	if (rc == 0)
		*bytes_per_s = (double)(b1 - b0) * 1e9 / (double)(t1 - t0);
	free(ends);
	return rc;
}
