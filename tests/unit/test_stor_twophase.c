/*
 * test_stor_twophase.c - the chunk engine's chain-replica updates (storage/target.h,
 * stor_update): two-phase prepare/commit/abort, the version check against the head's
 * update_ver, full replaces, reading prepared content, and what a reopen keeps.
 *
 * One target on a real reactor thread with io_uring O_DIRECT and RocksDB in a temp dir.
 * Every engine call runs on the reactor (run_on_reactor); a prepared update is parked in
 * `held` until the main thread commits or aborts it, so the test can look at the chunk
 * while the update holds its lock.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/reactor.h"
#include "common/worker.h"
#include "storage/target.h"
#include "tests/lib/testlib.h"

#define CHUNK (256u * 1024u)

struct env_ {
	struct reactor *r;
	struct worker_pool *wp;
	struct bufpool *pool;
	struct stor_target *t;
	char dir[64];
};

/* One update, possibly two-phase; its callbacks post `prepared_sem` and `done`. */
struct upd {
	struct env_ *e;
	struct stor_update_args a;
	const uint8_t *src; /* write data (copied into a pool buffer) */
	uint32_t len;
	bool two_phase, existed;
	int submit_rc, status;
	struct stor_pending *held;
	struct chunk_meta pm, m; /* pending and final metadata (no sector CRCs) */
	bool has_pm, has_m, changed;
	sem_t prepared_sem, done;
};

static void upd_prepared(void *arg, struct stor_pending *p, const struct chunk_meta *m,
			 bool changed)
{
	struct upd *u = arg;

	u->held = p;
	u->changed = changed;
	u->has_pm = m != NULL;
	if (m) {
		u->pm = *m;
		u->pm.sector_crc = NULL;
	}
	sem_post(&u->prepared_sem);
}

static void upd_done(void *arg, int status, const struct chunk_meta *m)
{
	struct upd *u = arg;

	u->status = status;
	u->has_m = m != NULL;
	if (m) {
		u->m = *m;
		u->m.sector_crc = NULL;
	}
	sem_post(&u->done);
}

static void upd_submit(void *arg)
{
	struct upd *u = arg;
	struct buf *b = NULL;

	if (u->a.kind == STOR_UPD_WRITE && u->len) {
		u->submit_rc = bufpool_get(u->e->pool, u->len, &b);
		if (u->submit_rc)
			return;
		memcpy(b->data, u->src, u->len);
		u->a.data = b;
		u->a.data_crc = crc32c(0, u->src, u->len);
	}
	u->a.existed = &u->existed;
	u->a.prepared = u->two_phase ? upd_prepared : NULL;
	u->submit_rc = stor_update(u->e->t, &u->a, upd_done, u);
	if (u->submit_rc)
		buf_put(b);
}

/* Submit; a two-phase update returns once prepared (or failed), the others once done. */
static int upd_start(struct env_ *e, struct upd *u)
{
	u->e = e;
	sem_init(&u->prepared_sem, 0, 0);
	sem_init(&u->done, 0, 0);
	run_on_reactor(e->r, upd_submit, u);
	if (u->submit_rc)
		return u->submit_rc;
	if (!u->two_phase) {
		sem_wait(&u->done);
		return u->status;
	}
	/* prepared, or completed with an error before preparing */
	for (;;) {
		if (sem_trywait(&u->prepared_sem) == 0)
			return 0;
		if (sem_trywait(&u->done) == 0)
			return u->status;
		env_sleep_ns(ENV_NS_PER_MS);
	}
}

static void do_commit(void *arg)
{
	stor_pending_commit(((struct upd *)arg)->held);
}

static void do_abort(void *arg)
{
	stor_pending_abort(((struct upd *)arg)->held, -SLUICE_ECANCELED);
}

static int upd_finish(struct upd *u, bool commit)
{
	run_on_reactor(u->e->r, commit ? do_commit : do_abort, u);
	sem_wait(&u->done);
	return u->status;
}

/* ---- reads ------------------------------------------------------------------------------- */

struct rd {
	struct env_ *e;
	struct layout_chunk_id id;
	struct upd *pending; /* read the prepared content of this update instead */
	uint8_t *dst;
	uint32_t got;
	int submit_rc, status;
	bool is_pending;
	struct chunk_meta m;
	sem_t done;
};

static void rd_cb(void *arg, int status, struct buf *data, uint32_t off, uint32_t len,
		  const struct chunk_meta *m)
{
	struct rd *r = arg;

	r->status = status;
	r->got = len;
	if (status == 0 && len)
		memcpy(r->dst, (uint8_t *)data->data + off, len);
	buf_put(data);
	r->m = *m;
	r->m.sector_crc = NULL;
	sem_post(&r->done);
}

static void rd_submit(void *arg)
{
	struct rd *r = arg;

	r->is_pending = stor_chunk_pending(r->e->t, &r->id);
	if (r->pending)
		r->submit_rc = stor_pending_read(r->pending->held, rd_cb, r);
	else
		r->submit_rc = stor_read(r->e->t, &r->id, 0, CHUNK, rd_cb, r);
}

static int rd(struct env_ *e, struct rd *r)
{
	r->e = e;
	sem_init(&r->done, 0, 0);
	run_on_reactor(e->r, rd_submit, r);
	if (r->submit_rc)
		return r->submit_rc;
	sem_wait(&r->done);
	return r->status;
}

/* ---- target ------------------------------------------------------------------------------- */

static void open_target(struct env_ *e)
{
	struct stor_target_cfg tc = {.path = e->dir,
				     .id = 1,
				     .group_bytes = 8u << 20,
				     .queue_depth = 8,
				     .reactor = e->r,
				     .workers = e->wp,
				     .pool = e->pool};
	char why[256];
	int rc = stor_target_open(&tc, &e->t, why, sizeof(why));

	if (rc)
		fprintf(stderr, "open: %s\n", why);
	ASSERT(rc == 0);
}

static void close_on_reactor(void *arg)
{
	struct env_ *e = arg;

	stor_target_close(e->t);
	e->t = NULL;
}

struct space {
	struct env_ *e;
	struct stor_space sp;
};

static void space_on_reactor(void *arg)
{
	struct space *s = arg;

	stor_target_space(s->e->t, &s->sp);
}

static uint64_t used_bytes(struct env_ *e)
{
	struct space s = {.e = e};

	run_on_reactor(e->r, space_on_reactor, &s);
	return s.sp.used_bytes;
}

/* ---- the tests ------------------------------------------------------------------------------ */

static const struct layout_chunk_id ID = {.inode = 9, .index = 1};

static struct stor_update_args write_args(uint32_t off)
{
	return (struct stor_update_args){
		.kind = STOR_UPD_WRITE, .id = ID, .chunk_size = CHUNK, .offset = off};
}

static void check_content(struct env_ *e, const uint8_t *want, uint32_t len, uint64_t ver)
{
	static uint8_t got[CHUNK];
	struct rd r = {.id = ID, .dst = got};

	CHECK_EQ(rd(e, &r), 0);
	CHECK_EQ(r.got, len);
	CHECK(memcmp(got, want, len) == 0);
	CHECK_EQ(r.m.commit_ver, ver);
	CHECK_EQ(r.m.crc, crc32c(0, want, len));
}

static void test_commit_and_abort(struct env_ *e, uint8_t *a, uint8_t *b)
{
	static uint8_t got[CHUNK];
	struct upd w1 = {.a = write_args(0), .src = a, .len = CHUNK};
	struct upd w2 = {.a = write_args(4096), .src = b, .len = 8192, .two_phase = true};
	struct upd w3 = {.a = write_args(0), .src = b, .len = 100};
	struct rd pr = {.id = ID, .dst = got, .pending = &w2};
	uint64_t used;

	CHECK_EQ(upd_start(e, &w1), 0);
	CHECK_EQ(w1.m.commit_ver, 1);
	used = used_bytes(e);

	/* prepared: pending metadata is version 2 with the new CRC; reads see version 1 */
	CHECK_EQ(upd_start(e, &w2), 0);
	CHECK(w2.changed && w2.has_pm);
	CHECK_EQ(w2.pm.commit_ver, 2);
	memcpy(a + 4096, b, 8192); /* a is now the pending content */
	CHECK_EQ(w2.pm.crc, crc32c(0, a, CHUNK));
	CHECK_EQ(rd(e, &pr), 0); /* the prepared content, checked against its CRCs */
	CHECK_EQ(pr.got, CHUNK);
	CHECK(memcmp(got, a, CHUNK) == 0);
	{
		struct rd r = {.id = ID, .dst = got};

		CHECK_EQ(rd(e, &r), 0);
		CHECK(r.is_pending);
		CHECK_EQ(r.m.commit_ver, 1);
		CHECK(memcmp(got + 4096, b, 8192) != 0);
	}
	/* a later update waits for the chunk's lock */
	w3.e = e;
	sem_init(&w3.prepared_sem, 0, 0);
	sem_init(&w3.done, 0, 0);
	run_on_reactor(e->r, upd_submit, &w3);
	CHECK_EQ(w3.submit_rc, 0);
	env_sleep_ns(20 * ENV_NS_PER_MS);
	CHECK(sem_trywait(&w3.done) != 0);

	/* commit: version 2, then the waiting write runs (version 3) */
	CHECK_EQ(upd_finish(&w2, true), 0);
	CHECK_EQ(w2.m.commit_ver, 2);
	sem_wait(&w3.done);
	CHECK_EQ(w3.status, 0);
	CHECK_EQ(w3.m.commit_ver, 3);
	memcpy(a, b, 100);
	check_content(e, a, CHUNK, 3);

	/* abort: nothing changes, the block taken is free again */
	{
		struct upd w4 = {.a = write_args(0), .src = b, .len = 5000, .two_phase = true};

		CHECK_EQ(upd_start(e, &w4), 0);
		CHECK(used_bytes(e) > used);
		CHECK_EQ(upd_finish(&w4, false), -SLUICE_ECANCELED);
		CHECK_EQ(used_bytes(e), used);
		check_content(e, a, CHUNK, 3);
	}
	/* an append in place, aborted: the committed length stays */
	{
		struct upd w5 = {
			.a = write_args(CHUNK - 10), .src = b, .len = 10, .two_phase = true};
		struct upd tr = {.a = {.kind = STOR_UPD_TRUNCATE,
				       .id = ID,
				       .chunk_size = CHUNK,
				       .length = CHUNK - 100}};

		CHECK_EQ(upd_start(e, &tr), 0);
		CHECK_EQ(upd_start(e, &w5), 0);
		CHECK_EQ(upd_finish(&w5, false), -SLUICE_ECANCELED);
		check_content(e, a, CHUNK - 100, 4);
	}
}

static void test_versions(struct env_ *e, uint8_t *a, uint8_t *b)
{
	struct upd bad = {.a = write_args(0), .src = b, .len = 4096};
	struct upd ok = {.a = write_args(0), .src = b, .len = 4096};
	struct upd rep = {.a = write_args(0), .src = b, .len = 3000};
	struct upd empty = {.a = write_args(0)};
	struct upd tr = {.a = {.kind = STOR_UPD_TRUNCATE,
			       .id = ID,
			       .chunk_size = CHUNK,
			       .length = 3000,
			       .update_ver = 9}};

	/* the chunk is at 4: a forwarded update built on another version is refused, with
	 * the chunk's metadata, and changes nothing */
	bad.a.update_ver = 6;
	CHECK_EQ(upd_start(e, &bad), -SLUICE_ECHUNKVER);
	CHECK(bad.has_m && bad.m.commit_ver == 4);
	check_content(e, a, CHUNK - 100, 4);
	ok.a.update_ver = 5;
	ok.a.chain_ver = 3;
	CHECK_EQ(upd_start(e, &ok), 0);
	CHECK(ok.m.commit_ver == 5 && ok.m.chain_ver == 3);
	memcpy(a, b, 4096);
	check_content(e, a, CHUNK - 100, 5);

	/* a full replace sets content and version whatever the chunk held */
	rep.a.full_replace = true;
	rep.a.update_ver = 8;
	CHECK_EQ(upd_start(e, &rep), 0);
	check_content(e, b, 3000, 8);
	/* truncate to the same length at the head's version still bumps the version */
	CHECK_EQ(upd_start(e, &tr), 0);
	check_content(e, b, 3000, 9);
	/* an empty full replace leaves an existing, empty chunk */
	empty.a.full_replace = true;
	empty.a.update_ver = 12;
	CHECK_EQ(upd_start(e, &empty), 0);
	CHECK(empty.has_m && empty.m.length == 0 && empty.m.commit_ver == 12);
	/* a retry of the update that made the chunk's version (same tag) changes nothing, a
	 * full replace records the tag it is given, and the tag survives a reopen */
	{
		struct upd t1 = {.a = write_args(0), .src = b + 100, .len = 4096};
		struct upd t2 = {
			.a = write_args(0), .src = b + 200, .len = 4096, .two_phase = true};
		struct upd t3 = {.a = write_args(0), .src = b + 300, .len = 4096};

		t1.a.tag = (struct stor_tag){.client = 7, .channel = 1, .seq = 5};
		CHECK_EQ(upd_start(e, &t1), 0);
		CHECK(t1.m.commit_ver == 13 && t1.m.tag.seq == 5);
		t2.a.tag = t1.a.tag;
		CHECK_EQ(upd_start(e, &t2), 0);
		CHECK(!t2.changed && t2.has_pm && t2.pm.commit_ver == 13);
		CHECK_EQ(upd_finish(&t2, true), 0);
		CHECK_EQ(t2.m.commit_ver, 13);
		run_on_reactor(e->r, close_on_reactor, e);
		open_target(e);
		t3.a.tag = t1.a.tag;
		CHECK_EQ(upd_start(e, &t3), 0);
		CHECK_EQ(t3.m.commit_ver, 13); /* still a retry after the reopen */
		check_content(e, b + 100, 4096, 13);
	}
	/* a full replace must start at 0 */
	rep.a.offset = 5;
	rep.a.update_ver = 13;
	CHECK_EQ(upd_start(e, &rep), -EINVAL);
}

static void test_remove_and_reopen(struct env_ *e, uint8_t *b)
{
	struct upd rm = {.a = {.kind = STOR_UPD_REMOVE, .id = ID}, .two_phase = true};
	struct upd rm2 = {.a = {.kind = STOR_UPD_REMOVE, .id = ID}, .two_phase = true};
	struct upd w = {.a = write_args(0), .src = b, .len = 4096, .two_phase = true};
	struct rd r = {.id = ID, .dst = NULL};

	CHECK_EQ(upd_start(e, &rm), 0);
	CHECK(rm.changed && !rm.has_pm);
	CHECK_EQ(upd_finish(&rm, true), 0);
	CHECK(rm.existed);
	CHECK_EQ(rd(e, &r), -ENOENT);
	/* removing a missing chunk changes nothing */
	CHECK_EQ(upd_start(e, &rm2), 0);
	CHECK(!rm2.changed);
	CHECK_EQ(upd_finish(&rm2, true), 0);
	CHECK(!rm2.existed);

	/* committed survives a reopen; prepared-but-never-committed does not */
	{
		struct upd c1 = {.a = write_args(0), .src = b, .len = 4096};

		CHECK_EQ(upd_start(e, &c1), 0);
	}
	w.a.update_ver = 2;
	CHECK_EQ(upd_start(e, &w), 0);
	CHECK_EQ(upd_finish(&w, false), -SLUICE_ECANCELED);
	run_on_reactor(e->r, close_on_reactor, e);
	open_target(e);
	check_content(e, b, 4096, 1);
}

int main(void)
{
	struct env_ e = {0};
	uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
	char cmd[128];

	ASSERT(a && b);
	env_seed(20261206);
	snprintf(e.dir, sizeof(e.dir), "/var/tmp/test_stor_twophase.XXXXXX");
	ASSERT(mkdtemp(e.dir) != NULL);
	CHECK_EQ(reactor_create("engine", &e.r), 0);
	CHECK_EQ(reactor_start(e.r), 0);
	CHECK_EQ(worker_pool_create("eng-wk", 2, 256, &e.wp), 0);
	CHECK_EQ(bufpool_create("engine", 64u << 20, &e.pool), 0);
	open_target(&e);
	env_random_bytes(a, CHUNK);
	env_random_bytes(b, CHUNK);

	test_commit_and_abort(&e, a, b);
	test_versions(&e, a, b);
	test_remove_and_reopen(&e, b);

	run_on_reactor(e.r, close_on_reactor, &e);
	worker_pool_destroy(e.wp);
	reactor_destroy(e.r);
	bufpool_destroy(e.pool);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e.dir);
	CHECK_EQ(system(cmd), 0);
	free(a);
	free(b);
	return test_result();
}
