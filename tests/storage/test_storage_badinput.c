/*
 * test_storage_badinput.c - malformed and out-of-range requests to sluice-storage get a
 * clean error, change nothing, and the daemon keeps serving.
 *
 * Cases (each followed by a canary write + read on both targets and a check that the
 * daemon process is alive):
 *   a) WRITE past chunk_size (also offset + length overflowing 32 bits): -EINVAL, the
 *      existing chunk unchanged, a new chunk not created;
 *   b) WRITE of length 0: -EINVAL;
 *   c) chunk_size not a power of two, below 64 KiB, above 64 MiB, 0 (WRITE and TRUNCATE):
 *      -EINVAL;
 *   d) bulk length != length (shorter, longer, no bulk): -EINVAL;
 *   e) wrong data_crc: -SLUICE_ECHECKSUM, content, CRC and commit_ver unchanged, a new
 *      chunk not created;
 *   f) unknown target ids (0 for per-target ops, 3, 99, 2^64-1) on every op: an error
 *      reply (any), STATFS 0 lists targets 1 and 2;
 *   g) BATCH_READ of a missing chunk: the call succeeds, that range is -ENOENT, and the
 *      bulk holds only the successful ranges around it; REMOVE of a missing chunk says
 *      existed = false;
 *   h) oversized BATCH_READ: a 64 MiB chunk read whole twice in one batch (128 MiB > the
 *      frame bulk limit), 30000 one-byte ranges, a range of 128 MiB on a small chunk:
 *      either an error reply or a consistent answer (results add up to the bulk, bytes
 *      correct, bulk within the frame limit) - never a hang or a dead daemon;
 *   i) TRUNCATE past chunk_size: -EINVAL; REMOVE_RANGE with begin > end removes nothing;
 *   j) FAULT_INJECT of an unknown site or target: an error; a daemon without
 *      debug.fault_injection refuses FAULT_INJECT and keeps working normally.
 *
 * Usage: test_storage_badinput PATH_TO_sluice-storage.
 *
 * THREADS: main (synchronous calls); the client's reactor thread.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "tests/storage/storclient.h"

#define KiB64	    (64u * SLUICE_KiB)
#define BIG	    SLUICE_CHUNK_SIZE_MAX
#define A_INODE	    7 /* chunk A: target 1, 64 KiB chunks, A_LEN bytes */
#define A_LEN	    10000u
#define NEW_INODE   8 /* never successfully written */
#define BIG_INODE   9
#define CANARY	    1
#define MANY_RANGES 30000u

static struct tstor_daemon dmn;
static struct tstor_client cl;
static uint8_t a_data[A_LEN];
static struct tstor_chunk a_meta;
static uint8_t *big;  /* BIG bytes: the 64 MiB chunk's content for (h) */
static uint8_t *rbuf; /* 2 * BIG bytes: read buffer */

static void scenario(const char *name)
{
	printf("--- %s\n", name);
	fflush(stdout);
}

/* A remote error, not a transport failure (which would mean the daemon died or hung). */
static bool remote_error(int rc)
{
	return rc < 0 && rc != -SLUICE_ECONNLOST && rc != -SLUICE_EDEADLINE &&
	       rc != -SLUICE_ESHUTDOWN && rc != -SLUICE_ECANCELED && rc != -ECONNREFUSED &&
	       rc != -ECONNRESET && rc != -EPIPE;
}

#define EXPECT_ERR(rc, what)                                                                       \
	do {                                                                                       \
		int r_ = (rc);                                                                     \
		if (!remote_error(r_)) {                                                           \
			fprintf(stderr, "%s:%d: %s: got %s (%d), want an error reply\n", __FILE__, \
				__LINE__, what, sluice_errname(r_), r_);                           \
			test_failures++;                                                           \
		} else {                                                                           \
			printf("  %s: %s (%s)\n", what, sluice_errname(r_), cl.detail);            \
		}                                                                                  \
	} while (0)

#define EXPECT_RC(rc, want, what)                                                                \
	do {                                                                                     \
		int r_ = (rc), w_ = (want);                                                      \
		if (r_ != w_) {                                                                  \
			fprintf(stderr, "%s:%d: %s: got %s (%d), want %s (%d) [%s]\n", __FILE__, \
				__LINE__, what, sluice_errname(r_), r_, sluice_errname(w_), w_,  \
				cl.detail);                                                      \
			test_failures++;                                                         \
		}                                                                                \
	} while (0)

/* The daemon is alive and serves a write and a read on both targets. */
static void still_serving(const char *after)
{
	uint8_t w[4096], r[4096];
	uint32_t len = 0;

	if (!tstor_daemon_alive(&dmn)) {
		fprintf(stderr, "FAIL: the daemon died after %s\n", after);
		test_failures++;
		return;
	}
	for (unsigned t = 1; t <= 2; t++) {
		int rc;

		pattern_fill(w, sizeof(w), env_random_u64());
		rc = tstor_write(&cl, t, CANARY, 0, KiB64, 0, w, sizeof(w), NULL);
		if (rc == 0)
			rc = tstor_read_chunk(&cl, t, CANARY, 0, KiB64, r, &len);
		if (rc != 0 || len != sizeof(w) || memcmp(w, r, sizeof(w)) != 0) {
			fprintf(stderr, "FAIL: canary on target %u after %s: %s (%d), len %u\n", t,
				after, sluice_errname(rc), rc, len);
			test_failures++;
		}
	}
}

/* Chunk A has its original content, CRC and version. */
static void check_a(const char *after)
{
	static uint8_t buf[KiB64];
	struct tstor_chunk m;
	uint32_t len = 0;
	int rc = tstor_read_chunk(&cl, 1, A_INODE, 0, KiB64, buf, &len);

	if (rc != 0 || len != A_LEN || memcmp(buf, a_data, A_LEN) != 0) {
		fprintf(stderr, "FAIL: chunk A changed after %s: read %s (%d), length %u of %u\n",
			after, sluice_errname(rc), rc, len, A_LEN);
		test_failures++;
	}
	rc = tstor_stat_chunk(&cl, 1, A_INODE, 0, &m);
	if (rc != 0 || m.crc != a_meta.crc || m.length != A_LEN ||
	    m.commit_ver != a_meta.commit_ver) {
		fprintf(stderr,
			"FAIL: chunk A metadata changed after %s: %s (%d) crc %#x/%#x length %u "
			"commit_ver %" PRIu64 "/%" PRIu64 "\n",
			after, sluice_errname(rc), rc, m.crc, a_meta.crc, m.length, m.commit_ver,
			a_meta.commit_ver);
		test_failures++;
	}
}

/* A chunk that a refused request must not have created. */
static void check_absent(unsigned t, uint64_t inode, uint32_t index, const char *after)
{
	struct tstor_chunk m;
	int rc = tstor_stat_chunk(&cl, t, inode, index, &m);

	if (rc != -ENOENT) {
		fprintf(stderr,
			"FAIL: after %s, chunk %" PRIu64 "/%u on target %u: %s (%d), length %u; "
			"want no such chunk\n",
			after, inode, index, t, sluice_errname(rc), rc, m.length);
		test_failures++;
	}
}

static int write_crc(uint64_t t, uint64_t inode, uint32_t cs, uint32_t off, uint32_t len,
		     const void *data, size_t bulk_len, uint32_t crc, bool has_bulk)
{
	Sluice__ChunkWriteReq w = SLUICE__CHUNK_WRITE_REQ__INIT;
	struct iovec iov = {(void *)data, bulk_len};

	w.target_id = t;
	w.inode = inode;
	w.index = 0;
	w.chunk_size = cs;
	w.offset = off;
	w.length = len;
	w.data_crc = crc;
	return tstor_write_raw(&cl, &w, &iov, has_bulk ? 1 : 0, NULL);
}

/* A write whose bulk is exactly len bytes of a_data-like content with the right CRC. */
static int write_plain(uint64_t t, uint64_t inode, uint32_t cs, uint32_t off, uint32_t len)
{
	static uint8_t buf[KiB64];

	ASSERT(len <= sizeof(buf));
	pattern_fill(buf, len, 77);
	return write_crc(t, inode, cs, off, len, buf, len, crc32c(0, buf, len), true);
}

static void case_past_end(void)
{
	scenario("a) WRITE past chunk_size");
	EXPECT_RC(write_plain(1, A_INODE, KiB64, KiB64 - 1000, 2000), -EINVAL,
		  "WRITE [63 KiB, +2000) of a 64 KiB chunk");
	EXPECT_RC(write_plain(1, NEW_INODE, KiB64, KiB64, 1), -EINVAL,
		  "WRITE at offset 64 KiB of a new 64 KiB chunk");
	EXPECT_RC(write_plain(1, NEW_INODE, KiB64, UINT32_MAX - 10, 100), -EINVAL,
		  "WRITE with offset + length past 2^32");
	check_a("writes past the end");
	check_absent(1, NEW_INODE, 0, "writes past the end");
	still_serving("writes past the end");
}

static void case_zero_length(void)
{
	scenario("b) WRITE of length 0");
	EXPECT_RC(write_crc(1, NEW_INODE, KiB64, 0, 0, NULL, 0, 0, false), -EINVAL,
		  "WRITE of length 0 at 0");
	EXPECT_RC(write_crc(1, A_INODE, KiB64, A_LEN, 0, NULL, 0, 0, false), -EINVAL,
		  "WRITE of length 0 at the end of chunk A");
	check_a("zero-length writes");
	check_absent(1, NEW_INODE, 0, "zero-length writes");
	still_serving("zero-length writes");
}

static void case_chunk_size(void)
{
	static const uint32_t bad[] = {0,	 1,	    4096,     32u * SLUICE_KiB,
				       100000,	 65537,	    3u << 20, 128u * SLUICE_MiB,
				       1u << 31, UINT32_MAX};
	char what[96];

	scenario("c) bad chunk_size");
	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(bad); i++) {
		snprintf(what, sizeof(what), "WRITE with chunk_size %u", bad[i]);
		EXPECT_RC(write_plain(1, NEW_INODE, bad[i], 0, 100), -EINVAL, what);
		snprintf(what, sizeof(what), "TRUNCATE with chunk_size %u", bad[i]);
		EXPECT_RC(tstor_truncate(&cl, 1, NEW_INODE, 0, bad[i], 10, NULL), -EINVAL, what);
	}
	check_absent(1, NEW_INODE, 0, "bad chunk sizes");
	still_serving("bad chunk sizes");
}

static void case_bulk_length(void)
{
	static uint8_t buf[300];

	scenario("d) bulk length != length");
	pattern_fill(buf, sizeof(buf), 5);
	EXPECT_RC(write_crc(1, NEW_INODE, KiB64, 0, 200, buf, 100, crc32c(0, buf, 100), true),
		  -EINVAL, "WRITE length 200 with a bulk of 100");
	EXPECT_RC(write_crc(1, NEW_INODE, KiB64, 0, 100, buf, 200, crc32c(0, buf, 200), true),
		  -EINVAL, "WRITE length 100 with a bulk of 200");
	EXPECT_RC(write_crc(1, NEW_INODE, KiB64, 0, 100, buf, 0, 0, false), -EINVAL,
		  "WRITE length 100 without a bulk");
	EXPECT_RC(write_crc(1, A_INODE, KiB64, 0, 100, buf, 300, crc32c(0, buf, 300), true),
		  -EINVAL, "WRITE length 100 with a bulk of 300 on chunk A");
	check_a("bulk length mismatches");
	check_absent(1, NEW_INODE, 0, "bulk length mismatches");
	still_serving("bulk length mismatches");
}

static void case_bad_crc(void)
{
	static uint8_t buf[5000];
	uint32_t crc;

	scenario("e) wrong data_crc");
	pattern_fill(buf, sizeof(buf), 6);
	crc = crc32c(0, buf, sizeof(buf));
	EXPECT_RC(write_crc(1, A_INODE, KiB64, 0, sizeof(buf), buf, sizeof(buf), crc ^ 1, true),
		  -SLUICE_ECHECKSUM, "overwrite of chunk A with a wrong data_crc");
	EXPECT_RC(write_crc(1, A_INODE, KiB64, A_LEN, sizeof(buf), buf, sizeof(buf), ~crc, true),
		  -SLUICE_ECHECKSUM, "append to chunk A with a wrong data_crc");
	EXPECT_RC(write_crc(1, NEW_INODE, KiB64, 0, sizeof(buf), buf, sizeof(buf), 0, true),
		  -SLUICE_ECHECKSUM, "new chunk with data_crc 0");
	check_a("writes with a wrong data_crc");
	check_absent(1, NEW_INODE, 0, "writes with a wrong data_crc");
	still_serving("writes with a wrong data_crc");
}

static void case_bad_target(void)
{
	static const uint64_t ids[] = {0, 3, 99, UINT64_MAX};
	struct tstor_range r = {A_INODE, 0, 0, 100};
	struct tstor_read_result res;
	struct tstor_space sp[4];
	struct tstor_chunk ch[4];
	uint8_t buf[128];
	char what[96];
	unsigned n = 0;
	int rc;

	scenario("f) unknown target ids");
	for (unsigned i = 0; i < SLUICE_ARRAY_SIZE(ids); i++) {
		uint64_t t = ids[i];

#define TRY(call, op)                                                         \
	do {                                                                  \
		snprintf(what, sizeof(what), "%s on target %" PRIu64, op, t); \
		EXPECT_ERR(call, what);                                       \
	} while (0)
		TRY(write_plain(t, NEW_INODE, KiB64, 0, 100), "WRITE");
		rc = tstor_batch_read(&cl, t, &r, 1, buf, sizeof(buf), &res);
		if (rc == 0) /* an error per range is as good as one for the call */
			rc = res.status;
		TRY(rc, "BATCH_READ");
		TRY(tstor_truncate(&cl, t, NEW_INODE, 0, KiB64, 10, NULL), "TRUNCATE");
		TRY(tstor_remove(&cl, t, A_INODE, 0, NULL), "REMOVE");
		TRY(tstor_remove_range(&cl, t, 0, 0, UINT64_MAX, 0, 0, NULL, NULL), "REMOVE_RANGE");
		TRY(tstor_query(&cl, t, A_INODE, 0, 0, 0, ch, 4, &n, NULL), "QUERY_CHUNKS");
		TRY(tstor_list(&cl, t, false, 0, 0, 0, ch, 4, &n, NULL), "LIST_CHUNKS");
		if (t != 0)
			TRY(tstor_statfs(&cl, t, sp, 4, &n), "STATFS");
#undef TRY
	}
	rc = tstor_statfs(&cl, 0, sp, 4, &n);
	EXPECT_RC(rc, 0, "STATFS of all targets");
	if (rc == 0) {
		CHECK_EQ(n, 2);
		for (unsigned i = 0; i < n && i < 2; i++) {
			CHECK_EQ(sp[i].target_id, i + 1);
			CHECK(sp[i].online);
		}
	}
	check_a("unknown target ids");
	for (unsigned t = 1; t <= 2; t++)
		check_absent(t, NEW_INODE, 0, "unknown target ids");
	still_serving("unknown target ids");
}

static void case_missing_chunk(void)
{
	struct tstor_range r[3] = {
		{A_INODE, 0, 0, 100}, {NEW_INODE, 0, 0, 100}, {A_INODE, 0, 500, 50}};
	struct tstor_read_result res[3];
	uint8_t buf[250];
	bool existed = true;
	int rc;

	scenario("g) reads and removes of missing chunks");
	rc = tstor_batch_read(&cl, 1, r, 3, buf, sizeof(buf), res);
	EXPECT_RC(rc, 0, "BATCH_READ of A, a missing chunk, A");
	if (rc == 0) {
		EXPECT_RC(res[0].status, 0, "range 0 (chunk A)");
		EXPECT_RC(res[1].status, -ENOENT, "range 1 (missing chunk)");
		EXPECT_RC(res[2].status, 0, "range 2 (chunk A)");
		CHECK_EQ(res[0].length, 100);
		CHECK_EQ(res[2].length, 50);
		CHECK(res[0].data && memcmp(res[0].data, a_data, 100) == 0);
		CHECK(res[2].data && memcmp(res[2].data, a_data + 500, 50) == 0);
	}
	r[0] = (struct tstor_range){NEW_INODE, 3, 0, KiB64};
	rc = tstor_batch_read(&cl, 2, r, 1, rbuf, KiB64, res);
	EXPECT_RC(rc, 0, "BATCH_READ of a missing chunk on target 2");
	if (rc == 0)
		EXPECT_RC(res[0].status, -ENOENT, "its range");
	rc = tstor_remove(&cl, 1, NEW_INODE, 5, &existed);
	EXPECT_RC(rc, 0, "REMOVE of a missing chunk");
	CHECK(!existed);
	rc = tstor_truncate(&cl, 1, NEW_INODE, 6, KiB64, 0, NULL);
	EXPECT_RC(rc, 0, "TRUNCATE of a missing chunk to 0");
	check_absent(1, NEW_INODE, 6, "TRUNCATE of a missing chunk to 0");
	still_serving("reads of missing chunks");
}

/* A batch read the daemon may refuse or answer; if it answers, the answer must hold. */
static void odd_read(const char *what, const struct tstor_range *r, unsigned n,
		     const uint8_t *expect_base, size_t cap)
{
	struct tstor_read_result *res = calloc(n, sizeof(*res));
	uint64_t t0 = tstor_now_ms();
	size_t total = 0, ok = 0;
	int rc;

	ASSERT(res);
	rc = tstor_batch_read(&cl, 1, r, n, rbuf, cap, res);
	if (rc != 0) {
		EXPECT_ERR(rc, what);
		free(res);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (res[i].status != 0)
			continue;
		ok++;
		total += res[i].length;
		if (expect_base && memcmp(res[i].data, expect_base + r[i].offset, res[i].length)) {
			fprintf(stderr, "FAIL: %s: range %u returned wrong bytes\n", what, i);
			test_failures++;
			break;
		}
	}
	if (total > SLUICE_FRAME_BULK_MAX) {
		fprintf(stderr, "FAIL: %s: %zu bytes answered, over the frame bulk limit\n", what,
			total);
		test_failures++;
	}
	printf("  %s: answered, %zu of %u ranges ok, %zu bytes, %" PRIu64 " ms\n", what, ok, n,
	       total, tstor_now_ms() - t0);
	free(res);
}

static void case_oversized_read(void)
{
	struct tstor_range two[2] = {{BIG_INODE, 0, 0, BIG}, {BIG_INODE, 0, 0, BIG}};
	struct tstor_range *many = calloc(MANY_RANGES, sizeof(*many));
	struct tstor_chunk m;
	int rc;

	scenario("h) oversized batch reads");
	ASSERT(many);
	pattern_fill(big, BIG, 99);
	rc = tstor_write(&cl, 1, BIG_INODE, 0, BIG, 0, big, BIG, &m);
	EXPECT_RC(rc, 0, "WRITE of a whole 64 MiB chunk");
	if (rc == 0)
		CHECK_EQ(m.length, BIG);
	odd_read("BATCH_READ of a 64 MiB chunk twice (128 MiB)", two, 2, big, 2ull * BIG);
	for (unsigned i = 0; i < MANY_RANGES; i++)
		many[i] = (struct tstor_range){A_INODE, 0, i % A_LEN, 1};
	odd_read("BATCH_READ of 30000 one-byte ranges", many, MANY_RANGES, a_data, MANY_RANGES);
	many[0] = (struct tstor_range){A_INODE, 0, 0, 128u * SLUICE_MiB};
	odd_read("BATCH_READ of 128 MiB from a 64 KiB chunk", many, 1, a_data, 2ull * BIG);
	many[0] = (struct tstor_range){A_INODE, 0, 2 * KiB64, 100};
	odd_read("BATCH_READ at offset 128 KiB of a 64 KiB chunk", many, 1, NULL, 100);
	free(many);
	check_a("oversized reads");
	still_serving("oversized reads");
}

static void case_truncate_range(void)
{
	uint32_t removed = 99;
	bool more = true;
	int rc;

	scenario("i) TRUNCATE past chunk_size, REMOVE_RANGE with begin > end");
	EXPECT_RC(tstor_truncate(&cl, 1, A_INODE, 0, KiB64, KiB64 + 1, NULL), -EINVAL,
		  "TRUNCATE of chunk A to 64 KiB + 1");
	EXPECT_RC(tstor_truncate(&cl, 1, NEW_INODE, 0, KiB64, UINT32_MAX, NULL), -EINVAL,
		  "TRUNCATE of a new chunk to 2^32-1");
	check_absent(1, NEW_INODE, 0, "TRUNCATE past chunk_size");
	rc = tstor_remove_range(&cl, 1, A_INODE + 1, 0, A_INODE, 0, 0, &removed, &more);
	if (rc == 0) {
		CHECK_EQ(removed, 0);
		CHECK(!more);
	} else {
		EXPECT_ERR(rc, "REMOVE_RANGE with begin > end");
	}
	rc = tstor_remove_range(&cl, 1, A_INODE, 1, A_INODE, 1, 0, &removed, &more);
	EXPECT_RC(rc, 0, "REMOVE_RANGE with begin == end");
	if (rc == 0)
		CHECK_EQ(removed, 0);
	check_a("TRUNCATE past chunk_size and empty REMOVE_RANGEs");
	still_serving("TRUNCATE past chunk_size and empty REMOVE_RANGEs");
}

static void case_fault_inject(const char *bin)
{
	struct tstor_daemon d2;
	struct tstor_client c2;
	uint8_t w[8192], r[8192];
	uint32_t len = 0;
	int rc;

	scenario("j) FAULT_INJECT: unknown site or target; refused without debug.fault_injection");
	EXPECT_ERR(tstor_fault_inject(&cl, 1, "no_such_site", 1),
		   "FAULT_INJECT of an unknown site");
	EXPECT_ERR(tstor_fault_inject(&cl, 42, "disk_eio", 1), "FAULT_INJECT on target 42");
	check_a("refused FAULT_INJECTs");
	still_serving("refused FAULT_INJECTs");

	rc = tstor_daemon_init(&d2, bin, "badinput-nofi", 1);
	CHECK_RC(rc, 0);
	if (rc)
		return;
	tstor_daemon_set(&d2, "debug.fault_injection=false");
	rc = tstor_daemon_start(&d2);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_client_start(&c2, &d2);
	if (rc == 0) {
		rc = tstor_fault_inject(&c2, 1, "disk_eio", 0);
		if (!remote_error(rc)) {
			fprintf(stderr,
				"FAIL: FAULT_INJECT without debug.fault_injection: %s (%d)\n",
				sluice_errname(rc), rc);
			test_failures++;
		} else {
			printf("  FAULT_INJECT without debug.fault_injection: %s (%s)\n",
			       sluice_errname(rc), c2.detail);
		}
		pattern_fill(w, sizeof(w), 3);
		rc = tstor_write(&c2, 1, 5, 0, KiB64, 0, w, sizeof(w), NULL);
		if (rc == 0)
			rc = tstor_read_chunk(&c2, 1, 5, 0, KiB64, r, &len);
		CHECK_RC(rc, 0);
		CHECK(len == sizeof(w) && memcmp(w, r, sizeof(w)) == 0);
		tstor_client_stop(&c2);
	}
	tstor_daemon_finish(&d2, test_failures == 0);
}

int main(int argc, char **argv)
{
	const char *bin = tstor_daemon_path(argc, argv);
	int rc;

	big = malloc(BIG);
	rbuf = malloc(2ull * BIG);
	ASSERT(big && rbuf);
	rc = tstor_daemon_init(&dmn, bin, "badinput", 2);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_daemon_start(&dmn);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_client_start(&cl, &dmn);
	if (rc == 0) {
		pattern_fill(a_data, A_LEN, 1234);
		rc = tstor_write(&cl, 1, A_INODE, 0, KiB64, 0, a_data, A_LEN, &a_meta);
		CHECK_RC(rc, 0);
		CHECK_EQ(a_meta.crc, crc32c(0, a_data, A_LEN));
	}
	if (rc == 0) {
		case_past_end();
		case_zero_length();
		case_chunk_size();
		case_bulk_length();
		case_bad_crc();
		case_bad_target();
		case_missing_chunk();
		case_oversized_read();
		case_truncate_range();
		case_fault_inject(bin);
		/* Everything refused must still be refused, and A intact, after a restart. */
		scenario("after a restart");
		rc = tstor_daemon_restart(&dmn, SIGTERM);
		CHECK_RC(rc, 0);
		check_a("a restart");
		check_absent(1, NEW_INODE, 0, "a restart");
		still_serving("a restart");
	}
	tstor_client_stop(&cl);
	tstor_daemon_finish(&dmn, test_failures == 0);
	free(big);
	free(rbuf);
	return test_result();
}
