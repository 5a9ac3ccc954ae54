/*
 * frame.h - the wire frame every Sluice message travels in (DESIGN.md section 2).
 *
 *     +---------------------------+------------------------+----------------------+
 *     | header, 48 bytes, LE      | payload (protobuf-c)   | bulk (raw bytes)     |
 *     +---------------------------+------------------------+----------------------+
 *
 * The header is fixed-size little-endian and protected by its own CRC32C, so a receiver
 * validates magic, version, flags, lengths and the header CRC before it allocates anything
 * for the payload or the bulk. The payload CRC is always computed; the bulk CRC is optional
 * (0 = not computed) because storage data carries its own end-to-end chunk CRC and a second
 * pass over 16 MiB per message costs throughput.
 *
 * The header lives here, below both the transport (which must find frame boundaries in a
 * TCP byte stream) and the RPC layer (which gives the fields their meaning).
 *
 * Pure functions, thread-safe.
 */
#ifndef SLUICE_COMMON_NET_FRAME_H
#define SLUICE_COMMON_NET_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/assert.h"
#include "common/limits.h"

#define FRAME_MAGIC    0x43494C53u /* "SLIC" on the wire */
#define FRAME_VERSION  1
#define FRAME_HDR_SIZE 48

enum frame_flag {
	FRAME_F_REQUEST = 1u << 0,
	FRAME_F_RESPONSE = 1u << 1,
	FRAME_F_ONEWAY = 1u << 2,   /* request that expects no response */
	FRAME_F_BULK_CRC = 1u << 3, /* bulk_crc is valid and must be checked */
	FRAME_F_KNOWN_ = (1u << 4) - 1,
};

/* Decoded header, host order. Field order mirrors the wire layout. */
struct frame_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint32_t opcode; /* service id << 16 | op */
	int32_t status;	 /* responses: 0 or negative error (common/err.h) */
	uint64_t req_id;
	uint32_t payload_len;
	uint32_t bulk_len;
	uint32_t payload_crc;
	uint32_t bulk_crc;
	uint32_t timeout_ms; /* requests: time budget the caller still grants; 0 = none */
	uint32_t hdr_crc;    /* CRC32C of the 44 bytes before it */
};
static_assert(sizeof(struct frame_hdr) == FRAME_HDR_SIZE, "frame header is 48 bytes");
static_assert(offsetof(struct frame_hdr, req_id) == 16, "req_id is 8-aligned on the wire");
static_assert(offsetof(struct frame_hdr, hdr_crc) == FRAME_HDR_SIZE - 4, "crc is last");

static inline uint32_t frame_opcode(uint16_t service, uint16_t op)
{
	return (uint32_t)service << 16 | op;
}
static inline uint16_t frame_service(uint32_t opcode)
{
	return (uint16_t)(opcode >> 16);
}
static inline uint16_t frame_op(uint32_t opcode)
{
	return (uint16_t)opcode;
}

/* Serialize h into out (little-endian), computing hdr_crc. magic and version are set here. */
void frame_hdr_encode(const struct frame_hdr *h, uint8_t out[FRAME_HDR_SIZE]);

/*
 * Parse and validate a header from the wire. Checks, in order: magic, header CRC, version,
 * flags (exactly one of request/response, no unknown bits), payload_len <=
 * SLUICE_FRAME_PAYLOAD_MAX, bulk_len <= SLUICE_FRAME_BULK_MAX, and that a frame without
 * FRAME_F_BULK_CRC has bulk_crc 0. Returns 0 and fills out, or -SLUICE_EPROTO (bad magic,
 * version or flags), -SLUICE_ECRC (header CRC), -SLUICE_ETOOBIG (a length over its limit).
 * why (optional) receives a static string naming the failed check, for the log line.
 */
int frame_hdr_decode(const uint8_t in[FRAME_HDR_SIZE], struct frame_hdr *out, const char **why);

#endif
