/*
 * meta_procs.h - child daemons for the multi-process meta tests (test_meta_crash.c,
 * test_meta_gc.c) and tests/bench/bench_craq.c: spawn sluice-mgmtd, sluice-meta and
 * sluice-storage in a test's temp dir, wait for their ready files, signal and reap them.
 *
 * Children get PR_SET_PDEATHSIG (they die with the test) and log to DIR/NAME.log; only the
 * pids returned here are ever signalled. Main thread of the test only.
 */
#ifndef SLUICE_TESTS_META_META_PROCS_H
#define SLUICE_TESTS_META_META_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/limits.h"
#include "common/rpc/rpc.h"
#include "proto/meta_ops.h"

/* A daemon: what it was started with (so it can be restarted alike) and its pid. */
struct mp_daemon {
	const char *bin;
	char name[32];
	char ready[256];
	char uri[SLUICE_NET_ADDR_MAX]; /* bound address, from the ready file */
	int port;		       /* 0 until the first start; then reused */
	char *argv[64];		       /* set by the mp_*_init functions */
	int argc;
	char strs[16][512]; /* storage for the argv strings */
	int nstrs;
	pid_t pid;
};

/* Make a fresh temp dir /tmp/sluice-<what>-XXXXXX into dir (>= 128 bytes). 0 or -errno. */
int mp_tmpdir(const char *what, char *dir, size_t len);

/* mgmtd with short heartbeats (100 ms) and a 2 s lease. */
void mp_mgmtd_init(struct mp_daemon *d, const char *bin, const char *dir);
/* sluice-meta with data in DIR/meta; mgmtd_uri may be "" (standalone). extra: NULL-ended
 * list of more "key=value" settings. */
void mp_meta_init(struct mp_daemon *d, const char *bin, const char *dir, const char *mgmtd_uri,
		  const char *const *extra);
/* sluice-storage NAME on 127.0.0.(10+index) with ntargets targets DIR/NAME-t<i>. */
void mp_storage_init(struct mp_daemon *d, const char *bin, const char *dir, const char *name,
		     int index, const char *mgmtd_uri, int ntargets);

/* Add "--set kv" to every start of d, after the settings mp_*_init chose (so it overrides
 * them: --set applies in order). kv is copied. */
void mp_set(struct mp_daemon *d, const char *kv);

/* Start d (on its previous port if it ran before) and wait for its ready file: 0, -ECHILD
 * (it exited), -ETIMEDOUT (30 s). */
int mp_start(struct mp_daemon *d, const char *dir);
/* Send sig and reap: the wait status, or -1 if not running. */
int mp_stop(struct mp_daemon *d, int sig);
/* SIGKILL whatever still runs. */
void mp_kill_all(struct mp_daemon *const *ds, size_t n);

/* ---- meta calls shared by the tests ---- */

struct mp_hdr {
	Sluice__ReqHdr h;
	Sluice__Creds c;
};

/* A header as root with client id client and request id req (0 for reads). */
Sluice__ReqHdr *mp_hdr(struct mp_hdr *b, uint64_t client, uint64_t req);

/* FSCK over RPC: 0 if the store is clean, 1 if problems were reported (printed to stderr
 * with what), or the call's negative error. */
int mp_fsck(struct rpc_client *c, const char *uri, const char *what);

#endif
