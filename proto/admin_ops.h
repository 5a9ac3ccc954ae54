/*
 * admin_ops.h - the admin service: operations every daemon answers.
 *
 * X(svc, OPNAME, number, opname, ReqType, req_prefix, RespType, resp_prefix, idempotent);
 * numbers are wire protocol: never reuse one.
 */
#ifndef SLUICE_PROTO_ADMIN_OPS_H
#define SLUICE_PROTO_ADMIN_OPS_H

#include "admin.pb-c.h"
#include "common/rpc/rpc_service.h"

#define ADMIN_SERVICE_ID 1

#define ADMIN_OPS(X)                                                                       \
	X(admin, PING, 1, ping, Sluice__PingReq, sluice__ping_req, Sluice__PingResp,        \
	  sluice__ping_resp, true)

RPC_DECLARE_SERVICE(admin, ADMIN_OPS)

#endif
