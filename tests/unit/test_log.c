/*
 * test_log.c - logging into a memfd via log_set_fd, under a fake env clock: exact line
 * format, SLUICE_LOG read at first use, level filtering, per-facility overrides and their
 * refresh after log_configure, spec parsing errors, long and newline-terminated messages,
 * rate limiting (at most SLUICE_LOG_RL_BURST lines of a burst of 1000, then a "suppressed"
 * line when the window reopens) and whole lines from concurrent threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/env.h"
#include "common/limits.h"
#include "common/log.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

LOG_FACILITY("test");

#define WALL_2026_11_23T17_40_01 1795455601ull
#define THREADS			 4
#define LINES_PER_THREAD	 2000
#define CAPTURE_MAX		 (1u << 20)

static int g_fd;
static char g_out[CAPTURE_MAX];
static uint64_t g_mono = 1; /* fake clock, ns */

static uint64_t fake_mono(void *ctx)
{
	return __atomic_load_n(&g_mono, __ATOMIC_RELAXED);
}

static uint64_t fake_wall(void *ctx)
{
	return WALL_2026_11_23T17_40_01 * ENV_NS_PER_S + 123456789;
}

static void fake_sleep(void *ctx, uint64_t ns)
{
	__atomic_fetch_add(&g_mono, ns, __ATOMIC_RELAXED);
}

static const struct env_ops fake_env = {
	.name = "fake",
	.mono_ns = fake_mono,
	.wall_ns = fake_wall,
	.sleep_ns = fake_sleep,
	.random_bytes = NULL, /* replaced with the real one in main */
};

/* Everything logged since the last call, NUL-terminated in g_out; resets the file. */
static const char *take(void)
{
	ssize_t n = pread(g_fd, g_out, sizeof(g_out) - 1, 0);

	CHECK(n >= 0);
	g_out[n] = '\0';
	CHECK(ftruncate(g_fd, 0) == 0);
	return g_out;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_env_spec(void)
{
	/* main set SLUICE_LOG=notice,test=debug before the first log call */
	CHECK(log_get_level() == LOG_LVL_NOTICE);
	CHECK(log_enabled(&log_facility_, LOG_LVL_DEBUG));
	setenv("SLUICE_LOG", "err", 1); /* read once: no effect now */
	CHECK(log_get_level() == LOG_LVL_NOTICE);
}

static void test_format(void)
{
	char want[256];
	int line;

	CHECK(log_configure("info") == 0);
	line = __LINE__ + 1;
	log_warn("hello %d", 42);
	snprintf(want, sizeof(want), "2026-11-23T17:40:01.123456Z W test test_log.c:%d hello 42\n",
		 line);
	CHECK(strcmp(take(), want) == 0);

	log_err("e");
	log_notice("n");
	log_info("i\n"); /* a trailing newline is not doubled */
	CHECK(strstr(take(), " E test ") && strstr(g_out, " N test ") && strstr(g_out, " I test "));
	CHECK(count_lines(g_out) == 3 && strstr(g_out, " i\n2") == NULL);
}

static void test_long_line(void)
{
	char *big = malloc(5000);

	CHECK(big != NULL);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	log_warn("%s", big);
	take();
	CHECK(count_lines(g_out) == 1 && strlen(g_out) == SLUICE_LOG_LINE_MAX);
	CHECK(strcmp(g_out + SLUICE_LOG_LINE_MAX - 5, "x...\n") == 0);
	free(big);
}

static void test_levels(void)
{
	log_set_level(LOG_LVL_WARN);
	CHECK(log_get_level() == LOG_LVL_WARN);
	log_debug("d");
	log_info("i");
	log_notice("n");
	log_warn("w");
	log_err("e");
	take();
	CHECK(count_lines(g_out) == 2 && strstr(g_out, " W test ") && strstr(g_out, " E test "));
	CHECK(!log_enabled(&log_facility_, LOG_LVL_NOTICE));
	CHECK(log_enabled(&log_facility_, LOG_LVL_ERR));
	log_set_level(LOG_LVL_DEBUG);
	log_debug("d");
	CHECK(count_lines(take()) == 1 && strstr(g_out, " D test "));
}

static void test_overrides(void)
{
	struct log_facility other = {.name = "other", .level = -1};

	CHECK(log_configure("warn, test=debug ,other=err") == 0);
	CHECK(log_get_level() == LOG_LVL_WARN);
	log_debug("visible");
	CHECK(strstr(take(), "visible") != NULL);
	CHECK(!log_enabled(&other, LOG_LVL_WARN) && log_enabled(&other, LOG_LVL_ERR));

	/* Overrides are replaced and cached levels refresh. */
	CHECK(log_configure("other=debug") == 0);
	CHECK(log_get_level() == LOG_LVL_WARN); /* no global level: unchanged */
	CHECK(log_enabled(&other, LOG_LVL_DEBUG));
	log_info("hidden");
	CHECK(take()[0] == '\0');
	CHECK(!log_enabled(&log_facility_, LOG_LVL_INFO));
	log_write(&other, LOG_LVL_DEBUG, "dir/x.c", 7, "from %s", "other");
	CHECK(strstr(take(), " D other x.c:7 from other\n") != NULL);
}

static void test_bad_specs(void)
{
	static const char *const bad[] = {"bogus", "info,net=loud",    "info,=debug",
					  "8",	   "info,net=debug=x", NULL};
	char many[4096];
	size_t n;

	CHECK(log_configure("notice,test=err") == 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(log_configure(bad[i]) == -EINVAL);
	CHECK(log_configure("info,abcdefghijklmnopqrstuvwxyz0123456789=debug") == -EINVAL);
	n = (size_t)snprintf(many, sizeof(many), "info");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, ",f%d=debug", i);
	CHECK(log_configure(many) == 0);
	snprintf(many + n, sizeof(many) - n, ",f64=debug");
	CHECK(log_configure(many) == -EINVAL);
	CHECK(log_get_level() == LOG_LVL_INFO); /* the 64-override spec is still in force */
	CHECK(log_enabled(&log_facility_, LOG_LVL_INFO) && !log_enabled(&log_facility_, 7));

	CHECK(log_level_parse("err") == 3 && log_level_parse("WARN") == 4);
	CHECK(log_level_parse("notice") == 5 && log_level_parse("Info") == 6);
	CHECK(log_level_parse("debug") == 7 && log_level_parse("7") == 7);
	CHECK(log_level_parse("3") == 3 && log_level_parse("2") == -EINVAL);
	CHECK(log_level_parse("") == -EINVAL && log_level_parse(NULL) == -EINVAL);
	CHECK(log_level_parse("warning!") == -EINVAL);
}

/* One call site, so every call shares one rate-limit state. */
static int flood(const char *what, int i)
{
	log_warn_rl("%s %d", what, i);
	return __LINE__ - 1;
}

static void test_rate_limit(void)
{
	char want[64];
	int line = 0;

	log_set_level(LOG_LVL_INFO);
	for (int i = 0; i < 1000; i++)
		line = flood("flood", i);
	take();
	CHECK(count_lines(g_out) == SLUICE_LOG_RL_BURST);
	CHECK(strstr(g_out, "flood 9\n") && !strstr(g_out, "flood 10\n"));

	env_sleep_ms(SLUICE_LOG_RL_WINDOW_MS - 1); /* window still open */
	flood("late", 0);
	CHECK(take()[0] == '\0');

	env_sleep_ms(1);
	for (int i = 0; i < 3; i++)
		flood("again", i);
	take();
	CHECK(count_lines(g_out) == 4);
	snprintf(want, sizeof(want), "test_log.c:%d suppressed 991 similar messages\n", line);
	CHECK(strstr(g_out, want) != NULL);
	CHECK(strstr(g_out, "again 0\n") && strstr(g_out, "again 2\n"));
}

static void *log_thread(void *arg)
{
	for (int i = 0; i < LINES_PER_THREAD; i++)
		log_info("thread %d line %d padding padding padding", (int)(intptr_t)arg, i);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	const char *s;
	unsigned lines = 0;

	for (intptr_t i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, log_thread, (void *)i) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	s = take();
	for (const char *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
		CHECK(strncmp(s, "2026-11-23T17:40:01.123456Z I test test_log.c:", 46) == 0);
		CHECK(strncmp(nl - 7, "padding", 7) == 0);
		lines++;
	}
	CHECK(*s == '\0' && lines == THREADS * LINES_PER_THREAD);
}

int main(void)
{
	struct env_ops ops = fake_env;

	CHECK(setenv("SLUICE_LOG", "notice,test=debug", 1) == 0);
	ops.random_bytes = env_real_ops.random_bytes;
	env_install(&ops);
	g_fd = memfd_create("test_log", 0);
	CHECK(g_fd >= 0);
	/* O_APPEND: a memfd does not serialize the file position of concurrent writers. */
	CHECK(fcntl(g_fd, F_SETFL, O_APPEND) == 0);
	log_set_fd(g_fd);

	test_env_spec();
	test_format();
	test_long_line();
	test_levels();
	test_overrides();
	test_bad_specs();
	test_rate_limit();
	test_threads();

	log_set_fd(2);
	env_install(NULL);
	close(g_fd);
	printf("test_log: ok\n");
	return 0;
}
