/*
 * layout.h - file layout: which chain stores each chunk of a file (DESIGN.md section 4).
 *
 * A file's layout is {chain_table_id, chunk_size, stripe, chain_base, seed}. The file is cut
 * into chunks of chunk_size bytes; chunk i is stored on the chain whose id is at position
 *
 *     (chain_base + perm[i mod stripe]) mod table_len
 *
 * of the chain table's list of chain ids, where perm is a permutation of 0..stripe-1
 * derived from seed by the procedure below. Clients compute placement themselves and
 * servers verify it, so THE PERMUTATION IS A WIRE AND ON-DISK CONTRACT: clients in other
 * languages must reproduce it bit for bit, and it must never change.
 *
 * The permutation (all arithmetic on unsigned 64-bit integers, wrapping mod 2^64):
 *
 *     splitmix64_next(state):
 *         state = state + 0x9E3779B97F4A7C15
 *         z = state
 *         z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *         z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *         return z ^ (z >> 31)
 *
 *     perm(seed, stripe):
 *         state = seed
 *         perm = [0, 1, ..., stripe - 1]                    (the identity)
 *         for i = stripe - 1 down to 1:                     (nothing when stripe == 1)
 *             j = splitmix64_next(state) mod (i + 1)        (plain modulo; its bias is part
 *             swap(perm[i], perm[j])                         of the contract)
 *         return perm
 *
 * Check values (tests/unit/test_layout.c pins more): splitmix64 from state 0 yields
 * 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F; perm(42, 7) is
 * [2, 4, 6, 0, 3, 1, 5] and perm(0xDEADBEEF, 7) is [5, 1, 3, 0, 4, 6, 2].
 *
 * A chunk id is (inode u64, chunk index u32) encoded as 12 bytes big-endian, inode first,
 * so that memcmp order is (inode, index) order and a file's chunks sort together in the
 * storage daemon's key-value store.
 *
 * Everything here is pure and thread-safe: no allocation, no logging, no global state.
 */
#ifndef SLUICE_COMMON_LAYOUT_H
#define SLUICE_COMMON_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/limits.h"

/*
 * Largest stripe a layout may use. It bounds the permutation a client caches per open
 * file (4 bytes an entry). Belongs in common/limits.h (as SLUICE_STRIPE_MAX) once that
 * header's owner adds it; it is here meanwhile.
 */
#define LAYOUT_STRIPE_MAX 4096u

/* Bytes of an encoded chunk id. */
#define LAYOUT_CHUNK_ID_BYTES 12

/* A chunk index is a u32, so a file has at most 2^32 chunks. */
#define LAYOUT_CHUNKS_MAX (UINT64_C(1) << 32)

struct layout {
	uint32_t chain_table_id; /* which chain table; any value */
	uint32_t chunk_size; /* power of two in [SLUICE_CHUNK_SIZE_MIN, SLUICE_CHUNK_SIZE_MAX] */
	uint32_t stripe;     /* chains the file spreads over: 1..min(table_len, STRIPE_MAX) */
	uint32_t chain_base; /* first position in the chain table: < table_len */
	uint64_t seed;	     /* permutation seed; any value */
};

/* One chunk-aligned piece of a byte range, from layout_split. */
struct layout_piece {
	uint32_t chunk_index; /* which chunk of the file */
	uint32_t chunk_off;   /* offset of the piece inside that chunk */
	uint32_t len;	      /* bytes, > 0, chunk_off + len <= chunk_size */
	uint64_t buf_off;     /* offset of the piece in the caller's buffer (file offset - start) */
};

struct layout_chunk_id {
	uint64_t inode;
	uint32_t index;
};

/*
 * Check l against a chain table of table_len chains. Returns 0, or -EINVAL when l is NULL,
 * table_len is 0, chunk_size is not a power of two in [SLUICE_CHUNK_SIZE_MIN,
 * SLUICE_CHUNK_SIZE_MAX], stripe is 0 or above table_len or LAYOUT_STRIPE_MAX, or chain_base
 * is not below table_len. Layouts come from the network and disk: validate before use.
 */
SLUICE_MUST_USE int layout_validate(const struct layout *l, uint32_t table_len);

/* One step of splitmix64 as documented above: advances *state and returns the output. */
uint64_t layout_splitmix64_next(uint64_t *state);

/*
 * Fill perm[0..stripe-1] with the permutation for seed documented above. perm is the
 * caller's array of at least stripe entries. Returns 0, or -EINVAL if stripe is 0 or above
 * LAYOUT_STRIPE_MAX (perm untouched). Costs stripe steps: compute once per file and keep it.
 */
SLUICE_MUST_USE int layout_perm(uint64_t seed, uint32_t stripe, uint32_t *perm);

/*
 * Position in the chain table's list of chain ids of the chain that stores chunk
 * chunk_index: (chain_base + perm[chunk_index mod stripe]) mod table_len. l must have passed
 * layout_validate(l, table_len) and perm must come from layout_perm(l->seed, l->stripe);
 * both are our own invariants here and are ASSERTed.
 */
uint32_t layout_chain_index(const struct layout *l, const uint32_t *perm, uint32_t table_len,
			    uint64_t chunk_index);

/*
 * Chunk index holding byte offset of the file (a u64: above LAYOUT_CHUNKS_MAX - 1 the offset
 * is beyond the largest file), and, if chunk_off is not NULL, the offset inside that chunk.
 * l must be valid.
 */
uint64_t layout_chunk_of(const struct layout *l, uint64_t offset, uint32_t *chunk_off);

/* Largest file size the layout can address: chunk_size * LAYOUT_CHUNKS_MAX. l must be valid. */
uint64_t layout_file_bytes_max(const struct layout *l);

/*
 * Number of chunk pieces layout_split produces for [offset, offset + len): 0 for len 0.
 * Returns -EFBIG if the range overflows or ends beyond layout_file_bytes_max(l). l must be
 * valid.
 */
SLUICE_MUST_USE int64_t layout_split_count(const struct layout *l, uint64_t offset, uint64_t len);

/*
 * Cut the byte range [offset, offset + len) of the file into chunk-aligned pieces, in file
 * order, into the caller's array pieces[0..pieces_max-1]. Returns the number of pieces (0 for
 * len 0), -EFBIG if the range overflows or ends beyond layout_file_bytes_max(l), or -ENOSPC
 * if more than pieces_max pieces are needed (size the array with layout_split_count). On
 * error nothing is written. The pieces cover the range exactly, without overlap. l must be
 * valid.
 */
SLUICE_MUST_USE int layout_split(const struct layout *l, uint64_t offset, uint64_t len,
				 struct layout_piece *pieces, uint32_t pieces_max);

/* Encode id into out[0..LAYOUT_CHUNK_ID_BYTES-1]: inode then index, both big-endian. */
void layout_chunk_id_encode(const struct layout_chunk_id *id, uint8_t *out);

/* Decode a chunk id from buf of len bytes. Returns 0, or -EINVAL if len is not exactly
 * LAYOUT_CHUNK_ID_BYTES (id untouched). */
SLUICE_MUST_USE int layout_chunk_id_decode(const void *buf, size_t len, struct layout_chunk_id *id);

#endif
