/*
 * fakestor.c - sluice-test-fakestor: a storage node that stores nothing, for mgmtd tests.
 *
 *   sluice-test-fakestor --mgmtd URI --state-dir DIR --targets N
 *                        [--addr URI] [--control FILE] [--status FILE]
 *
 * It runs the real node agent (client/nodeagent.c) on a reactor thread, registering N
 * targets DIR/t0 .. DIR/t{N-1} of 1 TiB each under the address --addr (default
 * tcp://127.0.0.1:1: nothing listens there, mgmtd only stores it), and heartbeats their
 * local states, all LS_ONLINE at first. The ids persist in DIR/node.ids like a real
 * daemon's, so a restarted fakestor comes back as the same node.
 *
 * Test control, every 100 ms on the main thread:
 *   - the control file, if present, is the whole desired state: lines
 *     "<index> offline|online|uptodate", the last line per index wins, unnamed targets are
 *     online (so is every target while the file is absent). Write it atomically
 *     (tmp + rename): a half-written file is read as it is.
 *   - the status file is rewritten (tmp + rename) whenever its text changes:
 *         node_id N / incarnation N / fenced 0|1 / routing_version N / target <index> <id>
 *     incarnation is 0 while unregistered, target ids 0 until known.
 * SIGTERM or SIGINT stops the agent and exits 0. Exit 2 on usage errors, 1 on failures.
 *
 * Threads: main (arguments, signals via sigtimedwait, control and status files) and the
 * reactor thread (agent, RPC). The local states and the status snapshot cross between them
 * only through run_on_reactor, so the reactor owns all agent state.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/nodeagent.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "tests/lib/testlib.h"

LOG_FACILITY("fakestor");

#define FAKESTOR_TARGETS_MAX	 64u
#define FAKESTOR_TARGET_CAPACITY (1ull << 40)
#define FAKESTOR_POLL_MS	 100u
#define FAKESTOR_STATUS_MAX	 (256u + 48u * FAKESTOR_TARGETS_MAX)

struct fakestor {
	const char *mgmtd_uri, *state_dir, *addr, *control, *status;
	unsigned ntargets;
	char *paths[FAKESTOR_TARGETS_MAX];
	struct test_client tc;
	struct nodeagent *agent; /* reactor-owned from here down */
	int start_rc;
	Sluice__LocalState local[FAKESTOR_TARGETS_MAX];
};

/* ---- on the reactor thread ------------------------------------------------------------- */

static void report_cb(void *arg, uint64_t target_id, unsigned index, Sluice__TargetReport *out)
{
	struct fakestor *fs = arg;

	out->local_state = fs->local[index];
	out->capacity_bytes = FAKESTOR_TARGET_CAPACITY;
}

static void fence_cb(void *arg, bool fenced)
{
	log_notice("fenced %d", fenced);
}

static void routing_cb(void *arg, uint64_t version)
{
	log_info("routing version %" PRIu64, version);
}

static void start_fn(void *arg)
{
	struct fakestor *fs = arg;
	struct nodeagent_target targets[FAKESTOR_TARGETS_MAX];
	const char *addrs[1] = {fs->addr};
	struct nodeagent_cfg cfg = {
		.mgmtd_uri = fs->mgmtd_uri,
		.type = SLUICE__NODE_TYPE__NODE_STORAGE,
		.addrs = addrs,
		.naddrs = 1,
		.state_dir = fs->state_dir,
		.targets = targets,
		.ntargets = fs->ntargets,
		.report = report_cb,
		.on_fence = fence_cb,
		.on_routing = routing_cb,
		.arg = fs,
	};

	for (unsigned i = 0; i < fs->ntargets; i++)
		targets[i] = (struct nodeagent_target){fs->paths[i], FAKESTOR_TARGET_CAPACITY};
	fs->start_rc = nodeagent_start(fs->tc.r, fs->tc.rpc, &cfg, &fs->agent);
}

static void stop_fn(void *arg)
{
	struct fakestor *fs = arg;

	nodeagent_stop(fs->agent);
	fs->agent = NULL;
}

struct apply {
	struct fakestor *fs;
	Sluice__LocalState want[FAKESTOR_TARGETS_MAX];
};

static void apply_fn(void *arg)
{
	struct apply *ap = arg;

	memcpy(ap->fs->local, ap->want, sizeof(ap->want));
}

struct snapshot {
	struct fakestor *fs;
	char text[FAKESTOR_STATUS_MAX];
};

static void snapshot_fn(void *arg)
{
	struct snapshot *sn = arg;
	struct nodeagent *a = sn->fs->agent;
	size_t cap = sizeof(sn->text);
	int n;

	n = snprintf(sn->text, cap,
		     "node_id %" PRIu32 "\nincarnation %" PRIu64 "\nfenced %d\n"
		     "routing_version %" PRIu64 "\n",
		     nodeagent_node_id(a), nodeagent_incarnation(a), nodeagent_fenced(a) ? 1 : 0,
		     nodeagent_routing_version(a));
	for (unsigned i = 0; i < sn->fs->ntargets; i++)
		n += snprintf(sn->text + n, cap - (size_t)n, "target %u %" PRIu64 "\n", i,
			      nodeagent_target_id(a, i));
	ASSERT((size_t)n < cap);
}

/* ---- on the main thread ----------------------------------------------------------------- */

static Sluice__LocalState parse_state(const char *s, bool *ok)
{
	*ok = true;
	if (strcmp(s, "offline") == 0)
		return SLUICE__LOCAL_STATE__LS_OFFLINE;
	if (strcmp(s, "online") == 0)
		return SLUICE__LOCAL_STATE__LS_ONLINE;
	if (strcmp(s, "uptodate") == 0)
		return SLUICE__LOCAL_STATE__LS_UPTODATE;
	*ok = false;
	return SLUICE__LOCAL_STATE__LS_ONLINE;
}

/* The desired states from the control file (all online when there is none). */
static void read_control(const struct fakestor *fs, Sluice__LocalState *want)
{
	char line[256], word[32];
	unsigned idx;
	FILE *f;

	for (unsigned i = 0; i < FAKESTOR_TARGETS_MAX; i++)
		want[i] = SLUICE__LOCAL_STATE__LS_ONLINE;
	if (!fs->control)
		return;
	f = fopen(fs->control, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		Sluice__LocalState st;
		bool ok;

		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (sscanf(line, "%u %31s", &idx, word) != 2 || idx >= fs->ntargets) {
			log_warn_rl("%s: ignoring line: %s", fs->control, line);
			continue;
		}
		st = parse_state(word, &ok);
		if (!ok) {
			log_warn_rl("%s: unknown state %s", fs->control, word);
			continue;
		}
		want[idx] = st;
	}
	fclose(f);
}

static int write_status(const char *path, const char *text)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	FILE *f;
	int rc = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f) {
		rc = -errno;
		goto out;
	}
	if (fputs(text, f) == EOF)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
out:
	free(tmp);
	return rc;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --mgmtd URI --state-dir DIR --targets N [--addr URI]\n"
		"          [--control FILE] [--status FILE]\n",
		prog);
}

static int parse_args(int argc, char **argv, struct fakestor *fs)
{
	static const struct option opts[] = {
		{"mgmtd", required_argument, NULL, 'm'},
		{"state-dir", required_argument, NULL, 'd'},
		{"targets", required_argument, NULL, 'n'},
		{"addr", required_argument, NULL, 'a'},
		{"control", required_argument, NULL, 'c'},
		{"status", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char *end;
	long n;
	int c;

	fs->addr = "tcp://127.0.0.1:1";
	fs->ntargets = FAKESTOR_TARGETS_MAX + 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			fs->mgmtd_uri = optarg;
			break;
		case 'd':
			fs->state_dir = optarg;
			break;
		case 'n':
			n = strtol(optarg, &end, 10);
			if (*end || n < 0 || n > (long)FAKESTOR_TARGETS_MAX)
				return -EINVAL;
			fs->ntargets = (unsigned)n;
			break;
		case 'a':
			fs->addr = optarg;
			break;
		case 'c':
			fs->control = optarg;
			break;
		case 's':
			fs->status = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind != argc || !fs->mgmtd_uri || !fs->state_dir ||
	    fs->ntargets > FAKESTOR_TARGETS_MAX)
		return -EINVAL;
	return 0;
}

/* Poll control and status every FAKESTOR_POLL_MS until SIGTERM or SIGINT. */
static void run(struct fakestor *fs, const sigset_t *sigs)
{
	struct timespec ts = {0, (long)FAKESTOR_POLL_MS * 1000000L};
	static struct snapshot sn;
	static struct apply ap, last_ap;
	char last_status[FAKESTOR_STATUS_MAX] = "";
	bool first = true;

	ap.fs = fs;
	sn.fs = fs;
	for (;;) {
		read_control(fs, ap.want);
		if (first || memcmp(ap.want, last_ap.want, sizeof(ap.want)) != 0) {
			run_on_reactor(fs->tc.r, apply_fn, &ap);
			last_ap = ap;
			if (!first)
				log_notice("control file applied");
		}
		run_on_reactor(fs->tc.r, snapshot_fn, &sn);
		if (fs->status && strcmp(sn.text, last_status) != 0) {
			int rc = write_status(fs->status, sn.text);

			if (rc == 0)
				memcpy(last_status, sn.text, sizeof(last_status));
			else
				log_warn_rl("cannot write %s: %s (%d)", fs->status,
					    sluice_strerror(rc), rc);
		}
		first = false;
		/* The poll interval, cut short by a termination signal. */
		if (sigtimedwait(sigs, NULL, &ts) > 0)
			return;
	}
}

int main(int argc, char **argv)
{
	static struct fakestor fs;
	sigset_t sigs;
	int rc;

	if (parse_args(argc, argv, &fs) != 0) {
		usage(argv[0]);
		return 2;
	}
	if (mkdir(fs.state_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "fakestor: mkdir %s: %s\n", fs.state_dir, strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < fs.ntargets; i++) {
		size_t n = strlen(fs.state_dir) + 16;

		fs.paths[i] = malloc(n);
		if (!fs.paths[i])
			return 1;
		snprintf(fs.paths[i], n, "%s/t%u", fs.state_dir, i);
	}
	/* Block the termination signals before any thread starts, so every thread inherits
	 * the mask and only sigtimedwait in run() ever sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = test_client_start(&fs.tc, NULL, 16u * 1024 * 1024);
	if (rc) {
		fprintf(stderr, "fakestor: client: %s (%d)\n", sluice_strerror(rc), rc);
		return 1;
	}
	run_on_reactor(fs.tc.r, start_fn, &fs);
	if (fs.start_rc) {
		fprintf(stderr, "fakestor: node agent: %s (%d)\n", sluice_strerror(fs.start_rc),
			fs.start_rc);
		test_client_stop(&fs.tc);
		return 1;
	}
	run(&fs, &sigs);
	log_notice("stopping");
	run_on_reactor(fs.tc.r, stop_fn, &fs);
	/* Destroying the client completes a call still in flight; that frees the agent. */
	test_client_stop(&fs.tc);
	for (unsigned i = 0; i < fs.ntargets; i++)
		free(fs.paths[i]);
	return 0;
}
