/*
 * keys.h - the metadata store's key schema (DESIGN.md section 7). Private to meta/.
 *
 * Every id is big-endian so that memcmp order is numeric order and ranges sort together:
 *
 *   'I' ino(8)                     -> Inode
 *   'D' parent(8) name(1..255)     -> Dentry {ino, type}; a directory's entries are one range
 *   'X' ino(8) name(1..255)        -> XattrValue
 *   'S' ino(8) session(8)          -> Session {client, opened}
 *   'G' due_ns(8) ino(8)           -> GcEntry; due_ns = wall time it may be processed, so
 *                                     the queue is read in due order from its start
 *   'N' name                       -> Counter ("ino", "session") or FormatInfo ("format")
 *   'R' client(8) request(8)       -> OpResult of a mutating request (idempotent retries)
 *
 * Values are protobuf-c messages of proto/meta.proto. One partition (0) per store today;
 * partitions will be separate stores, so the partition is not part of the key.
 */
#ifndef SLUICE_META_KEYS_H
#define SLUICE_META_KEYS_H

#include <stdint.h>
#include <string.h>

#include "common/limits.h"

#define MK_INODE   'I'
#define MK_DENTRY  'D'
#define MK_XATTR   'X'
#define MK_SESSION 'S'
#define MK_GC	   'G'
#define MK_COUNTER 'N'
#define MK_RESULT  'R'

#define MK_ID_KEY  9			     /* tag + id */
#define MK_PAIR	   17			     /* tag + id + id */
#define MK_NAMEKEY (9 + SLUICE_NAME_MAX + 1) /* tag + id + name (xattr names too) */

static_assert(SLUICE_META_XATTR_NAME_MAX <= SLUICE_NAME_MAX, "xattr keys fit MK_NAMEKEY");

static inline void mk_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t mk_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* tag + id: the inode key, and the prefixes of a directory's dentries, an inode's xattrs
 * and sessions, a client's results. */
static inline size_t mk_id(uint8_t *k, char tag, uint64_t id)
{
	k[0] = (uint8_t)tag;
	mk_be64(k + 1, id);
	return MK_ID_KEY;
}

/* tag + id + name (dentries, xattrs); name length already checked by the caller. */
static inline size_t mk_name(uint8_t *k, char tag, uint64_t id, const void *name, size_t nlen)
{
	mk_id(k, tag, id);
	memcpy(k + MK_ID_KEY, name, nlen);
	return MK_ID_KEY + nlen;
}

/* tag + id + id (sessions, GC entries, results). */
static inline size_t mk_pair(uint8_t *k, char tag, uint64_t a, uint64_t b)
{
	mk_id(k, tag, a);
	mk_be64(k + MK_ID_KEY, b);
	return MK_PAIR;
}

/* 'N' + counter name. */
static inline size_t mk_counter(uint8_t *k, const char *name)
{
	size_t n = strlen(name);

	k[0] = MK_COUNTER;
	memcpy(k + 1, name, n);
	return 1 + n;
}

#endif
