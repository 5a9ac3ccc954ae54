/*
 * test_chain_rules.c - the chain state machine, rule by rule, and whole failure and
 * recovery sequences of a 3-member chain.
 */
#include <stdio.h>
#include <string.h>

#include "mgmtd/chain_rules.h"
#include "tests/lib/testlib.h"

#define SV    SLUICE__TARGET_STATE__TS_SERVING
#define SY    SLUICE__TARGET_STATE__TS_SYNCING
#define WA    SLUICE__TARGET_STATE__TS_WAITING
#define LS    SLUICE__TARGET_STATE__TS_LASTSRV
#define OF    SLUICE__TARGET_STATE__TS_OFFLINE
#define L_OFF SLUICE__LOCAL_STATE__LS_OFFLINE
#define L_ON  SLUICE__LOCAL_STATE__LS_ONLINE
#define L_UP  SLUICE__LOCAL_STATE__LS_UPTODATE

static struct chain_member c[3];

static void init3(void)
{
	for (unsigned i = 0; i < 3; i++)
		c[i] = (struct chain_member){101 + i, SV, L_UP};
}

static void set_local(uint64_t id, Sluice__LocalState l)
{
	for (unsigned i = 0; i < 3; i++)
		if (c[i].target_id == id)
			c[i].local = l;
}

/* Expect order and states, e.g. expect(101, SV, 103, SV, 102, OF). */
static void expect(int line, uint64_t a, int sa, uint64_t b, int sb, uint64_t d, int sd)
{
	if (c[0].target_id != a || (int)c[0].state != sa || c[1].target_id != b ||
	    (int)c[1].state != sb || c[2].target_id != d || (int)c[2].state != sd) {
		fprintf(stderr, "line %d: got %llu:%s %llu:%s %llu:%s\n", line,
			(unsigned long long)c[0].target_id, mgmt_target_state_name(c[0].state),
			(unsigned long long)c[1].target_id, mgmt_target_state_name(c[1].state),
			(unsigned long long)c[2].target_id, mgmt_target_state_name(c[2].state));
		test_failures++;
	}
}
#define EXPECT(...) expect(__LINE__, __VA_ARGS__)

static void test_middle_fails_and_returns(void)
{
	init3();
	CHECK(!chain_rules_apply(c, 3)); /* steady state: nothing changes */
	set_local(102, L_OFF);
	CHECK(chain_rules_apply(c, 3));
	EXPECT(101, SV, 103, SV, 102, OF); /* offline moves to the end */
	set_local(102, L_ON);
	CHECK(chain_rules_apply(c, 3));
	EXPECT(101, SV, 103, SV, 102, SY); /* back: waiting, and at once the one syncing */
	CHECK(!chain_rules_apply(c, 3));
	set_local(102, L_UP);
	CHECK(chain_rules_apply(c, 3));
	EXPECT(101, SV, 103, SV, 102, SV);
}

static void test_uptodate_claim_after_offline_still_syncs(void)
{
	init3();
	set_local(101, L_OFF);
	chain_rules_apply(c, 3);
	EXPECT(102, SV, 103, SV, 101, OF);
	set_local(101, L_UP); /* claims up to date: it missed writes, so it syncs anyway */
	chain_rules_apply(c, 3);
	EXPECT(102, SV, 103, SV, 101, SY);
	chain_rules_apply(c, 3);
	EXPECT(102, SV, 103, SV, 101, SV); /* and only then serves */
}

static void test_one_syncing_at_a_time(void)
{
	init3();
	set_local(102, L_OFF);
	set_local(103, L_OFF);
	chain_rules_apply(c, 3);
	EXPECT(101, SV, 102, OF, 103, OF);
	set_local(102, L_ON);
	set_local(103, L_ON);
	chain_rules_apply(c, 3);
	EXPECT(101, SV, 102, SY, 103, WA);
	set_local(102, L_UP);
	chain_rules_apply(c, 3);
	EXPECT(101, SV, 102, SV, 103, SY);
	set_local(103, L_UP);
	chain_rules_apply(c, 3);
	EXPECT(101, SV, 102, SV, 103, SV);
}

static void test_all_fail_lastsrv(void)
{
	init3();
	set_local(102, L_OFF);
	chain_rules_apply(c, 3);
	set_local(101, L_OFF);
	chain_rules_apply(c, 3);
	EXPECT(103, SV, 101, OF, 102, OF);
	set_local(103, L_OFF);
	chain_rules_apply(c, 3);
	EXPECT(103, LS, 101, OF, 102, OF); /* the last serving one */
	/* others come back first: they wait, nobody can sync them */
	set_local(101, L_ON);
	set_local(102, L_ON);
	chain_rules_apply(c, 3);
	EXPECT(101, WA, 102, WA, 103, LS);
	CHECK(!chain_rules_apply(c, 3));
	/* the lastsrv returns: it serves, then the others sync one by one */
	set_local(103, L_ON);
	chain_rules_apply(c, 3);
	EXPECT(103, SV, 101, SY, 102, WA);
}

static void test_simultaneous_failure_picks_first(void)
{
	init3();
	set_local(101, L_OFF);
	set_local(102, L_OFF);
	set_local(103, L_OFF);
	chain_rules_apply(c, 3);
	EXPECT(101, LS, 102, OF, 103, OF);
}

static void test_syncing_loses_source(void)
{
	init3();
	set_local(103, L_OFF);
	chain_rules_apply(c, 3);
	set_local(103, L_ON);
	chain_rules_apply(c, 3);
	EXPECT(101, SV, 102, SV, 103, SY);
	set_local(101, L_OFF);
	set_local(102, L_OFF);
	chain_rules_apply(c, 3);
	EXPECT(103, WA, 101, LS, 102, OF); /* a syncing target is never the last server */
}

int main(void)
{
	test_middle_fails_and_returns();
	test_uptodate_claim_after_offline_still_syncs();
	test_one_syncing_at_a_time();
	test_all_fail_lastsrv();
	test_simultaneous_failure_picks_first();
	test_syncing_loses_source();
	CHECK(chain_rules_initial(L_OFF) == OF && chain_rules_initial(L_ON) == SV);
	return test_result();
}
