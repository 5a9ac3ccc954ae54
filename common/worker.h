/*
 * worker.h - a fixed pool of threads for blocking calls (DESIGN.md section 3).
 *
 * Reactors must never block. RocksDB writes with sync, fsync, fallocate and similar go to a
 * worker pool: the reactor submits a job, a worker thread runs job->run, and job->done runs
 * back on the submitting reactor's thread (posted through its inbox). The queue is bounded
 * (SLUICE_WORKER_QUEUE_DEPTH); a full queue returns -EAGAIN. Jobs run in FIFO order per pool
 * but concurrently across workers.
 */
#ifndef SLUICE_COMMON_WORKER_H
#define SLUICE_COMMON_WORKER_H

#include <stdint.h>

#include "common/assert.h"
#include "common/reactor.h"

struct worker_pool;

struct worker_job {
	/* Runs on a worker thread. May block. */
	void (*run)(struct worker_job *job);
	/* Runs on the origin reactor's thread after run returns (or with origin NULL: on the
	 * worker thread right after run). */
	void (*done)(struct worker_job *job);
	struct reactor *origin;	  /* set by worker_submit */
	struct reactor_msg msg_;  /* pool-private */
	struct worker_job *next_; /* pool-private */
};

/* name for thread names; nthreads in [1, SLUICE_WORKERS_MAX]; depth in [1,
 * SLUICE_WORKER_QUEUE_DEPTH]. */
SLUICE_MUST_USE int worker_pool_create(const char *name, unsigned nthreads, unsigned depth,
				       struct worker_pool **out);

/* Wait for queued jobs to finish, join the threads, free. NULL ok. Their done callbacks
 * are posted to their reactors, which must still be running to deliver them. */
void worker_pool_destroy(struct worker_pool *p);

/*
 * Queue job. origin: the reactor whose thread runs job->done (NULL: run done on the worker).
 * Any thread. 0 (run and done will each run exactly once), -EAGAIN when the queue is full,
 * -SLUICE_ESHUTDOWN while the pool is being destroyed.
 */
SLUICE_MUST_USE int worker_submit(struct worker_pool *p, struct reactor *origin,
				  struct worker_job *job);

#endif
