/*
 * meta_ops.c - the descriptor table of the meta service (proto/meta_ops.h), linked by
 * sluice-meta and by its clients. Handlers are bound by the server (meta/service.c).
 */
#include "proto/meta_ops.h"

RPC_DEFINE_SERVICE(meta, META_SERVICE_ID, META_OPS)
