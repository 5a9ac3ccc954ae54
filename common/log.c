/*
 * log.c - leveled, per-facility, rate-limited logging (see log.h for the line format).
 *
 * Design: the configuration (a global threshold plus up to LOG_OVERRIDES_MAX per-facility
 * thresholds) lives in g_cfg under g_lock and carries a generation, g_gen, bumped on every
 * change. Each facility caches its effective level together with the generation it was
 * resolved against, so log_enabled is two atomic loads and a compare; only a stale
 * facility takes the lock to re-resolve. SLUICE_LOG is parsed once, at the first use of
 * the configuration, before any explicit log_set_level/log_configure takes effect.
 *
 * A line is formatted into a stack buffer of SLUICE_LOG_LINE_MAX bytes (long messages are
 * cut and end in "...") and written with a single write(2); SLUICE_LOG_LINE_MAX is below
 * PIPE_BUF, so lines from concurrent threads never interleave, even into a pipe. (A
 * regular file given to log_set_fd should be opened O_APPEND: some file types, memfd for
 * one, do not serialize the file position between concurrent writers.)
 * Timestamps come from env_wall_ns() and rate-limit windows from env_now_ns(), so a
 * simulated env drives both.
 *
 * Rate limiting keeps its per-call-site state in struct log_ratelimit, updated with
 * atomics: exact for one thread; under contention a window may let a few more than
 * SLUICE_LOG_RL_BURST lines through, which is fine for a flood guard.
 *
 * Threads: every function may be called from any thread.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/limits.h"
#include "common/log.h"

#define LOG_OVERRIDES_MAX     64
#define LOG_FACILITY_NAME_MAX 32
#define LOG_SPEC_MAX	      SLUICE_CFG_LINE_MAX /* specs come from a config line or env */
#define LOG_DEFAULT_LEVEL     LOG_LVL_INFO
#define LOG_RL_WINDOW_NS      ((uint64_t)SLUICE_LOG_RL_WINDOW_MS * ENV_NS_PER_MS)

static_assert(SLUICE_LOG_LINE_MAX <= PIPE_BUF, "one write(2) per line stays atomic on pipes");

struct log_override {
	char name[LOG_FACILITY_NAME_MAX];
	int level;
};

struct log_config {
	int level; /* global threshold; -1 in a parsed spec that sets none */
	unsigned n_overrides;
	struct log_override overrides[LOG_OVERRIDES_MAX];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* g_lock guards g_cfg, g_gen bumps and writes of the facility caches. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_config g_cfg = {.level = LOG_DEFAULT_LEVEL};
static atomic_uint g_gen = 1; /* facilities start at config_gen 0: stale */
static atomic_int g_fd = STDERR_FILENO;

/* ---- formatting and output -------------------------------------------------------------- */

static char level_letter(int level)
{
	static const char letters[] = "EEEEWNID"; /* emerg..crit print as errors */

	return level >= 0 && level <= LOG_LVL_DEBUG ? letters[level] : '?';
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* "2026-11-23T17:40:01.123456Z W net net_tcp.c:312 "; returns its length (< size). */
static size_t format_prefix(char *buf, size_t size, const char *facility, int level,
			    const char *file, int line)
{
	uint64_t ns = env_wall_ns();
	time_t sec = (time_t)(ns / ENV_NS_PER_S);
	unsigned usec = (unsigned)(ns % ENV_NS_PER_S / 1000);
	struct tm tm;
	size_t n;
	int r;

	gmtime_r(&sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(buf + n, size - n, ".%06uZ %c %s %s:%d ", usec, level_letter(level), facility,
		     base_name(file), line);
	if (r < 0)
		return n;
	return (size_t)r < size - n ? n + (size_t)r : size - 1;
}

/* One write(2); errno is preserved so logging never disturbs the caller's error path. */
static void write_line(const char *buf, size_t len)
{
	int saved = errno;
	int fd = atomic_load_explicit(&g_fd, memory_order_relaxed);
	ssize_t n;

	do {
		n = write(fd, buf, len);
	} while (n < 0 && errno == EINTR);
	errno = saved;
}

static void __attribute__((format(printf, 5, 0)))
vemit(const char *facility, int level, const char *file, int line, const char *fmt, va_list ap)
{
	char buf[SLUICE_LOG_LINE_MAX];
	size_t room, n = format_prefix(buf, sizeof(buf), facility, level, file, line);
	int m;

	room = sizeof(buf) - n;
	m = vsnprintf(buf + n, room, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)m >= room) {
		n = sizeof(buf) - 1;
		memcpy(buf + n - 3, "...", 3);
	} else {
		n += (size_t)m;
	}
	while (n > 0 && buf[n - 1] == '\n')
		n--; /* callers may end with \n; we add exactly one */
	buf[n++] = '\n';
	write_line(buf, n);
}

static void __attribute__((format(printf, 5, 6)))
emit(const char *facility, int level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(facility, level, file, line, fmt, ap);
	va_end(ap);
}

/* ---- configuration ---------------------------------------------------------------------- */

int log_level_parse(const char *name)
{
	static const char *const names[] = {"err", "warn", "notice", "info", "debug"};

	if (name == NULL)
		return -EINVAL;
	if (name[0] >= '0' + LOG_LVL_ERR && name[0] <= '0' + LOG_LVL_DEBUG && name[1] == '\0')
		return name[0] - '0';
	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(names); i++) {
		if (strcasecmp(name, names[i]) == 0)
			return LOG_LVL_ERR + (int)i;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* A repeated facility keeps its last level. */
static int add_override(struct log_config *cfg, const char *name, int level)
{
	unsigned i;

	if (name[0] == '\0' || strlen(name) >= LOG_FACILITY_NAME_MAX)
		return -EINVAL;
	for (i = 0; i < cfg->n_overrides; i++) {
		if (strcmp(cfg->overrides[i].name, name) == 0)
			break;
	}
	if (i == LOG_OVERRIDES_MAX)
		return -EINVAL;
	strcpy(cfg->overrides[i].name, name);
	cfg->overrides[i].level = level;
	if (i == cfg->n_overrides)
		cfg->n_overrides++;
	return 0;
}

/* One comma-separated item: "LEVEL" or "facility=LEVEL". Modifies item. */
static int parse_item(char *item, struct log_config *cfg)
{
	char *eq = strchr(item, '=');
	int level;

	if (eq == NULL) {
		item = trim(item);
		if (item[0] == '\0')
			return 0; /* "info, ,net=debug" or a trailing comma: nothing to apply */
		level = log_level_parse(item);
		if (level < 0)
			return level;
		cfg->level = level;
		return 0;
	}
	*eq = '\0';
	level = log_level_parse(trim(eq + 1));
	if (level < 0)
		return level;
	return add_override(cfg, trim(item), level);
}

static int parse_spec(const char *spec, struct log_config *cfg)
{
	char buf[LOG_SPEC_MAX];
	char *save = NULL;
	int rc;

	if (spec == NULL || strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	cfg->level = -1;
	cfg->n_overrides = 0;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		rc = parse_item(item, cfg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Lock held. Every cached facility level is stale from here on. */
static void bump_gen_locked(void)
{
	atomic_fetch_add_explicit(&g_gen, 1, memory_order_release);
}

/* The spec replaces all overrides; the global level changes only if the spec names one. */
static int configure(const char *spec)
{
	struct log_config *cfg = malloc(sizeof(*cfg)); /* 2+ KiB: keep it off small stacks */
	int rc;

	if (cfg == NULL)
		return -ENOMEM;
	rc = parse_spec(spec, cfg);
	if (rc == 0) {
		pthread_mutex_lock(&g_lock);
		if (cfg->level < 0)
			cfg->level = g_cfg.level;
		g_cfg = *cfg;
		bump_gen_locked();
		pthread_mutex_unlock(&g_lock);
	}
	free(cfg);
	return rc;
}

/* Runs once. A bad SLUICE_LOG has no caller to return an error to, so it is reported
 * directly (at warn: the user asked for logging and should learn it was ignored). */
static void init_from_env(void)
{
	const char *spec = getenv("SLUICE_LOG");

	if (spec != NULL && spec[0] != '\0' && configure(spec) != 0)
		emit("log", LOG_LVL_WARN, __FILE__, __LINE__, "ignoring invalid SLUICE_LOG=\"%s\"",
		     spec);
}

static void ensure_init(void)
{
	pthread_once(&g_once, init_from_env);
}

/* Lock held. */
static int lookup_level_locked(const char *name)
{
	for (unsigned i = 0; i < g_cfg.n_overrides; i++) {
		if (strcmp(g_cfg.overrides[i].name, name) == 0)
			return g_cfg.overrides[i].level;
	}
	return g_cfg.level;
}

/* Slow path. The cache is written under the lock so (level, gen) pairs from racing
 * resolvers never mix; level is stored before gen (release) for log_enabled's benefit. */
static void resolve(struct log_facility *f)
{
	ensure_init();
	pthread_mutex_lock(&g_lock);
	__atomic_store_n(&f->level, lookup_level_locked(f->name), __ATOMIC_RELAXED);
	__atomic_store_n(&f->config_gen, atomic_load(&g_gen), __ATOMIC_RELEASE);
	pthread_mutex_unlock(&g_lock);
}

bool log_enabled(struct log_facility *f, int level)
{
	uint32_t gen = atomic_load_explicit(&g_gen, memory_order_relaxed);

	if (__atomic_load_n(&f->config_gen, __ATOMIC_ACQUIRE) != gen)
		resolve(f);
	return level <= __atomic_load_n(&f->level, __ATOMIC_RELAXED);
}

void log_set_level(int level)
{
	ASSERT(level >= LOG_LVL_ERR && level <= LOG_LVL_DEBUG);
	ensure_init();
	pthread_mutex_lock(&g_lock);
	g_cfg.level = level;
	bump_gen_locked();
	pthread_mutex_unlock(&g_lock);
}

int log_get_level(void)
{
	int level;

	ensure_init();
	pthread_mutex_lock(&g_lock);
	level = g_cfg.level;
	pthread_mutex_unlock(&g_lock);
	return level;
}

int log_configure(const char *spec)
{
	ensure_init();
	return configure(spec);
}

void log_set_fd(int fd)
{
	ASSERT(fd >= 0);
	atomic_store_explicit(&g_fd, fd, memory_order_relaxed);
}

/* ---- writing ---------------------------------------------------------------------------- */

void log_write(struct log_facility *f, int level, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vemit(f->name, level, file, line, fmt, ap);
	va_end(ap);
}

/*
 * True if this call may write. Opens a new window when the old one has passed; the thread
 * that opens it reports, via *suppressed, how many lines the closed window dropped.
 * window_start_ns stores now + 1 so that 0 can mean "never opened" even at time 0.
 */
static bool rl_admit(struct log_ratelimit *rl, uint32_t *suppressed)
{
	uint64_t now = env_now_ns() + 1;
	uint64_t start = __atomic_load_n(&rl->window_start_ns, __ATOMIC_ACQUIRE);

	*suppressed = 0;
	if (start == 0 || now - start >= LOG_RL_WINDOW_NS) {
		if (__atomic_compare_exchange_n(&rl->window_start_ns, &start, now, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			*suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&rl->emitted, 0, __ATOMIC_RELAXED);
		}
	}
	/* The plain load first keeps emitted from counting (and wrapping) during a flood. */
	if (__atomic_load_n(&rl->emitted, __ATOMIC_RELAXED) < SLUICE_LOG_RL_BURST &&
	    __atomic_fetch_add(&rl->emitted, 1, __ATOMIC_RELAXED) < SLUICE_LOG_RL_BURST)
		return true;
	__atomic_fetch_add(&rl->suppressed, 1, __ATOMIC_RELAXED);
	return false;
}

void log_write_rl(struct log_facility *f, struct log_ratelimit *rl, int level, const char *file,
		  int line, const char *fmt, ...)
{
	uint32_t suppressed;
	va_list ap;

	if (!rl_admit(rl, &suppressed))
		return;
	if (suppressed > 0)
		emit(f->name, level, file, line, "suppressed %u similar messages", suppressed);
	va_start(ap, fmt);
	vemit(f->name, level, file, line, fmt, ap);
	va_end(ap);
}
