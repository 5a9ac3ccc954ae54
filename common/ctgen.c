/*
 * ctgen.c - chain table generation: R targets on R distinct nodes per chain, with balanced
 * node pairs and positions (contract in ctgen.h, goals in DESIGN.md section 4).
 *
 * Design, in the order ctgen_generate runs it:
 *
 * 1. Counts. The largest number of chains C is the largest C with sum_i min(t_i, C) >= C*R
 *    (a node can be in a chain only once). Node i is then used u_i = min(t_i, C) times,
 *    lowered water-level style from the top until sum u_i == C*R. Any such u with
 *    u_i <= C can be arranged into C chains of R distinct nodes, so this is exact.
 * 2. Chains as node sets, per restart: a greedy build, chain by chain. A node whose remaining
 *    count equals the chains left must go in now (else the rest is infeasible); the other
 *    slots take the node sharing the fewest chains with those already picked, preferring
 *    nodes with more remaining, random among ties. Then a local search: pick two chains and
 *    a member of each, swap them if that keeps both chains node-distinct and does not raise
 *    the cost, the sum over node pairs of lambda^2 (lambda = chains the pair shares). The sum
 *    of lambda is fixed, so the minimum is the most even spread; accepting equal moves lets
 *    the search walk across plateaus. The best restart wins; reaching the lower bound (all
 *    lambdas within one of the mean) stops the search early.
 * 3. Positions: for p = 0 (head), 1, ..., R-2, pick which of the members not yet placed sits
 *    at position p so that per-node counts at p are balanced: greedy, then augmenting paths
 *    (while some node a can pass its position along a path of chains to a node b holding
 *    two fewer, do it). With no such path left the counts are lexicographically optimal.
 * 4. Targets: each node's targets go to its chains in input order; the rest are leftover.
 *
 * Randomness is layout_splitmix64_next from the spec's seed, so a seed reproduces a table.
 * Cost: the greedy usually stops at the first candidate (nodes are kept in buckets by
 * remaining count); the search is capped by CTGEN_MOVES_MAX per restart; each augmenting path
 * is a BFS over the chains. 100 nodes x 6 targets takes about a millisecond, 1000 x 100 about
 * 0.2 s, 2048 x 256 (half a million targets) a few seconds.
 *
 * Memory: one scratch block (node-pair matrix, chain arrays, sort buffers) and one result
 * block. Pure; any thread; nothing global.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/ctgen.h"
#include "common/layout.h"
#include "common/limits.h"

static_assert((uint64_t)CTGEN_NODES_MAX * CTGEN_NODE_TARGETS_MAX <
		      UINT32_MAX / SLUICE_CHAIN_LEN_MAX,
	      "target counts fit in u32 arithmetic");
static_assert((uint64_t)CTGEN_NODES_MAX * CTGEN_NODES_MAX < UINT32_MAX, "pair matrix index");

/* Scratch state of one generation. Node indexes are input order; chains hold node indexes. */
struct gen {
	uint32_t n;	  /* input nodes */
	uint32_t r;	  /* replication factor */
	uint32_t c;	  /* chains */
	uint32_t n_used;  /* nodes with u_i > 0 */
	uint64_t rng;	  /* splitmix64 state */
	uint64_t cost;	  /* sum of lam^2 over pairs of cur */
	uint64_t bound;	  /* lower bound of cost */
	uint32_t *t;	  /* [n] targets given */
	uint32_t *u;	  /* [n] chains per node */
	uint32_t *rem;	  /* [n] greedy: still to place; positions: count at position */
	uint32_t *lam;	  /* [n*n] chains shared by each pair */
	uint32_t *cur;	  /* [c*r] the chains being searched */
	uint32_t *best;	  /* [c*r] the best chains so far */
	uint32_t *mem_of; /* [n+1] CSR offsets: chains of node i are mem[mem_of[i]..] */
	uint32_t *mem;	  /* [c*r] */
	uint32_t *par_c;  /* [n] BFS: chain through which a node was reached */
	uint32_t *par_n;  /* [n] BFS: node it was reached from */
	uint32_t *queue;  /* [n] BFS queue */
	uint32_t *order;  /* [n] greedy: nodes by remaining count, see buckets_init */
	uint32_t *pos;	  /* [n] greedy: index of each node in order */
	uint32_t *above;  /* [CTGEN_NODE_TARGETS_MAX + 1] greedy: bucket bounds */
	uint32_t *fill;	  /* [CTGEN_NODE_TARGETS_MAX + 1] greedy: bucket cursors */
	uint32_t *dead;	  /* [n] BFS: epoch in which a search from this node is known to fail */
	uint32_t epoch;	  /* bumped whenever positions change */
	uint64_t *ids;	  /* [max(n, total targets)] sort buffer for duplicate checks */
};

static int fail(char *msg, size_t msg_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t msg_len, const char *fmt, ...)
{
	va_list ap;

	if (msg != NULL && msg_len > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(msg, msg_len, fmt, ap); /* truncation is fine for a message */
		va_end(ap);
	}
	return -EINVAL;
}

static uint64_t rnd_below(struct gen *g, uint64_t n)
{
	return layout_splitmix64_next(&g->rng) % n;
}

/* ---- 1. counts -------------------------------------------------------------------------- */

static uint64_t sum_min(const uint32_t *t, uint32_t n, uint32_t cap)
{
	uint64_t s = 0;

	for (uint32_t i = 0; i < n; i++)
		s += t[i] < cap ? t[i] : cap;
	return s;
}

/* Largest C with sum min(t_i, C) >= C*r, then u_i summing to exactly C*r. Returns C. */
static uint32_t plan_counts(const uint32_t *t, uint32_t n, uint32_t r, uint32_t *u)
{
	uint64_t total = sum_min(t, n, UINT32_MAX);
	uint32_t lo = 0, hi = (uint32_t)(total / r), c, level;
	uint64_t extra;

	/* The feasible C form an interval [0, Cmax]: sum_min(C) - C*r is concave, 0 at 0. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;

		if (sum_min(t, n, mid) >= (uint64_t)mid * r)
			lo = mid;
		else
			hi = mid - 1;
	}
	c = lo;
	/* Smallest level with sum min(t_i, level) >= C*r; cap everyone there. */
	lo = 0;
	hi = c;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (sum_min(t, n, mid) >= (uint64_t)c * r)
			hi = mid;
		else
			lo = mid + 1;
	}
	level = lo;
	ASSERT(level > 0);
	/* At level - 1 the sum falls short, so fewer than (nodes at the level) are extra: the
	 * first `extra` of them, in input order, give up one more. */
	extra = sum_min(t, n, level) - (uint64_t)c * r;
	for (uint32_t i = 0; i < n; i++) {
		u[i] = t[i] < level ? t[i] : level;
		if (extra > 0 && u[i] == level) {
			u[i]--;
			extra--;
		}
	}
	ASSERT(extra == 0);
	ASSERT(sum_min(u, n, UINT32_MAX) == (uint64_t)c * r);
	return c;
}

/* ---- 2. chains as node sets ------------------------------------------------------------- */

static void lam_add(struct gen *g, uint32_t a, uint32_t b, int d)
{
	uint32_t *x = &g->lam[a * g->n + b];

	/* cost changes by (l + d)^2 - l^2 = 2ld + 1 for d = +-1 */
	g->cost = g->cost + 2 * (int64_t)*x * d + 1;
	*x = (uint32_t)((int64_t)*x + d);
	g->lam[b * g->n + a] = *x;
}

static void lam_reset(struct gen *g)
{
	memset(g->lam, 0, sizeof(g->lam[0]) * g->n * g->n);
	g->cost = 0;
}

/* The pair cost cannot go below spreading C*r(r-1)/2 pair slots evenly over the pairs. */
static uint64_t cost_bound(const struct gen *g)
{
	uint64_t pairs = (uint64_t)g->n_used * (g->n_used - 1) / 2;
	uint64_t slots = (uint64_t)g->c * g->r * (g->r - 1) / 2;
	uint64_t q, rest;

	if (pairs == 0)
		return 0;
	q = slots / pairs;
	rest = slots % pairs;
	return rest * (q + 1) * (q + 1) + (pairs - rest) * q * q;
}

/*
 * Greedy buckets: order[] lists the nodes by remaining count, highest first, so the greedy
 * can visit the likeliest candidates first and stop early. above[v] is the number of nodes
 * with more than v remaining, so the nodes with exactly v (v >= 1) sit at order[above[v] ..
 * above[v-1]-1] and the exhausted ones from above[0] on.
 */
static void buckets_init(struct gen *g)
{
	uint32_t top = 0;

	for (uint32_t i = 0; i < g->n; i++)
		top = g->rem[i] > top ? g->rem[i] : top;
	ASSERT(top <= CTGEN_NODE_TARGETS_MAX);
	memset(g->above, 0, sizeof(g->above[0]) * (top + 1));
	for (uint32_t i = 0; i < g->n; i++)
		for (uint32_t v = 0; v < g->rem[i]; v++)
			g->above[v]++;
	/* bucket v (0 included) starts at above[v]; fill[v] walks it */
	memcpy(g->fill, g->above, sizeof(g->fill[0]) * (top + 1));
	for (uint32_t i = 0; i < g->n; i++) {
		uint32_t at = g->fill[g->rem[i]]++;

		g->order[at] = i;
		g->pos[i] = at;
	}
}

/* rem[x]--, keeping the buckets: x moves to the end of its bucket, which then shrinks. */
static void bucket_dec(struct gen *g, uint32_t x)
{
	uint32_t v = g->rem[x], last = g->above[v - 1] - 1, y = g->order[last];

	g->order[last] = x;
	g->order[g->pos[x]] = y;
	g->pos[y] = g->pos[x];
	g->pos[x] = last;
	g->above[v - 1]--;
	g->rem[x]--;
}

/*
 * Best node for the next slot of a chain whose first k members are in ch: fewest chains
 * shared with them, then most still to place, random among equals. Buckets are visited from
 * the most remaining down, each from a random offset, so the first node sharing nothing wins
 * at once; only when every candidate shares something is the scan complete.
 */
static uint32_t greedy_pick(struct gen *g, const uint32_t *ch, uint32_t k)
{
	uint32_t best = UINT32_MAX, best_share = UINT32_MAX;

	for (uint32_t lo = 0, hi; lo < g->above[0]; lo = hi) {
		uint32_t size, off;

		hi = g->above[g->rem[g->order[lo]] - 1];
		size = hi - lo;
		off = size > 1 ? (uint32_t)rnd_below(g, size) : 0;
		for (uint32_t s = 0; s < size; s++) {
			uint32_t i = g->order[lo + (off + s) % size], share = 0, j;

			/* lam is symmetric: read row ch[j], which runs along i */
			for (j = 0; j < k && ch[j] != i; j++)
				share += g->lam[ch[j] * g->n + i];
			if (j < k || share >= best_share)
				continue; /* in the chain already, or no better */
			best = i;
			best_share = share;
			if (share == 0)
				return best;
		}
	}
	ASSERT(best != UINT32_MAX);
	return best;
}

static void greedy_build(struct gen *g)
{
	lam_reset(g);
	memcpy(g->rem, g->u, sizeof(g->u[0]) * g->n);
	buckets_init(g);
	for (uint32_t c = 0; c < g->c; c++) {
		uint32_t *ch = &g->cur[c * g->r];
		uint32_t left = g->c - c, k = 0;

		/*
		 * Forced: a node needing every chain left must be in this one, or the rest is
		 * infeasible. rem <= left always holds, so they head the order; at most r exist.
		 */
		while (k < g->above[0] && g->rem[g->order[k]] == left) {
			ch[k] = g->order[k];
			k++;
		}
		ASSERT(k <= g->r);
		for (; k < g->r; k++)
			ch[k] = greedy_pick(g, ch, k);
		for (uint32_t a = 0; a < g->r; a++) {
			bucket_dec(g, ch[a]);
			for (uint32_t b = 0; b < a; b++)
				lam_add(g, ch[a], ch[b], +1);
		}
	}
}

static int chain_has(const struct gen *g, uint32_t c, uint32_t node)
{
	for (uint32_t k = 0; k < g->r; k++)
		if (g->cur[c * g->r + k] == node)
			return 1;
	return 0;
}

/* Move node a out of chain c (position p) and node b in, updating lam and cost. */
static void chain_replace(struct gen *g, uint32_t c, uint32_t p, uint32_t b)
{
	uint32_t *ch = &g->cur[c * g->r];
	uint32_t a = ch[p];

	for (uint32_t k = 0; k < g->r; k++) {
		if (k == p)
			continue;
		lam_add(g, a, ch[k], -1);
		lam_add(g, b, ch[k], +1);
	}
	ch[p] = b;
}

/* One swap attempt; returns after keeping it or undoing it. */
static void search_move(struct gen *g)
{
	uint32_t x = (uint32_t)rnd_below(g, g->c), y = (uint32_t)rnd_below(g, g->c);
	uint32_t p = (uint32_t)rnd_below(g, g->r), q = (uint32_t)rnd_below(g, g->r);
	uint32_t a = g->cur[x * g->r + p], b = g->cur[y * g->r + q];
	uint64_t before = g->cost;

	if (x == y || a == b || chain_has(g, x, b) || chain_has(g, y, a))
		return;
	chain_replace(g, x, p, b);
	chain_replace(g, y, q, a);
	if (g->cost > before) {
		chain_replace(g, y, q, b);
		chain_replace(g, x, p, a);
		ASSERT(g->cost == before);
	}
}

static uint32_t moves_per_restart(const struct gen *g)
{
	uint64_t m = 64ull * g->c * g->r;

	if (m < 20000)
		m = 20000;
	return m > CTGEN_MOVES_MAX ? CTGEN_MOVES_MAX : (uint32_t)m;
}

/*
 * Local search from the greedy start: at most `moves` attempts, ending early at the bound or
 * after a quarter of the budget without a strict improvement (the bound is not reachable for
 * every input, e.g. when one node holds most targets).
 */
static void local_search(struct gen *g, uint32_t moves)
{
	uint32_t stall = moves / 4, last = 0;

	/* r == 1 has no pairs; n_used == r puts every node in every chain: nothing to do */
	if (g->r == 1 || g->n_used == g->r)
		return;
	for (uint32_t m = 0; m < moves && g->cost > g->bound && m - last <= stall; m++) {
		uint64_t before = g->cost;

		search_move(g);
		if (g->cost < before)
			last = m;
	}
}

/* Step 2: the best of `restarts` searches ends up in g->cur, its cost in g->cost. */
static void search(struct gen *g, uint32_t restarts)
{
	uint64_t best_cost = UINT64_MAX;
	uint32_t moves = moves_per_restart(g);

	g->bound = cost_bound(g);
	for (uint32_t s = 0; s < restarts && best_cost > g->bound; s++) {
		greedy_build(g);
		local_search(g, moves);
		if (g->cost < best_cost) {
			best_cost = g->cost;
			memcpy(g->best, g->cur, sizeof(g->cur[0]) * g->c * g->r);
		}
	}
	memcpy(g->cur, g->best, sizeof(g->cur[0]) * g->c * g->r);
	g->cost = best_cost;
}

/* ---- 3. positions ----------------------------------------------------------------------- */

static void build_membership(struct gen *g)
{
	uint32_t *fill = g->par_c; /* borrowed as a cursor per node */

	g->mem_of[0] = 0;
	for (uint32_t i = 0; i < g->n; i++)
		g->mem_of[i + 1] = g->mem_of[i] + g->u[i];
	memcpy(fill, g->mem_of, sizeof(fill[0]) * g->n);
	for (uint32_t c = 0; c < g->c; c++)
		for (uint32_t k = 0; k < g->r; k++)
			g->mem[fill[g->cur[c * g->r + k]]++] = c;
}

static uint32_t pos_of(const struct gen *g, uint32_t c, uint32_t node)
{
	for (uint32_t k = 0; k < g->r; k++)
		if (g->cur[c * g->r + k] == node)
			return k;
	PANIC("node %u not in chain %u", node, c);
}

static void swap_in(struct gen *g, uint32_t c, uint32_t p, uint32_t node)
{
	uint32_t k = pos_of(g, c, node), *ch = &g->cur[c * g->r];

	ASSERT(k >= p);
	ch[k] = ch[p];
	ch[p] = node;
}

/*
 * Breadth-first from node a over "a sits at p in chain c, another unplaced member w of c
 * could": finds the nearest w with count(w) + 2 <= count(a) and shifts position p along the
 * path, moving one unit from a to w. Returns 1 if it did. If not, every node it reached holds
 * at least count(a) - 1, so a search from any of them holding at most count(a) would fail too:
 * they are marked dead until positions change, which saves most of the failing searches.
 */
static int augment(struct gen *g, uint32_t p, uint32_t a)
{
	uint32_t head = 0, tail = 0;

	for (uint32_t i = 0; i < g->n; i++)
		g->par_n[i] = UINT32_MAX;
	g->par_n[a] = a;
	g->queue[tail++] = a;
	while (head < tail) {
		uint32_t v = g->queue[head++];

		for (uint32_t e = g->mem_of[v]; e < g->mem_of[v + 1]; e++) {
			uint32_t c = g->mem[e];

			if (g->cur[c * g->r + p] != v)
				continue;
			for (uint32_t k = p + 1; k < g->r; k++) {
				uint32_t w = g->cur[c * g->r + k];

				if (g->par_n[w] != UINT32_MAX)
					continue;
				g->par_n[w] = v;
				g->par_c[w] = c;
				if (g->rem[w] + 2 <= g->rem[a]) {
					g->rem[w]++;
					g->rem[a]--;
					for (; w != a; w = g->par_n[w])
						swap_in(g, g->par_c[w], p, w);
					return 1;
				}
				g->queue[tail++] = w;
			}
		}
	}
	for (uint32_t i = 0; i < tail; i++)
		if (g->rem[g->queue[i]] <= g->rem[a])
			g->dead[g->queue[i]] = g->epoch;
	return 0;
}

static void balance_position(struct gen *g, uint32_t p)
{
	int again = 1;

	memset(g->rem, 0, sizeof(g->rem[0]) * g->n);
	for (uint32_t c = 0; c < g->c; c++) {
		uint32_t pick = p;

		for (uint32_t k = p + 1; k < g->r; k++)
			if (g->rem[g->cur[c * g->r + k]] < g->rem[g->cur[c * g->r + pick]])
				pick = k;
		swap_in(g, c, p, g->cur[c * g->r + pick]);
		g->rem[g->cur[c * g->r + p]]++;
	}
	/* Each augmentation lowers sum count^2 by >= 2, so this terminates; c*c/2 bounds it. */
	memset(g->dead, 0, sizeof(g->dead[0]) * g->n);
	g->epoch = 1;
	while (again) {
		again = 0;
		for (uint32_t a = 0; a < g->n; a++) {
			while (g->dead[a] != g->epoch && g->rem[a] >= 2 && augment(g, p, a)) {
				g->epoch++;
				again = 1;
			}
		}
	}
}

static void balance_positions(struct gen *g)
{
	build_membership(g);
	for (uint32_t p = 0; p + 1 < g->r; p++)
		balance_position(g, p);
}

/* ---- input checks ----------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int check_scalars(const struct ctgen_spec *s, char *msg, size_t msg_len)
{
	if (s == NULL || s->nodes == NULL || s->nnodes == 0)
		return fail(msg, msg_len, "no nodes");
	if (s->nnodes > CTGEN_NODES_MAX)
		return fail(msg, msg_len, "%u nodes, at most %u", s->nnodes, CTGEN_NODES_MAX);
	if (s->r == 0 || s->r > SLUICE_CHAIN_LEN_MAX)
		return fail(msg, msg_len, "replication factor %u not in 1..%u", s->r,
			    SLUICE_CHAIN_LEN_MAX);
	if (s->restarts > CTGEN_RESTARTS_MAX)
		return fail(msg, msg_len, "%u restarts, at most %u", s->restarts,
			    CTGEN_RESTARTS_MAX);
	for (uint32_t i = 0; i < s->nnodes; i++) {
		const struct ctgen_node *nd = &s->nodes[i];

		if (nd->ntargets > CTGEN_NODE_TARGETS_MAX)
			return fail(msg, msg_len, "node %u has %u targets, at most %u", nd->node_id,
				    nd->ntargets, CTGEN_NODE_TARGETS_MAX);
		if (nd->ntargets > 0 && nd->target_ids == NULL)
			return fail(msg, msg_len, "node %u: NULL target list", nd->node_id);
	}
	return 0;
}

static int check_counts(const struct ctgen_spec *s, const struct gen *g, uint64_t total, char *msg,
			size_t msg_len)
{
	uint32_t with_targets = 0;

	for (uint32_t i = 0; i < g->n; i++)
		with_targets += g->t[i] > 0;
	if (total == 0)
		return fail(msg, msg_len, "no targets");
	if (with_targets < s->r)
		return fail(msg, msg_len,
			    "replication factor %u needs %u nodes with targets, have %u", s->r,
			    s->r, with_targets);
	return 0;
}

/* Duplicate node ids, then duplicate target ids over all nodes; ids has room for both. */
static int check_duplicates(const struct ctgen_spec *s, uint64_t *ids, char *msg, size_t msg_len)
{
	uint64_t k = 0;

	for (uint32_t i = 0; i < s->nnodes; i++)
		ids[i] = s->nodes[i].node_id;
	qsort(ids, s->nnodes, sizeof(ids[0]), cmp_u64);
	for (uint32_t i = 1; i < s->nnodes; i++)
		if (ids[i] == ids[i - 1])
			return fail(msg, msg_len, "duplicate node id %llu",
				    (unsigned long long)ids[i]);
	for (uint32_t i = 0; i < s->nnodes; i++)
		for (uint32_t j = 0; j < s->nodes[i].ntargets; j++)
			ids[k++] = s->nodes[i].target_ids[j];
	qsort(ids, k, sizeof(ids[0]), cmp_u64);
	for (uint64_t i = 1; i < k; i++)
		if (ids[i] == ids[i - 1])
			return fail(msg, msg_len, "duplicate target id %llu",
				    (unsigned long long)ids[i]);
	return 0;
}

/* ---- scratch and result memory ---------------------------------------------------------- */

/*
 * Take n elements of size sz at *off (8-byte aligned) from the block at base. With base NULL
 * it only counts, so the same code sizes a block and then lays it out.
 */
static void *carve(char *base, size_t *off, size_t n, size_t sz)
{
	size_t o = *off;

	*off += (n * sz + 7) & ~(size_t)7;
	return base != NULL ? base + o : NULL;
}

/* Chain arrays are sized by total targets, an upper bound of c*r known before c is. */
static size_t scratch_layout(struct gen *g, char *base, uint64_t total)
{
	size_t off = 0, cr = (size_t)total;

	g->t = carve(base, &off, g->n, 4);
	g->u = carve(base, &off, g->n, 4);
	g->rem = carve(base, &off, g->n, 4);
	g->par_c = carve(base, &off, g->n, 4);
	g->par_n = carve(base, &off, g->n, 4);
	g->queue = carve(base, &off, g->n, 4);
	g->dead = carve(base, &off, g->n, 4);
	g->order = carve(base, &off, g->n, 4);
	g->pos = carve(base, &off, g->n, 4);
	g->above = carve(base, &off, CTGEN_NODE_TARGETS_MAX + 1, 4);
	g->fill = carve(base, &off, CTGEN_NODE_TARGETS_MAX + 1, 4);
	g->mem_of = carve(base, &off, g->n + 1, 4);
	g->lam = carve(base, &off, (size_t)g->n * g->n, 4);
	g->cur = carve(base, &off, cr, 4);
	g->best = carve(base, &off, cr, 4);
	g->mem = carve(base, &off, cr, 4);
	g->ids = carve(base, &off, total > g->n ? total : g->n, 8);
	return off;
}

static size_t table_layout(struct ctgen_table *t, char *base, uint32_t n, size_t cr,
			   uint32_t leftover)
{
	size_t off = sizeof(*t);

	t->targets = carve(base, &off, cr, sizeof(t->targets[0]));
	t->nodes = carve(base, &off, cr, sizeof(t->nodes[0]));
	t->leftover = carve(base, &off, leftover, sizeof(t->leftover[0]));
	t->node_stats = carve(base, &off, n, sizeof(t->node_stats[0]));
	return off;
}

/* ---- 4. result -------------------------------------------------------------------------- */

static void recount_pairs(struct gen *g)
{
	lam_reset(g);
	for (uint32_t c = 0; c < g->c; c++)
		for (uint32_t a = 0; a < g->r; a++)
			for (uint32_t b = 0; b < a; b++)
				lam_add(g, g->cur[c * g->r + a], g->cur[c * g->r + b], +1);
}

static void fill_targets(const struct ctgen_spec *s, struct gen *g, struct ctgen_table *t)
{
	uint32_t *next = g->rem, k = 0; /* rem borrowed: next unused target of each node */

	memset(next, 0, sizeof(next[0]) * g->n);
	for (size_t e = 0; e < (size_t)g->c * g->r; e++) {
		uint32_t i = g->cur[e];

		ASSERT(next[i] < g->u[i]);
		t->targets[e] = s->nodes[i].target_ids[next[i]++];
		t->nodes[e] = s->nodes[i].node_id;
	}
	for (uint32_t i = 0; i < g->n; i++) {
		ASSERT(next[i] == g->u[i]);
		for (uint32_t j = g->u[i]; j < g->t[i]; j++)
			t->leftover[k++] = s->nodes[i].target_ids[j];
	}
	ASSERT(k == t->nleftover);
}

static uint32_t div_ceil(uint64_t a, uint64_t b)
{
	return b == 0 ? 0 : (uint32_t)((a + b - 1) / b);
}

static void node_stats(const struct ctgen_spec *s, struct gen *g, struct ctgen_table *t)
{
	for (uint32_t i = 0; i < g->n; i++) {
		struct ctgen_node_stats *ns = &t->node_stats[i];

		*ns = (struct ctgen_node_stats){
			.node_id = s->nodes[i].node_id, .targets = g->t[i], .chains = g->u[i]};
		if (g->u[i] == 0)
			continue;
		for (uint32_t j = 0; j < g->n; j++)
			if (j != i && g->lam[i * g->n + j] > ns->peer_max)
				ns->peer_max = g->lam[i * g->n + j];
		ns->peer_ideal = div_ceil((uint64_t)g->u[i] * (g->r - 1), g->n_used - 1);
	}
	for (uint32_t c = 0; c < g->c; c++)
		t->node_stats[g->cur[c * g->r]].heads++;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static void summarize(const struct gen *g, struct ctgen_table *t)
{
	struct ctgen_balance *b = &t->balance;

	*b = (struct ctgen_balance){.r = g->r,
				    .chains = g->c,
				    .nodes = g->n_used,
				    .leftover = t->nleftover,
				    .chains_min = UINT32_MAX,
				    .pair_min = UINT32_MAX,
				    .head_min = UINT32_MAX,
				    .pair_cost = g->cost,
				    .pair_cost_bound = g->bound};
	for (uint32_t i = 0; i < g->n; i++) {
		const struct ctgen_node_stats *ns = &t->node_stats[i];

		if (ns->targets > 0) {
			b->chains_min = min_u32(b->chains_min, ns->chains);
			b->chains_max = max_u32(b->chains_max, ns->chains);
		}
		if (ns->chains == 0)
			continue;
		b->head_min = min_u32(b->head_min, ns->heads);
		b->head_max = max_u32(b->head_max, ns->heads);
		b->peer_max = max_u32(b->peer_max, ns->peer_max);
		b->peer_ideal = max_u32(b->peer_ideal, ns->peer_ideal);
		if (ns->peer_max > ns->peer_ideal)
			b->peer_excess = max_u32(b->peer_excess, ns->peer_max - ns->peer_ideal);
		for (uint32_t j = i + 1; j < g->n && g->r > 1; j++) {
			if (g->u[j] == 0)
				continue;
			b->pair_min = min_u32(b->pair_min, g->lam[i * g->n + j]);
			b->pair_max = max_u32(b->pair_max, g->lam[i * g->n + j]);
		}
	}
	if (b->pair_min == UINT32_MAX)
		b->pair_min = 0;
}

static int build_table(const struct ctgen_spec *s, struct gen *g, struct ctgen_table **out)
{
	struct ctgen_table shape, *t;
	uint32_t leftover = 0;
	size_t bytes;

	for (uint32_t i = 0; i < g->n; i++)
		leftover += g->t[i] - g->u[i];
	bytes = table_layout(&shape, NULL, g->n, (size_t)g->c * g->r, leftover);
	t = malloc(bytes);
	if (t == NULL)
		return -ENOMEM;
	(void)table_layout(t, (char *)t, g->n, (size_t)g->c * g->r, leftover);
	t->r = g->r;
	t->nchains = g->c;
	t->nnodes = g->n;
	t->nleftover = leftover;
	fill_targets(s, g, t);
	node_stats(s, g, t);
	summarize(g, t);
	*out = t;
	return 0;
}

/* ---- entry points ----------------------------------------------------------------------- */

static uint32_t count_used(const struct gen *g)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < g->n; i++)
		k += g->u[i] > 0;
	return k;
}

/* Everything after the scratch block exists: checks that need memory, then steps 1-4. */
static int generate(const struct ctgen_spec *s, struct gen *g, uint64_t total,
		    struct ctgen_table **out, char *msg, size_t msg_len)
{
	int rc;

	for (uint32_t i = 0; i < g->n; i++)
		g->t[i] = s->nodes[i].ntargets;
	rc = check_counts(s, g, total, msg, msg_len);
	if (rc == 0)
		rc = check_duplicates(s, g->ids, msg, msg_len);
	if (rc < 0)
		return rc;
	g->c = plan_counts(g->t, g->n, g->r, g->u);
	g->n_used = count_used(g);
	ASSERT(g->c >= 1 && g->n_used >= g->r);
	search(g, s->restarts != 0 ? s->restarts : CTGEN_RESTARTS_DEFAULT);
	balance_positions(g);
	recount_pairs(g);
	return build_table(s, g, out);
}

int ctgen_generate(const struct ctgen_spec *spec, struct ctgen_table **out, char *msg,
		   size_t msg_len)
{
	struct gen g = {0};
	uint64_t total = 0;
	char *scratch;
	int rc;

	if (msg != NULL && msg_len > 0)
		msg[0] = '\0';
	rc = check_scalars(spec, msg, msg_len);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < spec->nnodes; i++)
		total += spec->nodes[i].ntargets;
	g.n = spec->nnodes;
	g.r = spec->r;
	g.rng = spec->seed;
	scratch = malloc(scratch_layout(&g, NULL, total));
	if (scratch == NULL) {
		(void)fail(msg, msg_len, "out of memory");
		return -ENOMEM;
	}
	(void)scratch_layout(&g, scratch, total);
	rc = generate(spec, &g, total, out, msg, msg_len);
	free(scratch);
	return rc;
}

void ctgen_table_free(struct ctgen_table *t)
{
	free(t);
}

int ctgen_format_balance(const struct ctgen_balance *b, char *buf, size_t len)
{
	return snprintf(buf, len,
			"chains %u (r=%u) on %u nodes, %u targets left over\n"
			"chains per node: min %u max %u\n"
			"chains shared per node pair: min %u max %u (cost %llu, bound %llu)\n"
			"failover spread: most chains shared with one peer %u, ideal %u, "
			"worst excess %u\n"
			"heads per node: min %u max %u\n",
			b->chains, b->r, b->nodes, b->leftover, b->chains_min, b->chains_max,
			b->pair_min, b->pair_max, (unsigned long long)b->pair_cost,
			(unsigned long long)b->pair_cost_bound, b->peer_max, b->peer_ideal,
			b->peer_excess, b->head_min, b->head_max);
}
