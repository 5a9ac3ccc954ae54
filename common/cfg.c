/*
 * cfg.c - schema-driven configuration: defaults, INI-like files, --set overrides, --help.
 *
 * Design. Everything is driven by the daemon's table of struct cfg_key (see cfg.h). One
 * value grammar serves the schema defaults, file lines and --set overrides, so a default
 * is written exactly as a user would write it and cfg_print output loads back to the same
 * struct. Text is handled in three steps:
 *
 *   1. split into lines, each checked before it is looked at: at most SLUICE_CFG_LINE_MAX
 *      bytes (found with a bounded memchr), no NUL, no control character but tab. A
 *      trailing CR is dropped so files saved with CRLF endings load; a UTF-8 byte-order
 *      mark at the very start is skipped. Other bytes, valid UTF-8 or not, pass through.
 *   2. classify the line (blank, comment, [section], key = value) and decode the value
 *      text: a double-quoted string with the escapes \" \\ \n \t, or bare text that ends
 *      at a '#' or ';' starting the value or following whitespace, trimmed.
 *   3. parse the decoded text by type (manual digit loops with overflow checks, no
 *      locale, no strtoll) and check the range, then store it into the caller's struct.
 *
 * Work is bounded: a file is at most SLUICE_CFG_FILE_MAX_BYTES, each byte is visited a
 * constant number of times plus one linear key lookup per line, and nothing recurses.
 * Each line is applied as soon as it parses, so on error the struct keeps what earlier
 * lines set (cfg.h contract) and stays safe to cfg_free. Duplicate keys are found with a
 * per-load array holding, for each schema key, the line that set it.
 *
 * Errors fill struct cfg_err with "<where>: <cause>", where <where> is "file:line", "--set",
 * "command line" or "schema default"/"schema"; user text echoed in a message is clipped
 * and has control characters replaced, so messages are always one printable line. They
 * return -SLUICE_ECONFIG, or -ENOMEM when an allocation fails (message "out of memory").
 * Nothing is logged here: the daemon prints the message where it handles the error.
 *
 * Threads: called by whichever thread loads the config, normally main at startup. There
 * is no global state; one struct must not be used by two threads at once.
 */
#include "common/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/limits.h"

/* Longest piece of user text quoted back in an error message. */
#define CFG_EXCERPT_MAX 64

/* Where an error happened: "name:line" when line > 0, else just "name". */
struct cfg_where {
	const char *name;
	unsigned line;
};

/* A parsed value before it is stored; s points into the caller's decode buffer. */
union cfg_val {
	bool b;
	int64_t i;
	uint64_t u;
	int e;
	const char *s;
};

/* State of one cfg_load_string call. */
struct cfg_load {
	const struct cfg_schema *s;
	void *out;
	struct cfg_where w;
	unsigned *first_line; /* per schema key: line that set it in this text, 0 = none */
	char section[SLUICE_CFG_KEY_MAX]; /* current [section]; "" before the first header */
};

static const char *const cfg_type_names[] = {
	[CFG_BOOL] = "bool", [CFG_INT] = "int",		  [CFG_UINT] = "uint",
	[CFG_SIZE] = "size", [CFG_DURATION] = "duration", [CFG_STRING] = "string",
	[CFG_ENUM] = "enum",
};

/* ---- small helpers ----------------------------------------------------------------- */

static void __attribute__((format(printf, 3, 4)))
cfg_fail(struct cfg_err *err, const struct cfg_where *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return;
	if (w->line > 0)
		n = snprintf(err->msg, sizeof(err->msg), "%s:%u: ", w->name, w->line);
	else
		n = snprintf(err->msg, sizeof(err->msg), "%s: ", w->name);
	if (n < 0 || (size_t)n >= sizeof(err->msg))
		return; /* the prefix alone filled the buffer: keep it, truncated */
	va_start(ap, fmt);
	(void)vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

static int cfg_nomem(struct cfg_err *err, const struct cfg_where *w)
{
	cfg_fail(err, w, "out of memory");
	return -ENOMEM;
}

/*
 * Copy at most CFG_EXCERPT_MAX bytes of user text s[0..len) into buf for an error message,
 * replacing control characters (a decoded "\n" escape, say) with '?' and marking a cut
 * with "...". buf must hold CFG_EXCERPT_MAX + 4 bytes.
 */
static const char *cfg_excerpt(char *buf, const char *s, size_t len)
{
	size_t n = len > CFG_EXCERPT_MAX ? CFG_EXCERPT_MAX : len;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (n < len) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

static bool cfg_is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static const char *cfg_skip_ws(const char *p)
{
	while (cfg_is_ws(*p))
		p++;
	return p;
}

static bool cfg_is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool cfg_is_ident(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (!cfg_is_ident_char(s[i]))
			return false;
	}
	return true;
}

/* True at the end of a value or section header: nothing left but a comment. */
static bool cfg_at_end(const char *p)
{
	return *p == '\0' || *p == '#' || *p == ';';
}

/* Length of the section part of a schema key name ("net" in "net.port"). */
static size_t cfg_section_len(const char *name)
{
	const char *dot = strchr(name, '.');

	ASSERT(dot != NULL); /* checked by cfg_schema_check */
	return (size_t)(dot - name);
}

static const struct cfg_key *cfg_key_find(const struct cfg_schema *s, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++) {
		const struct cfg_key *k = &s->keys[i];

		if (strncmp(k->name, name, len) == 0 && k->name[len] == '\0')
			return k;
	}
	return NULL;
}

static bool cfg_section_exists(const struct cfg_schema *s, const char *sec, size_t len)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++) {
		if (cfg_section_len(s->keys[i].name) == len &&
		    strncmp(s->keys[i].name, sec, len) == 0)
			return true;
	}
	return false;
}

/*
 * Edit distance counting a swap of two neighbours as one edit ("nte" is 1 from "net"), or
 * SIZE_MAX for names too long to be keys at all. Three rolling rows of the usual table.
 */
static size_t cfg_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t rows[3][SLUICE_CFG_KEY_MAX + 1];
	size_t i, j;

	if (la >= SLUICE_CFG_KEY_MAX || lb >= SLUICE_CFG_KEY_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		rows[0][j] = j;
	for (i = 1; i <= la; i++) {
		size_t *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];

		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
	}
	return rows[la % 3][lb];
}

/*
 * "; did you mean 'net.listen'?" into buf (or "") for a misspelt key, or for a misspelt
 * section when sections is true. Only close matches are offered: a distance of at most 2
 * and less than half the name, so short nonsense gets no suggestion.
 */
static const char *cfg_suggest(const struct cfg_schema *s, bool sections, const char *name,
			       size_t len, char *buf, size_t cap)
{
	const char *best = NULL;
	size_t best_len = 0, best_d = 3;
	size_t i;

	for (i = 0; i < s->nkeys; i++) {
		const char *cand = s->keys[i].name;
		size_t clen = sections ? cfg_section_len(cand) : strlen(cand);
		size_t d = cfg_edit_distance(name, len, cand, clen);

		if (d < best_d && 2 * d < len) {
			best = cand;
			best_len = clen;
			best_d = d;
		}
	}
	buf[0] = '\0';
	if (best != NULL)
		snprintf(buf, cap, "; did you mean '%s%.*s%s'?", sections ? "[" : "", (int)best_len,
			 best, sections ? "]" : "");
	return buf;
}

/* ---- value formatting (help, cfg_print, range errors) -------------------------------- */

/* Largest binary unit that divides v exactly, so the text parses back to v. */
static const char *cfg_fmt_size(char *buf, size_t cap, uint64_t v)
{
	static const char units[] = "TGMK";
	int shift = 40;
	int i;

	for (i = 0; v != 0 && i < 4; i++, shift -= 10) {
		if ((v & ((UINT64_C(1) << shift) - 1)) == 0) {
			snprintf(buf, cap, "%" PRIu64 "%c", v >> shift, units[i]);
			return buf;
		}
	}
	snprintf(buf, cap, "%" PRIu64, v);
	return buf;
}

static const char *cfg_fmt_duration(char *buf, size_t cap, uint64_t ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
	size_t i;

	for (i = 0; ms != 0 && i < SLUICE_ARRAY_SIZE(units); i++) {
		if (ms % units[i].ms == 0) {
			snprintf(buf, cap, "%" PRIu64 "%s", ms / units[i].ms, units[i].suffix);
			return buf;
		}
	}
	snprintf(buf, cap, "%" PRIu64 "ms", ms);
	return buf;
}

/* An unsigned value of type t as it would be written in a file. */
static const char *cfg_fmt_unsigned(char *buf, size_t cap, enum cfg_type t, uint64_t v)
{
	if (t == CFG_SIZE)
		return cfg_fmt_size(buf, cap, v);
	if (t == CFG_DURATION)
		return cfg_fmt_duration(buf, cap, v);
	snprintf(buf, cap, "%" PRIu64, v);
	return buf;
}

static bool cfg_bounded(const struct cfg_key *k)
{
	return k->min != 0 || k->max != 0;
}

/* "[1, 65535]" in the key's own units. */
static const char *cfg_fmt_range(char *buf, size_t cap, const struct cfg_key *k)
{
	char lo[32], hi[32];

	if (k->type == CFG_INT) {
		snprintf(buf, cap, "[%" PRId64 ", %" PRId64 "]", k->min, k->max);
		return buf;
	}
	snprintf(buf, cap, "[%s, %s]", cfg_fmt_unsigned(lo, sizeof(lo), k->type, (uint64_t)k->min),
		 cfg_fmt_unsigned(hi, sizeof(hi), k->type, (uint64_t)k->max));
	return buf;
}

/* ---- value decoding and typed parsing ---------------------------------------------- */

/*
 * Decode the text after '=' (NUL-terminated, control characters already rejected) into
 * buf, which must hold strlen(raw) + 1 bytes: decoding never makes text longer.
 */
static int cfg_decode(const char *raw, char *buf, const struct cfg_key *k,
		      const struct cfg_where *w, struct cfg_err *err)
{
	char ex[CFG_EXCERPT_MAX + 4];
	const char *p = cfg_skip_ws(raw);
	size_t n = 0;

	if (*p != '"') {
		const char *q, *end;

		for (q = p; *q != '\0'; q++) {
			if ((*q == '#' || *q == ';') && (q == p || cfg_is_ws(q[-1])))
				break;
		}
		for (end = q; end > p && cfg_is_ws(end[-1]); end--)
			;
		n = (size_t)(end - p);
		memcpy(buf, p, n);
		buf[n] = '\0';
		return 0;
	}
	for (p++; *p != '"'; p++) {
		char c = *p;

		if (c == '\0')
			goto unterminated;
		if (c == '\\') {
			switch (*++p) {
			case '"':
			case '\\':
				c = *p;
				break;
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case '\0':
				goto unterminated;
			default:
				cfg_fail(err, w,
					 "%s: unknown escape '\\%s' in string (use \\\" \\\\ \\n "
					 "\\t)",
					 k->name, cfg_excerpt(ex, p, 1));
				return -SLUICE_ECONFIG;
			}
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	p = cfg_skip_ws(p + 1);
	if (!cfg_at_end(p)) {
		cfg_fail(err, w, "%s: unexpected text '%s' after the closing quote", k->name,
			 cfg_excerpt(ex, p, strlen(p)));
		return -SLUICE_ECONFIG;
	}
	return 0;
unterminated:
	cfg_fail(err, w, "%s: unterminated string (missing closing '\"')", k->name);
	return -SLUICE_ECONFIG;
}

static int cfg_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/*
 * Digits at *sp, decimal or (allow_hex) 0x-prefixed hex, into *out. Returns 0, -EINVAL if
 * there is no digit, -ERANGE if the number does not fit in 64 bits. Advances *sp past
 * every digit either way, so the caller can check what follows.
 */
static int cfg_parse_digits(const char **sp, bool allow_hex, uint64_t *out)
{
	const char *p = *sp, *start;
	unsigned base = 10;
	uint64_t v = 0;
	bool overflow = false;

	if (allow_hex && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (start = p;; p++) {
		unsigned d = (unsigned)cfg_digit(*p);

		if (d >= base)
			break;
		if (v > (UINT64_MAX - d) / base)
			overflow = true;
		else
			v = v * base + d;
	}
	*sp = p;
	if (p == start)
		return -EINVAL;
	if (overflow)
		return -ERANGE;
	*out = v;
	return 0;
}

static int cfg_parse_bool(const struct cfg_key *k, const char *t, union cfg_val *v,
			  const struct cfg_where *w, struct cfg_err *err)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	char ex[CFG_EXCERPT_MAX + 4];
	size_t i;

	for (i = 0; i < SLUICE_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(t, yes[i]) == 0 || strcasecmp(t, no[i]) == 0) {
			v->b = strcasecmp(t, yes[i]) == 0;
			return 0;
		}
	}
	cfg_fail(err, w, "%s: expected a boolean (true/false, yes/no, on/off, 1/0), got '%s'",
		 k->name, cfg_excerpt(ex, t, strlen(t)));
	return -SLUICE_ECONFIG;
}

static int cfg_parse_int(const struct cfg_key *k, const char *t, union cfg_val *v,
			 const struct cfg_where *w, struct cfg_err *err)
{
	char ex[CFG_EXCERPT_MAX + 4], range[80];
	const char *p = t;
	bool neg = *p == '-';
	uint64_t mag = 0;
	int64_t x;
	int rc;

	if (*p == '-' || *p == '+')
		p++;
	rc = cfg_parse_digits(&p, true, &mag);
	if (rc == -EINVAL || *p != '\0') {
		cfg_fail(err, w, "%s: expected an integer, got '%s'", k->name,
			 cfg_excerpt(ex, t, strlen(t)));
		return -SLUICE_ECONFIG;
	}
	if (rc == -ERANGE || mag > (uint64_t)INT64_MAX + neg) {
		cfg_fail(err, w, "%s: value %s does not fit in a signed 64-bit integer", k->name,
			 cfg_excerpt(ex, t, strlen(t)));
		return -SLUICE_ECONFIG;
	}
	/* -(mag - 1) - 1 reaches INT64_MIN without overflowing */
	x = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
	if (cfg_bounded(k) && (x < k->min || x > k->max)) {
		cfg_fail(err, w, "%s: value %" PRId64 " out of range %s", k->name, x,
			 cfg_fmt_range(range, sizeof(range), k));
		return -SLUICE_ECONFIG;
	}
	v->i = x;
	return 0;
}

/* Suffix multiplier for a size or duration; 0 if the suffix is unknown. */
static uint64_t cfg_suffix_mult(enum cfg_type t, const char *suffix)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} sizes[] =
		{
			{"", 1},
			{"B", 1},
			{"K", UINT64_C(1) << 10},
			{"k", UINT64_C(1) << 10},
			{"KiB", UINT64_C(1) << 10},
			{"M", UINT64_C(1) << 20},
			{"m", UINT64_C(1) << 20},
			{"MiB", UINT64_C(1) << 20},
			{"G", UINT64_C(1) << 30},
			{"g", UINT64_C(1) << 30},
			{"GiB", UINT64_C(1) << 30},
			{"T", UINT64_C(1) << 40},
			{"t", UINT64_C(1) << 40},
			{"TiB", UINT64_C(1) << 40},
		},
	  durations[] = {
		  {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
	  };
	size_t i;

	if (t == CFG_SIZE) {
		for (i = 0; i < SLUICE_ARRAY_SIZE(sizes); i++) {
			if (strcmp(suffix, sizes[i].suffix) == 0)
				return sizes[i].mult;
		}
	} else if (t == CFG_DURATION) {
		for (i = 0; i < SLUICE_ARRAY_SIZE(durations); i++) {
			if (strcmp(suffix, durations[i].suffix) == 0)
				return durations[i].mult;
		}
	}
	return *suffix == '\0' ? 1 : 0;
}

/* uint, size and duration: non-negative 64-bit, sizes and durations with a unit suffix. */
static int cfg_parse_unsigned(const struct cfg_key *k, const char *t, union cfg_val *v,
			      const struct cfg_where *w, struct cfg_err *err)
{
	static const char *const expected[] = {
		[CFG_UINT] = "an unsigned integer",
		[CFG_SIZE] = "a size such as 4096, 64K or 1G",
		[CFG_DURATION] = "a duration such as 250ms, 10s, 2m or 1h",
	};
	char ex[CFG_EXCERPT_MAX + 4], sfx[CFG_EXCERPT_MAX + 4], num[32], range[80];
	const char *p = t;
	uint64_t x = 0, mult;
	int rc;

	if (*p == '-') {
		cfg_fail(err, w, "%s: negative value %s not allowed", k->name,
			 cfg_excerpt(ex, t, strlen(t)));
		return -SLUICE_ECONFIG;
	}
	if (*p == '+')
		p++;
	rc = cfg_parse_digits(&p, k->type == CFG_UINT, &x);
	if (rc == -EINVAL) {
		cfg_fail(err, w, "%s: expected %s, got '%s'", k->name, expected[k->type],
			 cfg_excerpt(ex, t, strlen(t)));
		return -SLUICE_ECONFIG;
	}
	p = cfg_skip_ws(p);
	mult = cfg_suffix_mult(k->type, p);
	if (mult == 0 && k->type == CFG_UINT) {
		cfg_fail(err, w, "%s: expected %s, got '%s'", k->name, expected[k->type],
			 cfg_excerpt(ex, t, strlen(t)));
		return -SLUICE_ECONFIG;
	}
	if (mult == 0) {
		cfg_fail(err, w, "%s: unknown %s suffix '%s' in '%s' (use %s)", k->name,
			 cfg_type_names[k->type], cfg_excerpt(sfx, p, strlen(p)),
			 cfg_excerpt(ex, t, strlen(t)),
			 k->type == CFG_SIZE ? "K, M, G, T or KiB, MiB, GiB, TiB" : "ms, s, m, h");
		return -SLUICE_ECONFIG;
	}
	if (rc == -ERANGE || x > UINT64_MAX / mult) {
		cfg_fail(err, w, "%s: value %s does not fit in 64 bits", k->name,
			 cfg_excerpt(ex, t, strlen(t)));
		return -SLUICE_ECONFIG;
	}
	x *= mult;
	if (cfg_bounded(k) && (x < (uint64_t)k->min || x > (uint64_t)k->max)) {
		cfg_fail(err, w, "%s: value %s out of range %s", k->name,
			 cfg_fmt_unsigned(num, sizeof(num), k->type, x),
			 cfg_fmt_range(range, sizeof(range), k));
		return -SLUICE_ECONFIG;
	}
	v->u = x;
	return 0;
}

static int cfg_parse_enum(const struct cfg_key *k, const char *t, union cfg_val *v,
			  const struct cfg_where *w, struct cfg_err *err)
{
	char ex[CFG_EXCERPT_MAX + 4], list[256];
	size_t used = 0;
	int i;

	for (i = 0; k->enum_names[i] != NULL; i++) {
		if (strcmp(t, k->enum_names[i]) == 0) {
			v->e = i;
			return 0;
		}
	}
	list[0] = '\0';
	for (i = 0; k->enum_names[i] != NULL && used < sizeof(list); i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
				 k->enum_names[i]);
		used += n > 0 ? (size_t)n : 0;
	}
	cfg_fail(err, w, "%s: unknown value '%s' (expected one of: %s)", k->name,
		 cfg_excerpt(ex, t, strlen(t)), list);
	return -SLUICE_ECONFIG;
}

/* Parse decoded text t as the key's type and check its range. */
static int cfg_parse_value(const struct cfg_key *k, const char *t, union cfg_val *v,
			   const struct cfg_where *w, struct cfg_err *err)
{
	switch (k->type) {
	case CFG_BOOL:
		return cfg_parse_bool(k, t, v, w, err);
	case CFG_INT:
		return cfg_parse_int(k, t, v, w, err);
	case CFG_UINT:
	case CFG_SIZE:
	case CFG_DURATION:
		return cfg_parse_unsigned(k, t, v, w, err);
	case CFG_STRING:
		v->s = t;
		return 0;
	case CFG_ENUM:
		return cfg_parse_enum(k, t, v, w, err);
	}
	PANIC("cfg key %s: bad type %d", k->name, (int)k->type);
}

/* Write v into the field of out; a string replaces (and frees) the previous one. */
static int cfg_store(const struct cfg_key *k, const union cfg_val *v, void *out)
{
	char *field = (char *)out + k->offset;
	char *dup;

	switch (k->type) {
	case CFG_BOOL:
		*(bool *)(void *)field = v->b;
		break;
	case CFG_INT:
		*(int64_t *)(void *)field = v->i;
		break;
	case CFG_UINT:
	case CFG_SIZE:
	case CFG_DURATION:
		*(uint64_t *)(void *)field = v->u;
		break;
	case CFG_STRING:
		dup = strdup(v->s);
		if (dup == NULL)
			return -ENOMEM;
		free(*(char **)(void *)field);
		*(char **)(void *)field = dup;
		break;
	case CFG_ENUM:
		*(int *)(void *)field = v->e;
		break;
	}
	return 0;
}

/* Decode, parse and store the value text raw (at most SLUICE_CFG_LINE_MAX bytes). */
static int cfg_assign(const struct cfg_key *k, const char *raw, void *out,
		      const struct cfg_where *w, struct cfg_err *err)
{
	char buf[SLUICE_CFG_LINE_MAX + 1];
	union cfg_val v;
	int rc;

	ASSERT(strlen(raw) <= SLUICE_CFG_LINE_MAX);
	rc = cfg_decode(raw, buf, k, w, err);
	if (rc == 0)
		rc = cfg_parse_value(k, buf, &v, w, err);
	if (rc == 0 && cfg_store(k, &v, out) != 0)
		rc = cfg_nomem(err, w);
	return rc;
}

/*
 * Reject NUL and control characters (tab is fine) in s[0..n). Bytes from 0x80 up pass:
 * strings may hold any UTF-8, and checking it is not this module's business.
 */
static int cfg_check_chars(const char *s, size_t n, const struct cfg_where *w, struct cfg_err *err)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0') {
			cfg_fail(err, w, "NUL byte at column %zu", i + 1);
			return -SLUICE_ECONFIG;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			cfg_fail(err, w,
				 "control character 0x%02x at column %zu (only tab is allowed)", c,
				 i + 1);
			return -SLUICE_ECONFIG;
		}
	}
	return 0;
}

/* ---- schema ---------------------------------------------------------------------------- */

static int cfg_check_key(const struct cfg_schema *s, size_t idx, struct cfg_err *err)
{
	const struct cfg_key *k = &s->keys[idx];
	struct cfg_where w = {"schema", 0};
	const char *dot = k->name ? strchr(k->name, '.') : NULL;
	bool numeric = k->type == CFG_INT || k->type == CFG_UINT || k->type == CFG_SIZE ||
		       k->type == CFG_DURATION;
	size_t i;

	if (dot == NULL || strlen(k->name) >= SLUICE_CFG_KEY_MAX ||
	    !cfg_is_ident(k->name, (size_t)(dot - k->name)) ||
	    !cfg_is_ident(dot + 1, strlen(dot + 1))) {
		cfg_fail(err, &w,
			 "key #%zu: name '%s' is not section.key in [a-z0-9_], under %d bytes", idx,
			 k->name ? k->name : "(null)", SLUICE_CFG_KEY_MAX);
		return -SLUICE_ECONFIG;
	}
	for (i = 0; i < idx; i++) {
		if (strcmp(s->keys[i].name, k->name) == 0) {
			cfg_fail(err, &w, "key '%s' is listed twice", k->name);
			return -SLUICE_ECONFIG;
		}
	}
	if ((unsigned)k->type > CFG_ENUM) {
		cfg_fail(err, &w, "key '%s': unknown type %d", k->name, (int)k->type);
		return -SLUICE_ECONFIG;
	}
	if (k->doc == NULL || (k->def == NULL && k->type != CFG_STRING)) {
		cfg_fail(err, &w, "key '%s': missing %s", k->name, k->doc ? "default" : "doc");
		return -SLUICE_ECONFIG;
	}
	if ((!numeric && (k->min != 0 || k->max != 0)) || k->min > k->max ||
	    (numeric && k->type != CFG_INT && k->min < 0)) {
		cfg_fail(err, &w, "key '%s': bad range [%" PRId64 ", %" PRId64 "] for a %s",
			 k->name, k->min, k->max, cfg_type_names[k->type]);
		return -SLUICE_ECONFIG;
	}
	if ((k->type == CFG_ENUM) != (k->enum_names != NULL) ||
	    (k->enum_names != NULL && k->enum_names[0] == NULL)) {
		cfg_fail(err, &w, "key '%s': enum_names must be a non-empty list for enums only",
			 k->name);
		return -SLUICE_ECONFIG;
	}
	if (k->def != NULL && strlen(k->def) > SLUICE_CFG_LINE_MAX) {
		cfg_fail(err, &w, "key '%s': default longer than %d bytes", k->name,
			 SLUICE_CFG_LINE_MAX);
		return -SLUICE_ECONFIG;
	}
	return 0;
}

/* Check every key and that every default parses and is in range. Writes nothing. */
static int cfg_schema_check(const struct cfg_schema *s, struct cfg_err *err)
{
	struct cfg_where w = {"schema default", 0};
	char buf[SLUICE_CFG_LINE_MAX + 1];
	union cfg_val v;
	size_t i;
	int rc;

	ASSERT(s != NULL);
	ASSERT(s->keys != NULL || s->nkeys == 0);
	for (i = 0; i < s->nkeys; i++) {
		const struct cfg_key *k = &s->keys[i];

		rc = cfg_check_key(s, i, err);
		if (rc == 0 && k->def != NULL)
			rc = cfg_check_chars(k->def, strlen(k->def), &w, err);
		if (rc == 0)
			rc = cfg_decode(k->def ? k->def : "", buf, k, &w, err);
		if (rc == 0)
			rc = cfg_parse_value(k, buf, &v, &w, err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * out is treated as uninitialized: every field is overwritten and nothing is freed. On a
 * schema error out is untouched; on -ENOMEM its string fields are all NULL.
 */
int cfg_defaults(const struct cfg_schema *s, void *out, struct cfg_err *err)
{
	struct cfg_where w = {"schema default", 0};
	size_t i;
	int rc;

	ASSERT(out != NULL);
	rc = cfg_schema_check(s, err);
	if (rc != 0)
		return rc;
	for (i = 0; i < s->nkeys; i++) {
		if (s->keys[i].type == CFG_STRING)
			*(char **)(void *)((char *)out + s->keys[i].offset) = NULL;
	}
	for (i = 0; i < s->nkeys; i++) {
		const struct cfg_key *k = &s->keys[i];

		rc = cfg_assign(k, k->def ? k->def : "", out, &w, err);
		if (rc != 0) {
			ASSERT(rc == -ENOMEM); /* the schema check parsed every default */
			cfg_free(s, out);
			return rc;
		}
	}
	return 0;
}

void cfg_free(const struct cfg_schema *s, void *out)
{
	size_t i;

	if (s == NULL || out == NULL)
		return;
	for (i = 0; i < s->nkeys; i++) {
		if (s->keys[i].type == CFG_STRING) {
			char **sp = (char **)(void *)((char *)out + s->keys[i].offset);

			free(*sp);
			*sp = NULL;
		}
	}
}

/* ---- files and overrides ----------------------------------------------------------- */

static int cfg_load_section(struct cfg_load *ld, const char *p, struct cfg_err *err)
{
	char ex[CFG_EXCERPT_MAX + 4], hint[SLUICE_CFG_KEY_MAX + 32];
	const char *close = strchr(p, ']');
	const char *name, *end;
	size_t len;

	if (close == NULL) {
		cfg_fail(err, &ld->w, "missing ']' in section header '%s'",
			 cfg_excerpt(ex, p, strlen(p)));
		return -SLUICE_ECONFIG;
	}
	if (!cfg_at_end(cfg_skip_ws(close + 1))) {
		cfg_fail(err, &ld->w, "unexpected text '%s' after section header",
			 cfg_excerpt(ex, cfg_skip_ws(close + 1), strlen(cfg_skip_ws(close + 1))));
		return -SLUICE_ECONFIG;
	}
	name = cfg_skip_ws(p + 1);
	for (end = close; end > name && cfg_is_ws(end[-1]); end--)
		;
	len = (size_t)(end - name);
	if (!cfg_is_ident(name, len)) {
		cfg_fail(err, &ld->w, "invalid section name '[%s]' (allowed: a-z, 0-9, _)",
			 cfg_excerpt(ex, name, len));
		return -SLUICE_ECONFIG;
	}
	if (!cfg_section_exists(ld->s, name, len)) {
		cfg_fail(err, &ld->w, "unknown section '[%s]'%s", cfg_excerpt(ex, name, len),
			 cfg_suggest(ld->s, true, name, len, hint, sizeof(hint)));
		return -SLUICE_ECONFIG;
	}
	ASSERT(len < sizeof(ld->section)); /* schema names are shorter */
	memcpy(ld->section, name, len);
	ld->section[len] = '\0';
	return 0;
}

static int cfg_load_assignment(struct cfg_load *ld, const char *p, struct cfg_err *err)
{
	char ex[CFG_EXCERPT_MAX + 4], hint[SLUICE_CFG_KEY_MAX + 32];
	char full[2 * SLUICE_CFG_KEY_MAX + 2];
	const struct cfg_key *k = NULL;
	size_t klen = 0, idx;
	const char *q;
	int n, rc;

	while (p[klen] != '\0' && p[klen] != '=' && !cfg_is_ws(p[klen]))
		klen++;
	q = cfg_skip_ws(p + klen);
	if (klen == 0) {
		cfg_fail(err, &ld->w, "missing key name before '='");
		return -SLUICE_ECONFIG;
	}
	if (*q != '=') {
		cfg_fail(err, &ld->w, "missing '=' after key '%s'", cfg_excerpt(ex, p, klen));
		return -SLUICE_ECONFIG;
	}
	if (!cfg_is_ident(p, klen)) {
		cfg_fail(err, &ld->w, "invalid key name '%s' (allowed: a-z, 0-9, _)",
			 cfg_excerpt(ex, p, klen));
		return -SLUICE_ECONFIG;
	}
	if (ld->section[0] == '\0') {
		cfg_fail(err, &ld->w, "key '%s' outside any [section]", cfg_excerpt(ex, p, klen));
		return -SLUICE_ECONFIG;
	}
	n = snprintf(full, sizeof(full), "%s.%.*s", ld->section, (int)klen, p);
	if (n > 0 && (size_t)n < sizeof(full))
		k = cfg_key_find(ld->s, full, (size_t)n);
	if (k == NULL) {
		snprintf(full, sizeof(full), "%s.%s", ld->section, cfg_excerpt(ex, p, klen));
		cfg_fail(err, &ld->w, "unknown key '%s'%s", full,
			 cfg_suggest(ld->s, false, full, strlen(full), hint, sizeof(hint)));
		return -SLUICE_ECONFIG;
	}
	idx = (size_t)(k - ld->s->keys);
	if (ld->first_line[idx] != 0) {
		cfg_fail(err, &ld->w, "duplicate key '%s' (first set on line %u)", k->name,
			 ld->first_line[idx]);
		return -SLUICE_ECONFIG;
	}
	rc = cfg_assign(k, q + 1, ld->out, &ld->w, err);
	if (rc == 0)
		ld->first_line[idx] = ld->w.line;
	return rc;
}

static int cfg_load_line(struct cfg_load *ld, const char *line, struct cfg_err *err)
{
	const char *p = cfg_skip_ws(line);

	if (cfg_at_end(p))
		return 0;
	if (*p == '[')
		return cfg_load_section(ld, p, err);
	return cfg_load_assignment(ld, p, err);
}

int cfg_load_string(const struct cfg_schema *s, const char *name, const char *text, size_t len,
		    void *out, struct cfg_err *err)
{
	struct cfg_load ld = {.s = s, .out = out, .w = {name ? name : "(string)", 0}};
	char line[SLUICE_CFG_LINE_MAX + 1];
	size_t pos = 0;
	int rc = 0;

	ASSERT(s != NULL && out != NULL && (text != NULL || len == 0));
	if (len > SLUICE_CFG_FILE_MAX_BYTES) {
		cfg_fail(err, &ld.w, "file is %zu bytes, over the limit of %u bytes", len,
			 SLUICE_CFG_FILE_MAX_BYTES);
		return -SLUICE_ECONFIG;
	}
	ld.first_line = calloc(s->nkeys ? s->nkeys : 1, sizeof(*ld.first_line));
	if (ld.first_line == NULL)
		return cfg_nomem(err, &ld.w);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3; /* UTF-8 byte-order mark written by some editors */
	while (rc == 0 && pos < len) {
		const char *start = text + pos;
		size_t left = len - pos;
		/* never look further than the longest acceptable line, "\r\n" included */
		size_t window = left < SLUICE_CFG_LINE_MAX + 2 ? left : SLUICE_CFG_LINE_MAX + 2;
		const char *nl = memchr(start, '\n', window);
		size_t n = nl ? (size_t)(nl - start) : window;

		ld.w.line++;
		pos += n + (nl != NULL);
		if (n > 0 && start[n - 1] == '\r')
			n--;
		if (n > SLUICE_CFG_LINE_MAX) {
			cfg_fail(err, &ld.w, "line longer than %d bytes", SLUICE_CFG_LINE_MAX);
			rc = -SLUICE_ECONFIG;
			break;
		}
		rc = cfg_check_chars(start, n, &ld.w, err);
		if (rc != 0)
			break;
		memcpy(line, start, n);
		line[n] = '\0';
		rc = cfg_load_line(&ld, line, err);
	}
	free(ld.first_line);
	return rc;
}

int cfg_load_file(const struct cfg_schema *s, const char *path, void *out, struct cfg_err *err)
{
	struct cfg_where w = {path, 0};
	size_t cap = SLUICE_CFG_FILE_MAX_BYTES + 1, len = 0;
	char *buf;
	int fd, rc = 0;

	ASSERT(path != NULL);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cfg_fail(err, &w, "cannot open: %s", strerror(errno));
		return -SLUICE_ECONFIG;
	}
	/* Read one byte past the limit so an oversized file is told apart from a full one. */
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return cfg_nomem(err, &w);
	}
	while (len < cap) {
		ssize_t got = read(fd, buf + len, cap - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			cfg_fail(err, &w, "cannot read: %s", strerror(errno));
			rc = -SLUICE_ECONFIG;
			break;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (rc == 0 && len > SLUICE_CFG_FILE_MAX_BYTES) {
		cfg_fail(err, &w, "file is over the limit of %u bytes", SLUICE_CFG_FILE_MAX_BYTES);
		rc = -SLUICE_ECONFIG;
	}
	if (rc == 0)
		rc = cfg_load_string(s, path, buf, len, out, err);
	free(buf);
	return rc;
}

int cfg_set(const struct cfg_schema *s, const char *assignment, void *out, struct cfg_err *err)
{
	struct cfg_where w = {"--set", 0};
	char ex[CFG_EXCERPT_MAX + 4], hint[SLUICE_CFG_KEY_MAX + 32];
	char line[SLUICE_CFG_LINE_MAX + 1];
	const struct cfg_key *k;
	size_t n, klen = 0;
	const char *p, *q;
	int rc;

	ASSERT(s != NULL && assignment != NULL && out != NULL);
	n = strnlen(assignment, SLUICE_CFG_LINE_MAX + 1);
	if (n > SLUICE_CFG_LINE_MAX) {
		cfg_fail(err, &w, "assignment longer than %d bytes", SLUICE_CFG_LINE_MAX);
		return -SLUICE_ECONFIG;
	}
	rc = cfg_check_chars(assignment, n, &w, err);
	if (rc != 0)
		return rc;
	memcpy(line, assignment, n + 1);
	p = cfg_skip_ws(line);
	while (p[klen] != '\0' && p[klen] != '=' && !cfg_is_ws(p[klen]))
		klen++;
	q = cfg_skip_ws(p + klen);
	if (klen == 0 || *q != '=') {
		cfg_fail(err, &w, "%s in '%s' (expected section.key=value)",
			 klen ? "missing '='" : "missing key name", cfg_excerpt(ex, p, strlen(p)));
		return -SLUICE_ECONFIG;
	}
	k = cfg_key_find(s, p, klen);
	if (k == NULL) {
		cfg_fail(err, &w, "unknown key '%s'%s", cfg_excerpt(ex, p, klen),
			 cfg_suggest(s, false, p, klen, hint, sizeof(hint)));
		return -SLUICE_ECONFIG;
	}
	return cfg_assign(k, q + 1, out, &w, err);
}

/* ---- printing ---------------------------------------------------------------------- */

/* Visit sections in order of first appearance; fn prints one section's keys. */
static void cfg_for_each_section(const struct cfg_schema *s, FILE *f, const void *cfg,
				 void (*fn)(const struct cfg_schema *s, size_t first, FILE *f,
					    const void *cfg))
{
	size_t i, j;

	for (i = 0; i < s->nkeys; i++) {
		size_t len = cfg_section_len(s->keys[i].name);
		bool seen = false;

		for (j = 0; j < i && !seen; j++)
			seen = cfg_section_len(s->keys[j].name) == len &&
			       strncmp(s->keys[j].name, s->keys[i].name, len) == 0;
		if (!seen)
			fn(s, i, f, cfg);
	}
}

static bool cfg_same_section(const char *a, const char *b)
{
	size_t len = cfg_section_len(a);

	return cfg_section_len(b) == len && strncmp(a, b, len) == 0;
}

static void cfg_help_section(const struct cfg_schema *s, size_t first, FILE *f, const void *cfg)
{
	const char *sec = s->keys[first].name;
	char range[80];
	size_t i;
	int j;

	(void)cfg;
	fprintf(f, "\n[%.*s]\n", (int)cfg_section_len(sec), sec);
	for (i = first; i < s->nkeys; i++) {
		const struct cfg_key *k = &s->keys[i];

		if (!cfg_same_section(sec, k->name))
			continue;
		fprintf(f, "  %s (%s", k->name, cfg_type_names[k->type]);
		for (j = 0; k->type == CFG_ENUM && k->enum_names[j] != NULL; j++)
			fprintf(f, "%s%s", j ? "|" : ": ", k->enum_names[j]);
		if (k->type == CFG_STRING && (k->def == NULL || k->def[0] == '\0'))
			fprintf(f, ", default \"\"");
		else
			fprintf(f, ", default %s", k->def);
		if (cfg_bounded(k))
			fprintf(f, ", range %s", cfg_fmt_range(range, sizeof(range), k));
		fprintf(f, ")\n      %s\n", k->doc);
	}
}

void cfg_print_help(const struct cfg_schema *s, FILE *f)
{
	const char *prog = s->program ? s->program : "daemon";

	ASSERT(f != NULL);
	fprintf(f,
		"Usage: %s [--config FILE] [--set section.key=value]... [--print-config] [--help]\n"
		"\n"
		"  --config FILE            load the configuration file FILE\n"
		"  --set section.key=value  override one key; repeatable, applied in order after\n"
		"                           the file, value written as in the file\n"
		"  --print-config           print the effective configuration and exit\n"
		"  --help                   print this help and exit\n"
		"\n"
		"Configuration keys ([section] headers, then key = value lines; sizes take\n"
		"K/M/G/T suffixes, durations ms/s/m/h with bare numbers in ms):\n",
		prog);
	cfg_for_each_section(s, f, NULL, cfg_help_section);
}

static void cfg_print_string(FILE *f, const char *str)
{
	fputc('"', f);
	for (; str != NULL && *str != '\0'; str++) {
		unsigned char c = (unsigned char)*str;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fputc('?', f); /* no escape for it; the parser never produces one */
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void cfg_print_section(const struct cfg_schema *s, size_t first, FILE *f, const void *cfg)
{
	const char *sec = s->keys[first].name;
	size_t i, seclen = cfg_section_len(sec);
	char buf[32];

	fprintf(f, "\n[%.*s]\n", (int)seclen, sec);
	for (i = first; i < s->nkeys; i++) {
		const struct cfg_key *k = &s->keys[i];
		const char *field = (const char *)cfg + k->offset;
		int e;

		if (!cfg_same_section(sec, k->name))
			continue;
		fprintf(f, "%s = ", k->name + seclen + 1);
		switch (k->type) {
		case CFG_BOOL:
			fputs(*(const bool *)(const void *)field ? "true" : "false", f);
			break;
		case CFG_INT:
			fprintf(f, "%" PRId64, *(const int64_t *)(const void *)field);
			break;
		case CFG_UINT:
		case CFG_SIZE:
		case CFG_DURATION:
			fputs(cfg_fmt_unsigned(buf, sizeof(buf), k->type,
					       *(const uint64_t *)(const void *)field),
			      f);
			break;
		case CFG_STRING:
			cfg_print_string(f, *(char *const *)(const void *)field);
			break;
		case CFG_ENUM:
			e = *(const int *)(const void *)field;
			ASSERT(e >= 0); /* the index was set by our parser or by the daemon */
			for (int j = 0; j <= e; j++)
				ASSERT(k->enum_names[j] != NULL);
			fputs(k->enum_names[e], f);
			break;
		}
		fputc('\n', f);
	}
}

void cfg_print(const struct cfg_schema *s, const void *cfg, FILE *f)
{
	ASSERT(s != NULL && cfg != NULL && f != NULL);
	fprintf(f, "# effective configuration of %s\n", s->program ? s->program : "daemon");
	cfg_for_each_section(s, f, cfg, cfg_print_section);
}

/* ---- command line ------------------------------------------------------------------ */

enum cfg_arg { CFG_ARG_CONFIG, CFG_ARG_SET, CFG_ARG_HELP, CFG_ARG_PRINT };

/*
 * Classify argv[*i] (consuming a separate value argument too) into *kind and *val.
 * Shared by both passes of cfg_parse_args so they can never disagree.
 */
static int cfg_next_arg(int argc, char **argv, int *i, enum cfg_arg *kind, const char **val,
			struct cfg_err *err)
{
	static const struct {
		const char *name;
		enum cfg_arg kind;
		bool takes_value;
	} opts[] = {
		{"--config", CFG_ARG_CONFIG, true},
		{"--set", CFG_ARG_SET, true},
		{"--help", CFG_ARG_HELP, false},
		{"--print-config", CFG_ARG_PRINT, false},
	};
	struct cfg_where w = {"command line", 0};
	char ex[CFG_EXCERPT_MAX + 4];
	const char *a = argv[*i];
	size_t j;

	ASSERT(a != NULL);
	for (j = 0; j < SLUICE_ARRAY_SIZE(opts); j++) {
		size_t n = strlen(opts[j].name);

		if (strncmp(a, opts[j].name, n) != 0 || (a[n] != '\0' && a[n] != '='))
			continue;
		*kind = opts[j].kind;
		*val = NULL;
		if (!opts[j].takes_value && a[n] == '=')
			break; /* "--help=x" */
		if (opts[j].takes_value && a[n] == '=') {
			*val = a + n + 1;
		} else if (opts[j].takes_value) {
			if (*i + 1 >= argc) {
				cfg_fail(err, &w, "%s needs an argument", opts[j].name);
				return -SLUICE_ECONFIG;
			}
			*val = argv[++*i];
		}
		return 0;
	}
	cfg_fail(err, &w, "unknown argument '%s'", cfg_excerpt(ex, a, strlen(a)));
	return -SLUICE_ECONFIG;
}

int cfg_parse_args(const struct cfg_schema *s, int argc, char **argv, void *out,
		   struct cfg_err *err)
{
	struct cfg_where w = {"command line", 0};
	const char *config = NULL, *val;
	bool help = false, print = false;
	enum cfg_arg kind;
	int i, rc;

	rc = cfg_defaults(s, out, err);
	if (rc != 0)
		return rc;
	/* Pass 1: syntax, and the options whose position does not matter. */
	for (i = 1; i < argc; i++) {
		rc = cfg_next_arg(argc, argv, &i, &kind, &val, err);
		if (rc != 0)
			return rc;
		if (kind == CFG_ARG_CONFIG && config != NULL) {
			cfg_fail(err, &w, "--config given more than once");
			return -SLUICE_ECONFIG;
		}
		if (kind == CFG_ARG_CONFIG && val[0] == '\0') {
			cfg_fail(err, &w, "--config needs a FILE argument");
			return -SLUICE_ECONFIG;
		}
		if (kind == CFG_ARG_CONFIG)
			config = val;
		help |= kind == CFG_ARG_HELP;
		print |= kind == CFG_ARG_PRINT;
	}
	if (help) {
		cfg_print_help(s, stdout);
		return 1;
	}
	if (config != NULL) {
		rc = cfg_load_file(s, config, out, err);
		if (rc != 0)
			return rc;
	}
	/* Pass 2: overrides, in the order given, on top of the file. */
	for (i = 1; i < argc; i++) {
		rc = cfg_next_arg(argc, argv, &i, &kind, &val, err);
		ASSERT(rc == 0); /* pass 1 accepted the same arguments */
		if (kind == CFG_ARG_SET) {
			rc = cfg_set(s, val, out, err);
			if (rc != 0)
				return rc;
		}
	}
	if (print) {
		cfg_print(s, out, stdout);
		return 1;
	}
	return 0;
}
