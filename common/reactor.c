/*
 * reactor.c - the event loop: one thread, one io_uring, a timer heap and an inbox.
 *
 * DESIGN
 *
 * A reactor is created on any thread and then runs its loop on exactly one thread, either
 * its own (reactor_start) or the caller's (reactor_run). Everything below the "loop thread
 * only" line of struct reactor belongs to that thread; other threads touch only the inbox
 * (push side), the post_state word and the sleeping flag.
 *
 * io_uring setup. We ask for IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
 * IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED. SINGLE_ISSUER + DEFER_TASKRUN is the
 * fastest mode for a ring owned by one thread: completion work runs in batches when we
 * enter the kernel to wait, never as an interrupting task_work. The catch is that the
 * kernel binds the single issuer to the task that creates the ring, and reactor_create
 * runs on another thread than the loop. R_DISABLED defers that binding: the ring is
 * created (so reactor_create reports io_uring_queue_init errors, as its contract says) but
 * stays disabled until the loop thread enables it with IORING_REGISTER_ENABLE_RINGS, which
 * makes the loop thread the issuer. TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN
 * when deferred completions are pending, so a busy loop that does not sleep still reaps
 * them with one io_uring_enter instead of a syscall per turn. On kernels without these
 * flags (EINVAL) we fall back to COOP_TASKRUN | TASKRUN_FLAG, then to no flags; the loop
 * works the same in all three modes. liburing 2.3 declares io_uring_enable_rings but does
 * not export it, so the enable is a raw io_uring_register(2) call.
 *
 * Loop turn (see loop()): run at most SLUICE_REACTOR_BUDGET inbox messages, fire at most
 * SLUICE_REACTOR_BUDGET expired timers, then either poll (when work is already waiting) or
 * submit and sleep in io_uring_enter until the next timer deadline, then dispatch at most
 * SLUICE_REACTOR_BUDGET completions. Budgets keep one source from starving the others.
 * The clock is read at the start of each turn and after each sleep, and kept as the turn's
 * time (reactor_now_ns, used by expiring timers and by upper layers for their per-request
 * stamps): the RPC path read it ~14 times per call; reading it once per turn made
 * pipelined small calls ~20% faster (tests/bench/run rpc, rtt64).
 *
 * Wake-up. The inbox is a bounded MPSC ring (common/ring.h) plus an eventfd that the loop
 * keeps a read armed on. Before sleeping the loop sets `sleeping`, does a seq_cst
 * read-modify-write of post_state and looks at the inbox (and the STOP bit) again; a
 * poster pushes, does a seq_cst RMW of post_state, and writes the eventfd only if it wins
 * the exchange of `sleeping` from true to false. Both RMWs hit the same word, so one of
 * them reads from the other: either the loop sees the push or the poster sees `sleeping`
 * (the store-buffering pattern, solved without fences, which the thread sanitizer cannot
 * model). A busy reactor costs posters no syscall at all.
 *
 * Shutdown. post_state holds a STOP bit and the number of posters (and stoppers) inside
 * reactor_post. A poster increments it, backs out with -SLUICE_ESHUTDOWN if STOP is set,
 * and decrements it only after its push and eventfd write. Once STOP is set the loop waits
 * for the count to reach zero and then drains the inbox: every post that returned 0 runs
 * exactly once, on the loop thread, before reactor_run returns, and no poster touches the
 * reactor afterwards. Posts after stop return -SLUICE_ESHUTDOWN. If the loop never ran,
 * reactor_destroy runs the queued messages itself, its thread standing in for the loop
 * thread. Timers still armed at stop never fire; their structs are left untouched (their
 * owners may already have freed them).
 *
 * Timers are a binary min-heap of pointers (1-based, heap_idx_ 0 = not armed) allocated
 * once at create with room for SLUICE_REACTOR_TIMERS_MAX. Arm and cancel are O(log n).
 * Timers with equal deadlines fire in no particular order.
 *
 * Fixed buffers. reactor_register_buffers registers a sparse table of n slots and fills it
 * with one update call: the kernel registers buffers in order until one fails (for a
 * process without CAP_IPC_LOCK, when RLIMIT_MEMLOCK runs out) and reports how many it took,
 * so a low limit costs the later buffers, not all of them; a second update from the first
 * refused slot gives the reason. Kernels before 5.19 have no sparse tables: there it is all
 * or nothing. Upper layers find a buffer's index by address (reactor_fixed_index: a binary
 * search of the registered ranges, sorted at registration), so they need not carry it with
 * their buffers, and memory registered with another ring, or not at all, is simply not
 * found and takes the plain path.
 *
 * STYLE.md rule 11 keeps io_uring calls inside env backends; the reactor is the one place
 * the real io_uring lives, and the simulated backend will replace this file as a whole.
 *
 * Threads: reactor_post, reactor_post_wait, reactor_stop, reactor_on_thread and
 * reactor_name from any thread; the timer and io_uring calls from the loop thread only
 * (ASSERTed); create/start/run/destroy from the owning (control) thread.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/reactor.h"
#include "common/ring.h"

LOG_FACILITY("reactor");

#define CACHE_LINE	   64
#define POST_STOP	   (UINT64_C(1) << 63) /* post_state: stop requested */
#define THREAD_NAME_MAX	   15		       /* pthread_setname_np limit, without the NUL */
#define WAKE_FALLBACK_NS   (1 * ENV_NS_PER_MS) /* sleep cap while no eventfd read is armed */
#define POST_WAIT_YIELDS   64		/* reactor_post_wait: yields before it starts sleeping */
#define POST_WAIT_SLEEP_NS (50 * 1000u) /* then sleeps this long between tries */

/* A registered buffer: bytes [base, end) are fixed buffer `index`. */
struct fixed_range {
	uintptr_t base, end;
	uint32_t index;
};

/* io_uring setup flags in order of preference; the first the kernel accepts wins (DESIGN). */
static const unsigned uring_setups[] = {
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
		IORING_SETUP_R_DISABLED,
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	0,
};

struct reactor {
	char *name;
	struct ring *inbox; /* push: any thread; pop: the loop thread */
	int wake_fd;	    /* eventfd; written by posters, read by the ring */

	/* Control thread: written by start/run, read by destroy (the caller orders them). */
	pthread_t thread;
	bool thread_started;
	atomic_bool claimed; /* a loop has been started; a reactor runs one loop in its life */

	/* ---- loop thread only (and the destroying thread once the loop is over) ---------- */
	struct io_uring uring;
	unsigned setup_flags;
	struct reactor_timer **heap; /* heap[1] is the earliest; heap[0] unused */
	uint32_t heap_len;
	uint32_t inflight; /* SQEs handed out by reactor_sqe, completion not yet dispatched */
	uint64_t now_ns;   /* reactor_now_ns(): env_now_ns() at turn start and after a sleep */
	bool wake_armed;   /* a read of wake_fd is queued or in flight */
	struct reactor_io wake_io;
	uint64_t wake_buf;	   /* the kernel writes the eventfd count here */
	struct fixed_range *fixed; /* registered buffers sorted by address; NULL: none */
	uint32_t nfixed;	   /* entries of fixed: the buffers the kernel took */
	bool fixed_table;	   /* a buffer table is registered with the kernel */

	/* ---- shared, each on its own line: posters hit them on every post --------------- */
	alignas(CACHE_LINE) atomic_uint_fast64_t post_state; /* POST_STOP | posters inside */
	alignas(CACHE_LINE) atomic_bool sleeping; /* loop is (about to be) in io_uring_enter */
};

/* The reactor whose loop runs on this thread, or NULL. */
static _Thread_local struct reactor *tls_reactor;

static bool stop_requested(const struct reactor *r)
{
	return (atomic_load_explicit(&r->post_state, memory_order_acquire) & POST_STOP) != 0;
}

/* ---- io_uring plumbing ------------------------------------------------------------- */

static int uring_init(struct reactor *r)
{
	int rc = -EINVAL;

	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(uring_setups); i++) {
		rc = io_uring_queue_init(SLUICE_REACTOR_RING_ENTRIES, &r->uring, uring_setups[i]);
		if (rc == 0) {
			r->setup_flags = uring_setups[i];
			log_debug("%s: io_uring flags %#x", r->name, r->setup_flags);
			return 0;
		}
		if (rc != -EINVAL)
			return rc; /* ENOMEM, EMFILE, EPERM: no other flags will help */
	}
	return rc;
}

/* An SQE, flushing the SQ to the kernel first if it is full. NULL only if that fails. */
static struct io_uring_sqe *get_sqe(struct reactor *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

	if (sqe == NULL) {
		int rc = io_uring_submit(&r->uring);

		if (rc < 0)
			log_debug("%s: submit to free SQEs: %s (%d)", r->name, sluice_strerror(rc),
				  rc);
		sqe = io_uring_get_sqe(&r->uring);
	}
	return sqe;
}

static void wake_done(struct reactor_io *io, int res, uint32_t cqe_flags);

/* Queue a read of the eventfd; its completion is what wakes a sleeping loop. The eventfd is
 * blocking on purpose: older kernels may complete an io_uring read of an O_NONBLOCK file at once
 * with -EAGAIN instead of waiting (6.x waits either way), and writers never block on an
 * eventfd whose count stays far below 2^64. */
static void arm_wake(struct reactor *r)
{
	struct io_uring_sqe *sqe = get_sqe(r);

	if (sqe == NULL) {
		log_debug("%s: no SQE for the wake-up read; sleeping at most 1 ms", r->name);
		return;
	}
	io_uring_prep_read(sqe, r->wake_fd, &r->wake_buf, sizeof(r->wake_buf), 0);
	io_uring_sqe_set_data(sqe, &r->wake_io);
	r->wake_armed = true;
}

static void wake_done(struct reactor_io *io, int res, uint32_t cqe_flags)
{
	struct reactor *r = SLUICE_CONTAINER_OF(io, struct reactor, wake_io);

	r->wake_armed = false;
	if (res != (int)sizeof(r->wake_buf) && res != -ECANCELED)
		log_debug("%s: wake-up read: %d", r->name, res);
	if (!stop_requested(r))
		arm_wake(r);
}

/* Any thread, counted in post_state. Write the eventfd if the loop is asleep (or about
 * to be). Call after publishing whatever the loop must see. */
static void wake(struct reactor *r)
{
	static const uint64_t one = 1;

	/* Pairs with the RMW in wait_events(): see DESIGN. */
	(void)atomic_fetch_add(&r->post_state, 0); /* the value is not needed, the order is */
	if (!atomic_load_explicit(&r->sleeping, memory_order_relaxed))
		return;
	if (!atomic_exchange_explicit(&r->sleeping, false, memory_order_acq_rel))
		return; /* another poster is waking it */
	/* Blocking eventfd: write only blocks if the count would overflow 2^64-2. */
	if (write(r->wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		PANIC("reactor %s: eventfd write failed", r->name);
}

/* ---- timers -------------------------------------------------------------------------- */

static void heap_set(struct reactor *r, uint32_t i, struct reactor_timer *t)
{
	r->heap[i] = t;
	t->heap_idx_ = i;
}

static void heap_sift_up(struct reactor *r, uint32_t i)
{
	struct reactor_timer *t = r->heap[i];

	while (i > 1 && r->heap[i / 2]->deadline_ns > t->deadline_ns) {
		heap_set(r, i, r->heap[i / 2]);
		i /= 2;
	}
	heap_set(r, i, t);
}

static void heap_sift_down(struct reactor *r, uint32_t i)
{
	struct reactor_timer *t = r->heap[i];

	for (;;) {
		uint32_t c = 2 * i;

		if (c > r->heap_len)
			break;
		if (c < r->heap_len && r->heap[c + 1]->deadline_ns < r->heap[c]->deadline_ns)
			c++;
		if (t->deadline_ns <= r->heap[c]->deadline_ns)
			break;
		heap_set(r, i, r->heap[c]);
		i = c;
	}
	heap_set(r, i, t);
}

/* Restore the heap order around slot i after its deadline changed. */
static void heap_fix(struct reactor *r, uint32_t i)
{
	if (i > 1 && r->heap[i / 2]->deadline_ns > r->heap[i]->deadline_ns)
		heap_sift_up(r, i);
	else
		heap_sift_down(r, i);
}

static void heap_remove(struct reactor *r, struct reactor_timer *t)
{
	uint32_t i = t->heap_idx_;
	struct reactor_timer *last = r->heap[r->heap_len];

	ASSERT(i >= 1 && i <= r->heap_len && r->heap[i] == t); /* armed on this reactor */
	r->heap[r->heap_len--] = NULL;
	t->heap_idx_ = 0;
	if (i <= r->heap_len) {
		heap_set(r, i, last);
		heap_fix(r, i);
	}
}

void reactor_timer_init(struct reactor_timer *t, void (*cb)(struct reactor_timer *t))
{
	ASSERT(cb != NULL);
	t->cb = cb;
	t->deadline_ns = 0;
	t->heap_idx_ = 0;
}

int reactor_timer_arm(struct reactor *r, struct reactor_timer *t, uint64_t delay_ns)
{
	uint64_t now = env_now_ns();
	uint64_t deadline = delay_ns > UINT64_MAX - now ? UINT64_MAX : now + delay_ns;

	ASSERT(reactor_on_thread(r));
	ASSERT(t->cb != NULL);
	if (t->heap_idx_ != 0) {
		ASSERT(t->heap_idx_ <= r->heap_len && r->heap[t->heap_idx_] == t);
		t->deadline_ns = deadline;
		heap_fix(r, t->heap_idx_);
		return 0;
	}
	if (r->heap_len == SLUICE_REACTOR_TIMERS_MAX)
		return -EAGAIN;
	t->deadline_ns = deadline;
	heap_set(r, ++r->heap_len, t);
	heap_sift_up(r, r->heap_len);
	return 0;
}

void reactor_timer_cancel(struct reactor *r, struct reactor_timer *t)
{
	ASSERT(reactor_on_thread(r));
	if (t->heap_idx_ != 0)
		heap_remove(r, t);
}

/*
 * Fire timers whose deadline has passed, earliest first. `now` is the turn's time, read
 * once, so a callback re-arming itself with delay 0 fires again next turn at the earliest,
 * not in a loop here.
 */
static void fire_timers(struct reactor *r, unsigned budget)
{
	uint64_t now = r->now_ns;

	while (budget-- > 0 && r->heap_len > 0 && r->heap[1]->deadline_ns <= now) {
		struct reactor_timer *t = r->heap[1];

		heap_remove(r, t);
		t->cb(t);
	}
}

/* ---- the loop ------------------------------------------------------------------------ */

static void run_inbox(struct reactor *r, unsigned budget)
{
	struct reactor_msg *m;

	while (budget-- > 0 && (m = ring_pop(r->inbox)) != NULL)
		m->fn(m);
}

/* Hand at most budget completions to their callbacks. */
static void dispatch(struct reactor *r, unsigned budget)
{
	struct io_uring_cqe *cqes[SLUICE_REACTOR_BUDGET];
	struct {
		void *io;
		int res;
		uint32_t flags;
	} done[SLUICE_REACTOR_BUDGET];
	unsigned n;

	if (budget > SLUICE_REACTOR_BUDGET)
		budget = SLUICE_REACTOR_BUDGET;
	n = io_uring_peek_batch_cqe(&r->uring, cqes, budget);
	/* Copy out and release the CQ slots first: callbacks may submit, and the kernel can
	 * then post new CQEs into the space we free. */
	for (unsigned i = 0; i < n; i++) {
		done[i].io = io_uring_cqe_get_data(cqes[i]);
		done[i].res = cqes[i]->res;
		done[i].flags = cqes[i]->flags;
	}
	io_uring_cq_advance(&r->uring, n);

	for (unsigned i = 0; i < n; i++) {
		struct reactor_io *io = done[i].io;

		if (io == NULL)
			continue; /* our own cancel requests */
		if (io != &r->wake_io && !(done[i].flags & IORING_CQE_F_MORE)) {
			ASSERT(r->inflight > 0);
			r->inflight--;
		}
		io->cb(io, done[i].res, done[i].flags);
	}
}

/* Submit queued SQEs and collect ready completions without sleeping. A syscall only when
 * there is something to submit or the kernel flags pending completion work. */
static void poll_events(struct reactor *r)
{
	unsigned kflags = IO_URING_READ_ONCE(*r->uring.sq.kflags);
	int rc;

	if (io_uring_sq_ready(&r->uring) == 0 &&
	    !(kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
		return;
	rc = io_uring_submit_and_get_events(&r->uring);
	if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN)
		log_debug("%s: submit: %s (%d)", r->name, sluice_strerror(rc), rc);
}

/* Sleep in io_uring_enter until a completion, a post or the next timer deadline, unless
 * work is already waiting; then only poll. Refreshes the turn's time after a sleep. */
static void wait_events(struct reactor *r)
{
	uint64_t wait_ns = UINT64_MAX;
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int rc;

	if (!r->wake_armed)
		arm_wake(r);
	if (ring_count(r->inbox) != 0 || io_uring_cq_ready(&r->uring) != 0)
		goto poll;
	if (r->heap_len > 0) {
		uint64_t now = env_now_ns();

		if (r->heap[1]->deadline_ns <= now)
			goto poll;
		wait_ns = r->heap[1]->deadline_ns - now;
	}
	if (!r->wake_armed && wait_ns > WAKE_FALLBACK_NS)
		wait_ns = WAKE_FALLBACK_NS;

	/* Announce the sleep, then look again: see DESIGN and wake(). */
	atomic_store_explicit(&r->sleeping, true, memory_order_relaxed);
	if ((atomic_fetch_add(&r->post_state, 0) & POST_STOP) || ring_count(r->inbox) != 0) {
		atomic_store_explicit(&r->sleeping, false, memory_order_relaxed);
		goto poll;
	}
	ts.tv_sec = (long long)(wait_ns / ENV_NS_PER_S);
	ts.tv_nsec = (long long)(wait_ns % ENV_NS_PER_S);
	rc = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1,
					      wait_ns == UINT64_MAX ? NULL : &ts, NULL);
	atomic_store_explicit(&r->sleeping, false, memory_order_relaxed);
	r->now_ns = env_now_ns();
	if (rc < 0 && rc != -ETIME && rc != -EINTR)
		log_debug("%s: wait: %s (%d)", r->name, sluice_strerror(rc), rc);
	return;
poll:
	poll_events(r);
}

static void loop(struct reactor *r)
{
	while (!stop_requested(r)) {
		r->now_ns = env_now_ns();
		run_inbox(r, SLUICE_REACTOR_BUDGET);
		fire_timers(r, SLUICE_REACTOR_BUDGET);
		wait_events(r);
		dispatch(r, SLUICE_REACTOR_BUDGET);
	}
}

/* Stop is set: wait until no poster is inside reactor_post, then run what they queued.
 * Posts fail from now on, so this terminates. */
static void drain_inbox(struct reactor *r)
{
	struct reactor_msg *m;

	ASSERT(stop_requested(r));
	while ((atomic_load_explicit(&r->post_state, memory_order_acquire) & ~POST_STOP) != 0)
		sched_yield();
	while ((m = ring_pop(r->inbox)) != NULL)
		m->fn(m);
}

/* On the loop thread, before the first turn: become the ring's issuer. */
static int loop_enter(struct reactor *r)
{
	ASSERT(tls_reactor == NULL); /* one loop per thread */
	if (r->setup_flags & IORING_SETUP_R_DISABLED) {
		long rc = syscall(__NR_io_uring_register, r->uring.ring_fd,
				  IORING_REGISTER_ENABLE_RINGS, NULL, 0);

		if (rc < 0) {
			int err = -errno;

			log_debug("%s: enable ring: %s (%d)", r->name, sluice_strerror(err), err);
			return err;
		}
	}
	tls_reactor = r;
	r->now_ns = env_now_ns();
	arm_wake(r);
	return 0;
}

/* On the loop thread, after stop: run queued messages, then take the wake-up read back
 * from the kernel so it can never write into wake_buf after the reactor is freed. */
static void loop_exit(struct reactor *r)
{
	struct io_uring_sqe *sqe;

	drain_inbox(r);
	if (r->wake_armed && (sqe = get_sqe(r)) != NULL) {
		io_uring_prep_cancel(sqe, &r->wake_io, 0);
		io_uring_sqe_set_data(sqe, NULL);
		while (r->wake_armed) {
			int rc = io_uring_submit_and_wait(&r->uring, 1);

			if (rc < 0 && rc != -EINTR) {
				log_debug("%s: cancel wake-up read: %s (%d)", r->name,
					  sluice_strerror(rc), rc);
				break; /* io_uring_queue_exit will cancel it */
			}
			dispatch(r, SLUICE_REACTOR_BUDGET);
		}
	}
	tls_reactor = NULL;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

int reactor_create(const char *name, struct reactor **out)
{
	struct reactor *r;
	int rc;

	if (name == NULL)
		return -EINVAL;
	r = aligned_alloc(CACHE_LINE, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	atomic_init(&r->claimed, false);
	atomic_init(&r->post_state, 0);
	atomic_init(&r->sleeping, false);
	r->wake_io.cb = wake_done;
	r->name = strdup(name);
	r->heap = calloc((size_t)SLUICE_REACTOR_TIMERS_MAX + 1, sizeof(r->heap[0]));
	if (r->name == NULL || r->heap == NULL) {
		rc = -ENOMEM;
		goto fail_free;
	}
	rc = ring_create(SLUICE_REACTOR_INBOX_DEPTH, &r->inbox);
	if (rc != 0)
		goto fail_free;
	r->wake_fd = eventfd(0, EFD_CLOEXEC); /* blocking on purpose: see arm_wake() */
	if (r->wake_fd < 0) {
		rc = -errno;
		goto fail_inbox;
	}
	rc = uring_init(r);
	if (rc != 0)
		goto fail_fd;
	*out = r;
	return 0;

fail_fd:
	close(r->wake_fd);
fail_inbox:
	ring_destroy(r->inbox);
fail_free:
	free(r->heap);
	free(r->name);
	free(r);
	return rc;
}

struct start_ctx {
	struct reactor *r;
	pthread_mutex_t mu; /* guards done and rc */
	pthread_cond_t cv;
	bool done;
	int rc;
};

static void *reactor_thread(void *arg)
{
	struct start_ctx *sc = arg;
	struct reactor *r = sc->r;
	char tname[THREAD_NAME_MAX + 1];
	size_t len = strnlen(r->name, THREAD_NAME_MAX);
	int rc;

	memcpy(tname, r->name, len);
	tname[len] = '\0';
	(void)pthread_setname_np(pthread_self(), tname); /* cosmetic: for ps and gdb */

	rc = loop_enter(r);
	pthread_mutex_lock(&sc->mu);
	sc->rc = rc;
	sc->done = true;
	pthread_cond_signal(&sc->cv);
	pthread_mutex_unlock(&sc->mu); /* sc lives on the starter's stack: gone after this */
	if (rc == 0) {
		loop(r);
		loop_exit(r);
	}
	return NULL;
}

/* Returns once the loop thread has enabled the ring, so that error is ours to return. */
int reactor_start(struct reactor *r)
{
	struct start_ctx sc = {.r = r};
	int rc;

	if (atomic_exchange(&r->claimed, true))
		return -EALREADY;
	pthread_mutex_init(&sc.mu, NULL);
	pthread_cond_init(&sc.cv, NULL);
	rc = pthread_create(&r->thread, NULL, reactor_thread, &sc);
	if (rc != 0) {
		atomic_store(&r->claimed, false); /* nothing ran: a retry is fine */
		rc = -rc;
		goto out;
	}
	pthread_mutex_lock(&sc.mu);
	while (!sc.done)
		pthread_cond_wait(&sc.cv, &sc.mu);
	pthread_mutex_unlock(&sc.mu);
	rc = sc.rc;
	if (rc != 0)
		(void)pthread_join(r->thread, NULL); /* it exits at once; nothing to report */
	else
		r->thread_started = true;
out:
	pthread_cond_destroy(&sc.cv);
	pthread_mutex_destroy(&sc.mu);
	return rc;
}

int reactor_run(struct reactor *r)
{
	int rc;

	if (atomic_exchange(&r->claimed, true))
		return -EALREADY;
	rc = loop_enter(r);
	if (rc != 0)
		return rc;
	loop(r);
	loop_exit(r);
	return 0;
}

void reactor_stop(struct reactor *r)
{
	/* Counted like a poster so the loop cannot finish (and destroy free r) while this
	 * thread is still about to write the eventfd. */
	uint64_t old = atomic_fetch_add(&r->post_state, 1);

	if (!(old & POST_STOP)) {
		atomic_fetch_or(&r->post_state, POST_STOP);
		wake(r);
	}
	atomic_fetch_sub_explicit(&r->post_state, 1, memory_order_release);
}

void reactor_destroy(struct reactor *r)
{
	struct reactor *prev;

	if (r == NULL)
		return;
	ASSERT(!reactor_on_thread(r));
	reactor_stop(r);
	if (r->thread_started) {
		int rc = pthread_join(r->thread, NULL);

		ASSERT(rc == 0);
	}
	/* If the loop never ran, messages posted before stop are still queued; this thread
	 * stands in for the loop thread to run them (exactly once, as promised). */
	prev = tls_reactor;
	tls_reactor = r;
	r->now_ns = env_now_ns();
	drain_inbox(r);
	tls_reactor = prev;

	ASSERT(r->inflight == 0);	/* upper layers finish their I/O before destroying us */
	io_uring_queue_exit(&r->uring); /* drops the fixed buffer table too */
	free(r->fixed);
	close(r->wake_fd);
	ring_destroy(r->inbox);
	free(r->heap);
	free(r->name);
	free(r);
}

uint64_t reactor_now_ns(const struct reactor *r)
{
	ASSERT(reactor_on_thread(r));
	return r->now_ns;
}

bool reactor_on_thread(const struct reactor *r)
{
	return tls_reactor == r;
}

const char *reactor_name(const struct reactor *r)
{
	return r->name;
}

/* ---- inbox --------------------------------------------------------------------------- */

int reactor_post(struct reactor *r, struct reactor_msg *msg)
{
	uint64_t old;
	int rc;

	ASSERT(msg != NULL && msg->fn != NULL);
	old = atomic_fetch_add(&r->post_state, 1);
	if (old & POST_STOP) {
		rc = -SLUICE_ESHUTDOWN;
		goto out;
	}
	rc = ring_push(r->inbox, msg);
	if (rc == 0)
		wake(r); /* still counted: the loop cannot exit under us */
out:
	atomic_fetch_sub_explicit(&r->post_state, 1, memory_order_release);
	return rc;
}

void reactor_post_wait(struct reactor *r, struct reactor_msg *msg)
{
	for (unsigned tries = 0;; tries++) {
		int rc = reactor_post(r, msg);

		if (rc == 0)
			return;
		if (rc == -SLUICE_ESHUTDOWN)
			PANIC("reactor %s: post_wait after stop would lose a completion", r->name);
		ASSERT(rc == -EAGAIN);
		ASSERT(!reactor_on_thread(r)); /* waiting on our own full inbox never ends */
		if (tries < POST_WAIT_YIELDS)
			sched_yield();
		else
			env_sleep_ns(POST_WAIT_SLEEP_NS);
	}
}

/* ---- io_uring operations ------------------------------------------------------------- */

struct io_uring_sqe *reactor_sqe(struct reactor *r, struct reactor_io *io)
{
	struct io_uring_sqe *sqe;

	ASSERT(reactor_on_thread(r));
	ASSERT(io == NULL || io->cb != NULL);
	sqe = get_sqe(r);
	if (sqe == NULL)
		return NULL;
	io_uring_sqe_set_data(sqe, io);
	if (io)
		r->inflight++; /* NULL: fire-and-forget (poll removal); its CQE is skipped */
	return sqe;
}

void reactor_flush(struct reactor *r)
{
	int rc;

	ASSERT(reactor_on_thread(r));
	rc = io_uring_submit(&r->uring);
	if (rc < 0)
		log_debug("%s: flush: %s (%d)", r->name, sluice_strerror(rc), rc);
}

uint32_t reactor_io_inflight(const struct reactor *r)
{
	return r->inflight;
}

/* ---- registered (fixed) buffers ---------------------------------------------------------- */

static int fixed_cmp(const void *a, const void *b)
{
	const struct fixed_range *x = a, *y = b;

	return (x->base > y->base) - (x->base < y->base);
}

/* Fills ranges[0..n) sorted by address; -EINVAL if a buffer is empty, too big, wraps or
 * overlaps another. */
static int fixed_ranges(const struct iovec *iov, unsigned n, struct fixed_range *ranges)
{
	for (unsigned i = 0; i < n; i++) {
		uintptr_t base = (uintptr_t)iov[i].iov_base;

		if (base == 0 || iov[i].iov_len == 0 ||
		    iov[i].iov_len > SLUICE_REACTOR_FIXED_BUF_BYTES_MAX ||
		    base + iov[i].iov_len < base)
			return -EINVAL;
		ranges[i] = (struct fixed_range){base, base + iov[i].iov_len, i};
	}
	qsort(ranges, n, sizeof(ranges[0]), fixed_cmp);
	for (unsigned i = 1; i < n; i++)
		if (ranges[i].base < ranges[i - 1].end)
			return -EINVAL;
	return 0;
}

/* Register with the kernel in order until it refuses one (see DESIGN); returns how many it
 * took, *refused the reason it stopped (0: all). Leaves no table behind if it took none. */
static unsigned fixed_register(struct reactor *r, const struct iovec *iov, unsigned n, int *refused)
{
	unsigned done = 0;
	int rc = io_uring_register_buffers_sparse(&r->uring, n);

	*refused = 0;
	if (rc == -EINVAL) { /* no sparse tables (before 5.19): all or nothing */
		rc = io_uring_register_buffers(&r->uring, iov, n);
		*refused = rc;
		r->fixed_table = rc == 0;
		return rc == 0 ? n : 0;
	}
	if (rc != 0) {
		*refused = rc;
		return 0;
	}
	r->fixed_table = true;
	while (done < n) {
		rc = io_uring_register_buffers_update_tag(&r->uring, done, iov + done, NULL,
							  n - done);
		if (rc <= 0) {
			*refused = rc < 0 ? rc : -EIO;
			break;
		}
		done += (unsigned)rc;
	}
	if (done == 0)
		reactor_unregister_buffers(r);
	return done;
}

int reactor_register_buffers(struct reactor *r, const struct iovec *iov, unsigned n, int *refused)
{
	struct fixed_range *ranges;
	unsigned done, k = 0;
	int why, rc;

	ASSERT(reactor_on_thread(r));
	if (n == 0 || n > SLUICE_REACTOR_FIXED_BUFS_MAX)
		return -EINVAL;
	if (r->fixed_table)
		return -EBUSY;
	ranges = malloc(n * sizeof(*ranges));
	if (ranges == NULL)
		return -ENOMEM;
	rc = fixed_ranges(iov, n, ranges);
	if (rc != 0) {
		free(ranges);
		return rc;
	}
	done = fixed_register(r, iov, n, &why);
	/* Keep the ranges the kernel took (indexes below done), still in address order. */
	for (unsigned i = 0; i < n; i++)
		if (ranges[i].index < done)
			ranges[k++] = ranges[i];
	if (done == 0) {
		free(ranges);
		ranges = NULL;
	}
	r->fixed = ranges;
	r->nfixed = done;
	log_debug("%s: %u of %u fixed buffers registered (%d)", r->name, done, n, why);
	*refused = why;
	return (int)done;
}

void reactor_unregister_buffers(struct reactor *r)
{
	ASSERT(reactor_on_thread(r));
	if (r->fixed_table) {
		int rc = io_uring_unregister_buffers(&r->uring);

		if (rc != 0) /* the table is gone either way (-ENXIO: there was none) */
			log_debug("%s: unregister buffers: %s (%d)", r->name, sluice_strerror(rc),
				  rc);
	}
	r->fixed_table = false;
	free(r->fixed);
	r->fixed = NULL;
	r->nfixed = 0;
}

int reactor_fixed_index(const struct reactor *r, const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	uint32_t lo = 0, hi = r->nfixed; /* finds the first range starting above a */
	const struct fixed_range *f;

	ASSERT(reactor_on_thread(r));
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (r->fixed[mid].base <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	f = &r->fixed[lo - 1]; /* the last range starting at or below a */
	if (a >= f->end || len > f->end - a)
		return -1;
	return (int)f->index;
}
