/*
 * test_reactor.c - the reactor: timers, inbox, io_uring completions, lifecycle.
 *
 * Each scenario builds its own reactor. Work that must happen on the loop thread (arming
 * timers, preparing SQEs) is sent there with call_sync(), which posts a message and waits
 * for it; results recorded by callbacks are read back by the main thread only after a
 * semaphore handshake, so every shared field has a happens-before edge and no atomics are
 * needed for them. Exits 0 (pass), 1 (fail) or 77 (io_uring not available here).
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/reactor.h"

static atomic_int failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			atomic_fetch_add(&failures, 1);                                          \
		}                                                                                \
	} while (0)

/* A setup step whose failure makes the rest of the program meaningless. */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define MS	  ENV_NS_PER_MS
#define WAIT_MS	  20000 /* generous: sanitizer builds on a loaded 2-core box */
#define CONTAINER SLUICE_CONTAINER_OF

/* Wait for s, polling (yielding first, then sleeping), at most about ms. True if it was
 * posted. */
static bool sem_wait_ms(sem_t *s, unsigned ms)
{
	for (unsigned i = 0; i < 1000; i++) {
		if (sem_trywait(s) == 0)
			return true;
		sched_yield();
	}
	for (unsigned i = 0; i <= ms; i++) {
		if (sem_trywait(s) == 0)
			return true;
		env_sleep_ms(1);
	}
	return false;
}

static struct reactor *make_reactor(const char *name)
{
	struct reactor *r = NULL;
	int rc = reactor_create(name, &r);

	if (rc == -EPERM || rc == -ENOSYS) {
		fprintf(stderr, "io_uring not available (%d): skip\n", rc);
		exit(77);
	}
	REQUIRE(rc == 0 && r != NULL);
	return r;
}

/* ---- call_sync: run fn(arg) on the loop thread and wait for it -------------------- */

struct call {
	struct reactor_msg msg;
	struct reactor *r;
	void (*fn)(struct reactor *r, void *arg);
	void *arg;
	sem_t done;
};

static void call_msg(struct reactor_msg *m)
{
	struct call *c = CONTAINER(m, struct call, msg);

	CHECK(reactor_on_thread(c->r));
	c->fn(c->r, c->arg);
	sem_post(&c->done);
}

static void call_sync(struct reactor *r, void (*fn)(struct reactor *r, void *arg), void *arg)
{
	struct call c = {.msg.fn = call_msg, .r = r, .fn = fn, .arg = arg};

	sem_init(&c.done, 0, 0);
	reactor_post_wait(r, &c.msg); /* the inbox may be full (test_inbox_full) */
	REQUIRE(sem_wait_ms(&c.done, WAIT_MS));
	sem_destroy(&c.done);
}

static void nothing(struct reactor *r, void *arg)
{
}

/* ---- timers: order, not early, cancel, re-arm --------------------------------------- */

struct ttimer {
	struct reactor_timer t;
	struct reactor *r;
	int id;
	uint64_t earliest_ns; /* env_now_ns() at arm time + delay */
	uint64_t fired_ns;
	int fired;
};

static struct {
	struct ttimer tm[10];
	int order[10];
	int nfired;
	int rearms;
	sem_t sem;
} ts;

enum { T_REARM = 7, T_X = 8, T_Y = 9 };

static void arm_tt(struct reactor *r, struct ttimer *tt, uint64_t delay_ns)
{
	tt->earliest_ns = env_now_ns() + delay_ns;
	CHECK(reactor_timer_arm(r, &tt->t, delay_ns) == 0);
	CHECK(reactor_timer_armed(&tt->t));
}

static void order_cb(struct reactor_timer *t)
{
	struct ttimer *tt = CONTAINER(t, struct ttimer, t);
	uint64_t now = env_now_ns();

	CHECK(reactor_on_thread(tt->r));
	CHECK(!reactor_timer_armed(t));
	CHECK(now >= tt->earliest_ns);
	CHECK(now >= t->deadline_ns);
	tt->fired++;
	tt->fired_ns = now;
	ts.order[ts.nfired++] = tt->id;
	if (tt->id == 1) /* cancels timer 6 from inside a callback */
		reactor_timer_cancel(tt->r, &ts.tm[6].t);
	if (ts.nfired == 5)
		sem_post(&ts.sem);
}

static void rearm_cb(struct reactor_timer *t)
{
	struct ttimer *tt = CONTAINER(t, struct ttimer, t);
	uint64_t now = env_now_ns();

	CHECK(reactor_on_thread(tt->r));
	CHECK(now >= tt->earliest_ns);
	tt->fired++;
	if (tt->fired < 5)
		arm_tt(tt->r, tt, 2 * MS); /* re-arm itself */
	else
		sem_post(&ts.sem);
}

/* Y pulls X, armed far in the future, in to 10 ms from now. */
static void y_cb(struct reactor_timer *t)
{
	struct ttimer *y = CONTAINER(t, struct ttimer, t);

	CHECK(env_now_ns() >= y->earliest_ns);
	y->fired++;
	y->fired_ns = env_now_ns();
	CHECK(reactor_timer_armed(&ts.tm[T_X].t));
	arm_tt(y->r, &ts.tm[T_X], 10 * MS);
}

static void x_cb(struct reactor_timer *t)
{
	struct ttimer *x = CONTAINER(t, struct ttimer, t);

	CHECK(env_now_ns() >= x->earliest_ns);
	x->fired++;
	x->fired_ns = env_now_ns();
	sem_post(&ts.sem);
}

static void timers_setup(struct reactor *r, void *arg)
{
	static const uint64_t delays_ms[7] = {30, 10, 50, 20, 40, 25, 45};

	for (int i = 0; i < 10; i++) {
		ts.tm[i].r = r;
		ts.tm[i].id = i;
		reactor_timer_init(&ts.tm[i].t, i < 7	       ? order_cb
						: i == T_REARM ? rearm_cb
						: i == T_X     ? x_cb
							       : y_cb);
		CHECK(!reactor_timer_armed(&ts.tm[i].t));
	}
	/* Timer 0 is first armed at 1 ms, then pushed back to 30 ms (re-arm moves down). */
	arm_tt(r, &ts.tm[0], 1 * MS);
	for (int i = 0; i < 7; i++)
		arm_tt(r, &ts.tm[i], delays_ms[i] * MS);
	reactor_timer_cancel(r, &ts.tm[5].t);
	CHECK(!reactor_timer_armed(&ts.tm[5].t));
	reactor_timer_cancel(r, &ts.tm[5].t); /* no-op when not armed */
	arm_tt(r, &ts.tm[T_REARM], 2 * MS);
	arm_tt(r, &ts.tm[T_X], 3600 * ENV_NS_PER_S);
	arm_tt(r, &ts.tm[T_Y], 5 * MS);
}

static void test_timers(void)
{
	static const int want[5] = {1, 3, 0, 4, 2};
	struct reactor *r = make_reactor("t-timers");

	memset(&ts, 0, sizeof(ts));
	sem_init(&ts.sem, 0, 0);
	REQUIRE(reactor_start(r) == 0);
	CHECK(reactor_start(r) == -EALREADY);
	call_sync(r, timers_setup, NULL);
	for (int i = 0; i < 3; i++) /* order timers, re-arm chain, X */
		CHECK(sem_wait_ms(&ts.sem, WAIT_MS));
	env_sleep_ms(60);	     /* past the deadlines of the cancelled timers */
	call_sync(r, nothing, NULL); /* orders the reads below after the callbacks */

	CHECK(ts.nfired == 5);
	for (int i = 0; i < 5; i++)
		CHECK(ts.order[i] == want[i]);
	for (int i = 0; i < 5; i++)
		CHECK(ts.tm[i].fired == 1);
	CHECK(ts.tm[5].fired == 0); /* cancelled right after arming */
	CHECK(ts.tm[6].fired == 0); /* cancelled by timer 1's callback */
	CHECK(!reactor_timer_armed(&ts.tm[6].t));
	CHECK(ts.tm[T_REARM].fired == 5);
	CHECK(ts.tm[T_Y].fired == 1);
	CHECK(ts.tm[T_X].fired == 1);
	CHECK(ts.tm[T_X].fired_ns >= ts.tm[T_Y].fired_ns + 10 * MS);
	CHECK(!reactor_on_thread(r));
	reactor_destroy(r);
	sem_destroy(&ts.sem);
}

/* ---- 10,000 random timers, a third of them cancelled -------------------------------- */

#define NT 10000

static struct {
	struct ttimer tm[NT];
	bool cancelled[NT];
	uint64_t last_deadline;
	int nfired, nexpected;
	sem_t sem;
} tr;

static void many_cb(struct reactor_timer *t)
{
	struct ttimer *tt = CONTAINER(t, struct ttimer, t);
	uint64_t now = env_now_ns();

	CHECK(reactor_on_thread(tt->r));
	CHECK(!tr.cancelled[tt->id]);
	CHECK(tt->fired == 0);
	CHECK(t->deadline_ns >= tr.last_deadline);		/* deadline order */
	CHECK(now >= t->deadline_ns && now >= tt->earliest_ns); /* never early */
	tr.last_deadline = t->deadline_ns;
	tt->fired++;
	if (++tr.nfired == tr.nexpected)
		sem_post(&tr.sem);
}

static void many_setup(struct reactor *r, void *arg)
{
	for (int i = 0; i < NT; i++) {
		tr.tm[i].r = r;
		tr.tm[i].id = i;
		reactor_timer_init(&tr.tm[i].t, many_cb);
		arm_tt(r, &tr.tm[i], env_random_below(200 * MS));
	}
	/* Cancel a random third: removal from the middle of the heap. */
	for (int n = 0; n < NT / 3;) {
		int i = (int)env_random_below(NT);

		if (!tr.cancelled[i]) {
			reactor_timer_cancel(r, &tr.tm[i].t);
			tr.cancelled[i] = true;
			n++;
		}
	}
	/* And re-arm a few hundred of the rest to new random delays. */
	for (int n = 0; n < 300; n++) {
		int i = (int)env_random_below(NT);

		if (!tr.cancelled[i] && reactor_timer_armed(&tr.tm[i].t))
			arm_tt(r, &tr.tm[i], env_random_below(200 * MS));
	}
	tr.nexpected = NT - NT / 3;
}

static void test_many_timers(void)
{
	struct reactor *r = make_reactor("t-many");

	memset(&tr, 0, sizeof(tr));
	sem_init(&tr.sem, 0, 0);
	REQUIRE(reactor_start(r) == 0);
	call_sync(r, many_setup, NULL);
	CHECK(sem_wait_ms(&tr.sem, WAIT_MS));
	env_sleep_ms(20);
	call_sync(r, nothing, NULL);
	CHECK(tr.nfired == NT - NT / 3);
	for (int i = 0; i < NT; i++)
		CHECK(tr.tm[i].fired == (tr.cancelled[i] ? 0 : 1));
	reactor_destroy(r);
	sem_destroy(&tr.sem);
}

/* ---- the heap is bounded ------------------------------------------------------------ */

static void heap_full(struct reactor *r, void *arg)
{
	struct reactor_timer *t = arg;

	for (uint32_t i = 0; i < SLUICE_REACTOR_TIMERS_MAX; i++) {
		reactor_timer_init(&t[i], many_cb);
		CHECK(reactor_timer_arm(r, &t[i], 3600 * ENV_NS_PER_S + i) == 0);
	}
	reactor_timer_init(&t[SLUICE_REACTOR_TIMERS_MAX], many_cb);
	CHECK(reactor_timer_arm(r, &t[SLUICE_REACTOR_TIMERS_MAX], 1) == -EAGAIN);
	CHECK(!reactor_timer_armed(&t[SLUICE_REACTOR_TIMERS_MAX]));
	CHECK(reactor_timer_arm(r, &t[7], 1) == 0); /* re-arming an armed one still works */
	for (uint32_t i = 0; i < SLUICE_REACTOR_TIMERS_MAX; i++)
		reactor_timer_cancel(r, &t[i]);
	CHECK(reactor_timer_arm(r, &t[SLUICE_REACTOR_TIMERS_MAX], 3600 * ENV_NS_PER_S) == 0);
	reactor_timer_cancel(r, &t[SLUICE_REACTOR_TIMERS_MAX]);
}

static void test_heap_full(void)
{
	struct reactor *r = make_reactor("t-heap");
	struct reactor_timer *t = calloc(SLUICE_REACTOR_TIMERS_MAX + 1, sizeof(*t));

	REQUIRE(t != NULL);
	REQUIRE(reactor_start(r) == 0);
	call_sync(r, heap_full, t);
	reactor_destroy(r);
	free(t);
}

/* ---- inbox: two producers, 200,000 messages each ----------------------------------- */

#define NPROD 2
#define NMSG  200000

struct pmsg {
	struct reactor_msg msg;
	uint32_t producer;
	uint32_t seq;
};

static struct {
	struct reactor *r;
	struct pmsg *msgs[NPROD];
	uint32_t next[NPROD]; /* loop thread: next seq expected per producer */
	uint64_t eagain[NPROD];
	int done_producers;
	sem_t sem;
} tp;

static void pmsg_fn(struct reactor_msg *m)
{
	struct pmsg *pm = CONTAINER(m, struct pmsg, msg);

	CHECK(reactor_on_thread(tp.r));
	CHECK(pm->seq == tp.next[pm->producer]); /* per-producer FIFO, no loss, no dup */
	tp.next[pm->producer] = pm->seq + 1;
	if (tp.next[pm->producer] == NMSG && ++tp.done_producers == NPROD)
		sem_post(&tp.sem);
}

static void *producer(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg;

	CHECK(!reactor_on_thread(tp.r));
	for (uint32_t i = 0; i < NMSG; i++) {
		struct pmsg *pm = &tp.msgs[p][i];
		int rc;

		pm->msg.fn = pmsg_fn;
		pm->producer = p;
		pm->seq = i;
		while ((rc = reactor_post(tp.r, &pm->msg)) == -EAGAIN) {
			tp.eagain[p]++;
			sched_yield();
		}
		CHECK(rc == 0);
	}
	return NULL;
}

static void test_post_many(void)
{
	pthread_t th[NPROD];

	memset(&tp, 0, sizeof(tp));
	sem_init(&tp.sem, 0, 0);
	tp.r = make_reactor("t-post");
	for (int p = 0; p < NPROD; p++) {
		tp.msgs[p] = calloc(NMSG, sizeof(struct pmsg));
		REQUIRE(tp.msgs[p] != NULL);
	}
	REQUIRE(reactor_start(tp.r) == 0);
	for (uintptr_t p = 0; p < NPROD; p++)
		REQUIRE(pthread_create(&th[p], NULL, producer, (void *)p) == 0);
	for (int p = 0; p < NPROD; p++)
		pthread_join(th[p], NULL);
	CHECK(sem_wait_ms(&tp.sem, WAIT_MS));
	env_sleep_ms(10);
	call_sync(tp.r, nothing, NULL);
	for (int p = 0; p < NPROD; p++)
		CHECK(tp.next[p] == NMSG);
	CHECK(tp.done_producers == NPROD);
	printf("  post: EAGAIN retries %llu, %llu\n", (unsigned long long)tp.eagain[0],
	       (unsigned long long)tp.eagain[1]);
	reactor_destroy(tp.r);
	for (int p = 0; p < NPROD; p++)
		free(tp.msgs[p]);
	sem_destroy(&tp.sem);
}

/* ---- inbox: ping-pong, so most posts land while the loop is falling asleep ---------- */

static void test_pingpong(void)
{
	struct reactor *r = make_reactor("t-pingpong");

	REQUIRE(reactor_start(r) == 0);
	/* A lost wake-up leaves call_sync waiting for WAIT_MS and failing. */
	for (int i = 0; i < 20000; i++)
		call_sync(r, nothing, NULL);
	reactor_destroy(r);
}

/* ---- inbox: full, before start, after stop ------------------------------------------ */

static struct {
	struct reactor *r;
	int ran;
	int off_thread;
	bool block_released;
	sem_t blocked, release;
} tf;

static void count_fn(struct reactor_msg *m)
{
	if (!reactor_on_thread(tf.r))
		tf.off_thread++;
	tf.ran++;
}

static void block_fn(struct reactor_msg *m)
{
	sem_post(&tf.blocked);
	CHECK(sem_wait_ms(&tf.release, WAIT_MS));
}

static void test_inbox_full(void)
{
	struct reactor_msg *msgs = calloc(SLUICE_REACTOR_INBOX_DEPTH + 1, sizeof(*msgs));
	struct reactor_msg blocker = {.fn = block_fn};

	REQUIRE(msgs != NULL);
	memset(&tf, 0, sizeof(tf));
	sem_init(&tf.blocked, 0, 0);
	sem_init(&tf.release, 0, 0);

	/* Fill the inbox of a reactor that is not running yet. */
	tf.r = make_reactor("t-full");
	for (int i = 0; i <= SLUICE_REACTOR_INBOX_DEPTH; i++)
		msgs[i].fn = count_fn;
	for (int i = 0; i < SLUICE_REACTOR_INBOX_DEPTH; i++)
		CHECK(reactor_post(tf.r, &msgs[i]) == 0);
	CHECK(reactor_post(tf.r, &msgs[SLUICE_REACTOR_INBOX_DEPTH]) == -EAGAIN);
	REQUIRE(reactor_start(tf.r) == 0);
	call_sync(tf.r, nothing, NULL); /* FIFO: everything before it has run */
	CHECK(tf.ran == SLUICE_REACTOR_INBOX_DEPTH);
	CHECK(tf.off_thread == 0);

	/* Messages queued before stop still run; posts after stop fail. */
	tf.ran = 0;
	CHECK(reactor_post(tf.r, &blocker) == 0);
	CHECK(sem_wait_ms(&tf.blocked, WAIT_MS)); /* the loop is stuck in block_fn */
	for (int i = 0; i < 100; i++)
		CHECK(reactor_post(tf.r, &msgs[i]) == 0);
	reactor_stop(tf.r);
	reactor_stop(tf.r); /* idempotent */
	CHECK(reactor_post(tf.r, &msgs[100]) == -SLUICE_ESHUTDOWN);
	sem_post(&tf.release);
	reactor_destroy(tf.r);
	CHECK(tf.ran == 100);
	CHECK(tf.off_thread == 0);

	/* A reactor that never ran: destroy runs what was queued, as its loop thread. */
	tf.ran = 0;
	tf.r = make_reactor("t-never");
	for (int i = 0; i < 10; i++)
		CHECK(reactor_post(tf.r, &msgs[i]) == 0);
	reactor_destroy(tf.r);
	CHECK(tf.ran == 10);
	CHECK(tf.off_thread == 0);

	/* Created and destroyed with nothing at all. */
	reactor_destroy(make_reactor("t-empty"));
	reactor_destroy(NULL);

	free(msgs);
	sem_destroy(&tf.blocked);
	sem_destroy(&tf.release);
}

/* ---- io_uring operations ------------------------------------------------------------ */

struct tio {
	struct reactor_io io;
	struct reactor *r;
	int calls;
	int res;
	uint32_t flags;
	uint32_t inflight_in_cb;
	sem_t sem;
};

static int pipefd[2];
static char rbuf[64];
static const char payload[] = "hello, reactor";

static void tio_cb(struct reactor_io *io, int res, uint32_t cqe_flags)
{
	struct tio *t = CONTAINER(io, struct tio, io);

	CHECK(reactor_on_thread(t->r));
	t->calls++;
	t->res = res;
	t->flags = cqe_flags;
	t->inflight_in_cb = reactor_io_inflight(t->r);
	sem_post(&t->sem);
}

static void tio_init(struct tio *t, struct reactor *r)
{
	memset(t, 0, sizeof(*t));
	t->io.cb = tio_cb;
	t->r = r;
	sem_init(&t->sem, 0, 0);
}

static void nop_setup(struct reactor *r, void *arg)
{
	struct io_uring_sqe *sqe = reactor_sqe(r, arg);

	REQUIRE(sqe != NULL);
	io_uring_prep_nop(sqe);
	CHECK(reactor_io_inflight(r) == 1);
}

static void read_setup(struct reactor *r, void *arg)
{
	struct io_uring_sqe *sqe = reactor_sqe(r, arg);

	REQUIRE(sqe != NULL);
	io_uring_prep_read(sqe, pipefd[0], rbuf, sizeof(rbuf), 0);
	reactor_flush(r);
	CHECK(reactor_io_inflight(r) == 1);
}

static void *late_writer(void *arg)
{
	env_sleep_ms(20);
	CHECK(write(pipefd[1], payload, strlen(payload)) == (ssize_t)strlen(payload));
	return NULL;
}

/* Multishot poll: one SQE, several CQEs with IORING_CQE_F_MORE, inflight counts it once. */
static struct tio mpoll, mremove;

static void mpoll_setup(struct reactor *r, void *arg)
{
	struct io_uring_sqe *sqe = reactor_sqe(r, &mpoll.io);

	REQUIRE(sqe != NULL);
	io_uring_prep_poll_multishot(sqe, pipefd[0], POLLIN);
}

static void mpoll_remove(struct reactor *r, void *arg)
{
	struct io_uring_sqe *sqe = reactor_sqe(r, &mremove.io);

	REQUIRE(sqe != NULL);
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&mpoll.io);
}

/* Written from the loop thread, so the thread sanitizer sees main's earlier reads of mpoll
 * ordered before the CQE this write causes (it cannot see causality through the kernel). */
static void write_x(struct reactor *r, void *arg)
{
	CHECK(write(pipefd[1], "x", 1) == 1);
}

static void test_io(void)
{
	struct reactor *r = make_reactor("t-io");
	struct tio nop, rd;
	pthread_t th;
	char c;

	REQUIRE(pipe(pipefd) == 0);
	REQUIRE(reactor_start(r) == 0);
	CHECK(!reactor_on_thread(r));

	tio_init(&nop, r);
	call_sync(r, nop_setup, &nop);
	CHECK(sem_wait_ms(&nop.sem, WAIT_MS));
	CHECK(nop.calls == 1 && nop.res == 0 && nop.inflight_in_cb == 0);

	tio_init(&rd, r);
	call_sync(r, read_setup, &rd);
	REQUIRE(pthread_create(&th, NULL, late_writer, NULL) == 0);
	CHECK(sem_wait_ms(&rd.sem, WAIT_MS));
	pthread_join(th, NULL);
	CHECK(rd.calls == 1);
	CHECK(rd.res == (int)strlen(payload));
	CHECK(memcmp(rbuf, payload, strlen(payload)) == 0);
	CHECK(rd.inflight_in_cb == 0);

	tio_init(&mpoll, r);
	tio_init(&mremove, r);
	call_sync(r, mpoll_setup, NULL);
	for (int i = 0; i < 3; i++) {
		call_sync(r, write_x, NULL);
		CHECK(sem_wait_ms(&mpoll.sem, WAIT_MS));
		call_sync(r, nothing, NULL);
		CHECK(mpoll.calls == i + 1);
		CHECK(mpoll.res & POLLIN);
		CHECK(mpoll.flags & IORING_CQE_F_MORE);
		CHECK(mpoll.inflight_in_cb == 1);
		CHECK(read(pipefd[0], &c, 1) == 1);
	}
	call_sync(r, mpoll_remove, NULL);
	CHECK(sem_wait_ms(&mremove.sem, WAIT_MS));
	CHECK(sem_wait_ms(&mpoll.sem, WAIT_MS));
	call_sync(r, nothing, NULL);
	CHECK(mremove.res == 0);
	CHECK(mpoll.calls == 4 && mpoll.res == -ECANCELED);
	CHECK(!(mpoll.flags & IORING_CQE_F_MORE));
	CHECK(reactor_io_inflight(r) == 0);

	reactor_destroy(r);
	close(pipefd[0]);
	close(pipefd[1]);
	sem_destroy(&nop.sem);
	sem_destroy(&rd.sem);
	sem_destroy(&mpoll.sem);
	sem_destroy(&mremove.sem);
}

/* ---- a busy reactor (inbox never empty) still reaps completions and fires timers --- */

static struct {
	struct reactor *r;
	struct reactor_msg spin;
	struct tio rd;
	struct ttimer tm;
	uint64_t spins;
	uint64_t give_up_ns;
	bool read_done, timer_done, timed_out;
	sem_t sem;
} tb;

static void busy_read_cb(struct reactor_io *io, int res, uint32_t cqe_flags)
{
	CHECK(res == (int)strlen(payload));
	tb.read_done = true;
}

static void busy_timer_cb(struct reactor_timer *t)
{
	CHECK(env_now_ns() >= tb.tm.earliest_ns);
	tb.timer_done = true;
}

static void spin_fn(struct reactor_msg *m)
{
	tb.spins++;
	if (tb.read_done && tb.timer_done) {
		sem_post(&tb.sem);
		return;
	}
	if (env_now_ns() > tb.give_up_ns) {
		tb.timed_out = true;
		sem_post(&tb.sem);
		return;
	}
	CHECK(reactor_post(tb.r, &tb.spin) == 0); /* keeps the inbox non-empty */
}

static void busy_setup(struct reactor *r, void *arg)
{
	struct io_uring_sqe *sqe = reactor_sqe(r, &tb.rd.io);

	REQUIRE(sqe != NULL);
	io_uring_prep_read(sqe, pipefd[0], rbuf, sizeof(rbuf), 0);
	tb.tm.r = r;
	reactor_timer_init(&tb.tm.t, busy_timer_cb);
	arm_tt(r, &tb.tm, 10 * MS);
	tb.give_up_ns = env_now_ns() + WAIT_MS * MS;
	tb.spin.fn = spin_fn;
	CHECK(reactor_post(r, &tb.spin) == 0);
}

static void test_busy(void)
{
	pthread_t th;

	memset(&tb, 0, sizeof(tb));
	memset(rbuf, 0, sizeof(rbuf));
	sem_init(&tb.sem, 0, 0);
	REQUIRE(pipe(pipefd) == 0);
	tb.r = make_reactor("t-busy");
	tb.rd.io.cb = busy_read_cb;
	REQUIRE(reactor_start(tb.r) == 0);
	call_sync(tb.r, busy_setup, NULL);
	REQUIRE(pthread_create(&th, NULL, late_writer, NULL) == 0);
	CHECK(sem_wait_ms(&tb.sem, WAIT_MS + 5000));
	pthread_join(th, NULL);
	call_sync(tb.r, nothing, NULL);
	CHECK(!tb.timed_out);
	CHECK(tb.read_done && tb.timer_done);
	CHECK(tb.spins > 100); /* it really was busy the whole time */
	CHECK(memcmp(rbuf, payload, strlen(payload)) == 0);
	reactor_destroy(tb.r);
	close(pipefd[0]);
	close(pipefd[1]);
	sem_destroy(&tb.sem);
}

/* ---- lifecycle: destroy with timers armed; reactor_run on the calling thread -------- */

static struct ttimer armed[2];

static void never_cb(struct reactor_timer *t)
{
	CHECK(!"a timer armed at stop must not fire");
}

static void arm_and_leave(struct reactor *r, void *arg)
{
	for (int i = 0; i < 2; i++) {
		reactor_timer_init(&armed[i].t, never_cb);
		arm_tt(r, &armed[i], (i ? 3600 : 10) * ENV_NS_PER_S);
	}
}

static struct {
	struct reactor *r;
	struct reactor_msg msg;
	struct ttimer tm;
	int fired;
	bool on_thread_in_msg;
} trun;

static void run_timer_cb(struct reactor_timer *t)
{
	CHECK(reactor_on_thread(trun.r));
	CHECK(env_now_ns() >= trun.tm.earliest_ns);
	trun.fired++;
	reactor_stop(trun.r); /* stop from inside the loop */
}

static void run_msg(struct reactor_msg *m)
{
	trun.on_thread_in_msg = reactor_on_thread(trun.r);
	trun.tm.r = trun.r;
	reactor_timer_init(&trun.tm.t, run_timer_cb);
	arm_tt(trun.r, &trun.tm, 5 * MS);
}

static void test_lifecycle(void)
{
	struct reactor *r = make_reactor("t-armed");

	REQUIRE(reactor_start(r) == 0);
	call_sync(r, arm_and_leave, NULL);
	reactor_destroy(r); /* stops with both timers armed */

	memset(&trun, 0, sizeof(trun));
	trun.r = make_reactor("t-run-with-a-long-name");
	CHECK(strcmp(reactor_name(trun.r), "t-run-with-a-long-name") == 0);
	trun.msg.fn = run_msg;
	CHECK(reactor_post(trun.r, &trun.msg) == 0);
	CHECK(!reactor_on_thread(trun.r));
	CHECK(reactor_run(trun.r) == 0); /* returns once run_timer_cb stops it */
	CHECK(!reactor_on_thread(trun.r));
	CHECK(trun.on_thread_in_msg);
	CHECK(trun.fired == 1);
	CHECK(reactor_run(trun.r) == -EALREADY);
	CHECK(reactor_post(trun.r, &trun.msg) == -SLUICE_ESHUTDOWN);
	reactor_destroy(trun.r);
}

int main(void)
{
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{"timers", test_timers},
		{"many_timers", test_many_timers},
		{"heap_full", test_heap_full},
		{"inbox_full", test_inbox_full},
		{"post_many", test_post_many},
		{"pingpong", test_pingpong},
		{"io", test_io},
		{"busy", test_busy},
		{"lifecycle", test_lifecycle},
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < SLUICE_ARRAY_SIZE(tests); i++) {
		int before = atomic_load(&failures);

		tests[i].fn();
		printf("%s %s\n", atomic_load(&failures) == before ? "ok  " : "FAIL",
		       tests[i].name);
	}
	return atomic_load(&failures) == 0 ? 0 : 1;
}
