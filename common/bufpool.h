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
 * Thread-safe (one mutex per pool; get/put are a few list operations under it). A buffer
 * may be returned from any thread.
 */
#ifndef SLUICE_COMMON_BUFPOOL_H
#define SLUICE_COMMON_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"

struct bufpool;

/* A pooled buffer. data and cap are fixed; len is the caller's (how much is valid). */
struct buf {
	void *data;
	size_t cap;
	size_t len;
	struct bufpool *pool;
	struct buf *next_free; /* pool-private */
	uint8_t size_class;    /* pool-private */
};

struct bufpool_stats {
	size_t budget_bytes;
	size_t allocated_bytes; /* in use + cached */
	size_t in_use_bytes;
	uint64_t gets, puts, misses_eagain;
};

/* name is for stats and logs (copied). budget_bytes >= SLUICE_BUFPOOL_MIN_BYTES. */
SLUICE_MUST_USE int bufpool_create(const char *name, size_t budget_bytes, struct bufpool **out);

/* Free every cached buffer and the pool. All buffers must have been returned (asserted). */
void bufpool_destroy(struct bufpool *p);

/* Allocate and touch count buffers able to hold size bytes now, onto the free list. */
SLUICE_MUST_USE int bufpool_reserve(struct bufpool *p, size_t size, unsigned count);

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
