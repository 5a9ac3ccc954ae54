/*
 * test_cfg.c - unit tests for common/cfg.c, the schema-driven configuration.
 *
 * One schema with every type drives all cases: defaults, each type accepted and rejected,
 * ranges, the file grammar (sections, comments, quoting, line and file limits, control
 * characters), the exact error messages, --set overrides, cfg_parse_args ordering,
 * cfg_print output loading back to the same struct, --help content and schema checks.
 * Files go to a private mkdtemp directory removed at the end. Run under ASan, the
 * cfg_free calls prove every string is released. Single-threaded.
 *
 * Exit 0 pass, 1 fail.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cfg.h"
#include "common/err.h"
#include "common/limits.h"

static int failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                              \
		}                                                                                \
	} while (0)

struct tcfg {
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
};

static const char *const levels[] = {"err", "warn", "info", "debug", NULL};

#define OFF(f) offsetof(struct tcfg, f)
static const struct cfg_key keys[] = {
	{"net.listen", CFG_STRING, OFF(listen), "tcp://0.0.0.0:7000", 0, 0, NULL,
	 "address to listen on"},
	{"net.port", CFG_UINT, OFF(port), "7000", 1, 65535, NULL, "TCP port"},
	{"net.idle_timeout", CFG_DURATION, OFF(idle_ms), "60s", 1, 3600000, NULL,
	 "close idle connections after this long"},
	{"net.buf_size", CFG_SIZE, OFF(buf_bytes), "64K", 4096, 64 * 1024 * 1024, NULL,
	 "receive buffer size"},
	{"node.name", CFG_STRING, OFF(name), NULL, 0, 0, NULL, "node name"},
	{"node.verbose", CFG_BOOL, OFF(verbose), "false", 0, 0, NULL, "chatty logs"},
	{"node.offset", CFG_INT, OFF(offset), "-5", 0, 0, NULL, "unbounded signed"},
	{"node.delta", CFG_INT, OFF(delta), "0", -10, 10, NULL, "bounded signed"},
	{"node.mask", CFG_UINT, OFF(mask), "0xff", 0, 0, NULL, "unbounded unsigned"},
	{"log.level", CFG_ENUM, OFF(level), "warn", 0, 0, levels, "log threshold"},
	{"log.max_size", CFG_SIZE, OFF(max_bytes), "1G", 0, 0, NULL, "rotate after"},
	{"log.flush", CFG_DURATION, OFF(flush_ms), "250ms", 0, 0, NULL, "flush interval"},
};
static const struct cfg_schema schema = {"test-daemon", keys, SLUICE_ARRAY_SIZE(keys)};

static char tmpdir[] = "/tmp/sluice-test-cfg-XXXXXX";

/* Load text (on top of defaults) into *c; returns the load's rc. */
static int load(struct tcfg *c, const char *text, struct cfg_err *err)
{
	int rc = cfg_defaults(&schema, c, err);

	if (rc != 0)
		return rc;
	return cfg_load_string(&schema, "t.conf", text, strlen(text), c, err);
}

/* Expect text to load fine; the caller checks fields and frees. */
#define LOAD_OK(c, text)                                                                         \
	do {                                                                                     \
		struct cfg_err e_ = {""};                                                        \
		int rc_ = load((c), (text), &e_);                                                \
		if (rc_ != 0)                                                                    \
			fprintf(stderr, "%s:%d: load failed: %s\n", __FILE__, __LINE__, e_.msg); \
		CHECK(rc_ == 0);                                                                 \
	} while (0)

/* Expect text to fail with exactly msg (or, if prefix, a message starting with msg). */
static void expect_err_at(int line, const char *text, const char *msg, bool prefix)
{
	struct tcfg c;
	struct cfg_err e = {""};
	int rc = load(&c, text, &e);
	bool ok = rc == -SLUICE_ECONFIG &&
		  (prefix ? strncmp(e.msg, msg, strlen(msg)) == 0 : strcmp(e.msg, msg) == 0);

	if (!ok) {
		fprintf(stderr, "%s:%d: for %s\n  expected %s'%s'\n  got rc %d '%s'\n", __FILE__,
			line, text, prefix ? "prefix " : "", msg, rc, e.msg);
		failures++;
	}
	cfg_free(&schema, &c);
}
#define EXPECT_ERR(text, msg)	 expect_err_at(__LINE__, (text), (msg), false)
#define EXPECT_PREFIX(text, msg) expect_err_at(__LINE__, (text), (msg), true)

static void test_defaults(void)
{
	struct tcfg c;
	struct cfg_err e = {""};

	memset(&c, 0xa5, sizeof(c)); /* defaults must not read or free what is there */
	CHECK(cfg_defaults(&schema, &c, &e) == 0);
	CHECK(strcmp(c.listen, "tcp://0.0.0.0:7000") == 0);
	CHECK(c.port == 7000);
	CHECK(c.idle_ms == 60000);
	CHECK(c.buf_bytes == 65536);
	CHECK(c.name != NULL && c.name[0] == '\0');
	CHECK(!c.verbose);
	CHECK(c.offset == -5);
	CHECK(c.delta == 0);
	CHECK(c.mask == 0xff);
	CHECK(c.level == 1);
	CHECK(c.max_bytes == 1ull << 30);
	CHECK(c.flush_ms == 250);
	cfg_free(&schema, &c);
	CHECK(c.listen == NULL && c.name == NULL);
	cfg_free(&schema, &c); /* twice is harmless */
	cfg_free(&schema, NULL);
	cfg_free(NULL, &c);
}

static void test_types_ok(void)
{
	static const struct {
		const char *text;
		bool want;
	} bools[] = {
		{"true", true}, {"false", false}, {"yes", true}, {"no", false},	 {"on", true},
		{"off", false}, {"1", true},	  {"0", false},	 {"TRUE", true}, {"Off", false},
	};
	static const struct {
		const char *text;
		uint64_t want;
	} sizes[] = {
		{"4K", 4096},	      {"4KiB", 4096},	    {"4k", 4096},
		{"4096", 4096},	      {"4096B", 4096},	    {"3M", 3ull << 20},
		{"3MiB", 3ull << 20}, {"2G", 2ull << 30},   {"2GiB", 2ull << 30},
		{"5T", 5ull << 40},   {"5TiB", 5ull << 40}, {"0", 0},
		{"16 K", 16384},      {"+8k", 8192},	    {"16777215T", 16777215ull << 40},
	};
	static const struct {
		const char *text;
		uint64_t want;
	} durations[] = {
		{"250ms", 250}, {"10s", 10000}, {"2m", 120000}, {"1h", 3600000},
		{"1500", 1500}, {"0", 0},	{"3 s", 3000},
	};
	char text[256];
	struct tcfg c;
	size_t i;

	for (i = 0; i < SLUICE_ARRAY_SIZE(bools); i++) {
		snprintf(text, sizeof(text), "[node]\nverbose = %s\n", bools[i].text);
		LOAD_OK(&c, text);
		CHECK(c.verbose == bools[i].want);
		cfg_free(&schema, &c);
	}
	for (i = 0; i < SLUICE_ARRAY_SIZE(sizes); i++) {
		snprintf(text, sizeof(text), "[log]\nmax_size = %s\n", sizes[i].text);
		LOAD_OK(&c, text);
		if (c.max_bytes != sizes[i].want)
			fprintf(stderr, "size %s gave %llu\n", sizes[i].text,
				(unsigned long long)c.max_bytes);
		CHECK(c.max_bytes == sizes[i].want);
		cfg_free(&schema, &c);
	}
	for (i = 0; i < SLUICE_ARRAY_SIZE(durations); i++) {
		snprintf(text, sizeof(text), "[log]\nflush = %s\n", durations[i].text);
		LOAD_OK(&c, text);
		CHECK(c.flush_ms == durations[i].want);
		cfg_free(&schema, &c);
	}

	LOAD_OK(&c, "[node]\noffset = -9223372036854775808\nmask = 0xFFFFFFFFFFFFFFFF\n"
		    "delta = -10\n");
	CHECK(c.offset == INT64_MIN);
	CHECK(c.mask == UINT64_MAX);
	CHECK(c.delta == -10);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\noffset = 9223372036854775807\nmask = 18446744073709551615\n");
	CHECK(c.offset == INT64_MAX);
	CHECK(c.mask == UINT64_MAX);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\noffset = 0x10\ndelta = +10\n[net]\nport = 0x1f90\n");
	CHECK(c.offset == 16 && c.delta == 10 && c.port == 8080);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\noffset = -0x10\n");
	CHECK(c.offset == -16);
	cfg_free(&schema, &c);

	LOAD_OK(&c, "[log]\nlevel = debug\n");
	CHECK(c.level == 3);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[log]\nlevel = err\n");
	CHECK(c.level == 0);
	cfg_free(&schema, &c);

	/* range edges are inclusive */
	LOAD_OK(&c, "[net]\nport = 1\nbuf_size = 4K\nidle_timeout = 1h\n");
	CHECK(c.port == 1 && c.buf_bytes == 4096 && c.idle_ms == 3600000);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[net]\nport = 65535\nbuf_size = 64M\nidle_timeout = 1ms\n");
	CHECK(c.port == 65535 && c.buf_bytes == 64u << 20 && c.idle_ms == 1);
	cfg_free(&schema, &c);
}

static void test_strings(void)
{
	struct tcfg c;

	LOAD_OK(&c, "[node]\nname =   hello world   \n");
	CHECK(strcmp(c.name, "hello world") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname = a#b;c # comment\n");
	CHECK(strcmp(c.name, "a#b;c") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname = x\t; comment\n");
	CHECK(strcmp(c.name, "x") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname =\n");
	CHECK(strcmp(c.name, "") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname = # only a comment\n");
	CHECK(strcmp(c.name, "") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname = \"  quoted # not a comment ; \" # real comment\n");
	CHECK(strcmp(c.name, "  quoted # not a comment ; ") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname = \"q\\\"b\\\\s\\nn\\tt\"\n");
	CHECK(strcmp(c.name, "q\"b\\s\nn\tt") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "[node]\nname = \"\"\n");
	CHECK(strcmp(c.name, "") == 0);
	cfg_free(&schema, &c);
	/* bytes from 0x80 up, valid UTF-8 or not, pass through */
	LOAD_OK(&c, "[node]\nname = caf\xc3\xa9 \xff\xfe\n");
	CHECK(strcmp(c.name, "caf\xc3\xa9 \xff\xfe") == 0);
	cfg_free(&schema, &c);
	/* a later value replaces (and frees) the earlier one: ASan would see a leak */
	LOAD_OK(&c, "[net]\nlisten = tcp://1.2.3.4:1\n");
	CHECK(strcmp(c.listen, "tcp://1.2.3.4:1") == 0);
	cfg_free(&schema, &c);
	/* quoted numbers and enums are fine too: the quotes only delimit */
	LOAD_OK(&c, "[net]\nport = \"8000\"\n[log]\nlevel = \"info\"\n");
	CHECK(c.port == 8000 && c.level == 2);
	cfg_free(&schema, &c);
}

static void test_types_bad(void)
{
	EXPECT_ERR("[node]\nverbose = maybe\n",
		   "t.conf:2: node.verbose: expected a boolean (true/false, yes/no, on/off, 1/0), "
		   "got 'maybe'");
	EXPECT_ERR("[node]\nverbose =\n", "t.conf:2: node.verbose: expected a boolean "
					  "(true/false, yes/no, on/off, 1/0), got ''");
	EXPECT_ERR("[node]\noffset = 12abc\n",
		   "t.conf:2: node.offset: expected an integer, got '12abc'");
	EXPECT_ERR("[node]\noffset =\n", "t.conf:2: node.offset: expected an integer, got ''");
	EXPECT_ERR("[node]\noffset = 1.5\n",
		   "t.conf:2: node.offset: expected an integer, got '1.5'");
	EXPECT_ERR("[node]\noffset = 0x\n", "t.conf:2: node.offset: expected an integer, got '0x'");
	EXPECT_ERR("[node]\noffset = 9223372036854775808\n",
		   "t.conf:2: node.offset: value 9223372036854775808 does not fit in a signed "
		   "64-bit integer");
	EXPECT_ERR("[node]\noffset = -9223372036854775809\n",
		   "t.conf:2: node.offset: value -9223372036854775809 does not fit in a signed "
		   "64-bit integer");
	EXPECT_ERR("[node]\noffset = 99999999999999999999999\n",
		   "t.conf:2: node.offset: value 99999999999999999999999 does not fit in a signed "
		   "64-bit integer");
	EXPECT_ERR("[node]\nmask = -1\n", "t.conf:2: node.mask: negative value -1 not allowed");
	EXPECT_ERR("[node]\nmask = 18446744073709551616\n",
		   "t.conf:2: node.mask: value 18446744073709551616 does not fit in 64 bits");
	EXPECT_ERR("[node]\nmask = 0x10000000000000000\n",
		   "t.conf:2: node.mask: value 0x10000000000000000 does not fit in 64 bits");
	EXPECT_ERR("[node]\nmask = ten\n",
		   "t.conf:2: node.mask: expected an unsigned integer, got 'ten'");
	EXPECT_ERR("[node]\nmask = 10K\n",
		   "t.conf:2: node.mask: expected an unsigned integer, got '10K'");
	EXPECT_ERR("[log]\nmax_size = -4K\n",
		   "t.conf:2: log.max_size: negative value -4K not allowed");
	EXPECT_ERR("[log]\nmax_size = 4X\n",
		   "t.conf:2: log.max_size: unknown size suffix 'X' in '4X' (use K, M, G, T or "
		   "KiB, MiB, GiB, TiB)");
	EXPECT_PREFIX("[log]\nmax_size = 4KB\n",
		      "t.conf:2: log.max_size: unknown size suffix 'KB'");
	EXPECT_PREFIX("[log]\nmax_size = 0x10\n",
		      "t.conf:2: log.max_size: unknown size suffix 'x10'");
	EXPECT_ERR("[log]\nmax_size = K\n",
		   "t.conf:2: log.max_size: expected a size such as 4096, 64K or 1G, got 'K'");
	EXPECT_ERR("[log]\nmax_size = 16777216T\n",
		   "t.conf:2: log.max_size: value 16777216T does not fit in 64 bits");
	EXPECT_ERR("[log]\nmax_size = 18446744073709551616\n",
		   "t.conf:2: log.max_size: value 18446744073709551616 does not fit in 64 bits");
	EXPECT_ERR("[log]\nflush = 5d\n",
		   "t.conf:2: log.flush: unknown duration suffix 'd' in '5d' (use ms, s, m, h)");
	EXPECT_ERR("[log]\nflush = -1s\n", "t.conf:2: log.flush: negative value -1s not allowed");
	EXPECT_ERR(
		"[log]\nflush = 1.5s\n",
		"t.conf:2: log.flush: unknown duration suffix '.5s' in '1.5s' (use ms, s, m, h)");
	EXPECT_ERR("[log]\nflush = 9999999999999999h\n",
		   "t.conf:2: log.flush: value 9999999999999999h does not fit in 64 bits");
	EXPECT_ERR("[log]\nflush = s\n", "t.conf:2: log.flush: expected a duration such as 250ms, "
					 "10s, 2m or 1h, got 's'");
	EXPECT_ERR("[log]\nlevel = verbose\n", "t.conf:2: log.level: unknown value 'verbose' "
					       "(expected one of: err, warn, info, debug)");
	EXPECT_ERR("[log]\nlevel = INFO\n", "t.conf:2: log.level: unknown value 'INFO' "
					    "(expected one of: err, warn, info, debug)");
	/* echoed text is clipped and made printable */
	EXPECT_ERR("[log]\nlevel = \"a\\nb\"\n", "t.conf:2: log.level: unknown value 'a?b' "
						 "(expected one of: err, warn, info, debug)");
	EXPECT_PREFIX(
		"[log]\nlevel = "
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		"t.conf:2: log.level: unknown value "
		"'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' "
		"(expected");
}

/* Regression (found by fuzz_cfg): a long unknown suffix overflowed a 32-byte buffer. */
static void test_regression_long_suffix_excerpt(void)
{
	char text[256];

	snprintf(text, sizeof(text), "[log]\nmax_size = 4%0100d\n", 0);
	memset(text + strlen("[log]\nmax_size = 4"), 'X', 100);
	EXPECT_PREFIX(text,
		      "t.conf:2: log.max_size: unknown size suffix "
		      "'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX...' in");
	snprintf(text, sizeof(text), "[log]\nflush = 4%0100d\n", 0);
	memset(text + strlen("[log]\nflush = 4"), 'y', 100);
	EXPECT_PREFIX(text, "t.conf:2: log.flush: unknown duration suffix 'yyyy");
}

static void test_ranges(void)
{
	EXPECT_ERR("[net]\nport = 70000\n",
		   "t.conf:2: net.port: value 70000 out of range [1, 65535]");
	EXPECT_ERR("[net]\nport = 0\n", "t.conf:2: net.port: value 0 out of range [1, 65535]");
	EXPECT_ERR("[node]\ndelta = -11\n",
		   "t.conf:2: node.delta: value -11 out of range [-10, 10]");
	EXPECT_ERR("[node]\ndelta = 11\n", "t.conf:2: node.delta: value 11 out of range [-10, 10]");
	EXPECT_ERR("[net]\nbuf_size = 1K\n",
		   "t.conf:2: net.buf_size: value 1K out of range [4K, 64M]");
	EXPECT_ERR("[net]\nbuf_size = 65537K\n",
		   "t.conf:2: net.buf_size: value 65537K out of range [4K, 64M]");
	EXPECT_ERR("[net]\nbuf_size = 4095\n",
		   "t.conf:2: net.buf_size: value 4095 out of range [4K, 64M]");
	EXPECT_ERR("[net]\nidle_timeout = 0\n",
		   "t.conf:2: net.idle_timeout: value 0ms out of range [1ms, 1h]");
	EXPECT_ERR("[net]\nidle_timeout = 61m\n",
		   "t.conf:2: net.idle_timeout: value 61m out of range [1ms, 1h]");
}

static void test_grammar(void)
{
	struct tcfg c;
	char *big;

	EXPECT_ERR("[nte]\nport = 1\n", "t.conf:1: unknown section '[nte]'; did you mean '[net]'?");
	EXPECT_ERR("[storage]\n", "t.conf:1: unknown section '[storage]'");
	EXPECT_ERR("[net]\nlisen = x\n", "t.conf:2: unknown key 'net.lisen'; did you mean "
					 "'net.listen'?");
	EXPECT_ERR("[net]\nbogus = x\n", "t.conf:2: unknown key 'net.bogus'");
	EXPECT_ERR("[log]\nport = 1\n", "t.conf:2: unknown key 'log.port'");
	EXPECT_ERR("# c\n[net]\nport = 1\n\nidle_timeout = 1s\nport = 2\n",
		   "t.conf:6: duplicate key 'net.port' (first set on line 3)");
	EXPECT_ERR("[net]\nport = 1\n[node]\n[net]\nport = 2\n",
		   "t.conf:5: duplicate key 'net.port' (first set on line 2)");
	EXPECT_ERR("[net]\nport 7000\n", "t.conf:2: missing '=' after key 'port'");
	EXPECT_ERR("[net]\nport\n", "t.conf:2: missing '=' after key 'port'");
	EXPECT_ERR("[net]\nport # = 1\n", "t.conf:2: missing '=' after key 'port'");
	EXPECT_ERR("[net]\n= 7000\n", "t.conf:2: missing key name before '='");
	EXPECT_ERR("[net]\nPort = 7000\n",
		   "t.conf:2: invalid key name 'Port' (allowed: a-z, 0-9, _)");
	EXPECT_ERR("[net]\nnet.port = 7000\n",
		   "t.conf:2: invalid key name 'net.port' (allowed: a-z, 0-9, _)");
	EXPECT_ERR("port = 7000\n", "t.conf:1: key 'port' outside any [section]");
	EXPECT_ERR("[node]\nname = \"abc\n",
		   "t.conf:2: node.name: unterminated string (missing closing '\"')");
	EXPECT_ERR("[node]\nname = \"abc\\\"\n",
		   "t.conf:2: node.name: unterminated string (missing closing '\"')");
	EXPECT_ERR("[node]\nname = \"abc\\\n",
		   "t.conf:2: node.name: unterminated string (missing closing '\"')");
	EXPECT_ERR("[node]\nname = \"a\\qb\"\n",
		   "t.conf:2: node.name: unknown escape '\\q' in string (use \\\" \\\\ \\n \\t)");
	EXPECT_ERR("[node]\nname = \"a\" b\n",
		   "t.conf:2: node.name: unexpected text 'b' after the closing quote");
	EXPECT_ERR("[net\n", "t.conf:1: missing ']' in section header '[net'");
	EXPECT_ERR("[net] x\n", "t.conf:1: unexpected text 'x' after section header");
	EXPECT_ERR("[]\n", "t.conf:1: invalid section name '[]' (allowed: a-z, 0-9, _)");
	EXPECT_ERR("[Net]\n", "t.conf:1: invalid section name '[Net]' (allowed: a-z, 0-9, _)");
	EXPECT_ERR("[net]\nport = 1\x01\n",
		   "t.conf:2: control character 0x01 at column 9 (only tab is allowed)");
	EXPECT_ERR("[net]\rport = 1\n",
		   "t.conf:1: control character 0x0d at column 6 (only tab is allowed)");
	EXPECT_ERR("[net]\nport = 1\x7f\n",
		   "t.conf:2: control character 0x7f at column 9 (only tab is allowed)");

	/* NUL inside the text: strlen-based helpers cannot be used */
	{
		static const char text[] = "[net]\nport = 1\0\n";
		struct cfg_err e = {""};

		CHECK(cfg_defaults(&schema, &c, &e) == 0);
		CHECK(cfg_load_string(&schema, "t.conf", text, sizeof(text) - 1, &c, &e) ==
		      -SLUICE_ECONFIG);
		CHECK(strcmp(e.msg, "t.conf:2: NUL byte at column 9") == 0);
		cfg_free(&schema, &c);
	}

	/* comments, blank lines, whitespace, CRLF, a byte-order mark, no final newline */
	LOAD_OK(&c, "\xef\xbb\xbf# top comment\n; another\n\n   \t\n  [ net ]  # c\r\n"
		    "\tport\t=\t8080\t# trailing\r\n  ; indented comment\n"
		    "listen=tcp://h:1;x\n[node]\nverbose = yes ; c\nname = n");
	CHECK(c.port == 8080);
	CHECK(strcmp(c.listen, "tcp://h:1;x") == 0);
	CHECK(c.verbose);
	CHECK(strcmp(c.name, "n") == 0);
	cfg_free(&schema, &c);
	LOAD_OK(&c, "");
	CHECK(c.port == 7000);
	cfg_free(&schema, &c);

	/* partial application: lines before the bad one stay applied */
	{
		struct cfg_err e = {""};

		CHECK(load(&c, "[net]\nport = 1234\nlisten = a\nbogus = 1\nidle_timeout = 5s\n",
			   &e) == -SLUICE_ECONFIG);
		CHECK(c.port == 1234 && strcmp(c.listen, "a") == 0 && c.idle_ms == 60000);
		cfg_free(&schema, &c);
	}

	/* line length: SLUICE_CFG_LINE_MAX bytes is fine, one more is not */
	big = malloc(SLUICE_CFG_LINE_MAX + 64);
	CHECK(big != NULL);
	if (big != NULL) {
		size_t pre = strlen("[node]\nname = ");

		memcpy(big, "[node]\nname = ", pre);
		memset(big + pre, 'a', SLUICE_CFG_LINE_MAX - strlen("name = "));
		strcpy(big + pre + SLUICE_CFG_LINE_MAX - strlen("name = "), "\r\n");
		LOAD_OK(&c, big);
		CHECK(strlen(c.name) == SLUICE_CFG_LINE_MAX - strlen("name = "));
		cfg_free(&schema, &c);
		strcpy(big + pre + SLUICE_CFG_LINE_MAX - strlen("name = "), "b\n");
		EXPECT_ERR(big, "t.conf:2: line longer than 4096 bytes");
		strcpy(big + pre + SLUICE_CFG_LINE_MAX - strlen("name = "), "b");
		EXPECT_ERR(big, "t.conf:2: line longer than 4096 bytes");
		free(big);
	}

	/* file size limit */
	big = malloc(SLUICE_CFG_FILE_MAX_BYTES + 2);
	CHECK(big != NULL);
	if (big != NULL) {
		struct cfg_err e = {""};

		memset(big, '\n', SLUICE_CFG_FILE_MAX_BYTES + 1);
		CHECK(cfg_defaults(&schema, &c, &e) == 0);
		CHECK(cfg_load_string(&schema, "t.conf", big, SLUICE_CFG_FILE_MAX_BYTES, &c, &e) ==
		      0);
		CHECK(cfg_load_string(&schema, "t.conf", big, SLUICE_CFG_FILE_MAX_BYTES + 1, &c,
				      &e) == -SLUICE_ECONFIG);
		CHECK(strcmp(e.msg, "t.conf: file is 1048577 bytes, over the limit of 1048576 "
				    "bytes") == 0);
		cfg_free(&schema, &c);
		free(big);
	}
}

static void test_set(void)
{
	struct tcfg c;
	struct cfg_err e = {""};

	LOAD_OK(&c, "[net]\nport = 1000\nlisten = from-file\n");
	CHECK(cfg_set(&schema, "net.port=2000", &c, &e) == 0);
	CHECK(c.port == 2000);
	CHECK(cfg_set(&schema, "  net.listen = \"from set # x\"  ", &c, &e) == 0);
	CHECK(strcmp(c.listen, "from set # x") == 0);
	CHECK(cfg_set(&schema, "net.listen=plain value", &c, &e) == 0);
	CHECK(strcmp(c.listen, "plain value") == 0);
	CHECK(cfg_set(&schema, "node.name=", &c, &e) == 0);
	CHECK(strcmp(c.name, "") == 0);
	CHECK(cfg_set(&schema, "log.level=debug", &c, &e) == 0);
	CHECK(c.level == 3);

	CHECK(cfg_set(&schema, "net.lisen=x", &c, &e) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: unknown key 'net.lisen'; did you mean 'net.listen'?") == 0);
	CHECK(cfg_set(&schema, "port=1", &c, &e) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: unknown key 'port'") == 0);
	CHECK(cfg_set(&schema, "net.port", &c, &e) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: missing '=' in 'net.port' (expected section.key=value)") == 0);
	CHECK(cfg_set(&schema, "=5", &c, &e) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: missing key name in '=5' (expected section.key=value)") == 0);
	CHECK(cfg_set(&schema, "net.port=70000", &c, &e) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: net.port: value 70000 out of range [1, 65535]") == 0);
	CHECK(cfg_set(&schema, "node.name=a\nb", &c, &e) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: control character 0x0a at column 12 (only tab is allowed)") ==
	      0);
	CHECK(c.port == 2000); /* failed overrides change nothing */
	cfg_free(&schema, &c);
}

static char *write_file(const char *name, const char *text)
{
	char *path = NULL;
	FILE *f;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		return NULL;
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
	return path;
}

/* Run cfg_parse_args on a NULL-terminated list (argv[0] added), stdout muted. */
static int run_args(struct tcfg *c, struct cfg_err *e, const char *const *args)
{
	char *argv[16];
	int argc = 0, rc, saved;

	argv[argc++] = (char *)"test-daemon";
	while (*args != NULL && argc < 15)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	CHECK(saved >= 0 && freopen("/dev/null", "w", stdout) != NULL);
	rc = cfg_parse_args(&schema, argc, argv, c, e);
	fflush(stdout);
	CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
	close(saved);
	return rc;
}

static void test_parse_args(void)
{
	char *path = write_file("a.conf", "[net]\nport = 1000\nidle_timeout = 5s\n");
	char *bad = write_file("bad.conf", "[net]\nport = 1\nport = 2\n");
	char *cfgeq = NULL;
	struct cfg_err e = {""};
	struct tcfg c;

	CHECK(path != NULL && bad != NULL && asprintf(&cfgeq, "--config=%s", path) > 0);
	if (path == NULL || bad == NULL || cfgeq == NULL)
		goto out;

	/* no arguments: defaults */
	CHECK(run_args(&c, &e, (const char *const[]){NULL}) == 0);
	CHECK(c.port == 7000);
	cfg_free(&schema, &c);

	/* --set before --config still applies after the file; later --set wins */
	CHECK(run_args(&c, &e,
		       (const char *const[]){"--set", "net.port=2000", "--config", path,
					     "--set=net.port=3000", "--set", "node.name=x",
					     NULL}) == 0);
	CHECK(c.port == 3000);
	CHECK(c.idle_ms == 5000); /* from the file */
	CHECK(strcmp(c.name, "x") == 0);
	cfg_free(&schema, &c);

	CHECK(run_args(&c, &e, (const char *const[]){cfgeq, NULL}) == 0);
	CHECK(c.port == 1000);
	cfg_free(&schema, &c);

	CHECK(run_args(&c, &e, (const char *const[]){"--config", path, "--bogus", NULL}) ==
	      -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: unknown argument '--bogus'") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"stray", NULL}) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: unknown argument 'stray'") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--help=1", NULL}) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: unknown argument '--help=1'") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--set", NULL}) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: --set needs an argument") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--config", NULL}) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: --config needs an argument") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--config=", NULL}) == -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: --config needs a FILE argument") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--config", path, "--config", path, NULL}) ==
	      -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "command line: --config given more than once") == 0);
	cfg_free(&schema, &c);

	/* errors from the file and from --set keep their own prefixes */
	CHECK(run_args(&c, &e, (const char *const[]){"--config", bad, NULL}) == -SLUICE_ECONFIG);
	CHECK(strstr(e.msg, "bad.conf:3: duplicate key 'net.port' (first set on line 2)") != NULL);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e,
		       (const char *const[]){"--config", path, "--set", "net.nope=1", NULL}) ==
	      -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "--set: unknown key 'net.nope'") == 0);
	CHECK(c.port == 1000); /* the file was applied before the bad override */
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--config", "/nonexistent/x.conf", NULL}) ==
	      -SLUICE_ECONFIG);
	CHECK(strcmp(e.msg, "/nonexistent/x.conf: cannot open: No such file or directory") == 0);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e, (const char *const[]){"--config", tmpdir, NULL}) == -SLUICE_ECONFIG);
	CHECK(strstr(e.msg, ": cannot read: Is a directory") != NULL);
	cfg_free(&schema, &c);

	/* --help wins over a broken file (not even read); --print-config runs after it all */
	CHECK(run_args(&c, &e, (const char *const[]){"--config", bad, "--help", NULL}) == 1);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e,
		       (const char *const[]){"--print-config", "--set", "net.port=9", NULL}) == 1);
	CHECK(c.port == 9);
	cfg_free(&schema, &c);
	CHECK(run_args(&c, &e,
		       (const char *const[]){"--print-config", "--set", "net.port=0", NULL}) ==
	      -SLUICE_ECONFIG);
	cfg_free(&schema, &c);
out:
	if (path)
		unlink(path);
	if (bad)
		unlink(bad);
	free(path);
	free(bad);
	free(cfgeq);
}

static void test_print_roundtrip(void)
{
	struct cfg_err e = {""};
	struct tcfg a, b;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	LOAD_OK(&a, "[net]\nport = 65535\nidle_timeout = 1001\nbuf_size = 12K\n"
		    "listen = \"  sp # x ; y \\\" \\\\ \\n \\t \xc3\xa9 \"\n"
		    "[node]\nverbose = on\noffset = -9223372036854775808\ndelta = -3\n"
		    "mask = 0xffffffffffffffff\nname = \"\"\n"
		    "[log]\nlevel = debug\nmax_size = 5000\nflush = 7m\n");
	f = open_memstream(&text, &len);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	cfg_print(&schema, &a, f);
	fclose(f);
	CHECK(cfg_defaults(&schema, &b, &e) == 0);
	if (cfg_load_string(&schema, "printed", text, len, &b, &e) != 0) {
		fprintf(stderr, "reload failed: %s\n%s", e.msg, text);
		failures++;
	}
	CHECK(strcmp(a.listen, b.listen) == 0);
	CHECK(a.port == b.port && a.idle_ms == b.idle_ms && a.buf_bytes == b.buf_bytes);
	CHECK(strcmp(a.name, b.name) == 0);
	CHECK(a.verbose == b.verbose && a.offset == b.offset && a.delta == b.delta);
	CHECK(a.mask == b.mask && a.level == b.level && a.max_bytes == b.max_bytes);
	CHECK(a.flush_ms == b.flush_ms);
	CHECK(strstr(text, "[net]\nlisten = ") != NULL);
	CHECK(strstr(text, "buf_size = 12K\n") != NULL);
	CHECK(strstr(text, "flush = 7m\n") != NULL);
	CHECK(strstr(text, "idle_timeout = 1001ms\n") != NULL);
	CHECK(strstr(text, "level = debug\n") != NULL);
	free(text);
	cfg_free(&schema, &a);
	cfg_free(&schema, &b);
}

static void test_help(void)
{
	char *text = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&text, &len);

	CHECK(f != NULL);
	if (f == NULL)
		return;
	cfg_print_help(&schema, f);
	fclose(f);
	CHECK(strstr(text, "Usage: test-daemon ") != NULL);
	CHECK(strstr(text, "--config FILE") != NULL && strstr(text, "--print-config") != NULL);
	for (i = 0; i < SLUICE_ARRAY_SIZE(keys); i++) {
		CHECK(strstr(text, keys[i].name) != NULL);
		CHECK(strstr(text, keys[i].doc) != NULL);
	}
	CHECK(strstr(text, "  net.port (uint, default 7000, range [1, 65535])\n      TCP port\n") !=
	      NULL);
	CHECK(strstr(text, "  net.buf_size (size, default 64K, range [4K, 64M])\n") != NULL);
	CHECK(strstr(text, "  net.idle_timeout (duration, default 60s, range [1ms, 1h])\n") !=
	      NULL);
	CHECK(strstr(text, "  log.level (enum: err|warn|info|debug, default warn)\n") != NULL);
	CHECK(strstr(text, "  node.name (string, default \"\")\n") != NULL);
	CHECK(strstr(text, "  node.delta (int, default 0, range [-10, 10])\n") != NULL);
	/* grouped by section, in schema order */
	CHECK(strstr(text, "[net]") < strstr(text, "[node]"));
	CHECK(strstr(text, "[node]") < strstr(text, "[log]"));
	CHECK(strstr(text, "net.buf_size") < strstr(text, "[node]"));
	free(text);
}

static void expect_schema_err(int line, const struct cfg_key *k, size_t n, const char *msg)
{
	struct cfg_schema s = {"x", k, n};
	struct cfg_err e = {""};
	uint64_t out[32] = {0};
	int rc = cfg_defaults(&s, out, &e);

	if (rc != -SLUICE_ECONFIG || strcmp(e.msg, msg) != 0) {
		fprintf(stderr, "%s:%d: schema: expected '%s', got rc %d '%s'\n", __FILE__, line,
			msg, rc, e.msg);
		failures++;
	}
	if (rc == 0)
		cfg_free(&s, out);
}
#define EXPECT_SCHEMA(msg, ...)                                                \
	do {                                                                   \
		const struct cfg_key k_[] = {__VA_ARGS__};                     \
		expect_schema_err(__LINE__, k_, SLUICE_ARRAY_SIZE(k_), (msg)); \
	} while (0)

static void test_schema(void)
{
	static const char *const none[] = {NULL};

	EXPECT_SCHEMA(
		"schema: key #0: name 'port' is not section.key in [a-z0-9_], under 128 bytes",
		{"port", CFG_UINT, 0, "1", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema: key #0: name 'a.b.c' is not section.key in [a-z0-9_], under 128 "
		      "bytes",
		      {"a.b.c", CFG_UINT, 0, "1", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema: key #0: name 'Net.port' is not section.key in [a-z0-9_], under 128 "
		      "bytes",
		      {"Net.port", CFG_UINT, 0, "1", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b' is listed twice",
		      {"a.b", CFG_UINT, 0, "1", 0, 0, NULL, "d"},
		      {"a.b", CFG_UINT, 8, "1", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema default: a.b: value 0 out of range [1, 5]",
		      {"a.b", CFG_UINT, 0, "0", 1, 5, NULL, "d"});
	EXPECT_SCHEMA("schema default: a.b: expected an integer, got 'x'",
		      {"a.b", CFG_INT, 0, "x", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': missing default",
		      {"a.b", CFG_INT, 0, NULL, 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': missing doc", {"a.b", CFG_INT, 0, "1", 0, 0, NULL, NULL});
	EXPECT_SCHEMA("schema: key 'a.b': bad range [5, 1] for a int",
		      {"a.b", CFG_INT, 0, "1", 5, 1, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': bad range [-1, 1] for a size",
		      {"a.b", CFG_SIZE, 0, "1", -1, 1, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': bad range [0, 1] for a string",
		      {"a.b", CFG_STRING, 0, "1", 0, 1, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': enum_names must be a non-empty list for enums only",
		      {"a.b", CFG_ENUM, 0, "x", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': enum_names must be a non-empty list for enums only",
		      {"a.b", CFG_ENUM, 0, "x", 0, 0, none, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': enum_names must be a non-empty list for enums only",
		      {"a.b", CFG_UINT, 0, "1", 0, 0, levels, "d"});
	EXPECT_SCHEMA("schema: key 'a.b': unknown type 42",
		      {"a.b", (enum cfg_type)42, 0, "1", 0, 0, NULL, "d"});
	EXPECT_SCHEMA("schema default: a.b: unterminated string (missing closing '\"')",
		      {"a.b", CFG_STRING, 0, "\"x", 0, 0, NULL, "d"});
}

static void test_load_file(void)
{
	char *path = write_file("f.conf", "[log]\nlevel = info\n");
	struct cfg_err e = {""};
	struct tcfg c;

	CHECK(path != NULL);
	if (path == NULL)
		return;
	CHECK(cfg_defaults(&schema, &c, &e) == 0);
	CHECK(cfg_load_file(&schema, path, &c, &e) == 0);
	CHECK(c.level == 2);
	cfg_free(&schema, &c);
	unlink(path);
	free(path);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_types_ok();
	test_strings();
	test_types_bad();
	test_regression_long_suffix_excerpt();
	test_ranges();
	test_grammar();
	test_set();
	test_parse_args();
	test_print_roundtrip();
	test_help();
	test_schema();
	test_load_file();
	rmdir(tmpdir);
	if (failures != 0) {
		fprintf(stderr, "test_cfg: %d check(s) failed\n", failures);
		return 1;
	}
	printf("test_cfg: ok\n");
	return 0;
}
