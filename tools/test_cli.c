/*
 * test_cli.c - unit test of the CLI's pure helpers: the JSON emitter (layout, string
 * escaping, UTF-8 repair), human-readable sizes, ages and percentages, and the number and
 * id-list parsers. The commands themselves need a running mgmtd and are exercised against
 * one (see tools/README.md).
 *
 * Standalone program: exits 0 when every check passes, 1 otherwise, naming file:line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static int failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                              \
		}                                                                                \
	} while (0)

#define CHECK_STR(got, want)                                                                    \
	do {                                                                                    \
		const char *g_ = (got), *w_ = (want);                                           \
		if (strcmp(g_, w_) != 0) {                                                      \
			fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
				g_, w_);                                                        \
			failures++;                                                             \
		}                                                                               \
	} while (0)

/* s as cli_json_write_string writes it; the caller frees. */
static char *json_string(const char *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		abort();
	cli_json_write_string(f, s);
	fclose(f);
	return out;
}

static void check_escape(const char *in, const char *want, int line)
{
	char *got = json_string(in);

	if (strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: escape: got %s, want %s\n", __FILE__, line, got, want);
		failures++;
	}
	free(got);
}

static void test_escape(void)
{
	check_escape("plain", "\"plain\"", __LINE__);
	check_escape("", "\"\"", __LINE__);
	check_escape("a\"b\\c/d", "\"a\\\"b\\\\c/d\"", __LINE__);
	check_escape("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"", __LINE__);
	check_escape("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"", __LINE__);
	/* Well-formed UTF-8 passes through: é (2 bytes), € (3), U+1F600 (4). */
	check_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
		     "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", __LINE__);
	/* Ill-formed: stray continuation, 0xff, overlong '/', surrogate, > U+10FFFF, cut off. */
	check_escape("\x80", "\"\\ufffd\"", __LINE__);
	check_escape("a\xff"
		     "b",
		     "\"a\\ufffdb\"", __LINE__);
	check_escape("\xc0\xaf", "\"\\ufffd\\ufffd\"", __LINE__);
	check_escape("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", __LINE__);
	check_escape("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", __LINE__);
	check_escape("x\xe2\x82", "\"x\\ufffd\\ufffd\"", __LINE__);
	check_escape("\xe2\x82"
		     "A",
		     "\"\\ufffd\\ufffdA\"", __LINE__);
}

static void test_layout(void)
{
	const char *want = "{\n"
			   "  \"name\": \"n\\\"1\",\n"
			   "  \"none\": null,\n"
			   "  \"n\": 18446744073709551615,\n"
			   "  \"neg\": -5,\n"
			   "  \"ok\": true,\n"
			   "  \"empty\": [],\n"
			   "  \"ids\": [1, 2, 3],\n"
			   "  \"flat_empty\": [],\n"
			   "  \"list\": [\n"
			   "    {\n"
			   "      \"id\": 7,\n"
			   "      \"sub\": {}\n"
			   "    },\n"
			   "    \"s\"\n"
			   "  ]\n"
			   "}\n";
	struct cli_json j;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		abort();
	cli_json_begin(&j, f);
	cli_json_str(&j, "name", "n\"1");
	cli_json_str(&j, "none", NULL);
	cli_json_u64(&j, "n", UINT64_MAX);
	cli_json_i64(&j, "neg", -5);
	cli_json_bool(&j, "ok", true);
	cli_json_arr(&j, "empty");
	cli_json_close(&j);
	cli_json_arr_flat(&j, "ids");
	for (uint64_t i = 1; i <= 3; i++)
		cli_json_u64(&j, NULL, i);
	cli_json_close(&j);
	cli_json_arr_flat(&j, "flat_empty");
	cli_json_close(&j);
	cli_json_arr(&j, "list");
	cli_json_obj(&j, NULL);
	cli_json_u64(&j, "id", 7);
	cli_json_obj(&j, "sub");
	cli_json_close(&j);
	cli_json_close(&j);
	cli_json_str(&j, NULL, "s");
	cli_json_close(&j);
	cli_json_end(&j);
	fclose(f);
	CHECK_STR(out, want);
	free(out);
}

static void test_fmt(void)
{
	char b[32];
	uint64_t now = 1000000000ull;

	CHECK_STR(cli_fmt_bytes(0, b, sizeof(b)), "0 B");
	CHECK_STR(cli_fmt_bytes(1023, b, sizeof(b)), "1023 B");
	CHECK_STR(cli_fmt_bytes(1024, b, sizeof(b)), "1.0 KiB");
	CHECK_STR(cli_fmt_bytes(1536, b, sizeof(b)), "1.5 KiB");
	CHECK_STR(cli_fmt_bytes(1048575, b, sizeof(b)), "1.0 MiB"); /* never "1024.0 KiB" */
	CHECK_STR(cli_fmt_bytes(40ull << 30, b, sizeof(b)), "40.0 GiB");
	CHECK_STR(cli_fmt_bytes(1ull << 40, b, sizeof(b)), "1.0 TiB");
	CHECK_STR(cli_fmt_bytes(UINT64_MAX, b, sizeof(b)), "16.0 EiB");

	CHECK_STR(cli_fmt_age(0, now, b, sizeof(b)), "-");
	CHECK_STR(cli_fmt_age(now, now, b, sizeof(b)), "0.0s");
	CHECK_STR(cli_fmt_age(now - 400, now, b, sizeof(b)), "0.4s");
	CHECK_STR(cli_fmt_age(now + 500, now, b, sizeof(b)), "0.0s"); /* small clock skew */
	CHECK_STR(cli_fmt_age(now + 5000, now, b, sizeof(b)), "future");
	CHECK_STR(cli_fmt_age(now - 12000, now, b, sizeof(b)), "12s");
	CHECK_STR(cli_fmt_age(now - 303000, now, b, sizeof(b)), "5m03s");
	CHECK_STR(cli_fmt_age(now - (2 * 3600 + 600) * 1000ull, now, b, sizeof(b)), "2h10m");
	CHECK_STR(cli_fmt_age(now - (3 * 86400 + 4 * 3600) * 1000ull, now, b, sizeof(b)), "3d04h");

	CHECK_STR(cli_fmt_pct(1, 4, b, sizeof(b)), "25.0%");
	CHECK_STR(cli_fmt_pct(1234, 5000, b, sizeof(b)), "24.7%");
	CHECK_STR(cli_fmt_pct(5, 0, b, sizeof(b)), "-");
}

static void test_parse(void)
{
	uint64_t v = 99, ids[4];

	CHECK(cli_parse_u64("12", 0, 100, &v) == 0 && v == 12);
	CHECK(cli_parse_u64("0x10", 0, 100, &v) == 0 && v == 16);
	CHECK(cli_parse_u64("010", 0, 100, &v) == 0 && v == 10);
	CHECK(cli_parse_u64("0", 0, 100, &v) == 0 && v == 0);
	v = 99;
	CHECK(cli_parse_u64("0x", 0, 100, &v) == -EINVAL);
	CHECK(cli_parse_u64("0x-1", 0, UINT64_MAX, &v) == -EINVAL);
	CHECK(cli_parse_u64("ab", 0, UINT64_MAX, &v) == -EINVAL);
	CHECK(cli_parse_u64("18446744073709551615", 0, UINT64_MAX, &v) == 0 && v == UINT64_MAX);
	v = 99;
	CHECK(cli_parse_u64("18446744073709551616", 0, UINT64_MAX, &v) == -EINVAL);
	CHECK(cli_parse_u64("-1", 0, UINT64_MAX, &v) == -EINVAL);
	CHECK(cli_parse_u64(" 1", 0, 100, &v) == -EINVAL);
	CHECK(cli_parse_u64("1x", 0, 100, &v) == -EINVAL);
	CHECK(cli_parse_u64("", 0, 100, &v) == -EINVAL);
	CHECK(cli_parse_u64(NULL, 0, 100, &v) == -EINVAL);
	CHECK(cli_parse_u64("0", 1, 100, &v) == -EINVAL);
	CHECK(cli_parse_u64("101", 1, 100, &v) == -EINVAL);
	CHECK(v == 99); /* untouched on error */

	CHECK(cli_parse_id_list("7", 100, ids, 4) == 1 && ids[0] == 7);
	CHECK(cli_parse_id_list("1,2,3", 100, ids, 4) == 3 && ids[0] == 1 && ids[2] == 3);
	CHECK(cli_parse_id_list("1,2,3,4", 100, ids, 4) == 4);
	CHECK(cli_parse_id_list("1,2,3,4,5", 100, ids, 4) == -E2BIG);
	CHECK(cli_parse_id_list("", 100, ids, 4) == -EINVAL);
	CHECK(cli_parse_id_list(",1", 100, ids, 4) == -EINVAL);
	CHECK(cli_parse_id_list("1,", 100, ids, 4) == -EINVAL);
	CHECK(cli_parse_id_list("1,,2", 100, ids, 4) == -EINVAL);
	CHECK(cli_parse_id_list("1,a", 100, ids, 4) == -EINVAL);
	CHECK(cli_parse_id_list("0", 100, ids, 4) == -EINVAL); /* ids start at 1 */
	CHECK(cli_parse_id_list("101", 100, ids, 4) == -EINVAL);
	CHECK(cli_parse_id_list("1,123456789012345678901234567890", UINT64_MAX, ids, 4) == -EINVAL);
}

static void test_names(void)
{
	CHECK_STR(cli_node_type_name(SLUICE__NODE_TYPE__NODE_STORAGE), "storage");
	CHECK_STR(cli_node_type_name((Sluice__NodeType)77), "unknown");
	CHECK_STR(cli_target_state_name(SLUICE__TARGET_STATE__TS_LASTSRV), "lastsrv");
	CHECK_STR(cli_target_state_name((Sluice__TargetState)77), "unknown");
	CHECK_STR(cli_local_state_name(SLUICE__LOCAL_STATE__LS_UPTODATE), "uptodate");
	CHECK_STR(cli_chain_health_name(CLI_CHAIN_DEGRADED), "degraded");
}

int main(void)
{
	test_escape();
	test_layout();
	test_fmt();
	test_parse();
	test_names();
	return failures ? 1 : 0;
}
