/*
 * test_crc32c.c - CRC32C against the standard check value, the RFC 3720 vectors, a slow
 * bitwise reference on random buffers (random lengths and alignments), chaining over random
 * splits, and the iovec variant.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/env.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define MAX_LEN	  10000
#define MAX_ALIGN 64
#define SEED	  0x5eed0c2c

/* Bit at a time, reflected polynomial 0x82F63B78: obviously right, slow. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void test_vectors(void)
{
	uint8_t buf[32];

	CHECK(crc32c(0, "123456789", 9) == 0xE3069283u);
	CHECK(crc32c(0, NULL, 0) == 0);
	CHECK(crc32c(0x12345678u, NULL, 0) == 0x12345678u);
	memset(buf, 0x00, sizeof(buf));
	CHECK(crc32c(0, buf, 32) == 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	CHECK(crc32c(0, buf, 32) == 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	CHECK(crc32c(0, buf, 32) == 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK(crc32c(0, buf, 32) == 0x113FDB5Cu);
	CHECK(crc_ref(0, (const uint8_t *)"123456789", 9) == 0xE3069283u);
}

static void test_against_reference(uint8_t *mem)
{
	for (int iter = 0; iter < 300; iter++) {
		size_t len = env_random_below(MAX_LEN + 1);
		uint8_t *p = mem + env_random_below(MAX_ALIGN);
		uint32_t init = iter % 2 ? (uint32_t)env_random_u64() : 0;

		env_random_bytes(p, len);
		CHECK(crc32c(init, p, len) == crc_ref(init, p, len));
	}
}

static void test_chaining(uint8_t *mem)
{
	for (int iter = 0; iter < 300; iter++) {
		size_t len = env_random_below(MAX_LEN + 1);
		uint32_t whole, crc = 0;
		size_t off = 0;

		env_random_bytes(mem, len);
		whole = crc32c(0, mem, len);
		while (off < len) {
			size_t n = 1 + env_random_below(len - off);

			crc = crc32c(crc, mem + off, n);
			off += n;
		}
		CHECK(crc == whole);
	}
}

static void test_iov(uint8_t *mem)
{
	struct iovec iov[16];

	for (int iter = 0; iter < 100; iter++) {
		size_t len = env_random_below(MAX_LEN + 1), off = 0;
		unsigned cnt = 0;

		env_random_bytes(mem, len);
		while (cnt < 15 && off < len) {
			size_t n = env_random_below(len - off + 1); /* empty elements too */

			iov[cnt++] = (struct iovec){.iov_base = mem + off, .iov_len = n};
			off += n;
		}
		iov[cnt++] = (struct iovec){.iov_base = mem + off, .iov_len = len - off};
		CHECK(crc32c_iov(0, iov, cnt) == crc32c(0, mem, len));
		CHECK(crc32c_iov(7, iov, 0) == 7);
	}
}

/* crc32c_combine against the CRC of the concatenation: random splits, the 4 KiB fast
 * path, empty parts, and a whole chunk folded sector by sector as storage does. */
static void test_combine(uint8_t *mem)
{
	for (int iter = 0; iter < 200; iter++) {
		size_t len = env_random_below(MAX_LEN + 1);
		size_t cut = env_random_below(len + 1);

		env_random_bytes(mem, len);
		CHECK(crc32c_combine(crc32c(0, mem, cut), crc32c(0, mem + cut, len - cut),
				     len - cut) == crc32c(0, mem, len));
	}
	CHECK(crc32c_combine(0x1234u, 0, 0) == 0x1234u);
	size_t len = MAX_LEN >= 5 * 4096 + 100 ? 5 * 4096 + 100 : MAX_LEN;
	uint32_t folded = 0;

	env_random_bytes(mem, len);
	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;

		folded = crc32c_combine(folded, crc32c(0, mem + off, n), n);
	}
	CHECK(folded == crc32c(0, mem, len));
}

int main(void)
{
	uint8_t *mem = malloc(MAX_LEN + MAX_ALIGN);

	CHECK(mem != NULL);
	env_seed(SEED); /* a failure reproduces */
	test_vectors();
	test_against_reference(mem);
	test_chaining(mem);
	test_iov(mem);
	test_combine(mem);
	free(mem);
	printf("test_crc32c: ok\n");
	return 0;
}
