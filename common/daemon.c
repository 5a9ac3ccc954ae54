/*
 * daemon.c - signals through a signalfd polled by the reactor, and ready files (see
 * daemon.h). Shared by sluice-mgmtd, sluice-storage and sluice-meta.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/daemon.h"

void daemon_block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
		PANIC("pthread_sigmask failed");
}

static void signal_ready(struct reactor_io *io, int res, uint32_t flags)
{
	struct daemon_signals *s = SLUICE_CONTAINER_OF(io, struct daemon_signals, io);

	(void)res;
	(void)flags;
	s->on_signal(s);
}

int daemon_watch_signals(struct reactor *r, struct daemon_signals *s,
			 void (*on_signal)(struct daemon_signals *s))
{
	sigset_t set;
	struct io_uring_sqe *sqe;

	daemon_block_signals(&set);
	s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->fd < 0)
		return -errno;
	s->on_signal = on_signal;
	s->io.cb = signal_ready;
	sqe = reactor_sqe(r, &s->io);
	if (!sqe)
		return -EIO;
	io_uring_prep_poll_add(sqe, s->fd, POLLIN);
	return 0;
}

int daemon_write_ready_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", text);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -errno;
	return 0;
}
