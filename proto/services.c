/*
 * services.c - the descriptor tables of every RPC service, generated from the X-macro
 * tables in proto/<svc>_ops.h. Both clients and servers link these; handlers are bound
 * separately by each server (RPC_DEFINE_HANDLERS).
 */
#include "proto/admin_ops.h"
#include "proto/mgmt_ops.h"

RPC_DEFINE_SERVICE(admin, ADMIN_SERVICE_ID, ADMIN_OPS)
RPC_DEFINE_SERVICE(mgmt, MGMT_SERVICE_ID, MGMT_OPS)
