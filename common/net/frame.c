/*
 * frame.c - encoding and validation of the 48-byte frame header (see frame.h).
 *
 * Explicit little-endian stores and loads, so the layout is the same on any host and the
 * static_asserts in frame.h pin it. Validation order matters: the CRC is checked before
 * the lengths are believed, and nothing is allocated by the caller before this returns 0.
 */
#include <endian.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/net/frame.h"

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}
static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}
static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}
static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_SIZE])
{
	put32(out + 0, FRAME_MAGIC);
	put16(out + 4, FRAME_VERSION);
	put16(out + 6, h->flags);
	put32(out + 8, h->opcode);
	put32(out + 12, (uint32_t)h->status);
	put64(out + 16, h->req_id);
	put32(out + 24, h->payload_len);
	put32(out + 28, h->bulk_len);
	put32(out + 32, h->payload_crc);
	put32(out + 36, h->bulk_crc);
	put32(out + 40, h->timeout_ms);
	put32(out + 44, crc32c(0, out, FRAME_HDR_SIZE - 4));
}

static bool flags_valid(uint16_t flags)
{
	bool req = flags & FRAME_F_REQUEST, resp = flags & FRAME_F_RESPONSE;

	if (flags & ~FRAME_F_KNOWN_)
		return false;
	if (req == resp)
		return false; /* exactly one direction */
	if ((flags & FRAME_F_ONEWAY) && !req)
		return false;
	return true;
}

int frame_hdr_decode(const uint8_t in[FRAME_HDR_SIZE], struct frame_hdr *out, const char **why)
{
	struct frame_hdr h;
	const char *unused;

	if (!why)
		why = &unused;
	h.magic = get32(in + 0);
	if (h.magic != FRAME_MAGIC)
		return *why = "bad magic", -SLUICE_EPROTO;
	h.hdr_crc = get32(in + 44);
	if (h.hdr_crc != crc32c(0, in, FRAME_HDR_SIZE - 4))
		return *why = "header crc mismatch", -SLUICE_ECRC;
	h.version = get16(in + 4);
	if (h.version != FRAME_VERSION)
		return *why = "unsupported protocol version", -SLUICE_EPROTO;
	h.flags = get16(in + 6);
	if (!flags_valid(h.flags))
		return *why = "invalid flags", -SLUICE_EPROTO;
	h.opcode = get32(in + 8);
	h.status = (int32_t)get32(in + 12);
	h.req_id = get64(in + 16);
	h.payload_len = get32(in + 24);
	h.bulk_len = get32(in + 28);
	h.payload_crc = get32(in + 32);
	h.bulk_crc = get32(in + 36);
	h.timeout_ms = get32(in + 40);
	if (h.payload_len > SLUICE_FRAME_PAYLOAD_MAX)
		return *why = "payload length over limit", -SLUICE_ETOOBIG;
	if (h.bulk_len > SLUICE_FRAME_BULK_MAX)
		return *why = "bulk length over limit", -SLUICE_ETOOBIG;
	if (!(h.flags & FRAME_F_BULK_CRC) && h.bulk_crc != 0)
		return *why = "bulk crc set without its flag", -SLUICE_EPROTO;
	/* CRC32C of nothing is 0: an empty section with another CRC is a corrupt header. */
	if (h.payload_len == 0 && h.payload_crc != 0)
		return *why = "payload crc set for an empty payload", -SLUICE_EPROTO;
	if (h.bulk_len == 0 && h.bulk_crc != 0)
		return *why = "bulk crc set for an empty bulk", -SLUICE_EPROTO;
	*out = h;
	return 0;
}
