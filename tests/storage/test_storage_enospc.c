/*
 * test_storage_enospc.c - sluice-storage when a target runs out of space: writes fail with
 * -ENOSPC, nothing acknowledged is lost, nothing half-written appears, and once chunks are
 * removed writes work again (also after a restart, which rebuilds the free-block map).
 *
 * Case 1, capacity cap (two targets, storage.capacity_bytes = 8 MiB, group 1 MiB): fill
 * target 1 with whole 1 MiB chunks until -ENOSPC, then with 64 KiB chunks until -ENOSPC.
 * Checks: it does fill (at least half the cap) and never beyond the cap; a refused write
 * leaves no chunk; STATFS reports the cap, used <= capacity and the chunk count; a full
 * overwrite of an acked chunk either succeeds or fails with -ENOSPC leaving the old bytes;
 * target 2 still takes writes; every acked chunk reads back byte for byte; removing three
 * 1 MiB chunks lets three new ones in; after SIGKILL + restart everything acked is intact
 * and remove-then-write still works; after REMOVE_RANGE of everything the target takes
 * as many 1 MiB chunks as at first.
 *
 * Case 2, a real small file system (root only, with mkfs.ext4 and a loop mount; otherwise
 * this case alone prints SKIP): a 64 MiB ext4 image mounted under the test dir holds the
 * target (storage.reserve_bytes = 8 MiB, no cap). Fill with 1 MiB then 64 KiB chunks until
 * -ENOSPC; the target stays online (metadata can still commit), every acked chunk reads
 * back, removes make room again, and a restart on the full file system succeeds with
 * everything intact. The mount is undone before the test dir is removed.
 *
 * Usage: test_storage_enospc PATH_TO_sluice-storage.
 *
 * THREADS: main (synchronous calls); the client's reactor thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "tests/storage/storclient.h"

#define KiB64	   (64u * SLUICE_KiB)
#define MiB	   SLUICE_MiB
#define CAP_BYTES  (8u * MiB)
#define FILL_MAX   256 /* writes per fill before declaring that -ENOSPC never came */
#define ACKED_MAX  2048
#define IMG_BYTES  (64u * MiB)
#define FS_MIN_MiB 16 /* a 64 MiB ext4 with an 8 MiB reserve must hold at least this */

struct achunk {
	unsigned target;
	uint64_t inode;
	uint32_t cs, len;
	uint64_t seed;
	bool live;
};

static struct tstor_client cl;
static struct achunk acked[ACKED_MAX];
static unsigned nacked;
static uint64_t next_inode = 100;
static uint8_t *buf, *rbuf;

#define FAIL(...)                                               \
	do {                                                    \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                   \
		fprintf(stderr, "\n");                          \
		test_failures++;                                \
	} while (0)

static void scenario(const char *name)
{
	printf("--- %s\n", name);
	fflush(stdout);
}

/* Write up to max whole chunks of size cs to target t, stopping at -ENOSPC: the number
 * acked, or -1 if something else went wrong (or, with want_full, -ENOSPC never came). */
static int write_chunks(unsigned t, uint32_t cs, unsigned max, bool want_full)
{
	for (unsigned i = 0; i < max; i++) {
		struct achunk *a = &acked[nacked];
		struct tstor_chunk m;
		int rc;

		ASSERT(nacked < ACKED_MAX);
		*a = (struct achunk){t, next_inode++, cs, cs, env_random_u64(), true};
		pattern_fill(buf, cs, a->seed);
		rc = tstor_write(&cl, t, a->inode, 0, cs, 0, buf, cs, &m);
		if (rc == -ENOSPC) {
			if (tstor_stat_chunk(&cl, t, a->inode, 0, &m) != -ENOENT)
				FAIL("a write refused with ENOSPC left chunk %" PRIu64
				     " (length %u)",
				     a->inode, m.length);
			return (int)i;
		}
		if (rc != 0) {
			FAIL("filling target %u with %u-byte chunks, write %u: %s (%d) %s", t, cs,
			     i, sluice_errname(rc), rc, cl.detail);
			return -1;
		}
		if (m.length != cs || m.crc != crc32c(0, buf, cs))
			FAIL("write of chunk %" PRIu64 ": reply length %u crc %#x", a->inode,
			     m.length, m.crc);
		nacked++;
	}
	if (!want_full)
		return (int)max;
	FAIL("target %u: no ENOSPC after %u writes of %u bytes", t, max, cs);
	return -1;
}

/* Write chunks of size cs to target t until -ENOSPC. */
static int fill(unsigned t, uint32_t cs, unsigned max)
{
	return write_chunks(t, cs, max, true);
}

static void verify_acked(const char *when)
{
	unsigned bad = 0, n = 0;

	for (unsigned i = 0; i < nacked; i++) {
		const struct achunk *a = &acked[i];
		uint32_t len = 0;
		int rc;

		if (!a->live)
			continue;
		n++;
		rc = tstor_read_chunk(&cl, a->target, a->inode, 0, a->cs, rbuf, &len);
		if (rc != 0 || len != a->len || pattern_check(rbuf, len, a->seed) >= 0) {
			if (bad++ < 10)
				FAIL("%s: acked chunk %" PRIu64
				     " on target %u: %s (%d), length %u of "
				     "%u, first bad byte %ld",
				     when, a->inode, a->target, sluice_errname(rc), rc, len, a->len,
				     rc ? -1 : pattern_check(rbuf, len, a->seed));
		}
	}
	printf("  %s: %u acked chunks checked, %u bad\n", when, n, bad);
}

static unsigned live_count(unsigned t, uint32_t cs)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nacked; i++)
		n += acked[i].live && acked[i].target == t && (!cs || acked[i].cs == cs);
	return n;
}

/* Remove up to n live chunks of size cs on t; how many. */
static unsigned remove_some(unsigned t, uint32_t cs, unsigned n)
{
	unsigned done = 0;

	for (unsigned i = 0; i < nacked && done < n; i++) {
		struct achunk *a = &acked[i];
		bool existed = false;
		int rc;

		if (!a->live || a->target != t || a->cs != cs)
			continue;
		rc = tstor_remove(&cl, t, a->inode, 0, &existed);
		if (rc != 0 || !existed) {
			FAIL("remove of chunk %" PRIu64 ": %s (%d), existed %d", a->inode,
			     sluice_errname(rc), rc, existed);
			continue;
		}
		a->live = false;
		done++;
	}
	return done;
}

static bool statfs_one(unsigned t, struct tstor_space *sp)
{
	unsigned n = 0;
	int rc = tstor_statfs(&cl, t, sp, 1, &n);

	if (rc != 0 || n != 1 || sp->target_id != t) {
		FAIL("STATFS of target %u: %s (%d), %u entries", t, sluice_errname(rc), rc, n);
		return false;
	}
	printf("  t%u: online %d capacity %" PRIu64 " used %" PRIu64 " allocated %" PRIu64
	       " free %" PRIu64 " chunks %" PRIu64 "\n",
	       t, sp->online, sp->capacity_bytes, sp->used_bytes, sp->allocated_bytes,
	       sp->free_bytes, sp->chunks);
	return true;
}

/* A full overwrite of an acked chunk on a full target: new bytes, or -ENOSPC and old. */
static void overwrite_when_full(unsigned t)
{
	for (unsigned i = 0; i < nacked; i++) {
		struct achunk *a = &acked[i];
		uint64_t s = env_random_u64();
		int rc;

		if (!a->live || a->target != t)
			continue;
		pattern_fill(buf, a->cs, s);
		rc = tstor_write(&cl, t, a->inode, 0, a->cs, 0, buf, a->cs, NULL);
		printf("  full overwrite on a full target: %s\n", sluice_errname(rc));
		if (rc == 0)
			a->seed = s;
		else if (rc != -ENOSPC)
			FAIL("full overwrite of chunk %" PRIu64 ": %s (%d)", a->inode,
			     sluice_errname(rc), rc);
		return;
	}
}

/* Remove k chunks of size cs on t, then k new ones must fit. */
static void remove_then_write(unsigned t, uint32_t cs, unsigned k, const char *when)
{
	unsigned removed = remove_some(t, cs, k);
	int got;

	if (removed != k) {
		FAIL("%s: removed %u of %u chunks", when, removed, k);
		return;
	}
	got = fill(t, cs, k + 1 + FILL_MAX / 8);
	if (got < (int)k)
		FAIL("%s: after removing %u chunks of %u bytes only %d new ones fit", when, k, cs,
		     got);
	else
		printf("  %s: removed %u, then %d fit\n", when, k, got);
}

/* ---- case 1: capacity cap --------------------------------------------------------------- */

static void case_cap(const char *bin)
{
	struct tstor_daemon d;
	struct tstor_space sp;
	unsigned big_first, small;
	uint64_t used = 0;
	int rc, n;

	scenario("case 1: storage.capacity_bytes = 8 MiB");
	nacked = 0;
	rc = tstor_daemon_init(&d, bin, "enospc-cap", 2);
	CHECK_RC(rc, 0);
	if (rc)
		return;
	tstor_daemon_set(&d, "storage.capacity_bytes=8MiB");
	tstor_daemon_set(&d, "storage.group_bytes=1MiB");
	rc = tstor_daemon_start(&d);
	if (rc == 0)
		rc = tstor_client_start(&cl, &d);
	CHECK_RC(rc, 0);
	if (rc)
		goto out;
	n = fill(1, MiB, FILL_MAX);
	if (n < 0)
		goto out;
	big_first = (unsigned)n;
	n = fill(1, KiB64, FILL_MAX);
	if (n < 0)
		goto out;
	small = (unsigned)n;
	printf("  filled: %u chunks of 1 MiB, then %u of 64 KiB\n", big_first, small);
	for (unsigned i = 0; i < nacked; i++)
		used += acked[i].cs;
	if (used > CAP_BYTES)
		FAIL("%" PRIu64 " bytes of chunks acked on a target capped at %u", used, CAP_BYTES);
	if (big_first < CAP_BYTES / MiB / 2)
		FAIL("only %u chunks of 1 MiB fit under an 8 MiB cap", big_first);
	if (statfs_one(1, &sp)) {
		CHECK_EQ(sp.capacity_bytes, CAP_BYTES);
		CHECK(sp.used_bytes <= sp.capacity_bytes);
		CHECK(sp.used_bytes >= used);
		CHECK_EQ(sp.chunks, nacked);
		CHECK(sp.online);
	}
	overwrite_when_full(1);
	if (write_chunks(2, MiB, 2, false) != 2) /* target 2 has a cap of its own */
		FAIL("target 2 did not take two writes while target 1 was full");
	verify_acked("full");
	remove_then_write(1, MiB, 3, "after removing three 1 MiB chunks");
	verify_acked("after remove and refill");

	scenario("case 1: SIGKILL and restart while full");
	rc = tstor_daemon_restart(&d, SIGKILL);
	CHECK_RC(rc, 0);
	verify_acked("after restart");
	if (statfs_one(1, &sp))
		CHECK_EQ(sp.chunks, live_count(1, 0));
	CHECK_EQ(fill(1, MiB, 4), 0); /* still full */
	remove_then_write(1, MiB, 2, "after restart, removing two 1 MiB chunks");
	verify_acked("after restart, remove and refill");

	scenario("case 1: remove everything, fill again");
	{
		uint32_t removed, total = 0;
		bool more = true;

		for (unsigned i = 0; more && i < 1000; i++) {
			rc = tstor_remove_range(&cl, 1, 0, 0, UINT64_MAX, UINT32_MAX, 0, &removed,
						&more);
			if (rc != 0) {
				FAIL("REMOVE_RANGE of all: %s (%d)", sluice_errname(rc), rc);
				break;
			}
			total += removed;
		}
		CHECK_EQ(total, live_count(1, 0));
		for (unsigned i = 0; i < nacked; i++)
			if (acked[i].target == 1)
				acked[i].live = false;
	}
	if (statfs_one(1, &sp)) {
		CHECK_EQ(sp.chunks, 0);
		CHECK_EQ(sp.used_bytes, 0);
	}
	n = fill(1, MiB, FILL_MAX);
	if (n >= 0 && (unsigned)n < big_first)
		FAIL("after removing everything %d chunks of 1 MiB fit, %u at first", n, big_first);
	verify_acked("refilled");
out:
	tstor_client_stop(&cl);
	tstor_daemon_finish(&d, test_failures == 0);
}

/* ---- case 2: a small real file system ----------------------------------------------------- */

/* Run a shell command line (paths from mkdtemp: no quoting needed); 0 if it exited 0. */
__attribute__((format(printf, 1, 2))) static int run_cmd(const char *fmt, ...)
{
	char cmd[3 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

static void case_fs(const char *bin)
{
	char img[1100], mnt[1100]; /* dir (< 1024) + a short name */
	struct tstor_daemon d;
	struct tstor_space sp;
	bool mounted = false;
	int rc, big_n, small_n, more;
	uint64_t free_mib;

	scenario("case 2: a 64 MiB ext4 file system (loop mount)");
	if (geteuid() != 0 || run_cmd("(command -v mkfs.ext4 && command -v losetup && command -v "
				      "mount) >/dev/null") != 0) {
		printf("SKIP case 2: needs root, mkfs.ext4 and losetup\n");
		return;
	}
	nacked = 0;
	rc = tstor_daemon_init(&d, bin, "enospc-fs", 1);
	CHECK_RC(rc, 0);
	if (rc)
		return;
	snprintf(img, sizeof(img), "%s/fs.img", d.dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", d.dir);
	if (mkdir(mnt, 0755) != 0) {
		FAIL("mkdir %s: %s", mnt, strerror(errno));
		tstor_daemon_finish(&d, false);
		return;
	}
	if (run_cmd("truncate -s %u %s && mkfs.ext4 -q -F %s >/dev/null 2>&1", IMG_BYTES, img,
		    img) != 0 ||
	    run_cmd("mount -o loop %s %s 2>/dev/null", img, mnt) != 0) {
		printf("SKIP case 2: cannot make or loop-mount an ext4 image here\n");
		tstor_daemon_finish(&d, true);
		return;
	}
	mounted = true;
	snprintf(d.target_paths[0], sizeof(d.target_paths[0]), "%s/t1", mnt);
	tstor_daemon_set(&d, "storage.reserve_bytes=8MiB");
	tstor_daemon_set(&d, "storage.group_bytes=4MiB");
	rc = tstor_daemon_start(&d);
	if (rc == 0)
		rc = tstor_client_start(&cl, &d);
	CHECK_RC(rc, 0);
	if (rc)
		goto out;
	big_n = fill(1, MiB, FILL_MAX);
	small_n = big_n >= 0 ? fill(1, KiB64, FILL_MAX) : -1;
	printf("  filled: %d chunks of 1 MiB, then %d of 64 KiB\n", big_n, small_n);
	if (big_n >= 0 && big_n < FS_MIN_MiB)
		FAIL("only %d chunks of 1 MiB fit a 64 MiB ext4 with an 8 MiB reserve", big_n);
	if (statfs_one(1, &sp)) {
		CHECK(sp.online);
		CHECK_EQ(sp.chunks, nacked);
	}
	overwrite_when_full(1);
	verify_acked("file system full");
	remove_then_write(1, MiB, 3, "removing three 1 MiB chunks");
	verify_acked("after remove and refill");
	scenario("case 2: SIGTERM and restart on the full file system");
	rc = tstor_daemon_restart(&d, SIGTERM);
	CHECK_RC(rc, 0);
	verify_acked("after restart");
	if (statfs_one(1, &sp)) {
		CHECK(sp.online);
		/* free_bytes is "what new chunks can still get": if it promises several MiB, at
		 * least some 1 MiB chunks must fit (half, allowing for metadata growth). */
		free_mib = sp.free_bytes / MiB;
		more = fill(1, MiB, FILL_MAX);
		printf("  after restart: STATFS free %" PRIu64 " MiB, then %d chunks of 1 MiB "
		       "fit\n",
		       free_mib, more);
		if (more >= 0 && free_mib >= 4 && (uint64_t)more < free_mib / 2)
			FAIL("after restart STATFS says %" PRIu64 " MiB free but only %d chunks of "
			     "1 MiB fit",
			     free_mib, more);
		verify_acked("after restart and refill");
	}
	remove_then_write(1, MiB, 2, "after restart, removing two 1 MiB chunks");
	verify_acked("after restart, remove and refill");
out:
	tstor_client_stop(&cl);
	if (d.pid)
		(void)tstor_daemon_stop(&d, SIGKILL); /* the mount must be free before umount */
	if (mounted && run_cmd("umount %s", mnt) != 0) {
		FAIL("umount %s failed: leaving the test dir", mnt);
		tstor_daemon_finish(&d, false);
		return;
	}
	tstor_daemon_finish(&d, test_failures == 0);
}

int main(int argc, char **argv)
{
	const char *bin = tstor_daemon_path(argc, argv);

	buf = malloc(MiB);
	rbuf = malloc(MiB);
	ASSERT(buf && rbuf);
	case_cap(bin);
	case_fs(bin);
	free(buf);
	free(rbuf);
	return test_result();
}
