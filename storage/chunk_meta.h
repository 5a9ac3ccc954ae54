/*
 * chunk_meta.h - the metadata of one chunk on a target and its on-disk encoding.
 *
 * Each chunk has one RocksDB key, CHUNK_META_KEY_PREFIX + the 12-byte chunk id of
 * common/layout.h (inode, index big-endian, so a file's chunks sort together), whose value
 * is this struct in a fixed little-endian layout (format 2):
 *
 *   0  u8  format (2)           1  u8  flags (bit 0: has a block)
 *   2  u8  size class           3  u8  0
 *   4  u32 file                 8  u32 block
 *  12  u32 length              16  u32 chunk_size
 *  20  u64 commit_ver          28  u64 update_ver        36  u64 chain_ver
 *  44  u32 crc (content)       48  u32 nsect
 *  52  u64 tag client id       60  u32 tag channel       64  u64 tag seq
 *  72  u32 sector_crc[nsect]   then u32 CRC32C of every byte before it
 *
 * The tag is the request tag of the update that made this version (all zero: none): a
 * retry of that update finds it here, even on a replica that got the chunk by resync or
 * restarted since, and is not applied twice.
 *
 * sector_crc[i] is the CRC32C of the committed bytes of sector i (4 KiB, the last one
 * partial), so a read verifies only the sectors it touches; crc is those folded together
 * with crc32c_combine, i.e. the CRC32C of the whole content, which replicas compare. A chunk
 * of length 0 holds no block. Metadata read from disk is untrusted: chunk_meta_decode checks
 * every field and the trailing CRC and returns -EBADMSG for anything off.
 *
 * Pure functions, any thread.
 */
#ifndef SLUICE_STORAGE_CHUNK_META_H
#define SLUICE_STORAGE_CHUNK_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/layout.h"
#include "common/limits.h"

#define CHUNK_META_FORMAT      2
#define CHUNK_META_KEY_PREFIX  'C'
#define CHUNK_META_KEY_BYTES   (1 + LAYOUT_CHUNK_ID_BYTES)
#define CHUNK_META_FIXED_BYTES 72u
#define CHUNK_META_MAX_SECTORS (SLUICE_CHUNK_SIZE_MAX / SLUICE_SECTOR_BYTES)
#define CHUNK_META_VALUE_MAX   (CHUNK_META_FIXED_BYTES + 4u * CHUNK_META_MAX_SECTORS + 4u)

/* Where a block lives: data file `file` of size class `cls` (block size 64 KiB << cls). */
struct stor_pos {
	uint8_t cls;
	uint32_t file;
	uint32_t block;
};

/* A client's request tag (proto UpdateTag); all zero: none. */
struct stor_tag {
	uint64_t client;
	uint32_t channel;
	uint64_t seq;
};

static inline bool stor_tag_eq(const struct stor_tag *a, const struct stor_tag *b)
{
	return a->client == b->client && a->channel == b->channel && a->seq == b->seq;
}

struct chunk_meta {
	struct layout_chunk_id id;
	uint32_t length;     /* committed bytes */
	uint32_t chunk_size; /* the file's chunk size */
	uint64_t commit_ver;
	uint64_t update_ver;
	uint64_t chain_ver;
	uint32_t crc;	     /* CRC32C of the content */
	struct stor_tag tag; /* of the update that made this version */
	bool has_block;
	struct stor_pos pos;  /* valid when has_block */
	uint32_t *sector_crc; /* nsect entries (malloc'd); NULL when length is 0 */
};

static inline uint32_t chunk_meta_nsect(uint32_t length)
{
	return (length + SLUICE_SECTOR_BYTES - 1) / SLUICE_SECTOR_BYTES;
}

static inline uint32_t stor_class_bytes(uint8_t cls)
{
	return SLUICE_CHUNK_SIZE_MIN << cls;
}

/* The smallest size class holding length bytes (length <= SLUICE_CHUNK_SIZE_MAX). */
uint8_t stor_class_for(uint32_t length);

/* True if chunk_size is a power of two in [SLUICE_CHUNK_SIZE_MIN, SLUICE_CHUNK_SIZE_MAX]. */
bool chunk_size_valid(uint32_t chunk_size);

void chunk_meta_key(const struct layout_chunk_id *id, uint8_t key[CHUNK_META_KEY_BYTES]);
/* 0, or -EBADMSG when key is not a chunk key. */
SLUICE_MUST_USE int chunk_meta_key_decode(const void *key, size_t len, struct layout_chunk_id *id);

/* Bytes chunk_meta_encode writes for m. */
size_t chunk_meta_encoded_size(const struct chunk_meta *m);
/* Encode m (which must be valid: asserted) into out (chunk_meta_encoded_size bytes). */
void chunk_meta_encode(const struct chunk_meta *m, uint8_t *out);
/*
 * Decode a value read for chunk id. On success *out is filled and owns a malloc'd
 * sector_crc array (chunk_meta_release). -EBADMSG for a malformed value (bad format, sizes,
 * field ranges, trailing CRC, or a content CRC that does not fold from the sector CRCs),
 * -ENOMEM.
 */
SLUICE_MUST_USE int chunk_meta_decode(const struct layout_chunk_id *id, const void *val, size_t len,
				      struct chunk_meta *out);
void chunk_meta_release(struct chunk_meta *m);

/* Content CRC folded from sector CRCs of a content of `length` bytes. */
uint32_t chunk_meta_fold_crc(const uint32_t *sector_crc, uint32_t length);

#endif
