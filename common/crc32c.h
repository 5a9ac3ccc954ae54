/*
 * crc32c.h - CRC32C (Castagnoli, the iSCSI polynomial), hardware accelerated by ISA-L.
 *
 * crc32c(0, buf, len) is the standard CRC32C of buf ("123456789" -> 0xE3069283).
 * Chaining works: crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a||b, na+nb).
 * Thread-safe, pure.
 */
#ifndef SLUICE_COMMON_CRC32C_H
#define SLUICE_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* CRC32C over the concatenation of an iovec array, chained from crc. */
uint32_t crc32c_iov(uint32_t crc, const struct iovec *iov, unsigned iovcnt);

/*
 * CRC32C of a||b from crc_a = crc32c(0, a, ...), crc_b = crc32c(0, b, ...) and b's length,
 * without the bytes: storage keeps a CRC per 4 KiB sector and derives the chunk's CRC
 * from them. O(log len_b) small matrix products; a few dozen word operations.
 */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b);
#endif
