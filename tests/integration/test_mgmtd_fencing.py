#!/usr/bin/env python3
"""test_mgmtd_fencing.py - nodes that cannot reach mgmtd fence themselves, and recover.

Three fakestor nodes in one chain. mgmtd is frozen with SIGSTOP (its socket stays open, so
heartbeats time out rather than being refused - the same as a partition).

 1. A short outage: every node must report "fenced 1" within lease/2 (+ slack). mgmtd is
    thawed (SIGCONT) as soon as they all did, well before the lease runs out at mgmtd:
    every node must unfence under the same incarnation and the map must be unchanged.
 2. An outage longer than the lease: the nodes fence again; after SIGCONT they must
    unfence, alive at mgmtd under the incarnation their status file shows. Whether mgmtd
    expired a lease first or took a queued heartbeat first is up to the order in which it
    sees the timer and the sockets; for every lease mgmtd logs as expired, a node must
    have registered again with a higher incarnation. Then the chain recovers to all serving.
 3. The other way round: one node frozen (SIGSTOP) until mgmtd expired it. Thawed, it
    must find its heartbeat refused, register again under a higher incarnation, unfence;
    its target resyncs and the chain serves fully again.

Usage: test_mgmtd_fencing.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

# Long enough that phase 1 thaws mgmtd with a wide margin before it would expire anyone.
LEASE_MS = 3000
CHECK_MS = 100
SLACK_S = 2.0  # upper bound for scheduling on a loaded machine: catches hangs only


def all_fenced(c, names, want):
    sts = {n: c.node(n).status() for n in names}
    return sts if all(s and s["fenced"] == want for s in sts.values()) else None


def outage(c, names, hold_s):
    """SIGSTOP mgmtd until every node fenced and at least hold_s passed; SIGCONT. Returns
    how long mgmtd was stopped."""
    t0 = time.monotonic()
    c.kill("mgmtd", signal.SIGSTOP)
    try:
        c.wait_until(lambda: all_fenced(c, names, 1), LEASE_MS / 2000 + SLACK_S,
                     "all nodes fenced with mgmtd stopped",
                     state=lambda: {n: c.node(n).status() for n in names})
        log("all fenced %.2fs after SIGSTOP (lease/2 = %d ms)" %
            (time.monotonic() - t0, LEASE_MS // 2))
        while time.monotonic() - t0 < hold_s:
            time.sleep(0.05)
    finally:
        c.kill("mgmtd", signal.SIGCONT)
    return time.monotonic() - t0


def chain_all_serving(c, names):
    """Tell syncing members they are up to date until the chain serves fully."""
    def step():
        t = c.targets()
        for n in names:
            tid = c.node(n).status()["targets"][0]
            if t[tid]["state"] == "syncing":
                c.node(n).set_local("uptodate")
        return all(x["state"] == "serving" for x in t.values())
    c.wait_until(step, 10, "the chain serving fully again", interval=0.1)
    for n in names:
        c.node(n).set_local("online")


def test(c):
    names = c.add_storage(3, targets=1)
    c.wait_registered()
    c.cli("chain-table", "gen", "--replicas", "3")
    before = c.snapshot()
    incs = {n: c.node(n).status()["incarnation"] for n in names}

    # 1. Short outage.
    stopped = outage(c, names, 0)
    log("mgmtd stopped for %.2fs" % stopped)
    sts = c.wait_until(lambda: all_fenced(c, names, 0), 5, "all nodes unfenced after SIGCONT")
    after = c.snapshot()
    if stopped < LEASE_MS / 1000 - 1.0:
        for n in names:
            check(sts[n]["incarnation"] == incs[n], "%s: incarnation %d after a short outage, "
                  "was %d" % (n, sts[n]["incarnation"], incs[n]))
        check(after.version == before.version and after.chains == before.chains,
              "the map changed over a short outage:\n  before %s\n  after  %s" %
              (before, after))
    else:
        log("machine too slow: mgmtd was stopped %.2fs, too close to the %d ms lease to "
            "expect the same incarnations" % (stopped, LEASE_MS))

    # 2. Outage longer than the lease.
    incs = {n: sts[n]["incarnation"] for n in names}
    offset = c.mgmtd.log_size()
    stopped = outage(c, names, LEASE_MS / 1000 + 5 * CHECK_MS / 1000)
    log("mgmtd stopped for %.2fs" % stopped)

    def recovered():
        sts = all_fenced(c, names, 0)
        if not sts:
            return None
        snap = c.snapshot()
        for s in sts.values():
            n = snap.nodes.get(s["node_id"])
            if not n or not n["alive"] or n["incarnation"] != s["incarnation"]:
                return None
        return sts, snap
    sts, snap = c.wait_until(recovered, 10, "all nodes unfenced and alive after SIGCONT")
    expired = sum(int(m.group(1)) for m in
                  (re.search(r"(\d+) node\(s\) lost their lease", line)
                   for line in c.mgmtd.log_since(offset)) if m)
    bumped = [n for n in names if sts[n]["incarnation"] > incs[n]]
    log("after the long outage: %d lease(s) expired at mgmtd, re-registered: %s; %s" %
        (expired, bumped, snap))
    check(len(bumped) >= expired, "mgmtd expired %d leases but only %s registered again" %
          (expired, bumped))
    for n in names:
        check(sts[n]["incarnation"] >= incs[n], "%s: incarnation went back from %d to %d" %
              (n, incs[n], sts[n]["incarnation"]))
    chain_all_serving(c, names)

    # 3. A node frozen past its lease while mgmtd runs: mgmtd surely expires it, and once
    # thawed the node must learn that (its heartbeat is refused), register again under a
    # higher incarnation and unfence.
    victim = names[1]
    st = c.node(victim).status()
    c.kill(victim, signal.SIGSTOP)
    try:
        c.wait_until(lambda: not c.nodes()[st["node_id"]]["alive"],
                     LEASE_MS / 1000 + CHECK_MS / 1000 + SLACK_S,
                     "mgmtd to expire the frozen %s" % victim)
    finally:
        c.kill(victim, signal.SIGCONT)
    new = c.wait_until(lambda: (lambda s: s if s and s["incarnation"] > st["incarnation"]
                                else None)(c.node(victim).registered()),
                       5, "%s registered again after its lease expired" % victim)
    check(new["node_id"] == st["node_id"], "%s came back as node %d, was %d" %
          (victim, new["node_id"], st["node_id"]))
    info = c.nodes()[st["node_id"]]
    check(info["alive"] and info["incarnation"] == new["incarnation"],
          "mgmtd has node %d alive=%s incarnation %d; the node says %d" %
          (st["node_id"], info["alive"], info["incarnation"], new["incarnation"]))
    log("%s thawed: incarnation %d -> %d" % (victim, st["incarnation"], new["incarnation"]))
    chain_all_serving(c, names)


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=LEASE_MS, check_interval_ms=CHECK_MS)
