/*
 * test_err.c - the error space: every Sluice code has a distinct name and description,
 * both signs work, POSIX codes map to glibc's names, unknown codes give non-NULL strings.
 * Also checks that PANIC/ASSERT abort with file:line and the message on stderr.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define NAME_(name, desc) #name,
#define DESC_(name, desc) desc,
static const char *const names[] = {SLUICE_ERRORS(NAME_)};
static const char *const descs[] = {SLUICE_ERRORS(DESC_)};

static void test_own_codes(void)
{
	unsigned n = SLUICE_ARRAY_SIZE(names);

	CHECK(n == SLUICE_ERR_END_ - SLUICE_ERR_BASE);
	for (unsigned i = 0; i < n; i++) {
		int e = SLUICE_ERR_BASE + (int)i;

		CHECK(strcmp(sluice_errname(e), names[i]) == 0);
		CHECK(strcmp(sluice_errname(-e), names[i]) == 0);
		CHECK(strcmp(sluice_strerror(e), descs[i]) == 0);
		CHECK(strcmp(sluice_strerror(-e), descs[i]) == 0);
		CHECK(sluice_err_is_own(e) && sluice_err_is_own(-e));
		for (unsigned j = 0; j < i; j++) {
			CHECK(strcmp(sluice_errname(e), sluice_errname(SLUICE_ERR_BASE + (int)j)));
			CHECK(strcmp(sluice_strerror(e),
				     sluice_strerror(SLUICE_ERR_BASE + (int)j)));
		}
	}
	CHECK(SLUICE_EPROTO == SLUICE_ERR_BASE); /* the first code is on the wire as 4096 */
	CHECK(strcmp(sluice_errname(-SLUICE_ECRC), "SLUICE_ECRC") == 0);
	CHECK(!sluice_err_is_own(SLUICE_ERR_BASE - 1));
	CHECK(!sluice_err_is_own(SLUICE_ERR_END_));
	CHECK(!sluice_err_is_own(-ENOENT));
}

static void test_posix_codes(void)
{
	CHECK(strcmp(sluice_errname(-ENOENT), "ENOENT") == 0);
	CHECK(strcmp(sluice_errname(EAGAIN), "EAGAIN") == 0);
	CHECK(strcmp(sluice_strerror(-ENOENT), "No such file or directory") == 0);
	CHECK(strcmp(sluice_strerror(ENOENT), sluice_strerror(-ENOENT)) == 0);
	CHECK(strcmp(sluice_errname(0), "OK") == 0);
	CHECK(sluice_strerror(0) != NULL);
}

static void test_unknown_codes(void)
{
	static const int unknown[] = {4000,  -4000,   SLUICE_ERR_END_, -SLUICE_ERR_END_,
				      99999, INT_MAX, INT_MIN,	       INT_MIN + 1};

	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(unknown); i++) {
		CHECK(sluice_strerror(unknown[i]) != NULL);
		CHECK(strcmp(sluice_errname(unknown[i]), "E?") == 0);
	}
}

/* A child PANICs with stderr on a pipe; it must die of SIGABRT after printing file:line. */
static void test_panic(void)
{
	char out[8192] = "";
	size_t len = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		PANIC("boom %d", 42);
	}
	close(fds[1]);
	while (len < sizeof(out) - 1 && (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK(strstr(out, "test_err.c:") != NULL);
	CHECK(strstr(out, ": boom 42\n") != NULL);
}

int main(void)
{
	test_own_codes();
	test_posix_codes();
	test_unknown_codes();
	test_panic();
	printf("test_err: ok\n");
	return 0;
}
