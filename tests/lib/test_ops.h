/*
 * test_ops.h - the echo service used by tests and benchmarks (service id 250: reserved
 * for tests, never served by a daemon).
 */
#ifndef SLUICE_TESTS_LIB_TEST_OPS_H
#define SLUICE_TESTS_LIB_TEST_OPS_H

#include "test.pb-c.h"
#include "common/rpc/rpc_service.h"

#define ECHO_SERVICE_ID 250

#define ECHO_OPS(X)                                                                     \
	X(echo, ECHO, 1, echo, Sluice__Test__EchoReq, sluice__test__echo_req,           \
	  Sluice__Test__EchoResp, sluice__test__echo_resp, true)                        \
	X(echo, ECHO_ONCE, 2, echo_once, Sluice__Test__EchoReq, sluice__test__echo_req, \
	  Sluice__Test__EchoResp, sluice__test__echo_resp, false)

RPC_DECLARE_SERVICE(echo, ECHO_OPS)

#endif
