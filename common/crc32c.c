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
 * matrix. The operators for 2^k zero bytes are built once, so a combine costs 32 word
 * operations per set bit of the length (storage folds sector CRCs on every write).
 */
#include <pthread.h>
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

#define CRC32C_POLY_REFLECTED 0x82F63B78u

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

/* zeros_op[k] appends 2^k zero bytes to the CRC register. Built once (pthread_once). */
static uint32_t zeros_op[64][32];
static pthread_once_t zeros_op_once = PTHREAD_ONCE_INIT;

static void zeros_op_init(void)
{
	uint32_t bit1[32], bit2[32], bit4[32], row = 1;

	bit1[0] = CRC32C_POLY_REFLECTED; /* one zero bit */
	for (int n = 1; n < 32; n++, row <<= 1)
		bit1[n] = row;
	gf2_square(bit2, bit1);
	gf2_square(bit4, bit2);
	gf2_square(zeros_op[0], bit4); /* one byte */
	for (int k = 1; k < 64; k++)
		gf2_square(zeros_op[k], zeros_op[k - 1]);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, size_t len_b)
{
	(void)pthread_once(&zeros_op_once, zeros_op_init); /* cannot fail */
	for (int k = 0; len_b != 0; k++, len_b >>= 1)
		if (len_b & 1)
			crc_a = gf2_times(zeros_op[k], crc_a);
	return crc_a ^ crc_b;
}
