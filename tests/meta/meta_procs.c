/*
 * meta_procs.c - child daemons for the multi-process meta tests (see meta_procs.h).
 *
 * Addresses: the first start listens on port 0 and the bound port is read back from the
 * ready file; restarts ask for that port again, so clients and the routing table keep
 * working across a kill.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "tests/meta/meta_procs.h"

int mp_tmpdir(const char *what, char *dir, size_t len)
{
	const char *base = getenv("TMPDIR");

	if (snprintf(dir, len, "%s/sluice-%s-XXXXXX", base ? base : "/tmp", what) >= (int)len)
		return -ENAMETOOLONG;
	return mkdtemp(dir) ? 0 : -errno;
}

static char *str(struct mp_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *str(struct mp_daemon *d, const char *fmt, ...)
{
	va_list ap;
	char *s;

	ASSERT(d->nstrs < (int)SLUICE_ARRAY_SIZE(d->strs));
	s = d->strs[d->nstrs++];
	va_start(ap, fmt);
	vsnprintf(s, sizeof(d->strs[0]), fmt, ap);
	va_end(ap);
	return s;
}

static void arg(struct mp_daemon *d, char *a)
{
	ASSERT(d->argc < (int)SLUICE_ARRAY_SIZE(d->argv) - 1);
	d->argv[d->argc++] = a;
	d->argv[d->argc] = NULL;
}

static void set(struct mp_daemon *d, char *kv)
{
	arg(d, "--set");
	arg(d, kv);
}

static void init(struct mp_daemon *d, const char *bin, const char *dir, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->bin = bin;
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->ready, sizeof(d->ready), "%s/%s.ready", dir, name);
	arg(d, (char *)bin);
}

void mp_mgmtd_init(struct mp_daemon *d, const char *bin, const char *dir)
{
	init(d, bin, dir, "mgmtd");
	set(d, str(d, "mgmtd.data_dir=%s/mgmtd", dir));
	set(d, str(d, "mgmtd.ready_file=%s", d->ready));
	set(d, "mgmtd.heartbeat_ms=100ms");
	set(d, "mgmtd.lease_ms=2s");
}

void mp_meta_init(struct mp_daemon *d, const char *bin, const char *dir, const char *mgmtd_uri,
		  const char *const *extra)
{
	init(d, bin, dir, "meta");
	set(d, str(d, "meta.data_dir=%s/meta", dir));
	set(d, str(d, "meta.ready_file=%s", d->ready));
	set(d, str(d, "meta.mgmtd=%s", mgmtd_uri));
	for (; extra && *extra; extra++)
		set(d, (char *)*extra);
}

void mp_storage_init(struct mp_daemon *d, const char *bin, const char *dir, const char *name,
		     int index, const char *mgmtd_uri, int ntargets)
{
	char *t;

	init(d, bin, dir, name);
	set(d, str(d, "storage.mgmtd=%s", mgmtd_uri));
	set(d, str(d, "storage.state_dir=%s/%s", dir, name));
	set(d, str(d, "storage.ready_file=%s", d->ready));
	t = str(d, "storage.targets=");
	for (int i = 0; i < ntargets; i++)
		snprintf(t + strlen(t), sizeof(d->strs[0]) - strlen(t), "%s%s/%s-t%d", i ? "," : "",
			 dir, name, i);
	set(d, t);
	set(d, "storage.group_bytes=16MiB");
	set(d, "storage.reserve_bytes=16MiB");
	set(d, "storage.buffer_bytes=64MiB");
	/* its "host": the listen key is filled in at each start (port) */
	snprintf(d->uri, sizeof(d->uri), "tcp://127.0.0.%d:0", 10 + index);
}

void mp_set(struct mp_daemon *d, const char *kv)
{
	set(d, str(d, "%s", kv));
}

/* The listen setting: the daemon's own key, on its host, on its last port. */
static char *listen_opt(struct mp_daemon *d)
{
	static char buf[128];
	const char *key = strncmp(d->name, "mgmtd", 5) == 0  ? "mgmtd.listen"
			  : strncmp(d->name, "meta", 4) == 0 ? "meta.listen"
							     : "storage.listen";
	char host[64] = "127.0.0.1";
	const char *h = strstr(d->uri, "://");

	if (h && d->uri[0]) {
		snprintf(host, sizeof(host), "%s", h + 3);
		host[strcspn(host, ":")] = '\0';
	}
	snprintf(buf, sizeof(buf), "%s=tcp://%s:%d", key, host, d->port);
	return buf;
}

static int wait_ready(struct mp_daemon *d)
{
	for (int i = 0; i < 3000; i++) {
		FILE *f = fopen(d->ready, "r");

		if (f) {
			bool ok = fgets(d->uri, sizeof(d->uri), f) != NULL;

			fclose(f);
			if (ok) {
				const char *colon = strrchr(d->uri, ':');

				d->uri[strcspn(d->uri, "\n")] = '\0';
				d->port = colon ? atoi(colon + 1) : 0;
				return 0;
			}
		}
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			return -ECHILD;
		}
		env_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

int mp_start(struct mp_daemon *d, const char *dir)
{
	char log[256], *argv[SLUICE_ARRAY_SIZE(d->argv) + 2];
	int n = 0;

	snprintf(log, sizeof(log), "%s/%s.log", dir, d->name);
	unlink(d->ready);
	for (int i = 0; i < d->argc; i++)
		argv[n++] = d->argv[i];
	argv[n++] = "--set";
	argv[n++] = listen_opt(d);
	argv[n] = NULL;
	d->pid = fork();
	if (d->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (d->pid < 0)
		return -errno;
	return wait_ready(d);
}

int mp_stop(struct mp_daemon *d, int sig)
{
	int st = -1;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	return st;
}

void mp_kill_all(struct mp_daemon *const *ds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ds[i])
			(void)mp_stop(ds[i], SIGKILL);
}

/* ---- meta calls --------------------------------------------------------------------------- */

Sluice__ReqHdr *mp_hdr(struct mp_hdr *b, uint64_t client, uint64_t req)
{
	sluice__req_hdr__init(&b->h);
	sluice__creds__init(&b->c);
	b->h.creds = &b->c;
	b->h.client_id = client;
	b->h.request_id = req;
	return &b->h;
}

int mp_fsck(struct rpc_client *c, const char *uri, const char *what)
{
	Sluice__FsckReq req = SLUICE__FSCK_REQ__INIT;
	struct rpc_call_opts opts = {.timeout_ms = 60000, .retries = 2};
	struct rpc_result res = {0};
	struct mp_hdr hb;
	int rc;

	req.hdr = mp_hdr(&hb, 0, 0);
	rc = metac_fsck(c, uri, &req, &opts, &res);
	if (rc == 0) {
		const Sluice__FsckResp *r = (const void *)res.resp;

		if (r->dangling_dentries || r->nlink_mismatches || r->orphans ||
		    r->other_problems) {
			fprintf(stderr,
				"fsck (%s): %llu dangling, %llu nlink, %llu orphans, %llu other\n",
				what, (unsigned long long)r->dangling_dentries,
				(unsigned long long)r->nlink_mismatches,
				(unsigned long long)r->orphans,
				(unsigned long long)r->other_problems);
			for (size_t i = 0; i < r->n_problems; i++)
				fprintf(stderr, "  %s\n", r->problems[i]);
			rc = 1;
		}
	}
	rpc_result_release(&res);
	return rc;
}
