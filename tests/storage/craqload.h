/*
 * craqload.h - replicated-update load for tests and benchmarks: writer threads send tagged
 * chunk updates (writes, optionally truncates) to the heads of CRAQ chains
 * (proto/storage.proto, fields 16-21), retry each one through failovers with the same tag
 * until it is acknowledged, keep a model of every acknowledged update, and check every
 * replica of every chunk against that model afterwards.
 *
 * Chunks: nchains * chunks_per_chain chunks (inode, k), k = 0 .. n-1; chunk k lives on
 * chain k % nchains and belongs to writer (k / nchains) % writers, so every writer writes
 * to every chain. A writer is one tag channel (client id random and nonzero, channel = the
 * writer's index, seq rising) with one update outstanding, and it is the only writer of
 * its chunks: the order it applies acknowledged updates to the model is the order the
 * chain applied them, so after every ack the model is exact - content, length, and the
 * version (every acknowledged update bumps the chunk's version by exactly one; a jump
 * means an update was applied twice).
 *
 * Failures: an update refused for routing reasons (SLUICE_ECHAINVER, SLUICE_ENOTHEAD,
 * SLUICE_EROUTING, SLUICE_ESTALE_LEASE, SLUICE_ETARGET_OFFLINE), a lost or refused
 * connection, a deadline, SLUICE_ENOTCOMMIT or -EAGAIN is retried with the same tag after
 * a short backoff against the head of a freshly fetched routing table (GET_ROUTING, at
 * most one fetch per 20 ms for all writers). An update not acknowledged within retry_ms,
 * or refused with any other error, fails the run: every writer stops and craqload_stop
 * returns the error. An acknowledgement whose chunk (length, CRC, version) differs from
 * the model also fails the run.
 *
 * Read-back (read_pct): after that share of acks the writer reads the chunk from a random
 * serving member (a strict BATCH_READ) and compares it with the model; members that
 * answer SLUICE_ENOTCOMMIT (a resync holds the chunk), SLUICE_EROUTING (no longer
 * serving) or cannot be reached are skipped, anything else that differs is a stale read
 * and fails the run.
 *
 * Threads: create, start, stop, verify and destroy on one control thread (not a writer);
 * craqload_stats from any thread. The writers share one RPC client (a test_client: its own
 * reactor thread does the I/O).
 */
#ifndef SLUICE_TESTS_STORAGE_CRAQLOAD_H
#define SLUICE_TESTS_STORAGE_CRAQLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CRAQLOAD_WRITERS_MAX 256
#define CRAQLOAD_CHAINS_MAX  64

struct craqload_cfg {
	const char *mgmtd;	   /* mgmtd URI (required) */
	uint32_t table_id;	   /* the chains of this chain table, or */
	const uint32_t *chain_ids; /* these chains (table_id 0), or every chain (neither) */
	unsigned nchains;	   /* length of chain_ids */
	unsigned writers;	   /* threads = tag channels; 0 = 32 */
	unsigned chunks_per_chain; /* 0 = 64 */
	uint32_t chunk_size;	   /* a power of two >= 64 KiB; 0 = 64 KiB */
	uint64_t inode;		   /* 0 = 4242 */
	uint64_t seed;		   /* data, offsets and lengths; the same seed, the same updates */
	uint32_t retry_ms;	   /* an update must be acked within this; 0 = 60 s */
	uint32_t call_timeout_ms;  /* one attempt; 0 = 15 s */
	unsigned truncate_pct;	   /* share of updates that are truncates (0..100) */
	unsigned read_pct;	   /* share of acks followed by a read-back (0..100) */
	FILE *log;		   /* progress and errors; NULL = stderr */
};

struct craqload_stats {
	uint64_t acked;		  /* updates acknowledged */
	uint64_t bytes;		  /* bytes of acknowledged writes */
	uint64_t truncates;	  /* acknowledged truncates */
	uint64_t attempts_failed; /* attempts that failed and were retried */
	uint64_t refreshes;	  /* routing tables fetched */
	uint64_t reads_checked;	  /* read-backs compared with the model */
	uint64_t reads_skipped;	  /* read-backs a member could not answer (not an error) */
	uint64_t max_ack_ms;	  /* longest time from an update's first send to its ack */
	uint64_t errors;	  /* failures of the run (stale reads, bad acks, timeouts) */
	bool failed;		  /* the writers stopped on an error */
};

struct craqload;

/*
 * Start the RPC client, fetch the routing table (retried until the chains exist, up to
 * retry_ms) and allocate the model. -EINVAL for a bad cfg, -ENOENT if the table or a
 * chain is missing, -ENOMEM, or the RPC error. *out is the caller's (craqload_destroy).
 */
int craqload_create(const struct craqload_cfg *cfg, struct craqload **out);

/* Start the writers. 0, or -errno if a thread could not start (those started are
 * stopped). Call once. */
int craqload_start(struct craqload *l);

/* Stop the writers: each finishes (or fails) its update in flight, then they are joined.
 * 0, or a negative error if the run failed (the first error, printed to the log). */
int craqload_stop(struct craqload *l);

/* Counters so far; any thread. */
void craqload_stats(struct craqload *l, struct craqload_stats *out);
/* The chains written (in order: chunk k is on chain ids[k % n]); returns n. */
unsigned craqload_chains(const struct craqload *l, const uint32_t **ids);
/* Updates acknowledged on the i-th chain so far; any thread. */
uint64_t craqload_chain_acked(struct craqload *l, unsigned i);
/* One line of counters and the retried errors by name, to the log. */
void craqload_print_stats(struct craqload *l);

/*
 * After craqload_stop: wait up to wait_ms for every member of every chain to serve, then
 * read every chunk from every member (BATCH_READ, retried on SLUICE_ENOTCOMMIT) and compare
 * status, bytes, length and version with the model. Each difference is printed with chunk,
 * chain, member and versions. Returns the number of differences (0: every replica holds
 * exactly the acknowledged updates), or -ETIMEDOUT (members not all serving; printed),
 * or an RPC error that outlasted the retries.
 */
int craqload_verify(struct craqload *l, uint32_t wait_ms);

/* Stop the writers if running, free everything. NULL ok. */
void craqload_destroy(struct craqload *l);

#endif
