/*
 * ring.c - bounded MPSC queue of pointers (Dmitry Vyukov's bounded queue).
 *
 * Design: an array of cells, each with a sequence number. Cell i starts with seq == i.
 * A producer claims position pos by CAS on tail when cell[pos & mask].seq == pos, stores
 * the item and publishes it with seq = pos + 1 (release). The single consumer takes
 * position head when its cell has seq == head + 1, then hands the cell back to producers
 * for the next lap with seq = head + depth. A producer that finds seq < pos knows the
 * ring is full (the consumer has not freed that cell yet) and returns -EAGAIN.
 *
 * Positions are 64-bit and never wrap in practice. Because producers claim before they
 * publish, ring_pop can see an empty cell while a later cell is already filled: it then
 * returns NULL, and the item shows up on a later pop (FIFO is in claim order).
 *
 * head and tail live on separate cache lines so producers and the consumer do not share
 * a line on every operation. Threads: ring_push any, ring_pop the one owner.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/limits.h"
#include "common/ring.h"

#define CACHE_LINE 64

struct ring_cell {
	atomic_uint_fast64_t seq;
	void *item; /* written before seq is released, read after seq is acquired */
};

struct ring {
	/* Next position producers claim. */
	alignas(CACHE_LINE) atomic_uint_fast64_t tail;
	/* Next position to pop: the consumer writes it, ring_count reads it. */
	alignas(CACHE_LINE) atomic_uint_fast64_t head;
	/* Constant after create, read by everyone. */
	alignas(CACHE_LINE) uint64_t mask; /* depth - 1 */
	struct ring_cell *cells;
};

int ring_create(uint32_t depth, struct ring **out)
{
	struct ring *r;

	if (depth < 2 || depth > SLUICE_RING_DEPTH_MAX || (depth & (depth - 1)) != 0)
		return -EINVAL;
	r = aligned_alloc(CACHE_LINE, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->cells = calloc(depth, sizeof(r->cells[0]));
	if (r->cells == NULL) {
		free(r);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < depth; i++)
		atomic_init(&r->cells[i].seq, i);
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	r->mask = depth - 1;
	*out = r;
	return 0;
}

void ring_destroy(struct ring *r)
{
	if (r == NULL)
		return;
	free(r->cells);
	free(r);
}

int ring_push(struct ring *r, void *item)
{
	uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
	struct ring_cell *c;

	ASSERT(item != NULL); /* NULL is ring_pop's "empty" */
	for (;;) {
		c = &r->cells[pos & r->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);

		if (dif == 0) {
			/* On failure the CAS reloads pos and we look at the new cell. */
			if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return -EAGAIN; /* the consumer has not freed this cell: full */
		} else {
			pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
		}
	}
	c->item = item;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	return 0;
}

void *ring_pop(struct ring *r)
{
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	struct ring_cell *c = &r->cells[pos & r->mask];
	void *item;

	if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
		return NULL; /* empty, or the producer of this cell has not published yet */
	item = c->item;
	atomic_store_explicit(&c->seq, pos + r->mask + 1, memory_order_release);
	/* Release so ring_count, seeing this head, also sees the tail claim behind it. */
	atomic_store_explicit(&r->head, pos + 1, memory_order_release);
	return item;
}

uint32_t ring_count(const struct ring *r)
{
	/* head first: it only grows, so tail - head can overshoot but never go negative. */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint64_t n = tail - head;

	return n > r->mask + 1 ? (uint32_t)(r->mask + 1) : (uint32_t)n;
}

uint32_t ring_capacity(const struct ring *r)
{
	return (uint32_t)(r->mask + 1);
}
