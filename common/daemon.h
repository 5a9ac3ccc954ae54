/*
 * daemon.h - the pieces every Sluice daemon's main() shares: signals delivered through a
 * signalfd on the reactor, and the ready file tests and scripts wait for.
 *
 * Threads: daemon_block_signals before any thread starts (RocksDB and worker threads
 * inherit the mask, so SIGTERM/SIGINT reach only the signalfd); daemon_watch_signals on the
 * reactor's thread.
 */
#ifndef SLUICE_COMMON_DAEMON_H
#define SLUICE_COMMON_DAEMON_H

#include <signal.h>

#include "common/assert.h"
#include "common/reactor.h"

/* Block SIGTERM and SIGINT in the calling thread (and threads it starts later); set gets
 * them. Panics if the mask cannot be set. */
void daemon_block_signals(sigset_t *set);

struct daemon_signals {
	struct reactor_io io; /* private */
	int fd;		      /* private */
	void (*on_signal)(struct daemon_signals *s);
};

/* Watch SIGTERM/SIGINT on r: s->on_signal(s) runs once, on r's thread, at the first one.
 * s must live until then. Reactor thread. -errno of signalfd, -EIO (no SQE). */
SLUICE_MUST_USE int daemon_watch_signals(struct reactor *r, struct daemon_signals *s,
					 void (*on_signal)(struct daemon_signals *s));

/* Write text and a newline to path atomically (tmp file + rename). 0 or -errno. */
SLUICE_MUST_USE int daemon_write_ready_file(const char *path, const char *text);

#endif
