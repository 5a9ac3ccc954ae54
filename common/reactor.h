/*
 * reactor.h - one thread, one io_uring (DESIGN.md section 3, STYLE.md rule 10).
 *
 * A reactor owns an io_uring, a timer heap and an inbox. Everything it owns (connections,
 * timers, per-reactor state of upper layers) is touched only from its thread. Other threads
 * reach it by posting a struct reactor_msg to its inbox, a bounded MPSC ring; the reactor
 * sleeps in io_uring_enter and is woken through an eventfd only when it is actually asleep.
 *
 * Loop turn: run inbox messages (bounded by SLUICE_REACTOR_BUDGET), fire expired timers,
 * submit queued SQEs and wait for completions until the next timer deadline, dispatch at
 * most SLUICE_REACTOR_BUDGET completions to their struct reactor_io callbacks.
 *
 * Time comes from env_now_ns(), so simulated clocks drive timers too. reactor_now_ns() is
 * that clock read once per loop turn, for the many timestamps per request.
 *
 * Completion rule (STYLE.md rule 6): a function here that takes a callback and returns 0
 * runs that callback exactly once; a nonzero return means it never runs.
 */
#ifndef SLUICE_COMMON_REACTOR_H
#define SLUICE_COMMON_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/assert.h"

struct reactor;
struct io_uring_sqe;

/* ---- lifecycle ------------------------------------------------------------------------ */

/* name: for logs and the thread name (copied). -ENOMEM, or the io_uring_queue_init error. */
SLUICE_MUST_USE int reactor_create(const char *name, struct reactor **out);

/* Start a thread that runs the loop until reactor_stop. */
SLUICE_MUST_USE int reactor_start(struct reactor *r);

/* Run the loop on the calling thread until reactor_stop (for daemons' main thread). */
SLUICE_MUST_USE int reactor_run(struct reactor *r);

/* Ask the loop to return. Any thread. Idempotent. Messages already queued still run. */
void reactor_stop(struct reactor *r);

/* Stop, join the thread (if started), free. All I/O of upper layers must be finished:
 * their owners close connections first. NULL ok. Not from the reactor's own thread. */
void reactor_destroy(struct reactor *r);

/* True when called on r's loop thread. */
bool reactor_on_thread(const struct reactor *r);

/*
 * The env_now_ns() time read at the start of the current loop turn (and again after the
 * loop slept), for stamps taken many times per request - deadlines, idle and stall clocks -
 * which need millisecond accuracy, not a clock read each (a read costs ~30 ns; the RPC path
 * took ~14 per call). Behind real time by at most the time the turn has run so far.
 * Timers do not use it: reactor_timer_arm reads the clock. r's loop thread only.
 */
uint64_t reactor_now_ns(const struct reactor *r);

const char *reactor_name(const struct reactor *r);

/* ---- inbox: messages from other threads ------------------------------------------------ */

struct reactor_msg {
	void (*fn)(struct reactor_msg *msg);
	void *next_; /* reactor-private */
};

/*
 * Queue msg; msg->fn(msg) runs on r's thread. msg is owned by the caller and must stay
 * valid until fn runs (embed it in the object it is about). Any thread, including r's own.
 * 0, or -EAGAIN when the inbox is full (fn will not run), -SLUICE_ESHUTDOWN from
 * reactor_stop on. A reactor runs one loop in its life; reactor_stop must not race with
 * reactor_destroy.
 */
SLUICE_MUST_USE int reactor_post(struct reactor *r, struct reactor_msg *msg);

/* Like reactor_post but waits (yielding, then sleeping briefly) while the inbox is full.
 * For worker threads returning completions, which must not drop them. */
void reactor_post_wait(struct reactor *r, struct reactor_msg *msg);

/* ---- timers ------------------------------------------------------------------------- */

struct reactor_timer {
	void (*cb)(struct reactor_timer *t);
	uint64_t deadline_ns; /* env_now_ns() time it fires at */
	uint32_t heap_idx_;   /* reactor-private; 0 = not armed */
};

void reactor_timer_init(struct reactor_timer *t, void (*cb)(struct reactor_timer *t));

/* Arm (or re-arm) t to fire once, delay_ns from now. Reactor thread only. -EAGAIN if the
 * heap holds SLUICE_REACTOR_TIMERS_MAX timers. */
SLUICE_MUST_USE int reactor_timer_arm(struct reactor *r, struct reactor_timer *t,
				      uint64_t delay_ns);

/* Disarm; no-op if not armed. Reactor thread only. The callback will not run. */
void reactor_timer_cancel(struct reactor *r, struct reactor_timer *t);

static inline bool reactor_timer_armed(const struct reactor_timer *t)
{
	return t->heap_idx_ != 0;
}

/* ---- io_uring operations ----------------------------------------------------------------
 *
 * Upper layers (sockets, disk I/O) prepare SQEs themselves and tag them with a struct
 * reactor_io; the reactor calls io->cb with the CQE result. For multishot operations the
 * callback runs once per CQE and cqe_flags has IORING_CQE_F_MORE while more will follow.
 */

struct reactor_io {
	void (*cb)(struct reactor_io *io, int res, uint32_t cqe_flags);
};

/*
 * Reserve an SQE whose completion goes to io->cb (io NULL: nobody wants the completion,
 * e.g. a poll removal; it is dropped and not counted as in flight). Reactor thread only. Flushes
 * the SQ to the kernel if it is full, so this only fails (NULL) if the kernel refuses to take SQEs.
 * The caller fills the operation (io_uring_prep_*), leaving user_data alone; the SQE is
 * submitted at the end of the current loop turn (or by reactor_flush).
 */
struct io_uring_sqe *reactor_sqe(struct reactor *r, struct reactor_io *io);

/* Submit queued SQEs now. Reactor thread only. */
void reactor_flush(struct reactor *r);

/* Number of SQEs submitted whose completion has not yet been dispatched. */
uint32_t reactor_io_inflight(const struct reactor *r);

/* ---- registered (fixed) buffers ----------------------------------------------------------
 *
 * Memory registered with the ring once, so that I/O on it (io_uring_prep_read_fixed,
 * io_uring_prep_write_fixed) skips pinning and unpinning its pages on every request. A ring
 * has one table. Registration pins the pages for as long as it lasts: the memory must stay
 * allocated and must not be freed and reused behind it (pinned bufpool buffers qualify),
 * or fixed I/O would read and write pages that are no longer the ones at that address.
 */

/*
 * Register iov[0..n) as r's fixed buffers, index i for iov[i], in order until the kernel
 * refuses one: returns how many it took (the first ones; 0..n) and *refused, the kernel's
 * error for the first one it did not take (0 when it took all). -ENOMEM there means locked
 * memory: RLIMIT_MEMLOCK, for a process without CAP_IPC_LOCK. Buffers must be disjoint,
 * non-empty and at most SLUICE_REACTOR_FIXED_BUF_BYTES_MAX each. Errors (nothing registered,
 * *refused untouched): -EINVAL (n 0 or above SLUICE_REACTOR_FIXED_BUFS_MAX, a bad buffer),
 * -EBUSY (a table is registered already), -ENOMEM. Reactor thread only: a single-issuer
 * ring refuses registration from other threads. The table lasts until
 * reactor_unregister_buffers or reactor_destroy.
 */
SLUICE_MUST_USE int reactor_register_buffers(struct reactor *r, const struct iovec *iov, unsigned n,
					     int *refused);

/* Drop r's fixed buffer table (no-op without one). I/O already submitted on the buffers
 * completes normally. Reactor thread only. */
void reactor_unregister_buffers(struct reactor *r);

/* The index of the fixed buffer holding all of [addr, addr + len), for the *_fixed
 * io_uring operations, or -1 if none does. O(log n). Reactor thread only. */
int reactor_fixed_index(const struct reactor *r, const void *addr, size_t len);

#endif
