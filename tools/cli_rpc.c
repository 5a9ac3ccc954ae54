/*
 * cli_rpc.c - the CLI's connection to mgmtd: an rpc_client on a private reactor thread.
 *
 * The rpc layer's client lives on a reactor and rpc_client_create must run on that
 * reactor's thread; the CLI's main thread then makes blocking calls (the generated
 * mgmtc_<op> stubs, rpc_call_sync) that post to the reactor and wait. Setup mirrors
 * tests/lib/testlib.c's test client, which the CLI does not link: transports registered,
 * a small buffer pool (mgmt payloads are at most SLUICE_FRAME_PAYLOAD_MAX, no bulk), one
 * reactor thread, the client created through a message to it.
 *
 * Threads: cli_rpc_start/stop on the main thread; create_fn on the reactor thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/limits.h"
#include "common/net/net.h"
#include "common/reactor.h"
#include "tools/cli.h"

/* Enough for a few in-flight maximum-size payloads plus receive staging. */
#define CLI_RPC_POOL_BYTES	   (8u * SLUICE_MiB)
#define CLI_CONNECT_TIMEOUT_MAX_MS 5000u

struct cli_rpc {
	struct reactor *r;
	struct bufpool *pool;
	struct rpc_client *client;
};

/* A function run on the reactor thread while the main thread waits for it. */
struct cli_on_reactor {
	struct reactor_msg msg;
	struct cli_rpc *rpc;
	struct rpc_client_cfg cfg;
	int rc;
	bool done;
	pthread_mutex_t mu; /* guards done */
	pthread_cond_t cv;
};

static void create_fn(struct reactor_msg *m)
{
	struct cli_on_reactor *o = SLUICE_CONTAINER_OF(m, struct cli_on_reactor, msg);

	o->rc = rpc_client_create(o->rpc->r, &o->cfg, &o->rpc->client);
	pthread_mutex_lock(&o->mu);
	o->done = true;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static int create_client(struct cli_rpc *rpc, const struct rpc_client_cfg *cfg)
{
	struct cli_on_reactor o = {.msg.fn = create_fn, .rpc = rpc, .cfg = *cfg};

	pthread_mutex_init(&o.mu, NULL);
	pthread_cond_init(&o.cv, NULL);
	reactor_post_wait(rpc->r, &o.msg);
	pthread_mutex_lock(&o.mu);
	while (!o.done)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
	pthread_mutex_destroy(&o.mu);
	pthread_cond_destroy(&o.cv);
	return o.rc;
}

int cli_rpc_start(uint32_t timeout_ms, struct cli_rpc **out)
{
	struct rpc_client_cfg cfg = {0};
	struct cli_rpc *rpc;
	int rc;

	net_register_builtin();
	rpc = calloc(1, sizeof(*rpc));
	if (!rpc)
		return -ENOMEM;
	rc = bufpool_create("cli", CLI_RPC_POOL_BYTES, &rpc->pool);
	if (rc)
		goto fail;
	rc = reactor_create("cli", &rpc->r);
	if (rc)
		goto fail;
	rc = reactor_start(rpc->r);
	if (rc)
		goto fail;
	cfg.pool = rpc->pool;
	cfg.max_calls = 16;
	cfg.default_timeout_ms = timeout_ms;
	cfg.connect_timeout_ms =
		timeout_ms < CLI_CONNECT_TIMEOUT_MAX_MS ? timeout_ms : CLI_CONNECT_TIMEOUT_MAX_MS;
	rc = create_client(rpc, &cfg);
	if (rc)
		goto fail;
	*out = rpc;
	return 0;
fail:
	cli_rpc_stop(rpc);
	return rc;
}

void cli_rpc_stop(struct cli_rpc *rpc)
{
	if (!rpc)
		return;
	/* rpc_client_destroy wants a running reactor and a thread other than its own. */
	rpc_client_destroy(rpc->client);
	reactor_destroy(rpc->r);
	bufpool_destroy(rpc->pool);
	free(rpc);
}

struct rpc_client *cli_rpc_client(struct cli_rpc *rpc)
{
	return rpc->client;
}
