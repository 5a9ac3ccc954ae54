/*
 * test_ring.c - the MPSC ring: argument checks, single-thread FIFO across many laps, -EAGAIN
 * when full, and a two-producer / one-consumer stress in which every item carries (producer,
 * seq) so the consumer can check per-producer order and that nothing is lost or duplicated.
 * The stress runs with a roomy ring and with depth 2 (constant full/empty transitions).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/limits.h"
#include "common/ring.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define PRODUCERS 2

static void *tag(uint64_t producer, uint64_t seq)
{
	return (void *)(uintptr_t)((producer << 32) | (seq + 1)); /* never NULL */
}

static void test_create_args(void)
{
	static const uint32_t bad[] = {0, 1, 3, 6, 1000, SLUICE_RING_DEPTH_MAX * 2};
	struct ring *r = NULL;

	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(bad); i++)
		CHECK(ring_create(bad[i], &r) == -EINVAL && r == NULL);
	CHECK(ring_create(SLUICE_RING_DEPTH_MAX, &r) == 0);
	CHECK(ring_capacity(r) == SLUICE_RING_DEPTH_MAX);
	ring_destroy(r);
	ring_destroy(NULL);
}

static void test_fifo(uint32_t depth)
{
	struct ring *r;
	uint64_t next_in = 0, next_out = 0;

	CHECK(ring_create(depth, &r) == 0);
	CHECK(ring_capacity(r) == depth && ring_count(r) == 0);
	CHECK(ring_pop(r) == NULL);
	for (int lap = 0; lap < 50; lap++) {
		uint32_t fill = lap % 3 == 0 ? depth : 1 + (uint32_t)lap % depth;

		for (uint32_t i = 0; i < fill; i++)
			CHECK(ring_push(r, tag(0, next_in++)) == 0);
		CHECK(ring_count(r) == fill);
		if (fill == depth)
			CHECK(ring_push(r, tag(0, 999999)) == -EAGAIN);
		for (uint32_t i = 0; i < fill; i++)
			CHECK(ring_pop(r) == tag(0, next_out++));
		CHECK(ring_pop(r) == NULL && ring_count(r) == 0);
	}
	ring_destroy(r);
}

struct producer {
	pthread_t thread;
	struct ring *ring;
	uint64_t id, items;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (uint64_t seq = 0; seq < p->items; seq++) {
		while (ring_push(p->ring, tag(p->id, seq)) == -EAGAIN)
			sched_yield();
	}
	return NULL;
}

static void test_stress(uint32_t depth, uint64_t items)
{
	struct producer prod[PRODUCERS];
	uint64_t next[PRODUCERS] = {0}, got = 0;
	struct ring *r;

	CHECK(ring_create(depth, &r) == 0);
	for (uint64_t i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct producer){.ring = r, .id = i, .items = items};
		CHECK(pthread_create(&prod[i].thread, NULL, produce, &prod[i]) == 0);
	}
	while (got < PRODUCERS * items) {
		uintptr_t v = (uintptr_t)ring_pop(r);
		uint64_t id = v >> 32, seq = (v & 0xffffffffu) - 1;

		if (v == 0) {
			sched_yield();
			continue;
		}
		CHECK(id < PRODUCERS);
		CHECK(seq == next[id]); /* in order, none lost, none twice */
		next[id]++;
		got++;
	}
	for (int i = 0; i < PRODUCERS; i++)
		CHECK(pthread_join(prod[i].thread, NULL) == 0);
	for (int i = 0; i < PRODUCERS; i++)
		CHECK(next[i] == items);
	CHECK(ring_pop(r) == NULL && ring_count(r) == 0);
	ring_destroy(r);
}

int main(void)
{
	test_create_args();
	test_fifo(2);
	test_fifo(8);
	test_fifo(1024);
	test_stress(1024, 1000000);
	test_stress(2, 200000);
	printf("test_ring: ok\n");
	return 0;
}
