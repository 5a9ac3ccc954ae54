/*
 * cli_merge.c - merge the sorted chunk listings of a chain's members in one pass, page by
 * page (for `sluice chain check`).
 *
 * Design: every member has a cursor into its current page. A step first moves past the
 * entries the previous row used (fetching the member's next page when its page runs out:
 * done lazily so the previous row's pointers stayed valid until now), then takes the
 * smallest chunk id among the members' current entries and builds the row: each member
 * still in the comparison either has that id at its cursor (its metadata) or lacks the
 * chunk (NULL). Memory is one page per member, however many chunks there are.
 *
 * Pages come from the network and are checked, never trusted: the ids of a page must rise
 * strictly and start after the cursor it was asked for, and an empty page must not claim
 * more (that would loop forever). A member that fails a fetch or sends a bad page leaves
 * the comparison; the rows already produced stand, the later ones do not name it.
 *
 * Pure: no I/O of its own (the fetch callback does it), so test_cli.c drives it with
 * pages made up in memory. Main thread only.
 */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "tools/cli.h"

static int id_cmp(uint64_t ai, uint32_t ax, uint64_t bi, uint32_t bx)
{
	if (ai != bi)
		return ai < bi ? -1 : 1;
	return ax < bx ? -1 : ax > bx;
}

static void drop_page(struct cli_merge *mg, unsigned i)
{
	struct cli_merge_member *m = &mg->m[i];

	if (m->has_page)
		mg->ops->release(mg->arg, i, &m->page);
	m->has_page = false;
	memset(&m->page, 0, sizeof(m->page));
	m->pos = 0;
}

static void fail_member(struct cli_merge *mg, unsigned i, int rc)
{
	drop_page(mg, i);
	mg->m[i].error = rc;
}

/* Check a fresh page against the cursor it was asked for. NULL if fine, else why not. */
static const char *page_problem(const struct cli_merge_page *p, bool after, uint64_t inode,
				uint32_t index)
{
	if (p->n > 0 && !p->chunks)
		return "chunk array missing";
	if (p->n == 0 && p->more)
		return "an empty page that says more follow";
	for (size_t k = 0; k < p->n; k++) {
		const Sluice__ChunkMeta *cm = p->chunks[k];

		if (!cm)
			return "null chunk entry";
		if ((k > 0 || after) && id_cmp(cm->inode, cm->index, inode, index) <= 0)
			return k > 0 ? "chunk ids out of order" : "a chunk at or before the cursor";
		inode = cm->inode;
		index = cm->index;
	}
	return NULL;
}

/* Fetch member i's next page (after its last entry, or the first); sets done or error. */
static void fetch_page(struct cli_merge *mg, unsigned i, bool after, uint64_t inode, uint32_t index)
{
	struct cli_merge_member *m = &mg->m[i];
	struct cli_merge_page p = {0};
	const char *why;
	char msg[128];
	int rc;

	drop_page(mg, i);
	rc = mg->ops->fetch(mg->arg, i, after, inode, index, &p);
	if (rc) {
		ASSERT(rc < 0);
		m->error = rc;
		return;
	}
	m->page = p;
	m->has_page = true;
	why = page_problem(&p, after, inode, index);
	if (why) {
		snprintf(msg, sizeof(msg), "bad LIST_CHUNKS page: %s", why);
		mg->ops->invalid(mg->arg, i, -SLUICE_EPROTO, msg);
		fail_member(mg, i, -SLUICE_EPROTO);
		return;
	}
	m->done = p.n == 0;
}

void cli_merge_start(struct cli_merge *mg, unsigned n, const struct cli_merge_ops *ops, void *arg)
{
	ASSERT(n <= SLUICE_CHAIN_LEN_MAX);
	memset(mg, 0, sizeof(*mg));
	mg->ops = ops;
	mg->arg = arg;
	mg->n = n;
	for (unsigned i = 0; i < n; i++)
		fetch_page(mg, i, false, 0, 0);
}

/* Step member i past the entry the last row took. */
static void advance(struct cli_merge *mg, unsigned i)
{
	struct cli_merge_member *m = &mg->m[i];
	const Sluice__ChunkMeta *last;

	m->consumed = false;
	if (++m->pos < m->page.n)
		return;
	if (!m->page.more) {
		m->done = true;
		drop_page(mg, i);
		return;
	}
	last = m->page.chunks[m->page.n - 1];
	fetch_page(mg, i, true, last->inode, last->index); /* copies the id before dropping */
}

int cli_merge_next(struct cli_merge *mg, struct cli_merge_row *row)
{
	const Sluice__ChunkMeta *min = NULL;

	for (unsigned i = 0; i < mg->n; i++)
		if (mg->m[i].consumed)
			advance(mg, i);
	for (unsigned i = 0; i < mg->n; i++) {
		const struct cli_merge_member *m = &mg->m[i];
		const Sluice__ChunkMeta *cm;

		if (m->error || m->done)
			continue;
		cm = m->page.chunks[m->pos];
		if (!min || id_cmp(cm->inode, cm->index, min->inode, min->index) < 0)
			min = cm;
	}
	if (!min)
		return 0;
	memset(row, 0, sizeof(*row));
	row->inode = min->inode;
	row->index = min->index;
	for (unsigned i = 0; i < mg->n; i++) {
		struct cli_merge_member *m = &mg->m[i];
		const Sluice__ChunkMeta *cm;

		if (m->error)
			continue;
		row->compared[i] = true;
		if (m->done)
			continue;
		cm = m->page.chunks[m->pos];
		if (cm->inode == row->inode && cm->index == row->index) {
			row->meta[i] = cm;
			m->consumed = true;
			m->listed++;
		}
	}
	return 1;
}

void cli_merge_end(struct cli_merge *mg)
{
	for (unsigned i = 0; i < mg->n; i++)
		drop_page(mg, i);
}

unsigned cli_merge_live(const struct cli_merge *mg)
{
	unsigned live = 0;

	for (unsigned i = 0; i < mg->n; i++)
		live += mg->m[i].error == 0;
	return live;
}

bool cli_merge_row_differs(const struct cli_merge_row *row, unsigned n, const bool *sel)
{
	const Sluice__ChunkMeta *first = NULL;
	bool seen = false;

	ASSERT(n <= SLUICE_CHAIN_LEN_MAX);
	for (unsigned i = 0; i < n; i++) {
		const Sluice__ChunkMeta *cm = row->meta[i];

		if (!row->compared[i] || (sel && !sel[i]))
			continue;
		if (!seen) {
			seen = true;
			first = cm;
			continue;
		}
		if (!cm != !first)
			return true; /* present on one, missing on another */
		if (cm && (cm->length != first->length || cm->commit_ver != first->commit_ver ||
			   cm->crc != first->crc))
			return true;
	}
	return false;
}
