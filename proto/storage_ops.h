/*
 * storage_ops.h - the storage service (sluice-storage), chunk I/O on one target
 * (DESIGN.md section 6). Numbers are wire protocol: never reuse one.
 *
 * X(svc, OPNAME, number, opname, ReqType, req_prefix, RespType, resp_prefix, idempotent)
 *
 * WRITE is idempotent: writing the same bytes at the same place twice leaves the same
 * chunk (only commit_ver differs), so a retry after a lost reply is safe as long as no other
 * writer touches the range in between - the same rule as pwrite. TRUNCATE and the removes
 * are idempotent outright. Chain replication adds request tags for exactly-once updates.
 */
#ifndef SLUICE_PROTO_STORAGE_OPS_H
#define SLUICE_PROTO_STORAGE_OPS_H

#include "storage.pb-c.h"
#include "common/rpc/rpc_service.h"

#define STORAGE_SERVICE_ID 3

#define STORAGE_OPS(X)                                                                             \
	X(storage, WRITE, 1, write, Sluice__ChunkWriteReq, sluice__chunk_write_req,                \
	  Sluice__ChunkUpdateResp, sluice__chunk_update_resp, true)                                \
	X(storage, BATCH_READ, 2, batch_read, Sluice__ChunkBatchReadReq,                           \
	  sluice__chunk_batch_read_req, Sluice__ChunkBatchReadResp, sluice__chunk_batch_read_resp, \
	  true)                                                                                    \
	X(storage, TRUNCATE, 3, truncate, Sluice__ChunkTruncateReq, sluice__chunk_truncate_req,    \
	  Sluice__ChunkUpdateResp, sluice__chunk_update_resp, true)                                \
	X(storage, REMOVE, 4, remove, Sluice__ChunkRemoveReq, sluice__chunk_remove_req,            \
	  Sluice__ChunkRemoveResp, sluice__chunk_remove_resp, true)                                \
	X(storage, REMOVE_RANGE, 5, remove_range, Sluice__ChunkRemoveRangeReq,                     \
	  sluice__chunk_remove_range_req, Sluice__ChunkRemoveRangeResp,                            \
	  sluice__chunk_remove_range_resp, true)                                                   \
	X(storage, QUERY_CHUNKS, 6, query_chunks, Sluice__QueryChunksReq,                          \
	  sluice__query_chunks_req, Sluice__QueryChunksResp, sluice__query_chunks_resp, true)      \
	X(storage, LIST_CHUNKS, 7, list_chunks, Sluice__ListChunksReq, sluice__list_chunks_req,    \
	  Sluice__ListChunksResp, sluice__list_chunks_resp, true)                                  \
	X(storage, STATFS, 8, statfs, Sluice__TargetStatfsReq, sluice__target_statfs_req,          \
	  Sluice__TargetStatfsResp, sluice__target_statfs_resp, true)                              \
	X(storage, FAULT_INJECT, 9, fault_inject, Sluice__FaultInjectReq,                          \
	  sluice__fault_inject_req, Sluice__FaultInjectResp, sluice__fault_inject_resp, false)     \
	X(storage, SYNC_STATUS, 10, sync_status, Sluice__SyncStatusReq, sluice__sync_status_req,   \
	  Sluice__SyncStatusResp, sluice__sync_status_resp, true)

RPC_DECLARE_SERVICE(storage, STORAGE_OPS)

#endif
