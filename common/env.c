/*
 * env.c - the env seam and its real backend (clock, sleep, randomness).
 *
 * Design: one global ops pointer, set by env_install() before threads start and only read
 * afterwards, so the accessors are a plain indirect call. The real backend uses
 * CLOCK_MONOTONIC / CLOCK_REALTIME and clock_nanosleep. Randomness comes from a per-thread
 * xoshiro256** generator (no locks, no shared cache lines), seeded on first use from
 * getrandom(2), or, after env_seed(), from the seed mixed with the order in which threads
 * first draw (a global counter), which makes a single-threaded or deterministically
 * scheduled run reproducible. env_seed bumps a generation so threads that already drew
 * reseed at their next draw.
 *
 * Any thread may call the accessors; env_install and env_seed belong to startup.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/assert.h"
#include "common/env.h"

/* ---- real backend: clocks and sleep ---------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	int rc = clock_gettime(id, &ts);

	ASSERT(rc == 0); /* only EINVAL for a bad clock id, i.e. our bug */
	return (uint64_t)ts.tv_sec * ENV_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t real_mono_ns(void *ctx)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t real_wall_ns(void *ctx)
{
	return clock_ns(CLOCK_REALTIME);
}

/* Absolute deadline, so a signal interrupting the sleep never shortens or stretches it. */
static void real_sleep_ns(void *ctx, uint64_t ns)
{
	uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + ns;
	struct timespec ts = {
		.tv_sec = (time_t)(deadline / ENV_NS_PER_S),
		.tv_nsec = (long)(deadline % ENV_NS_PER_S),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- real backend: per-thread PRNG ----------------------------------------------------- */

struct prng {
	uint64_t s[4];	   /* xoshiro256** state, never all zero */
	uint64_t seed_gen; /* g_seed_gen this state was derived from */
	bool ready;
};

static _Thread_local struct prng tl_prng;
static uint64_t g_seed;			    /* written by env_seed before threads start */
static atomic_uint_fast64_t g_seed_gen;	    /* 0: seed from getrandom; else env_seed calls */
static atomic_uint_fast64_t g_thread_order; /* threads that drew since the last env_seed */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t *s)
{
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* getrandom of 32 bytes only fails without kernel support (or under seccomp): fall back
 * to the clocks and the state's address, which still differ between threads and runs. */
static void seed_from_kernel(struct prng *g)
{
	uint64_t x;

	if (getrandom(g->s, sizeof(g->s), 0) == (ssize_t)sizeof(g->s))
		return;
	x = clock_ns(CLOCK_MONOTONIC) ^ clock_ns(CLOCK_REALTIME) ^ (uint64_t)(uintptr_t)g;
	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix64(&x);
}

static void prng_seed(struct prng *g, uint64_t gen)
{
	uint64_t order, x;

	if (gen == 0) {
		seed_from_kernel(g);
	} else {
		order = atomic_fetch_add(&g_thread_order, 1);
		x = g_seed ^ rotl(order * 0xD1B54A32D192ED03ull + 1, 17);
		for (int i = 0; i < 4; i++)
			g->s[i] = splitmix64(&x);
	}
	if ((g->s[0] | g->s[1] | g->s[2] | g->s[3]) == 0)
		g->s[0] = 1; /* the one state xoshiro cannot leave */
	g->seed_gen = gen;
	g->ready = true;
}

static uint64_t prng_next(void)
{
	struct prng *g = &tl_prng;
	uint64_t gen = atomic_load_explicit(&g_seed_gen, memory_order_acquire);

	if (!g->ready || g->seed_gen != gen)
		prng_seed(g, gen);
	return xoshiro_next(g->s);
}

static void real_random_bytes(void *ctx, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		uint64_t v = prng_next();
		size_t n = len < sizeof(v) ? len : sizeof(v);

		memcpy(p, &v, n);
		p += n;
		len -= n;
	}
}

const struct env_ops env_real_ops = {
	.name = "real",
	.mono_ns = real_mono_ns,
	.wall_ns = real_wall_ns,
	.sleep_ns = real_sleep_ns,
	.random_bytes = real_random_bytes,
	.ctx = NULL,
};

/* ---- the seam ---------------------------------------------------------------------------- */

static const struct env_ops *g_env = &env_real_ops;

/* ops == NULL reinstalls the real backend (handy for tests that install a fake). */
void env_install(const struct env_ops *ops)
{
	if (ops == NULL)
		ops = &env_real_ops;
	ASSERT(ops->mono_ns && ops->wall_ns && ops->sleep_ns && ops->random_bytes);
	g_env = ops;
}

const struct env_ops *env_current(void)
{
	return g_env;
}

void env_seed(uint64_t seed)
{
	g_seed = seed;
	atomic_store(&g_thread_order, 0);
	/* Release pairs with prng_next's acquire: a thread that sees the new generation also
	 * sees g_seed. Generations start at 1; 0 means "kernel seeded". */
	atomic_fetch_add_explicit(&g_seed_gen, 1, memory_order_release);
}

uint64_t env_now_ns(void)
{
	return g_env->mono_ns(g_env->ctx);
}

uint64_t env_wall_ns(void)
{
	return g_env->wall_ns(g_env->ctx);
}

void env_sleep_ns(uint64_t ns)
{
	g_env->sleep_ns(g_env->ctx, ns);
}

void env_random_bytes(void *buf, size_t len)
{
	g_env->random_bytes(g_env->ctx, buf, len);
}

uint64_t env_random_u64(void)
{
	uint64_t v;

	env_random_bytes(&v, sizeof(v));
	return v;
}

/*
 * Rejection sampling: accept r only at or above 2^64 mod bound, so the accepted range is
 * a whole number of copies of [0, bound) and r % bound is exactly uniform. At most half
 * the draws are rejected (bound just above 2^63), usually almost none.
 */
uint64_t env_random_below(uint64_t bound)
{
	uint64_t threshold, r;

	ASSERT(bound > 0);
	threshold = (0 - bound) % bound;
	do {
		r = env_random_u64();
	} while (r < threshold);
	return r % bound;
}
