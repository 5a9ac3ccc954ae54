/*
 * bench_tcp.c - the raw loopback TCP limits on their own (tests/bench/run tcp).
 *
 * Prints plain TCP round trips per second (64-byte messages, 1 and N in flight on one
 * connection) and one-direction bulk throughput (1 MiB and 4 MiB messages over C
 * connections), then the benchmark JSON line every Sluice benchmark ends with:
 *
 *   {"bench":"tcp","value":V,"unit":"GB/s","limit":V,"ratio":1.0,...}
 *
 * value and limit are the best bulk figure (GB = 1e9 bytes), so the ratio is 1 by
 * definition: this program exists so the benchmark plumbing can be tested before the RPC
 * benchmark (which reports its own throughput against the same limit) lands.
 *
 * Usage: bench_tcp [-t SECONDS] [-n INFLIGHT] [-c CONNS]   (defaults 1.0, 16, 2)
 * Single-threaded driver; the measurements start their own threads (tcp_blaster.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/err.h"
#include "tests/bench/tcp_blaster.h"

#define MIB (1024u * 1024u)

struct opts {
	double seconds;
	unsigned inflight;
	unsigned conns;
};

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "t:n:c:h")) != -1) {
		char *end;

		switch (c) {
		case 't':
			o->seconds = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(o->seconds > 0) ||
			    o->seconds > BLASTER_SECONDS_MAX)
				return -EINVAL;
			break;
		case 'n':
			if (parse_uint(optarg, 1, BLASTER_INFLIGHT_MAX, &o->inflight) < 0)
				return -EINVAL;
			break;
		case 'c':
			if (parse_uint(optarg, 1, BLASTER_CONNS_MAX, &o->conns) < 0)
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "bench_tcp: %s failed: %s (%d)\n", what, sluice_strerror(rc), rc);
	return 1;
}

int main(int argc, char **argv)
{
	struct opts o = {.seconds = 1.0, .inflight = 16, .conns = 2};
	static const size_t sizes[] = {1 * MIB, 4 * MIB};
	double rtt1, rttn, bulk[2], best = 0;
	int rc;

	if (parse_opts(argc, argv, &o) < 0) {
		fprintf(stderr,
			"usage: bench_tcp [-t SECONDS] [-n INFLIGHT 1..%u] [-c CONNS 1..%u]\n",
			BLASTER_INFLIGHT_MAX, BLASTER_CONNS_MAX);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	rc = blaster_rtt(1, o.seconds, &rtt1);
	if (rc < 0)
		return fail("rtt inflight 1", rc);
	printf("tcp rtt   64 B, 1 in flight:     %10.0f ops/s\n", rtt1);
	rc = blaster_rtt(o.inflight, o.seconds, &rttn);
	if (rc < 0)
		return fail("rtt inflight N", rc);
	printf("tcp rtt   64 B, %u in flight:%*s%10.0f ops/s\n", o.inflight,
	       o.inflight < 10	   ? 5
	       : o.inflight < 100  ? 4
	       : o.inflight < 1000 ? 3
				   : 2,
	       "", rttn);

	for (unsigned i = 0; i < 2; i++) {
		rc = blaster_bulk(sizes[i], o.conns, o.seconds, &bulk[i]);
		if (rc < 0)
			return fail("bulk", rc);
		printf("tcp bulk  %u MiB x %u conns:      %10.2f GB/s\n",
		       (unsigned)(sizes[i] / MIB), o.conns, bulk[i] / 1e9);
		if (bulk[i] > best)
			best = bulk[i];
	}

	printf("{\"bench\":\"tcp\",\"value\":%.3f,\"unit\":\"GB/s\",\"limit\":%.3f,\"ratio\":1.0,"
	       "\"seconds\":%.2f,\"rtt_1_ops_s\":%.0f,\"rtt_inflight\":%u,\"rtt_n_ops_s\":%.0f,"
	       "\"conns\":%u,\"bulk_1MiB_GBps\":%.3f,\"bulk_4MiB_GBps\":%.3f}\n",
	       best / 1e9, best / 1e9, o.seconds, rtt1, o.inflight, rttn, o.conns, bulk[0] / 1e9,
	       bulk[1] / 1e9);
	return 0;
}
