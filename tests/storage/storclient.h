/*
 * storclient.h - helpers for the sluice-storage tests: run the daemon as a child process
 * and call its operations (proto/storage.proto) synchronously or asynchronously.
 *
 * Daemon: tstor_daemon_init makes the test's own temp dir (mkdtemp, under $TMPDIR or /tmp)
 * with target directories t1..tN and a state dir, tstor_daemon_start forks and execs
 * sluice-storage in standalone mode (target ids 1..N) with PR_SET_PDEATHSIG, waits for its
 * ready file and keeps the bound URI. The first start picks a free port below the
 * ephemeral range (so a client reconnecting while the daemon is down can never connect to
 * itself), later starts reuse it, so a client keeps working across restarts. The daemon's
 * output goes to DIR/daemon.log. tstor_daemon_finish kills the daemon if it still runs and
 * removes the dir when the test passed, else keeps it and prints its path and the log tail.
 * Only the pid started here is ever signalled.
 *
 * Client: a test_client (own reactor thread). The synchronous calls (tstor_write, ...) run
 * from any thread but that reactor's; the _async ones run on the reactor thread only (use
 * tstor_on_reactor) and call back there exactly once when they returned 0. Every call
 * returns the call's status: 0 or a negative error (remote, e.g. -EINVAL, or local, e.g.
 * -SLUICE_ECONNLOST). The last remote error reason is kept in c->detail for messages.
 *
 * Not thread-safe per object unless said otherwise; tests drive one daemon from main.
 */
#ifndef SLUICE_TESTS_STORAGE_STORCLIENT_H
#define SLUICE_TESTS_STORAGE_STORCLIENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/net/net.h"
#include "proto/storage_ops.h"
#include "tests/lib/testlib.h"

#define TSTOR_TARGETS_MAX 8
#define TSTOR_EXTRA_MAX	  16
#define TSTOR_LOG_TAIL	  40 /* lines of daemon.log printed when a test fails */

/* Ranges per BATCH_READ the daemon accepts (common/limits.h once the daemon defines it). */
#ifdef SLUICE_STOR_READ_RANGES_MAX
#define TSTOR_READ_RANGES SLUICE_STOR_READ_RANGES_MAX
#else
#define TSTOR_READ_RANGES 32
#endif

/* Same check as CHECK, with both sides shown as error names (status codes). */
#define CHECK_RC(got, want)                                                                 \
	do {                                                                                \
		int g_ = (int)(got), w_ = (int)(want);                                      \
		if (g_ != w_) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%s %d != %s %d)\n", \
				__FILE__, __LINE__, #got, #want, sluice_errname(g_), g_,    \
				sluice_errname(w_), w_);                                    \
			test_failures++;                                                    \
		}                                                                           \
	} while (0)

/* ---- the daemon ------------------------------------------------------------------------- */

struct tstor_daemon {
	const char *bin;
	char dir[1024];		       /* short enough that every path below it fits PATH_MAX */
	char uri[SLUICE_NET_ADDR_MAX]; /* bound URI, kept across restarts */
	char target_paths[TSTOR_TARGETS_MAX][PATH_MAX];
	unsigned ntargets;
	const char *extra[TSTOR_EXTRA_MAX]; /* "key=value" for --set, caller's strings */
	unsigned nextra;
	pid_t pid; /* 0 when not running */
	unsigned starts;
	uint32_t ready_timeout_ms;
};

/*
 * Check that bin is an executable and make the temp dir "sluice-<name>-XXXXXX" with ntargets
 * target paths DIR/t1.. (created by the daemon). -ENOENT if bin is missing (the caller
 * skips), -errno if the dir cannot be made. Target paths can be changed before the first
 * start (e.g. to a mount point).
 */
int tstor_daemon_init(struct tstor_daemon *d, const char *bin, const char *name, unsigned ntargets);

/* Add "--set kv" to every start. kv must stay valid. */
void tstor_daemon_set(struct tstor_daemon *d, const char *kv);

/* Start the daemon and wait for its ready file. 0, or negative (it exited or timed out; it
 * is killed then and its log tail printed). */
int tstor_daemon_start(struct tstor_daemon *d);

/* Send sig (SIGKILL or SIGTERM) and reap. SIGTERM waits up to 30 s for a clean exit, then
 * kills; returns -ETIMEDOUT in that case, -ECHILD if the daemon had already died, else 0
 * (exit status 0 after SIGTERM, or killed by SIGKILL). No-op 0 when not running. */
int tstor_daemon_stop(struct tstor_daemon *d, int sig);

/* stop(sig) then start. */
int tstor_daemon_restart(struct tstor_daemon *d, int sig);

/* Whether the daemon is still running (reaps it if it died; prints how). */
bool tstor_daemon_alive(struct tstor_daemon *d);

/* Kill the daemon if running; remove the dir if passed, else print where it is kept and the
 * daemon log tail. */
void tstor_daemon_finish(struct tstor_daemon *d, bool passed);

/* Path of a data file of target tid: DIR/t<tid>/data/c<k>.<file> for block_size 2^k. */
void tstor_data_path(const struct tstor_daemon *d, unsigned tid, uint32_t block_size, uint32_t file,
		     char *out, size_t cap);

/* ---- the client ------------------------------------------------------------------------- */

struct tstor_client {
	struct test_client tc;
	char uri[SLUICE_NET_ADDR_MAX];
	uint32_t timeout_ms;			      /* per call, default 60 s */
	int retries;				      /* per call, default -1 (client default) */
	char detail[SLUICE_RPC_ERROR_DETAIL_MAX + 1]; /* last remote error reason */
	/* Optional: when a synchronous call fails to reach it, check whether the daemon died
	 * and say during which call (once: the dead daemon is reaped). */
	struct tstor_daemon *daemon;
};

/* A client for d (started: d->uri is its address, kept across restarts). d must outlive
 * the client. */
int tstor_client_start(struct tstor_client *c, struct tstor_daemon *d);
void tstor_client_stop(struct tstor_client *c);
/* Run fn(arg) on the client's reactor thread and wait for it. */
void tstor_on_reactor(struct tstor_client *c, void (*fn)(void *arg), void *arg);

/* ChunkMeta, flattened. */
struct tstor_chunk {
	uint64_t inode;
	uint32_t index, length, chunk_size, crc;
	uint64_t commit_ver, update_ver, chain_ver;
	uint32_t block_size, file, block;
};

struct tstor_range {
	uint64_t inode;
	uint32_t index, offset, length;
};

struct tstor_read_result {
	int status;
	uint32_t length, chunk_length;
	uint64_t commit_ver;
	const uint8_t *data; /* status 0: into the caller's buffer */
};

struct tstor_space {
	uint64_t target_id;
	char path[PATH_MAX];
	bool online;
	char offline_reason[256];
	uint64_t capacity_bytes, used_bytes, allocated_bytes, free_bytes, chunks;
};

/*
 * WRITE len bytes of data at offset, data_crc computed here. out (may be NULL) gets the
 * chunk after the update. tstor_write_raw sends req as given with bulk as given (bad-input
 * tests).
 */
int tstor_write(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		uint32_t chunk_size, uint32_t offset, const void *data, uint32_t len,
		struct tstor_chunk *out);
int tstor_write_raw(struct tstor_client *c, const Sluice__ChunkWriteReq *req,
		    const struct iovec *bulk, unsigned nbulk, struct tstor_chunk *out);
int tstor_truncate(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		   uint32_t chunk_size, uint32_t length, struct tstor_chunk *out);
/* existed may be NULL. */
int tstor_remove(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		 bool *existed);
/* One REMOVE_RANGE call; removed and more may be NULL. */
int tstor_remove_range(struct tstor_client *c, uint64_t target, uint64_t begin_inode,
		       uint32_t begin_index, uint64_t end_inode, uint32_t end_index,
		       uint32_t max_chunks, uint32_t *removed, bool *more);

/*
 * BATCH_READ of n ranges; the response bulk lands in buf (cap bytes) and out[i].data points
 * into it for ranges with status 0. Returns the call status; -SLUICE_EPROTO (with a message)
 * if the response is malformed: a result count other than n, or a bulk length other than
 * the sum of the successful lengths.
 */
int tstor_batch_read(struct tstor_client *c, uint64_t target, const struct tstor_range *r,
		     unsigned n, void *buf, size_t cap, struct tstor_read_result *out);
/* Read a whole chunk ([0, chunk_size) as one range): status of the range (or the call),
 * *len its length. */
int tstor_read_chunk(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		     uint32_t chunk_size, void *buf, uint32_t *len);

/* One QUERY_CHUNKS / LIST_CHUNKS call, at most cap chunks copied (more than cap returned is
 * -SLUICE_EPROTO). */
int tstor_query(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t begin_index,
		uint32_t end_index, uint32_t limit, struct tstor_chunk *out, unsigned cap,
		unsigned *n, bool *more);
int tstor_list(struct tstor_client *c, uint64_t target, bool start_after, uint64_t after_inode,
	       uint32_t after_index, uint32_t limit, struct tstor_chunk *out, unsigned cap,
	       unsigned *n, bool *more);
/* Every chunk of a target (LIST_CHUNKS until !more, limit per call), malloc'd into *out.
 * Checks the listing is in strictly increasing id order (-SLUICE_EPROTO otherwise). */
int tstor_list_all(struct tstor_client *c, uint64_t target, uint32_t limit,
		   struct tstor_chunk **out, unsigned *n);
/* QUERY_CHUNKS of one chunk: 0 and *out, or -ENOENT if it is not listed. */
int tstor_stat_chunk(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		     struct tstor_chunk *out);
int tstor_statfs(struct tstor_client *c, uint64_t target, struct tstor_space *out, unsigned cap,
		 unsigned *n);
/* FAULT_INJECT: arm site on target (count 0 = every I/O from now on). */
int tstor_fault_inject(struct tstor_client *c, uint64_t target, const char *site, uint32_t count);

/* Async forms: reactor thread only. 0 iff cb(status, chunk or NULL, arg) will run exactly
 * once on the reactor thread. The bulk of a write is copied, so data may be freed at once.
 * retries < 0: client default (0 = never resend a request that reached the wire). */
typedef void (*tstor_update_cb)(int status, const struct tstor_chunk *chunk, void *arg);
int tstor_write_async(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		      uint32_t chunk_size, uint32_t offset, const void *data, uint32_t len,
		      int retries, tstor_update_cb cb, void *arg);
int tstor_truncate_async(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
			 uint32_t chunk_size, uint32_t length, int retries, tstor_update_cb cb,
			 void *arg);
/* cb(status, existed, arg). */
typedef void (*tstor_remove_cb)(int status, bool existed, void *arg);
int tstor_remove_async(struct tstor_client *c, uint64_t target, uint64_t inode, uint32_t index,
		       int retries, tstor_remove_cb cb, void *arg);
/* cb(status, results, n, arg): results valid during cb only; data points into buf, which
 * must stay valid until cb runs. */
typedef void (*tstor_read_cb)(int status, const struct tstor_read_result *res, unsigned n,
			      void *arg);
int tstor_batch_read_async(struct tstor_client *c, uint64_t target, const struct tstor_range *r,
			   unsigned n, void *buf, size_t cap, tstor_read_cb cb, void *arg);

/* ---- small shared helpers --------------------------------------------------------------- */

/* Deterministic PRNG (splitmix64), for reproducible runs from a printed seed. */
struct tstor_rng {
	uint64_t s;
};
uint64_t tstor_rng_next(struct tstor_rng *r);
uint64_t tstor_rng_below(struct tstor_rng *r, uint64_t bound);
/* Seed from argv[i] or $SLUICE_TEST_SEED (decimal or 0x hex), else from the clock. */
uint64_t tstor_seed(int argc, char **argv, int i);

/* Parse the daemon path from argv[1]; skip (77) with a message if missing or not built. */
const char *tstor_daemon_path(int argc, char **argv);

uint64_t tstor_now_ms(void);
/* First differing offset of a and b, or -1. */
long tstor_memdiff(const void *a, const void *b, size_t n);

#endif
