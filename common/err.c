/*
 * err.c - names and descriptions for the Sluice error space.
 *
 * Sluice's own codes (>= SLUICE_ERR_BASE) come from the SLUICE_ERRORS X-macro in err.h,
 * expanded here into two tables indexed by code - SLUICE_ERR_BASE. POSIX errnos go to
 * glibc's strerrorname_np/strerrordesc_np, which return static strings and, unlike
 * strerror(), are thread-safe and locale-independent. Any thread; no state.
 */
#include <assert.h>
#include <string.h>

#include "common/err.h"

#define OWN_NAME_(name, desc) #name,
#define OWN_DESC_(name, desc) desc,
static const char *const own_names[] = {SLUICE_ERRORS(OWN_NAME_)};
static const char *const own_descs[] = {SLUICE_ERRORS(OWN_DESC_)};
#undef OWN_NAME_
#undef OWN_DESC_

static_assert(sizeof(own_names) / sizeof(own_names[0]) == SLUICE_ERR_END_ - SLUICE_ERR_BASE,
	      "one name per Sluice error code");

/* |err| without overflow on INT_MIN (which simply maps to "unknown"). */
static long err_abs(int err)
{
	return err < 0 ? -(long)err : err;
}

const char *sluice_strerror(int err)
{
	long e = err_abs(err);
	const char *s = NULL;

	if (e >= SLUICE_ERR_BASE && e < SLUICE_ERR_END_)
		return own_descs[e - SLUICE_ERR_BASE];
	if (e < SLUICE_ERR_BASE)
		s = strerrordesc_np((int)e);
	return s ? s : "unknown error";
}

const char *sluice_errname(int err)
{
	long e = err_abs(err);
	const char *s = NULL;

	if (e == 0)
		return "OK"; /* glibc names 0 "0", which reads badly in logs */
	if (e >= SLUICE_ERR_BASE && e < SLUICE_ERR_END_)
		return own_names[e - SLUICE_ERR_BASE];
	if (e < SLUICE_ERR_BASE)
		s = strerrorname_np((int)e);
	return s ? s : "E?";
}
