/*
 * mgmt_ops.h - the mgmt service (sluice-mgmtd). Numbers are wire protocol.
 *
 * X(svc, OPNAME, number, opname, ReqType, req_prefix, RespType, resp_prefix, idempotent)
 * REGISTER is idempotent per node id (a retried registration re-registers the same ids);
 * a new node's retried registration may create a second node id, which heartbeats never
 * reach and which expires - acceptable for a one-time event, so it is marked false.
 */
#ifndef SLUICE_PROTO_MGMT_OPS_H
#define SLUICE_PROTO_MGMT_OPS_H

#include "mgmt.pb-c.h"
#include "common/rpc/rpc_service.h"

#define MGMT_SERVICE_ID 2

#define MGMT_OPS(X)                                                                        \
	X(mgmt, REGISTER, 1, register, Sluice__RegisterReq, sluice__register_req,           \
	  Sluice__RegisterResp, sluice__register_resp, false)                               \
	X(mgmt, HEARTBEAT, 2, heartbeat, Sluice__HeartbeatReq, sluice__heartbeat_req,       \
	  Sluice__HeartbeatResp, sluice__heartbeat_resp, true)                              \
	X(mgmt, GET_ROUTING, 3, get_routing, Sluice__GetRoutingReq, sluice__get_routing_req, \
	  Sluice__GetRoutingResp, sluice__get_routing_resp, true)                           \
	X(mgmt, SET_CHAIN_TABLE, 4, set_chain_table, Sluice__SetChainTableReq,              \
	  sluice__set_chain_table_req, Sluice__SetChainTableResp,                           \
	  sluice__set_chain_table_resp, false)                                              \
	X(mgmt, TARGET_OFFLINE, 5, target_offline, Sluice__TargetOfflineReq,                \
	  sluice__target_offline_req, Sluice__AdminResp, sluice__admin_resp, true)          \
	X(mgmt, CHAIN_SET_ORDER, 6, chain_set_order, Sluice__ChainSetOrderReq,              \
	  sluice__chain_set_order_req, Sluice__AdminResp, sluice__admin_resp, true)

RPC_DECLARE_SERVICE(mgmt, MGMT_OPS)

/* Display names ("storage", "serving", "uptodate"); "unknown" for other values. */
const char *mgmt_node_type_name(Sluice__NodeType t);
const char *mgmt_target_state_name(Sluice__TargetState s);
const char *mgmt_local_state_name(Sluice__LocalState s);

#endif
