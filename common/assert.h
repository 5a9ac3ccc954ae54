/*
 * assert.h - assertions that are on in every build (STYLE.md rule 7).
 *
 * ASSERT(cond) checks an invariant of our own code in every build type; a failure logs the
 * expression, file and line and aborts. DASSERT is for checks too expensive for production;
 * it compiles to nothing unless SLUICE_DEBUG_ASSERTS is defined (debug and simulation
 * builds). Data from the network or the disk is never ASSERTed: validate it and return an
 * error instead.
 *
 * Included as "common/assert.h"; it does not replace <assert.h>.
 */
#ifndef SLUICE_COMMON_ASSERT_H
#define SLUICE_COMMON_ASSERT_H

#include <assert.h> /* static_assert */
#include <stddef.h> /* offsetof, for SLUICE_CONTAINER_OF */

#define SLUICE_LIKELY(x)   __builtin_expect(!!(x), 1)
#define SLUICE_UNLIKELY(x) __builtin_expect(!!(x), 0)

_Noreturn void sluice_panic(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define ASSERT(cond)                                                                     \
	do {                                                                             \
		if (SLUICE_UNLIKELY(!(cond)))                                            \
			sluice_panic(__FILE__, __LINE__, "assertion failed: %s", #cond); \
	} while (0)

#define PANIC(...) sluice_panic(__FILE__, __LINE__, __VA_ARGS__)

#ifdef SLUICE_DEBUG_ASSERTS
#define DASSERT(cond) ASSERT(cond)
#else
#define DASSERT(cond) ((void)sizeof(!(cond)))
#endif

#define SLUICE_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SLUICE_MUST_USE	     __attribute__((warn_unused_result))
#define SLUICE_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif
