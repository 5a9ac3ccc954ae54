/*
 * tcp_blaster.h - the raw loopback TCP limits that RPC benchmarks are compared against.
 *
 * DESIGN.md section 11: benchmarks report throughput as a ratio to a raw limit measured in
 * the same run, because this machine's numbers vary 2-3x between runs. These functions
 * measure that limit with the simplest code that could reach it: plain blocking sockets on
 * 127.0.0.1, one thread per connection end, TCP_NODELAY, buffers allocated and touched once
 * before timing and reused for every message, a warm-up before the timed window. There is
 * no framing, checksumming or allocation per message, so an RPC layer can approach these
 * numbers but not beat them.
 *
 * Both functions create their own threads (the server side runs in threads of the calling
 * process), join them before returning and leave nothing behind. They block the caller for
 * about 1.25 x seconds. Thread-safe in the sense that concurrent calls do not share state,
 * but they compete for the same CPUs, so call them one at a time.
 *
 * This is test code: it uses sockets directly rather than through env or the transport
 * ops table (STYLE.md rule 11), because measuring the kernel without our code is the point.
 * Time comes from env_now_ns().
 */
#ifndef SLUICE_TESTS_BENCH_TCP_BLASTER_H
#define SLUICE_TESTS_BENCH_TCP_BLASTER_H

#include <stddef.h>
#include <stdint.h>

/* Size of one request and of one response in blaster_rtt. */
#define BLASTER_RTT_MSG_BYTES 64u
/* Bounds on the arguments; anything outside returns -EINVAL. */
#define BLASTER_INFLIGHT_MAX  1024u
#define BLASTER_CONNS_MAX     64u
#define BLASTER_MSG_BYTES_MAX (256u * 1024u * 1024u)
#define BLASTER_SECONDS_MAX   3600.0
/* Warm-up before each timed window: a quarter of it, clamped to these bounds. */
#define BLASTER_WARMUP_MIN_S 0.05
#define BLASTER_WARMUP_MAX_S 1.0

/* The warm-up before a timed window of `seconds`, in ns: a quarter of it, clamped to the
 * bounds above. Exported so other benchmarks warm up exactly as long as the limit they are
 * compared with. Pure; any thread. */
uint64_t blaster_warmup_ns(double seconds);

/*
 * Request/response round trips of BLASTER_RTT_MSG_BYTES each way on one connection, with
 * `inflight` requests outstanding at all times (1 = ping-pong; more = pipelined, and the
 * echo server answers every complete request it has read with one write, as a batching
 * server would). Runs a warm-up, then counts responses for `seconds`.
 *
 * inflight in [1, BLASTER_INFLIGHT_MAX], seconds in (0, BLASTER_SECONDS_MAX]. Returns 0 and
 * writes *ops_per_s (completed round trips per second) on success; -EINVAL for bad
 * arguments, a negative errno from socket calls, -ENOMEM, or -EPROTO if the peer closed
 * early. Any thread.
 */
int blaster_rtt(unsigned inflight, double seconds, double *ops_per_s);

/*
 * One-direction bulk throughput: `conns` connections, each with a sender thread writing
 * messages of msg_bytes (one full send loop per message) and a receiver thread reading into
 * a msg_bytes buffer. Runs a warm-up, then counts bytes received during `seconds`.
 *
 * msg_bytes in [1, BLASTER_MSG_BYTES_MAX], conns in [1, BLASTER_CONNS_MAX], seconds in (0,
 * BLASTER_SECONDS_MAX]. Memory: 2 x conns x msg_bytes. Returns 0 and writes *bytes_per_s on
 * success; errors as blaster_rtt. Any thread.
 */
int blaster_bulk(size_t msg_bytes, unsigned conns, double seconds, double *bytes_per_s);

#endif
