/*
 * test_stor_routing.c - the storage daemon's routing snapshot (storage/routing.c): tables
 * built in memory from protobuf structs; heads, successors and predecessors with members
 * serving, syncing, waiting, last-serving and offline; lookups of unknown ids; thousands
 * of chains; a snapshot outliving the message it came from; malformed tables refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/routing.h"
#include "tests/lib/testlib.h"

#define SV SLUICE__TARGET_STATE__TS_SERVING
#define SY SLUICE__TARGET_STATE__TS_SYNCING
#define WA SLUICE__TARGET_STATE__TS_WAITING
#define LS SLUICE__TARGET_STATE__TS_LASTSRV
#define OF SLUICE__TARGET_STATE__TS_OFFLINE

#define TB_NODES   4096
#define TB_TARGETS 12000
#define TB_CHAINS  4000
#define TB_MEMBERS (SLUICE_CHAIN_LEN_MAX + 2) /* room for a chain that is too long */

/* A routing table under construction, in memory as protobuf-c would unpack it. */
struct tb {
	Sluice__RoutingTable rt;
	Sluice__NodeInfo nodes[TB_NODES], *np[TB_NODES];
	char addr[TB_NODES][SLUICE_NET_ADDR_MAX + 16], *addrp[TB_NODES];
	Sluice__TargetInfo targets[TB_TARGETS], *tp[TB_TARGETS];
	Sluice__ChainInfo chains[TB_CHAINS], *cp[TB_CHAINS];
	uint64_t members[TB_CHAINS][TB_MEMBERS];
};

static struct tb *tb_new(uint64_t version)
{
	struct tb *b = calloc(1, sizeof(*b));

	if (b == NULL)
		abort();
	sluice__routing_table__init(&b->rt);
	b->rt.version = version;
	b->rt.full = true;
	b->rt.nodes = b->np;
	b->rt.targets = b->tp;
	b->rt.chains = b->cp;
	return b;
}

/* A node with one address ("" for none). */
static Sluice__NodeInfo *tb_node(struct tb *b, uint32_t id, const char *addr)
{
	size_t i = b->rt.n_nodes++;
	Sluice__NodeInfo *n = &b->nodes[i];

	sluice__node_info__init(n);
	n->id = id;
	n->incarnation = 1000 + id;
	if (addr[0]) {
		snprintf(b->addr[i], sizeof(b->addr[i]), "%s", addr);
		b->addrp[i] = b->addr[i];
		n->addrs = &b->addrp[i];
		n->n_addrs = 1;
	}
	b->np[i] = n;
	return n;
}

static Sluice__TargetInfo *tb_target(struct tb *b, uint64_t id, uint32_t node, uint32_t chain,
				     Sluice__TargetState st)
{
	Sluice__TargetInfo *t = &b->targets[b->rt.n_targets];

	sluice__target_info__init(t);
	t->id = id;
	t->node_id = node;
	t->chain_id = chain;
	t->state = st;
	b->tp[b->rt.n_targets++] = t;
	return t;
}

static Sluice__ChainInfo *tb_chain_only(struct tb *b, uint32_t id, unsigned n, const uint64_t *ids)
{
	size_t i = b->rt.n_chains++;
	Sluice__ChainInfo *c = &b->chains[i];

	sluice__chain_info__init(c);
	c->id = id;
	c->version = 10 + id;
	c->targets = b->members[i];
	c->n_targets = n;
	memcpy(b->members[i], ids, n * sizeof(*ids));
	b->cp[i] = c;
	return c;
}

/* A chain and its members, each target on its own node (node id = target id). */
static Sluice__ChainInfo *tb_chain(struct tb *b, uint32_t id, unsigned n, const uint64_t *ids,
				   const Sluice__TargetState *st)
{
	char addr[64];

	for (unsigned k = 0; k < n; k++) {
		snprintf(addr, sizeof(addr), "tcp://10.0.%u.%u:9000", (unsigned)(ids[k] >> 8),
			 (unsigned)(ids[k] & 255));
		tb_node(b, (uint32_t)ids[k], addr);
		tb_target(b, ids[k], (uint32_t)ids[k], id, st[k]);
	}
	return tb_chain_only(b, id, n, ids);
}

#define IDS(...)            \
	(const uint64_t[])  \
	{                   \
		__VA_ARGS__ \
	}
#define STS(...)                      \
	(const Sluice__TargetState[]) \
	{                             \
		__VA_ARGS__           \
	}

static struct stor_rt *build_ok(int line, const Sluice__RoutingTable *table)
{
	struct stor_rt *rt = NULL;
	char why[160] = "";
	int rc = stor_rt_build(table, &rt, why, sizeof(why));

	if (rc != 0 || rt == NULL) {
		fprintf(stderr, "line %d: build: %d (%s)\n", line, rc, why);
		test_failures++;
		exit(test_result());
	}
	return rt;
}
#define BUILD_OK(table) build_ok(__LINE__, table)

/* The table is refused with -EBADMSG, a reason naming `word`, and *out untouched. */
static void expect_bad(int line, struct tb *b, const char *word)
{
	struct stor_rt *sentinel = (struct stor_rt *)&sentinel, *rt = sentinel;
	char why[160] = "";
	int rc = stor_rt_build(&b->rt, &rt, why, sizeof(why));

	if (rc != -EBADMSG || rt != sentinel || strstr(why, word) == NULL) {
		fprintf(stderr, "line %d: build: %d, why '%s' (wanted -EBADMSG, '%s')\n", line, rc,
			why, word);
		test_failures++;
		if (rt != sentinel)
			stor_rt_free(rt);
	}
	free(b);
}
#define EXPECT_BAD(b, word) expect_bad(__LINE__, b, word)

static uint64_t id_of(const struct stor_rt_member *m)
{
	return m ? m->target_id : 0;
}

static void test_all_serving(void)
{
	struct tb *b = tb_new(12);
	struct stor_rt *rt;
	const struct stor_rt_chain *c;
	unsigned pos = 99;

	tb_chain(b, 7, 3, IDS(101, 102, 103), STS(SV, SV, SV));
	rt = BUILD_OK(&b->rt);
	CHECK_EQ(stor_rt_version(rt), 12);
	CHECK_EQ(stor_rt_nchains(rt), 1);
	c = stor_rt_chain(rt, 7);
	CHECK(c != NULL);
	CHECK_EQ(c->id, 7);
	CHECK_EQ(c->version, 17);
	CHECK_EQ(c->n, 3);
	CHECK(stor_rt_chain_of_target(rt, 102, &pos) == c);
	CHECK_EQ(pos, 1);
	CHECK(stor_rt_chain_of_target(rt, 103, NULL) == c);
	CHECK_EQ(c->m[2].target_id, 103);
	CHECK_EQ(c->m[2].node_id, 103);
	CHECK_EQ(c->m[2].node_incarnation, 1103);
	CHECK(strcmp(c->m[2].addr, "tcp://10.0.0.103:9000") == 0);
	CHECK(stor_rt_is_head(c, 101));
	CHECK(!stor_rt_is_head(c, 102) && !stor_rt_is_head(c, 103));
	CHECK_EQ(id_of(stor_rt_successor(c, 101)), 102);
	CHECK_EQ(id_of(stor_rt_successor(c, 102)), 103);
	CHECK_EQ(id_of(stor_rt_successor(c, 103)), 0);	 /* tail */
	CHECK_EQ(id_of(stor_rt_predecessor(c, 101)), 0); /* head */
	CHECK_EQ(id_of(stor_rt_predecessor(c, 102)), 101);
	CHECK_EQ(id_of(stor_rt_predecessor(c, 103)), 102);
	CHECK(stor_rt_member(c, 102) == &c->m[1]);
	/* unknown ids */
	pos = 99;
	CHECK(stor_rt_chain(rt, 8) == NULL && stor_rt_chain(rt, 0) == NULL);
	CHECK(stor_rt_chain_of_target(rt, 104, &pos) == NULL && pos == 99);
	CHECK(stor_rt_member(c, 104) == NULL);
	CHECK(!stor_rt_is_head(c, 104));
	CHECK(stor_rt_successor(c, 104) == NULL && stor_rt_predecessor(c, 104) == NULL);
	stor_rt_free(rt);
	free(b);
}

/* mgmtd's order with every state: serving, syncing, then the rest. */
static void test_mixed_states(void)
{
	struct tb *b = tb_new(3);
	struct stor_rt *rt;
	const struct stor_rt_chain *c;

	tb_chain(b, 1, 5, IDS(11, 12, 13, 14, 15), STS(SV, SV, SY, WA, OF));
	rt = BUILD_OK(&b->rt);
	c = stor_rt_chain(rt, 1);
	CHECK(stor_rt_is_head(c, 11) && !stor_rt_is_head(c, 13));
	CHECK(stor_rt_writable(&c->m[0]) && stor_rt_writable(&c->m[2]));
	CHECK(!stor_rt_writable(&c->m[3]) && !stor_rt_writable(&c->m[4]));
	CHECK_EQ(id_of(stor_rt_successor(c, 12)), 13); /* updates reach the syncing member */
	CHECK_EQ(id_of(stor_rt_successor(c, 13)), 0);  /* waiting and offline get none */
	CHECK_EQ(id_of(stor_rt_successor(c, 14)), 0);
	CHECK_EQ(id_of(stor_rt_predecessor(c, 13)), 12); /* the syncing one: from the tail */
	CHECK_EQ(id_of(stor_rt_predecessor(c, 12)), 11);
	CHECK_EQ(id_of(stor_rt_predecessor(c, 14)), 0); /* nothing is forwarded to it */
	CHECK_EQ(id_of(stor_rt_predecessor(c, 15)), 0);
	stor_rt_free(rt);
	free(b);
}

/* Roles go by state, so an order mgmtd would not send still gives a consistent chain. */
static void test_odd_orders(void)
{
	struct tb *b = tb_new(4);
	struct stor_rt *rt;
	const struct stor_rt_chain *c;

	tb_chain(b, 1, 4, IDS(21, 22, 23, 24), STS(OF, SV, WA, SV)); /* gaps */
	tb_chain(b, 2, 2, IDS(31, 32), STS(LS, OF));		     /* nobody serving */
	tb_chain(b, 3, 2, IDS(41, 42), STS(SY, WA));		     /* syncing, no source */
	tb_chain(b, 4, 1, IDS(51), STS(SV));			     /* head is the tail */
	rt = BUILD_OK(&b->rt);
	c = stor_rt_chain(rt, 1);
	CHECK(stor_rt_is_head(c, 22) && !stor_rt_is_head(c, 21) && !stor_rt_is_head(c, 24));
	CHECK_EQ(id_of(stor_rt_successor(c, 21)), 22); /* (an offline member forwards nothing) */
	CHECK_EQ(id_of(stor_rt_successor(c, 22)), 24);
	CHECK_EQ(id_of(stor_rt_successor(c, 24)), 0);
	CHECK_EQ(id_of(stor_rt_predecessor(c, 24)), 22);
	CHECK_EQ(id_of(stor_rt_predecessor(c, 22)), 0);
	c = stor_rt_chain(rt, 2);
	CHECK(!stor_rt_is_head(c, 31) && !stor_rt_is_head(c, 32));
	CHECK(!stor_rt_writable(&c->m[0]));
	CHECK(stor_rt_successor(c, 31) == NULL && stor_rt_predecessor(c, 31) == NULL);
	c = stor_rt_chain(rt, 3);
	CHECK(!stor_rt_is_head(c, 41)); /* a syncing member never takes client updates */
	CHECK(stor_rt_predecessor(c, 41) == NULL);
	c = stor_rt_chain(rt, 4);
	CHECK(stor_rt_is_head(c, 51));
	CHECK(stor_rt_successor(c, 51) == NULL && stor_rt_predecessor(c, 51) == NULL);
	stor_rt_free(rt);
	free(b);
}

/* Targets in no chain, members on nodes missing or without addresses, an empty table. */
static void test_loose_ends(void)
{
	struct tb *b = tb_new(5);
	struct stor_rt *rt;
	const struct stor_rt_chain *c;
	char why[8];

	tb_node(b, 1, "");
	tb_target(b, 61, 1, 1, SV); /* node without an address */
	tb_target(b, 62, 2, 1, SV); /* node 2 not in the table */
	tb_target(b, 63, 1, 0, SV); /* in no chain */
	tb_chain_only(b, 1, 2, IDS(61, 62));
	rt = BUILD_OK(&b->rt);
	c = stor_rt_chain(rt, 1);
	CHECK(c != NULL && c->m[0].addr[0] == 0 && c->m[1].addr[0] == 0);
	CHECK_EQ(c->m[1].node_incarnation, 0);
	CHECK(stor_rt_chain_of_target(rt, 63, NULL) == NULL);
	stor_rt_free(rt);
	free(b);

	b = tb_new(1);
	rt = BUILD_OK(&b->rt);
	CHECK_EQ(stor_rt_nchains(rt), 0);
	CHECK(stor_rt_chain(rt, 1) == NULL && stor_rt_chain_of_target(rt, 1, NULL) == NULL);
	stor_rt_free(rt);
	b->rt.full = false;
	rt = NULL;
	CHECK(stor_rt_build(&b->rt, &rt, why, sizeof(why)) == -EBADMSG && rt == NULL);
	CHECK(strlen(why) == sizeof(why) - 1); /* cut to fit */
	CHECK(stor_rt_build(&b->rt, &rt, NULL, 0) == -EBADMSG && rt == NULL);
	free(b);
	stor_rt_free(NULL);
}

/* Thousands of chains listed out of order: every lookup finds the right one. */
static void test_many_chains(void)
{
	enum { N = 3000 };
	struct tb *b = tb_new(99);
	struct stor_rt *rt;
	unsigned bad = 0;

	for (unsigned i = 0; i < N; i++) {
		uint32_t id = (uint32_t)((i * 7919u) % N) + 1; /* a permutation of 1..N */
		uint64_t base = 100000u + 10u * id;

		tb_chain_only(b, id, 3, IDS(base + 2, base, base + 1));
		for (unsigned k = 0; k < 3; k++)
			tb_target(b, base + k, 1 + (id + k) % 64, id, SV);
	}
	for (uint32_t n = 1; n <= 64; n++)
		tb_node(b, n, "tcp://node:1");
	rt = BUILD_OK(&b->rt);
	CHECK_EQ(stor_rt_nchains(rt), N);
	for (uint32_t id = 1; id <= N; id++) {
		uint64_t base = 100000u + 10u * id;
		const struct stor_rt_chain *c = stor_rt_chain(rt, id);
		unsigned pos = 9;

		bad += c == NULL || c->id != id || c->version != 10u + id;
		bad += stor_rt_chain_of_target(rt, base, &pos) != c || pos != 1;
		bad += c == NULL || !stor_rt_is_head(c, base + 2);
		bad += c == NULL || id_of(stor_rt_successor(c, base + 2)) != base;
		bad += c == NULL || id_of(stor_rt_predecessor(c, base + 1)) != base;
		bad += stor_rt_chain_of_target(rt, base + 3, NULL) != NULL;
	}
	CHECK_EQ(bad, 0);
	CHECK(stor_rt_chain(rt, N + 1) == NULL);
	stor_rt_free(rt);
	free(b);
}

/* The snapshot copies what it needs: the unpacked reply can go at once (ASan checks). */
static void test_outlives_message(void)
{
	struct tb *b = tb_new(8);
	Sluice__RoutingTable *un;
	struct stor_rt *rt;
	uint8_t *wire;
	size_t len;

	tb_chain(b, 5, 2, IDS(71, 72), STS(SV, SY));
	len = sluice__routing_table__get_packed_size(&b->rt);
	wire = malloc(len);
	CHECK(wire != NULL && sluice__routing_table__pack(&b->rt, wire) == len);
	free(b);
	un = sluice__routing_table__unpack(NULL, len, wire);
	free(wire);
	CHECK(un != NULL);
	rt = BUILD_OK(un);
	sluice__routing_table__free_unpacked(un, NULL);
	CHECK(strcmp(stor_rt_chain(rt, 5)->m[1].addr, "tcp://10.0.0.72:9000") == 0);
	CHECK_EQ(id_of(stor_rt_predecessor(stor_rt_chain(rt, 5), 72)), 71);
	stor_rt_free(rt);
}

static struct tb *good(void)
{
	struct tb *b = tb_new(2);

	tb_chain(b, 1, 3, IDS(1, 2, 3), STS(SV, SV, SV));
	tb_chain(b, 2, 3, IDS(4, 5, 6), STS(SV, SY, OF));
	return b;
}

static void test_malformed(void)
{
	struct tb *b;
	uint64_t nine[SLUICE_CHAIN_LEN_MAX + 1];

	b = good();
	stor_rt_free(BUILD_OK(&b->rt));
	free(b);
	b = good();
	b->rt.full = false;
	EXPECT_BAD(b, "full");
	b = good();
	tb_target(b, 5, 5, 0, SV);
	EXPECT_BAD(b, "target id 5");
	b = good();
	tb_target(b, 0, 5, 0, SV);
	EXPECT_BAD(b, "target id 0");
	b = good();
	tb_node(b, 4, "tcp://x:1");
	EXPECT_BAD(b, "node 4 listed twice");
	b = good();
	tb_chain(b, 1, 1, IDS(7), STS(SV));
	EXPECT_BAD(b, "chain 1 listed twice");
	b = good();
	tb_chain(b, 0, 1, IDS(7), STS(SV));
	EXPECT_BAD(b, "chain 0");
	b = good();
	tb_chain_only(b, 3, 0, IDS(0));
	EXPECT_BAD(b, "chain 3 has 0 members");
	b = good();
	for (unsigned k = 0; k < SLUICE_CHAIN_LEN_MAX + 1; k++)
		nine[k] = 10 + k;
	tb_chain(b, 3, SLUICE_CHAIN_LEN_MAX + 1, nine, STS(SV, SV, SV, SV, SV, SV, SV, SV, SV, SV));
	EXPECT_BAD(b, "chain 3 has");
	b = good();
	tb_chain_only(b, 3, 2, IDS(7, 8));
	EXPECT_BAD(b, "unknown target 7");
	b = good();
	tb_chain_only(b, 3, 1, IDS(2)); /* target 2 says chain 1 */
	EXPECT_BAD(b, "another chain's target 2");
	b = good();
	b->members[0][2] = 1; /* chain 1: 1, 2, 1 */
	b->targets[2].chain_id = 0;
	EXPECT_BAD(b, "target 1 is twice");
	b = good();
	b->targets[5].chain_id = 0; /* target 6 in chain 2 says it is in none */
	EXPECT_BAD(b, "another chain's target 6");
	b = good();
	tb_target(b, 9, 1, 2, SV); /* says chain 2, which does not list it */
	EXPECT_BAD(b, "target 9 says chain 2");
	b = good();
	memset(b->addr[1], 'a', SLUICE_NET_ADDR_MAX);
	b->addr[1][SLUICE_NET_ADDR_MAX] = 0;
	EXPECT_BAD(b, "node 2 has an address");
}

int main(void)
{
	test_all_serving();
	test_mixed_states();
	test_odd_orders();
	test_loose_ends();
	test_many_chains();
	test_outlives_message();
	test_malformed();
	return test_result();
}
