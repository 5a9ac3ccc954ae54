/*
 * crc32c.c - CRC32C on top of ISA-L's crc32_iscsi.
 *
 * crc32_iscsi(buf, len, init) runs the raw reflected CRC register: it neither inverts its
 * input nor its output. The standard CRC32C starts the register at ~0 and inverts the
 * result, so crc32c(crc, ...) feeds it ~crc and returns ~result. Chaining then works
 * because crc32c's output, inverted back, is exactly the register state after the first
 * part. ISA-L takes an int length, so huge buffers go through in 1 GiB steps. Pure; any
 * thread.
 *
 * crc32c_combine is the GF(2) method of zlib's crc32_combine (Mark Adler): appending n zero
 * bytes to a message is a linear map on the 32-bit CRC register, applied here as a 32x32 bit
 * matrix raised to the power n by repeated squaring. The operator for one 4 KiB sector is
 * built once (pthread_once) since storage combines sector CRCs on every write.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <isa-l/crc.h>

#include "common/crc32c.h"
#include "common/limits.h"

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

#define CRC32C_POLY_REFLECTED 0x82F63B78u
#define CRC32C_SECTOR_BYTES   SLUICE_SECTOR_BYTES

/* mat * vec over GF(2): mat[i] is the image of bit i. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec != 0; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		square[n] = gf2_times(mat, mat[n]);
}

/* out = the operator that appends len zero bytes (len > 0). */
static void zeros_operator(uint32_t out[32], size_t len)
{
	uint32_t odd[32], even[32], row = 1;
	bool have = false;

	/* odd = one zero bit */
	odd[0] = CRC32C_POLY_REFLECTED;
	for (int n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd); /* two zero bits */
	gf2_square(odd, even); /* four zero bits */
	/* Square up through 1, 2, 4, ... bytes, multiplying in the set bits of len. */
	for (;;) {
		gf2_square(even, odd);
		if (len & 1) {
			if (have) {
				uint32_t tmp[32];

				for (int n = 0; n < 32; n++)
					tmp[n] = gf2_times(even, out[n]);
				memcpy(out, tmp, sizeof(tmp));
			} else {
				memcpy(out, even, sizeof(even));
				have = true;
			}
		}
		len >>= 1;
		if (len == 0)
			break;
		memcpy(odd, even, sizeof(even));
	}
}

static uint32_t sector_op[32];
static pthread_once_t sector_op_once = PTHREAD_ONCE_INIT;

static void sector_op_init(void)
{
	zeros_operator(sector_op, CRC32C_SECTOR_BYTES);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b)
{
	uint32_t op[32];

	if (len_b == 0)
		return crc_a;
	if (len_b == CRC32C_SECTOR_BYTES) {
		(void)pthread_once(&sector_op_once, sector_op_init); /* cannot fail */
		return gf2_times(sector_op, crc_a) ^ crc_b;
	}
	zeros_operator(op, len_b);
	return gf2_times(op, crc_a) ^ crc_b;
}
