/*
 * err.h - the Sluice error space.
 *
 * Functions return 0 (or a count) on success and a negative error on failure. Negative
 * values below 4096 are POSIX errnos (-ENOENT); Sluice-specific errors start at 4096 and
 * are listed once here, in SLUICE_ERRORS, with a name and a one-line description. The wire
 * carries the same negative values, so statuses map one to one across processes.
 *
 * Thread-safe: everything here is pure.
 */
#ifndef SLUICE_COMMON_ERR_H
#define SLUICE_COMMON_ERR_H

#include <errno.h>
#include <stdbool.h>

#define SLUICE_ERR_BASE 4096

/* X(name, description). Append only: the numbers are part of the wire protocol. */
#define SLUICE_ERRORS(X)                                                       \
	X(SLUICE_EPROTO, "malformed or unexpected protocol message")           \
	X(SLUICE_ECRC, "frame checksum mismatch")                              \
	X(SLUICE_ETOOBIG, "message exceeds a protocol size limit")             \
	X(SLUICE_EBADOP, "unknown opcode for this service")                    \
	X(SLUICE_EDEADLINE, "request deadline expired")                        \
	X(SLUICE_ECANCELED, "request canceled by the caller")                  \
	X(SLUICE_ECONNLOST, "connection to the peer was lost")                 \
	X(SLUICE_ESHUTDOWN, "component is shutting down")                      \
	X(SLUICE_ECONFIG, "invalid configuration")                             \
	X(SLUICE_EROUTING, "stale routing table: refresh from mgmtd")          \
	X(SLUICE_ECHAINVER, "chain version mismatch")                          \
	X(SLUICE_ENOTCOMMIT, "chunk has an uncommitted update, retry shortly") \
	X(SLUICE_ECHECKSUM, "stored data failed its checksum")                 \
	X(SLUICE_ESTALE_LEASE, "lease expired: node is fenced")                \
	X(SLUICE_ENOTHEAD, "target is not the head of its chain")              \
	X(SLUICE_ETARGET_OFFLINE, "storage target is offline")                 \
	X(SLUICE_EAUTH, "authentication failed")                               \
	X(SLUICE_ECHUNKVER, "chunk version differs from the predecessor's")

enum sluice_err {
	SLUICE_ERR_FIRST_ = SLUICE_ERR_BASE - 1,
#define SLUICE_ERR_ENUM_(name, desc) name,
	SLUICE_ERRORS(SLUICE_ERR_ENUM_)
#undef SLUICE_ERR_ENUM_
		SLUICE_ERR_END_
};

/*
 * Description of an error code. Accepts the negative form used in return values (-ENOENT,
 * -SLUICE_ECRC) and the positive form. Never returns NULL; unknown codes give a generic
 * string. Thread-safe.
 */
const char *sluice_strerror(int err);

/* Symbolic name ("ENOENT", "SLUICE_ECRC") of an error code, either sign; "E?" if unknown. */
const char *sluice_errname(int err);

/* True if err (either sign) is a Sluice-specific code. */
static inline bool sluice_err_is_own(int err)
{
	int e = err < 0 ? -err : err;
	return e >= SLUICE_ERR_BASE && e < SLUICE_ERR_END_;
}

#endif
