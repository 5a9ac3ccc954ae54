/*
 * bufpool.h - pools of aligned buffers for the data path (STYLE.md rule 9).
 *
 * Buffers come in power-of-two size classes from 4 KiB to 64 MiB plus one class of exactly
 * SLUICE_FRAME_BULK_MAX, all aligned to SLUICE_BUFPOOL_ALIGN so they are usable for
 * O_DIRECT and memory registration. A pool has a byte budget: it allocates lazily up to
 * the budget (or eagerly with bufpool_reserve at startup, which is what daemons do: first
 * touch of fresh memory is slow on our VMs), keeps freed buffers on per-class free lists
 * for reuse, and returns -EAGAIN when a request would exceed the budget even after
 * releasing cached buffers of other classes. Callers treat -EAGAIN as backpressure.
 *
 * Pinned buffers (bufpool_reserve_pinned) are reserved buffers the pool never frees before
 * bufpool_destroy, so their memory can be registered with io_uring as fixed buffers (a
 * registration holds the pages: memory freed and reused behind it would make fixed I/O
 * read or write the wrong pages). bufpool_get prefers them to other cached buffers.
 *
 * Thread-safe (one mutex per pool; get/put are a few list operations under it). A buffer
 * may be returned from any thread.
 */
#ifndef SLUICE_COMMON_BUFPOOL_H
#define SLUICE_COMMON_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/assert.h"

struct bufpool;

/* A pooled buffer. data and cap are fixed; len is the caller's (how much is valid). */
struct buf {
	void *data;
	size_t cap;
	size_t len;
	struct bufpool *pool;
	struct buf *next_free;	 /* pool-private */
	struct buf *next_pinned; /* pool-private: the pool's pinned buffers, in reserve order */
	uint8_t size_class;	 /* pool-private */
	bool pinned;		 /* never freed before bufpool_destroy (bufpool_reserve_pinned) */
};

struct bufpool_stats {
	size_t budget_bytes;
	size_t allocated_bytes; /* in use + cached */
	size_t in_use_bytes;
	size_t pinned_bytes; /* part of allocated_bytes for good */
	unsigned pinned;     /* pinned buffers */
	uint64_t gets, puts, misses_eagain;
};

/* name is for stats and logs (copied). budget_bytes >= SLUICE_BUFPOOL_MIN_BYTES. */
SLUICE_MUST_USE int bufpool_create(const char *name, size_t budget_bytes, struct bufpool **out);

/* Free every cached (and pinned) buffer and the pool. All buffers must have been returned
 * (asserted), and no ring may still have pinned ones registered. */
void bufpool_destroy(struct bufpool *p);

/* Allocate and touch count buffers able to hold size bytes now, onto the free list. */
SLUICE_MUST_USE int bufpool_reserve(struct bufpool *p, size_t size, unsigned count);

/*
 * Like bufpool_reserve, but the buffers are pinned: never freed before bufpool_destroy (not
 * even to make room for other classes), so their bytes count against the budget for good,
 * and handed out by bufpool_get before any other cached buffer of their class. For memory
 * registered with io_uring (reactor_register_buffers). -EINVAL, -EAGAIN (over budget),
 * -ENOMEM; buffers pinned before an error stay pinned. Setup thread, before the data path.
 */
SLUICE_MUST_USE int bufpool_reserve_pinned(struct bufpool *p, size_t size, unsigned count);

/*
 * Fill iov[0..max) with the memory (data, cap) of the pool's pinned buffers in the order they
 * were reserved; returns how many pinned buffers there are (more than max: iov holds the
 * first max). The memory stays valid until bufpool_destroy, so whoever registers it must
 * unregister it (or destroy the ring) before destroying the pool. Any thread.
 */
unsigned bufpool_pinned(struct bufpool *p, struct iovec *iov, unsigned max);

/*
 * A buffer with cap >= size (size may be 0: smallest class). len is set to size.
 * -EINVAL if size > SLUICE_FRAME_BULK_MAX, -EAGAIN if over budget, -ENOMEM.
 */
SLUICE_MUST_USE int bufpool_get(struct bufpool *p, size_t size, struct buf **out);

/* Return a buffer to its pool. NULL ok. Any thread. */
void buf_put(struct buf *b);

void bufpool_stats(struct bufpool *p, struct bufpool_stats *out);

/* The capacity a request of size bytes is rounded up to, or 0 if size is too large. */
size_t bufpool_class_size(size_t size);

#endif
