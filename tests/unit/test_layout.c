/*
 * test_layout.c - the placement contract of common/layout.h.
 *
 * The permutation is a wire and on-disk contract, so its output is PINNED: for seeds 0, 1,
 * 42, 0xDEADBEEF (and 2) and stripes 1, 2, 7, 16, 200 the expected first entries and an
 * FNV-1a checksum of the whole permutation are hard-coded below (they were computed once and
 * cross-checked against an independent Python implementation of the documented algorithm).
 * If this test fails after a change to layout.c, the change broke every stored file: revert
 * it. Also checked: splitmix64 reference outputs, every permutation is a permutation,
 * layout_validate rule by rule, chunk -> chain against the formula, range splitting covers
 * ranges exactly (random and edge ranges), chunk id encoding round-trips and sorts by
 * (inode, index) under memcmp.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/layout.h"
#include "common/limits.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

/* The test's own deterministic generator (not the one under test). */
static uint64_t rng_state = 0x7e57;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* FNV-1a 64 over the entries, each folded in as one whole value. */
static uint64_t perm_fnv(const uint32_t *p, uint32_t n)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (uint32_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static int is_perm(const uint32_t *p, uint32_t n)
{
	static uint8_t seen[LAYOUT_STRIPE_MAX];

	memset(seen, 0, n);
	for (uint32_t i = 0; i < n; i++) {
		if (p[i] >= n || seen[p[i]])
			return 0;
		seen[p[i]] = 1;
	}
	return 1;
}

static void test_splitmix(void)
{
	uint64_t s = 0;

	CHECK(layout_splitmix64_next(&s) == UINT64_C(0xE220A8397B1DCDAF));
	CHECK(layout_splitmix64_next(&s) == UINT64_C(0x6E789E6AA1B965F4));
	CHECK(layout_splitmix64_next(&s) == UINT64_C(0x06C45D188009454F));
	CHECK(s == 3 * UINT64_C(0x9E3779B97F4A7C15));
}

struct pinned {
	uint64_t seed;
	uint32_t stripe;
	uint32_t first[8]; /* first min(8, stripe) entries */
	uint64_t fnv;	   /* perm_fnv of the whole permutation */
};

static const struct pinned pinned[] = {
	{0, 1, {0}, UINT64_C(0x44BD2BD473CCF799)},
	{0, 2, {0, 1}, UINT64_C(0x9A691200C548B748)},
	{0, 7, {6, 3, 1, 5, 4, 0, 2}, UINT64_C(0x8DA65C6AA0A18798)},
	{0, 16, {2, 10, 14, 11, 6, 1, 5, 13}, UINT64_C(0x41604F34C1F6803D)},
	{0, 200, {117, 114, 125, 116, 196, 29, 168, 169}, UINT64_C(0xEE879A15F6DAA50B)},
	{1, 1, {0}, UINT64_C(0x44BD2BD473CCF799)},
	{1, 2, {0, 1}, UINT64_C(0x9A691200C548B748)},
	{1, 7, {5, 6, 4, 3, 0, 1, 2}, UINT64_C(0x84F64361EAEC21AC)},
	{1, 16, {2, 11, 10, 6, 7, 13, 14, 0}, UINT64_C(0xBD906EF2E5A57C59)},
	{1, 200, {25, 113, 172, 42, 57, 4, 88, 148}, UINT64_C(0xB4AB2F94FF3CC31D)},
	{2, 2, {1, 0}, 0}, /* the first 2-way swap among small seeds */
	{42, 1, {0}, UINT64_C(0x44BD2BD473CCF799)},
	{42, 2, {0, 1}, UINT64_C(0x9A691200C548B748)},
	{42, 7, {2, 4, 6, 0, 3, 1, 5}, UINT64_C(0x82FEC45016F801BA)},
	{42, 16, {12, 13, 4, 2, 14, 6, 7, 8}, UINT64_C(0x6E5038662F8FE5FD)},
	{42, 200, {127, 44, 52, 158, 54, 30, 181, 67}, UINT64_C(0xF93B7BF12EA9429B)},
	{0xDEADBEEF, 1, {0}, UINT64_C(0x44BD2BD473CCF799)},
	{0xDEADBEEF, 2, {0, 1}, UINT64_C(0x9A691200C548B748)},
	{0xDEADBEEF, 7, {5, 1, 3, 0, 4, 6, 2}, UINT64_C(0x2A8A6CEA808EE4A2)},
	{0xDEADBEEF, 16, {10, 13, 2, 8, 4, 12, 6, 5}, UINT64_C(0xE3B98BCBB7EE7A1D)},
	{0xDEADBEEF, 200, {79, 141, 19, 3, 84, 128, 36, 86}, UINT64_C(0xA2088B6A50C7FF93)},
};

static void test_perm_pinned(void)
{
	uint32_t p[200];

	for (size_t k = 0; k < sizeof(pinned) / sizeof(pinned[0]); k++) {
		const struct pinned *e = &pinned[k];
		uint32_t n = e->stripe < 8 ? e->stripe : 8;
		int ok = 1;

		CHECK(layout_perm(e->seed, e->stripe, p) == 0);
		CHECK(is_perm(p, e->stripe));
		for (uint32_t i = 0; i < n; i++)
			ok &= p[i] == e->first[i];
		if (e->fnv != 0)
			ok &= perm_fnv(p, e->stripe) == e->fnv;
		if (!ok) {
			fprintf(stderr, "seed %#" PRIx64 " stripe %u: got", e->seed, e->stripe);
			for (uint32_t i = 0; i < n; i++)
				fprintf(stderr, " %u", p[i]);
			fprintf(stderr, " fnv 0x%016" PRIX64 "\n", perm_fnv(p, e->stripe));
		}
		CHECK(ok);
	}
}

static void test_perm_properties(void)
{
	static uint32_t p[LAYOUT_STRIPE_MAX + 1];
	static uint32_t q[LAYOUT_STRIPE_MAX];

	for (uint32_t stripe = 1; stripe <= 300; stripe++) {
		for (int k = 0; k < 5; k++) {
			uint64_t seed = rnd();

			CHECK(layout_perm(seed, stripe, p) == 0);
			CHECK(is_perm(p, stripe));
			CHECK(layout_perm(seed, stripe, q) == 0); /* deterministic */
			CHECK(memcmp(p, q, stripe * sizeof(p[0])) == 0);
		}
	}
	CHECK(layout_perm(7, LAYOUT_STRIPE_MAX, p) == 0);
	CHECK(is_perm(p, LAYOUT_STRIPE_MAX));

	/* Errors leave the array untouched. */
	p[0] = 0xAAAA;
	CHECK(layout_perm(1, 0, p) == -EINVAL);
	CHECK(layout_perm(1, LAYOUT_STRIPE_MAX + 1, p) == -EINVAL);
	CHECK(layout_perm(1, 4, NULL) == -EINVAL);
	CHECK(p[0] == 0xAAAA);
}

static struct layout good_layout(void)
{
	return (struct layout){.chain_table_id = 1,
			       .chunk_size = SLUICE_MiB,
			       .stripe = 16,
			       .chain_base = 5,
			       .seed = 42};
}

static void test_validate(void)
{
	struct layout l = good_layout();

	CHECK(layout_validate(&l, 16) == 0);
	CHECK(layout_validate(&l, 100) == 0);
	CHECK(layout_validate(NULL, 16) == -EINVAL);
	CHECK(layout_validate(&l, 0) == -EINVAL);

	/* chunk_size: power of two within [MIN, MAX] */
	l.chunk_size = SLUICE_CHUNK_SIZE_MIN;
	CHECK(layout_validate(&l, 16) == 0);
	l.chunk_size = SLUICE_CHUNK_SIZE_MAX;
	CHECK(layout_validate(&l, 16) == 0);
	l.chunk_size = SLUICE_CHUNK_SIZE_MIN / 2;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.chunk_size = SLUICE_CHUNK_SIZE_MAX * 2u;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.chunk_size = SLUICE_MiB + 4096;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.chunk_size = 3 * SLUICE_MiB;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.chunk_size = 0;
	CHECK(layout_validate(&l, 16) == -EINVAL);

	/* stripe: 1..min(table_len, LAYOUT_STRIPE_MAX) */
	l = good_layout();
	l.stripe = 0;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.stripe = 1;
	CHECK(layout_validate(&l, 16) == 0);
	l.stripe = 17;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.stripe = LAYOUT_STRIPE_MAX;
	l.chain_base = 0;
	CHECK(layout_validate(&l, LAYOUT_STRIPE_MAX) == 0);
	l.stripe = LAYOUT_STRIPE_MAX + 1;
	CHECK(layout_validate(&l, LAYOUT_STRIPE_MAX + 10) == -EINVAL);

	/* chain_base < table_len */
	l = good_layout();
	l.chain_base = 15;
	CHECK(layout_validate(&l, 16) == 0);
	l.chain_base = 16;
	CHECK(layout_validate(&l, 16) == -EINVAL);
	l.chain_base = UINT32_MAX;
	CHECK(layout_validate(&l, 16) == -EINVAL);

	/* seed and chain_table_id take any value */
	l = good_layout();
	l.seed = UINT64_MAX;
	l.chain_table_id = UINT32_MAX;
	CHECK(layout_validate(&l, 16) == 0);
}

static void test_chain_index(void)
{
	static uint32_t perm[LAYOUT_STRIPE_MAX];
	const uint32_t lens[] = {1, 2, 3, 16, 17, 100, 1000, LAYOUT_STRIPE_MAX};

	for (size_t t = 0; t < sizeof(lens) / sizeof(lens[0]); t++) {
		for (int k = 0; k < 20; k++) {
			uint32_t len = lens[t];
			struct layout l = good_layout();
			static uint8_t hit[LAYOUT_STRIPE_MAX];

			l.stripe = 1 + (uint32_t)(rnd() % len);
			l.chain_base = (uint32_t)(rnd() % len);
			l.seed = rnd();
			CHECK(layout_validate(&l, len) == 0);
			CHECK(layout_perm(l.seed, l.stripe, perm) == 0);

			/* One period of stripe chunks lands on stripe distinct chains. */
			memset(hit, 0, len);
			for (uint32_t c = 0; c < l.stripe; c++) {
				uint32_t ci = layout_chain_index(&l, perm, len, c);

				CHECK(ci < len);
				CHECK(ci == (l.chain_base + perm[c]) % len);
				CHECK(!hit[ci]);
				hit[ci] = 1;
			}
			/* Periodic in stripe, also for chunk indexes beyond u32. */
			for (int r = 0; r < 50; r++) {
				uint64_t c = rnd() >> 20;

				CHECK(layout_chain_index(&l, perm, len, c) ==
				      layout_chain_index(&l, perm, len, c % l.stripe));
			}
		}
	}

	/* A pinned example: seed 42, stripe 7, base 5, table of 10 chains. */
	{
		struct layout l = {.chain_table_id = 3,
				   .chunk_size = SLUICE_MiB,
				   .stripe = 7,
				   .chain_base = 5,
				   .seed = 42};
		const uint32_t expect[] = {7, 9, 1, 5, 8, 6, 0, 7, 9}; /* (5 + perm[i % 7]) % 10 */

		CHECK(layout_perm(l.seed, l.stripe, perm) == 0);
		for (uint32_t c = 0; c < sizeof(expect) / sizeof(expect[0]); c++)
			CHECK(layout_chain_index(&l, perm, 10, c) == expect[c]);
	}
}

static void test_chunk_of(void)
{
	struct layout l = good_layout();
	uint32_t off = 0;

	CHECK(layout_chunk_of(&l, 0, &off) == 0 && off == 0);
	CHECK(layout_chunk_of(&l, SLUICE_MiB - 1, &off) == 0 && off == SLUICE_MiB - 1);
	CHECK(layout_chunk_of(&l, SLUICE_MiB, &off) == 1 && off == 0);
	CHECK(layout_chunk_of(&l, 5ull * SLUICE_MiB + 7, &off) == 5 && off == 7);
	CHECK(layout_chunk_of(&l, 5ull * SLUICE_MiB + 7, NULL) == 5);
	CHECK(layout_file_bytes_max(&l) == (uint64_t)SLUICE_MiB << 32);
	CHECK(layout_chunk_of(&l, layout_file_bytes_max(&l) - 1, &off) == UINT32_MAX);
	CHECK(off == SLUICE_MiB - 1);
	CHECK(layout_chunk_of(&l, layout_file_bytes_max(&l), NULL) == LAYOUT_CHUNKS_MAX);
	l.chunk_size = SLUICE_CHUNK_SIZE_MAX;
	CHECK(layout_chunk_of(&l, UINT64_MAX, &off) == UINT64_MAX / SLUICE_CHUNK_SIZE_MAX);
	CHECK(off == SLUICE_CHUNK_SIZE_MAX - 1);
}

/* The pieces tile [offset, offset + len) in order, each inside one chunk. */
static void check_split(const struct layout *l, uint64_t offset, uint64_t len,
			const struct layout_piece *p, int n)
{
	uint64_t pos = offset;

	CHECK(n >= 0);
	CHECK((int64_t)n == layout_split_count(l, offset, len));
	for (int k = 0; k < n; k++) {
		CHECK(p[k].len > 0);
		CHECK((uint64_t)p[k].chunk_off + p[k].len <= l->chunk_size);
		CHECK(p[k].buf_off == pos - offset);
		CHECK((uint64_t)p[k].chunk_index * l->chunk_size + p[k].chunk_off == pos);
		/* only the first piece may start inside a chunk, only the last end inside one */
		if (k > 0)
			CHECK(p[k].chunk_off == 0 && p[k].chunk_index == p[k - 1].chunk_index + 1);
		if (k < n - 1)
			CHECK(p[k].chunk_off + p[k].len == l->chunk_size);
		pos += p[k].len;
	}
	CHECK(pos == offset + len);
}

static void test_split(void)
{
	static struct layout_piece p[1100];
	struct layout l = good_layout();
	uint64_t cs;
	int n;

	l.chunk_size = SLUICE_CHUNK_SIZE_MIN;
	cs = l.chunk_size;
	CHECK(layout_split(&l, 12345, 0, p, 0) == 0);
	CHECK(layout_split_count(&l, 12345, 0) == 0);

	n = layout_split(&l, 0, cs, p, 1);
	CHECK(n == 1 && p[0].chunk_index == 0 && p[0].chunk_off == 0 && p[0].len == cs);
	n = layout_split(&l, cs - 1, 2, p, 2);
	CHECK(n == 2 && p[0].len == 1 && p[1].chunk_index == 1 && p[1].len == 1);
	CHECK(p[1].buf_off == 1);
	check_split(&l, cs - 1, 2, p, n);
	n = layout_split(&l, 100, 3 * cs, p, 4);
	CHECK(n == 4);
	check_split(&l, 100, 3 * cs, p, n);

	/* Too small an array: -ENOSPC, nothing written. */
	memset(p, 0xEE, sizeof(p[0]) * 4);
	CHECK(layout_split(&l, 100, 3 * cs, p, 3) == -ENOSPC);
	CHECK(p[0].len == 0xEEEEEEEEu);

	/* The last byte of the largest file is addressable, one more is not. */
	{
		uint64_t max = layout_file_bytes_max(&l);

		n = layout_split(&l, max - cs - 1, cs + 1, p, 2);
		CHECK(n == 2 && p[1].chunk_index == UINT32_MAX);
		check_split(&l, max - cs - 1, cs + 1, p, n);
		CHECK(layout_split(&l, max - 1, 2, p, 2) == -EFBIG);
		CHECK(layout_split(&l, max, 1, p, 2) == -EFBIG);
		CHECK(layout_split(&l, 1, UINT64_MAX, p, 2) == -EFBIG);
		CHECK(layout_split_count(&l, UINT64_MAX, 1) == -EFBIG);
	}

	/* Random ranges over several chunk sizes. */
	for (int it = 0; it < 20000; it++) {
		uint64_t offset, len;

		l.chunk_size = SLUICE_CHUNK_SIZE_MIN << (rnd() % 11);
		cs = l.chunk_size;
		offset = rnd() % (cs * 1000);
		switch (rnd() % 4) {
		case 0:
			len = rnd() % 10;
			break;
		case 1:
			len = rnd() % (2 * cs);
			break;
		case 2:
			len = cs - offset % cs + (rnd() % 3) * cs; /* ends on a boundary */
			break;
		default:
			len = rnd() % (cs * 1000);
			break;
		}
		n = layout_split(&l, offset, len, p, 1100);
		check_split(&l, offset, len, p, n);
	}
}

static int tuple_cmp(const struct layout_chunk_id *a, const struct layout_chunk_id *b)
{
	if (a->inode != b->inode)
		return a->inode < b->inode ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

static struct layout_chunk_id random_id(void)
{
	static const uint64_t inodes[] = {
		0, 1, 255, 256, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
	static const uint32_t idx[] = {0, 1, 255, 256, 65535, 65536, UINT32_MAX - 1, UINT32_MAX};
	struct layout_chunk_id id;

	id.inode = rnd() % 3 ? inodes[rnd() % 8] : rnd();
	id.index = rnd() % 3 ? idx[rnd() % 8] : (uint32_t)rnd();
	return id;
}

static void test_chunk_id(void)
{
	const struct layout_chunk_id id = {.inode = UINT64_C(0x0102030405060708),
					   .index = 0x090A0B0Cu};
	const uint8_t expect[LAYOUT_CHUNK_ID_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	uint8_t buf[LAYOUT_CHUNK_ID_BYTES + 1];
	struct layout_chunk_id out = {77, 77};

	layout_chunk_id_encode(&id, buf);
	CHECK(memcmp(buf, expect, LAYOUT_CHUNK_ID_BYTES) == 0);
	CHECK(layout_chunk_id_decode(buf, LAYOUT_CHUNK_ID_BYTES, &out) == 0);
	CHECK(out.inode == id.inode && out.index == id.index);

	/* Wrong length: -EINVAL, out untouched. */
	out = (struct layout_chunk_id){77, 77};
	CHECK(layout_chunk_id_decode(buf, LAYOUT_CHUNK_ID_BYTES - 1, &out) == -EINVAL);
	CHECK(layout_chunk_id_decode(buf, LAYOUT_CHUNK_ID_BYTES + 1, &out) == -EINVAL);
	CHECK(layout_chunk_id_decode(NULL, LAYOUT_CHUNK_ID_BYTES, &out) == -EINVAL);
	CHECK(out.inode == 77 && out.index == 77);

	for (int it = 0; it < 100000; it++) {
		struct layout_chunk_id a = random_id(), b = random_id(), da, db;
		uint8_t ea[LAYOUT_CHUNK_ID_BYTES], eb[LAYOUT_CHUNK_ID_BYTES];

		layout_chunk_id_encode(&a, ea);
		layout_chunk_id_encode(&b, eb);
		CHECK(sign(memcmp(ea, eb, sizeof(ea))) == tuple_cmp(&a, &b));
		CHECK(layout_chunk_id_decode(ea, sizeof(ea), &da) == 0);
		CHECK(layout_chunk_id_decode(eb, sizeof(eb), &db) == 0);
		CHECK(tuple_cmp(&a, &da) == 0 && tuple_cmp(&b, &db) == 0);
	}
}

int main(void)
{
	test_splitmix();
	test_perm_pinned();
	test_perm_properties();
	test_validate();
	test_chain_index();
	test_chunk_of();
	test_split();
	test_chunk_id();
	printf("layout: ok\n");
	return 0;
}
