/*
 * test_craq_chaos.c - the client of tests/integration/test_craq_chaos.py: replicated writes
 * through CRAQ chains (craqload.h) while the harness SIGKILLs and restarts chain members,
 * then every acknowledged update checked on every replica.
 *
 * Usage: test_craq_chaos MGMTD_URI CTL_DIR [--chains ID,ID,..] [--writers N] [--chunks N]
 *                        [--seed S] [--truncate-pct P] [--read-pct P] [--duration-ms MS]
 *                        [--verify-wait-ms MS]
 *   --chains        chains to write (default: every chain in the routing table)
 *   --writers       concurrent writers, one update in flight each (32)
 *   --chunks        chunks per chain, 64 KiB each (64)
 *   --seed          data and update shapes (default: from the clock; printed)
 *   --truncate-pct  share of updates that are truncates (5)
 *   --read-pct      share of acks followed by a read-back from a serving member (10)
 *   --duration-ms   run the writers this long, then verify at once (no control files)
 *   --verify-wait-ms  how long verify waits for every member to serve (120000)
 *
 * Control files in CTL_DIR (the harness's side of the protocol):
 *   progress  rewritten (atomically) every 200 ms while writers run: "acked N", "failed
 *             0|1", "errors N", "retried N", ... lines and "chain ID N" (acked per chain);
 *   stop      created by the harness: the writers finish their updates in flight and stop,
 *             then this program writes `stopped` (the final counters, same format);
 *   verify    created by the harness once the cluster has settled: read every chunk from
 *             every member of its chain and compare with the model.
 * Exit status: 0 all acknowledged updates on every replica, 1 failure (an update never
 * acked, an ack or read-back that differs from the model, a replica that differs), 2
 * usage. A failing run exits as soon as the writers stop, without waiting for the files.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "tests/storage/craqload.h"
#include "tests/storage/storclient.h"

#define PROGRESS_MS 200

static char ctl_dir[1024];

static bool ctl_exists(const char *name)
{
	char p[1100];

	snprintf(p, sizeof(p), "%s/%s", ctl_dir, name);
	return access(p, F_OK) == 0;
}

/* Write the counters to CTL_DIR/name atomically (tmp file, rename). */
static void ctl_write(struct craqload *l, const char *name)
{
	struct craqload_stats s;
	char p[1100], tmp[1110];
	const uint32_t *ids;
	unsigned n = craqload_chains(l, &ids);
	FILE *f;

	craqload_stats(l, &s);
	snprintf(p, sizeof(p), "%s/%s", ctl_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	f = fopen(tmp, "w");
	if (f == NULL) {
		perror(tmp);
		return;
	}
	fprintf(f,
		"acked %" PRIu64 "\nfailed %d\nerrors %" PRIu64 "\nretried %" PRIu64
		"\nreads %" PRIu64 "\nmax_ack_ms %" PRIu64 "\n",
		s.acked, s.failed ? 1 : 0, s.errors, s.attempts_failed, s.reads_checked,
		s.max_ack_ms);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "chain %u %" PRIu64 "\n", ids[i], craqload_chain_acked(l, i));
	if (fclose(f) != 0 || rename(tmp, p) != 0)
		perror(p);
}

static int parse_ids(const char *s, uint32_t *ids, unsigned cap, unsigned *n)
{
	char *end;

	*n = 0;
	while (*s) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0 || v > UINT32_MAX || *n == cap || (*end && *end != ','))
			return -EINVAL;
		ids[(*n)++] = (uint32_t)v;
		s = *end ? end + 1 : end;
	}
	return *n ? 0 : -EINVAL;
}

static _Noreturn void usage(const char *why)
{
	fprintf(stderr,
		"test_craq_chaos: %s\nusage: test_craq_chaos MGMTD_URI CTL_DIR [--chains ID,..] "
		"[--writers N] [--chunks N] [--seed S] [--truncate-pct P] [--read-pct P] "
		"[--duration-ms MS] [--verify-wait-ms MS]\n",
		why);
	exit(2);
}

struct opts {
	struct craqload_cfg cfg;
	uint32_t chains[CRAQLOAD_CHAINS_MAX];
	uint32_t duration_ms, verify_wait_ms;
};

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{"chains", required_argument, NULL, 'c'},
		{"writers", required_argument, NULL, 'w'},
		{"chunks", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, 's'},
		{"truncate-pct", required_argument, NULL, 't'},
		{"read-pct", required_argument, NULL, 'r'},
		{"duration-ms", required_argument, NULL, 'd'},
		{"verify-wait-ms", required_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	int ch;

	o->cfg.truncate_pct = 5;
	o->cfg.read_pct = 10;
	o->cfg.seed = tstor_seed(0, argv, 0);
	o->verify_wait_ms = 120000;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 0) : 0;

		switch (ch) {
		case 'c':
			if (parse_ids(optarg, o->chains, CRAQLOAD_CHAINS_MAX, &o->cfg.nchains))
				usage("--chains: expected ID,ID,...");
			o->cfg.chain_ids = o->chains;
			break;
		case 'w':
			o->cfg.writers = (unsigned)v;
			break;
		case 'n':
			o->cfg.chunks_per_chain = (unsigned)v;
			break;
		case 's':
			o->cfg.seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			o->cfg.truncate_pct = (unsigned)v;
			break;
		case 'r':
			o->cfg.read_pct = (unsigned)v;
			break;
		case 'd':
			o->duration_ms = (uint32_t)v;
			break;
		case 'v':
			o->verify_wait_ms = (uint32_t)v;
			break;
		default:
			usage("unknown option");
		}
	}
	if (argc - optind != 2)
		usage("expected MGMTD_URI and CTL_DIR");
	o->cfg.mgmtd = argv[optind];
	snprintf(ctl_dir, sizeof(ctl_dir), "%s", argv[optind + 1]);
}

/* Run the writers until CTL_DIR/stop (or duration_ms), reporting progress; 0 or the run's
 * first error. */
static int run(struct craqload *l, const struct opts *o)
{
	uint64_t t0 = tstor_now_ms(), last = 0;
	struct craqload_stats s;
	int rc;

	rc = craqload_start(l);
	if (rc != 0) {
		fprintf(stderr, "starting the writers: %s\n", sluice_strerror(rc));
		return rc;
	}
	for (;;) {
		uint64_t now = tstor_now_ms();

		craqload_stats(l, &s);
		if (s.failed || (o->duration_ms ? now - t0 >= o->duration_ms : ctl_exists("stop")))
			break;
		if (now - last >= PROGRESS_MS) {
			if (!o->duration_ms)
				ctl_write(l, "progress");
			if (now / 5000 != last / 5000)
				craqload_print_stats(l);
			last = now;
		}
		env_sleep_ms(20);
	}
	rc = craqload_stop(l);
	craqload_print_stats(l);
	if (!o->duration_ms)
		ctl_write(l, "stopped");
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct craqload *l;
	struct craqload_stats s;
	int rc, ndiff;

	parse(argc, argv, &o);
	env_seed(o.cfg.seed ^ (uint64_t)getpid());
	setvbuf(stdout, NULL, _IOLBF, 0);
	o.cfg.log = stdout;
	printf("test_craq_chaos: seed %" PRIu64 " (--seed to repeat the same updates)\n",
	       o.cfg.seed);
	rc = craqload_create(&o.cfg, &l);
	if (rc != 0) {
		fprintf(stderr, "craqload_create: %s\n", sluice_strerror(rc));
		return 1;
	}
	rc = run(l, &o);
	if (rc != 0) {
		printf("FAIL: the writers stopped on an error: %s\n", sluice_errname(rc));
		craqload_destroy(l);
		return 1;
	}
	while (!o.duration_ms && !ctl_exists("verify"))
		env_sleep_ms(50);
	ndiff = craqload_verify(l, o.verify_wait_ms);
	craqload_stats(l, &s);
	craqload_destroy(l);
	if (ndiff != 0 || s.errors != 0) {
		printf("FAIL: %s, %" PRIu64 " errors while writing\n",
		       ndiff < 0 ? sluice_errname(ndiff)
		       : ndiff	 ? "replicas differ"
				 : "verified",
		       s.errors);
		return 1;
	}
	printf("PASS: every acknowledged update is on every replica\n");
	return 0;
}
