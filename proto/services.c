/*
 * services.c - the descriptor tables of every RPC service, generated from the X-macro
 * tables in proto/<svc>_ops.h. Both clients and servers link these; handlers are bound
 * separately by each server (RPC_DEFINE_HANDLERS). Also the display names of the mgmt
 * enums, so the CLI, mgmtd and tests spell states the same way.
 */
#include "proto/admin_ops.h"
#include "proto/mgmt_ops.h"

RPC_DEFINE_SERVICE(admin, ADMIN_SERVICE_ID, ADMIN_OPS)
RPC_DEFINE_SERVICE(mgmt, MGMT_SERVICE_ID, MGMT_OPS)

const char *mgmt_node_type_name(Sluice__NodeType t)
{
	switch (t) {
	case SLUICE__NODE_TYPE__NODE_MGMTD:
		return "mgmtd";
	case SLUICE__NODE_TYPE__NODE_META:
		return "meta";
	case SLUICE__NODE_TYPE__NODE_STORAGE:
		return "storage";
	case SLUICE__NODE_TYPE__NODE_CLIENT:
		return "client";
	default:
		return "unknown";
	}
}

const char *mgmt_target_state_name(Sluice__TargetState s)
{
	switch (s) {
	case SLUICE__TARGET_STATE__TS_SERVING:
		return "serving";
	case SLUICE__TARGET_STATE__TS_SYNCING:
		return "syncing";
	case SLUICE__TARGET_STATE__TS_WAITING:
		return "waiting";
	case SLUICE__TARGET_STATE__TS_LASTSRV:
		return "lastsrv";
	case SLUICE__TARGET_STATE__TS_OFFLINE:
		return "offline";
	default:
		return "unknown";
	}
}

const char *mgmt_local_state_name(Sluice__LocalState s)
{
	switch (s) {
	case SLUICE__LOCAL_STATE__LS_OFFLINE:
		return "offline";
	case SLUICE__LOCAL_STATE__LS_ONLINE:
		return "online";
	case SLUICE__LOCAL_STATE__LS_UPTODATE:
		return "uptodate";
	default:
		return "unknown";
	}
}
