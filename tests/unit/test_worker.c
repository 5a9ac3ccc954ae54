/*
 * test_worker.c - the worker pool: where run and done execute, bounds, shutdown.
 *
 * Counters touched by several worker threads are atomics; per-job fields are written by
 * one thread at a time and read by main only after a semaphore or join handshake.
 * Exits 0 (pass), 1 (fail) or 77 (io_uring not available for the origin reactor).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/reactor.h"
#include "common/worker.h"

static atomic_int failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			atomic_fetch_add(&failures, 1);                                          \
		}                                                                                \
	} while (0)

#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define WAIT_MS	  20000
#define CONTAINER SLUICE_CONTAINER_OF

static bool sem_wait_ms(sem_t *s, unsigned ms)
{
	for (unsigned i = 0; i <= ms; i++) {
		if (sem_trywait(s) == 0)
			return true;
		env_sleep_ms(1);
	}
	return false;
}

/* ---- 10,000 jobs, 4 workers, a reactor as origin ------------------------------------ */

#define NJOBS 10000

struct tjob {
	struct worker_job job;
	int id;
	atomic_int runs;
	int dones; /* only the reactor thread writes it */
	bool run_on_reactor;
};

static struct {
	struct reactor *r;
	struct worker_pool *p;
	struct tjob *jobs;
	int next_submit; /* loop thread */
	int eagain;	 /* loop thread */
	int dones;	 /* loop thread */
	struct reactor_msg kick;
	struct reactor_timer retry;
	sem_t all_done;
} tm;

static void many_run(struct worker_job *job)
{
	struct tjob *tj = CONTAINER(job, struct tjob, job);

	tj->run_on_reactor = reactor_on_thread(tm.r);
	atomic_fetch_add(&tj->runs, 1);
}

static void many_done(struct worker_job *job)
{
	struct tjob *tj = CONTAINER(job, struct tjob, job);

	CHECK(reactor_on_thread(tm.r));
	CHECK(atomic_load(&tj->runs) == 1); /* done strictly after run */
	CHECK(job->origin == tm.r);
	tj->dones++;
	if (++tm.dones == NJOBS)
		sem_post(&tm.all_done);
}

/* Loop thread: submit until the queue is full, then retry from a timer. */
static void submit_more(void)
{
	while (tm.next_submit < NJOBS) {
		struct tjob *tj = &tm.jobs[tm.next_submit];
		int rc = worker_submit(tm.p, tm.r, &tj->job);

		if (rc == -EAGAIN) {
			tm.eagain++;
			CHECK(reactor_timer_arm(tm.r, &tm.retry, ENV_NS_PER_MS) == 0);
			return;
		}
		CHECK(rc == 0);
		tm.next_submit++;
	}
}

static void kick_fn(struct reactor_msg *m)
{
	submit_more();
}

static void retry_cb(struct reactor_timer *t)
{
	submit_more();
}

static void test_many(void)
{
	int rc;

	memset(&tm, 0, sizeof(tm));
	sem_init(&tm.all_done, 0, 0);
	rc = reactor_create("t-origin", &tm.r);
	if (rc == -EPERM || rc == -ENOSYS) {
		fprintf(stderr, "io_uring not available (%d): skip\n", rc);
		exit(77);
	}
	REQUIRE(rc == 0);
	REQUIRE(worker_pool_create("t-many-workers", 4, SLUICE_WORKER_QUEUE_DEPTH, &tm.p) == 0);
	tm.jobs = calloc(NJOBS, sizeof(*tm.jobs));
	REQUIRE(tm.jobs != NULL);
	for (int i = 0; i < NJOBS; i++) {
		tm.jobs[i].id = i;
		tm.jobs[i].job.run = many_run;
		tm.jobs[i].job.done = many_done;
	}
	reactor_timer_init(&tm.retry, retry_cb);
	REQUIRE(reactor_start(tm.r) == 0);
	tm.kick.fn = kick_fn;
	REQUIRE(reactor_post(tm.r, &tm.kick) == 0);

	CHECK(sem_wait_ms(&tm.all_done, WAIT_MS));
	worker_pool_destroy(tm.p);
	reactor_destroy(tm.r); /* joins the loop thread: its writes are visible now */
	CHECK(tm.next_submit == NJOBS);
	CHECK(tm.dones == NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		CHECK(atomic_load(&tm.jobs[i].runs) == 1);
		CHECK(tm.jobs[i].dones == 1);
		CHECK(!tm.jobs[i].run_on_reactor);
	}
	printf("  many: %d EAGAIN retries\n", tm.eagain);
	free(tm.jobs);
	sem_destroy(&tm.all_done);
}

/* ---- a full queue returns -EAGAIN; origin NULL runs done on the worker --------------- */

#define DEPTH 4

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool released; /* guarded by mu */
	int nruns;     /* only the single worker thread writes it */
	sem_t blocker_running;
	sem_t done_sem;
} tq;

struct qjob {
	struct worker_job job;
	pthread_t run_thread;
	bool done_same_thread;
	int runs, dones;
	int run_order; /* position among runs: one worker, so FIFO is observable */
};

static void blocking_run(struct worker_job *job)
{
	struct qjob *qj = CONTAINER(job, struct qjob, job);

	qj->run_thread = pthread_self();
	qj->runs++;
	qj->run_order = tq.nruns++;
	sem_post(&tq.blocker_running);
	pthread_mutex_lock(&tq.mu);
	while (!tq.released)
		pthread_cond_wait(&tq.cv, &tq.mu);
	pthread_mutex_unlock(&tq.mu);
}

static void quick_run(struct worker_job *job)
{
	struct qjob *qj = CONTAINER(job, struct qjob, job);

	qj->run_thread = pthread_self();
	qj->runs++;
	qj->run_order = tq.nruns++;
}

static void q_done(struct worker_job *job)
{
	struct qjob *qj = CONTAINER(job, struct qjob, job);

	CHECK(job->origin == NULL);
	qj->done_same_thread = pthread_equal(qj->run_thread, pthread_self());
	qj->dones++;
	sem_post(&tq.done_sem);
}

static void test_queue_full(void)
{
	struct worker_pool *p;
	struct qjob jobs[DEPTH + 3];
	const int n = (int)SLUICE_ARRAY_SIZE(jobs);

	memset(&tq, 0, sizeof(tq));
	memset(jobs, 0, sizeof(jobs));
	pthread_mutex_init(&tq.mu, NULL);
	pthread_cond_init(&tq.cv, NULL);
	sem_init(&tq.blocker_running, 0, 0);
	sem_init(&tq.done_sem, 0, 0);

	CHECK(worker_pool_create("t-bad", 0, 1, &p) == -EINVAL);
	CHECK(worker_pool_create("t-bad", SLUICE_WORKERS_MAX + 1, 1, &p) == -EINVAL);
	CHECK(worker_pool_create("t-bad", 1, 0, &p) == -EINVAL);
	CHECK(worker_pool_create("t-bad", 1, SLUICE_WORKER_QUEUE_DEPTH + 1, &p) == -EINVAL);
	REQUIRE(worker_pool_create("t-full", 1, DEPTH, &p) == 0);

	for (int i = 0; i < n; i++) {
		jobs[i].job.run = i == 0 ? blocking_run : quick_run;
		jobs[i].job.done = q_done;
	}
	/* The one worker takes the blocker; then exactly DEPTH more fit in the queue. */
	CHECK(worker_submit(p, NULL, &jobs[0].job) == 0);
	CHECK(sem_wait_ms(&tq.blocker_running, WAIT_MS));
	for (int i = 1; i <= DEPTH; i++)
		CHECK(worker_submit(p, NULL, &jobs[i].job) == 0);
	CHECK(worker_submit(p, NULL, &jobs[DEPTH + 1].job) == -EAGAIN);
	CHECK(worker_submit(p, NULL, &jobs[DEPTH + 1].job) == -EAGAIN);

	pthread_mutex_lock(&tq.mu);
	tq.released = true;
	pthread_cond_broadcast(&tq.cv);
	pthread_mutex_unlock(&tq.mu);
	for (int i = 0; i <= DEPTH; i++)
		CHECK(sem_wait_ms(&tq.done_sem, WAIT_MS));
	/* Room again once the queue drained. */
	CHECK(worker_submit(p, NULL, &jobs[DEPTH + 1].job) == 0);
	CHECK(sem_wait_ms(&tq.done_sem, WAIT_MS));
	worker_pool_destroy(p);

	for (int i = 0; i < n; i++) {
		bool expected = i <= DEPTH + 1; /* the last job was never submitted */

		CHECK(jobs[i].runs == (expected ? 1 : 0));
		CHECK(jobs[i].dones == (expected ? 1 : 0));
		if (expected) {
			CHECK(jobs[i].done_same_thread);
			CHECK(jobs[i].run_order == i); /* FIFO */
		}
	}
	pthread_cond_destroy(&tq.cv);
	pthread_mutex_destroy(&tq.mu);
	sem_destroy(&tq.blocker_running);
	sem_destroy(&tq.done_sem);
}

/* ---- destroy finishes the queued jobs; submits during destroy fail ----------------- */

#define NSLOW 40
#define NLATE 1000

static struct {
	struct worker_pool *p;
	atomic_int runs, dones;
	atomic_int late_accepted, late_runs;
	atomic_bool saw_shutdown;
	struct worker_job late[NLATE];
} td;

static void slow_run(struct worker_job *job)
{
	env_sleep_ms(2);
	atomic_fetch_add(&td.runs, 1);
}

static void slow_done(struct worker_job *job)
{
	atomic_fetch_add(&td.dones, 1);
}

static void late_run(struct worker_job *job)
{
	atomic_fetch_add(&td.late_runs, 1);
}

/* The first job: keeps submitting while the pool is being destroyed until it is refused. */
static void submitter_run(struct worker_job *job)
{
	uint64_t give_up = env_now_ns() + (uint64_t)WAIT_MS * ENV_NS_PER_MS;

	for (int i = 0; i < NLATE && env_now_ns() < give_up;) {
		int rc;

		td.late[i].run = late_run;
		td.late[i].done = slow_done;
		rc = worker_submit(td.p, NULL, &td.late[i]);
		if (rc == -SLUICE_ESHUTDOWN) {
			atomic_store(&td.saw_shutdown, true);
			break;
		}
		if (rc == 0) {
			atomic_fetch_add(&td.late_accepted, 1);
			i++;
		} else {
			CHECK(rc == -EAGAIN);
		}
		env_sleep_ms(1);
	}
}

static void test_destroy_drains(void)
{
	static struct worker_job jobs[NSLOW];
	struct worker_job submitter = {.run = submitter_run, .done = slow_done};

	memset(&td, 0, sizeof(td));
	REQUIRE(worker_pool_create("t-drain", 2, 64, &td.p) == 0);
	CHECK(worker_submit(td.p, NULL, &submitter) == 0);
	for (int i = 0; i < NSLOW; i++) {
		jobs[i].run = slow_run;
		jobs[i].done = slow_done;
		CHECK(worker_submit(td.p, NULL, &jobs[i]) == 0);
	}
	worker_pool_destroy(td.p); /* returns only when every accepted job is done */
	CHECK(atomic_load(&td.runs) == NSLOW);
	CHECK(atomic_load(&td.saw_shutdown));
	CHECK(atomic_load(&td.late_runs) == atomic_load(&td.late_accepted));
	CHECK(atomic_load(&td.dones) == NSLOW + 1 + atomic_load(&td.late_accepted));
	worker_pool_destroy(NULL);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_many();
	printf("done many\n");
	test_queue_full();
	printf("done queue_full\n");
	test_destroy_drains();
	printf("done destroy_drains\n");
	return atomic_load(&failures) == 0 ? 0 : 1;
}
