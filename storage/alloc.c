/*
 * alloc.c - per-file bitmaps of used blocks (see alloc.h). Owned by one thread.
 *
 * A set bit is a used block. Each file keeps a hint (the word after the last allocation)
 * so allocation is amortized O(1) while a file fills, and a count of free blocks so full
 * files are skipped without scanning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/alloc.h"

struct alloc_file {
	uint64_t *bits;
	uint32_t nblocks;
	uint32_t nfree;
	uint32_t hint; /* word index to search from */
};

struct alloc_class {
	struct alloc_file files[SLUICE_STOR_FILES_PER_CLASS];
	uint32_t nfiles;
};

struct stor_alloc {
	struct alloc_class cls[SLUICE_STOR_CLASSES];
};

static uint32_t words_for(uint32_t nblocks)
{
	return (nblocks + 63) / 64;
}

int stor_alloc_create(struct stor_alloc **out)
{
	struct stor_alloc *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -ENOMEM;
	*out = a;
	return 0;
}

void stor_alloc_destroy(struct stor_alloc *a)
{
	if (a == NULL)
		return;
	for (unsigned c = 0; c < SLUICE_STOR_CLASSES; c++)
		for (uint32_t f = 0; f < a->cls[c].nfiles; f++)
			free(a->cls[c].files[f].bits);
	free(a);
}

int stor_alloc_set_blocks(struct stor_alloc *a, uint8_t cls, uint32_t file, uint32_t nblocks)
{
	struct alloc_class *c;
	struct alloc_file *f;
	uint64_t *bits;

	if (cls >= SLUICE_STOR_CLASSES || file >= SLUICE_STOR_FILES_PER_CLASS ||
	    nblocks > SLUICE_STOR_FILE_BLOCKS_MAX)
		return -EINVAL;
	c = &a->cls[cls];
	if (file > c->nfiles)
		return -EINVAL;
	f = &c->files[file];
	if (file < c->nfiles && nblocks < f->nblocks)
		return -EINVAL;
	bits = realloc(f->bits, (size_t)words_for(nblocks) * 8 + 8);
	if (bits == NULL)
		return -ENOMEM;
	memset(bits + words_for(f->nblocks), 0,
	       (size_t)(words_for(nblocks) - words_for(f->nblocks)) * 8);
	f->bits = bits;
	f->nfree += nblocks - f->nblocks;
	f->nblocks = nblocks;
	if (file == c->nfiles)
		c->nfiles++;
	return 0;
}

uint32_t stor_alloc_nfiles(const struct stor_alloc *a, uint8_t cls)
{
	ASSERT(cls < SLUICE_STOR_CLASSES);
	return a->cls[cls].nfiles;
}

uint32_t stor_alloc_file_blocks(const struct stor_alloc *a, uint8_t cls, uint32_t file)
{
	ASSERT(cls < SLUICE_STOR_CLASSES && file < a->cls[cls].nfiles);
	return a->cls[cls].files[file].nblocks;
}

static struct alloc_file *file_of(struct stor_alloc *a, const struct stor_pos *pos)
{
	if (pos->cls >= SLUICE_STOR_CLASSES || pos->file >= a->cls[pos->cls].nfiles)
		return NULL;
	struct alloc_file *f = &a->cls[pos->cls].files[pos->file];

	return pos->block < f->nblocks ? f : NULL;
}

static bool bit_test(const struct alloc_file *f, uint32_t b)
{
	return (f->bits[b / 64] >> (b % 64)) & 1;
}

int stor_alloc_mark_used(struct stor_alloc *a, const struct stor_pos *pos)
{
	struct alloc_file *f = file_of(a, pos);

	if (f == NULL)
		return -ERANGE;
	if (bit_test(f, pos->block))
		return -EEXIST;
	f->bits[pos->block / 64] |= UINT64_C(1) << (pos->block % 64);
	f->nfree--;
	return 0;
}

/* First clear bit of f at or after word `from`, wrapping once; f has a free block. */
static uint32_t find_free(const struct alloc_file *f, uint32_t from)
{
	uint32_t nwords = words_for(f->nblocks);

	for (uint32_t i = 0; i < nwords; i++) {
		uint32_t w = (from + i) % nwords;
		uint64_t inv = ~f->bits[w];

		if (w == nwords - 1 && f->nblocks % 64 != 0)
			inv &= (UINT64_C(1) << (f->nblocks % 64)) - 1; /* past the end */
		if (inv != 0)
			return w * 64 + (uint32_t)__builtin_ctzll(inv);
	}
	PANIC("alloc: file claims %u free blocks but has none", f->nfree);
}

int stor_alloc_get(struct stor_alloc *a, uint8_t cls, struct stor_pos *out)
{
	struct alloc_class *c;

	ASSERT(cls < SLUICE_STOR_CLASSES);
	c = &a->cls[cls];
	for (uint32_t i = 0; i < c->nfiles; i++) {
		struct alloc_file *f = &c->files[i];

		if (f->nfree == 0)
			continue;
		uint32_t b = find_free(f, f->hint);

		f->bits[b / 64] |= UINT64_C(1) << (b % 64);
		f->nfree--;
		f->hint = b / 64;
		*out = (struct stor_pos){.cls = cls, .file = i, .block = b};
		return 0;
	}
	return -ENOSPC;
}

void stor_alloc_put(struct stor_alloc *a, const struct stor_pos *pos)
{
	struct alloc_file *f = file_of(a, pos);

	ASSERT(f != NULL && bit_test(f, pos->block));
	f->bits[pos->block / 64] &= ~(UINT64_C(1) << (pos->block % 64));
	f->nfree++;
}

int stor_alloc_grow_point(const struct stor_alloc *a, uint8_t cls, uint32_t *file,
			  uint32_t *nblocks)
{
	const struct alloc_class *c;

	ASSERT(cls < SLUICE_STOR_CLASSES);
	c = &a->cls[cls];
	if (c->nfiles > 0 && c->files[c->nfiles - 1].nblocks < SLUICE_STOR_FILE_BLOCKS_MAX) {
		*file = c->nfiles - 1;
		*nblocks = c->files[c->nfiles - 1].nblocks;
		return 0;
	}
	if (c->nfiles == SLUICE_STOR_FILES_PER_CLASS)
		return -ENOSPC;
	*file = c->nfiles;
	*nblocks = 0;
	return 0;
}

void stor_alloc_stats(const struct stor_alloc *a, struct stor_alloc_stats *out)
{
	struct stor_alloc_stats s = {0};

	for (uint8_t c = 0; c < SLUICE_STOR_CLASSES; c++) {
		for (uint32_t i = 0; i < a->cls[c].nfiles; i++) {
			const struct alloc_file *f = &a->cls[c].files[i];
			uint64_t bs = stor_class_bytes(c);

			s.allocated_bytes += (uint64_t)f->nblocks * bs;
			s.used_bytes += (uint64_t)(f->nblocks - f->nfree) * bs;
			s.free_blocks += f->nfree;
		}
	}
	*out = s;
}
