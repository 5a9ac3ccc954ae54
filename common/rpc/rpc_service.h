/*
 * rpc_service.h - X-macro machinery that turns one table per service into its op enum,
 * descriptor table, handler prototypes, server handler table and typed client stubs.
 *
 * A service header (proto/<svc>_ops.h) declares:
 *
 *     #define ADMIN_SERVICE_ID 1
 *     #define ADMIN_OPS(X) \
 *             X(admin, PING, 1, ping, Sluice__PingReq, sluice__ping_req, \
 *               Sluice__PingResp, sluice__ping_resp, true)
 *     RPC_DECLARE_SERVICE(admin, ADMIN_OPS)
 *
 * with X(svc, OPNAME, number, opname, ReqType, req_prefix, RespType, resp_prefix,
 * idempotent). That yields:
 *   enum admin_op { ADMIN_OP_PING = 1 };
 *   extern const struct rpc_service_desc admin_service_desc;
 *   void admin_h_ping(struct rpc_req *, const Sluice__PingReq *, void *ctx);  (server)
 *   int adminc_ping(client, peer, req, opts, res);        (blocking stub)
 *   int adminc_ping_async(client, peer, req, opts, done, arg, call_id);
 * One .c file per service says RPC_DEFINE_SERVICE(admin, ADMIN_SERVICE_ID, ADMIN_OPS) for
 * the descriptor table; a server says RPC_DEFINE_HANDLERS(admin, ADMIN_OPS) to get
 * `admin_service_handlers` pointing at its admin_h_* functions. Handlers are reached
 * through typed thunks, never through a cast function pointer.
 */
#ifndef SLUICE_COMMON_RPC_RPC_SERVICE_H
#define SLUICE_COMMON_RPC_RPC_SERVICE_H

#include "common/rpc/rpc.h"

#define RPC_OP_ENUM_(svc, OPN, num, opn, Req, req_p, Resp, resp_p, idem) svc##_OP_##OPN = num,
#define RPC_H_PROTO_(svc, OPN, num, opn, Req, req_p, Resp, resp_p, idem) \
	void svc##_h_##opn(struct rpc_req *req, const Req *msg, void *ctx);
#define RPC_STUB_(svc, OPN, num, opn, Req, req_p, Resp, resp_p, idem)                             \
	static inline int svc##c_##opn(struct rpc_client *c, const char *peer, const Req *req,    \
				       const struct rpc_call_opts *opts, struct rpc_result *res)  \
	{                                                                                         \
		return rpc_call_sync(c, peer, &svc##_service_desc, num,                           \
				     (const ProtobufCMessage *)req, opts, res);                   \
	}                                                                                         \
	static inline int svc##c_##opn##_async(struct rpc_client *c, const char *peer,            \
					       const Req *req, const struct rpc_call_opts *opts,  \
					       rpc_done_fn done, void *arg, uint64_t *id)         \
	{                                                                                         \
		return rpc_call(c, peer, &svc##_service_desc, num, (const ProtobufCMessage *)req, \
				opts, done, arg, id);                                             \
	}

#define RPC_DECLARE_SERVICE(svc, OPS)                                    \
	enum svc##_op{OPS(RPC_OP_ENUM_)};                                \
	extern const struct rpc_service_desc svc##_service_desc;         \
	extern const struct rpc_service_handlers svc##_service_handlers; \
	OPS(RPC_H_PROTO_)                                                \
	OPS(RPC_STUB_)

#define RPC_DESC_ENTRY_(svc, OPN, num, opn, Req, req_p, Resp, resp_p, idem) \
	[num] = {.op = num,                                                 \
		 .idempotent = idem,                                        \
		 .name = #opn,                                              \
		 .req = &req_p##__descriptor,                               \
		 .resp = &resp_p##__descriptor},

#define RPC_DEFINE_SERVICE(svc, svc_id, OPS)                                   \
	static const struct rpc_op_desc svc##_ops_[] = {OPS(RPC_DESC_ENTRY_)}; \
	const struct rpc_service_desc svc##_service_desc = {                   \
		.id = svc_id,                                                  \
		.name = #svc,                                                  \
		.ops = svc##_ops_,                                             \
		.nops = SLUICE_ARRAY_SIZE(svc##_ops_),                         \
	};

#define RPC_THUNK_(svc, OPN, num, opn, Req, req_p, Resp, resp_p, idem)                   \
	static void svc##_thunk_##opn##_(struct rpc_req *req, const ProtobufCMessage *m, \
					 void *ctx)                                      \
	{                                                                                \
		svc##_h_##opn(req, (const Req *)(const void *)m, ctx);                   \
	}
#define RPC_FN_ENTRY_(svc, OPN, num, opn, Req, req_p, Resp, resp_p, idem) \
	[num] = svc##_thunk_##opn##_,

#define RPC_DEFINE_HANDLERS(svc, OPS)                                    \
	OPS(RPC_THUNK_)                                                  \
	static const rpc_handler_fn svc##_fns_[] = {OPS(RPC_FN_ENTRY_)}; \
	const struct rpc_service_handlers svc##_service_handlers = {     \
		.desc = &svc##_service_desc,                             \
		.fns = svc##_fns_,                                       \
	};

#endif
