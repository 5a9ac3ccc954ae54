/* storage_ops.c - descriptor table of the storage service (proto/storage_ops.h). */
#include "proto/storage_ops.h"

RPC_DEFINE_SERVICE(storage, STORAGE_SERVICE_ID, STORAGE_OPS)
