/*
 * ring.h - bounded multi-producer single-consumer queue of pointers.
 *
 * Lock-free (Vyukov's bounded queue: a sequence number per cell), fixed capacity chosen at
 * creation (a power of two, at most SLUICE_RING_DEPTH_MAX). ring_push may be called from
 * any thread; ring_pop only from the one consumer thread that owns the ring. A full ring
 * returns -EAGAIN: queues never grow (STYLE.md rule 8).
 */
#ifndef SLUICE_COMMON_RING_H
#define SLUICE_COMMON_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "common/assert.h"

struct ring;

/* depth: power of two in [2, SLUICE_RING_DEPTH_MAX]. -EINVAL otherwise, -ENOMEM. */
SLUICE_MUST_USE int ring_create(uint32_t depth, struct ring **out);
void ring_destroy(struct ring *r); /* NULL ok; items still queued are not touched */

/* Any thread. item must be non-NULL. 0, or -EAGAIN when full. */
SLUICE_MUST_USE int ring_push(struct ring *r, void *item);

/* Consumer thread only. Next item, or NULL when empty. */
void *ring_pop(struct ring *r);

/* Approximate number of queued items (exact when no push/pop runs concurrently). */
uint32_t ring_count(const struct ring *r);
uint32_t ring_capacity(const struct ring *r);

#endif
