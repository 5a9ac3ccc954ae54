#!/usr/bin/env python3
"""test_mgmtd_lastsrv.py - every member of a chain fails; the last serving one returns first.

Three fakestor nodes, one chain of their three targets set explicitly with `sluice
chain-table set --chain T0,T1,T2`. The members are killed one at a time, each kill awaited:
the last one killed must end as lastsrv, the two others offline. A non-lastsrv member that
comes back must wait (nobody serves, so nobody can feed it) for as long as the lastsrv is
away. When the lastsrv returns it serves at once and the waiting member syncs; the third
member then waits its turn, and all serve in the end.

Usage: test_mgmtd_lastsrv.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

LEASE_MS = 1000
CHECK_MS = 100
FAIL_WAIT_S = LEASE_MS / 1000 + CHECK_MS / 1000 + 3.0  # upper bound: catches hangs only


def test(c):
    names = c.add_storage(3, targets=1)
    statuses = c.wait_registered()
    tid = {n: statuses[n]["targets"][0] for n in names}
    c.cli("chain-table", "set", "--chain", ",".join(str(tid[n]) for n in names))
    snap = c.snapshot()
    check(len(snap.chains) == 1, "expected one chain: %s" % snap)
    cid = next(iter(snap.chains))
    check(snap.members(cid) == [(tid[n], "serving") for n in names],
          "chain %d not in the order set, all serving: %s" % (cid, snap))

    def state_of(s, n):
        return s.targets[tid[n]]["state"]

    # Kill s0, s1, s2 in turn; s2, the last one serving, becomes lastsrv.
    for i, n in enumerate(names):
        c.kill(n)
        want = "lastsrv" if i == 2 else "offline"
        s = c.wait_until(lambda: (lambda s: s if state_of(s, n) == want else None)(
            c.snapshot()), FAIL_WAIT_S, "target %d of %s %s" % (tid[n], n, want))
        log("%s killed: %s" % (n, s))
    check([state_of(s, n) for n in names] == ["offline", "offline", "lastsrv"],
          "expected s0, s1 offline and s2 lastsrv: %s" % s)
    check(s.members(cid)[0] == (tid["s2"], "lastsrv"),
          "lastsrv target %d is not ahead of the offline ones: %s" % (tid["s2"], s))
    check(s.chains[cid]["health"] == "offline", "chain health %r, expected offline" %
          s.chains[cid]["health"])

    # s0 returns first: it must wait, and keep waiting while the lastsrv is away.
    c.start("s0")
    c.wait_registered(["s0"])
    c.wait_until(lambda: state_of(c.snapshot(), "s0") == "waiting", 5,
                 "target %d of s0 waiting" % tid["s0"])
    end = time.monotonic() + max(1.0, 5 * c.heartbeat_ms / 1000 + 2 * CHECK_MS / 1000)
    polls = 0
    while time.monotonic() < end:
        s = c.snapshot()
        polls += 1
        check([state_of(s, n) for n in names] == ["waiting", "offline", "lastsrv"],
              "with the lastsrv away, expected s0 waiting, s1 offline, s2 lastsrv: %s" % s)
        time.sleep(0.1)
    log("s0 kept waiting over %d polls: %s" % (polls, s))

    # The lastsrv returns: it serves, s0 syncs from it.
    c.start("s2")
    c.wait_registered(["s2"])
    s = c.wait_until(lambda: (lambda s: s if state_of(s, "s2") == "serving" else None)(
        c.snapshot()), 5, "lastsrv target %d serving again" % tid["s2"])
    s = c.wait_until(lambda: (lambda s: s if state_of(s, "s0") == "syncing" else None)(
        c.snapshot()), 5, "target %d of s0 syncing" % tid["s0"])
    check(s.members(cid) == [(tid["s2"], "serving"), (tid["s0"], "syncing"),
                             (tid["s1"], "offline")],
          "expected s2 serving, s0 syncing, s1 offline in that order: %s" % s)
    log("lastsrv back: %s" % s)

    # s1 returns while s0 syncs: it waits its turn.
    c.start("s1")
    c.wait_registered(["s1"])
    s = c.wait_until(lambda: (lambda s: s if state_of(s, "s1") == "waiting" else None)(
        c.snapshot()), 5, "target %d of s1 waiting" % tid["s1"])
    check(state_of(s, "s0") == "syncing", "s0 stopped syncing: %s" % s)
    c.node("s0").set_local("uptodate")
    s = c.wait_until(lambda: (lambda s: s if state_of(s, "s1") == "syncing" else None)(
        c.snapshot()), 5, "target %d of s1 syncing after s0 caught up" % tid["s1"])
    check(state_of(s, "s0") == "serving", "s0 not serving after up-to-date: %s" % s)
    c.node("s1").set_local("uptodate")
    s = c.wait_until(lambda: (lambda s: s if all(state_of(s, n) == "serving" for n in names)
                              else None)(c.snapshot()), 5, "all three serving")
    check(s.chains[cid]["health"] == "healthy", "chain health %r, expected healthy" %
          s.chains[cid]["health"])
    log("all serving: %s" % s)


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=LEASE_MS, check_interval_ms=CHECK_MS)
