/*
 * test_meta_model.c - randomized model test of the metadata store: several client threads
 * run thousands of random namespace operations at once against one store, and each
 * compares the store with its reference model after every step.
 *
 * Design: the threads share four directories (created first, never removed) and work in
 * them and in directories of their own, with names prefixed by the thread ("t2_n3"), so
 * each thread's part of the namespace is determined by its own operations and its model
 * can predict every result - including the error code - while the threads still contend
 * on the same directory inodes (lock conflicts, deadlock retries, the cross-directory
 * rename mutex). A thread's directories only ever hold its own entries, and its
 * directories never move into another thread's.
 *
 * After every operation the thread checks: the result equals the model's; every entry of
 * its model is found by lookup with the same inode, type, link count and size; a full
 * readdir of each of its directories (its entries in the shared ones) equals the model.
 * Randomly, a successful mutating request is sent again with the same request id and must
 * give the same result without changing anything. At the end: fsck is clean, the shared
 * directories' link counts add up, and GC empties its queue.
 *
 * Usage: test_meta_model [SEED] [OPS_PER_THREAD]. Exit 0 pass, 1 fail. The seed is printed:
 * a failure reproduces with it (modulo thread interleaving, which only changes timing:
 * each thread's results depend on its own operations alone).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/layout.h"
#include "meta/store.h"
#include "tests/lib/testlib.h"

#define THREADS	  4
#define SHARED	  4
#define NAMES	  6    /* names per thread: small, so they collide */
#define NODES_MAX 4096 /* model nodes per thread */
#define DENTS_MAX 512
#define SEC	  1000000000ull

static struct meta_store *S;
static const struct meta_creds ROOT = {0, 0, 0, {0}};
static uint64_t shared_ino[SHARED];
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

struct mnode {
	uint64_t ino;
	int type;
	int nlink;
	uint64_t size;
	int parent;  /* directories: node index; -1 for a shared directory's children */
	bool shared; /* one of the shared directories */
};

struct mdent {
	int dir, node; /* node indices */
	char name[16];
};

struct model {
	int tid;
	uint64_t rng;
	struct mnode nodes[NODES_MAX];
	int nnodes;
	struct mdent dents[DENTS_MAX];
	int ndents;
	struct meta_reqid rid;
	unsigned steps, replays, errors_seen[140];
	bool failed;
};

/* ---- helpers ------------------------------------------------------------------------- */

static uint64_t rnd(struct model *m)
{
	return layout_splitmix64_next(&m->rng);
}

static unsigned below(struct model *m, unsigned n)
{
	return (unsigned)(rnd(m) % n);
}

#define MFAIL(m, ...)                                                                       \
	do {                                                                                \
		pthread_mutex_lock(&fail_mu);                                               \
		fprintf(stderr, "%s:%d: thread %d step %u: ", __FILE__, __LINE__, (m)->tid, \
			(m)->steps);                                                        \
		fprintf(stderr, __VA_ARGS__);                                               \
		fprintf(stderr, "\n");                                                      \
		test_failures++;                                                            \
		pthread_mutex_unlock(&fail_mu);                                             \
		(m)->failed = true;                                                         \
	} while (0)

static int find_dent(const struct model *m, int dir, const char *name)
{
	for (int i = 0; i < m->ndents; i++)
		if (m->dents[i].dir == dir && strcmp(m->dents[i].name, name) == 0)
			return i;
	return -1;
}

static int children(const struct model *m, int dir)
{
	int n = 0;

	for (int i = 0; i < m->ndents; i++)
		n += m->dents[i].dir == dir;
	return n;
}

/* Is node a an ancestor of (or) directory d? Shared directories end the walk. */
static bool ancestor(const struct model *m, int a, int d)
{
	while (d >= 0) {
		if (d == a)
			return true;
		if (m->nodes[d].shared)
			return false;
		d = m->nodes[d].parent;
	}
	return false;
}

/* Directories usable as parents: shared ones and our live ones. */
static int pick_dir(struct model *m)
{
	int cands[NODES_MAX], n = 0;

	for (int i = 0; i < m->nnodes; i++)
		if (m->nodes[i].type == META_FT_DIR && m->nodes[i].nlink > 0)
			cands[n++] = i;
	return cands[below(m, (unsigned)n)];
}

static void pick_name(struct model *m, char *out)
{
	snprintf(out, 16, "t%d_n%u", m->tid, below(m, NAMES));
}

static int new_node(struct model *m, uint64_t ino, int type, int parent)
{
	struct mnode *n;

	if (m->nnodes == NODES_MAX)
		return -1;
	n = &m->nodes[m->nnodes];
	*n = (struct mnode){ino, type, type == META_FT_DIR ? 2 : 1, 0, parent, false};
	return m->nnodes++;
}

static void add_dent(struct model *m, int dir, const char *name, int node)
{
	ASSERT(m->ndents < DENTS_MAX);
	m->dents[m->ndents].dir = dir;
	m->dents[m->ndents].node = node;
	snprintf(m->dents[m->ndents].name, 16, "%s", name);
	m->ndents++;
}

static void del_dent(struct model *m, int i)
{
	m->dents[i] = m->dents[--m->ndents];
}

static struct meta_reqid *next_rid(struct model *m)
{
	m->rid.id++;
	return &m->rid;
}

static void expect(struct model *m, const char *what, int got, int want)
{
	if (got != want)
		MFAIL(m, "%s: got %d (%s), model says %d (%s)", what, got, sluice_errname(got),
		      want, sluice_errname(want));
	if (got < 0 && -got < 140)
		m->errors_seen[-got]++;
}

/* ---- operations: each computes the model's answer, calls the store, compares ----------- */

static void op_make(struct model *m, int kind)
{
	static const int types[] = {META_FT_REG, META_FT_DIR, META_FT_FIFO, META_FT_LNK};
	int dir = pick_dir(m), type = types[kind], want, rc, node;
	char name[16];
	struct meta_attr a = {0};
	struct meta_open_result o;
	struct meta_reqid *rid;

	pick_name(m, name);
	want = find_dent(m, dir, name) >= 0 ? -EEXIST : 0;
	if (want == 0 && (m->nnodes == NODES_MAX || m->ndents == DENTS_MAX))
		return;
	rid = next_rid(m);
	switch (type) {
	case META_FT_REG:
		rc = meta_create(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name), 0644,
				 O_RDONLY | O_EXCL, &o);
		a = o.attr;
		break;
	case META_FT_DIR:
		rc = meta_mkdir(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name), 0755, &a);
		break;
	case META_FT_FIFO:
		rc = meta_mknod(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name),
				META_FT_FIFO, 0644, 0, &a);
		break;
	default:
		rc = meta_symlink(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name), "tgt", 3,
				  &a);
		break;
	}
	expect(m, "make", rc, want);
	if (rc || want)
		return;
	node = new_node(m, a.ino, type, dir);
	if (type == META_FT_LNK)
		m->nodes[node].size = 3;
	add_dent(m, dir, name, node);
	if (type == META_FT_DIR && !m->nodes[dir].shared)
		m->nodes[dir].nlink++;
	/* a retry of the same request returns the same inode */
	if (below(m, 8) == 0 && type == META_FT_DIR) {
		struct meta_attr b;

		rc = meta_mkdir(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name), 0755, &b);
		expect(m, "mkdir replay", rc, 0);
		if (rc == 0 && b.ino != a.ino)
			MFAIL(m, "mkdir replay gave inode %" PRIu64 ", first %" PRIu64, b.ino,
			      a.ino);
		m->replays++;
	}
}

static void op_link(struct model *m)
{
	int files[DENTS_MAX], n = 0, dir = pick_dir(m), want, rc, node;
	char name[16];
	struct meta_attr a;

	for (int i = 0; i < m->ndents; i++)
		if (m->nodes[m->dents[i].node].type != META_FT_DIR)
			files[n++] = m->dents[i].node;
	if (n == 0 || m->ndents == DENTS_MAX)
		return;
	node = files[below(m, (unsigned)n)];
	pick_name(m, name);
	want = find_dent(m, dir, name) >= 0 ? -EEXIST : 0;
	rc = meta_link(S, 0, &ROOT, next_rid(m), m->nodes[node].ino, m->nodes[dir].ino, name,
		       strlen(name), &a);
	expect(m, "link", rc, want);
	if (rc == 0 && want == 0) {
		add_dent(m, dir, name, node);
		m->nodes[node].nlink++;
	}
}

static void op_remove(struct model *m, bool rmdir)
{
	int dir = pick_dir(m), i, want = 0, rc, node = -1;
	char name[16];
	struct meta_reqid *rid = next_rid(m);

	pick_name(m, name);
	i = find_dent(m, dir, name);
	if (i < 0) {
		want = -ENOENT;
	} else {
		node = m->dents[i].node;
		if (rmdir && m->nodes[node].type != META_FT_DIR)
			want = -ENOTDIR;
		else if (!rmdir && m->nodes[node].type == META_FT_DIR)
			want = -EISDIR;
		else if (rmdir && children(m, node))
			want = -ENOTEMPTY;
	}
	if (rmdir)
		rc = meta_rmdir(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name));
	else
		rc = meta_unlink(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name));
	expect(m, rmdir ? "rmdir" : "unlink", rc, want);
	if (rc || want)
		return;
	del_dent(m, i);
	if (rmdir) {
		m->nodes[node].nlink = 0;
		if (!m->nodes[dir].shared)
			m->nodes[dir].nlink--;
	} else {
		m->nodes[node].nlink--;
	}
	if (below(m, 4) == 0) { /* the reply was lost: the retry says it worked */
		if (rmdir)
			rc = meta_rmdir(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name));
		else
			rc = meta_unlink(S, 0, &ROOT, rid, m->nodes[dir].ino, name, strlen(name));
		expect(m, "remove replay", rc, 0);
		m->replays++;
	}
}

/* The model's rename, in the store's order of checks. */
static int model_rename(struct model *m, int d1, const char *n1, int d2, const char *n2,
			uint32_t flags, bool apply)
{
	bool exch = flags & META_RENAME_EXCHANGE;
	int si = find_dent(m, d1, n1), di = find_dent(m, d2, n2), src, dst = -1;

	if (si < 0)
		return -ENOENT;
	src = m->dents[si].node;
	if (d1 == d2 && strcmp(n1, n2) == 0)
		return (flags & META_RENAME_NOREPLACE) ? -EEXIST : 0;
	if (di >= 0 && (flags & META_RENAME_NOREPLACE))
		return -EEXIST;
	if (di >= 0) {
		dst = m->dents[di].node;
		if (dst == src)
			return 0;
	}
	if (di < 0 && exch)
		return -ENOENT;
	if (d1 != d2) {
		if (m->nodes[src].type == META_FT_DIR && ancestor(m, src, d2))
			return -EINVAL;
		if (exch && m->nodes[dst].type == META_FT_DIR && ancestor(m, dst, d1))
			return -EINVAL;
	}
	if (di >= 0 && !exch) {
		bool sdir = m->nodes[src].type == META_FT_DIR,
		     ddir = m->nodes[dst].type == META_FT_DIR;

		if (sdir && !ddir)
			return -ENOTDIR;
		if (!sdir && ddir)
			return -EISDIR;
		if (ddir && children(m, dst))
			return -ENOTEMPTY;
	}
	if (!apply)
		return 0;
	if (exch) {
		m->dents[si].node = dst;
		m->dents[di].node = src;
		if (d1 != d2 && m->nodes[dst].type == META_FT_DIR) {
			m->nodes[dst].parent = d1;
			m->nodes[d2].nlink -= !m->nodes[d2].shared;
			m->nodes[d1].nlink += !m->nodes[d1].shared;
		}
	} else {
		if (di >= 0) {
			m->nodes[dst].nlink =
				m->nodes[dst].type == META_FT_DIR ? 0 : m->nodes[dst].nlink - 1;
			if (m->nodes[dst].type == META_FT_DIR && !m->nodes[d2].shared)
				m->nodes[d2].nlink--;
			m->dents[di].node = src;
			del_dent(m, si);
		} else {
			snprintf(m->dents[si].name, 16, "%s", n2);
			m->dents[si].dir = d2;
		}
	}
	if (d1 != d2 && m->nodes[src].type == META_FT_DIR) {
		m->nodes[src].parent = d2;
		m->nodes[d1].nlink -= !m->nodes[d1].shared;
		m->nodes[d2].nlink += !m->nodes[d2].shared;
	}
	return 0;
}

static void op_rename(struct model *m)
{
	static const uint32_t fl[] = {0, 0, 0, META_RENAME_NOREPLACE, META_RENAME_EXCHANGE};
	int d1 = pick_dir(m), d2 = pick_dir(m), want, rc;
	uint32_t flags = fl[below(m, SLUICE_ARRAY_SIZE(fl))];
	char n1[16], n2[16];
	struct meta_reqid *rid = next_rid(m);

	pick_name(m, n1);
	pick_name(m, n2);
	want = model_rename(m, d1, n1, d2, n2, flags, false);
	rc = meta_rename(S, 0, &ROOT, rid, m->nodes[d1].ino, n1, strlen(n1), m->nodes[d2].ino, n2,
			 strlen(n2), flags);
	expect(m, "rename", rc, want);
	if (rc == 0 && want == 0) {
		(void)model_rename(m, d1, n1, d2, n2, flags, true);
		if (below(m, 4) == 0) {
			rc = meta_rename(S, 0, &ROOT, rid, m->nodes[d1].ino, n1, strlen(n1),
					 m->nodes[d2].ino, n2, strlen(n2), flags);
			expect(m, "rename replay", rc, 0);
			m->replays++;
		}
	}
}

static void op_truncate(struct model *m)
{
	struct meta_setattr sa = {META_SET_SIZE, 0, 0, 0, 0, 0, 0, 0};
	struct meta_attr a;
	int i, node, want, rc;

	if (m->ndents == 0)
		return;
	i = (int)below(m, (unsigned)m->ndents);
	node = m->dents[i].node;
	sa.size = below(m, 1u << 30);
	want = m->nodes[node].type == META_FT_REG   ? 0
	       : m->nodes[node].type == META_FT_DIR ? -EISDIR
						    : -EINVAL;
	rc = meta_setattr(S, 0, &ROOT, next_rid(m), m->nodes[node].ino, &sa, &a);
	expect(m, "truncate", rc, want);
	if (rc == 0 && want == 0)
		m->nodes[node].size = sa.size;
}

/* ---- comparing the store with the model ---------------------------------------------- */

struct listing {
	char names[DENTS_MAX][16];
	int n;
	const char *prefix;
	bool overflow;
};

static int list_fn(void *arg, const void *name, size_t nlen, uint64_t ino, uint32_t type,
		   const struct meta_attr *attr)
{
	struct listing *l = arg;
	size_t pl = strlen(l->prefix);

	if (nlen < pl || memcmp(name, l->prefix, pl) != 0)
		return 0;
	if (l->n == DENTS_MAX || nlen >= 16) {
		l->overflow = true;
		return 0;
	}
	memcpy(l->names[l->n], name, nlen);
	l->names[l->n][nlen] = '\0';
	l->n++;
	return 0;
}

static void compare_dir(struct model *m, int dir, const char *prefix)
{
	struct listing *l = calloc(1, sizeof(*l));
	char cursor[SLUICE_NAME_MAX + 1] = "";
	bool eof = false;
	int rc = 0, want = children(m, dir);

	l->prefix = prefix;
	for (int guard = 0; !eof && guard < 1000; guard++) {
		struct listing tmp = {.prefix = ""};

		/* Page through everything (other threads' names too) with a small page. */
		rc = meta_readdir(S, 0, &ROOT, m->nodes[dir].ino, cursor, strlen(cursor), 7, false,
				  list_fn, &tmp, &eof);
		if (rc < 0)
			break;
		for (int i = 0; i < tmp.n; i++)
			list_fn(l, tmp.names[i], strlen(tmp.names[i]), 0, 0, NULL);
		if (tmp.n)
			snprintf(cursor, sizeof(cursor), "%s", tmp.names[tmp.n - 1]);
	}
	if (rc < 0)
		MFAIL(m, "readdir of %" PRIu64 ": %s", m->nodes[dir].ino, sluice_strerror(rc));
	else if (l->n != want || l->overflow)
		MFAIL(m, "directory %" PRIu64 " lists %d of our entries, model has %d",
		      m->nodes[dir].ino, l->n, want);
	for (int i = 0; i < l->n && !m->failed; i++)
		if (find_dent(m, dir, l->names[i]) < 0)
			MFAIL(m, "directory %" PRIu64 " lists %s, not in the model",
			      m->nodes[dir].ino, l->names[i]);
	free(l);
}

static void compare(struct model *m)
{
	char prefix[16];

	snprintf(prefix, sizeof(prefix), "t%d_", m->tid);
	for (int i = 0; i < m->ndents && !m->failed; i++) {
		const struct mdent *d = &m->dents[i];
		const struct mnode *n = &m->nodes[d->node];
		struct meta_attr a;
		int rc = meta_lookup(S, 0, &ROOT, m->nodes[d->dir].ino, d->name, strlen(d->name),
				     &a);

		if (rc) {
			MFAIL(m, "lookup %s: %s", d->name, sluice_strerror(rc));
		} else if (a.ino != n->ino || (int)a.type != n->type || (int)a.nlink != n->nlink ||
			   (n->type != META_FT_DIR && a.size != n->size)) {
			MFAIL(m,
			      "%s: store ino %" PRIu64 " type %u nlink %u size %" PRIu64
			      ", model ino %" PRIu64 " type %d nlink %d size %" PRIu64,
			      d->name, a.ino, a.type, a.nlink, a.size, n->ino, n->type, n->nlink,
			      n->size);
		} else if (n->type == META_FT_DIR && a.parent != m->nodes[d->dir].ino) {
			MFAIL(m, "%s: parent %" PRIu64 ", model %" PRIu64, d->name, a.parent,
			      m->nodes[d->dir].ino);
		}
	}
	for (int i = 0; i < m->nnodes && !m->failed; i++)
		if (m->nodes[i].type == META_FT_DIR &&
		    (m->nodes[i].shared || m->nodes[i].nlink > 0))
			compare_dir(m, i, m->nodes[i].shared ? prefix : "");
}

/* ---- threads ------------------------------------------------------------------------- */

static unsigned ops_per_thread = 1500;

static void *client(void *arg)
{
	struct model *m = arg;

	for (int i = 0; i < SHARED; i++) {
		int n = new_node(m, shared_ino[i], META_FT_DIR, -1);

		m->nodes[n].shared = true;
	}
	m->rid.client = 1000 + (uint64_t)m->tid;
	for (m->steps = 0; m->steps < ops_per_thread && !m->failed; m->steps++) {
		unsigned r = below(m, 100);

		if (r < 25)
			op_make(m, (int)below(m, 4));
		else if (r < 33)
			op_make(m, 1); /* more directories: more trees to move */
		else if (r < 43)
			op_link(m);
		else if (r < 58)
			op_remove(m, false);
		else if (r < 66)
			op_remove(m, true);
		else if (r < 92)
			op_rename(m);
		else
			op_truncate(m);
		compare(m);
	}
	return NULL;
}

static int gc_ok(void *arg, uint64_t ino, const struct layout *l, uint64_t size)
{
	return 0;
}

static void fsck_print(void *arg, const char *line)
{
	fprintf(stderr, "  fsck: %s\n", line);
}

static void final_checks(struct model *models)
{
	struct meta_fsck_report r;
	struct meta_stats st;
	int rc;

	for (int s = 0; s < SHARED; s++) {
		struct meta_attr a;
		int subdirs = 0;

		for (int t = 0; t < THREADS; t++)
			for (int i = 0; i < models[t].ndents; i++)
				subdirs += models[t].dents[i].dir == s &&
					   models[t].nodes[models[t].dents[i].node].type ==
						   META_FT_DIR;
		CHECK_EQ(meta_getattr(S, 0, &ROOT, shared_ino[s], &a), 0);
		CHECK_EQ(a.nlink, 2 + subdirs);
	}
	rc = meta_fsck(S, &r, fsck_print, NULL);
	CHECK_EQ(rc, 0);
	CHECK_EQ(r.dangling_dentries + r.nlink_mismatches + r.orphans + r.other, 0);
	meta_store_test_advance(S, 3600 * SEC, 0);
	for (int i = 0; i < 1000; i++) {
		CHECK_EQ(meta_store_stats(S, &st), 0);
		if (st.gc_queued == 0)
			break;
		CHECK(meta_gc_run(S, 1000, gc_ok, NULL) >= 0);
	}
	CHECK_EQ(st.gc_queued, 0);
	rc = meta_fsck(S, &r, fsck_print, NULL);
	CHECK_EQ(rc, 0);
	CHECK_EQ(r.dangling_dentries + r.nlink_mismatches + r.orphans + r.other, 0);
	printf("after GC: %" PRIu64 " inodes, %" PRIu64 " dentries; %" PRIu64
	       " transaction retries, %" PRIu64 " replays\n",
	       r.inodes, r.dentries, st.txn_retries, st.replays);
}

int main(int argc, char **argv)
{
	static struct model models[THREADS];
	/* A lock wait of 1 ms turns contention into conflicts, so retries run often. */
	struct meta_store_cfg cfg = {{false, 1, 0}, {0, 1u << 20, 1, 0, 0}, 0777, SEC};
	char dir[] = "/tmp/sluice-test-meta-model-XXXXXX", why[256] = "";
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)getpid() * 7919;
	pthread_t th[THREADS];
	int rc;

	if (argc > 2)
		ops_per_thread = (unsigned)strtoul(argv[2], NULL, 0);
	printf("seed %" PRIu64 ", %d threads x %u operations\n", seed, THREADS, ops_per_thread);
	if (!mkdtemp(dir))
		test_skip("mkdtemp failed");
	rc = meta_store_format(dir, &cfg, false, why, sizeof(why));
	if (rc == 0)
		rc = meta_store_open(dir, &cfg, &S, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "store: %s: %s\n", sluice_strerror(rc), why);
		return 1;
	}
	for (int i = 0; i < SHARED; i++) {
		struct meta_attr a;
		char name[16];

		snprintf(name, sizeof(name), "shared%d", i);
		rc = meta_mkdir(S, 0, &ROOT, &(struct meta_reqid){1, (uint64_t)i + 1},
				META_ROOT_INO, name, strlen(name), 0777, &a);
		CHECK_EQ(rc, 0);
		shared_ino[i] = a.ino;
	}
	for (int t = 0; t < THREADS; t++) {
		models[t].tid = t;
		models[t].rng = seed + (uint64_t)t * 0x1000193;
		CHECK_EQ(pthread_create(&th[t], NULL, client, &models[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++) {
		printf("thread %d: %u steps, %d entries, %u replays; errors:", t, models[t].steps,
		       models[t].ndents, models[t].replays);
		for (int e = 1; e < 140; e++)
			if (models[t].errors_seen[e])
				printf(" %s=%u", sluice_errname(-e), models[t].errors_seen[e]);
		printf("\n");
	}
	if (test_failures == 0)
		final_checks(models);
	meta_store_close(S);
	if (test_failures == 0) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	} else {
		fprintf(stderr, "seed %" PRIu64 "; kept %s\n", seed, dir);
	}
	return test_result();
}
