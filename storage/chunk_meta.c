/*
 * chunk_meta.c - encoding, decoding and validation of chunk metadata (see chunk_meta.h for
 * the layout). Decoding treats the value as hostile: every length and range is checked
 * before use and nothing is allocated before the sizes agree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "storage/chunk_meta.h"

#define FLAG_HAS_BLOCK 0x01u

static_assert(CHUNK_META_FIXED_BYTES == 72, "layout in chunk_meta.h");

uint8_t stor_class_for(uint32_t length)
{
	uint8_t cls = 0;

	ASSERT(length <= SLUICE_CHUNK_SIZE_MAX);
	while (stor_class_bytes(cls) < length)
		cls++;
	return cls;
}

bool chunk_size_valid(uint32_t chunk_size)
{
	return chunk_size >= SLUICE_CHUNK_SIZE_MIN && chunk_size <= SLUICE_CHUNK_SIZE_MAX &&
	       (chunk_size & (chunk_size - 1)) == 0;
}

void chunk_meta_key(const struct layout_chunk_id *id, uint8_t key[CHUNK_META_KEY_BYTES])
{
	key[0] = CHUNK_META_KEY_PREFIX;
	layout_chunk_id_encode(id, key + 1);
}

int chunk_meta_key_decode(const void *key, size_t len, struct layout_chunk_id *id)
{
	const uint8_t *k = key;

	if (len != CHUNK_META_KEY_BYTES || k[0] != CHUNK_META_KEY_PREFIX)
		return -EBADMSG;
	return layout_chunk_id_decode(k + 1, len - 1, id) == 0 ? 0 : -EBADMSG;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint32_t chunk_meta_fold_crc(const uint32_t *sector_crc, uint32_t length)
{
	uint32_t crc = 0, nsect = chunk_meta_nsect(length);

	for (uint32_t i = 0; i < nsect; i++) {
		uint32_t n = i + 1 < nsect ? SLUICE_SECTOR_BYTES : length - i * SLUICE_SECTOR_BYTES;

		crc = crc32c_combine(crc, sector_crc[i], n);
	}
	return crc;
}

/* The invariants every stored chunk satisfies; checked on encode (ASSERT) and decode. */
static bool meta_valid(const struct chunk_meta *m)
{
	if (!chunk_size_valid(m->chunk_size) || m->length > m->chunk_size)
		return false;
	if (m->commit_ver == 0 || m->update_ver != m->commit_ver)
		return false;
	if (m->has_block != (m->length > 0))
		return false;
	if (m->tag.client == 0 && (m->tag.channel != 0 || m->tag.seq != 0))
		return false; /* one encoding of "no tag" */
	if (m->has_block) {
		if (m->pos.cls >= SLUICE_STOR_CLASSES ||
		    stor_class_bytes(m->pos.cls) > m->chunk_size ||
		    stor_class_bytes(m->pos.cls) < m->length ||
		    m->pos.file >= SLUICE_STOR_FILES_PER_CLASS ||
		    m->pos.block >= SLUICE_STOR_FILE_BLOCKS_MAX)
			return false;
	}
	return true;
}

size_t chunk_meta_encoded_size(const struct chunk_meta *m)
{
	return CHUNK_META_FIXED_BYTES + 4u * chunk_meta_nsect(m->length) + 4u;
}

void chunk_meta_encode(const struct chunk_meta *m, uint8_t *out)
{
	uint32_t nsect = chunk_meta_nsect(m->length);
	uint8_t *p = out;

	ASSERT(meta_valid(m));
	p[0] = CHUNK_META_FORMAT;
	p[1] = m->has_block ? FLAG_HAS_BLOCK : 0;
	p[2] = m->has_block ? m->pos.cls : 0;
	p[3] = 0;
	put32(p + 4, m->has_block ? m->pos.file : 0);
	put32(p + 8, m->has_block ? m->pos.block : 0);
	put32(p + 12, m->length);
	put32(p + 16, m->chunk_size);
	put64(p + 20, m->commit_ver);
	put64(p + 28, m->update_ver);
	put64(p + 36, m->chain_ver);
	put32(p + 44, m->crc);
	put32(p + 48, nsect);
	put64(p + 52, m->tag.client);
	put32(p + 60, m->tag.channel);
	put64(p + 64, m->tag.seq);
	p += CHUNK_META_FIXED_BYTES;
	for (uint32_t i = 0; i < nsect; i++, p += 4)
		put32(p, m->sector_crc[i]);
	put32(p, crc32c(0, out, (size_t)(p - out)));
}

int chunk_meta_decode(const struct layout_chunk_id *id, const void *val, size_t len,
		      struct chunk_meta *out)
{
	const uint8_t *p = val;
	struct chunk_meta m = {.id = *id};
	uint32_t nsect;

	if (len < CHUNK_META_FIXED_BYTES + 4u || p[0] != CHUNK_META_FORMAT ||
	    (p[1] & ~FLAG_HAS_BLOCK) != 0 || p[3] != 0)
		return -EBADMSG;
	nsect = get32(p + 48);
	if (nsect > CHUNK_META_MAX_SECTORS || len != CHUNK_META_FIXED_BYTES + 4u * nsect + 4u)
		return -EBADMSG;
	if (get32(p + len - 4) != crc32c(0, p, len - 4))
		return -EBADMSG;
	m.has_block = (p[1] & FLAG_HAS_BLOCK) != 0;
	m.pos = (struct stor_pos){.cls = p[2], .file = get32(p + 4), .block = get32(p + 8)};
	m.length = get32(p + 12);
	m.chunk_size = get32(p + 16);
	m.commit_ver = get64(p + 20);
	m.update_ver = get64(p + 28);
	m.chain_ver = get64(p + 36);
	m.crc = get32(p + 44);
	m.tag = (struct stor_tag){get64(p + 52), get32(p + 60), get64(p + 64)};
	if (!meta_valid(&m) || nsect != chunk_meta_nsect(m.length))
		return -EBADMSG;
	if (!m.has_block && (m.pos.cls != 0 || m.pos.file != 0 || m.pos.block != 0))
		return -EBADMSG; /* one encoding per chunk: no position without a block */
	if (nsect > 0) {
		m.sector_crc = malloc(4u * nsect);
		if (m.sector_crc == NULL)
			return -ENOMEM;
		for (uint32_t i = 0; i < nsect; i++)
			m.sector_crc[i] = get32(p + CHUNK_META_FIXED_BYTES + 4u * i);
		if (chunk_meta_fold_crc(m.sector_crc, m.length) != m.crc) {
			free(m.sector_crc);
			return -EBADMSG;
		}
	} else if (m.crc != 0) {
		return -EBADMSG;
	}
	*out = m;
	return 0;
}

void chunk_meta_release(struct chunk_meta *m)
{
	if (m == NULL)
		return;
	free(m->sector_crc);
	m->sector_crc = NULL;
}
