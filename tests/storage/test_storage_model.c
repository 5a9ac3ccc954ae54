/*
 * test_storage_model.c - sluice-storage against an in-memory model of its chunks.
 *
 * One daemon with two targets; 50 chunks: inodes 1001..1005 (chunk sizes 64 KiB, 1 MiB,
 * 128 KiB, 64 KiB, 1 MiB) x indexes 0..9, chunk (inode, index) on target 1 + index % 2. A
 * seeded random sequence of operations runs against the daemon and the model at once:
 *   - WRITE: whole chunk, overwrite inside the content, append at the end, write past the
 *     end (the gap must read as zeros), anywhere; lengths from 1 byte to the chunk size,
 *     aligned and not;
 *   - TRUNCATE: shrink (to 0 too), grow (zero-extend), of missing chunks (created only
 *     when length > 0);
 *   - REMOVE (existed must match) and REMOVE_RANGE over random id ranges of one target with
 *     small max_chunks, called until !more, removed counts adding up to the model's;
 *   - BATCH_READ of 1-6 random ranges (existing and missing chunks, past the end).
 * Each update's reply is checked: the chunk's length, chunk_size, CRC32C of the model
 * content, commit_ver growing, update_ver == commit_ver. Every VERIFY_EVERY operations, at
 * the end, and after each restart (SIGTERM + start at 1/3, SIGKILL + start at 2/3 - acked
 * updates must survive both), everything is checked: LIST_CHUNKS of each target and
 * QUERY_CHUNKS of each inode (also paged with a small limit) list exactly the model's
 * chunks with their lengths, CRCs, versions and sane positions; every chunk is read back
 * whole through batch reads of several ranges across chunks, compared byte for byte (and
 * its CRC recomputed), and a missing chunk reads -ENOENT.
 *
 * Usage: test_storage_model PATH_TO_sluice-storage [SEED [OPS]]; SLUICE_TEST_SEED also
 * sets the seed. A failure prints the seed and the op number.
 *
 * THREADS: main drives everything with synchronous calls; the client's reactor thread.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "tests/storage/storclient.h"

#define NTARGETS      2
#define NINODES	      5
#define NINDEX	      10
#define NCHUNKS	      (NINODES * NINDEX)
#define INODE0	      1001
#define OPS_DEFAULT   3000
#define VERIFY_EVERY  250
#define READ_BATCH    (6u * SLUICE_MiB) /* bytes asked per verification batch */
#define FAILS_MAX     40		/* stop early once this many checks failed */
#define QUERY_LIMIT   3			/* paged QUERY_CHUNKS */
#define RANGE_ITERS   200		/* REMOVE_RANGE calls per op before giving up */
#define MISSING_INODE 999999

static const uint32_t inode_chunk_size[NINODES] = {64u * SLUICE_KiB, SLUICE_MiB, 128u * SLUICE_KiB,
						   64u * SLUICE_KiB, SLUICE_MiB};

struct mchunk {
	uint64_t inode;
	uint32_t index, chunk_size;
	unsigned target;
	bool exists;
	uint32_t len;
	uint64_t commit_ver; /* from the last update reply; 0 = not known yet */
	uint8_t *data;	     /* chunk_size bytes, zero past len */
};

static struct tstor_daemon daemon_;
static struct tstor_client cl;
static struct mchunk chunks[NCHUNKS];
static struct tstor_rng rng;
static uint64_t seed;
static unsigned long op_no;
static uint8_t *scratch, *readbuf;

#define FAIL(...)                                                                                 \
	do {                                                                                      \
		fprintf(stderr, "%s:%d: op %lu (seed %#" PRIx64 "): ", __FILE__, __LINE__, op_no, \
			seed);                                                                    \
		fprintf(stderr, __VA_ARGS__);                                                     \
		fprintf(stderr, "\n");                                                            \
		test_failures++;                                                                  \
	} while (0)

static struct mchunk *chunk_at(unsigned i, unsigned j)
{
	return &chunks[i * NINDEX + j];
}

static uint32_t model_crc(const struct mchunk *m)
{
	return crc32c(0, m->data, m->len);
}

static const char *cname(const struct mchunk *m)
{
	static char s[64];

	snprintf(s, sizeof(s), "chunk %" PRIu64 "/%u (t%u, cs %u)", m->inode, m->index, m->target,
		 m->chunk_size);
	return s;
}

/* Roughly log-uniform length in [1, max]. */
static uint32_t rand_len(uint32_t max)
{
	unsigned bits = 32 - (unsigned)__builtin_clz(max);
	uint32_t v = (uint32_t)tstor_rng_below(&rng, 1ull << (1 + tstor_rng_below(&rng, bits)));

	if (tstor_rng_below(&rng, 4) == 0) /* sector-aligned lengths are a common case */
		v &= ~4095u;
	v = v ? v : 1;
	return v > max ? max : v;
}

/* ---- checking replies ------------------------------------------------------------------- */

static void check_meta(const struct mchunk *m, const struct tstor_chunk *got, const char *what)
{
	if (got->inode != m->inode || got->index != m->index)
		FAIL("%s %s: reply names chunk %" PRIu64 "/%u", what, cname(m), got->inode,
		     got->index);
	if (got->length != m->len)
		FAIL("%s %s: length %u, model %u", what, cname(m), got->length, m->len);
	if (got->chunk_size != m->chunk_size)
		FAIL("%s %s: chunk_size %u", what, cname(m), got->chunk_size);
	if (got->crc != model_crc(m))
		FAIL("%s %s: crc %#x, CRC32C of the model content %#x (length %u)", what, cname(m),
		     got->crc, model_crc(m), m->len);
	if (got->update_ver != got->commit_ver)
		FAIL("%s %s: update_ver %" PRIu64 " != commit_ver %" PRIu64 " with nothing pending",
		     what, cname(m), got->update_ver, got->commit_ver);
}

/* After an update reply: versions grow (or stay, for a no-op: may_stay); remember
 * commit_ver. */
static void check_update(struct mchunk *m, int rc, const struct tstor_chunk *got, const char *what,
			 bool may_stay)
{
	if (rc != 0) {
		FAIL("%s %s: %s (%d) %s", what, cname(m), sluice_errname(rc), rc, cl.detail);
		return;
	}
	check_meta(m, got, what);
	if (got->commit_ver < 1 ||
	    (m->commit_ver && got->commit_ver < m->commit_ver + (may_stay ? 0 : 1)))
		FAIL("%s %s: commit_ver %" PRIu64 " after %" PRIu64, what, cname(m),
		     got->commit_ver, m->commit_ver);
	m->commit_ver = got->commit_ver;
}

/* ---- operations ----------------------------------------------------------------------------- */

static void op_write(struct mchunk *m)
{
	uint32_t cs = m->chunk_size, len = m->exists ? m->len : 0, off, n;
	struct tstor_chunk got;
	unsigned kind = (unsigned)tstor_rng_below(&rng, 10);
	int rc;

	if (kind == 0) { /* whole chunk */
		off = 0;
		n = cs;
	} else if (kind <= 3 && len > 0) { /* overwrite inside */
		off = (uint32_t)tstor_rng_below(&rng, len);
		n = rand_len(len - off);
	} else if (kind <= 6 && len < cs) { /* append at the end */
		off = len;
		n = rand_len(cs - len);
	} else if (kind == 7 && len + 1 < cs) { /* past the end: a gap of zeros */
		off = len + 1 + (uint32_t)tstor_rng_below(&rng, cs - len - 1);
		n = rand_len(cs - off);
	} else { /* anywhere */
		off = (uint32_t)tstor_rng_below(&rng, cs);
		if (tstor_rng_below(&rng, 2))
			off &= ~4095u;
		n = rand_len(cs - off);
	}
	pattern_fill(scratch, n, tstor_rng_next(&rng));
	rc = tstor_write(&cl, m->target, m->inode, m->index, cs, off, scratch, n, &got);
	if (rc == 0) {
		memcpy(m->data + off, scratch, n);
		if (!m->exists)
			m->commit_ver = 0;
		m->exists = true;
		if (off + n > m->len)
			m->len = off + n;
	}
	check_update(m, rc, &got, "WRITE", false);
}

static void op_truncate(struct mchunk *m)
{
	uint32_t cs = m->chunk_size, len = m->exists ? m->len : 0, to;
	unsigned kind = (unsigned)tstor_rng_below(&rng, 10);
	struct tstor_chunk got;
	bool same;
	int rc;

	if (kind == 0)
		to = 0;
	else if (kind <= 4 && len > 0)
		to = (uint32_t)tstor_rng_below(&rng, len);
	else if (kind == 5)
		to = cs;
	else
		to = len + (uint32_t)tstor_rng_below(&rng, cs - len + 1);
	rc = tstor_truncate(&cl, m->target, m->inode, m->index, cs, to, &got);
	if (rc != 0) {
		FAIL("TRUNCATE %s to %u: %s (%d) %s", cname(m), to, sluice_errname(rc), rc,
		     cl.detail);
		return;
	}
	if (!m->exists && to == 0) { /* a missing chunk stays missing */
		if (got.chunk_size != 0)
			FAIL("TRUNCATE of missing %s to 0 returned a chunk of length %u", cname(m),
			     got.length);
		return;
	}
	/* A truncate to the current length changes nothing: the daemon may skip the commit. */
	same = m->exists && to == m->len;
	if (to < m->len)
		memset(m->data + to, 0, m->len - to);
	if (!m->exists)
		m->commit_ver = 0;
	m->exists = true;
	m->len = to;
	check_update(m, rc, &got, "TRUNCATE", same);
}

static void op_remove(struct mchunk *m)
{
	bool existed = !m->exists;
	int rc = tstor_remove(&cl, m->target, m->inode, m->index, &existed);

	if (rc != 0) {
		FAIL("REMOVE %s: %s (%d) %s", cname(m), sluice_errname(rc), rc, cl.detail);
		return;
	}
	if (existed != m->exists)
		FAIL("REMOVE %s: existed %d, model %d", cname(m), existed, m->exists);
	memset(m->data, 0, m->chunk_size);
	m->exists = false;
	m->len = 0;
	m->commit_ver = 0;
}

static bool id_in(const struct mchunk *m, uint64_t bi, uint32_t bx, uint64_t ei, uint32_t ex)
{
	bool ge = m->inode > bi || (m->inode == bi && m->index >= bx);
	bool lt = m->inode < ei || (m->inode == ei && m->index < ex);

	return ge && lt;
}

static void op_remove_range(void)
{
	unsigned t = 1 + (unsigned)tstor_rng_below(&rng, NTARGETS), expect = 0, total = 0, iters;
	uint64_t bi = INODE0 + tstor_rng_below(&rng, NINODES), ei;
	uint32_t bx = (uint32_t)tstor_rng_below(&rng, NINDEX), ex, max;
	bool more = true;

	ei = bi + tstor_rng_below(&rng, 2);
	ex = (uint32_t)tstor_rng_below(&rng, NINDEX + 1);
	if (ei == bi && ex < bx)
		ex = bx + (uint32_t)tstor_rng_below(&rng, 3); /* empty when equal */
	if (tstor_rng_below(&rng, 5) == 0) {		      /* a whole inode: [i/0, i+1/0) */
		bx = 0;
		ei = bi + 1;
		ex = 0;
	}
	max = (uint32_t)tstor_rng_below(&rng, 4);
	for (unsigned k = 0; k < NCHUNKS; k++)
		if (chunks[k].target == t && chunks[k].exists && id_in(&chunks[k], bi, bx, ei, ex))
			expect++;
	for (iters = 0; more && iters < RANGE_ITERS; iters++) {
		uint32_t removed = 0;
		int rc = tstor_remove_range(&cl, t, bi, bx, ei, ex, max, &removed, &more);

		if (rc != 0) {
			FAIL("REMOVE_RANGE t%u [%" PRIu64 "/%u, %" PRIu64 "/%u) max %u: %s (%d) %s",
			     t, bi, bx, ei, ex, max, sluice_errname(rc), rc, cl.detail);
			return;
		}
		if (max && removed > max)
			FAIL("REMOVE_RANGE removed %u, max_chunks %u", removed, max);
		total += removed;
	}
	if (more)
		FAIL("REMOVE_RANGE t%u: still more after %u calls", t, iters);
	if (total != expect)
		FAIL("REMOVE_RANGE t%u [%" PRIu64 "/%u, %" PRIu64
		     "/%u) max %u: removed %u, model %u",
		     t, bi, bx, ei, ex, max, total, expect);
	for (unsigned k = 0; k < NCHUNKS; k++) {
		struct mchunk *m = &chunks[k];

		if (m->target == t && id_in(m, bi, bx, ei, ex)) {
			memset(m->data, 0, m->chunk_size);
			m->exists = false;
			m->len = 0;
			m->commit_ver = 0;
		}
	}
}

/* ---- reads ---------------------------------------------------------------------------------- */

struct rd {
	struct mchunk *m; /* NULL: a chunk that never exists */
	struct tstor_range r;
};

/* Check one range result against the model. */
static void check_range(const struct rd *d, const struct tstor_read_result *res)
{
	const struct mchunk *m = d->m;
	uint32_t want;
	long at;

	if (!m || !m->exists) {
		if (res->status != -ENOENT)
			FAIL("BATCH_READ missing chunk %" PRIu64
			     "/%u [%u, +%u): %s (%d), want ENOENT",
			     d->r.inode, d->r.index, d->r.offset, d->r.length,
			     sluice_errname(res->status), res->status);
		return;
	}
	if (res->status != 0) {
		FAIL("BATCH_READ %s [%u, +%u): %s (%d)", cname(m), d->r.offset, d->r.length,
		     sluice_errname(res->status), res->status);
		return;
	}
	want = d->r.offset >= m->len ? 0 : m->len - d->r.offset;
	want = want < d->r.length ? want : d->r.length;
	if (res->length != want) {
		FAIL("BATCH_READ %s [%u, +%u): length %u, want %u (chunk length %u)", cname(m),
		     d->r.offset, d->r.length, res->length, want, m->len);
		return;
	}
	if (res->chunk_length != m->len)
		FAIL("BATCH_READ %s: chunk_length %u, model %u", cname(m), res->chunk_length,
		     m->len);
	if (m->commit_ver && res->commit_ver != m->commit_ver)
		FAIL("BATCH_READ %s: commit_ver %" PRIu64 ", last update said %" PRIu64, cname(m),
		     res->commit_ver, m->commit_ver);
	at = tstor_memdiff(res->data, m->data + d->r.offset, want);
	if (at >= 0)
		FAIL("BATCH_READ %s [%u, +%u): byte %ld differs (%#x, model %#x)", cname(m),
		     d->r.offset, d->r.length, d->r.offset + at, res->data[at],
		     m->data[d->r.offset + at]);
}

static void read_batch(unsigned t, struct rd *v, unsigned n)
{
	struct tstor_range r[64] = {{0}};
	struct tstor_read_result res[64];
	size_t cap = 0;
	int rc;

	ASSERT(n <= SLUICE_ARRAY_SIZE(r));
	for (unsigned i = 0; i < n; i++) {
		r[i] = v[i].r;
		cap += r[i].length;
	}
	ASSERT(cap <= 2 * READ_BATCH + 2u * SLUICE_MiB);
	rc = tstor_batch_read(&cl, t, r, n, readbuf, cap, res);
	if (rc != 0) {
		FAIL("BATCH_READ t%u of %u ranges (%zu bytes): %s (%d) %s", t, n, cap,
		     sluice_errname(rc), rc, cl.detail);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		check_range(&v[i], &res[i]);
}

static void op_read(void)
{
	unsigned t = 1 + (unsigned)tstor_rng_below(&rng, NTARGETS);
	unsigned n = 1 + (unsigned)tstor_rng_below(&rng, 6), k = 0;
	struct rd v[6];

	while (k < n) {
		struct mchunk *m = &chunks[tstor_rng_below(&rng, NCHUNKS)];
		uint32_t cs = m->chunk_size;

		if (m->target != t)
			continue;
		v[k].m = m;
		v[k].r = (struct tstor_range){m->inode, m->index, 0, 0};
		v[k].r.offset = (uint32_t)tstor_rng_below(&rng, cs);
		if (tstor_rng_below(&rng, 4) == 0 && m->len) /* near the end: short reads */
			v[k].r.offset = m->len - 1 - (uint32_t)tstor_rng_below(&rng, m->len);
		v[k].r.length = rand_len(cs - v[k].r.offset);
		if (tstor_rng_below(&rng, 8) == 0) {
			v[k].m = NULL;
			v[k].r.inode = MISSING_INODE;
		}
		k++;
	}
	read_batch(t, v, n);
}

/* ---- full verification ------------------------------------------------------------------- */

static const struct mchunk *model_find(unsigned t, uint64_t inode, uint32_t index)
{
	const struct mchunk *m;

	if (inode < INODE0 || inode >= INODE0 + NINODES || index >= NINDEX)
		return NULL;
	m = chunk_at((unsigned)(inode - INODE0), index);
	return m->target == t && m->exists ? m : NULL;
}

static void check_listing(unsigned t, const struct tstor_chunk *got, unsigned n, const char *what,
			  bool positions)
{
	for (unsigned i = 0; i < n; i++) {
		const struct mchunk *m = model_find(t, got[i].inode, got[i].index);

		if (!m) {
			FAIL("%s t%u lists chunk %" PRIu64 "/%u that the model does not have", what,
			     t, got[i].inode, got[i].index);
			continue;
		}
		check_meta(m, &got[i], what);
		if (m->commit_ver && got[i].commit_ver != m->commit_ver)
			FAIL("%s %s: commit_ver %" PRIu64 ", last update said %" PRIu64, what,
			     cname(m), got[i].commit_ver, m->commit_ver);
		if (positions) {
			uint32_t b = got[i].block_size;

			/* An empty chunk needs no block: block_size 0 is fine there. */
			if ((b || got[i].length) &&
			    (b < SLUICE_CHUNK_SIZE_MIN || b > SLUICE_CHUNK_SIZE_MAX ||
			     (b & (b - 1)) || b < got[i].length))
				FAIL("%s %s: block_size %u", what, cname(m), b);
		}
	}
}

/* Every model chunk of target t (or of one inode) appears in the listing. */
static void check_complete(unsigned t, int inode_i, const struct tstor_chunk *got, unsigned n,
			   const char *what)
{
	for (unsigned k = 0; k < NCHUNKS; k++) {
		const struct mchunk *m = &chunks[k];
		bool found = false;

		if (m->target != t || !m->exists ||
		    (inode_i >= 0 && k / NINDEX != (unsigned)inode_i))
			continue;
		for (unsigned i = 0; i < n && !found; i++)
			found = got[i].inode == m->inode && got[i].index == m->index;
		if (!found)
			FAIL("%s t%u: %s (length %u) is not listed", what, t, cname(m), m->len);
	}
}

static void verify_listings(unsigned t)
{
	struct tstor_chunk *all = NULL, page[NCHUNKS + 1];
	unsigned n = 0;
	int rc = tstor_list_all(&cl, t, 7, &all, &n);

	if (rc != 0) {
		FAIL("LIST_CHUNKS t%u: %s (%d) %s", t, sluice_errname(rc), rc, cl.detail);
	} else {
		check_listing(t, all, n, "LIST_CHUNKS", true);
		check_complete(t, -1, all, n, "LIST_CHUNKS");
	}
	free(all);
	for (unsigned i = 0; i < NINODES; i++) {
		uint64_t inode = INODE0 + i;
		bool more = false;

		rc = tstor_query(&cl, t, inode, 0, 0, 0, page, SLUICE_ARRAY_SIZE(page), &n, &more);
		if (rc != 0) {
			FAIL("QUERY_CHUNKS t%u inode %" PRIu64 ": %s (%d) %s", t, inode,
			     sluice_errname(rc), rc, cl.detail);
			continue;
		}
		if (more)
			FAIL("QUERY_CHUNKS t%u inode %" PRIu64 ": more with %u chunks", t, inode,
			     n);
		check_listing(t, page, n, "QUERY_CHUNKS", false);
		check_complete(t, (int)i, page, n, "QUERY_CHUNKS");
		for (unsigned j = 0; j < n; j++)
			if (page[j].inode != inode)
				FAIL("QUERY_CHUNKS of inode %" PRIu64 " lists inode %" PRIu64,
				     inode, page[j].inode);
		/* Paged: QUERY_LIMIT at a time from after the last one; same total. */
		unsigned total = 0, calls = 0;
		uint32_t begin = 0;

		do {
			unsigned got = 0;

			rc = tstor_query(&cl, t, inode, begin, 0, QUERY_LIMIT, page, QUERY_LIMIT,
					 &got, &more);
			if (rc != 0) {
				FAIL("QUERY_CHUNKS t%u inode %" PRIu64 " from %u limit %u: %s (%d)",
				     t, inode, begin, QUERY_LIMIT, sluice_errname(rc), rc);
				break;
			}
			total += got;
			if (got)
				begin = page[got - 1].index + 1;
			if (more && got == 0) {
				FAIL("QUERY_CHUNKS: more with an empty page");
				break;
			}
		} while (more && ++calls < NINDEX + 2);
		if (total != n)
			FAIL("QUERY_CHUNKS t%u inode %" PRIu64 ": %u paged, %u at once", t, inode,
			     total, n);
	}
}

/* Read every chunk of target t whole as 1-5 ranges each, several chunks per batch. */
static void verify_reads(unsigned t)
{
	struct rd v[TSTOR_READ_RANGES];
	unsigned n = 0;
	size_t bytes = 0;

	for (unsigned k = 0; k < NCHUNKS; k++) {
		struct mchunk *m = &chunks[k];
		unsigned parts = 1 + (unsigned)tstor_rng_below(&rng, 5);
		uint32_t at = 0;

		if (m->target != t)
			continue;
		if (n + parts + 1 > TSTOR_READ_RANGES || bytes + m->chunk_size > READ_BATCH) {
			read_batch(t, v, n);
			n = 0;
			bytes = 0;
		}
		for (unsigned p = 0; p < parts; p++) {
			uint32_t end = p + 1 == parts ? m->chunk_size
						      : at + (uint32_t)tstor_rng_below(
								     &rng, m->chunk_size - at + 1);

			v[n].m = m;
			v[n].r = (struct tstor_range){m->inode, m->index, at, end - at};
			if (end > at)
				n++;
			at = end;
		}
		bytes += m->chunk_size;
	}
	v[n].m = NULL; /* and one chunk that never existed */
	v[n++].r = (struct tstor_range){MISSING_INODE, 0, 0, 4096};
	read_batch(t, v, n);
}

/* Whole-chunk CRC of what the daemon returns equals the metadata CRC. */
static void verify_crcs(unsigned t)
{
	for (unsigned k = 0; k < NCHUNKS; k++) {
		const struct mchunk *m = &chunks[k];
		struct tstor_chunk meta;
		uint32_t len = 0;
		int rc;

		if (m->target != t || !m->exists)
			continue;
		rc = tstor_read_chunk(&cl, t, m->inode, m->index, m->chunk_size, readbuf, &len);
		if (rc == 0)
			rc = tstor_stat_chunk(&cl, t, m->inode, m->index, &meta);
		if (rc != 0) {
			FAIL("read/query %s: %s (%d)", cname(m), sluice_errname(rc), rc);
			continue;
		}
		if (meta.crc != crc32c(0, readbuf, len) || len != meta.length)
			FAIL("%s: QUERY_CHUNKS crc %#x length %u, bytes read: crc %#x length %u",
			     cname(m), meta.crc, meta.length, crc32c(0, readbuf, len), len);
	}
}

static void verify_all(const char *when)
{
	int before = test_failures;

	for (unsigned t = 1; t <= NTARGETS; t++) {
		if (!tstor_daemon_alive(&daemon_)) {
			FAIL("the daemon is dead: verification (%s) stopped", when);
			return;
		}
		verify_listings(t);
		verify_reads(t);
		verify_crcs(t);
	}
	printf("verified all chunks (%s): %s\n", when, test_failures == before ? "ok" : "FAILED");
	fflush(stdout);
}

static void restart(int sig)
{
	int rc = tstor_daemon_restart(&daemon_, sig);

	if (rc != 0)
		FAIL("restart with signal %d: %s (%d)", sig, sluice_errname(rc), rc);
	printf("restarted the daemon after signal %d\n", sig);
}

static void run(unsigned long ops)
{
	for (op_no = 1; op_no <= ops && test_failures < FAILS_MAX; op_no++) {
		struct mchunk *m = &chunks[tstor_rng_below(&rng, NCHUNKS)];
		unsigned p = (unsigned)tstor_rng_below(&rng, 100);

		if (p < 55)
			op_write(m);
		else if (p < 70)
			op_truncate(m);
		else if (p < 78)
			op_remove(m);
		else if (p < 82)
			op_remove_range();
		else
			op_read();
		if (op_no % VERIFY_EVERY == 0)
			verify_all("periodic");
		if (op_no == ops / 3) {
			restart(SIGTERM);
			verify_all("after SIGTERM and restart");
		}
		if (op_no == 2 * ops / 3) {
			restart(SIGKILL);
			verify_all("after SIGKILL and restart");
		}
		if (!tstor_daemon_alive(&daemon_)) {
			FAIL("the daemon died");
			break;
		}
	}
	op_no = ops;
	verify_all("end");
}

int main(int argc, char **argv)
{
	const char *bin = tstor_daemon_path(argc, argv);
	unsigned long ops = argc > 3 ? strtoul(argv[3], NULL, 0) : OPS_DEFAULT;
	int rc;

	seed = tstor_seed(argc, argv, 2);
	rng.s = seed;
	printf("test_storage_model: seed %#" PRIx64 ", %lu ops\n", seed, ops);
	for (unsigned i = 0; i < NINODES; i++)
		for (unsigned j = 0; j < NINDEX; j++) {
			struct mchunk *m = chunk_at(i, j);

			m->inode = INODE0 + i;
			m->index = j;
			m->chunk_size = inode_chunk_size[i];
			m->target = 1 + j % NTARGETS;
			m->data = calloc(1, m->chunk_size);
			ASSERT(m->data);
		}
	scratch = malloc(SLUICE_MiB);
	readbuf = malloc(2 * READ_BATCH + 2u * SLUICE_MiB);
	ASSERT(scratch && readbuf);
	rc = tstor_daemon_init(&daemon_, bin, "model", NTARGETS);
	CHECK_RC(rc, 0);
	if (rc == 0)
		rc = tstor_daemon_start(&daemon_);
	CHECK_RC(rc, 0);
	if (rc == 0) {
		rc = tstor_client_start(&cl, &daemon_);
		CHECK_RC(rc, 0);
	}
	if (rc == 0)
		run(ops);
	tstor_client_stop(&cl);
	tstor_daemon_finish(&daemon_, test_failures == 0);
	for (unsigned k = 0; k < NCHUNKS; k++)
		free(chunks[k].data);
	free(scratch);
	free(readbuf);
	if (test_failures)
		fprintf(stderr, "FAILED (%d checks), seed %#" PRIx64 "\n", test_failures, seed);
	return test_result();
}
