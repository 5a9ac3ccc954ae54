/*
 * bufpool.c - size-classed pools of aligned buffers under a byte budget.
 *
 * Design: SLUICE_BUFPOOL_CLASSES classes, 4 KiB << k for k = 0..14 (4 KiB .. 64 MiB) and a
 * last class of exactly SLUICE_FRAME_BULK_MAX rounded up to the alignment, so a full bulk
 * (a chunk plus its header page) needs one buffer rather than a 128 MiB one. Each class
 * keeps a LIFO free list of returned buffers (the hottest buffer comes back first).
 * allocated_bytes counts the data bytes of every buffer the pool owns, in use or cached,
 * and never exceeds the budget: a get that finds its free list empty first frees cached
 * buffers of the other classes, largest first, and fails with -EAGAIN if that is not
 * enough. malloc/free and the first-touch memset run outside the lock, with the bytes
 * charged to the budget beforehand so concurrent gets cannot overshoot it.
 *
 * A buffer that is handed out carries BUF_OUT in next_free, which lets buf_put catch a
 * double put cheaply.
 *
 * Pinned buffers (bufpool_reserve_pinned) have free lists of their own, which get takes
 * from first and eviction never looks at: they are freed only by bufpool_destroy, so memory
 * registered with io_uring never changes hands while the ring may still use it. Preferring
 * them keeps the fixed-buffer path busy and leaves the unpinned ones idle, to be evicted.
 * A separate chain (next_pinned) lists every pinned buffer, in use or not, for
 * bufpool_pinned and destroy.
 *
 * Threads: any; one mutex per pool guards the lists and counters.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bufpool.h"
#include "common/limits.h"
#include "common/log.h"

LOG_FACILITY("bufpool");

#define TOP_POW2_CLASS (SLUICE_BUFPOOL_CLASSES - 2)
#define BULK_CLASS     (SLUICE_BUFPOOL_CLASSES - 1)
#define BULK_CLASS_BYTES                                                             \
	((SLUICE_FRAME_BULK_MAX + SLUICE_BUFPOOL_ALIGN - 1) / SLUICE_BUFPOOL_ALIGN * \
	 SLUICE_BUFPOOL_ALIGN)
#define BUF_OUT		 ((struct buf *)(uintptr_t)1) /* next_free of a handed-out buffer */
#define BUFPOOL_NAME_MAX 32

static_assert(((size_t)SLUICE_BUFPOOL_MIN_BYTES << TOP_POW2_CLASS) == 64u * SLUICE_MiB,
	      "power-of-two classes end at 64 MiB");
static_assert(BULK_CLASS_BYTES > ((size_t)SLUICE_BUFPOOL_MIN_BYTES << TOP_POW2_CLASS),
	      "the bulk class is the largest");
static_assert(SLUICE_BUFPOOL_MIN_BYTES % SLUICE_BUFPOOL_ALIGN == 0, "classes are aligned");

struct bufpool {
	pthread_mutex_t lock;	/* guards every field below except name and budget_bytes */
	size_t budget_bytes;	/* constant */
	size_t allocated_bytes; /* data bytes owned: in use + cached (+ being allocated) */
	size_t in_use_bytes;
	size_t pinned_bytes;
	unsigned npinned;
	uint64_t gets, puts, misses_eagain;
	struct buf *free_list[SLUICE_BUFPOOL_CLASSES];	 /* evictable */
	struct buf *pinned_free[SLUICE_BUFPOOL_CLASSES]; /* never evicted */
	struct buf *pinned_head, *pinned_tail;		 /* all pinned, via next_pinned */
	char name[BUFPOOL_NAME_MAX];			 /* constant */
};

static size_t class_bytes(unsigned c)
{
	return c == BULK_CLASS ? BULK_CLASS_BYTES : (size_t)SLUICE_BUFPOOL_MIN_BYTES << c;
}

/* Smallest class holding size bytes; size <= SLUICE_FRAME_BULK_MAX. */
static unsigned class_of(size_t size)
{
	unsigned c = 0;

	while (c < BULK_CLASS && class_bytes(c) < size)
		c++;
	return c;
}

size_t bufpool_class_size(size_t size)
{
	return size > SLUICE_FRAME_BULK_MAX ? 0 : class_bytes(class_of(size));
}

static int buf_alloc(struct bufpool *p, unsigned c, struct buf **out)
{
	struct buf *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	b->cap = class_bytes(c);
	b->data = aligned_alloc(SLUICE_BUFPOOL_ALIGN, b->cap);
	if (b->data == NULL) {
		free(b);
		return -ENOMEM;
	}
	b->pool = p;
	b->size_class = (uint8_t)c;
	*out = b;
	return 0;
}

/* Frees a chain linked through next_free. */
static void buf_free_chain(struct buf *b)
{
	while (b != NULL) {
		struct buf *next = b->next_free;

		free(b->data);
		free(b);
		b = next;
	}
}

/* Lock held. Unlinks cached buffers, largest class first, until bytes more fit the
 * budget or nothing is cached; returns them as a chain for freeing after unlock. Pinned
 * buffers are on other lists and stay. */
static struct buf *evict_locked(struct bufpool *p, size_t bytes)
{
	struct buf *evicted = NULL;

	for (int c = BULK_CLASS; c >= 0; c--) {
		while (p->allocated_bytes + bytes > p->budget_bytes && p->free_list[c] != NULL) {
			struct buf *b = p->free_list[c];

			p->free_list[c] = b->next_free;
			p->allocated_bytes -= b->cap;
			b->next_free = evicted;
			evicted = b;
		}
	}
	return evicted;
}

/* Lock held. Charges bytes to the budget if they fit. */
static bool charge_locked(struct bufpool *p, size_t bytes)
{
	if (p->allocated_bytes + bytes > p->budget_bytes)
		return false;
	p->allocated_bytes += bytes;
	return true;
}

static void uncharge(struct bufpool *p, size_t bytes, bool was_got)
{
	pthread_mutex_lock(&p->lock);
	p->allocated_bytes -= bytes;
	if (was_got) {
		p->in_use_bytes -= bytes;
		p->gets--;
	}
	pthread_mutex_unlock(&p->lock);
}

int bufpool_create(const char *name, size_t budget_bytes, struct bufpool **out)
{
	struct bufpool *p;

	if (budget_bytes < SLUICE_BUFPOOL_MIN_BYTES)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	if (pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		return -ENOMEM;
	}
	p->budget_bytes = budget_bytes;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "bufpool");
	*out = p;
	return 0;
}

void bufpool_destroy(struct bufpool *p)
{
	if (p == NULL)
		return;
	ASSERT(p->in_use_bytes == 0); /* every buffer must be back */
	for (unsigned c = 0; c < SLUICE_BUFPOOL_CLASSES; c++)
		buf_free_chain(p->free_list[c]);
	/* Pinned ones through their own chain (their free lists hold the same buffers). */
	for (struct buf *b = p->pinned_head, *next; b != NULL; b = next) {
		next = b->next_pinned;
		free(b->data);
		free(b);
	}
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Lock held. Put a free buffer on the list it belongs to. */
static void push_free_locked(struct bufpool *p, struct buf *b)
{
	struct buf **list =
		b->pinned ? &p->pinned_free[b->size_class] : &p->free_list[b->size_class];

	b->next_free = *list;
	*list = b;
}

/* Reserve does not evict: it runs at startup, and evicting would undo earlier reserves. */
static int reserve(struct bufpool *p, size_t size, unsigned count, bool pinned)
{
	unsigned c;
	struct buf *b;
	bool ok;
	int rc;

	if (size > SLUICE_FRAME_BULK_MAX)
		return -EINVAL;
	c = class_of(size);
	for (unsigned i = 0; i < count; i++) {
		pthread_mutex_lock(&p->lock);
		ok = charge_locked(p, class_bytes(c));
		pthread_mutex_unlock(&p->lock);
		if (!ok)
			return -EAGAIN;
		rc = buf_alloc(p, c, &b);
		if (rc != 0) {
			uncharge(p, class_bytes(c), false);
			return rc;
		}
		memset(b->data, 0, b->cap); /* first touch now, not on the data path */
		b->pinned = pinned;
		pthread_mutex_lock(&p->lock);
		if (pinned) {
			if (p->pinned_tail)
				p->pinned_tail->next_pinned = b;
			else
				p->pinned_head = b;
			p->pinned_tail = b;
			p->pinned_bytes += b->cap;
			p->npinned++;
		}
		push_free_locked(p, b);
		pthread_mutex_unlock(&p->lock);
	}
	return 0;
}

int bufpool_reserve(struct bufpool *p, size_t size, unsigned count)
{
	return reserve(p, size, count, false);
}

int bufpool_reserve_pinned(struct bufpool *p, size_t size, unsigned count)
{
	return reserve(p, size, count, true);
}

unsigned bufpool_pinned(struct bufpool *p, struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&p->lock);
	for (struct buf *b = p->pinned_head; b != NULL && n < max; b = b->next_pinned, n++)
		iov[n] = (struct iovec){.iov_base = b->data, .iov_len = b->cap};
	n = p->npinned;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Lock held. A cached buffer of class c, pinned first, or else budget charged for a new one
 * (*b NULL). */
static int take_locked(struct bufpool *p, unsigned c, struct buf **b, struct buf **evicted)
{
	size_t bytes = class_bytes(c);

	if ((*b = p->pinned_free[c]) != NULL) {
		p->pinned_free[c] = (*b)->next_free;
	} else if ((*b = p->free_list[c]) != NULL) {
		p->free_list[c] = (*b)->next_free;
	} else {
		*evicted = evict_locked(p, bytes);
		if (!charge_locked(p, bytes)) {
			p->misses_eagain++;
			return -EAGAIN;
		}
	}
	p->in_use_bytes += bytes;
	p->gets++;
	return 0;
}

int bufpool_get(struct bufpool *p, size_t size, struct buf **out)
{
	struct buf *b, *evicted = NULL;
	unsigned c;
	int rc;

	if (size > SLUICE_FRAME_BULK_MAX)
		return -EINVAL;
	c = class_of(size);
	pthread_mutex_lock(&p->lock);
	rc = take_locked(p, c, &b, &evicted);
	pthread_mutex_unlock(&p->lock);
	buf_free_chain(evicted);
	if (rc != 0) {
		log_debug_rl("%s: %zu bytes would exceed the budget of %zu", p->name,
			     class_bytes(c), p->budget_bytes);
		return rc;
	}
	if (b == NULL) {
		rc = buf_alloc(p, c, &b);
		if (rc != 0) {
			uncharge(p, class_bytes(c), true);
			return rc;
		}
	}
	b->next_free = BUF_OUT;
	b->len = size;
	*out = b;
	return 0;
}

void buf_put(struct buf *b)
{
	struct bufpool *p;

	if (b == NULL)
		return;
	p = b->pool;
	ASSERT(p != NULL);
	ASSERT(b->next_free == BUF_OUT); /* not put twice */
	pthread_mutex_lock(&p->lock);
	ASSERT(p->in_use_bytes >= b->cap);
	p->in_use_bytes -= b->cap;
	p->puts++;
	push_free_locked(p, b);
	pthread_mutex_unlock(&p->lock);
}

void bufpool_stats(struct bufpool *p, struct bufpool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = (struct bufpool_stats){
		.budget_bytes = p->budget_bytes,
		.allocated_bytes = p->allocated_bytes,
		.in_use_bytes = p->in_use_bytes,
		.pinned_bytes = p->pinned_bytes,
		.pinned = p->npinned,
		.gets = p->gets,
		.puts = p->puts,
		.misses_eagain = p->misses_eagain,
	};
	pthread_mutex_unlock(&p->lock);
}
