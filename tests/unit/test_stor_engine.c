/*
 * test_stor_engine.c - the chunk engine (storage/target.c) in one process, plus its pure
 * parts: the metadata encoding (chunk_meta.c) and the free-block map (alloc.c).
 *
 * The engine runs on a real reactor thread with real io_uring O_DIRECT I/O, RocksDB and a
 * worker pool, on a temp directory. The main thread starts each operation on the reactor
 * and waits for its completion; contents are compared with an in-memory model after every
 * step, and again after closing and reopening the target (the free map is rebuilt).
 *
 * Fixed buffers: runs with pinned pool buffers registered with the reactor's ring check
 * that disk I/O on them goes through the fixed path (target counters) with the same
 * results, and a copy of this program re-executed under another uid (no CAP_IPC_LOCK, its
 * own locked-memory count) with a small RLIMIT_MEMLOCK checks the fallback: the kernel
 * takes the first buffers only, and I/O on the others is plain.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/env.h"
#include "common/err.h"
#include "common/reactor.h"
#include "common/worker.h"
#include "storage/alloc.h"
#include "storage/chunk_meta.h"
#include "storage/target.h"
#include "tests/lib/testlib.h"

#define CHUNK  (1u << 20)
#define NCHUNK 8

/* Pinned and registered in the fixed-buffer runs: 4 KiB ones first, then chunk-sized. */
#define FIXED_SMALL 64
#define FIXED_BIG   8
/* The fallback run: room for the 4 KiB buffers (and the ring) but not a 1 MiB one. */
#define MEMLOCK_CHILD_ARG   "--memlock-child"
#define MEMLOCK_CHILD_LIMIT (640u << 10)
#define MEMLOCK_CHILD_UID   100000u /* plus our pid: a user of its own */

/* ---- pure parts ------------------------------------------------------------------------- */

static void test_chunk_meta(void)
{
	uint32_t crcs[3] = {crc32c(0, "a", 1), crc32c(0, "b", 1), crc32c(0, "c", 1)};
	struct chunk_meta m = {.id = {.inode = 7, .index = 3},
			       .length = 2 * SLUICE_SECTOR_BYTES + 1,
			       .chunk_size = 1u << 20,
			       .commit_ver = 5,
			       .update_ver = 5,
			       .chain_ver = 2,
			       .has_block = true,
			       .pos = {.cls = 4, .file = 1, .block = 99},
			       .sector_crc = crcs};
	uint8_t buf[CHUNK_META_FIXED_BYTES + 16], key[CHUNK_META_KEY_BYTES];
	struct layout_chunk_id id;
	struct chunk_meta d;
	size_t n;

	m.crc = chunk_meta_fold_crc(crcs, m.length);
	n = chunk_meta_encoded_size(&m);
	CHECK_EQ(n, sizeof(buf));
	chunk_meta_encode(&m, buf);
	CHECK_EQ(chunk_meta_decode(&m.id, buf, n, &d), 0);
	CHECK(d.length == m.length && d.pos.block == 99 && d.pos.cls == 4 && d.crc == m.crc);
	CHECK(d.sector_crc && d.sector_crc[2] == crcs[2]);
	chunk_meta_release(&d);
	/* every single-bit flip and every truncation is refused */
	for (size_t i = 0; i < n * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK_EQ(chunk_meta_decode(&m.id, buf, n, &d), -EBADMSG);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (size_t len = 0; len < n; len++)
		CHECK_EQ(chunk_meta_decode(&m.id, buf, len, &d), -EBADMSG);
	chunk_meta_key(&m.id, key);
	CHECK_EQ(chunk_meta_key_decode(key, sizeof(key), &id), 0);
	CHECK(id.inode == 7 && id.index == 3);
	key[0] = 'X';
	CHECK_EQ(chunk_meta_key_decode(key, sizeof(key), &id), -EBADMSG);
	CHECK_EQ(stor_class_for(1), 0);
	CHECK_EQ(stor_class_for(64 * 1024), 0);
	CHECK_EQ(stor_class_for(64 * 1024 + 1), 1);
	CHECK_EQ(stor_class_for(64u << 20), 10);
	CHECK(chunk_size_valid(1u << 16) && !chunk_size_valid(3u << 16) &&
	      !chunk_size_valid(1u << 15) && !chunk_size_valid(1u << 27));
}

static void test_alloc(void)
{
	struct stor_alloc *a;
	struct stor_pos p, q;
	struct stor_alloc_stats st;
	uint32_t file, nblocks;

	CHECK_EQ(stor_alloc_create(&a), 0);
	CHECK_EQ(stor_alloc_get(a, 2, &p), -ENOSPC);
	CHECK_EQ(stor_alloc_grow_point(a, 2, &file, &nblocks), 0);
	CHECK(file == 0 && nblocks == 0);
	CHECK_EQ(stor_alloc_set_blocks(a, 2, 1, 10), -EINVAL); /* gap */
	CHECK_EQ(stor_alloc_set_blocks(a, 2, 0, 70), 0);
	CHECK_EQ(stor_alloc_set_blocks(a, 2, 0, 60), -EINVAL); /* shrink */
	p = (struct stor_pos){.cls = 2, .file = 0, .block = 65};
	CHECK_EQ(stor_alloc_mark_used(a, &p), 0);
	CHECK_EQ(stor_alloc_mark_used(a, &p), -EEXIST);
	q = (struct stor_pos){.cls = 2, .file = 0, .block = 70};
	CHECK_EQ(stor_alloc_mark_used(a, &q), -ERANGE);
	for (int i = 0; i < 69; i++) {
		CHECK_EQ(stor_alloc_get(a, 2, &q), 0);
		CHECK(q.block != 65 && q.block < 70);
	}
	CHECK_EQ(stor_alloc_get(a, 2, &q), -ENOSPC);
	stor_alloc_stats(a, &st);
	CHECK_EQ(st.free_blocks, 0);
	CHECK_EQ(st.used_bytes, 70ull * (256u << 10));
	stor_alloc_put(a, &p);
	CHECK_EQ(stor_alloc_get(a, 2, &q), 0);
	CHECK_EQ(q.block, 65);
	CHECK_EQ(stor_alloc_set_blocks(a, 2, 0, 200), 0);
	CHECK_EQ(stor_alloc_get(a, 2, &q), 0);
	CHECK(q.block >= 70);
	stor_alloc_destroy(a);
}

/* ---- the engine --------------------------------------------------------------------------- */

struct env_ {
	struct reactor *r;
	struct worker_pool *wp;
	struct bufpool *pool;
	struct stor_target *t;
	char dir[64];
	uint64_t capacity, group;
	bool fixed;	       /* pin and register fixed buffers */
	unsigned fixed_pinned; /* buffers offered to the ring */
	int fixed_registered;  /* reactor_register_buffers' result */
	int fixed_refused;     /* and its reason for the rest */
};

struct model {
	uint8_t data[CHUNK];
	uint32_t len;
	bool exists;
} model[NCHUNK];

/* One synchronous call: the op runs on the reactor, its completion posts sem. */
struct call {
	struct env_ *e;
	int kind; /* 0 write 1 read 2 truncate 3 remove */
	uint32_t index, offset, length, chunk_size, crc_xor;
	const uint8_t *src;
	uint8_t *dst;
	int submit_rc, status;
	uint32_t got;
	struct chunk_meta m;
	bool existed, has_m;
	sem_t done;
};

static void update_cb(void *arg, int status, const struct chunk_meta *m)
{
	struct call *c = arg;

	c->status = status;
	c->has_m = m != NULL;
	if (m) {
		c->m = *m;
		c->m.sector_crc = NULL;
	}
	sem_post(&c->done);
}

static void read_cb(void *arg, int status, struct buf *data, uint32_t off, uint32_t len,
		    const struct chunk_meta *m)
{
	struct call *c = arg;

	c->status = status;
	c->got = len;
	if (status == 0 && len)
		memcpy(c->dst, (uint8_t *)data->data + off, len);
	buf_put(data);
	c->m = *m;
	sem_post(&c->done);
}

static void call_on_reactor(void *arg)
{
	struct call *c = arg;
	struct layout_chunk_id id = {.inode = 42, .index = c->index};
	struct buf *b = NULL;

	switch (c->kind) {
	case 0:
		c->submit_rc = bufpool_get(c->e->pool, c->length, &b);
		if (c->submit_rc)
			break;
		memcpy(b->data, c->src, c->length);
		struct stor_write_args a = {.id = id,
					    .chunk_size = c->chunk_size,
					    .offset = c->offset,
					    .data = b,
					    .data_crc = crc32c(0, c->src, c->length) ^ c->crc_xor};
		c->submit_rc = stor_write(c->e->t, &a, update_cb, c);
		if (c->submit_rc)
			buf_put(b);
		break;
	case 1:
		c->submit_rc = stor_read(c->e->t, &id, c->offset, c->length, read_cb, c);
		break;
	case 2:
		c->submit_rc = stor_truncate(c->e->t, &id, c->chunk_size, c->length, update_cb, c);
		break;
	default:
		c->submit_rc = stor_remove(c->e->t, &id, &c->existed, update_cb, c);
	}
}

static int call(struct call *c)
{
	sem_init(&c->done, 0, 0);
	run_on_reactor(c->e->r, call_on_reactor, c);
	if (c->submit_rc == 0)
		sem_wait(&c->done);
	sem_destroy(&c->done);
	return c->submit_rc ? c->submit_rc : c->status;
}

static int do_write(struct env_ *e, uint32_t idx, uint32_t off, const uint8_t *src, uint32_t len)
{
	struct call c = {.e = e,
			 .kind = 0,
			 .index = idx,
			 .offset = off,
			 .length = len,
			 .chunk_size = CHUNK,
			 .src = src};
	int rc = call(&c);

	if (rc == 0) {
		struct model *md = &model[idx];

		if (off > md->len)
			memset(md->data + md->len, 0, off - md->len);
		memcpy(md->data + off, src, len);
		if (off + len > md->len)
			md->len = off + len;
		md->exists = true;
		CHECK_EQ(c.m.length, md->len);
		CHECK_EQ(c.m.crc, crc32c(0, md->data, md->len));
	}
	return rc;
}

static void verify_chunk(struct env_ *e, uint32_t idx)
{
	static uint8_t got[CHUNK];
	struct call c = {.e = e, .kind = 1, .index = idx, .offset = 0, .length = CHUNK, .dst = got};
	int rc = call(&c);

	if (!model[idx].exists) {
		CHECK_EQ(rc, -ENOENT);
		return;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(c.got, model[idx].len);
	CHECK(memcmp(got, model[idx].data, model[idx].len) == 0);
	/* an unaligned inner range too */
	if (model[idx].len > 10) {
		struct call p = {.e = e,
				 .kind = 1,
				 .index = idx,
				 .offset = 3,
				 .length = model[idx].len - 7,
				 .dst = got};

		CHECK_EQ(call(&p), 0);
		CHECK_EQ(p.got, model[idx].len - 7);
		CHECK(memcmp(got, model[idx].data + 3, p.got) == 0);
	}
}

static void verify_all(struct env_ *e)
{
	for (uint32_t i = 0; i < NCHUNK; i++)
		verify_chunk(e, i);
}

static void open_target(struct env_ *e)
{
	struct stor_target_cfg tc = {.path = e->dir,
				     .id = 1,
				     .group_bytes = e->group,
				     .reserve_bytes = 0,
				     .capacity_bytes = e->capacity,
				     .queue_depth = 8,
				     .reactor = e->r,
				     .workers = e->wp,
				     .pool = e->pool};
	char why[256];
	int rc = stor_target_open(&tc, &e->t, why, sizeof(why));

	if (rc)
		fprintf(stderr, "open: %s\n", why);
	CHECK_EQ(rc, 0);
}

static void close_target_on_reactor(void *arg)
{
	struct env_ *e = arg;

	stor_target_close(e->t);
	e->t = NULL;
}

static void reopen(struct env_ *e)
{
	run_on_reactor(e->r, close_target_on_reactor, e);
	open_target(e);
}

static void fill_random(uint8_t *p, uint32_t n)
{
	env_random_bytes(p, n);
}

static void test_updates(struct env_ *e)
{
	static uint8_t src[CHUNK];
	struct call c;

	fill_random(src, CHUNK);
	/* whole chunk (direct from the buffer), then an unaligned overwrite (COW + RMW) */
	CHECK_EQ(do_write(e, 0, 0, src, CHUNK), 0);
	fill_random(src, 5000);
	CHECK_EQ(do_write(e, 0, 12345, src, 5000), 0);
	verify_chunk(e, 0);
	/* appends: aligned in place, unaligned in place, past the end (hole), into a new class */
	fill_random(src, 70000);
	CHECK_EQ(do_write(e, 1, 0, src, 8192), 0);
	CHECK_EQ(do_write(e, 1, 8192, src + 100, 4096), 0);
	CHECK_EQ(do_write(e, 1, 12288, src + 7, 5), 0);
	CHECK_EQ(do_write(e, 1, 20000, src + 9, 333), 0);
	CHECK_EQ(do_write(e, 1, 60000, src, 70000), 0); /* 130000 bytes: 256 KiB class */
	verify_chunk(e, 1);
	/* a write not at offset 0 creating the chunk: leading zeros */
	CHECK_EQ(do_write(e, 2, 4097, src, 10), 0);
	verify_chunk(e, 2);
	/* truncates: unaligned shrink, grow, to zero, of a missing chunk */
	c = (struct call){.e = e, .kind = 2, .index = 1, .length = 10001, .chunk_size = CHUNK};
	CHECK_EQ(call(&c), 0);
	model[1].len = 10001;
	CHECK_EQ(c.m.crc, crc32c(0, model[1].data, 10001));
	verify_chunk(e, 1);
	CHECK_EQ(do_write(e, 1, 10001, src, 3), 0); /* append over the cut sector */
	verify_chunk(e, 1);
	c = (struct call){.e = e, .kind = 2, .index = 1, .length = 200000, .chunk_size = CHUNK};
	CHECK_EQ(call(&c), 0);
	memset(model[1].data + model[1].len, 0, 200000 - model[1].len);
	model[1].len = 200000;
	verify_chunk(e, 1);
	c = (struct call){.e = e, .kind = 2, .index = 2, .length = 0, .chunk_size = CHUNK};
	CHECK_EQ(call(&c), 0);
	model[2].len = 0;
	verify_chunk(e, 2);
	c = (struct call){.e = e, .kind = 2, .index = 3, .length = 0, .chunk_size = CHUNK};
	CHECK_EQ(call(&c), 0);
	CHECK(!c.has_m);
	verify_chunk(e, 3);
	/* remove, twice */
	c = (struct call){.e = e, .kind = 3, .index = 2};
	CHECK_EQ(call(&c), 0);
	CHECK(c.existed);
	model[2].exists = false;
	c = (struct call){.e = e, .kind = 3, .index = 2};
	CHECK_EQ(call(&c), 0);
	CHECK(!c.existed);
	verify_all(e);
	/* refusals: bad CRC, past the chunk, zero length, chunk size change */
	c = (struct call){.e = e,
			  .kind = 0,
			  .index = 0,
			  .length = 10,
			  .chunk_size = CHUNK,
			  .src = src,
			  .crc_xor = 1};
	CHECK_EQ(call(&c), -SLUICE_ECHECKSUM);
	c = (struct call){.e = e,
			  .kind = 0,
			  .index = 0,
			  .offset = CHUNK - 5,
			  .length = 10,
			  .chunk_size = CHUNK,
			  .src = src};
	CHECK_EQ(call(&c), -EINVAL);
	c = (struct call){
		.e = e, .kind = 0, .index = 0, .length = 10, .chunk_size = CHUNK / 2, .src = src};
	CHECK_EQ(call(&c), -EINVAL);
	verify_all(e);
	reopen(e);
	verify_all(e);
}

/* Random updates against the model with a reopen in the middle. */
static void test_random(struct env_ *e)
{
	static uint8_t src[CHUNK];

	for (int step = 0; step < 300; step++) {
		uint32_t idx = (uint32_t)env_random_below(NCHUNK);
		uint32_t what = (uint32_t)env_random_below(10);
		uint32_t off = (uint32_t)env_random_below(CHUNK);
		uint32_t len = 1 + (uint32_t)env_random_below(what < 3 ? 8192 : CHUNK - off);

		if (off + len > CHUNK)
			len = CHUNK - off;
		if (what < 2) { /* append */
			off = model[idx].len;
			len = len < CHUNK - off ? len : CHUNK - off;
		}
		if (what < 7 && len > 0) {
			fill_random(src, len);
			CHECK_EQ(do_write(e, idx, off, src, len), 0);
		} else if (what < 7) {
			continue;
		} else if (what < 9) {
			struct call c = {.e = e,
					 .kind = 2,
					 .index = idx,
					 .length = off,
					 .chunk_size = CHUNK};

			CHECK_EQ(call(&c), 0);
			if (off > model[idx].len)
				memset(model[idx].data + model[idx].len, 0, off - model[idx].len);
			if (off > 0 || model[idx].exists)
				model[idx].exists = true;
			model[idx].len = off;
		} else {
			struct call c = {.e = e, .kind = 3, .index = idx};

			CHECK_EQ(call(&c), 0);
			CHECK_EQ(c.existed, model[idx].exists);
			model[idx].exists = false;
			model[idx].len = 0;
		}
		if (step % 50 == 0)
			verify_all(e);
		if (step == 150)
			reopen(e);
	}
	verify_all(e);
}

/* Many writes in flight at once: to different chunks and stacked on one chunk (applied in
 * submission order: the last one wins where they overlap). */
struct burst {
	struct env_ *e;
	struct call calls[32];
	uint8_t src[32][4096];
	sem_t done;
	int pending;
};

static void burst_cb(void *arg, int status, const struct chunk_meta *m)
{
	struct call *c = arg;

	(void)m;
	c->status = status;
	sem_post(&c->done);
}

static void burst_start(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < 32; i++) {
		struct call *c = &b->calls[i];
		struct layout_chunk_id id = {.inode = 42, .index = c->index};
		struct buf *buf;

		c->submit_rc = bufpool_get(b->e->pool, c->length, &buf);
		if (c->submit_rc)
			continue;
		memcpy(buf->data, c->src, c->length);
		struct stor_write_args a = {.id = id,
					    .chunk_size = CHUNK,
					    .offset = c->offset,
					    .data = buf,
					    .data_crc = crc32c(0, c->src, c->length)};
		c->submit_rc = stor_write(b->e->t, &a, burst_cb, c);
		if (c->submit_rc)
			buf_put(buf);
	}
}

static void test_concurrent(struct env_ *e)
{
	static struct burst b;

	b.e = e;
	for (int i = 0; i < 32; i++) {
		struct call *c = &b.calls[i];

		fill_random(b.src[i], 4096);
		*c = (struct call){.e = e,
				   .index = i < 16 ? (uint32_t)i % NCHUNK : 7,
				   .offset = i < 16 ? 0 : (uint32_t)(i - 16) * 1000,
				   .length = 4096,
				   .src = b.src[i]};
		sem_init(&c->done, 0, 0);
	}
	run_on_reactor(e->r, burst_start, &b);
	for (int i = 0; i < 32; i++) {
		struct call *c = &b.calls[i];

		CHECK_EQ(c->submit_rc, 0);
		if (c->submit_rc == 0)
			sem_wait(&c->done);
		CHECK_EQ(c->status, 0);
		sem_destroy(&c->done);
	}
	/* replay in submission order on the model */
	for (int i = 0; i < 32; i++) {
		struct call *c = &b.calls[i];
		struct model *md = &model[c->index];

		if (c->index != 7 || i >= 16) {
			if (c->offset > md->len)
				memset(md->data + md->len, 0, c->offset - md->len);
			memcpy(md->data + c->offset, c->src, c->length);
			if (c->offset + c->length > md->len)
				md->len = c->offset + c->length;
			md->exists = true;
		}
	}
}

struct scan_call {
	struct env_ *e;
	uint32_t index;
	struct chunk_meta m;
	int status;
	unsigned n;
	sem_t done;
};

static void scan_cb(void *arg, int status, const struct chunk_meta *metas, unsigned n, bool more)
{
	struct scan_call *s = arg;

	(void)more;
	s->status = status;
	s->n = n;
	if (n > 0)
		s->m = metas[0];
	sem_post(&s->done);
}

static void scan_start(void *arg)
{
	struct scan_call *s = arg;
	struct layout_chunk_id b = {.inode = 42, .index = s->index};
	struct layout_chunk_id end = {.inode = 42, .index = s->index + 1};

	s->status = stor_scan(s->e->t, &b, &end, 10, scan_cb, s);
	if (s->status)
		sem_post(&s->done);
}

/* The committed metadata of chunk index, from a scan (positions included). */
static struct chunk_meta scan_chunk(struct env_ *e, uint32_t index)
{
	struct scan_call s = {.e = e, .index = index};

	sem_init(&s.done, 0, 0);
	run_on_reactor(e->r, scan_start, &s);
	sem_wait(&s.done);
	sem_destroy(&s.done);
	CHECK_EQ(s.status, 0);
	CHECK_EQ(s.n, 1);
	return s.m;
}

/* Flip a byte in the data file under chunk 5: reads of that sector fail, others work. */
static void test_corruption(struct env_ *e)
{
	static uint8_t src[CHUNK], got[CHUNK];
	char path[128];
	struct call c;
	int fd;
	uint8_t byte;

	fill_random(src, CHUNK);
	CHECK_EQ(do_write(e, 5, 0, src, CHUNK), 0);
	struct chunk_meta m = scan_chunk(e, 5);
	off_t at = (off_t)m.pos.block * stor_class_bytes(m.pos.cls) + 8192 + 17;

	CHECK_EQ(m.crc, crc32c(0, src, CHUNK));
	snprintf(path, sizeof(path), "%s/data/c%u.%u", e->dir, 16 + m.pos.cls, m.pos.file);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, &byte, 1, at), 1);
	byte ^= 0x40;
	CHECK_EQ(pwrite(fd, &byte, 1, at), 1);
	CHECK_EQ(fsync(fd), 0);
	close(fd);
	c = (struct call){.e = e, .kind = 1, .index = 5, .offset = 8000, .length = 300, .dst = got};
	CHECK_EQ(call(&c), -SLUICE_ECHECKSUM);
	c = (struct call){.e = e, .kind = 1, .index = 5, .offset = 0, .length = 8192, .dst = got};
	CHECK_EQ(call(&c), 0);
	CHECK(memcmp(got, src, 8192) == 0);
	c = (struct call){
		.e = e, .kind = 1, .index = 5, .offset = 12288, .length = 4096, .dst = got};
	CHECK_EQ(call(&c), 0);
	/* a partial overwrite needing the bad sector is refused, not blessed */
	c = (struct call){.e = e,
			  .kind = 0,
			  .index = 5,
			  .offset = 8200,
			  .length = 10,
			  .chunk_size = CHUNK,
			  .src = src};
	CHECK_EQ(call(&c), -SLUICE_ECHECKSUM);
	/* a whole-chunk rewrite repairs it */
	CHECK_EQ(do_write(e, 5, 0, src, CHUNK), 0);
	verify_chunk(e, 5);
}

/* A capacity cap: fill with 1 MiB chunks until -ENOSPC, nothing acknowledged lost, a
 * remove makes room again. */
static void test_enospc(struct env_ *e)
{
	static uint8_t src[CHUNK];
	int written = 0, rc = 0;

	for (int i = 0; i < NCHUNK; i++)
		model[i] = (struct model){0};
	fill_random(src, CHUNK);
	for (uint32_t i = 0; i < NCHUNK && rc == 0; i++) {
		rc = do_write(e, i, 0, src, CHUNK);
		if (rc == 0)
			written++;
	}
	CHECK_EQ(rc, -ENOSPC);
	CHECK_EQ(written, 3); /* 3 MiB cap */
	verify_all(e);
	struct call c = {.e = e, .kind = 3, .index = 0};

	CHECK_EQ(call(&c), 0);
	model[0].exists = false;
	CHECK_EQ(do_write(e, 6, 0, src, CHUNK), 0);
	verify_all(e);
	reopen(e);
	verify_all(e);
}

struct ctr_call {
	struct env_ *e;
	struct stor_counters c;
};

static void counters_on_reactor(void *arg)
{
	struct ctr_call *cc = arg;

	stor_target_counters(cc->e->t, &cc->c);
}

static struct stor_counters counters(struct env_ *e)
{
	struct ctr_call cc = {.e = e};

	run_on_reactor(e->r, counters_on_reactor, &cc);
	return cc.c;
}

static void register_on_reactor(void *arg)
{
	struct env_ *e = arg;
	struct iovec iov[FIXED_SMALL + FIXED_BIG];
	int refused;

	e->fixed_pinned = bufpool_pinned(e->pool, iov, FIXED_SMALL + FIXED_BIG);
	e->fixed_registered =
		reactor_register_buffers(e->r, iov, e->fixed_pinned, &e->fixed_refused);
	/* lookups by address: inside one buffer only, and only the ones the kernel took */
	for (int i = 0; i < (int)e->fixed_pinned; i++) {
		uint8_t *base = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		int want = i < e->fixed_registered ? i : -1;

		CHECK_EQ(reactor_fixed_index(e->r, base, len), want);
		CHECK_EQ(reactor_fixed_index(e->r, base + len / 2, len / 2), want);
		CHECK_EQ(reactor_fixed_index(e->r, base + len - 1, 1), want);
		CHECK_EQ(reactor_fixed_index(e->r, base + len / 2, len / 2 + 1), -1);
		CHECK(reactor_fixed_index(e->r, base - 1, 1) != i);
	}
	CHECK_EQ(reactor_fixed_index(e->r, &e, sizeof(e)), -1);
	CHECK_EQ(reactor_register_buffers(e->r, iov, 0, &refused), -EINVAL);
	if (e->fixed_registered > 0) /* one table per ring */
		CHECK_EQ(reactor_register_buffers(e->r, iov, 1, &refused), -EBUSY);
}

/*
 * Disk I/O on pinned buffers: a whole-chunk write straight from its 1 MiB request buffer, a
 * whole-chunk read into a 1 MiB buffer, a 4 KiB read into a 4 KiB one: all fixed when the
 * ring took every buffer; with only the 4 KiB ones registered (the fallback run), only the
 * last. A 64 KiB read gets an unpinned buffer: plain either way. Data checked each time.
 */
static void test_fixed_io(struct env_ *e)
{
	static uint8_t src[CHUNK], got[CHUNK];
	bool all = e->fixed_registered == (int)e->fixed_pinned;
	struct stor_counters c0 = counters(e), c1;
	struct call c;

	CHECK(all || e->fixed_registered == FIXED_SMALL);
	fill_random(src, CHUNK);
	CHECK_EQ(do_write(e, 0, 0, src, CHUNK), 0);
	c = (struct call){.e = e, .kind = 1, .index = 0, .length = CHUNK, .dst = got};
	CHECK_EQ(call(&c), 0);
	CHECK(c.got == CHUNK && memcmp(got, src, CHUNK) == 0);
	c = (struct call){.e = e, .kind = 1, .index = 0, .offset = 8197, .length = 100, .dst = got};
	CHECK_EQ(call(&c), 0);
	CHECK(c.got == 100 && memcmp(got, src + 8197, 100) == 0);
	c1 = counters(e);
	CHECK_EQ(c1.ios_fixed - c0.ios_fixed, all ? 3 : 1);
	CHECK_EQ(c1.ios_plain - c0.ios_plain, all ? 0 : 2);
	c = (struct call){
		.e = e, .kind = 1, .index = 0, .offset = 65536, .length = 65536, .dst = got};
	CHECK_EQ(call(&c), 0);
	CHECK(c.got == 65536 && memcmp(got, src + 65536, 65536) == 0);
	c0 = c1;
	c1 = counters(e);
	CHECK_EQ(c1.ios_fixed - c0.ios_fixed, 0);
	CHECK_EQ(c1.ios_plain - c0.ios_plain, 1);
	for (uint32_t i = 0; i < NCHUNK; i++)
		model[i] = (struct model){0};
	memcpy(model[0].data, src, CHUNK);
	model[0].len = CHUNK;
	model[0].exists = true;
}

/* Pin FIXED_SMALL 4 KiB and FIXED_BIG chunk-sized pool buffers and register them. */
static void setup_fixed(struct env_ *e)
{
	CHECK_EQ(bufpool_reserve_pinned(e->pool, SLUICE_BUFPOOL_MIN_BYTES, FIXED_SMALL), 0);
	CHECK_EQ(bufpool_reserve_pinned(e->pool, CHUNK, FIXED_BIG), 0);
	run_on_reactor(e->r, register_on_reactor, e);
	CHECK_EQ(e->fixed_pinned, FIXED_SMALL + FIXED_BIG);
	CHECK(e->fixed_registered >= 0);
}

static void engine_run(uint64_t capacity, bool fixed, void (*body)(struct env_ *e))
{
	struct env_ e = {.capacity = capacity, .group = 2u << 20, .fixed = fixed};
	struct stor_counters ctr;
	char cmd[128];

	snprintf(e.dir, sizeof(e.dir), "/var/tmp/test_stor_engine.XXXXXX");
	CHECK(mkdtemp(e.dir) != NULL);
	CHECK_EQ(reactor_create("engine", &e.r), 0);
	CHECK_EQ(reactor_start(e.r), 0);
	CHECK_EQ(worker_pool_create("eng-wk", 2, 256, &e.wp), 0);
	CHECK_EQ(bufpool_create("engine", 64u << 20, &e.pool), 0);
	if (fixed)
		setup_fixed(&e);
	for (int i = 0; i < NCHUNK; i++)
		model[i] = (struct model){0};
	open_target(&e);
	if (e.t)
		body(&e);
	if (e.t) {
		ctr = counters(&e); /* of the last open only */
		CHECK(ctr.ios_plain > 0);
		CHECK(fixed ? ctr.ios_fixed > 0 : ctr.ios_fixed == 0);
		run_on_reactor(e.r, close_target_on_reactor, &e);
	}
	worker_pool_destroy(e.wp);
	reactor_destroy(e.r);
	bufpool_destroy(e.pool);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e.dir);
	CHECK_EQ(system(cmd), 0);
}

static void body_updates(struct env_ *e)
{
	test_updates(e);
	test_random(e);
	test_concurrent(e);
	verify_all(e);
	reopen(e);
	verify_all(e);
	test_corruption(e);
}

static void body_fixed(struct env_ *e)
{
	test_fixed_io(e);
	body_updates(e);
}

static void body_fixed_all(struct env_ *e)
{
	CHECK_EQ(e->fixed_registered, FIXED_SMALL + FIXED_BIG);
	CHECK_EQ(e->fixed_refused, 0);
	body_fixed(e);
}

static void body_fixed_fallback(struct env_ *e)
{
	CHECK_EQ(e->fixed_registered, FIXED_SMALL);
	CHECK_EQ(e->fixed_refused, -ENOMEM);
	body_fixed(e);
}

/* The fallback run, re-executed by test_memlock_fallback: the ring takes the 4 KiB buffers
 * only (ENOMEM for the first 1 MiB one), and everything still works. */
static int memlock_child(void)
{
	struct rlimit rl;

	CHECK_EQ(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	CHECK_EQ(rl.rlim_cur, MEMLOCK_CHILD_LIMIT);
	engine_run(0, true, body_fixed_fallback);
	return test_result();
}

static void test_memlock_fallback(void)
{
	uid_t uid = (uid_t)(MEMLOCK_CHILD_UID + (unsigned)getpid());
	struct rlimit rl = {MEMLOCK_CHILD_LIMIT, MEMLOCK_CHILD_LIMIT};
	int status;
	pid_t pid;

	if (getuid() != 0) { /* a user of our own keeps other processes' locked memory out */
		fprintf(stderr, "test_stor_engine: not root, memlock fallback not tested\n");
		return;
	}
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) { /* async-signal-safe calls only until exec: we may have threads */
		if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 || setgid((gid_t)uid) != 0 ||
		    setuid(uid) != 0)
			_exit(2);
		execl("/proc/self/exe", "test_stor_engine", MEMLOCK_CHILD_ARG, (char *)NULL);
		_exit(3);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
	env_seed(20261123);
	if (argc == 2 && strcmp(argv[1], MEMLOCK_CHILD_ARG) == 0)
		return memlock_child();
	test_chunk_meta();
	test_alloc();
	engine_run(0, false, body_updates);
	engine_run(0, true, body_fixed_all);
	test_memlock_fallback();
	engine_run(3u << 20, false, test_enospc);
	return test_result();
}
