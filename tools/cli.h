/*
 * cli.h - internals of the `sluice` admin CLI (tools/), shared by its .c files. Not a
 * library: nothing outside tools/ includes this.
 *
 * Pieces:
 *  - cli_rpc_*: an rpc_client on a private reactor thread; the main thread makes blocking
 *    mgmtc_* calls through it (cli_rpc.c).
 *  - cli_routing_*: fetch the full routing table from mgmtd and look entities up by id
 *    (cli_routing.c).
 *  - cli_json_*: a small streaming JSON emitter with proper string escaping (cli_json.c).
 *  - cli_fmt_*, cli_parse_*, name helpers, error lines: formatting and parsing (cli_util.c).
 *  - cli_merge_*: a one-pass merge of several members' sorted chunk listings, page by page
 *    (cli_merge.c, pure, unit tested).
 *  - cli_cmd_*: the commands (cli_status.c, cli_list.c, cli_chain.c, cli_check.c,
 *    cli_chunk.c), dispatched by main (sluice.c). Each returns the process exit status: 0
 *    ok, 1 error, 2 usage error; `chain check` alone uses diff(1)'s convention instead (0
 *    identical, 1 differences, 2 usage error or trouble).
 *
 * Everything runs on the main thread except the rpc client, which lives on its reactor.
 */
#ifndef SLUICE_TOOLS_CLI_H
#define SLUICE_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/assert.h"
#include "common/rpc/rpc.h"
#include "proto/mgmt_ops.h"
#include "proto/storage_ops.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_ERR   1
#define CLI_EXIT_USAGE 2
/* `chain check` (like diff and cmp): 1 means "differences found", so errors exit 2. */
#define CLI_EXIT_DIFF	 1
#define CLI_EXIT_TROUBLE 2

#define CLI_DEFAULT_MGMTD      "tcp://127.0.0.1:7100"
#define CLI_DEFAULT_TIMEOUT_MS 10000u
#define CLI_CHAINS_ARG_MAX     4096  /* --chain options of one chain-table set */
#define CLI_LIST_SHOW_MAX      10    /* entries of a problem list in `status` text mode */
#define CLI_CHECK_SHOW_MAX     100   /* difference lines of `chain check` in text mode */
#define CLI_CHECK_JSON_MAX     10000 /* differences listed by `chain check --json` */
#define CLI_LIST_PAGE	       4096  /* chunks per LIST_CHUNKS call (SLUICE_STOR_LIST_MAX) */

/* Usage lines (after "sluice "), shared by the command table and the commands' checks. */
#define CLI_USAGE_STATUS      "status [--json]"
#define CLI_USAGE_FSCK	      "fsck [--json]"
#define CLI_USAGE_NODE_LIST   "node list [--json]"
#define CLI_USAGE_TARGET_LIST "target list [--json]"
#define CLI_USAGE_TARGET_OFF  "target offline ID"
#define CLI_USAGE_CHAIN_LIST  "chain list [--json]"
#define CLI_USAGE_CHAIN_ORDER "chain set-order ID T1,T2,..."
#define CLI_USAGE_TABLE_GEN \
	"chain-table gen --replicas R [--table ID] [--seed S] [--dry-run] [--nodes N1,N2,...]"
#define CLI_USAGE_TABLE_SET   "chain-table set [--table ID] --chain [C:]T1,T2,... [--chain ...]"
#define CLI_USAGE_TABLE_SHOW  "chain-table show [--table ID] [--json]"
#define CLI_USAGE_CHAIN_CHECK "chain check CHAIN_ID [--json]"
#define CLI_USAGE_CHUNK_LIST  "chunk list --target ID [--node-addr URI] [--json]"
#define CLI_USAGE_CHUNK_WRITE                                                           \
	"chunk write --target ID [--node-addr URI] --inode I --index J --chunk-size S " \
	"[--offset O] (--file F | --pattern TEXT --length L) [--json]"

/* ---- the connection to mgmtd ------------------------------------------------------------ */

struct cli_rpc;

/* Start a reactor thread with an rpc client on it. -ENOMEM or a reactor error. Main thread. */
SLUICE_MUST_USE int cli_rpc_start(uint32_t timeout_ms, struct cli_rpc **out);
/* Destroy the client, stop the reactor, free. NULL ok. Main thread. */
void cli_rpc_stop(struct cli_rpc *r);
struct rpc_client *cli_rpc_client(struct cli_rpc *r);

/* ---- parsed command line -------------------------------------------------------------- */

/* Options, as bits, so each command can reject the ones it does not take. */
enum cli_opt {
	CLI_OPT_JSON = 1u << 0,
	CLI_OPT_REPLICAS = 1u << 1,
	CLI_OPT_TABLE = 1u << 2,
	CLI_OPT_SEED = 1u << 3,
	CLI_OPT_DRY_RUN = 1u << 4,
	CLI_OPT_NODES = 1u << 5,
	CLI_OPT_CHAIN = 1u << 6,
	CLI_OPT_TARGET = 1u << 7,
	CLI_OPT_NODE_ADDR = 1u << 8,
	CLI_OPT_INODE = 1u << 9,
	CLI_OPT_INDEX = 1u << 10,
	CLI_OPT_CHUNK_SIZE = 1u << 11,
	CLI_OPT_OFFSET = 1u << 12,
	CLI_OPT_LENGTH = 1u << 13,
	CLI_OPT_FILE = 1u << 14,
	CLI_OPT_PATTERN = 1u << 15,
};

struct cli {
	const char *mgmtd;   /* URI of mgmtd */
	uint32_t timeout_ms; /* per RPC, retries included */
	unsigned opts_seen;  /* enum cli_opt bits given on the command line */
	bool json;
	uint32_t replicas;
	uint32_t table_id; /* 0 = not given (or: a new table) */
	uint64_t seed;
	bool dry_run;
	const char *nodes;			/* "N1,N2,..." or NULL */
	const char *chains[CLI_CHAINS_ARG_MAX]; /* --chain values, in order */
	unsigned nchains;
	/* chunk list|write: what to address and write */
	uint64_t target_id;
	const char *node_addr; /* storage node URI; NULL = look the target up in the routing */
	uint64_t inode;
	uint32_t index;
	uint32_t chunk_size;
	uint32_t offset;
	uint32_t length;
	const char *file;
	const char *pattern;
	char **args; /* positional words after the command words */
	unsigned nargs;
	struct cli_rpc *rpc; /* started by cli_connect */
};

/* Start the rpc client if not yet done. On failure prints the error; returns 0 or -errno. */
SLUICE_MUST_USE int cli_connect(struct cli *c);

/* ---- errors and usage ------------------------------------------------------------------ */

/* "sluice: <what>: <sluice_strerror(rc)> (<rc>)" on stderr; returns CLI_EXIT_ERR. */
int cli_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with the server's reason from res (if it sent one) before the error name. */
int cli_fail_res(const struct rpc_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "sluice: <problem>" and "usage: sluice <usage>" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Parse unsigned decimal (or 0x hex; never octal) text into *out, within [min, max]. The
 * whole string must be the number. -EINVAL otherwise; *out untouched on error.
 */
SLUICE_MUST_USE int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/*
 * Parse "A,B,C" into ids[0..n), at most cap of them, each in [1, max]. Returns the count
 * (>= 1), -EINVAL for bad syntax or an empty list, -E2BIG for more than cap.
 */
SLUICE_MUST_USE int cli_parse_id_list(const char *s, uint64_t max, uint64_t *ids, unsigned cap);

/* ---- routing table ----------------------------------------------------------------------- */

struct cli_routing {
	struct rpc_result res;	  /* owns the unpacked response */
	Sluice__RoutingTable *rt; /* inside res; entity arrays sorted by id */
};

/* GET_ROUTING since 0 (full table). Prints the error itself; returns 0 or the error. */
SLUICE_MUST_USE int cli_routing_fetch(struct cli *c, struct cli_routing *out);
void cli_routing_release(struct cli_routing *r);

/* Lookups by id (binary search); NULL if absent. */
const Sluice__NodeInfo *cli_routing_node(const struct cli_routing *r, uint32_t id);
const Sluice__TargetInfo *cli_routing_target(const struct cli_routing *r, uint64_t id);
const Sluice__ChainInfo *cli_routing_chain(const struct cli_routing *r, uint32_t id);
const Sluice__ChainTableInfo *cli_routing_table(const struct cli_routing *r, uint32_t id);

/*
 * Where target id lives: *t and *n (either may come back NULL) and the node's first
 * address, or NULL (with *why saying what is missing) when the routing table does not
 * name one. Pointers are into r.
 */
const char *cli_target_addr(const struct cli_routing *r, uint64_t id, const Sluice__TargetInfo **t,
			    const Sluice__NodeInfo **n, const char **why);

/* Health of a chain from its members' public states (unknown targets count as offline). */
enum cli_chain_health {
	CLI_CHAIN_HEALTHY,  /* every member serving */
	CLI_CHAIN_DEGRADED, /* some serving, not all */
	CLI_CHAIN_OFFLINE,  /* none serving */
};
enum cli_chain_health cli_chain_health(const struct cli_routing *r, const Sluice__ChainInfo *ch);
const char *cli_chain_health_name(enum cli_chain_health h);

/* ---- names and human-readable numbers ---------------------------------------------------- */

const char *cli_node_type_name(Sluice__NodeType t);	  /* "storage", ... "unknown" */
const char *cli_target_state_name(Sluice__TargetState s); /* "serving", ... */
const char *cli_local_state_name(Sluice__LocalState s);	  /* "offline", "online", "uptodate" */

/* "0 B", "512 B", "1.5 KiB", "12.0 GiB" into buf; returns buf. */
const char *cli_fmt_bytes(uint64_t bytes, char *buf, size_t len);
/* Age of a wall-clock timestamp in ms: "0.4s", "12s", "5m03s", "2h10m", "3d04h"; "-" if
 * ms is 0 (never), "future" if ahead of our clock by more than a second. */
const char *cli_fmt_age(uint64_t then_ms, uint64_t now_ms, char *buf, size_t len);
/* Percentage done/total with one decimal ("24.7%"); "-" if total is 0. */
const char *cli_fmt_pct(uint64_t done, uint64_t total, char *buf, size_t len);
/* Wall clock now in ms (env seam). */
uint64_t cli_now_wall_ms(void);

/* ---- JSON emitter ----------------------------------------------------------------------- */

#define CLI_JSON_DEPTH_MAX 16

/*
 * Pretty-printed JSON onto a FILE. cli_json_begin opens the top-level object; members are
 * added with a key inside objects and with key NULL inside arrays (asserted); containers
 * nest up to CLI_JSON_DEPTH_MAX. Strings are escaped (quotes, backslash, control bytes) and
 * invalid UTF-8 is replaced by U+FFFD, so the output is always valid JSON.
 */
struct cli_json {
	FILE *f;
	unsigned depth;
	bool first[CLI_JSON_DEPTH_MAX]; /* no member written yet at this depth */
	bool flat[CLI_JSON_DEPTH_MAX];	/* an array kept on one line */
	char close[CLI_JSON_DEPTH_MAX]; /* '}' or ']' */
};

void cli_json_begin(struct cli_json *j, FILE *f);
void cli_json_end(struct cli_json *j); /* closes the top-level object, adds "\n" */
void cli_json_obj(struct cli_json *j, const char *key);
void cli_json_arr(struct cli_json *j, const char *key);
/* An array of scalars printed on one line ([1, 2, 3]); no containers inside (asserted). */
void cli_json_arr_flat(struct cli_json *j, const char *key);
void cli_json_close(struct cli_json *j); /* the innermost open object or array */
void cli_json_str(struct cli_json *j, const char *key, const char *v); /* NULL v: null */
void cli_json_u64(struct cli_json *j, const char *key, uint64_t v);
void cli_json_i64(struct cli_json *j, const char *key, int64_t v);
void cli_json_bool(struct cli_json *j, const char *key, bool v);
/* Write s as a JSON string literal (with quotes) to f. */
void cli_json_write_string(FILE *f, const char *s);

/* ---- chain rows, shared by `chain list` and `chain-table show` (cli_list.c) -------------- */

void cli_chain_header(void);
/* One text row: id, version, health, members head .. tail with their states. */
void cli_chain_text(const struct cli_routing *r, const Sluice__ChainInfo *ch);
/* One JSON object (inside an array). */
void cli_chain_json(struct cli_json *j, const struct cli_routing *r, const Sluice__ChainInfo *ch);

/* ---- storage calls (cli_chunk.c) -------------------------------------------------------- */

/*
 * One LIST_CHUNKS call to the storage node at addr: target's chunks after (inode, index)
 * if start_after (else from the first), at most CLI_LIST_PAGE. Returns res->status: 0 with
 * res->resp a Sluice__ListChunksResp, or the error (res->error_detail may say why). The
 * caller releases res either way. Main thread (needs cli_connect done).
 */
SLUICE_MUST_USE int cli_list_chunks(struct cli *c, const char *addr, uint64_t target,
				    bool start_after, uint64_t inode, uint32_t index,
				    struct rpc_result *res);

/* ---- merging chunk listings (cli_merge.c) ------------------------------------------------- */

/*
 * A one-pass merge of the chunk listings of up to SLUICE_CHAIN_LEN_MAX members, each read
 * page by page through a callback, so memory is one page per member whatever the number
 * of chunks. Each step yields one chunk id (the smallest not yet yielded) with, for every
 * member still in the comparison, its metadata of that chunk or NULL (missing there).
 * Pages are validated: ids strictly rising and after the cursor, no empty page that says
 * more; a member that breaks that, or whose fetch fails, leaves the comparison from that
 * point on (its earlier rows stand).
 */
struct cli_merge_page {
	Sluice__ChunkMeta **chunks; /* sorted by (inode, index) */
	size_t n;
	bool more;   /* the member has chunks after this page */
	void *owner; /* the fetcher's, handed back to release */
};

struct cli_merge_ops {
	/*
	 * Member i's next page: the chunks after (inode, index) if start_after, else from the
	 * first. 0 and *page filled, or a negative error, which the callback reports itself.
	 */
	int (*fetch)(void *arg, unsigned i, bool start_after, uint64_t inode, uint32_t index,
		     struct cli_merge_page *page);
	/* Free a page fetch returned (called exactly once per successful fetch). */
	void (*release)(void *arg, unsigned i, struct cli_merge_page *page);
	/* A page of member i failed validation (rc -SLUICE_EPROTO, why says how). */
	void (*invalid)(void *arg, unsigned i, int rc, const char *why);
};

struct cli_merge_member {
	struct cli_merge_page page;
	size_t pos;	 /* next entry of page */
	bool has_page;	 /* page is the fetcher's and must be released */
	bool consumed;	 /* page entry pos went into the last row: step past it first */
	bool done;	 /* listing finished */
	int error;	 /* nonzero: left the comparison (fetch or validation error) */
	uint64_t listed; /* chunks of this member yielded so far */
};

struct cli_merge {
	const struct cli_merge_ops *ops;
	void *arg;
	unsigned n;
	struct cli_merge_member m[SLUICE_CHAIN_LEN_MAX];
};

struct cli_merge_row {
	uint64_t inode;
	uint32_t index;
	bool compared[SLUICE_CHAIN_LEN_MAX];		     /* member still in the comparison */
	const Sluice__ChunkMeta *meta[SLUICE_CHAIN_LEN_MAX]; /* NULL: missing (or not compared) */
};

/* Set up a merge of n members (<= SLUICE_CHAIN_LEN_MAX) and fetch every first page. */
void cli_merge_start(struct cli_merge *mg, unsigned n, const struct cli_merge_ops *ops, void *arg);
/* The next chunk id: 1 with *row filled (valid until the next call), 0 when every member
 * is done or out. */
int cli_merge_next(struct cli_merge *mg, struct cli_merge_row *row);
/* Release the pages still held. */
void cli_merge_end(struct cli_merge *mg);
/* Members still in the comparison (not failed). */
unsigned cli_merge_live(const struct cli_merge *mg);
/*
 * Whether the row differs among the members with sel[i] (and compared[i]): some have the
 * chunk and others not, or they disagree on length, commit_ver or crc. chain_ver,
 * update_ver and positions are not compared. NULL sel: every compared member.
 */
bool cli_merge_row_differs(const struct cli_merge_row *row, unsigned n, const bool *sel);

/* ---- commands (argument checks done by main: options allowed, word count) ---------------- */

int cli_cmd_status(struct cli *c);
int cli_cmd_node_list(struct cli *c);
int cli_cmd_target_list(struct cli *c);
int cli_cmd_chain_list(struct cli *c);
int cli_cmd_target_offline(struct cli *c);
int cli_cmd_chain_set_order(struct cli *c);
int cli_cmd_table_gen(struct cli *c);
int cli_cmd_table_set(struct cli *c);
int cli_cmd_table_show(struct cli *c);
int cli_cmd_fsck(struct cli *c);
int cli_cmd_chain_check(struct cli *c);
int cli_cmd_chunk_list(struct cli *c);
int cli_cmd_chunk_write(struct cli *c);

#endif
