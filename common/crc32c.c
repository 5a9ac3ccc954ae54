/*
 * crc32c.c - CRC32C on top of ISA-L's crc32_iscsi.
 *
 * crc32_iscsi(buf, len, init) runs the raw reflected CRC register: it neither inverts its
 * input nor its output. The standard CRC32C starts the register at ~0 and inverts the
 * result, so crc32c(crc, ...) feeds it ~crc and returns ~result. Chaining then works
 * because crc32c's output, inverted back, is exactly the register state after the first
 * part. ISA-L takes an int length, so huge buffers go through in 1 GiB steps. Pure; any
 * thread.
 */
#include <isa-l/crc.h>

#include "common/crc32c.h"

#define CRC_STEP_BYTES (1u << 30) /* fits ISA-L's int len */

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* ISA-L's prototype lacks const but only reads the buffer. */
	unsigned char *p = (unsigned char *)buf;

	crc = ~crc;
	while (len > 0) {
		size_t n = len < CRC_STEP_BYTES ? len : CRC_STEP_BYTES;

		crc = crc32_iscsi(p, (int)n, crc);
		p += n;
		len -= n;
	}
	return ~crc;
}

uint32_t crc32c_iov(uint32_t crc, const struct iovec *iov, unsigned iovcnt)
{
	for (unsigned i = 0; i < iovcnt; i++)
		crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	return crc;
}
