/*
 * log.h - leveled logging with a facility per file and rate limiting (STYLE.md rule 13).
 *
 * Each .c file that logs names its facility once, at file scope:
 *
 *     LOG_FACILITY("net");
 *
 * and then calls log_err(...), log_warn(...), log_notice(...), log_info(...) or
 * log_debug(...). The level is checked before any formatting happens. The threshold is
 * global (log_set_level) and can be overridden per facility with log_configure("info,
 * net=debug,rpc=warn"), which is also what the SLUICE_LOG environment variable feeds at
 * first use. Lines go to stderr by default (or log_set_fd), one write(2) per line so lines
 * from many threads never interleave:
 *
 *     2026-11-23T17:40:01.123456Z W net net_tcp.c:312 closing conn 7: bad frame magic
 *
 * log_*_rl variants rate-limit per call site: at most SLUICE_LOG_RL_BURST lines per
 * SLUICE_LOG_RL_WINDOW_MS, then one "suppressed N" line when the window reopens. Use them
 * for anything a remote peer can trigger.
 *
 * Thread-safe. Library code (common/, client/) logs only at debug level (rule 13); daemons
 * log where they handle an error.
 */
#ifndef SLUICE_COMMON_LOG_H
#define SLUICE_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* Syslog numbering, so levels map one to one onto syslog and journald priorities. */
enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

#define SLUICE_LOG_RL_BURST	10
#define SLUICE_LOG_RL_WINDOW_MS 5000

struct log_facility {
	const char *name;
	int level;	     /* effective threshold; -1 until resolved from the global config */
	uint32_t config_gen; /* log config generation the level was resolved against */
};

struct log_ratelimit {
	uint64_t window_start_ns;
	uint32_t emitted;
	uint32_t suppressed;
};

#define LOG_FACILITY(fname) \
	static struct log_facility log_facility_ = {.name = (fname), .level = -1}

/* True if a message at `level` from facility `f` would be written. Cheap: no formatting. */
bool log_enabled(struct log_facility *f, int level);

void log_write(struct log_facility *f, int level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Rate-limited variant: rl is a per-call-site state (see log_*_rl below). */
void log_write_rl(struct log_facility *f, struct log_ratelimit *rl, int level, const char *file,
		  int line, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Global threshold for facilities without an override. Thread-safe. */
void log_set_level(int level);
int log_get_level(void);

/*
 * Parse "LEVEL[,facility=LEVEL...]" (levels: err, warn, notice, info, debug) and apply it.
 * Returns 0, or -EINVAL leaving the configuration unchanged.
 */
int log_configure(const char *spec);

/* Where lines go (default 2 = stderr). The fd is not closed by the log module. */
void log_set_fd(int fd);

/* Parse a level name ("warn") or number ("4"); -EINVAL if unknown. */
int log_level_parse(const char *name);

#define LOG_AT_(lvl, ...)                                                                  \
	do {                                                                               \
		if (log_enabled(&log_facility_, (lvl)))                                    \
			log_write(&log_facility_, (lvl), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)

#define LOG_AT_RL_(lvl, ...)                                                              \
	do {                                                                              \
		static struct log_ratelimit log_rl_;                                      \
		if (log_enabled(&log_facility_, (lvl)))                                   \
			log_write_rl(&log_facility_, &log_rl_, (lvl), __FILE__, __LINE__, \
				     __VA_ARGS__);                                        \
	} while (0)

#define log_err(...)	   LOG_AT_(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)	   LOG_AT_(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...)	   LOG_AT_(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)	   LOG_AT_(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	   LOG_AT_(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_err_rl(...)	   LOG_AT_RL_(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn_rl(...)   LOG_AT_RL_(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice_rl(...) LOG_AT_RL_(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info_rl(...)   LOG_AT_RL_(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug_rl(...)  LOG_AT_RL_(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
