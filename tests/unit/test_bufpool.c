/*
 * test_bufpool.c - size-class rounding, alignment, reuse of returned buffers, the budget
 * (-EAGAIN, then success after a put), eviction of cached buffers of other classes (largest
 * first), reserve, pinned buffers (never freed under pressure, handed out first, listed for
 * registration), a put from another thread, concurrent get/put, and the stats.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bufpool.h"
#include "common/limits.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define KiB	    ((size_t)1024)
#define MIN	    ((size_t)SLUICE_BUFPOOL_MIN_BYTES) /* 4 KiB, the smallest class */
#define BULK_CLASS  ((size_t)SLUICE_FRAME_BULK_MAX)    /* already a multiple of 4 KiB */
#define STRESS_GETS 20000

static struct bufpool_stats stats(struct bufpool *p)
{
	struct bufpool_stats s;

	bufpool_stats(p, &s);
	return s;
}

static void test_classes(void)
{
	CHECK(bufpool_class_size(0) == MIN && bufpool_class_size(1) == MIN);
	for (unsigned k = 0; k <= 14; k++) {
		size_t c = MIN << k;

		CHECK(bufpool_class_size(c) == c);
		CHECK(bufpool_class_size(c - 1) == c);
		CHECK(bufpool_class_size(c + 1) == (k < 14 ? c * 2 : BULK_CLASS));
	}
	CHECK(bufpool_class_size(SLUICE_FRAME_BULK_MAX) == BULK_CLASS);
	CHECK(bufpool_class_size(SLUICE_FRAME_BULK_MAX + 1ul) == 0);
	CHECK(BULK_CLASS % SLUICE_BUFPOOL_ALIGN == 0);
}

static void test_get_put_reuse(void)
{
	struct bufpool *p = NULL;
	struct buf *b, *b2;
	void *data;

	CHECK(bufpool_create("t", SLUICE_BUFPOOL_MIN_BYTES - 1, &p) == -EINVAL && p == NULL);
	CHECK(bufpool_create("reuse", 256 * KiB, &p) == 0);
	CHECK(bufpool_get(p, SLUICE_FRAME_BULK_MAX + 1ul, &b) == -EINVAL);
	for (size_t size = 0; size <= 64 * KiB; size = size * 2 + 1000) {
		CHECK(bufpool_get(p, size, &b) == 0);
		CHECK((uintptr_t)b->data % SLUICE_BUFPOOL_ALIGN == 0);
		CHECK(b->cap == bufpool_class_size(size) && b->len == size && b->pool == p);
		memset(b->data, 0x5a, b->cap); /* the whole capacity is ours */
		buf_put(b);
	}
	CHECK(bufpool_get(p, 10000, &b) == 0);
	data = b->data;
	buf_put(b);
	CHECK(bufpool_get(p, 9000, &b2) == 0);
	CHECK(b2 == b && b2->data == data && b2->len == 9000);
	buf_put(b2);
	buf_put(NULL);
	bufpool_destroy(p);
	bufpool_destroy(NULL);
}

static void test_budget(void)
{
	struct bufpool *p;
	struct buf *a, *b, *c;
	struct bufpool_stats s;

	CHECK(bufpool_create("budget", 2 * MIN, &p) == 0);
	CHECK(bufpool_get(p, MIN, &a) == 0);
	CHECK(bufpool_get(p, 1, &b) == 0);
	c = (struct buf *)&c; /* must stay untouched on failure */
	CHECK(bufpool_get(p, 100, &c) == -EAGAIN && c == (struct buf *)&c);
	CHECK(bufpool_get(p, 2 * MIN, &c) == -EAGAIN);
	s = stats(p);
	CHECK(s.budget_bytes == 2 * MIN && s.allocated_bytes == 2 * MIN &&
	      s.in_use_bytes == 2 * MIN);
	CHECK(s.gets == 2 && s.puts == 0 && s.misses_eagain == 2);
	buf_put(a);
	CHECK(bufpool_get(p, 100, &c) == 0 && c == a);
	buf_put(b);
	buf_put(c);
	s = stats(p);
	CHECK(s.in_use_bytes == 0 && s.allocated_bytes == 2 * MIN && s.gets == 3 && s.puts == 3);
	bufpool_destroy(p);
}

/* Cached 4 KiB and 16 KiB, budget 24 KiB, want 8 KiB: only the 16 KiB buffer must go. */
static void test_eviction(void)
{
	struct bufpool *p;
	struct buf *small, *big, *mid, *again;

	CHECK(bufpool_create("evict", 24 * KiB, &p) == 0);
	CHECK(bufpool_get(p, 4 * KiB, &small) == 0);
	CHECK(bufpool_get(p, 16 * KiB, &big) == 0);
	buf_put(small);
	buf_put(big);
	CHECK(stats(p).allocated_bytes == 20 * KiB);
	CHECK(bufpool_get(p, 8 * KiB, &mid) == 0);
	CHECK(stats(p).allocated_bytes == 12 * KiB && stats(p).in_use_bytes == 8 * KiB);
	CHECK(bufpool_get(p, 4 * KiB, &again) == 0 && again == small); /* the small one stayed */
	CHECK(stats(p).allocated_bytes == 12 * KiB);
	/* Nothing cached is left to evict: 12 + 16 > 24. */
	CHECK(bufpool_get(p, 16 * KiB, &big) == -EAGAIN);
	buf_put(again);
	buf_put(mid);
	CHECK(bufpool_get(p, 16 * KiB, &big) == 0); /* evicts mid (8 KiB) only: 4 + 16 <= 24 */
	CHECK(stats(p).allocated_bytes == 20 * KiB);
	buf_put(big);
	bufpool_destroy(p);
}

static void test_reserve(void)
{
	struct bufpool *p;
	struct buf *b[3];

	CHECK(bufpool_create("reserve", 32 * KiB, &p) == 0);
	CHECK(bufpool_reserve(p, SLUICE_FRAME_BULK_MAX + 1ul, 1) == -EINVAL);
	CHECK(bufpool_reserve(p, 8 * KiB, 3) == 0);
	CHECK(stats(p).allocated_bytes == 24 * KiB && stats(p).in_use_bytes == 0);
	CHECK(bufpool_reserve(p, 8 * KiB, 2) == -EAGAIN); /* the first fits, the second not */
	CHECK(stats(p).allocated_bytes == 32 * KiB);
	for (int i = 0; i < 3; i++) {
		CHECK(bufpool_get(p, 5000, &b[i]) == 0);
		CHECK(((char *)b[i]->data)[b[i]->cap - 1] == 0); /* touched with zeros */
	}
	CHECK(stats(p).allocated_bytes == 32 * KiB && stats(p).in_use_bytes == 24 * KiB);
	for (int i = 0; i < 3; i++)
		buf_put(b[i]);
	bufpool_destroy(p);
}

/* Is data one of the n pinned buffers listed in iov? */
static bool is_pinned_mem(const struct iovec *iov, unsigned n, const void *data)
{
	for (unsigned i = 0; i < n; i++)
		if (iov[i].iov_base == data)
			return true;
	return false;
}

static void test_pinned(void)
{
	struct bufpool *p;
	struct buf *b[6], *big;
	struct iovec iov[4], again[4];
	struct bufpool_stats s;

	CHECK(bufpool_create("pinned", 64 * KiB, &p) == 0);
	CHECK(bufpool_pinned(p, iov, 4) == 0);
	CHECK(bufpool_reserve_pinned(p, SLUICE_FRAME_BULK_MAX + 1ul, 1) == -EINVAL);
	CHECK(bufpool_reserve_pinned(p, 4 * KiB, 3) == 0);
	CHECK(bufpool_reserve(p, 4 * KiB, 1) == 0); /* one unpinned of the same class */
	CHECK(bufpool_reserve_pinned(p, 8 * KiB, 1) == 0);
	s = stats(p);
	CHECK(s.pinned == 4 && s.pinned_bytes == 20 * KiB && s.allocated_bytes == 24 * KiB);
	/* listed in reserve order; max below the count still says how many there are */
	CHECK(bufpool_pinned(p, iov, 2) == 4);
	CHECK(bufpool_pinned(p, iov, 4) == 4);
	for (unsigned i = 0; i < 4; i++) {
		CHECK(iov[i].iov_len == (i < 3 ? 4 * KiB : 8 * KiB));
		CHECK((uintptr_t)iov[i].iov_base % SLUICE_BUFPOOL_ALIGN == 0);
	}
	/* pinned first: the three pinned 4 KiB buffers, then the unpinned one, then a new one */
	for (int i = 0; i < 5; i++) {
		CHECK(bufpool_get(p, 4 * KiB, &b[i]) == 0);
		CHECK(b[i]->pinned == (i < 3) && is_pinned_mem(iov, 3, b[i]->data) == (i < 3));
		memset(b[i]->data, 0xa0 + i, b[i]->cap);
	}
	/* the unpinned ones go back last, yet the pinned ones still come out first */
	for (int i = 0; i < 5; i++)
		buf_put(b[i]);
	buf_put(NULL);
	for (int i = 0; i < 3; i++) {
		CHECK(bufpool_get(p, 4 * KiB, &b[i]) == 0);
		CHECK(b[i]->pinned && is_pinned_mem(iov, 3, b[i]->data));
	}
	for (int i = 0; i < 3; i++)
		buf_put(b[i]);
	/* Pressure: a 64 KiB buffer needs the whole budget. Eviction frees every unpinned
	 * cached buffer and still falls short: the pinned 20 KiB stay allocated. */
	CHECK(bufpool_get(p, 64 * KiB, &big) == -EAGAIN);
	s = stats(p);
	CHECK(s.allocated_bytes == 20 * KiB && s.pinned_bytes == 20 * KiB && s.in_use_bytes == 0);
	/* A 32 KiB buffer fits next to them, and another pushes nothing pinned out. */
	CHECK(bufpool_get(p, 32 * KiB, &big) == 0);
	CHECK(!big->pinned);
	CHECK(bufpool_get(p, 16 * KiB, &b[5]) == -EAGAIN);
	buf_put(big);
	CHECK(bufpool_get(p, 16 * KiB, &big) == 0); /* evicts the cached 32 KiB, not pinned */
	CHECK(stats(p).allocated_bytes == 36 * KiB);
	buf_put(big);
	/* same memory, same contents: never freed and reallocated */
	CHECK(bufpool_pinned(p, again, 4) == 4);
	CHECK(memcmp(iov, again, sizeof(iov)) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(bufpool_get(p, 4 * KiB, &b[i]) == 0);
		CHECK(b[i]->pinned && is_pinned_mem(iov, 3, b[i]->data));
		CHECK(((uint8_t *)b[i]->data)[0] >= 0xa0 && ((uint8_t *)b[i]->data)[0] < 0xa3);
	}
	CHECK(bufpool_get(p, 8 * KiB, &b[3]) == 0);
	CHECK(b[3]->pinned && b[3]->data == iov[3].iov_base);
	for (int i = 0; i < 4; i++)
		buf_put(b[i]);
	/* pinned buffers take budget for good: reserving past it fails */
	CHECK(bufpool_reserve_pinned(p, 16 * KiB, 2) == -EAGAIN);
	s = stats(p);
	CHECK(s.pinned == 5 && s.pinned_bytes == 36 * KiB); /* the first fitted: it stays */
	bufpool_destroy(p); /* frees them (ASan checks: no leak, no double free) */
}

static void test_bulk_class(void)
{
	struct bufpool *p;
	struct buf *b;

	CHECK(bufpool_create("bulk", 2 * BULK_CLASS, &p) == 0);
	CHECK(bufpool_get(p, SLUICE_FRAME_BULK_MAX, &b) == 0);
	CHECK(b->cap == BULK_CLASS && (uintptr_t)b->data % SLUICE_BUFPOOL_ALIGN == 0);
	((char *)b->data)[b->cap - 1] = 1;
	buf_put(b);
	bufpool_destroy(p);
}

static void *put_thread(void *arg)
{
	buf_put(arg);
	return NULL;
}

static void test_put_from_other_thread(void)
{
	struct bufpool *p;
	struct buf *b, *b2;
	pthread_t t;

	CHECK(bufpool_create("xthread", 4 * KiB, &p) == 0);
	CHECK(bufpool_get(p, 4 * KiB, &b) == 0);
	CHECK(pthread_create(&t, NULL, put_thread, b) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(stats(p).puts == 1 && stats(p).in_use_bytes == 0);
	CHECK(bufpool_get(p, 4 * KiB, &b2) == 0 && b2 == b);
	buf_put(b2);
	bufpool_destroy(p);
}

static void *churn(void *arg)
{
	struct bufpool *p = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;

	for (int i = 0; i < STRESS_GETS; i++) {
		struct buf *b;
		int rc = bufpool_get(p, (size_t)rand_r(&seed) % (32 * KiB), &b);

		CHECK(rc == 0 || rc == -EAGAIN);
		if (rc == 0) {
			memset(b->data, i, b->len);
			buf_put(b);
		}
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct bufpool *p;
	pthread_t t[2];
	struct bufpool_stats s;

	CHECK(bufpool_create("churn", 64 * KiB, &p) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, churn, p) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	s = stats(p);
	CHECK(s.in_use_bytes == 0 && s.allocated_bytes <= s.budget_bytes);
	CHECK(s.gets == s.puts && s.gets + s.misses_eagain == 2 * STRESS_GETS);
	bufpool_destroy(p);
}

int main(void)
{
	test_classes();
	test_get_put_reuse();
	test_budget();
	test_eviction();
	test_reserve();
	test_pinned();
	test_bulk_class();
	test_put_from_other_thread();
	test_concurrent();
	printf("test_bufpool: ok\n");
	return 0;
}
