/*
 * env.h - the one seam for nondeterminism (STYLE.md rule 11).
 *
 * Clock, sleep and randomness go through here so a simulated backend can run a whole
 * cluster in one process, reproducibly from a seed. Only env backends call clock_gettime,
 * nanosleep or getrandom. The network seam is the transport ops table (common/net/net.h)
 * and the disk seam comes with the storage engine; both are selected at startup the same
 * way.
 *
 * env_install() must be called before any other thread starts (or never: the real backend
 * is the default). The accessors are then safe from any thread.
 */
#ifndef SLUICE_COMMON_ENV_H
#define SLUICE_COMMON_ENV_H

#include <stddef.h>
#include <stdint.h>

struct env_ops {
	const char *name;
	/* Monotonic time in ns; never goes backwards. Timers and deadlines use this. */
	uint64_t (*mono_ns)(void *ctx);
	/* Wall-clock time in ns since the Unix epoch; for timestamps only, never timeouts. */
	uint64_t (*wall_ns)(void *ctx);
	/* Block the calling thread for ns. */
	void (*sleep_ns)(void *ctx, uint64_t ns);
	/* Fill buf with len random bytes. Must be safe to call from several threads. */
	void (*random_bytes)(void *ctx, void *buf, size_t len);
	void *ctx;
};

/* The real backend: CLOCK_MONOTONIC, CLOCK_REALTIME, nanosleep, a per-thread PRNG seeded
 * from getrandom(2) (or from env_seed). */
extern const struct env_ops env_real_ops;

/* Replace the backend. Call before starting threads. ops must outlive all users. */
void env_install(const struct env_ops *ops);
const struct env_ops *env_current(void);

/*
 * Make the real backend's randomness reproducible: every thread's PRNG is derived from
 * seed and the order in which threads first ask for randomness. Call before threads start.
 */
void env_seed(uint64_t seed);

uint64_t env_now_ns(void);
uint64_t env_wall_ns(void);
void env_sleep_ns(uint64_t ns);
static inline void env_sleep_ms(uint32_t ms)
{
	env_sleep_ns((uint64_t)ms * 1000000u);
}
uint64_t env_random_u64(void);
/* Uniform in [0, bound); bound > 0. Unbiased (rejection sampling). */
uint64_t env_random_below(uint64_t bound);
void env_random_bytes(void *buf, size_t len);

#define ENV_NS_PER_MS 1000000ull
#define ENV_NS_PER_S  1000000000ull

#endif
