/*
 * test_cli.c - unit test of the CLI's pure helpers: the JSON emitter (layout, string
 * escaping, UTF-8 repair), human-readable sizes, ages and percentages, the number and
 * id-list parsers, and the chunk-listing merge of `chain check` (cli_merge.c) driven by
 * made-up pages: paging, missing and extra chunks, differing fields, members failing and
 * sending bad pages. The commands themselves need running daemons and are exercised
 * against them (tests/integration/test_chain_check.py and the mgmtd tests).
 *
 * Standalone program: exits 0 when every check passes, 1 otherwise, naming file:line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
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

/* ---- chunk-listing merge ------------------------------------------------------------------ */

enum fake_bad { BAD_NONE, BAD_ORDER, BAD_EMPTY_MORE, BAD_REPEAT };

struct fake_member {
	const Sluice__ChunkMeta *all; /* the member's whole listing, sorted */
	size_t n, per_page;
	int fail_at; /* this fetch (1-based) fails with -EIO; 0 never */
	int bad_at;  /* this fetch returns a bad page of kind bad */
	enum fake_bad bad;
	int fetches, releases;
};

struct fake {
	struct fake_member m[SLUICE_CHAIN_LEN_MAX];
	int invalids;
};

static int fake_fetch(void *arg, unsigned i, bool after, uint64_t inode, uint32_t index,
		      struct cli_merge_page *page)
{
	struct fake_member *m = &((struct fake *)arg)->m[i];
	size_t start = 0, n;
	Sluice__ChunkMeta **arr;

	m->fetches++;
	if (m->fetches == m->fail_at)
		return -EIO;
	while (after && start < m->n &&
	       (m->all[start].inode < inode ||
		(m->all[start].inode == inode && m->all[start].index <= index)))
		start++;
	if (m->fetches == m->bad_at && m->bad == BAD_REPEAT && start > 0)
		start--; /* the cursor's own chunk again */
	n = m->n - start < m->per_page ? m->n - start : m->per_page;
	arr = calloc(n + 2, sizeof(*arr));
	if (!arr)
		abort();
	for (size_t k = 0; k < n; k++)
		arr[k] = (Sluice__ChunkMeta *)&m->all[start + k];
	page->chunks = arr;
	page->n = n;
	page->more = start + n < m->n;
	page->owner = arr;
	if (m->fetches == m->bad_at && m->bad == BAD_ORDER && n >= 2) {
		arr[0] = (Sluice__ChunkMeta *)&m->all[start + 1];
		arr[1] = (Sluice__ChunkMeta *)&m->all[start];
	}
	if (m->fetches == m->bad_at && m->bad == BAD_EMPTY_MORE) {
		page->n = 0;
		page->more = true;
	}
	return 0;
}

static void fake_release(void *arg, unsigned i, struct cli_merge_page *page)
{
	((struct fake *)arg)->m[i].releases++;
	free(page->owner);
}

static void fake_invalid(void *arg, unsigned i, int rc, const char *why)
{
	(void)i;
	(void)why;
	CHECK(rc == -SLUICE_EPROTO);
	((struct fake *)arg)->invalids++;
}

static const struct cli_merge_ops fake_ops = {
	.fetch = fake_fetch, .release = fake_release, .invalid = fake_invalid};

static Sluice__ChunkMeta cm(uint64_t inode, uint32_t index, uint32_t crc)
{
	Sluice__ChunkMeta m = SLUICE__CHUNK_META__INIT;

	m.inode = inode;
	m.index = index;
	m.length = 4096;
	m.commit_ver = 1;
	m.crc = crc;
	return m;
}

/*
 * Run a merge of n members; returns the rows as text, one "inode:index" + per member
 * "=crc" / "-" (missing) / "x" (not compared) + "!" if the row differs, separated by ' '.
 */
static char *run_merge(struct fake *f, unsigned n)
{
	struct cli_merge mg;
	struct cli_merge_row row;
	char *out = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&out, &len);

	if (!o)
		abort();
	cli_merge_start(&mg, n, &fake_ops, f);
	while (cli_merge_next(&mg, &row)) {
		fprintf(o, "%s%" PRIu64 ":%u", ftell(o) ? " " : "", row.inode, row.index);
		for (unsigned i = 0; i < n; i++) {
			if (!row.compared[i])
				fputs("x", o);
			else if (!row.meta[i])
				fputs("-", o);
			else
				fprintf(o, "=%x", row.meta[i]->crc);
		}
		if (cli_merge_row_differs(&row, n, NULL))
			fputs("!", o);
	}
	cli_merge_end(&mg);
	fclose(o);
	for (unsigned i = 0; i < n; i++) {
		int ok = f->m[i].fetches - (f->m[i].fail_at && f->m[i].fetches >= f->m[i].fail_at);

		CHECK(f->m[i].releases == ok); /* every page released exactly once */
	}
	return out;
}

static void test_merge(void)
{
	const Sluice__ChunkMeta same[] = {cm(1, 0, 0xa), cm(1, 1, 0xb), cm(2, 0, 0xc),
					  cm(2, 7, 0xd), cm(9, 0, 0xe)};
	const Sluice__ChunkMeta a[] = {cm(1, 0, 0xa), cm(1, 1, 0xb), cm(2, 0, 0xc)};
	const Sluice__ChunkMeta b[] = {cm(1, 0, 0xa), cm(1, 1, 0xf), cm(3, 0, 0xc)};
	const Sluice__ChunkMeta c[] = {cm(1, 1, 0xb), cm(2, 0, 0xc)};
	Sluice__ChunkMeta cv[5];
	struct fake f;
	char *got;

	/* Identical members, pages of different sizes: nothing differs. chain_ver may. */
	memcpy(cv, same, sizeof(cv));
	cv[2].chain_ver = 7;
	memset(&f, 0, sizeof(f));
	f.m[0] = (struct fake_member){.all = same, .n = 5, .per_page = 2};
	f.m[1] = (struct fake_member){.all = cv, .n = 5, .per_page = 3};
	f.m[2] = (struct fake_member){.all = same, .n = 5, .per_page = 5};
	got = run_merge(&f, 3);
	CHECK_STR(got, "1:0=a=a=a 1:1=b=b=b 2:0=c=c=c 2:7=d=d=d 9:0=e=e=e");
	CHECK(f.m[0].fetches == 3 && f.m[1].fetches == 2 && f.m[2].fetches == 1);
	free(got);

	/* Missing, extra and differing chunks, one-entry pages. */
	memset(&f, 0, sizeof(f));
	f.m[0] = (struct fake_member){.all = a, .n = 3, .per_page = 1};
	f.m[1] = (struct fake_member){.all = b, .n = 3, .per_page = 1};
	f.m[2] = (struct fake_member){.all = c, .n = 2, .per_page = 1};
	got = run_merge(&f, 3);
	CHECK_STR(got, "1:0=a=a-! 1:1=b=f=b! 2:0=c-=c! 3:0-=c-!");
	free(got);

	/* Length and commit_ver count; an empty member lacks everything. */
	memcpy(cv, same, sizeof(cv));
	cv[0].length = 1;
	cv[1].commit_ver = 2;
	memset(&f, 0, sizeof(f));
	f.m[0] = (struct fake_member){.all = same, .n = 3, .per_page = 4};
	f.m[1] = (struct fake_member){.all = cv, .n = 3, .per_page = 4};
	f.m[2] = (struct fake_member){.all = NULL, .n = 0, .per_page = 4};
	got = run_merge(&f, 2);
	CHECK_STR(got, "1:0=a=a! 1:1=b=b! 2:0=c=c");
	free(got);
	memset(&f, 0, sizeof(f));
	f.m[0] = (struct fake_member){.all = NULL, .n = 0, .per_page = 4};
	f.m[1] = (struct fake_member){.all = NULL, .n = 0, .per_page = 4};
	got = run_merge(&f, 2);
	CHECK_STR(got, "");
	free(got);

	/* A member whose second fetch fails leaves the comparison; the others go on. */
	memset(&f, 0, sizeof(f));
	f.m[0] = (struct fake_member){.all = same, .n = 5, .per_page = 2};
	f.m[1] = (struct fake_member){.all = same, .n = 5, .per_page = 2, .fail_at = 2};
	got = run_merge(&f, 2);
	CHECK_STR(got, "1:0=a=a 1:1=b=b 2:0=cx 2:7=dx 9:0=ex");
	free(got);
	/* ... and one that fails at once is never compared. */
	memset(&f, 0, sizeof(f));
	f.m[0] = (struct fake_member){.all = a, .n = 3, .per_page = 2, .fail_at = 1};
	f.m[1] = (struct fake_member){.all = c, .n = 2, .per_page = 2};
	got = run_merge(&f, 2);
	CHECK_STR(got, "1:1x=b 2:0x=c");
	free(got);

	/* Bad pages: out of order, empty but "more", repeating the cursor's chunk. */
	for (int bad = BAD_ORDER; bad <= BAD_REPEAT; bad++) {
		memset(&f, 0, sizeof(f));
		f.m[0] = (struct fake_member){.all = same, .n = 5, .per_page = 2};
		f.m[1] = (struct fake_member){
			.all = same, .n = 5, .per_page = 2, .bad_at = 2, .bad = bad};
		got = run_merge(&f, 2);
		CHECK_STR(got, "1:0=a=a 1:1=b=b 2:0=cx 2:7=dx 9:0=ex");
		CHECK(f.invalids == 1);
		free(got);
	}

	/* Differences among a selection only (the serving members). */
	{
		struct cli_merge_row row = {.inode = 1, .index = 0};
		Sluice__ChunkMeta x = cm(1, 0, 1), y = cm(1, 0, 2);
		bool sel[3] = {true, false, true};

		row.compared[0] = row.compared[1] = row.compared[2] = true;
		row.meta[0] = &x;
		row.meta[1] = NULL;
		row.meta[2] = &x;
		CHECK(cli_merge_row_differs(&row, 3, NULL));
		CHECK(!cli_merge_row_differs(&row, 3, sel));
		row.meta[2] = &y;
		CHECK(cli_merge_row_differs(&row, 3, sel));
		row.compared[2] = false; /* a member out of the comparison does not count */
		CHECK(!cli_merge_row_differs(&row, 3, sel));
		row.meta[0] = NULL; /* missing everywhere selected: no difference there */
		CHECK(!cli_merge_row_differs(&row, 3, sel));
	}
}

int main(void)
{
	test_escape();
	test_layout();
	test_fmt();
	test_parse();
	test_names();
	test_merge();
	return failures ? 1 : 0;
}
