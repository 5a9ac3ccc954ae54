/*
 * echod.c - sluice-test-echod: the echo service in its own process, for tests that kill
 * their server. Usage: sluice-test-echod URI [FD]. Writes the bound URI to FD (default 1)
 * and serves until killed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "tests/lib/testlib.h"

int main(int argc, char **argv)
{
	struct echo_server *s;
	int fd = argc > 2 ? atoi(argv[2]) : 1;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s URI [FD]\n", argv[0]);
		return 2;
	}
	rc = echo_server_start(argv[1], 256u * 1024 * 1024, &s);
	if (rc) {
		fprintf(stderr, "echod: %s: %s (%d)\n", argv[1], sluice_strerror(rc), rc);
		return 1;
	}
	if (write(fd, echo_server_uri(s), strlen(echo_server_uri(s))) < 0)
		return 1;
	if (fd != 1)
		close(fd);
	for (;;)
		pause();
}
