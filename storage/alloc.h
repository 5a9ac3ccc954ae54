/*
 * alloc.h - the free-block map of one target (DESIGN.md section 6).
 *
 * Blocks live in data files, per size class (block size 64 KiB << cls) and file number.
 * The map is never stored: at start the target adds each data file with its size in blocks
 * and marks every block some chunk's metadata names; everything else is free. While running,
 * the engine takes blocks for new chunk versions and returns the old ones after the metadata
 * that stops naming them is durable.
 *
 * When a class has no free block the engine grows a file (fallocate on a worker) and calls
 * stor_alloc_set_blocks with the new size; stor_alloc_grow_point says which file to grow.
 *
 * One bitmap per file, searched from a rotating hint. Not thread-safe: owned by the
 * target's reactor thread (and the opening thread before that).
 */
#ifndef SLUICE_STORAGE_ALLOC_H
#define SLUICE_STORAGE_ALLOC_H

#include <stdint.h>

#include "common/assert.h"
#include "storage/chunk_meta.h"

struct stor_alloc;

SLUICE_MUST_USE int stor_alloc_create(struct stor_alloc **out);
void stor_alloc_destroy(struct stor_alloc *a); /* NULL ok */

/*
 * Data file `file` of class cls now holds nblocks blocks. Files of a class are added in
 * order (file == number of files so far) or grown (nblocks >= current). -EINVAL for a gap,
 * a shrink, cls/file/nblocks out of range; -ENOMEM.
 */
SLUICE_MUST_USE int stor_alloc_set_blocks(struct stor_alloc *a, uint8_t cls, uint32_t file,
					  uint32_t nblocks);
uint32_t stor_alloc_nfiles(const struct stor_alloc *a, uint8_t cls);
uint32_t stor_alloc_file_blocks(const struct stor_alloc *a, uint8_t cls, uint32_t file);

/* Mark a block as used at start. -ERANGE: no such block; -EEXIST: already used (two
 * chunks name one block: the metadata is damaged). */
SLUICE_MUST_USE int stor_alloc_mark_used(struct stor_alloc *a, const struct stor_pos *pos);

/* Take a free block of class cls. -ENOSPC: none free, grow first. */
SLUICE_MUST_USE int stor_alloc_get(struct stor_alloc *a, uint8_t cls, struct stor_pos *out);

/* Return a used block (asserted). */
void stor_alloc_put(struct stor_alloc *a, const struct stor_pos *pos);

/*
 * Where class cls grows next: *file and its current *nblocks (0 for a new file). The last
 * file grows until SLUICE_STOR_FILE_BLOCKS_MAX, then a new one starts. -ENOSPC when the
 * class has SLUICE_STOR_FILES_PER_CLASS full files.
 */
SLUICE_MUST_USE int stor_alloc_grow_point(const struct stor_alloc *a, uint8_t cls, uint32_t *file,
					  uint32_t *nblocks);

struct stor_alloc_stats {
	uint64_t used_bytes;	  /* blocks in use */
	uint64_t allocated_bytes; /* all blocks of all data files */
	uint64_t free_blocks;
};
void stor_alloc_stats(const struct stor_alloc *a, struct stor_alloc_stats *out);

#endif
