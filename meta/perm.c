/*
 * perm.c - POSIX permission checks and name rules for the metadata store. Pure functions:
 * no I/O, no state, any thread.
 *
 * Credentials come from the caller (uid, gid, supplementary gids) with each request; the
 * server checks them against the inode, the way the Linux VFS does for a local file system
 * (generic_permission without ACLs): root passes read and write checks always, and search
 * or execute when some x bit is set (always for directories).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/store_i.h"

bool perm_in_group(const struct meta_creds *cr, uint32_t gid)
{
	if (cr->gid == gid)
		return true;
	for (uint32_t i = 0; i < cr->ngids; i++)
		if (cr->gids[i] == gid)
			return true;
	return false;
}

int perm_check(const struct meta_creds *cr, const struct meta_inode *in, int want)
{
	uint32_t bits;

	if (cr->uid == 0) {
		if (!(want & PERM_X) || in->type == META_FT_DIR || (in->mode & 0111))
			return 0;
		return -EACCES;
	}
	if (cr->uid == in->uid)
		bits = (in->mode >> 6) & 7;
	else if (perm_in_group(cr, in->gid))
		bits = (in->mode >> 3) & 7;
	else
		bits = in->mode & 7;
	return ((uint32_t)want & ~bits) ? -EACCES : 0;
}

int perm_sticky(const struct meta_creds *cr, const struct meta_inode *dir,
		const struct meta_inode *victim)
{
	if (!(dir->mode & S_ISVTX) || cr->uid == 0 || cr->uid == dir->uid || cr->uid == victim->uid)
		return 0;
	return -EPERM;
}

int name_check(const void *name, size_t nlen)
{
	if (nlen == 0)
		return -ENOENT;
	if (nlen > SLUICE_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', nlen) || memchr(name, '\0', nlen))
		return -EINVAL;
	return 0;
}

bool name_is_dot(const void *name, size_t nlen)
{
	return nlen == 1 && ((const char *)name)[0] == '.';
}

bool name_is_dotdot(const void *name, size_t nlen)
{
	return nlen == 2 && memcmp(name, "..", 2) == 0;
}

int dir_usable(const struct meta_inode *dir)
{
	if (dir->type != META_FT_DIR)
		return -ENOTDIR;
	if (dir->nlink == 0)
		return -ENOENT; /* removed (rmtree): being taken apart by GC */
	return 0;
}
