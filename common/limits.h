/*
 * limits.h - every bound Sluice enforces, in one place (STYLE.md rule 8).
 *
 * Wire limits are part of the protocol: peers reject anything above them before allocating.
 * Relations between limits are static_asserted at the bottom. Included as
 * "common/limits.h"; it does not replace <limits.h>.
 */
#ifndef SLUICE_COMMON_LIMITS_H
#define SLUICE_COMMON_LIMITS_H

#include <assert.h>
#include <stdint.h>

#define SLUICE_KiB (1024u)
#define SLUICE_MiB (1024u * 1024u)

/* ---- frames and RPC ------------------------------------------------------------------ */
#define SLUICE_FRAME_PAYLOAD_MAX      (1u * SLUICE_MiB)
#define SLUICE_FRAME_BULK_MAX	      (64u * SLUICE_MiB + 4u * SLUICE_KiB)
#define SLUICE_RPC_INFLIGHT_PER_CONN  256   /* requests a server handles at once per conn */
#define SLUICE_RPC_CALLS_MAX	      65536 /* outstanding client calls per rpc client */
#define SLUICE_RPC_CONNS_PER_PEER_MAX 16
#define SLUICE_RPC_RETRIES_MAX	      8
#define SLUICE_RPC_DEADLINE_MAX_MS    (10u * 60u * 1000u)
#define SLUICE_RPC_OPS_PER_SERVICE    256
#define SLUICE_RPC_ERROR_DETAIL_MAX   256 /* bytes of reason text in an error reply */

/* ---- transport ----------------------------------------------------------------------- */
#define SLUICE_NET_CONNS_MAX	    4096 /* per listener */
#define SLUICE_NET_LISTEN_SHARE_MAX 256	 /* listeners (reactors) sharing one listening socket */
#define SLUICE_NET_RECV_STAGE_BYTES (64u * SLUICE_KiB)
#define SLUICE_NET_SEND_IOV_MAX	    64
#define SLUICE_NET_ADDR_MAX	    128 /* "tcp://host:port" as text */
#define SLUICE_NET_BACKENDS_MAX	    4
#define SLUICE_NET_IDLE_TIMEOUT_MS  (60u * 1000u) /* default, configurable per listener */
#define SLUICE_NET_STALL_TIMEOUT_MS (30u * 1000u) /* peer not reading its responses */
/* A frame, once its header is in, must arrive within this grace plus its length at this
 * rate, so a peer trickling bytes cannot pin receive buffers (slowloris). */
#define SLUICE_NET_FRAME_GRACE_MS 5000u
#define SLUICE_NET_FRAME_MIN_RATE (1u * SLUICE_MiB) /* bytes per second */

/* ---- reactor, workers, rings, pools -------------------------------------------------- */
#define SLUICE_REACTOR_RING_ENTRIES 1024
#define SLUICE_REACTOR_INBOX_DEPTH  4096
#define SLUICE_REACTOR_TIMERS_MAX   (SLUICE_RPC_CALLS_MAX + 1024)
#define SLUICE_REACTOR_BUDGET	    256 /* completions handled per loop turn */
#define SLUICE_WORKERS_MAX	    64
#define SLUICE_WORKER_QUEUE_DEPTH   4096
#define SLUICE_RING_DEPTH_MAX	    (1u << 20)
#define SLUICE_BUFPOOL_ALIGN	    4096u /* O_DIRECT alignment */
#define SLUICE_BUFPOOL_MIN_BYTES    (4u * SLUICE_KiB)
#define SLUICE_BUFPOOL_CLASSES	    16 /* 4 KiB .. 64 MiB, plus the bulk-max class */
/* io_uring registered (fixed) buffers per ring and bytes per buffer: the kernel's limits */
#define SLUICE_REACTOR_FIXED_BUFS_MAX	   16384u
#define SLUICE_REACTOR_FIXED_BUF_BYTES_MAX (1024u * SLUICE_MiB)

/* ---- config and logging -------------------------------------------------------------- */
#define SLUICE_CFG_LINE_MAX	  4096
#define SLUICE_CFG_KEY_MAX	  128
#define SLUICE_CFG_FILE_MAX_BYTES (1u * SLUICE_MiB)
#define SLUICE_LOG_LINE_MAX	  2048

/* ---- placement and namespace (used from the mgmtd and meta issues on) ----------------- */
#define SLUICE_CHUNK_SIZE_MIN (64u * SLUICE_KiB)
#define SLUICE_CHUNK_SIZE_MAX (64u * SLUICE_MiB)
#define SLUICE_CHAIN_LEN_MAX  8
#define SLUICE_NAME_MAX	      255
#define SLUICE_PATH_MAX	      4096

/* ---- storage (DESIGN.md section 6) --------------------------------------------------- */
#define SLUICE_SECTOR_BYTES	       4096u	  /* O_DIRECT unit and checksum granule */
#define SLUICE_STOR_TARGETS_MAX	       64	  /* targets per storage daemon */
#define SLUICE_STOR_CLASSES	       11	  /* block size classes 64 KiB .. 64 MiB */
#define SLUICE_STOR_FILES_PER_CLASS    64	  /* data files per class and target */
#define SLUICE_STOR_FILE_BLOCKS_MAX    (1u << 20) /* blocks per data file */
#define SLUICE_STOR_QUEUE_DEPTH_MAX    1024	  /* disk I/Os in flight per target */
#define SLUICE_STOR_COMMIT_BATCH_MAX   256	  /* chunk updates per synced RocksDB batch */
#define SLUICE_STOR_READ_RANGES_MAX    32	  /* ranges per BATCH_READ */
#define SLUICE_STOR_LIST_MAX	       4096	  /* chunks per QUERY/LIST/REMOVE_RANGE reply */
#define SLUICE_STOR_TAGS_MAX	       65536	  /* request tags remembered (client channels) */
#define SLUICE_STOR_FORWARD_TIMEOUT_MS 5000	  /* an update forwarded down the chain */
#define SLUICE_STOR_RESYNC_INFLIGHT    8	  /* chunks one resync has in flight */
#define SLUICE_STOR_RESYNC_PAGE	       1024	  /* chunk ids per list page of a resync */
#define SLUICE_STOR_RESYNC_RETRY_MS    1000	  /* a failed resync starts over after this */
#define SLUICE_STOR_RESYNC_REPORT_MS   500	  /* progress to the syncing target this often */
#define SLUICE_STOR_RESYNC_REDO_MAX    65536	  /* chunks updated behind one resync pass */
/* Of storage.fixed_bytes, this fraction (1/n) goes to 4 KiB buffers (random reads, sector
 * rereads), the rest to storage.fixed_size ones; and fixed_bytes is at most 1/n of the pool. */
#define SLUICE_STOR_FIXED_SMALL_DIV 16
#define SLUICE_STOR_FIXED_POOL_DIV  4

/* ---- metadata (DESIGN.md section 7) -------------------------------------------------- */
#define SLUICE_META_GROUPS_MAX	    128			  /* supplementary gids per caller */
#define SLUICE_META_SYMLINK_MAX	    (SLUICE_PATH_MAX - 1) /* target bytes, no NUL */
#define SLUICE_META_LINK_MAX	    65000		  /* hard links per inode (EMLINK) */
#define SLUICE_META_XATTR_NAME_MAX  255
#define SLUICE_META_XATTR_VALUE_MAX (64u * SLUICE_KiB)
#define SLUICE_META_XATTR_LIST_MAX  (64u * SLUICE_KiB) /* sum of name lengths + NULs */
#define SLUICE_META_READDIR_MAX	    1024	       /* entries per READDIR reply */
#define SLUICE_META_TXN_RETRIES	    32	  /* attempts of one transaction on conflicts */
#define SLUICE_META_INO_BATCH	    1024  /* ids taken from the counter at once */
#define SLUICE_META_GC_BATCH	    256	  /* GC entries / tree dentries per pass step */
#define SLUICE_META_DEPTH_MAX	    4096  /* ancestors walked by a rename loop check */
#define SLUICE_META_CLIENTS_MAX	    65536 /* clients tracked for session expiry */
#define SLUICE_META_FSCK_REPORT_MAX 256	  /* problems listed by one FSCK reply */
/* A READDIRPLUS reply (name + attributes, under 512 bytes an entry) fits one payload. */
static_assert(SLUICE_META_READDIR_MAX * (SLUICE_NAME_MAX + 257) < SLUICE_FRAME_PAYLOAD_MAX,
	      "a full readdir reply fits a frame");

static_assert(SLUICE_FRAME_BULK_MAX >= SLUICE_CHUNK_SIZE_MAX, "a bulk must fit a whole chunk");
static_assert(SLUICE_FRAME_BULK_MAX < UINT32_MAX, "bulk length is a u32 on the wire");
static_assert(SLUICE_FRAME_PAYLOAD_MAX < UINT32_MAX, "payload length is a u32 on the wire");
static_assert((SLUICE_BUFPOOL_MIN_BYTES << (SLUICE_BUFPOOL_CLASSES - 2)) >= SLUICE_CHUNK_SIZE_MAX,
	      "buffer pool classes reach the largest chunk");
static_assert((SLUICE_REACTOR_INBOX_DEPTH & (SLUICE_REACTOR_INBOX_DEPTH - 1)) == 0,
	      "ring depths are powers of two");
static_assert(SLUICE_RPC_CALLS_MAX < SLUICE_REACTOR_TIMERS_MAX, "each call may hold a timer");

static_assert(SLUICE_CHUNK_SIZE_MIN << (SLUICE_STOR_CLASSES - 1) == SLUICE_CHUNK_SIZE_MAX,
	      "one block size class per chunk size");
static_assert(SLUICE_STOR_READ_RANGES_MAX <= SLUICE_NET_SEND_IOV_MAX - 2,
	      "a batch read replies with one iovec per range");
static_assert(SLUICE_CHUNK_SIZE_MIN % SLUICE_SECTOR_BYTES == 0, "chunks are whole sectors");
static_assert(SLUICE_STOR_RESYNC_PAGE <= SLUICE_STOR_LIST_MAX,
	      "a resync page is one LIST_CHUNKS reply");

#endif
