/*
 * assert.c - sluice_panic, the end of every failed ASSERT and PANIC.
 *
 * Writes "file:line: message" and a backtrace to stderr, then abort()s so a core dump
 * (or the test harness) catches the state. It deliberately bypasses the log module: a
 * panic may come from inside log.c, or from a thread holding a lock log.c needs. The
 * message is formatted into a stack buffer and written with one write(2) so it is not
 * interleaved with other threads' output. Any thread.
 */
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/assert.h"

#define PANIC_MSG_MAX	 1024
#define PANIC_FRAMES_MAX 64

/* Best effort: a failed write cannot be reported anywhere better than stderr. */
static void write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

_Noreturn void sluice_panic(const char *file, int line, const char *fmt, ...)
{
	char msg[PANIC_MSG_MAX];
	void *frames[PANIC_FRAMES_MAX];
	va_list ap;
	int n, len;

	n = snprintf(msg, sizeof(msg), "%s:%d: ", file, line);
	if (n < 0 || n > PANIC_MSG_MAX - 2)
		n = n < 0 ? 0 : PANIC_MSG_MAX - 2;
	va_start(ap, fmt);
	len = vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	len = n + (len < 0 ? 0 : len);
	if (len > (int)sizeof(msg) - 2)
		len = (int)sizeof(msg) - 2; /* truncated: keep room for the newline */
	msg[len++] = '\n';
	write_all(STDERR_FILENO, msg, (size_t)len);

	n = backtrace(frames, PANIC_FRAMES_MAX);
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	abort();
}
