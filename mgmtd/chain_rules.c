/*
 * chain_rules.c - the chain state machine (see chain_rules.h for the rules).
 *
 * Applied in passes over a copy of the chain so each rule sees the outcome of the ones
 * before it: failures first (who becomes lastsrv depends on who is still serving), then
 * returns, then syncing promotions, then the stable reorder.
 */
#include <string.h>

#include "common/assert.h"
#include "common/limits.h"
#include "mgmtd/chain_rules.h"

static bool is_up(const struct chain_member *m)
{
	return m->local != SLUICE__LOCAL_STATE__LS_OFFLINE;
}

static unsigned count_state(const struct chain_member *m, unsigned n, Sluice__TargetState s)
{
	unsigned c = 0;

	for (unsigned i = 0; i < n; i++)
		c += m[i].state == s;
	return c;
}

/* Serving members that went down: offline, or lastsrv if nobody is left serving. */
static void apply_failures(struct chain_member *m, unsigned n)
{
	bool survivor = false, lastsrv_exists = false;
	int first_failed = -1;

	for (unsigned i = 0; i < n; i++) {
		if (m[i].state == SLUICE__TARGET_STATE__TS_SERVING && is_up(&m[i]))
			survivor = true;
		if (m[i].state == SLUICE__TARGET_STATE__TS_LASTSRV)
			lastsrv_exists = true;
	}
	for (unsigned i = 0; i < n; i++) {
		if (is_up(&m[i]))
			continue;
		if (m[i].state == SLUICE__TARGET_STATE__TS_SERVING) {
			if (first_failed < 0)
				first_failed = (int)i;
			m[i].state = SLUICE__TARGET_STATE__TS_OFFLINE;
		} else if (m[i].state != SLUICE__TARGET_STATE__TS_LASTSRV) {
			m[i].state = SLUICE__TARGET_STATE__TS_OFFLINE;
		}
	}
	if (!survivor && !lastsrv_exists && first_failed >= 0)
		m[first_failed].state = SLUICE__TARGET_STATE__TS_LASTSRV;
}

static void apply_returns(struct chain_member *m, unsigned n)
{
	bool serving;

	/* The lastsrv member holds the newest data: it serves first when it is back. */
	for (unsigned i = 0; i < n; i++)
		if (m[i].state == SLUICE__TARGET_STATE__TS_LASTSRV && is_up(&m[i]))
			m[i].state = SLUICE__TARGET_STATE__TS_SERVING;
	serving = count_state(m, n, SLUICE__TARGET_STATE__TS_SERVING) > 0;
	for (unsigned i = 0; i < n; i++) {
		if (!is_up(&m[i]))
			continue;
		switch (m[i].state) {
		case SLUICE__TARGET_STATE__TS_OFFLINE:
			m[i].state = SLUICE__TARGET_STATE__TS_WAITING;
			break;
		case SLUICE__TARGET_STATE__TS_SYNCING:
			if (!serving)
				m[i].state = SLUICE__TARGET_STATE__TS_WAITING; /* lost its source */
			else if (m[i].local == SLUICE__LOCAL_STATE__LS_UPTODATE)
				m[i].state = SLUICE__TARGET_STATE__TS_SERVING;
			break;
		default:
			break;
		}
	}
}

static void apply_sync_turn(struct chain_member *m, unsigned n)
{
	if (count_state(m, n, SLUICE__TARGET_STATE__TS_SYNCING) > 0 ||
	    count_state(m, n, SLUICE__TARGET_STATE__TS_SERVING) == 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (m[i].state == SLUICE__TARGET_STATE__TS_WAITING) {
			m[i].state = SLUICE__TARGET_STATE__TS_SYNCING;
			return;
		}
	}
}

static void reorder(struct chain_member *m, unsigned n)
{
	static const Sluice__TargetState order[] = {
		SLUICE__TARGET_STATE__TS_SERVING, SLUICE__TARGET_STATE__TS_SYNCING,
		SLUICE__TARGET_STATE__TS_WAITING, SLUICE__TARGET_STATE__TS_LASTSRV,
		SLUICE__TARGET_STATE__TS_OFFLINE,
	};
	struct chain_member out[SLUICE_CHAIN_LEN_MAX];
	unsigned k = 0;

	for (unsigned o = 0; o < SLUICE_ARRAY_SIZE(order); o++)
		for (unsigned i = 0; i < n; i++)
			if (m[i].state == order[o])
				out[k++] = m[i];
	ASSERT(k == n); /* every state is in the order table */
	memcpy(m, out, n * sizeof(*m));
}

bool chain_rules_apply(struct chain_member *m, unsigned n)
{
	struct chain_member before[SLUICE_CHAIN_LEN_MAX];

	ASSERT(n <= SLUICE_CHAIN_LEN_MAX);
	memcpy(before, m, n * sizeof(*m));
	apply_failures(m, n);
	apply_returns(m, n);
	apply_sync_turn(m, n);
	reorder(m, n);
	return memcmp(before, m, n * sizeof(*m)) != 0;
}

Sluice__TargetState chain_rules_initial(Sluice__LocalState local)
{
	/* A new chain's targets hold no data yet, so every live one is in sync. */
	return local == SLUICE__LOCAL_STATE__LS_OFFLINE ? SLUICE__TARGET_STATE__TS_OFFLINE
							: SLUICE__TARGET_STATE__TS_SERVING;
}
