/*
 * cli_util.c - small pure helpers of the CLI: error and usage lines, number and id-list
 * parsing, entity state names, human-readable sizes, ages and percentages.
 *
 * Names are kept here rather than borrowed from mgmtd/chain_rules.h: the CLI depends only
 * on the protocol (proto/), never on a daemon's internals (STYLE.md rule 3).
 *
 * Main thread only (the formatting helpers are pure and would be safe anywhere).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "common/err.h"
#include "tools/cli.h"

/* ---- errors and usage ------------------------------------------------------------------ */

int cli_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout); /* keep what was already printed before the error line */
	fputs("sluice: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s (%d)\n", sluice_strerror(rc), rc);
	return CLI_EXIT_ERR;
}

int cli_fail_res(const struct rpc_result *res, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("sluice: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (res->error_detail)
		fprintf(stderr, ": %s", res->error_detail);
	fprintf(stderr, ": %s (%d)\n", sluice_strerror(res->status), res->status);
	return CLI_EXIT_ERR;
}

int cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("sluice: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: sluice %s\n", usage);
	return CLI_EXIT_USAGE;
}

/* ---- parsing ----------------------------------------------------------------------------- */

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	int base = 10;
	char *end;

	/* Decimal, or hex after 0x; never octal ("010" is ten). strtoull accepts leading
	 * blanks and a minus sign (wrapping the value): the digit check refuses both. */
	if (s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!s || !isxdigit((unsigned char)*s) || (base == 10 && !isdigit((unsigned char)*s)))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_id_list(const char *s, uint64_t max, uint64_t *ids, unsigned cap)
{
	char word[32];
	unsigned n = 0;
	uint64_t v;

	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(word))
			return -EINVAL;
		if (n == cap)
			return -E2BIG;
		memcpy(word, s, len);
		word[len] = '\0';
		if (cli_parse_u64(word, 1, max, &v))
			return -EINVAL;
		ids[n++] = v;
		if (s[len] == '\0')
			break;
		s += len + 1;
	}
	return (int)n;
}

/* ---- names ------------------------------------------------------------------------------- */

const char *cli_node_type_name(Sluice__NodeType t)
{
	return mgmt_node_type_name(t);
}

const char *cli_target_state_name(Sluice__TargetState s)
{
	return mgmt_target_state_name(s);
}

const char *cli_local_state_name(Sluice__LocalState s)
{
	return mgmt_local_state_name(s);
}

const char *cli_chain_health_name(enum cli_chain_health h)
{
	switch (h) {
	case CLI_CHAIN_HEALTHY:
		return "healthy";
	case CLI_CHAIN_DEGRADED:
		return "degraded";
	case CLI_CHAIN_OFFLINE:
		return "offline";
	}
	return "unknown";
}

/* ---- human-readable numbers -------------------------------------------------------------- */

const char *cli_fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	unsigned u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	v /= 1024;
	/* Switch unit before rounding would print "1024.0". */
	while (v >= 1023.95 && u + 1 < SLUICE_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *cli_fmt_age(uint64_t then_ms, uint64_t now_ms, char *buf, size_t len)
{
	uint64_t ms, s;

	if (then_ms == 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	if (then_ms > now_ms + 1000) {
		snprintf(buf, len, "future");
		return buf;
	}
	ms = then_ms > now_ms ? 0 : now_ms - then_ms;
	s = ms / 1000;
	if (s < 10)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", s, (ms % 1000) / 100);
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

const char *cli_fmt_pct(uint64_t done, uint64_t total, char *buf, size_t len)
{
	if (total == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)done / (double)total);
	return buf;
}

uint64_t cli_now_wall_ms(void)
{
	return env_wall_ns() / ENV_NS_PER_MS;
}
