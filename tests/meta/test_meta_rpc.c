/*
 * test_meta_rpc.c - sluice-meta over real RPC: a sluice-mgmtd, two fakestor storage nodes
 * (2 targets of 1 TiB each) and a sluice-meta process in a temp dir, driven through the
 * generated metac_* stubs.
 *
 * Checks: the meta node registers with mgmtd; statfs sums the targets' capacity from the
 * routing table; every kind of call works end to end and errors arrive as the store's
 * POSIX codes (malformed requests too: no header, wrong partition); a retried request id
 * returns the first result; rmtree empties through GC (meta.gc_skip_chunks: no storage
 * daemon to remove chunks); a silent client's write session expires and its unlinked
 * file is collected; FSCK over RPC is clean (and root only); after SIGKILL and a restart
 * everything acknowledged is there, under the same node id; SIGTERM exits 0.
 *
 * Usage: test_meta_rpc SLUICE_MGMTD SLUICE_META FAKESTOR. Exit 0 pass, 1 fail.
 * Children die with the test (PR_SET_PDEATHSIG); only their pids are signalled.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "meta/store.h"
#include "proto/meta_ops.h"
#include "proto/mgmt_ops.h"
#include "tests/lib/testlib.h"

#define TIB (1ull << 40)

static char dir_[128], mgmtd_uri[SLUICE_NET_ADDR_MAX], meta_uri[SLUICE_NET_ADDR_MAX];
static const char *bin_mgmtd, *bin_meta, *bin_fakestor;
static pid_t pid_mgmtd, pid_meta, pid_stor[2];
static struct test_client tc;
static uint64_t reqseq = 1;
static int meta_port;

/* ---- processes ------------------------------------------------------------------------- */

static pid_t spawn(const char *name, char *const argv[])
{
	char log[256];
	pid_t pid;

	snprintf(log, sizeof(log), "%s/%s.log", dir_, name);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Wait for a ready file; copies the URI. 0 or -ETIMEDOUT / -ECHILD (the child died). */
static int wait_ready(const char *path, pid_t pid, char *uri, size_t len)
{
	for (int i = 0; i < 1500; i++) {
		FILE *f = fopen(path, "r");

		if (f) {
			bool ok = fgets(uri, (int)len, f) != NULL;

			fclose(f);
			if (ok) {
				uri[strcspn(uri, "\n")] = '\0';
				return 0;
			}
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		env_sleep_ms(10);
	}
	return -ETIMEDOUT;
}

static int start_meta(void)
{
	char listen[64], data[256], ready[256], mg[200];
	char *argv[] = {(char *)bin_meta,
			"--set",
			listen,
			"--set",
			data,
			"--set",
			ready,
			"--set",
			mg,
			"--set",
			"meta.sync=false",
			"--set",
			"meta.gc_delay_ms=200ms",
			"--set",
			"meta.gc_interval_ms=50ms",
			"--set",
			"meta.gc_skip_chunks=true",
			"--set",
			"meta.session_timeout_ms=1s",
			"--set",
			"meta.expire_interval_ms=100ms",
			"--set",
			"meta.routing_interval_ms=200ms",
			"--set",
			"layout.stripe=2",
			NULL};

	snprintf(listen, sizeof(listen), "meta.listen=tcp://127.0.0.1:%d", meta_port);
	snprintf(data, sizeof(data), "meta.data_dir=%s/meta", dir_);
	snprintf(ready, sizeof(ready), "meta.ready_file=%s/meta.ready", dir_);
	snprintf(mg, sizeof(mg), "meta.mgmtd=%s", mgmtd_uri);
	unlink(ready + strlen("meta.ready_file="));
	pid_meta = spawn("meta", argv);
	if (wait_ready(ready + strlen("meta.ready_file="), pid_meta, meta_uri, sizeof(meta_uri)))
		return -1;
	meta_port = atoi(strrchr(meta_uri, ':') + 1);
	return 0;
}

static int start_cluster(void)
{
	char listen[] = "mgmtd.listen=tcp://127.0.0.1:0", data[256], ready[256];
	char *argv[] = {(char *)bin_mgmtd,
			"--set",
			listen,
			"--set",
			data,
			"--set",
			ready,
			"--set",
			"mgmtd.heartbeat_ms=100ms",
			"--set",
			"mgmtd.lease_ms=2s",
			NULL};

	snprintf(data, sizeof(data), "mgmtd.data_dir=%s/mgmtd", dir_);
	snprintf(ready, sizeof(ready), "mgmtd.ready_file=%s/mgmtd.ready", dir_);
	pid_mgmtd = spawn("mgmtd", argv);
	if (wait_ready(ready + strlen("mgmtd.ready_file="), pid_mgmtd, mgmtd_uri,
		       sizeof(mgmtd_uri)))
		return -1;
	for (int i = 0; i < 2; i++) {
		char sd[256], addr[64], name[16];
		char *sargv[] = {(char *)bin_fakestor, "--mgmtd", mgmtd_uri, "--state-dir", sd,
				 "--targets",	       "2",	  "--addr",  addr,	    NULL};

		snprintf(sd, sizeof(sd), "%s/s%d", dir_, i);
		snprintf(addr, sizeof(addr), "tcp://127.0.0.%d:9000", 10 + i);
		snprintf(name, sizeof(name), "s%d", i);
		mkdir(sd, 0755);
		pid_stor[i] = spawn(name, sargv);
	}
	return start_meta();
}

static int stop(pid_t pid, int sig)
{
	int st = -1;

	if (pid <= 0)
		return -1;
	kill(pid, sig);
	waitpid(pid, &st, 0);
	return st;
}

/* ---- calls ------------------------------------------------------------------------------ */

struct hdrbuf {
	Sluice__ReqHdr h;
	Sluice__Creds c;
};

static Sluice__ReqHdr *mkhdr(struct hdrbuf *b, uint32_t uid, uint64_t client)
{
	sluice__req_hdr__init(&b->h);
	sluice__creds__init(&b->c);
	b->c.uid = b->c.gid = uid;
	b->h.creds = &b->c;
	b->h.client_id = client;
	b->h.request_id = ++reqseq;
	return &b->h;
}

static ProtobufCBinaryData B(const char *s)
{
	return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static const struct rpc_call_opts opts = {.timeout_ms = 5000, .retries = 2};

/* mkdir/create/lookup returning the inode (or a negative status). */
static int64_t rpc_mkdir(uint64_t parent, const char *name, uint32_t uid)
{
	Sluice__MkdirReq req = SLUICE__MKDIR_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	int64_t rc;

	req.hdr = mkhdr(&hb, uid, 1);
	req.parent = parent;
	req.name = B(name);
	req.mode = 0755;
	rc = metac_mkdir(tc.rpc, meta_uri, &req, &opts, &res);
	if (rc == 0)
		rc = (int64_t)((Sluice__AttrResp *)(void *)res.resp)->attr->ino;
	rpc_result_release(&res);
	return rc;
}

static int64_t rpc_lookup(uint64_t parent, const char *name, Sluice__Attr *out)
{
	Sluice__LookupReq req = SLUICE__LOOKUP_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	int64_t rc;

	req.hdr = mkhdr(&hb, 0, 0);
	req.parent = parent;
	req.name = B(name);
	rc = metac_lookup(tc.rpc, meta_uri, &req, &opts, &res);
	if (rc == 0) {
		Sluice__Attr *a = ((Sluice__AttrResp *)(void *)res.resp)->attr;

		rc = (int64_t)a->ino;
		if (out) {
			*out = *a;
			out->layout = NULL;
		}
	}
	rpc_result_release(&res);
	return rc;
}

static int64_t rpc_create(uint64_t parent, const char *name, uint32_t flags, uint64_t client,
			  uint64_t *session)
{
	Sluice__CreateReq req = SLUICE__CREATE_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	int64_t rc;

	req.hdr = mkhdr(&hb, 0, client);
	req.parent = parent;
	req.name = B(name);
	req.mode = 0644;
	req.flags = flags;
	rc = metac_create(tc.rpc, meta_uri, &req, &opts, &res);
	if (rc == 0) {
		Sluice__OpenResp *o = (Sluice__OpenResp *)(void *)res.resp;

		rc = (int64_t)o->attr->ino;
		if (session)
			*session = o->session_id;
	}
	rpc_result_release(&res);
	return rc;
}

static int rpc_remove(int op, uint64_t parent, const char *name)
{
	Sluice__RemoveReq req = SLUICE__REMOVE_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	int rc;

	req.hdr = mkhdr(&hb, 0, 1);
	req.parent = parent;
	req.name = B(name);
	if (op == meta_OP_UNLINK)
		rc = metac_unlink(tc.rpc, meta_uri, &req, &opts, &res);
	else if (op == meta_OP_RMDIR)
		rc = metac_rmdir(tc.rpc, meta_uri, &req, &opts, &res);
	else
		rc = metac_rmtree(tc.rpc, meta_uri, &req, &opts, &res);
	rpc_result_release(&res);
	return rc;
}

static int rpc_stats(Sluice__StatsResp *out)
{
	Sluice__StatsReq req = SLUICE__STATS_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	int rc;

	req.hdr = mkhdr(&hb, 0, 0);
	rc = metac_stats(tc.rpc, meta_uri, &req, &opts, &res);
	if (rc == 0)
		*out = *(Sluice__StatsResp *)(void *)res.resp;
	rpc_result_release(&res);
	return rc;
}

static int rpc_fsck(uint32_t uid, uint64_t *problems)
{
	Sluice__FsckReq req = SLUICE__FSCK_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	int rc;

	req.hdr = mkhdr(&hb, uid, 0);
	rc = metac_fsck(tc.rpc, meta_uri, &req, &opts, &res);
	if (rc == 0) {
		Sluice__FsckResp *r = (Sluice__FsckResp *)(void *)res.resp;

		*problems =
			r->dangling_dentries + r->nlink_mismatches + r->orphans + r->other_problems;
		for (size_t i = 0; i < r->n_problems; i++)
			fprintf(stderr, "  fsck: %s\n", r->problems[i]);
	}
	rpc_result_release(&res);
	return rc;
}

/* ---- scenarios ------------------------------------------------------------------------------ */

static void test_statfs(void)
{
	Sluice__StatfsReq req = SLUICE__STATFS_REQ__INIT;
	uint64_t cap = 0;
	struct hdrbuf hb;

	for (int i = 0; i < 200 && cap != 4 * TIB; i++) {
		struct rpc_result res = {0};

		req.hdr = mkhdr(&hb, 1000, 0);
		if (metac_statfs(tc.rpc, meta_uri, &req, &opts, &res) == 0)
			cap = ((Sluice__StatfsResp *)(void *)res.resp)->capacity_bytes;
		rpc_result_release(&res);
		if (cap != 4 * TIB)
			env_sleep_ms(50);
	}
	CHECK_EQ(cap, 4 * TIB);
}

static void test_ops(void)
{
	struct rpc_result res = {0};
	struct hdrbuf hb;
	uint64_t sid = 0;
	int64_t a, f;
	char longname[300];

	a = rpc_mkdir(META_ROOT_INO, "a", 0);
	CHECK(a > 1);
	CHECK_EQ(rpc_mkdir(META_ROOT_INO, "a", 0), -EEXIST);
	CHECK_EQ(rpc_mkdir(META_ROOT_INO, "x/y", 0), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ(rpc_mkdir(META_ROOT_INO, longname, 0), -ENAMETOOLONG);
	CHECK_EQ(rpc_mkdir((uint64_t)a, "u", 1000), -EACCES);
	CHECK_EQ(rpc_mkdir(999999, "u", 0), -ENOENT);
	f = rpc_create((uint64_t)a, "f", O_WRONLY | O_EXCL, 1, &sid);
	CHECK(f > 1 && sid != 0);
	CHECK_EQ(rpc_lookup((uint64_t)a, "f", NULL), f);
	CHECK_EQ(rpc_lookup((uint64_t)a, "nope", NULL), -ENOENT);
	{ /* length report, then an exact close */
		Sluice__LengthReq req = SLUICE__LENGTH_REQ__INIT;
		Sluice__Attr at;

		req.hdr = mkhdr(&hb, 0, 1);
		req.ino = (uint64_t)f;
		req.session_id = sid;
		req.length = 5000;
		CHECK_EQ(metac_report_length(tc.rpc, meta_uri, &req, &opts, &res), 0);
		rpc_result_release(&res);
		req.hdr = mkhdr(&hb, 0, 1);
		req.length = 4000;
		req.exact = true;
		CHECK_EQ(metac_close(tc.rpc, meta_uri, &req, &opts, &res), 0);
		rpc_result_release(&res);
		CHECK_EQ(rpc_lookup((uint64_t)a, "f", &at), f);
		CHECK_EQ(at.size, 4000);
		req.hdr = mkhdr(&hb, 0, 1);
		CHECK_EQ(metac_close(tc.rpc, meta_uri, &req, &opts, &res), -EBADF);
		rpc_result_release(&res);
	}
	{ /* rename, link, readdir plus */
		Sluice__RenameReq rn = SLUICE__RENAME_REQ__INIT;
		Sluice__LinkReq ln = SLUICE__LINK_REQ__INIT;
		Sluice__ReaddirReq rd = SLUICE__READDIR_REQ__INIT;

		rn.hdr = mkhdr(&hb, 0, 1);
		rn.parent = rn.new_parent = (uint64_t)a;
		rn.name = B("f");
		rn.new_name = B("g");
		CHECK_EQ(metac_rename(tc.rpc, meta_uri, &rn, &opts, &res), 0);
		rpc_result_release(&res);
		CHECK_EQ(metac_rename(tc.rpc, meta_uri, &rn, &opts, &res), 0); /* same id: replay */
		rpc_result_release(&res);
		rn.hdr = mkhdr(&hb, 0, 1);
		CHECK_EQ(metac_rename(tc.rpc, meta_uri, &rn, &opts, &res), -ENOENT); /* new id */
		rpc_result_release(&res);
		ln.hdr = mkhdr(&hb, 0, 1);
		ln.ino = (uint64_t)f;
		ln.new_parent = META_ROOT_INO;
		ln.new_name = B("hard");
		CHECK_EQ(metac_link(tc.rpc, meta_uri, &ln, &opts, &res), 0);
		if (res.status == 0)
			CHECK_EQ(((Sluice__AttrResp *)(void *)res.resp)->attr->nlink, 2);
		rpc_result_release(&res);
		rd.hdr = mkhdr(&hb, 0, 0);
		rd.ino = META_ROOT_INO;
		rd.plus = true;
		CHECK_EQ(metac_readdir(tc.rpc, meta_uri, &rd, &opts, &res), 0);
		if (res.status == 0) {
			Sluice__ReaddirResp *r = (Sluice__ReaddirResp *)(void *)res.resp;

			CHECK_EQ(r->n_entries, 2); /* a, hard */
			CHECK(r->eof);
			CHECK(r->n_entries == 2 && r->entries[1]->attr &&
			      r->entries[1]->attr->ino == (uint64_t)f);
		}
		rpc_result_release(&res);
	}
	{ /* symlink, readlink, xattrs, layout */
		Sluice__SymlinkReq sl = SLUICE__SYMLINK_REQ__INIT;
		Sluice__ReadlinkReq rl = SLUICE__READLINK_REQ__INIT;
		Sluice__SetxattrReq sx = SLUICE__SETXATTR_REQ__INIT;
		Sluice__XattrReq gx = SLUICE__XATTR_REQ__INIT;
		Sluice__LayoutReq lr = SLUICE__LAYOUT_REQ__INIT;

		sl.hdr = mkhdr(&hb, 0, 1);
		sl.parent = (uint64_t)a;
		sl.name = B("ln");
		sl.target = B("g");
		CHECK_EQ(metac_symlink(tc.rpc, meta_uri, &sl, &opts, &res), 0);
		rl.hdr = mkhdr(&hb, 0, 0);
		rl.ino = res.status == 0 ? ((Sluice__AttrResp *)(void *)res.resp)->attr->ino : 0;
		rpc_result_release(&res);
		CHECK_EQ(metac_readlink(tc.rpc, meta_uri, &rl, &opts, &res), 0);
		if (res.status == 0)
			CHECK_EQ(((Sluice__ReadlinkResp *)(void *)res.resp)->target.len, 1);
		rpc_result_release(&res);
		sx.hdr = mkhdr(&hb, 0, 1);
		sx.ino = (uint64_t)f;
		sx.name = B("user.k");
		sx.value = B("value");
		CHECK_EQ(metac_setxattr(tc.rpc, meta_uri, &sx, &opts, &res), 0);
		rpc_result_release(&res);
		gx.hdr = mkhdr(&hb, 0, 0);
		gx.ino = (uint64_t)f;
		gx.name = B("user.k");
		CHECK_EQ(metac_getxattr(tc.rpc, meta_uri, &gx, &opts, &res), 0);
		if (res.status == 0)
			CHECK_EQ(((Sluice__XattrResp *)(void *)res.resp)->value.len, 5);
		rpc_result_release(&res);
		CHECK_EQ(metac_listxattr(tc.rpc, meta_uri, &gx, &opts, &res), 0);
		if (res.status == 0)
			CHECK_EQ(((Sluice__ListxattrResp *)(void *)res.resp)->n_names, 1);
		rpc_result_release(&res);
		gx.hdr = mkhdr(&hb, 0, 1);
		CHECK_EQ(metac_removexattr(tc.rpc, meta_uri, &gx, &opts, &res), 0);
		rpc_result_release(&res);
		gx.hdr = mkhdr(&hb, 0, 1);
		CHECK_EQ(metac_getxattr(tc.rpc, meta_uri, &gx, &opts, &res), -ENODATA);
		rpc_result_release(&res);
		lr.hdr = mkhdr(&hb, 0, 0);
		lr.ino = (uint64_t)f;
		CHECK_EQ(metac_get_layout(tc.rpc, meta_uri, &lr, &opts, &res), 0);
		if (res.status == 0)
			CHECK_EQ(((Sluice__LayoutResp *)(void *)res.resp)->layout->stripe, 2);
		rpc_result_release(&res);
	}
	{ /* malformed: no header, no credentials, another partition */
		Sluice__GetattrReq g = SLUICE__GETATTR_REQ__INIT;

		g.ino = META_ROOT_INO;
		CHECK_EQ(metac_getattr(tc.rpc, meta_uri, &g, &opts, &res), -EINVAL);
		rpc_result_release(&res);
		g.hdr = mkhdr(&hb, 0, 0);
		g.hdr->creds = NULL;
		CHECK_EQ(metac_getattr(tc.rpc, meta_uri, &g, &opts, &res), -EINVAL);
		rpc_result_release(&res);
		g.hdr = mkhdr(&hb, 0, 0);
		g.hdr->partition = 3;
		CHECK_EQ(metac_getattr(tc.rpc, meta_uri, &g, &opts, &res), -SLUICE_EROUTING);
		rpc_result_release(&res);
	}
	CHECK_EQ(rpc_remove(meta_OP_RMDIR, META_ROOT_INO, "a"), -ENOTEMPTY);
	CHECK_EQ(rpc_remove(meta_OP_UNLINK, META_ROOT_INO, "a"), -EISDIR);
	CHECK_EQ(rpc_remove(meta_OP_UNLINK, (uint64_t)a, "g"), 0);
}

static void wait_gc_empty(void)
{
	Sluice__StatsResp st = SLUICE__STATS_RESP__INIT;

	for (int i = 0; i < 300; i++) {
		if (rpc_stats(&st) == 0 && st.gc_queued == 0)
			break;
		env_sleep_ms(20);
	}
	CHECK_EQ(st.gc_queued, 0);
}

static void test_rmtree_gc(void)
{
	int64_t t = rpc_mkdir(META_ROOT_INO, "tree", 0), s;
	uint64_t problems = 1;

	for (int i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "d%d", i);
		s = rpc_mkdir((uint64_t)t, name, 0);
		for (int j = 0; j < 100 && s > 0; j++) {
			snprintf(name, sizeof(name), "f%d", j);
			CHECK(rpc_create((uint64_t)s, name, O_RDONLY | O_EXCL, 1, NULL) > 0);
		}
	}
	CHECK_EQ(rpc_remove(meta_OP_RMTREE, META_ROOT_INO, "tree"), 0);
	CHECK_EQ(rpc_lookup(META_ROOT_INO, "tree", NULL), -ENOENT);
	wait_gc_empty();
	CHECK_EQ(rpc_fsck(0, &problems), 0);
	CHECK_EQ(problems, 0);
	CHECK_EQ(rpc_fsck(1000, &problems), -EPERM);
}

static void test_expiry(void)
{
	Sluice__StatsResp st = SLUICE__STATS_RESP__INIT;
	Sluice__ClientHeartbeatReq hbr = SLUICE__CLIENT_HEARTBEAT_REQ__INIT;
	struct rpc_result res = {0};
	struct hdrbuf hb;
	uint64_t sid, s2;
	int64_t f, f2;

	/* client 77 goes silent; client 78 keeps heartbeating */
	f = rpc_create(META_ROOT_INO, "silent", O_WRONLY | O_EXCL, 77, &sid);
	f2 = rpc_create(META_ROOT_INO, "alive", O_WRONLY | O_EXCL, 78, &s2);
	CHECK(f > 0 && f2 > 0);
	CHECK_EQ(rpc_remove(meta_OP_UNLINK, META_ROOT_INO, "silent"), 0);
	CHECK_EQ(rpc_remove(meta_OP_UNLINK, META_ROOT_INO, "alive"), 0);
	for (int i = 0; i < 100; i++) {
		hbr.hdr = mkhdr(&hb, 0, 78);
		CHECK_EQ(metac_client_heartbeat(tc.rpc, meta_uri, &hbr, &opts, &res), 0);
		rpc_result_release(&res);
		if (rpc_stats(&st) == 0 && st.sessions_expired >= 1)
			break;
		env_sleep_ms(50);
	}
	CHECK_EQ(st.sessions_expired, 1);
	wait_gc_empty(); /* the silent client's file went */
	{
		Sluice__GetattrReq g = SLUICE__GETATTR_REQ__INIT;

		g.hdr = mkhdr(&hb, 0, 0);
		g.ino = (uint64_t)f;
		CHECK_EQ(metac_getattr(tc.rpc, meta_uri, &g, &opts, &res), -ENOENT);
		rpc_result_release(&res);
		g.hdr = mkhdr(&hb, 0, 0);
		g.ino = (uint64_t)f2;
		CHECK_EQ(metac_getattr(tc.rpc, meta_uri, &g, &opts, &res), 0); /* still open */
		rpc_result_release(&res);
	}
}

static void test_restart(void)
{
	uint64_t problems = 1;
	int64_t a = rpc_lookup(META_ROOT_INO, "a", NULL), keep;
	char ids_before[256] = "", ids_after[256] = "", path[256];
	FILE *f;
	int st;

	keep = rpc_mkdir((uint64_t)a, "kept", 0);
	CHECK(keep > 0);
	snprintf(path, sizeof(path), "%s/meta/node.ids", dir_);
	f = fopen(path, "r");
	if (f) {
		CHECK(fgets(ids_before, sizeof(ids_before), f) != NULL);
		fclose(f);
	}
	CHECK(ids_before[0] != '\0');
	stop(pid_meta, SIGKILL);
	CHECK_EQ(start_meta(), 0);
	CHECK_EQ(rpc_lookup((uint64_t)a, "kept", NULL), keep);
	CHECK_EQ(rpc_lookup(META_ROOT_INO, "hard", NULL) > 0, 1);
	CHECK_EQ(rpc_fsck(0, &problems), 0);
	CHECK_EQ(problems, 0);
	f = fopen(path, "r");
	if (f) {
		CHECK(fgets(ids_after, sizeof(ids_after), f) != NULL);
		fclose(f);
	}
	CHECK(strcmp(ids_before, ids_after) == 0);
	st = stop(pid_meta, SIGTERM);
	pid_meta = 0;
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s SLUICE_MGMTD SLUICE_META FAKESTOR\n", argv[0]);
		return 2;
	}
	bin_mgmtd = argv[1];
	bin_meta = argv[2];
	bin_fakestor = argv[3];
	snprintf(dir_, sizeof(dir_), "/tmp/sluice-test-meta-rpc-XXXXXX");
	if (!mkdtemp(dir_))
		test_skip("mkdtemp failed");
	if (start_cluster()) {
		fprintf(stderr, "cluster did not start; logs in %s\n", dir_);
		stop(pid_meta, SIGKILL);
		stop(pid_stor[0], SIGKILL);
		stop(pid_stor[1], SIGKILL);
		stop(pid_mgmtd, SIGKILL);
		return 1;
	}
	CHECK_EQ(test_client_start(&tc, NULL, 64u << 20), 0);
	test_statfs();
	test_ops();
	test_rmtree_gc();
	test_expiry();
	test_restart();
	test_client_stop(&tc);
	stop(pid_meta, SIGKILL);
	stop(pid_stor[0], SIGTERM);
	stop(pid_stor[1], SIGTERM);
	stop(pid_mgmtd, SIGTERM);
	if (test_failures == 0) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir_);
	} else {
		fprintf(stderr, "logs kept in %s\n", dir_);
	}
	return test_result();
}
