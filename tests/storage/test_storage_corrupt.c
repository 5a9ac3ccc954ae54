/*
 * test_storage_corrupt.c - sluice-storage never returns bad bytes: corrupted sectors read
 * as -SLUICE_ECHECKSUM, and a disk I/O error takes only its own target offline.
 *
 * Chunks on target 1: X (1 MiB, full), Y (64 KiB chunk, 40000 bytes), Z (1 MiB chunk,
 * 700000 bytes), W (64 KiB, full); on target 2: V (1 MiB, full), U (64 KiB, 30000 bytes).
 *
 *   a) stopped daemon: one byte of X's block is flipped in its data file (the position comes
 *      from LIST_CHUNKS: DIR/t1/data/c<k>.<file> at block * block_size), then restart.
 *      A range touching the bad 4 KiB sector reads -SLUICE_ECHECKSUM, also inside a batch
 *      whose other ranges (Y, and X away from the bad sector) are served; a whole read of
 *      X fails the same way; Y, V, U read back exactly; QUERY_CHUNKS still reports X's
 *      original CRC; X's ranges away from the bad sector read either their exact bytes or
 *      -SLUICE_ECHECKSUM (never other bytes). The target stays online.
 *   b) running daemon: Z's first sector is corrupted under it; reading it gives
 *      -SLUICE_ECHECKSUM.
 *   c) running daemon: W's sector 10 is corrupted, then a partial write elsewhere in W
 *      (a read-modify-write): either the write fails, or it succeeds - and then every sector
 *      of W reads either the exact expected bytes or -SLUICE_ECHECKSUM; the bad sector must
 *      not come back "repaired" with the corrupt bytes under a fresh CRC.
 *   d) a whole-chunk overwrite of X succeeds and reads back; removing Z works; after a
 *      restart all of the above still holds.
 *   e) FAULT_INJECT disk_eio (count 1) on target 1, then a write to Y: it fails; target 1
 *      is then offline - its writes, reads, truncates and removes fail with
 *      -SLUICE_ETARGET_OFFLINE and STATFS shows online = false with a reason - while
 *      target 2 keeps serving every operation with its data intact and the daemon keeps
 *      running. After a restart target 1 is online again and Y holds its last acknowledged
 *      content.
 *
 * Usage: test_storage_corrupt PATH_TO_sluice-storage.
 *
 * THREADS: main (synchronous calls); the client's reactor thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "tests/storage/storclient.h"

#define KiB64  (64u * SLUICE_KiB)
#define MiB    SLUICE_MiB
#define SECTOR 4096u

struct tchunk {
	const char *name;
	unsigned target;
	uint64_t inode;
	uint32_t cs, len;
	uint8_t *data; /* cs bytes, expected content */
	uint32_t crc;
};

enum { X, Y, Z, W, V, U, NCH };

static struct tchunk ch[NCH] = {
	[X] = {"X", 1, 11, MiB, MiB, NULL, 0},	  [Y] = {"Y", 1, 12, KiB64, 40000, NULL, 0},
	[Z] = {"Z", 1, 13, MiB, 700000, NULL, 0}, [W] = {"W", 1, 14, KiB64, KiB64, NULL, 0},
	[V] = {"V", 2, 21, MiB, MiB, NULL, 0},	  [U] = {"U", 2, 22, KiB64, 30000, NULL, 0},
};

static struct tstor_daemon dmn;
static struct tstor_client cl;
static uint8_t *rbuf;

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

static void write_chunk(struct tchunk *c, uint64_t seed)
{
	struct tstor_chunk m;
	int rc;

	pattern_fill(c->data, c->len, seed);
	rc = tstor_write(&cl, c->target, c->inode, 0, c->cs, 0, c->data, c->len, &m);
	if (rc != 0)
		FAIL("write of %s: %s (%d) %s", c->name, sluice_errname(rc), rc, cl.detail);
	c->crc = crc32c(0, c->data, c->len);
}

/* Whole chunk reads back exactly. */
static void expect_intact(const struct tchunk *c, const char *when)
{
	uint32_t len = 0;
	int rc = tstor_read_chunk(&cl, c->target, c->inode, 0, c->cs, rbuf, &len);

	if (rc != 0 || len != c->len || memcmp(rbuf, c->data, len) != 0)
		FAIL("%s: chunk %s: %s (%d), length %u of %u, first diff %ld", when, c->name,
		     sluice_errname(rc), rc, len, c->len,
		     rc == 0 ? tstor_memdiff(rbuf, c->data, len < c->len ? len : c->len) : -1);
}

/* One range of c: -SLUICE_ECHECKSUM if must_fail, else exact bytes; if may_fail, either. */
static void expect_range(const struct tchunk *c, const struct tstor_read_result *r,
			 const struct tstor_range *q, bool must_fail, bool may_fail,
			 const char *when)
{
	uint32_t want = q->offset >= c->len ? 0 : c->len - q->offset;

	want = want < q->length ? want : q->length;
	if (r->status == -SLUICE_ECHECKSUM) {
		if (!must_fail && !may_fail)
			FAIL("%s: %s [%u, +%u) read -SLUICE_ECHECKSUM, but it is intact", when,
			     c->name, q->offset, q->length);
		else if (!must_fail)
			printf("  %s: %s [%u, +%u) away from the bad sector: ECHECKSUM too\n", when,
			       c->name, q->offset, q->length);
		return;
	}
	if (must_fail) {
		FAIL("%s: %s [%u, +%u) covers the corrupt sector but read %s (%d), length %u%s",
		     when, c->name, q->offset, q->length, sluice_errname(r->status), r->status,
		     r->length,
		     r->status == 0 && memcmp(r->data, c->data + q->offset, r->length) != 0
			     ? " - WRONG BYTES RETURNED"
			     : "");
		return;
	}
	if (r->status != 0 || r->length != want || memcmp(r->data, c->data + q->offset, want) != 0)
		FAIL("%s: %s [%u, +%u): %s (%d), length %u of %u%s", when, c->name, q->offset,
		     q->length, sluice_errname(r->status), r->status, r->length, want,
		     r->status == 0 && r->length == want ? " - WRONG BYTES RETURNED" : "");
}

/* Where byte off of chunk c lives: its data file and the offset in it (LIST_CHUNKS). */
struct pos {
	char path[PATH_MAX + 64];
	off_t at;
};

static int locate(const struct tchunk *c, uint32_t off, struct pos *p)
{
	struct tstor_chunk list[64];
	unsigned n = 0;
	int rc;

	rc = tstor_list(&cl, c->target, false, 0, 0, 0, list, SLUICE_ARRAY_SIZE(list), &n, NULL);
	if (rc != 0) {
		FAIL("LIST_CHUNKS t%u: %s (%d)", c->target, sluice_errname(rc), rc);
		return rc;
	}
	for (unsigned i = 0; i < n; i++) {
		if (list[i].inode != c->inode || list[i].index != 0)
			continue;
		if (!list[i].block_size || list[i].block_size < c->len) {
			FAIL("LIST_CHUNKS: %s has block_size %u", c->name, list[i].block_size);
			return -EINVAL;
		}
		tstor_data_path(&dmn, c->target, list[i].block_size, list[i].file, p->path,
				sizeof(p->path));
		p->at = (off_t)list[i].block * list[i].block_size + off;
		return 0;
	}
	FAIL("LIST_CHUNKS t%u does not list %s", c->target, c->name);
	return -ENOENT;
}

/* Flip byte off of c at p (checking first that the disk holds the expected byte). */
static int flip(const struct tchunk *c, uint32_t off, const struct pos *p)
{
	int fd = open(p->path, O_RDWR), rc;
	uint8_t b;

	if (fd < 0 || pread(fd, &b, 1, p->at) != 1) {
		FAIL("%s: %s", p->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	if (b != c->data[off])
		FAIL("%s byte %u on disk (%s offset %lld) is %#x, expected %#x: wrong position?",
		     c->name, off, p->path, (long long)p->at, b, c->data[off]);
	b ^= 0x5A;
	rc = pwrite(fd, &b, 1, p->at) == 1 && fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	printf("  corrupted %s at %u: %s offset %lld\n", c->name, off, p->path, (long long)p->at);
	return rc;
}

/* Corrupt byte off of c under the running daemon. */
static int corrupt(const struct tchunk *c, uint32_t off)
{
	struct pos p;
	int rc = locate(c, off, &p);

	return rc ? rc : flip(c, off, &p);
}

static int restart(int sig)
{
	int rc = tstor_daemon_restart(&dmn, sig);

	if (rc != 0)
		FAIL("restart after signal %d: %s (%d)", sig, sluice_errname(rc), rc);
	return rc;
}

/* ---- a) corrupted while stopped ------------------------------------------------------------ */

static void check_x_corrupt(const char *when, uint32_t bad)
{
	uint32_t bs = bad / SECTOR * SECTOR;
	struct tstor_range q[5] = {
		{ch[X].inode, 0, bs - 1000, 10000}, /* touches the bad sector */
		{ch[Y].inode, 0, 0, KiB64},	    /* another chunk */
		{ch[X].inode, 0, 0, 2 * SECTOR},    /* X far from the bad sector */
		{ch[X].inode, 0, bad, 1},	    /* exactly the bad byte */
		{ch[X].inode, 0, bs + 2 * SECTOR, 3 * SECTOR},
	};
	struct tstor_read_result r[5];
	struct tstor_chunk m;
	uint32_t len = 0;
	int rc;

	rc = tstor_batch_read(&cl, 1, q, 5, rbuf, 2 * MiB, r);
	if (rc != 0) {
		FAIL("%s: BATCH_READ with a corrupt range: the whole call failed: %s (%d) %s", when,
		     sluice_errname(rc), rc, cl.detail);
	} else {
		expect_range(&ch[X], &r[0], &q[0], true, false, when);
		expect_range(&ch[Y], &r[1], &q[1], false, false, when);
		expect_range(&ch[X], &r[2], &q[2], false, true, when);
		expect_range(&ch[X], &r[3], &q[3], true, false, when);
		expect_range(&ch[X], &r[4], &q[4], false, true, when);
	}
	rc = tstor_read_chunk(&cl, 1, ch[X].inode, 0, ch[X].cs, rbuf, &len);
	if (rc != -SLUICE_ECHECKSUM)
		FAIL("%s: whole read of corrupt X: %s (%d), length %u%s", when, sluice_errname(rc),
		     rc, len,
		     rc == 0 && memcmp(rbuf, ch[X].data, MiB) ? " - WRONG BYTES RETURNED" : "");
	rc = tstor_stat_chunk(&cl, 1, ch[X].inode, 0, &m);
	if (rc != 0 || m.crc != ch[X].crc || m.length != ch[X].len)
		FAIL("%s: QUERY_CHUNKS of X: %s (%d) crc %#x (want %#x) length %u", when,
		     sluice_errname(rc), rc, m.crc, ch[X].crc, m.length);
	for (unsigned i = 0; i < NCH; i++)
		if (i != X && i != Z && i != W)
			expect_intact(&ch[i], when);
}

static void check_online(unsigned t, bool want, const char *when)
{
	struct tstor_space sp;
	unsigned n = 0;
	int rc = tstor_statfs(&cl, t, &sp, 1, &n);

	if (rc != 0 || n != 1) {
		FAIL("%s: STATFS t%u: %s (%d)", when, t, sluice_errname(rc), rc);
		return;
	}
	if (sp.online != want)
		FAIL("%s: STATFS t%u: online %d, want %d (reason '%s')", when, t, sp.online, want,
		     sp.offline_reason);
	if (!sp.online && !sp.offline_reason[0])
		FAIL("%s: STATFS t%u: offline without a reason", when, t);
	if (!sp.online)
		printf("  t%u offline: %s\n", t, sp.offline_reason);
}

/* ---- c) read-modify-write over a corrupt sector ----------------------------------------- */

static void check_w(const uint8_t *before, const uint8_t *after, bool wrote, uint32_t bad)
{
	struct tstor_range q[KiB64 / SECTOR];
	struct tstor_read_result r[KiB64 / SECTOR];
	unsigned n = KiB64 / SECTOR;
	int rc;

	for (unsigned i = 0; i < n; i++)
		q[i] = (struct tstor_range){ch[W].inode, 0, i * SECTOR, SECTOR};
	rc = tstor_batch_read(&cl, 1, q, n, rbuf, KiB64, r);
	if (rc != 0) {
		FAIL("BATCH_READ of W by sector: %s (%d)", sluice_errname(rc), rc);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *want = (wrote ? after : before) + i * SECTOR;

		if (r[i].status == -SLUICE_ECHECKSUM)
			continue;
		if (i == bad / SECTOR) {
			FAIL("W sector %u was corrupted but reads %s (%d)%s after a %s partial "
			     "write",
			     i, sluice_errname(r[i].status), r[i].status,
			     r[i].status == 0 && memcmp(r[i].data, want, SECTOR) ? " WRONG BYTES"
										 : "",
			     wrote ? "successful" : "failed");
			continue;
		}
		if (r[i].status != 0 || r[i].length != SECTOR || memcmp(r[i].data, want, SECTOR))
			FAIL("W sector %u: %s (%d), length %u%s", i, sluice_errname(r[i].status),
			     r[i].status, r[i].length, r[i].status == 0 ? " WRONG BYTES" : "");
	}
}

static void case_rmw(void)
{
	uint8_t *before = malloc(KiB64), *after = malloc(KiB64), patch[100];
	const uint32_t bad = 10 * SECTOR + 77;
	int rc;

	scenario("c) partial write to a chunk with a corrupt sector (running daemon)");
	ASSERT(before && after);
	memcpy(before, ch[W].data, KiB64);
	if (corrupt(&ch[W], bad) != 0)
		goto out;
	pattern_fill(patch, sizeof(patch), 4242);
	memcpy(after, before, KiB64);
	memcpy(after + 1000, patch, sizeof(patch));
	rc = tstor_write(&cl, 1, ch[W].inode, 0, KiB64, 1000, patch, sizeof(patch), NULL);
	printf("  partial write to W: %s (%d)\n", sluice_errname(rc), rc);
	if (rc != 0 && rc != -SLUICE_ECHECKSUM)
		FAIL("partial write to W with a corrupt sector: %s (%d), want 0 or "
		     "-SLUICE_ECHECKSUM",
		     sluice_errname(rc), rc);
	check_w(before, after, rc == 0, bad);
	if (rc == 0)
		memcpy(ch[W].data, after, KiB64);
out:
	free(before);
	free(after);
}

/* ---- e) disk I/O error ------------------------------------------------------------------------
 */

static void expect_offline(int rc, const char *what)
{
	if (rc != -SLUICE_ETARGET_OFFLINE)
		FAIL("%s on offline target 1: %s (%d), want SLUICE_ETARGET_OFFLINE", what,
		     sluice_errname(rc), rc);
}

static void case_eio(void)
{
	uint8_t patch[100], *y_old = malloc(KiB64);
	struct tstor_range q = {ch[Y].inode, 0, 0, 1000};
	struct tstor_read_result r;
	struct tstor_chunk m;
	unsigned n = 0;
	uint32_t len = 0;
	int rc;

	scenario("e) FAULT_INJECT disk_eio on target 1");
	ASSERT(y_old);
	memcpy(y_old, ch[Y].data, KiB64);
	rc = tstor_fault_inject(&cl, 1, "disk_eio", 1);
	if (rc != 0) {
		FAIL("FAULT_INJECT disk_eio: %s (%d) %s", sluice_errname(rc), rc, cl.detail);
		free(y_old);
		return;
	}
	pattern_fill(patch, sizeof(patch), 99);
	rc = tstor_write(&cl, 1, ch[Y].inode, 0, KiB64, 0, patch, sizeof(patch), NULL);
	printf("  write to Y under disk_eio: %s (%d) %s\n", sluice_errname(rc), rc, cl.detail);
	if (rc == 0)
		FAIL("a write with a failing disk I/O was acknowledged");
	check_online(1, false, "after the I/O error");
	check_online(2, true, "after the I/O error on target 1");
	expect_offline(tstor_write(&cl, 1, ch[Y].inode, 0, KiB64, 0, patch, sizeof(patch), NULL),
		       "WRITE");
	rc = tstor_batch_read(&cl, 1, &q, 1, rbuf, sizeof(patch) * 10, &r);
	expect_offline(rc == 0 ? r.status : rc, "BATCH_READ");
	expect_offline(tstor_truncate(&cl, 1, ch[Y].inode, 0, KiB64, 10, NULL), "TRUNCATE");
	expect_offline(tstor_remove(&cl, 1, ch[Y].inode, 0, NULL), "REMOVE");
	expect_offline(tstor_write(&cl, 1, 999, 0, KiB64, 0, patch, sizeof(patch), NULL),
		       "WRITE of a new chunk");
	rc = tstor_stat_chunk(&cl, 1, ch[Y].inode, 0, &m);
	printf("  QUERY_CHUNKS on the offline target: %s\n", sluice_errname(rc));
	rc = tstor_list(&cl, 1, false, 0, 0, 0, &m, 1, &n, NULL);
	printf("  LIST_CHUNKS on the offline target: %s\n", sluice_errname(rc));

	/* Target 2 serves everything. */
	expect_intact(&ch[V], "target 2 while target 1 is offline");
	expect_intact(&ch[U], "target 2 while target 1 is offline");
	write_chunk(&ch[U], 777);
	expect_intact(&ch[U], "target 2 rewritten while target 1 is offline");
	rc = tstor_truncate(&cl, 2, ch[U].inode, 0, KiB64, 20000, &m);
	CHECK_RC(rc, 0);
	ch[U].len = 20000;
	memset(ch[U].data + 20000, 0, KiB64 - 20000);
	ch[U].crc = crc32c(0, ch[U].data, ch[U].len);
	CHECK(rc != 0 || m.crc == ch[U].crc);
	CHECK_RC(tstor_write(&cl, 2, 23, 0, KiB64, 0, patch, sizeof(patch), NULL), 0);
	CHECK_RC(tstor_remove(&cl, 2, 23, 0, NULL), 0);
	CHECK_RC(tstor_stat_chunk(&cl, 2, ch[V].inode, 0, &m), 0);
	expect_intact(&ch[U], "target 2 after updates while target 1 is offline");
	if (!tstor_daemon_alive(&dmn)) {
		FAIL("the daemon died after a disk I/O error");
		free(y_old);
		return;
	}

	scenario("e) restart: target 1 back online, Y as last acknowledged");
	if (restart(SIGTERM) == 0) {
		check_online(1, true, "after restart");
		rc = tstor_read_chunk(&cl, 1, ch[Y].inode, 0, KiB64, rbuf, &len);
		if (rc != 0 || len != ch[Y].len || memcmp(rbuf, y_old, len) != 0)
			FAIL("Y after the failed write and a restart: %s (%d), length %u of %u, "
			     "first diff %ld",
			     sluice_errname(rc), rc, len, ch[Y].len,
			     rc ? -1 : tstor_memdiff(rbuf, y_old, len));
		write_chunk(&ch[Y], 31337);
		expect_intact(&ch[Y], "Y rewritten after restart");
		expect_intact(&ch[V], "V after restart");
		expect_intact(&ch[U], "U after restart");
	}
	free(y_old);
}

int main(int argc, char **argv)
{
	const char *bin = tstor_daemon_path(argc, argv);
	const uint32_t x_bad = 300000, z_bad = 5;
	struct pos xpos;
	int rc;

	rbuf = malloc(2 * MiB);
	ASSERT(rbuf);
	for (unsigned i = 0; i < NCH; i++) {
		ch[i].data = calloc(1, ch[i].cs);
		ASSERT(ch[i].data);
	}
	rc = tstor_daemon_init(&dmn, bin, "corrupt", 2);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_daemon_start(&dmn);
	if (rc == 0)
		rc = tstor_client_start(&cl, &dmn);
	CHECK_RC(rc, 0);
	if (rc != 0)
		goto out;
	for (unsigned i = 0; i < NCH; i++)
		write_chunk(&ch[i], 1000 + i);
	for (unsigned i = 0; i < NCH; i++)
		expect_intact(&ch[i], "freshly written");

	scenario("a) a byte of X flipped while the daemon is stopped");
	rc = locate(&ch[X], x_bad, &xpos);
	if (rc == 0 && tstor_daemon_stop(&dmn, SIGTERM) != 0)
		FAIL("SIGTERM did not stop the daemon cleanly");
	if (rc == 0)
		rc = flip(&ch[X], x_bad, &xpos);
	if (rc == 0) {
		rc = tstor_daemon_start(&dmn);
		if (rc != 0)
			FAIL("start after corrupting X: %s (%d)", sluice_errname(rc), rc);
	}
	if (rc == 0) {
		check_x_corrupt("X corrupt, after restart", x_bad);
		check_online(1, true, "after reading a corrupt sector");
	}

	scenario("b) Z corrupted under the running daemon");
	if (corrupt(&ch[Z], z_bad) == 0) {
		struct tstor_range q[2] = {{ch[Z].inode, 0, 0, SECTOR},
					   {ch[Z].inode, 0, 8 * SECTOR, SECTOR}};
		struct tstor_read_result r[2];

		rc = tstor_batch_read(&cl, 1, q, 2, rbuf, 2 * SECTOR, r);
		CHECK_RC(rc, 0);
		if (rc == 0) {
			expect_range(&ch[Z], &r[0], &q[0], true, false, "Z corrupt");
			expect_range(&ch[Z], &r[1], &q[1], false, true, "Z corrupt");
		}
	}
	case_rmw();

	scenario("d) overwrite X whole, remove Z, restart");
	write_chunk(&ch[X], 4444);
	expect_intact(&ch[X], "X rewritten");
	CHECK_RC(tstor_remove(&cl, 1, ch[Z].inode, 0, NULL), 0);
	if (restart(SIGKILL) == 0) {
		expect_intact(&ch[X], "X rewritten, after restart");
		expect_intact(&ch[Y], "Y after restart");
		expect_intact(&ch[V], "V after restart");
		expect_intact(&ch[U], "U after restart");
		check_online(1, true, "after restart");
	}
	case_eio();
out:
	tstor_client_stop(&cl);
	tstor_daemon_finish(&dmn, test_failures == 0);
	for (unsigned i = 0; i < NCH; i++)
		free(ch[i].data);
	free(rbuf);
	return test_result();
}
