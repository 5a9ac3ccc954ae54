/*
 * layout.c - chunk placement: validation, the seeded permutation, chunk -> chain, range
 * splitting and chunk id encoding (DESIGN.md section 4; the contract is in layout.h).
 *
 * Design: the permutation is splitmix64 feeding a textbook Fisher-Yates shuffle, written
 * exactly as layout.h documents it, because every client (C, Python, anything else) must
 * reproduce it bit for bit; tests/unit/test_layout.c pins its output for fixed seeds. It
 * uses plain modulo for the swap index: the bias is far below anything that matters for
 * spreading chunks, and a rejection loop would be one more thing to get identical in every
 * language. chunk_size is a power of two, so offsets split with shifts and masks.
 *
 * Pure functions, any thread, nothing owned: callers pass every array.
 */
#include <errno.h>

#include "common/assert.h"
#include "common/layout.h"
#include "common/limits.h"

static_assert(LAYOUT_CHUNK_ID_BYTES == sizeof(uint64_t) + sizeof(uint32_t),
	      "chunk id is inode u64 then index u32");
static_assert(LAYOUT_STRIPE_MAX <= UINT32_MAX, "stripe is a u32");
static_assert((uint64_t)SLUICE_CHUNK_SIZE_MAX * LAYOUT_CHUNKS_MAX <= INT64_MAX,
	      "largest file size fits an int64 count of bytes");

static int is_pow2(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

int layout_validate(const struct layout *l, uint32_t table_len)
{
	if (l == NULL || table_len == 0)
		return -EINVAL;
	if (!is_pow2(l->chunk_size) || l->chunk_size < SLUICE_CHUNK_SIZE_MIN ||
	    l->chunk_size > SLUICE_CHUNK_SIZE_MAX)
		return -EINVAL;
	if (l->stripe == 0 || l->stripe > table_len || l->stripe > LAYOUT_STRIPE_MAX)
		return -EINVAL;
	if (l->chain_base >= table_len)
		return -EINVAL;
	return 0;
}

uint64_t layout_splitmix64_next(uint64_t *state)
{
	uint64_t z;

	*state += UINT64_C(0x9E3779B97F4A7C15);
	z = *state;
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

int layout_perm(uint64_t seed, uint32_t stripe, uint32_t *perm)
{
	uint64_t state = seed;

	if (stripe == 0 || stripe > LAYOUT_STRIPE_MAX || perm == NULL)
		return -EINVAL;
	for (uint32_t i = 0; i < stripe; i++)
		perm[i] = i;
	for (uint32_t i = stripe - 1; i >= 1; i--) {
		uint32_t j = (uint32_t)(layout_splitmix64_next(&state) % ((uint64_t)i + 1));
		uint32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	return 0;
}

uint32_t layout_chain_index(const struct layout *l, const uint32_t *perm, uint32_t table_len,
			    uint64_t chunk_index)
{
	uint32_t p;

	ASSERT(table_len > 0 && l->stripe > 0 && l->stripe <= table_len);
	p = perm[chunk_index % l->stripe];
	ASSERT(p < l->stripe);
	/* 64-bit sum: chain_base + p cannot wrap even for a caller that skipped validation. */
	return (uint32_t)(((uint64_t)l->chain_base + p) % table_len);
}

static unsigned chunk_shift(const struct layout *l)
{
	ASSERT(is_pow2(l->chunk_size));
	return (unsigned)__builtin_ctz(l->chunk_size);
}

uint64_t layout_chunk_of(const struct layout *l, uint64_t offset, uint32_t *chunk_off)
{
	if (chunk_off != NULL)
		*chunk_off = (uint32_t)(offset & (l->chunk_size - 1));
	return offset >> chunk_shift(l);
}

uint64_t layout_file_bytes_max(const struct layout *l)
{
	return LAYOUT_CHUNKS_MAX << chunk_shift(l);
}

int64_t layout_split_count(const struct layout *l, uint64_t offset, uint64_t len)
{
	unsigned shift = chunk_shift(l);
	uint64_t max = layout_file_bytes_max(l);

	if (len == 0)
		return 0;
	if (offset > max || len > max - offset)
		return -EFBIG;
	return (int64_t)(((offset + len - 1) >> shift) - (offset >> shift) + 1);
}

int layout_split(const struct layout *l, uint64_t offset, uint64_t len, struct layout_piece *pieces,
		 uint32_t pieces_max)
{
	int64_t n = layout_split_count(l, offset, len);
	unsigned shift = chunk_shift(l);
	uint64_t done = 0;

	if (n <= 0)
		return (int)n;
	if ((uint64_t)n > pieces_max || n > INT32_MAX)
		return -ENOSPC;
	for (int64_t k = 0; k < n; k++) {
		uint64_t pos = offset + done;
		uint32_t in_chunk = (uint32_t)(pos & (l->chunk_size - 1));
		uint64_t room = l->chunk_size - in_chunk;
		uint64_t take = len - done < room ? len - done : room;

		pieces[k] = (struct layout_piece){
			.chunk_index = (uint32_t)(pos >> shift),
			.chunk_off = in_chunk,
			.len = (uint32_t)take,
			.buf_off = done,
		};
		done += take;
	}
	ASSERT(done == len);
	return (int)n;
}

void layout_chunk_id_encode(const struct layout_chunk_id *id, uint8_t *out)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(id->inode >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(id->index >> (24 - 8 * i));
}

int layout_chunk_id_decode(const void *buf, size_t len, struct layout_chunk_id *id)
{
	const uint8_t *p = buf;
	uint64_t inode = 0;
	uint32_t index = 0;

	if (buf == NULL || len != LAYOUT_CHUNK_ID_BYTES)
		return -EINVAL;
	for (int i = 0; i < 8; i++)
		inode = (inode << 8) | p[i];
	for (int i = 0; i < 4; i++)
		index = (index << 8) | p[8 + i];
	id->inode = inode;
	id->index = index;
	return 0;
}
