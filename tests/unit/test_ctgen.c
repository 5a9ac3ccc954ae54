/*
 * test_ctgen.c - chain table generation (common/ctgen.h), checked independently of the
 * generator's own statistics.
 *
 * For 6 nodes x 1..4 targets (R=3), 12 x 4 (R=3), 100 x 6 (R=3), the same shapes with R=2
 * and R=1, and a few uneven inputs: every chain has R targets on R distinct nodes, every
 * target is used exactly once (or, when the counts do not allow it, the chains plus the
 * leftover list hold each target exactly once), per-node chain counts equal the targets,
 * the failed-node spread (most chains a node shares with any single peer) is at most
 * ideal + 1 everywhere and exactly ideal = ceil(t*(R-1)/(N-1)) for the uniform shapes
 * (the generator reaches the pair-cost lower bound on all of them, for several seeds), head
 * counts differ by at most 1, the table is a function of the seed, and the 100-node case
 * takes well under a second. Random small inputs stay valid and get as many chains as the
 * counts allow; where a balanced incomplete block design exists (7 x 3 R=3, 9 x 4 R=3,
 * 13 x 6 R=3, 16 x 5 R=4) one is found. Also: every input error, and ctgen_format_balance.
 * The balance summaries are printed so a run shows what was achieved.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctgen.h"
#include "common/env.h"
#include "common/limits.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

#define NODES_MAX   128
#define TARGETS_MAX 16

/* An input: node i has id 7 + 5i and targets with ids that do not follow node order. */
struct input {
	struct ctgen_node nodes[NODES_MAX];
	uint64_t ids[NODES_MAX][TARGETS_MAX];
	uint32_t n;
};

static void make_input(struct input *in, uint32_t n, const uint32_t *targets)
{
	CHECK(n <= NODES_MAX);
	memset(in, 0, sizeof(*in));
	in->n = n;
	for (uint32_t i = 0; i < n; i++) {
		CHECK(targets[i] <= TARGETS_MAX);
		in->nodes[i].node_id = 7 + 5 * i;
		in->nodes[i].ntargets = targets[i];
		in->nodes[i].target_ids = in->ids[i];
		for (uint32_t j = 0; j < targets[i]; j++)
			in->ids[i][j] = (uint64_t)(j * NODES_MAX + (n - 1 - i)) * 1000003u + 11;
	}
}

static void make_uniform(struct input *in, uint32_t n, uint32_t t)
{
	uint32_t targets[NODES_MAX];

	for (uint32_t i = 0; i < n; i++)
		targets[i] = t;
	make_input(in, n, targets);
}

/* Where a target id lives in the input: node index and target index, or -1. */
static int find_target(const struct input *in, uint64_t id, uint32_t *node, uint32_t *slot)
{
	for (uint32_t i = 0; i < in->n; i++)
		for (uint32_t j = 0; j < in->nodes[i].ntargets; j++)
			if (in->ids[i][j] == id) {
				*node = i;
				*slot = j;
				return 0;
			}
	return -1;
}

/* What verify() measured on its own. */
struct measured {
	uint32_t chains[NODES_MAX];
	uint32_t heads[NODES_MAX];
	uint32_t pair[NODES_MAX][NODES_MAX];
	uint32_t peer_max[NODES_MAX];
	uint32_t used_nodes;
	uint32_t spread_excess; /* max over nodes of peer_max - ideal */
	uint32_t head_min, head_max;
};

static uint32_t ceil_div(uint32_t a, uint32_t b)
{
	return b == 0 ? 0 : (a + b - 1) / b;
}

static void count_uses(const struct input *in, const struct ctgen_table *t, struct measured *m)
{
	static uint8_t used[NODES_MAX][TARGETS_MAX];
	uint32_t r = t->r;

	memset(used, 0, sizeof(used));
	memset(m, 0, sizeof(*m));
	for (uint32_t c = 0; c < t->nchains; c++) {
		uint32_t nodes[SLUICE_CHAIN_LEN_MAX] = {0};

		for (uint32_t k = 0; k < r; k++) {
			uint32_t i = 0, j = 0;

			CHECK(find_target(in, t->targets[c * r + k], &i, &j) == 0);
			CHECK(!used[i][j]); /* each target at most once */
			used[i][j] = 1;
			CHECK(t->nodes[c * r + k] == in->nodes[i].node_id);
			for (uint32_t q = 0; q < k; q++)
				CHECK(nodes[q] != i); /* distinct nodes in a chain */
			nodes[k] = i;
			m->chains[i]++;
		}
		m->heads[nodes[0]]++;
		for (uint32_t a = 0; a < r; a++)
			for (uint32_t b = 0; b < r; b++)
				if (a != b)
					m->pair[nodes[a]][nodes[b]]++;
	}
	for (uint32_t k = 0; k < t->nleftover; k++) {
		uint32_t i = 0, j = 0;

		CHECK(find_target(in, t->leftover[k], &i, &j) == 0);
		CHECK(!used[i][j]);
		used[i][j] = 1;
	}
	/* chains + leftover hold every target exactly once */
	for (uint32_t i = 0; i < in->n; i++)
		for (uint32_t j = 0; j < in->nodes[i].ntargets; j++)
			CHECK(used[i][j]);
}

/* Check a table against its input and measure the balance; returns the measurements in m. */
static void verify(const struct input *in, const struct ctgen_table *t, uint32_t r,
		   struct measured *m)
{
	uint32_t total = 0;

	CHECK(t->r == r && t->nnodes == in->n);
	count_uses(in, t, m);
	for (uint32_t i = 0; i < in->n; i++)
		total += in->nodes[i].ntargets;
	CHECK(t->nchains * r + t->nleftover == total);
	m->head_min = UINT32_MAX;
	for (uint32_t i = 0; i < in->n; i++)
		m->used_nodes += m->chains[i] > 0;
	for (uint32_t i = 0; i < in->n; i++) {
		const struct ctgen_node_stats *ns = &t->node_stats[i];
		uint32_t ideal;

		CHECK(ns->node_id == in->nodes[i].node_id);
		CHECK(ns->targets == in->nodes[i].ntargets);
		CHECK(ns->chains == m->chains[i] && ns->heads == m->heads[i]);
		if (m->chains[i] == 0)
			continue;
		for (uint32_t j = 0; j < in->n; j++)
			if (m->pair[i][j] > m->peer_max[i])
				m->peer_max[i] = m->pair[i][j];
		ideal = ceil_div(m->chains[i] * (r - 1), m->used_nodes - 1);
		CHECK(ns->peer_max == m->peer_max[i] && ns->peer_ideal == ideal);
		if (m->peer_max[i] > ideal && m->peer_max[i] - ideal > m->spread_excess)
			m->spread_excess = m->peer_max[i] - ideal;
		m->head_min = m->heads[i] < m->head_min ? m->heads[i] : m->head_min;
		m->head_max = m->heads[i] > m->head_max ? m->heads[i] : m->head_max;
	}
	CHECK(t->balance.chains == t->nchains && t->balance.leftover == t->nleftover);
	CHECK(t->balance.nodes == m->used_nodes && t->balance.r == r);
	CHECK(t->balance.peer_excess == m->spread_excess);
	CHECK(t->balance.head_min == m->head_min && t->balance.head_max == m->head_max);
	CHECK(t->balance.pair_cost >= t->balance.pair_cost_bound);
}

static struct ctgen_table *gen(const struct input *in, uint32_t r, uint64_t seed)
{
	struct ctgen_spec spec = {.nodes = in->nodes, .nnodes = in->n, .r = r, .seed = seed};
	struct ctgen_table *t = NULL;
	char msg[256];
	int rc = ctgen_generate(&spec, &t, msg, sizeof(msg));

	if (rc != 0)
		fprintf(stderr, "ctgen_generate: %d %s\n", rc, msg);
	CHECK(rc == 0 && t != NULL);
	return t;
}

static void print_balance(const char *what, const struct ctgen_table *t)
{
	char buf[1024];

	CHECK(ctgen_format_balance(&t->balance, buf, sizeof(buf)) < (int)sizeof(buf));
	printf("--- %s\n%s", what, buf);
}

/* A uniform shape: everything used, counts equal, spread ideal, heads within one. */
static void test_uniform(uint32_t n, uint32_t tpn, uint32_t r)
{
	static struct input in;
	static struct measured m;
	char what[64];

	make_uniform(&in, n, tpn);
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct ctgen_table *t = gen(&in, r, seed * 0x9E3779B97F4A7C15u);

		verify(&in, t, r, &m);
		CHECK(t->nleftover == 0 && t->nchains == n * tpn / r);
		for (uint32_t i = 0; i < n; i++)
			CHECK(m.chains[i] == tpn);
		CHECK(t->balance.chains_min == tpn && t->balance.chains_max == tpn);
		/* The requirement is ideal + 1; this generator reaches the ideal on these shapes.
		 */
		CHECK(m.spread_excess == 0);
		CHECK(t->balance.pair_cost == t->balance.pair_cost_bound);
		CHECK(m.head_max - m.head_min <= 1);
		if (seed == 1) {
			snprintf(what, sizeof(what), "%u nodes x %u targets, R=%u", n, tpn, r);
			print_balance(what, t);
		}
		ctgen_table_free(t);
	}
}

/* Uneven inputs: still valid, leftover exactly right, spread within ideal + 1 where it can. */
static void test_uneven(void)
{
	static struct input in;
	static struct measured m;
	struct ctgen_table *t;

	/* 6 nodes with 1..4 targets each: 15 targets, 5 chains; the two 4-target nodes must
	 * share 3 of the 5 chains, so the spread bound cannot hold for them: only validity. */
	make_input(&in, 6, (const uint32_t[]){1, 4, 3, 2, 1, 4});
	t = gen(&in, 3, 1);
	verify(&in, t, 3, &m);
	CHECK(t->nchains == 5 && t->nleftover == 0);
	print_balance("6 nodes x {1,4,3,2,1,4} targets, R=3", t);
	ctgen_table_free(t);

	/* 14 targets, R=3: 4 chains, 2 targets left over, from nodes at the top. */
	make_uniform(&in, 7, 2);
	t = gen(&in, 3, 1);
	verify(&in, t, 3, &m);
	CHECK(t->nchains == 4 && t->nleftover == 2);
	CHECK(t->balance.chains_min == 1 && t->balance.chains_max == 2);
	ctgen_table_free(t);

	/* One node with most targets: only 1 chain is possible (it can be in each chain once). */
	make_input(&in, 4, (const uint32_t[]){10, 1, 1, 1});
	t = gen(&in, 3, 1);
	verify(&in, t, 3, &m);
	CHECK(t->nchains == 1 && t->nleftover == 10);
	ctgen_table_free(t);

	/* Nodes without targets take no part and are not counted as peers. */
	make_input(&in, 8, (const uint32_t[]){3, 0, 3, 3, 0, 3, 3, 3});
	t = gen(&in, 3, 1);
	verify(&in, t, 3, &m);
	CHECK(t->nchains == 6 && t->nleftover == 0 && m.used_nodes == 6);
	CHECK(t->node_stats[1].chains == 0 && t->node_stats[4].chains == 0);
	CHECK(m.spread_excess == 0);
	ctgen_table_free(t);

	/* 100 nodes with 2..12 targets */
	{
		uint32_t tc[100];

		for (uint32_t i = 0; i < 100; i++)
			tc[i] = 2 + (i * 7919u) % 11;
		make_input(&in, 100, tc);
		t = gen(&in, 3, 7);
		verify(&in, t, 3, &m);
		CHECK(m.spread_excess <= 1);
		print_balance("100 nodes x 2..12 targets, R=3", t);
		ctgen_table_free(t);
	}
}

/* Random small inputs: always valid, and as many chains as the counts allow. */
static void test_random(void)
{
	static struct input in;
	static struct measured m;
	uint64_t x = 0xC0FFEE;

	for (int it = 0; it < 400; it++) {
		uint32_t targets[NODES_MAX], n, r, with = 0, total = 0, c;
		struct ctgen_spec spec;
		struct ctgen_table *t = NULL;
		uint64_t fits = 0;
		char msg[128];
		int rc;

		x = x * 6364136223846793005u + 1442695040888963407u;
		n = 1 + (uint32_t)(x >> 33) % 30;
		r = 1 + (uint32_t)(x >> 20) % 5;
		for (uint32_t i = 0; i < n; i++) {
			x = x * 6364136223846793005u + 1442695040888963407u;
			targets[i] = (uint32_t)(x >> 40) % 7;
			with += targets[i] > 0;
			total += targets[i];
		}
		make_input(&in, n, targets);
		spec = (struct ctgen_spec){
			.nodes = in.nodes, .nnodes = n, .r = r, .seed = x, .restarts = 2};
		rc = ctgen_generate(&spec, &t, msg, sizeof(msg));
		if (total == 0 || with < r) {
			CHECK(rc == -EINVAL && msg[0] != '\0');
			continue;
		}
		CHECK(rc == 0);
		verify(&in, t, r, &m);
		/* maximal: one more chain would need some node twice */
		c = t->nchains;
		for (uint32_t i = 0; i < n; i++)
			fits += targets[i] < c + 1 ? targets[i] : c + 1;
		CHECK(c >= 1 && fits < (uint64_t)(c + 1) * r);
		ctgen_table_free(t);
	}
}

/* Shapes where a balanced incomplete block design exists: every pair shares one chain. */
static void test_designs(void)
{
	static const uint32_t shapes[][3] = {{7, 3, 3}, {9, 4, 3}, {13, 6, 3}, {16, 5, 4}};
	static struct input in;
	static struct measured m;

	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		uint32_t n = shapes[k][0], r = shapes[k][2];
		struct ctgen_table *t;

		make_uniform(&in, n, shapes[k][1]);
		t = gen(&in, r, 1);
		verify(&in, t, r, &m);
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t j = 0; j < n; j++)
				CHECK(i == j || m.pair[i][j] == 1);
		CHECK(t->balance.pair_min == 1 && t->balance.pair_max == 1);
		ctgen_table_free(t);
	}
}

static void test_determinism(void)
{
	static struct input in;
	struct ctgen_table *a, *b, *c;
	size_t bytes;
	int differs = 0;

	make_uniform(&in, 12, 4);
	a = gen(&in, 3, 42);
	b = gen(&in, 3, 42);
	bytes = sizeof(a->targets[0]) * a->nchains * a->r;
	CHECK(a->nchains == b->nchains && memcmp(a->targets, b->targets, bytes) == 0);
	CHECK(memcmp(&a->balance, &b->balance, sizeof(a->balance)) == 0);
	for (uint64_t seed = 43; seed < 48 && !differs; seed++) {
		c = gen(&in, 3, seed);
		differs = memcmp(a->targets, c->targets, bytes) != 0;
		ctgen_table_free(c);
	}
	CHECK(differs); /* the seed matters */
	ctgen_table_free(a);
	ctgen_table_free(b);
}

static void test_speed(void)
{
	static struct input in;
	uint64_t t0, elapsed_ns;
	struct ctgen_table *t;

	make_uniform(&in, 100, 6);
	t0 = env_now_ns();
	t = gen(&in, 3, 12345);
	elapsed_ns = env_now_ns() - t0;
	printf("100 nodes x 6 targets R=3 took %.2f ms\n", (double)elapsed_ns / 1e6);
	CHECK(elapsed_ns < 500ull * 1000 * 1000); /* well under a second, even with sanitizers */
	ctgen_table_free(t);
}

static void expect_einval(const struct ctgen_spec *spec, const char *reason)
{
	struct ctgen_table *t = (struct ctgen_table *)(uintptr_t)0x1;
	char msg[128];

	CHECK(ctgen_generate(spec, &t, msg, sizeof(msg)) == -EINVAL);
	CHECK(t == (struct ctgen_table *)(uintptr_t)0x1); /* untouched */
	if (strstr(msg, reason) == NULL) {
		fprintf(stderr, "message '%s' lacks '%s'\n", msg, reason);
		CHECK(0);
	}
}

static void test_errors(void)
{
	static struct input in;
	struct ctgen_spec s;
	struct ctgen_table *t = NULL;

	make_uniform(&in, 6, 2);
	s = (struct ctgen_spec){.nodes = in.nodes, .nnodes = 6, .r = 3, .seed = 1};
	s.r = 0;
	expect_einval(&s, "replication factor 0");
	s.r = SLUICE_CHAIN_LEN_MAX + 1;
	expect_einval(&s, "replication factor");
	s.r = 7;
	expect_einval(&s, "needs 7 nodes");
	s.r = 3;
	s.nnodes = 0;
	expect_einval(&s, "no nodes");
	s.nnodes = 6;
	s.nodes = NULL;
	expect_einval(&s, "no nodes");
	CHECK(ctgen_generate(NULL, &t, NULL, 0) == -EINVAL); /* no message buffer is fine */
	s.nodes = in.nodes;
	s.restarts = CTGEN_RESTARTS_MAX + 1;
	expect_einval(&s, "restarts");
	s.restarts = 0;

	/* fewer nodes with targets than r, and no targets at all */
	make_input(&in, 6, (const uint32_t[]){5, 0, 0, 0, 0, 5});
	expect_einval(&s, "have 2");
	make_input(&in, 6, (const uint32_t[]){0, 0, 0, 0, 0, 0});
	expect_einval(&s, "no targets");

	/* duplicates */
	make_uniform(&in, 6, 2);
	in.nodes[4].node_id = in.nodes[1].node_id;
	expect_einval(&s, "duplicate node id 12");
	make_uniform(&in, 6, 2);
	in.ids[5][1] = in.ids[0][0];
	expect_einval(&s, "duplicate target id");
	make_uniform(&in, 6, 2);
	in.ids[3][1] = in.ids[3][0];
	expect_einval(&s, "duplicate target id");

	/* malformed node entries */
	make_uniform(&in, 6, 2);
	in.nodes[2].target_ids = NULL;
	expect_einval(&s, "NULL target list");
	make_uniform(&in, 6, 2);
	in.nodes[2].ntargets = CTGEN_NODE_TARGETS_MAX + 1;
	expect_einval(&s, "at most");
	s.nnodes = CTGEN_NODES_MAX + 1;
	expect_einval(&s, "nodes, at most");

	ctgen_table_free(NULL);
}

static void test_format(void)
{
	static struct input in;
	struct ctgen_table *t;
	char buf[1024], small[16];
	int n;

	make_uniform(&in, 12, 4);
	t = gen(&in, 3, 1);
	n = ctgen_format_balance(&t->balance, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf));
	CHECK(strstr(buf, "chains 16 (r=3) on 12 nodes, 0 targets left over\n") != NULL);
	CHECK(strstr(buf, "chains per node: min 4 max 4\n") != NULL);
	CHECK(strstr(buf, "heads per node: min 1 max 2\n") != NULL);
	CHECK(ctgen_format_balance(&t->balance, small, sizeof(small)) == n);
	CHECK(strlen(small) == sizeof(small) - 1);
	ctgen_table_free(t);
}

int main(void)
{
	for (uint32_t tpn = 1; tpn <= 4; tpn++)
		test_uniform(6, tpn, 3);
	test_uniform(12, 4, 3);
	test_uniform(100, 6, 3);
	test_uniform(6, 4, 2);
	test_uniform(12, 4, 2);
	test_uniform(100, 6, 2);
	test_uniform(6, 4, 1);
	test_uniform(12, 4, 1);
	test_uniform(100, 6, 1);
	test_uneven();
	test_random();
	test_designs();
	test_determinism();
	test_speed();
	test_errors();
	test_format();
	printf("ctgen: ok\n");
	return 0;
}
