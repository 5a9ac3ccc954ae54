/*
 * fuzz_chunk_meta.c - randomized robustness test of the chunk metadata decoder
 * (storage/chunk_meta.c), which reads values back from RocksDB: a bit rot or a bug must be
 * reported as -EBADMSG, never crash or yield a chunk that breaks the engine's invariants.
 *
 *     fuzz_chunk_meta [seed] [iterations]      (defaults: 0x5eed, 100000)
 *
 * Inputs: valid encodings of random chunk metadata (which must decode to the same fields),
 * then mutated copies (bit flips, byte overwrites with boundary values, truncations,
 * extensions, spliced lengths) and pure random bytes. For every input: no crash (run under
 * ASan/UBSan), the result is 0 or -EBADMSG, and anything accepted satisfies the invariants
 * (length <= chunk_size, block class fits, sector count and content CRC consistent) and
 * re-encodes to the same bytes. Single-threaded. Exit 0 pass, 1 fail.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "storage/chunk_meta.h"

static unsigned failures;

#define FAIL(...)                                                          \
	do {                                                               \
		fprintf(stderr, "fuzz_chunk_meta: iteration %lu: ", iter); \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		failures++;                                                \
	} while (0)

static unsigned long iter;

/* A random valid chunk (sector CRCs random, content CRC folded from them). */
static void random_meta(struct chunk_meta *m, uint32_t *crcs)
{
	uint8_t size_log = (uint8_t)(16 + env_random_below(5)); /* 64 KiB .. 1 MiB here */
	uint32_t chunk_size = 1u << size_log;
	uint32_t len = env_random_below(4) == 0 ? 0 : 1 + (uint32_t)env_random_below(chunk_size);

	*m = (struct chunk_meta){
		.id = {.inode = env_random_u64(), .index = (uint32_t)env_random_u64()},
		.length = len,
		.chunk_size = chunk_size,
		.commit_ver = 1 + env_random_below(1000),
		.chain_ver = env_random_below(50),
		.has_block = len > 0};
	m->update_ver = m->commit_ver;
	if (len > 0) {
		m->pos.cls = stor_class_for(len);
		m->pos.cls += (uint8_t)env_random_below((unsigned)(size_log - 16 - m->pos.cls) + 1);
		m->pos.file = (uint32_t)env_random_below(SLUICE_STOR_FILES_PER_CLASS);
		m->pos.block = (uint32_t)env_random_below(SLUICE_STOR_FILE_BLOCKS_MAX);
		for (uint32_t i = 0; i < chunk_meta_nsect(len); i++)
			crcs[i] = (uint32_t)env_random_u64();
		m->sector_crc = crcs;
		m->crc = chunk_meta_fold_crc(crcs, len);
	}
}

static void check_accepted(const struct chunk_meta *d, const uint8_t *buf, size_t len)
{
	static uint8_t again[CHUNK_META_VALUE_MAX];

	if (!chunk_size_valid(d->chunk_size) || d->length > d->chunk_size)
		FAIL("accepted a length past the chunk size");
	if (d->has_block && stor_class_bytes(d->pos.cls) < d->length)
		FAIL("accepted a block too small for the length");
	if (chunk_meta_encoded_size(d) != len) {
		FAIL("accepted value does not re-encode to its size");
		return;
	}
	chunk_meta_encode(d, again);
	if (memcmp(again, buf, len) != 0)
		FAIL("accepted value does not re-encode to the same bytes");
}

static void mutate(uint8_t *buf, size_t *len, size_t cap)
{
	static const uint8_t specials[] = {0, 1, 0x7f, 0x80, 0xfe, 0xff};

	switch (env_random_below(5)) {
	case 0: /* bit flips */
		for (unsigned n = 1 + (unsigned)env_random_below(4); n > 0 && *len > 0; n--) {
			size_t at = env_random_below(*len);

			buf[at] ^= (uint8_t)(1u << env_random_below(8));
		}
		break;
	case 1: /* boundary bytes */
		if (*len > 0)
			buf[env_random_below(*len)] = specials[env_random_below(sizeof(specials))];
		break;
	case 2: /* truncate */
		*len = env_random_below(*len + 1);
		break;
	case 3: /* extend */
		while (*len < cap && env_random_below(4) != 0)
			buf[(*len)++] = (uint8_t)env_random_u64();
		break;
	default: /* a field set to a random value and the trailing CRC fixed up: reaches the
		  * field checks behind the CRC */
		if (*len >= CHUNK_META_FIXED_BYTES + 4) {
			size_t at = 4 * env_random_below(CHUNK_META_FIXED_BYTES / 4);
			uint32_t v = (uint32_t)env_random_u64(), crc;

			memcpy(buf + at, &v, 4);
			crc = crc32c(0, buf, *len - 4);
			memcpy(buf + *len - 4, &crc, 4);
		}
	}
}

int main(int argc, char **argv)
{
	unsigned long seed = argc > 1 ? strtoul(argv[1], NULL, 0) : 0x5eed;
	unsigned long iters = argc > 2 ? strtoul(argv[2], NULL, 0) : 100000;
	static uint32_t crcs[CHUNK_META_MAX_SECTORS];
	static uint8_t buf[CHUNK_META_VALUE_MAX + 64];
	unsigned long accepted = 0, refused = 0;

	env_seed(seed);
	for (iter = 0; iter < iters; iter++) {
		struct chunk_meta m, d;
		size_t len;
		int rc;

		random_meta(&m, crcs);
		len = chunk_meta_encoded_size(&m);
		chunk_meta_encode(&m, buf);
		if (iter % 4 == 0) { /* the valid encoding itself */
			rc = chunk_meta_decode(&m.id, buf, len, &d);
			if (rc != 0 || d.length != m.length || d.crc != m.crc ||
			    d.commit_ver != m.commit_ver ||
			    (m.has_block && d.pos.block != m.pos.block))
				FAIL("valid encoding not decoded to the same fields (%d)", rc);
			if (rc == 0)
				chunk_meta_release(&d);
			continue;
		}
		if (iter % 16 == 1) { /* random bytes */
			len = env_random_below(256);
			env_random_bytes(buf, len);
		} else {
			mutate(buf, &len, sizeof(buf));
		}
		rc = chunk_meta_decode(&m.id, buf, len, &d);
		if (rc == 0) {
			accepted++;
			check_accepted(&d, buf, len);
			chunk_meta_release(&d);
		} else if (rc == -EBADMSG) {
			refused++;
		} else {
			FAIL("unexpected result %d", rc);
		}
	}
	printf("fuzz_chunk_meta: %lu iterations, %lu mutated inputs accepted, %lu refused, "
	       "%u failures\n",
	       iters, accepted, refused, failures);
	if (iters >= 10000 && refused == 0)
		FAIL("no input was refused: the mutator lost its reach");
	return failures ? 1 : 0;
}
