/*
 * fuzz_cfg.c - randomized robustness test of the config parser (common/cfg.c).
 *
 *     fuzz_cfg [seed] [iterations]        (defaults: 0x5eed, 100000)
 *
 * A standalone program, no libFuzzer: from one seed it generates config texts three ways
 * (random bytes biased towards the grammar's special characters; line-by-line texts built
 * from the grammar with every value type, valid and not; mutations of valid texts) and
 * feeds each to cfg_load_string with a schema covering every type, plus one generated
 * --set assignment to cfg_set. For every input it checks:
 *
 *   - no crash (run under ASan/UBSan to catch memory errors);
 *   - the result is 0 or -SLUICE_ECONFIG; an error has a non-empty, NUL-terminated, single
 *     line message starting "fuzz.conf:<line>: " with a line that exists in the text, and
 *     --set errors start "--set: ";
 *   - texts generated to be well-formed are accepted, and accepted values respect the
 *     schema (ranges, enum indexes, strings present);
 *   - an accepted config printed with cfg_print loads back to an identical struct;
 *   - cfg_free releases everything (ASan's leak check at exit).
 *
 * The same seed always gives the same inputs; a failure prints the seed, the iteration
 * and the input. At the end it prints how often each kind of error was seen and, for runs
 * of 10000 iterations or more, fails if some kind never came up (the generator has lost
 * reach). Single-threaded. Exit 0 pass, 1 fail.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/limits.h"

#define FUZZ_DEFAULT_SEED  0x5eedu
#define FUZZ_DEFAULT_ITERS 100000u
#define FUZZ_TEXT_MAX	   (3 * SLUICE_CFG_LINE_MAX) /* room for one overlong line */
#define FUZZ_FAILURES_MAX  10

struct fcfg {
	char *listen;
	uint64_t port;
	uint64_t idle_ms;
	uint64_t buf_bytes;
	char *name;
	bool verbose;
	int64_t offset;
	int64_t delta;
	uint64_t mask;
	int level;
	uint64_t max_bytes;
	uint64_t flush_ms;
	char *path;
};

static const char *const levels[] = {"err", "warn", "info", "debug", NULL};

#define OFF(f) offsetof(struct fcfg, f)
static const struct cfg_key keys[] = {
	{"net.listen", CFG_STRING, OFF(listen), "tcp://0.0.0.0:7000", 0, 0, NULL, "address"},
	{"net.port", CFG_UINT, OFF(port), "7000", 1, 65535, NULL, "port"},
	{"net.idle_timeout", CFG_DURATION, OFF(idle_ms), "60s", 1, 3600000, NULL, "idle"},
	{"net.buf_size", CFG_SIZE, OFF(buf_bytes), "64K", 4096, 64 * 1024 * 1024, NULL, "buf"},
	{"node.name", CFG_STRING, OFF(name), NULL, 0, 0, NULL, "name"},
	{"node.verbose", CFG_BOOL, OFF(verbose), "false", 0, 0, NULL, "verbose"},
	{"node.offset", CFG_INT, OFF(offset), "-5", 0, 0, NULL, "unbounded int"},
	{"node.delta", CFG_INT, OFF(delta), "0", -10, 10, NULL, "bounded int"},
	{"node.mask", CFG_UINT, OFF(mask), "0xff", 0, 0, NULL, "unbounded uint"},
	{"log.level", CFG_ENUM, OFF(level), "warn", 0, 0, levels, "level"},
	{"log.max_size", CFG_SIZE, OFF(max_bytes), "1G", 0, 0, NULL, "unbounded size"},
	{"log.flush", CFG_DURATION, OFF(flush_ms), "250ms", 0, 0, NULL, "unbounded duration"},
	{"log.path", CFG_STRING, OFF(path), "\"/var/log/x # y\"", 0, 0, NULL, "quoted default"},
};
static const struct cfg_schema schema = {"fuzz_cfg", keys, SLUICE_ARRAY_SIZE(keys)};

/* Error kinds the generator must reach; counted by substring of the message. */
static const char *const kinds[] = {
	"unknown key",	    "unknown section", "duplicate key",	    "out of range",
	"unterminated",	    "unknown escape",  "after the closing", "control character",
	"NUL byte",	    "line longer",     "missing '='",	    "missing ']'",
	"missing key name", "outside any",     "invalid key name",  "invalid section name",
	"does not fit",	    "suffix",	       "negative value",    "expected a boolean",
	"expected an",	    "unknown value",   "after section",
};
static unsigned long kind_hits[SLUICE_ARRAY_SIZE(kinds)];

/* ---- deterministic randomness (splitmix64) ------------------------------------------ */

static uint64_t rng_state;
static bool clean; /* generate only text the parser must accept */

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static bool chance(unsigned pct)
{
	return below(100) < pct;
}

#define PICK(arr) ((arr)[below(SLUICE_ARRAY_SIZE(arr))])

/* ---- text building --------------------------------------------------------------------- */

struct text {
	char buf[FUZZ_TEXT_MAX];
	size_t len;
};

static void put(struct text *t, const char *s, size_t n)
{
	if (n > sizeof(t->buf) - t->len)
		n = sizeof(t->buf) - t->len;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

static void puts_(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void putc_(struct text *t, char c)
{
	put(t, &c, 1);
}

static char special_byte(void)
{
	static const char bytes[] = "[]=\"\\#; \t\n\r.-+0x9azKMGTmsh_";

	switch (below(8)) {
	case 0:
		return (char)below(256);
	case 1:
		return (char)(0x80 + below(128));
	case 2:
		return (char)below(0x20);
	default:
		return bytes[below(sizeof(bytes) - 1)];
	}
}

/*
 * A number the key accepts: a multiplier (suffix) first, then a quotient within the range,
 * biased towards small values so all magnitudes come up.
 */
static void gen_valid_number(struct text *t, const struct cfg_key *k)
{
	static const struct {
		const char *sfx;
		uint64_t mult;
	} sizes[] = {{"", 1},		{"K", 1ull << 10}, {"KiB", 1ull << 10}, {"k", 1ull << 10},
		     {"M", 1ull << 20}, {"G", 1ull << 30}, {"T", 1ull << 40}},
	  durations[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	bool bounded = k->min != 0 || k->max != 0;
	uint64_t lo, hi, mult = 1, q;
	const char *sfx = "";
	char num[48];

	if (k->type == CFG_INT) {
		int64_t a = bounded ? k->min : INT64_MIN, b = bounded ? k->max : INT64_MAX;
		uint64_t span = (uint64_t)b - (uint64_t)a;
		uint64_t off = rnd() >> below(64);

		if (span != UINT64_MAX)
			off %= span + 1;
		snprintf(num, sizeof(num), "%" PRId64, (int64_t)((uint64_t)a + off));
		puts_(t, num);
		return;
	}
	if (k->type == CFG_SIZE) {
		mult = sizes[below(SLUICE_ARRAY_SIZE(sizes))].mult;
		sfx = sizes[below(SLUICE_ARRAY_SIZE(sizes))].sfx;
		for (size_t i = 0; i < SLUICE_ARRAY_SIZE(sizes); i++) {
			if (strcmp(sizes[i].sfx, sfx) == 0)
				mult = sizes[i].mult;
		}
	} else if (k->type == CFG_DURATION) {
		size_t i = below(SLUICE_ARRAY_SIZE(durations));

		mult = durations[i].mult;
		sfx = durations[i].sfx;
	}
	lo = bounded ? ((uint64_t)k->min + mult - 1) / mult : 0;
	hi = bounded ? (uint64_t)k->max / mult : UINT64_MAX / mult;
	if (lo > hi) {
		mult = 1;
		sfx = "";
		lo = (uint64_t)k->min;
		hi = (uint64_t)k->max;
	}
	q = rnd() >> below(64);
	if (hi - lo != UINT64_MAX)
		q %= hi - lo + 1;
	q += lo;
	if (k->type == CFG_UINT && chance(30))
		snprintf(num, sizeof(num), "0x%" PRIx64, q);
	else
		snprintf(num, sizeof(num), "%" PRIu64 "%s", q, sfx);
	puts_(t, num);
}

static void gen_number(struct text *t, enum cfg_type type)
{
	static const char *const specials[] = {
		"0",
		"1",
		"65535",
		"65536",
		"9223372036854775807",
		"9223372036854775808",
		"-9223372036854775808",
		"-9223372036854775809",
		"18446744073709551615",
		"18446744073709551616",
		"99999999999999999999999999",
		"0x",
		"0xffffffffffffffff",
		"0x10000000000000000",
		"0x7fffffffffffffff",
		"0x8000000000000000",
		"16777215",
		"16777216",
		"4096",
		"3600000",
		"1.5",
		"",
		"-",
		"+",
		"-0",
	};
	static const char *const size_sfx[] = {"",    "B", "K",	 "k",	"KiB", "M", "m",
					       "MiB", "G", "g",	 "GiB", "T",   "t", "TiB",
					       "KB",  "X", " K", "Ki",	"kib"};
	static const char *const dur_sfx[] = {"", "ms", "s", "m", "h", " s", "d", "us", "S", "mss"};
	char num[32];

	if (chance(30)) {
		puts_(t, PICK(specials));
	} else {
		if (chance(15))
			putc_(t, chance(50) ? '-' : '+');
		if (chance(20))
			snprintf(num, sizeof(num), "0x%" PRIx64, rnd() >> below(64));
		else
			snprintf(num, sizeof(num), "%" PRIu64, rnd() >> below(64));
		puts_(t, num);
	}
	if (type == CFG_SIZE && chance(70))
		puts_(t, PICK(size_sfx));
	if (type == CFG_DURATION && chance(70))
		puts_(t, PICK(dur_sfx));
	if (chance(3))
		putc_(t, special_byte());
}

static void gen_string(struct text *t)
{
	static const char *const escapes[] = {"\\\"", "\\\\", "\\n", "\\t", "\\q", "\\"};
	size_t i, n = below(20);
	bool quoted = chance(50);

	if (quoted)
		putc_(t, '"');
	for (i = 0; i < n; i++) {
		if (quoted && chance(10))
			puts_(t, escapes[below(clean ? 4 : SLUICE_ARRAY_SIZE(escapes))]);
		else if (clean && quoted && chance(10))
			putc_(t, PICK(((const char[]){'#', ';', ' ', '\t', '[', '=', '\xc3'})));
		else if (!clean && chance(10))
			putc_(t, special_byte());
		else
			putc_(t, (char)('a' + below(26)));
	}
	if (quoted && (clean || chance(90)))
		putc_(t, '"');
}

static void gen_value(struct text *t, const struct cfg_key *k)
{
	static const char *const bools[] = {"true", "false", "yes",  "no",    "on", "off",
					    "1",    "0",     "TRUE", "maybe", "",   "2"};
	enum cfg_type type = chance(85) ? k->type : (enum cfg_type)below(CFG_ENUM + 1);

	if (clean) {
		type = k->type;
		if (type == CFG_BOOL)
			puts_(t, bools[below(9)]);
		else if (type == CFG_ENUM)
			puts_(t, levels[below(4)]);
		else if (type == CFG_STRING)
			gen_string(t);
		else
			gen_valid_number(t, k);
		return;
	}
	switch (type) {
	case CFG_BOOL:
		puts_(t, PICK(bools));
		break;
	case CFG_INT:
	case CFG_UINT:
	case CFG_SIZE:
	case CFG_DURATION:
		gen_number(t, type);
		break;
	case CFG_STRING:
		gen_string(t);
		break;
	case CFG_ENUM:
		puts_(t, chance(80) ? levels[below(4)] : "verbose");
		break;
	}
}

static void gen_ws(struct text *t)
{
	while (chance(25))
		putc_(t, chance(70) ? ' ' : '\t');
}

static void gen_comment(struct text *t)
{
	putc_(t, chance(50) ? '#' : ';');
	while (chance(80))
		putc_(t, clean || chance(95) ? (char)(' ' + below(95)) : special_byte());
}

static void gen_section(struct text *t)
{
	static const char *const names[] = {"net", "node", "log", "nte",  "storage",
					    "",	   "Net",  "a b", "log.x"};

	putc_(t, '[');
	gen_ws(t);
	puts_(t, chance(80) ? PICK(names) : "net");
	gen_ws(t);
	if (chance(95))
		putc_(t, ']');
	gen_ws(t);
	if (chance(10))
		gen_comment(t);
	else if (chance(3))
		puts_(t, "junk");
}

/* One key = value line for k, sometimes with a broken key name or no '='. */
static void gen_assignment(struct text *t, const struct cfg_key *k)
{
	static const char *const bad_keys[] = {"lisen", "Port", "a.b", "", "x y", "port2"};
	const char *dot = strchr(k->name, '.');

	gen_ws(t);
	if (clean || chance(95))
		puts_(t, dot + 1);
	else
		puts_(t, PICK(bad_keys));
	gen_ws(t);
	if (clean || chance(97))
		putc_(t, '=');
	gen_ws(t);
	gen_value(t, k);
	gen_ws(t);
	if (chance(15)) {
		if (clean)
			putc_(t, ' '); /* a bare value swallows a '#' that touches it */
		gen_comment(t);
	}
}

static void gen_eol(struct text *t)
{
	puts_(t, chance(90) ? "\n" : "\r\n");
}

static bool same_section(const struct cfg_key *a, const struct cfg_key *b)
{
	size_t n = (size_t)(strchr(a->name, '.') - a->name);

	return strncmp(a->name, b->name, n + 1) == 0;
}

/*
 * A text written line by line from the grammar: noisy, or (clean) one the parser must
 * accept, each key at most once.
 */
static void gen_structured(struct text *t)
{
	size_t lines = below(25), i;
	const struct cfg_key *k = &keys[below(SLUICE_ARRAY_SIZE(keys))];
	bool used[SLUICE_ARRAY_SIZE(keys)] = {false};

	if (clean || chance(90)) {
		putc_(t, '[');
		put(t, k->name, (size_t)(strchr(k->name, '.') - k->name));
		putc_(t, ']');
		gen_eol(t);
	}
	for (i = 0; i < lines; i++) {
		size_t r = below(100), idx;

		if (r < 10 && !clean) {
			gen_section(t);
		} else if (r < 15) {
			gen_comment(t);
		} else if (r < 18) {
			gen_ws(t);
		} else if (r < 19 && !clean) {
			size_t n = SLUICE_CFG_LINE_MAX - 8 + below(16);

			while (n-- > 0 && t->len < sizeof(t->buf))
				putc_(t, 'a');
		} else {
			/* stay in the current section most of the time so keys resolve */
			const struct cfg_key *next = &keys[idx = below(SLUICE_ARRAY_SIZE(keys))];

			if (clean && used[idx])
				continue;
			used[idx] = true;
			if (same_section(next, k) ? chance(5) : (clean || chance(85))) {
				putc_(t, '[');
				put(t, next->name, (size_t)(strchr(next->name, '.') - next->name));
				putc_(t, ']');
				gen_eol(t);
			}
			k = next;
			gen_assignment(t, k);
		}
		if (i + 1 < lines || chance(80))
			gen_eol(t);
	}
}

static void gen_random_bytes(struct text *t)
{
	size_t n = below(300), i;

	for (i = 0; i < n; i++)
		putc_(t, special_byte());
}

/* A well-formed text with every key, in random order and spelling, then mutated. */
static void gen_mutated(struct text *t)
{
	static const char *const tokens[] = {
		"=",
		"[net]",
		"[log]",
		"\"",
		"\\",
		"0x",
		"K",
		"ms",
		"#",
		";",
		"\n",
		"\r",
		"-",
		" ",
		"\t",
		"]",
		"[",
		"\0",
		"18446744073709551616",
		"port ",
		"9999999999999999999999",
	};
	struct text tmp;
	size_t m = 1 + below(8), i;

	t->len = 0;
	for (i = 0; i < SLUICE_ARRAY_SIZE(keys); i++) {
		const struct cfg_key *k = &keys[i];

		if (chance(30))
			continue;
		putc_(t, '[');
		put(t, k->name, (size_t)(strchr(k->name, '.') - k->name));
		puts_(t, "]\n");
		puts_(t, strchr(k->name, '.') + 1);
		puts_(t, " = ");
		puts_(t, k->def ? k->def : "\"\"");
		putc_(t, '\n');
	}
	for (i = 0; i < m && t->len > 0; i++) {
		size_t pos = below(t->len + 1), n;
		const char *tok;

		switch (below(5)) {
		case 0: /* overwrite a byte */
			if (pos < t->len)
				t->buf[pos] = special_byte();
			break;
		case 1: /* delete a range */
			n = below(t->len - pos + 1);
			memmove(t->buf + pos, t->buf + pos + n, t->len - pos - n);
			t->len -= n;
			break;
		case 2: /* duplicate a range (makes duplicate keys) */
			n = below(t->len - pos + 1);
			memcpy(tmp.buf, t->buf + pos, n);
			tmp.len = n;
			put(t, tmp.buf, tmp.len); /* at the end: a second copy of those keys */
			break;
		default: /* insert a token */
			tok = PICK(tokens);
			n = tok[0] ? strlen(tok) : 1;
			if (t->len + n > sizeof(t->buf))
				break;
			memmove(t->buf + pos + n, t->buf + pos, t->len - pos);
			memcpy(t->buf + pos, tok, n);
			t->len += n;
			break;
		}
	}
}

/* ---- checks ---------------------------------------------------------------------------- */

static uint64_t seed;
static unsigned long iter, failures;

static void report(const char *what, const struct text *t, const char *msg)
{
	size_t i, n = t && t->len < 2048 ? t->len : 2048;

	failures++;
	fprintf(stderr,
		"FAIL seed=%" PRIu64 " iteration=%lu: %s\n  msg: '%s'\n  input (%zu bytes): \"",
		seed, iter, what, msg ? msg : "", t ? t->len : 0);
	for (i = 0; t && i < n; i++) {
		unsigned char c = (unsigned char)t->buf[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "\"\n");
	if (failures >= FUZZ_FAILURES_MAX) {
		fprintf(stderr, "fuzz_cfg: too many failures, stopping\n");
		exit(1);
	}
}

static bool msg_is_clean(const struct cfg_err *e)
{
	size_t n = strnlen(e->msg, sizeof(e->msg)), i;

	if (n == 0 || n == sizeof(e->msg))
		return false;
	for (i = 0; i < n; i++) {
		if ((unsigned char)e->msg[i] < 0x20)
			return false;
	}
	return true;
}

/* "fuzz.conf:<line>: <cause>" with 1 <= line <= lines in t. */
static bool msg_has_location(const struct cfg_err *e, const struct text *t)
{
	static const char prefix[] = "fuzz.conf:";
	unsigned long line, lines = 1;
	char *end;
	size_t i;

	if (strncmp(e->msg, prefix, sizeof(prefix) - 1) != 0)
		return false;
	line = strtoul(e->msg + sizeof(prefix) - 1, &end, 10);
	for (i = 0; i < t->len; i++)
		lines += t->buf[i] == '\n';
	return end != e->msg + sizeof(prefix) - 1 && line >= 1 && line <= lines && end[0] == ':' &&
	       end[1] == ' ' && end[2] != '\0';
}

static void count_kind(const char *msg)
{
	size_t i;

	for (i = 0; i < SLUICE_ARRAY_SIZE(kinds); i++) {
		if (strstr(msg, kinds[i]) != NULL)
			kind_hits[i]++;
	}
}

/* Values the parser stored must satisfy the schema. */
static bool respects_schema(const struct fcfg *c)
{
	size_t i;

	for (i = 0; i < SLUICE_ARRAY_SIZE(keys); i++) {
		const struct cfg_key *k = &keys[i];
		const char *f = (const char *)c + k->offset;
		bool bounded = k->min != 0 || k->max != 0;
		int64_t sv;
		uint64_t uv;
		int e;

		switch (k->type) {
		case CFG_INT:
			memcpy(&sv, f, sizeof(sv));
			if (bounded && (sv < k->min || sv > k->max))
				return false;
			break;
		case CFG_UINT:
		case CFG_SIZE:
		case CFG_DURATION:
			memcpy(&uv, f, sizeof(uv));
			if (bounded && (uv < (uint64_t)k->min || uv > (uint64_t)k->max))
				return false;
			break;
		case CFG_STRING:
			if (*(char *const *)(const void *)f == NULL)
				return false;
			break;
		case CFG_ENUM:
			memcpy(&e, f, sizeof(e));
			if (e < 0 || e > 3)
				return false;
			break;
		case CFG_BOOL:
			break;
		}
	}
	return true;
}

static bool same_config(const struct fcfg *a, const struct fcfg *b)
{
	return strcmp(a->listen, b->listen) == 0 && a->port == b->port &&
	       a->idle_ms == b->idle_ms && a->buf_bytes == b->buf_bytes &&
	       strcmp(a->name, b->name) == 0 && a->verbose == b->verbose &&
	       a->offset == b->offset && a->delta == b->delta && a->mask == b->mask &&
	       a->level == b->level && a->max_bytes == b->max_bytes && a->flush_ms == b->flush_ms &&
	       strcmp(a->path, b->path) == 0;
}

/* cfg_print output of an accepted config must load back to the same values. */
static void check_roundtrip(const struct fcfg *a, const struct text *t)
{
	struct cfg_err e = {""};
	struct fcfg b;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL) {
		report("open_memstream failed", t, NULL);
		return;
	}
	cfg_print(&schema, a, f);
	fclose(f);
	if (cfg_defaults(&schema, &b, &e) != 0) {
		report("defaults failed", t, e.msg);
	} else {
		if (cfg_load_string(&schema, "printed", out, len, &b, &e) != 0)
			report("printed config does not load", t, e.msg);
		else if (!same_config(a, &b))
			report("printed config loads to different values", t, out);
		cfg_free(&schema, &b);
	}
	free(out);
}

static void check_set(void)
{
	const struct cfg_key *k = &keys[below(SLUICE_ARRAY_SIZE(keys))];
	struct cfg_err e = {""};
	struct text t = {.len = 0};
	struct fcfg c;
	int rc;

	if (chance(90))
		puts_(&t, k->name);
	else
		puts_(&t, PICK(((const char *const[]){"net.lisen", "port", "", "a.b.c"})));
	if (chance(95))
		putc_(&t, '=');
	gen_value(&t, k);
	if (t.len >= sizeof(t.buf))
		t.len = sizeof(t.buf) - 1;
	t.buf[t.len] = '\0';
	if (cfg_defaults(&schema, &c, &e) != 0) {
		report("defaults failed", &t, e.msg);
		return;
	}
	rc = cfg_set(&schema, t.buf, &c, &e);
	if (rc != 0 && rc != -SLUICE_ECONFIG)
		report("cfg_set returned an unexpected code", &t, e.msg);
	if (rc != 0 && (!msg_is_clean(&e) || strncmp(e.msg, "--set: ", 7) != 0 || e.msg[7] == 0))
		report("cfg_set error message malformed", &t, e.msg);
	if (!respects_schema(&c))
		report("cfg_set broke the schema", &t, NULL);
	cfg_free(&schema, &c);
}

static void check_one(const struct text *t, unsigned long *accepted)
{
	struct cfg_err e;
	struct fcfg c;
	int rc;

	if (cfg_defaults(&schema, &c, &e) != 0) {
		report("defaults failed", t, e.msg);
		return;
	}
	memset(e.msg, 0, sizeof(e.msg));
	rc = cfg_load_string(&schema, "fuzz.conf", t->buf, t->len, &c, &e);
	if (rc == 0) {
		++*accepted;
		if (!respects_schema(&c))
			report("accepted values break the schema", t, NULL);
		else
			check_roundtrip(&c, t);
	} else if (clean) {
		report("well-formed input rejected", t, e.msg);
	} else if (rc != -SLUICE_ECONFIG) {
		report("unexpected return code", t, e.msg);
	} else if (!msg_is_clean(&e) || !msg_has_location(&e, t)) {
		report("error message malformed or without a valid file:line", t, e.msg);
	} else {
		count_kind(e.msg);
		if (!respects_schema(&c))
			report("partial load broke the schema", t, NULL);
	}
	cfg_free(&schema, &c);
}

int main(int argc, char **argv)
{
	static struct text t;
	unsigned long iters = FUZZ_DEFAULT_ITERS, accepted = 0;
	bool reach_ok = true;
	size_t i;

	seed = argc > 1 ? strtoull(argv[1], NULL, 0) : FUZZ_DEFAULT_SEED;
	if (argc > 2)
		iters = strtoul(argv[2], NULL, 0);
	rng_state = seed;
	for (iter = 0; iter < iters; iter++) {
		size_t r = below(10);

		t.len = 0;
		clean = r >= 2 && r < 5;
		if (r < 2)
			gen_random_bytes(&t);
		else if (r < 7)
			gen_structured(&t);
		else
			gen_mutated(&t);
		check_one(&t, &accepted);
		clean = chance(50);
		check_set();
	}
	printf("fuzz_cfg: seed %" PRIu64 ", %lu inputs, %lu accepted, %lu rejected\n", seed, iters,
	       accepted, iters - accepted);
	for (i = 0; i < SLUICE_ARRAY_SIZE(kinds); i++) {
		printf("  %-22s %lu\n", kinds[i], kind_hits[i]);
		if (iters >= 10000 && kind_hits[i] == 0) {
			fprintf(stderr, "fuzz_cfg: never produced a '%s' error\n", kinds[i]);
			reach_ok = false;
		}
	}
	if (iters >= 10000 && accepted < iters / 20) {
		fprintf(stderr, "fuzz_cfg: only %lu inputs accepted\n", accepted);
		reach_ok = false;
	}
	if (failures != 0 || !reach_ok) {
		fprintf(stderr, "fuzz_cfg: FAILED (%lu failures)\n", failures);
		return 1;
	}
	return 0;
}
