/*
 * meta_ops.h - the meta service (sluice-meta, DESIGN.md section 7). Numbers are wire
 * protocol: never reuse one.
 *
 * X(svc, OPNAME, number, opname, ReqType, req_prefix, RespType, resp_prefix, idempotent)
 *
 * Every request starts with a ReqHdr (partition, caller credentials, client id, request
 * id). Mutating operations are idempotent through their request id (the server returns
 * the stored result of a request it already executed), so every op is safe to retry.
 * Statuses are negative POSIX errnos (or Sluice errors) as meta/store.h documents per op.
 */
#ifndef SLUICE_PROTO_META_OPS_H
#define SLUICE_PROTO_META_OPS_H

#include "meta.pb-c.h"
#include "common/rpc/rpc_service.h"

#define META_SERVICE_ID 4

#define META_OPS(X)                                                                             \
	X(meta, LOOKUP, 1, lookup, Sluice__LookupReq, sluice__lookup_req, Sluice__AttrResp,     \
	  sluice__attr_resp, true)                                                              \
	X(meta, GETATTR, 2, getattr, Sluice__GetattrReq, sluice__getattr_req, Sluice__AttrResp, \
	  sluice__attr_resp, true)                                                              \
	X(meta, SETATTR, 3, setattr, Sluice__SetattrReq, sluice__setattr_req, Sluice__AttrResp, \
	  sluice__attr_resp, true)                                                              \
	X(meta, CREATE, 4, create, Sluice__CreateReq, sluice__create_req, Sluice__OpenResp,     \
	  sluice__open_resp, true)                                                              \
	X(meta, MKDIR, 5, mkdir, Sluice__MkdirReq, sluice__mkdir_req, Sluice__AttrResp,         \
	  sluice__attr_resp, true)                                                              \
	X(meta, MKNOD, 6, mknod, Sluice__MknodReq, sluice__mknod_req, Sluice__AttrResp,         \
	  sluice__attr_resp, true)                                                              \
	X(meta, SYMLINK, 7, symlink, Sluice__SymlinkReq, sluice__symlink_req, Sluice__AttrResp, \
	  sluice__attr_resp, true)                                                              \
	X(meta, READLINK, 8, readlink, Sluice__ReadlinkReq, sluice__readlink_req,               \
	  Sluice__ReadlinkResp, sluice__readlink_resp, true)                                    \
	X(meta, LINK, 9, link, Sluice__LinkReq, sluice__link_req, Sluice__AttrResp,             \
	  sluice__attr_resp, true)                                                              \
	X(meta, UNLINK, 10, unlink, Sluice__RemoveReq, sluice__remove_req, Sluice__EmptyResp,   \
	  sluice__empty_resp, true)                                                             \
	X(meta, RMDIR, 11, rmdir, Sluice__RemoveReq, sluice__remove_req, Sluice__EmptyResp,     \
	  sluice__empty_resp, true)                                                             \
	X(meta, RENAME, 12, rename, Sluice__RenameReq, sluice__rename_req, Sluice__EmptyResp,   \
	  sluice__empty_resp, true)                                                             \
	X(meta, READDIR, 13, readdir, Sluice__ReaddirReq, sluice__readdir_req,                  \
	  Sluice__ReaddirResp, sluice__readdir_resp, true)                                      \
	X(meta, STATFS, 14, statfs, Sluice__StatfsReq, sluice__statfs_req, Sluice__StatfsResp,  \
	  sluice__statfs_resp, true)                                                            \
	X(meta, GETXATTR, 15, getxattr, Sluice__XattrReq, sluice__xattr_req, Sluice__XattrResp, \
	  sluice__xattr_resp, true)                                                             \
	X(meta, SETXATTR, 16, setxattr, Sluice__SetxattrReq, sluice__setxattr_req,              \
	  Sluice__EmptyResp, sluice__empty_resp, true)                                          \
	X(meta, LISTXATTR, 17, listxattr, Sluice__XattrReq, sluice__xattr_req,                  \
	  Sluice__ListxattrResp, sluice__listxattr_resp, true)                                  \
	X(meta, REMOVEXATTR, 18, removexattr, Sluice__XattrReq, sluice__xattr_req,              \
	  Sluice__EmptyResp, sluice__empty_resp, true)                                          \
	X(meta, OPEN, 19, open, Sluice__OpenReq, sluice__open_req, Sluice__OpenResp,            \
	  sluice__open_resp, true)                                                              \
	X(meta, CLOSE, 20, close, Sluice__LengthReq, sluice__length_req, Sluice__AttrResp,      \
	  sluice__attr_resp, true)                                                              \
	X(meta, REPORT_LENGTH, 21, report_length, Sluice__LengthReq, sluice__length_req,        \
	  Sluice__AttrResp, sluice__attr_resp, true)                                            \
	X(meta, GET_LAYOUT, 22, get_layout, Sluice__LayoutReq, sluice__layout_req,              \
	  Sluice__LayoutResp, sluice__layout_resp, true)                                        \
	X(meta, SET_LAYOUT, 23, set_layout, Sluice__LayoutReq, sluice__layout_req,              \
	  Sluice__EmptyResp, sluice__empty_resp, true)                                          \
	X(meta, CLIENT_HEARTBEAT, 24, client_heartbeat, Sluice__ClientHeartbeatReq,             \
	  sluice__client_heartbeat_req, Sluice__ClientHeartbeatResp,                            \
	  sluice__client_heartbeat_resp, true)                                                  \
	X(meta, FSCK, 25, fsck, Sluice__FsckReq, sluice__fsck_req, Sluice__FsckResp,            \
	  sluice__fsck_resp, true)                                                              \
	X(meta, RMTREE, 26, rmtree, Sluice__RemoveReq, sluice__remove_req, Sluice__EmptyResp,   \
	  sluice__empty_resp, true)                                                             \
	X(meta, STATS, 27, stats, Sluice__StatsReq, sluice__stats_req, Sluice__StatsResp,       \
	  sluice__stats_resp, true)

RPC_DECLARE_SERVICE(meta, META_OPS)

#endif
