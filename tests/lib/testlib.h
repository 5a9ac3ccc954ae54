/*
 * testlib.h - shared helpers for Sluice test and benchmark programs.
 *
 * CHECK(cond) records a failure with file:line and keeps going; tests end with
 * `return test_result();` (0 pass, 1 fail). test_skip(why) exits 77.
 *
 * The echo server runs the echo service (tests/lib/test.proto) on its own reactor thread,
 * in this process or - through the sluice-test-echod program - in a child process that a
 * test can kill. pattern_fill/pattern_check generate and verify deterministic bulk data.
 */
#ifndef SLUICE_TESTS_LIB_TESTLIB_H
#define SLUICE_TESTS_LIB_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/bufpool.h"
#include "common/reactor.h"
#include "common/rpc/rpc.h"
#include "tests/lib/test_ops.h"

extern int test_failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			test_failures++;                                                         \
		}                                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                                    \
	do {                                                                              \
		long long a_ = (long long)(a), b_ = (long long)(b);                       \
		if (a_ != b_) {                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, a_, b_);                      \
			test_failures++;                                                  \
		}                                                                         \
	} while (0)

static inline int test_result(void)
{
	return test_failures ? 1 : 0;
}

_Noreturn void test_skip(const char *why);

/* Deterministic bytes from (seed, offset): the same call always yields the same data. */
void pattern_fill(void *buf, size_t len, uint64_t seed);
/* Offset of the first byte that differs from pattern_fill(seed), or -1 if all match. */
long pattern_check(const void *buf, size_t len, uint64_t seed);

/* An echo server on its own reactor thread, in this process. */
struct echo_server;
int echo_server_start(const char *uri, size_t pool_bytes, struct echo_server **out);
/* Same, with server settings (cfg->pool is ignored: the server makes its own). */
int echo_server_start_cfg(const char *uri, const struct rpc_server_cfg *cfg, size_t pool_bytes,
			  struct echo_server **out);
void echo_server_stats(struct echo_server *s, struct rpc_server_stats *out);
const char *echo_server_uri(const struct echo_server *s); /* bound URI (port filled in) */
/* The server's buffer pool (thread-safe), e.g. for benchmarks to bufpool_reserve the bulk
 * sizes they will use before timing. Owned by the server; valid until echo_server_stop. */
struct bufpool *echo_server_pool(struct echo_server *s);
/* Whether the server computes the CRC32C of each request bulk and checks it against
 * EchoReq.req_bulk_crc (default true). Benchmarks turn it off so they measure the transport,
 * not a checksum pass over every byte; the response then echoes req_bulk_crc unchecked. Any
 * thread, before the calls it should affect. */
void echo_server_verify_bulk(struct echo_server *s, bool verify);
void echo_server_stop(struct echo_server *s);

/* The echo server in a child process (runs build's sluice-test-echod). Returns the pid and
 * writes the bound URI; the child dies with the parent. */
pid_t echo_server_spawn(const char *echod_path, char *uri, size_t uri_len);

/* A client on its own reactor thread, for tests that call from the main thread. */
struct test_client {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_client *rpc;
};
int test_client_start(struct test_client *tc, const struct rpc_client_cfg *cfg_or_null,
		      size_t pool_bytes);
void test_client_stop(struct test_client *tc);

/* Run fn(arg) on r's thread and wait for it to return. */
void run_on_reactor(struct reactor *r, void (*fn)(void *arg), void *arg);

#endif
