/*
 * worker.c - a fixed pool of threads that run blocking calls for reactors.
 *
 * DESIGN
 *
 * One bounded FIFO of jobs (an intrusive singly linked list through job->next_, so queuing
 * never allocates) shared by nthreads worker threads. The queue is guarded by one mutex
 * with one condition variable. A lock-free queue would buy nothing here: every job is a
 * blocking call (fsync, a synced RocksDB write) that costs microseconds to milliseconds,
 * so the lock is never the bottleneck, and the mutex gives us sleeping idle workers and a
 * simple, obviously correct shutdown for free.
 *
 * A worker pops the oldest job, runs job->run without the lock, then hands job->done back:
 * posted to job->origin's inbox with reactor_post_wait (which waits rather than drops when
 * that inbox is full, so a completion is never lost), or called right there when origin is
 * NULL. The job belongs to its submitter again once done starts; the pool does not touch
 * it afterwards.
 *
 * depth bounds the jobs waiting in the queue, not the ones being run: with every worker
 * busy, depth more jobs are accepted, then worker_submit returns -EAGAIN.
 *
 * Shutdown: worker_pool_destroy sets `stopping` (submits now fail with -SLUICE_ESHUTDOWN),
 * wakes every worker; workers keep popping until the queue is empty and only then exit,
 * so every accepted job runs. The origin reactors must still be running to take the done
 * messages (reactor_post_wait panics on a stopped reactor rather than lose one).
 *
 * Threads: worker_submit from any thread; create and destroy from the owning (control)
 * thread; run and (origin NULL) done on the pool's threads, named "<name>-w<i>".
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h> /* offsetof, for SLUICE_CONTAINER_OF */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/worker.h"

LOG_FACILITY("worker");

#define THREAD_NAME_MAX 15 /* pthread_setname_np limit, without the NUL */

struct worker_pool {
	char *name;
	unsigned depth;
	unsigned nthreads; /* threads actually started */
	pthread_t *threads;

	pthread_mutex_t mu;	 /* guards the fields below */
	pthread_cond_t cv;	 /* signaled on a new job and on stopping */
	struct worker_job *head; /* oldest queued job */
	struct worker_job *tail;
	unsigned queued; /* jobs in the list, <= depth */
	bool stopping;	 /* no more submits; workers exit once the list is empty */
};

struct worker_arg {
	struct worker_pool *p;
	unsigned idx;
};

/* Runs on the origin reactor's thread. */
static void job_done_msg(struct reactor_msg *msg)
{
	struct worker_job *job = SLUICE_CONTAINER_OF(msg, struct worker_job, msg_);

	job->done(job);
}

/* NULL once the pool is stopping and the queue is empty. */
static struct worker_job *next_job(struct worker_pool *p)
{
	struct worker_job *job;

	pthread_mutex_lock(&p->mu);
	while (p->head == NULL && !p->stopping)
		pthread_cond_wait(&p->cv, &p->mu);
	job = p->head;
	if (job != NULL) {
		p->head = job->next_;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
	}
	pthread_mutex_unlock(&p->mu);
	return job;
}

static void set_thread_name(const char *pool_name, unsigned idx)
{
	char suffix[16], tname[THREAD_NAME_MAX + 1];
	size_t slen = (size_t)snprintf(suffix, sizeof(suffix), "-w%u", idx); /* <= 12 chars */
	size_t plen = strnlen(pool_name, THREAD_NAME_MAX - slen); /* keep the index, cut the name */

	memcpy(tname, pool_name, plen);
	memcpy(tname + plen, suffix, slen + 1);
	(void)pthread_setname_np(pthread_self(), tname); /* cosmetic: for ps and gdb */
}

static void *worker_main(void *arg)
{
	struct worker_arg wa = *(struct worker_arg *)arg;
	struct worker_job *job;

	free(arg);
	set_thread_name(wa.p->name, wa.idx);
	while ((job = next_job(wa.p)) != NULL) {
		job->run(job);
		if (job->origin != NULL) {
			job->msg_.fn = job_done_msg;
			reactor_post_wait(job->origin, &job->msg_);
		} else {
			job->done(job);
		}
	}
	return NULL;
}

/* Stop and join the threads started so far; the queue must be empty or drainable. */
static void stop_and_join(struct worker_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++) {
		int rc = pthread_join(p->threads[i], NULL);

		ASSERT(rc == 0);
	}
}

static void pool_free(struct worker_pool *p)
{
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p->name);
	free(p);
}

int worker_pool_create(const char *name, unsigned nthreads, unsigned depth,
		       struct worker_pool **out)
{
	struct worker_pool *p;
	int rc = 0;

	if (name == NULL || nthreads < 1 || nthreads > SLUICE_WORKERS_MAX || depth < 1 ||
	    depth > SLUICE_WORKER_QUEUE_DEPTH)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->depth = depth;
	p->name = strdup(name);
	p->threads = calloc(nthreads, sizeof(p->threads[0]));
	if (p->name == NULL || p->threads == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));

		if (wa == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		*wa = (struct worker_arg){.p = p, .idx = i};
		rc = -pthread_create(&p->threads[i], NULL, worker_main, wa);
		if (rc != 0) {
			free(wa);
			goto fail;
		}
		p->nthreads++;
	}
	*out = p;
	return 0;

fail:
	log_debug("%s: create: %s (%d)", name, sluice_strerror(rc), rc);
	stop_and_join(p); /* nothing was queued yet */
	pool_free(p);
	return rc;
}

void worker_pool_destroy(struct worker_pool *p)
{
	if (p == NULL)
		return;
	stop_and_join(p); /* workers drain the queue before they exit */
	ASSERT(p->head == NULL && p->queued == 0);
	pool_free(p);
}

int worker_submit(struct worker_pool *p, struct reactor *origin, struct worker_job *job)
{
	int rc = 0;

	ASSERT(job != NULL && job->run != NULL && job->done != NULL);
	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		rc = -SLUICE_ESHUTDOWN;
	} else if (p->queued == p->depth) {
		rc = -EAGAIN;
	} else {
		job->origin = origin;
		job->next_ = NULL;
		if (p->tail != NULL)
			p->tail->next_ = job;
		else
			p->head = job;
		p->tail = job;
		p->queued++;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}
