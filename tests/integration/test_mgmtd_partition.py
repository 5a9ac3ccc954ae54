#!/usr/bin/env python3
"""test_mgmtd_partition.py - a storage node cut off by the network, then healed.

Needs root and `ip netns` (else exit 77). Nodes s0 and s1 run on the host, s2 in its own
network namespace, reaching mgmtd over a veth pair; one chain over their three targets.
Setting the veth down drops packets (no refusal, no reset), like a pulled cable:

  - s2 must fence itself within lease/2 (+ slack) while its process keeps running;
  - mgmtd must mark s2 down and its target offline after the lease; the chain goes on
    with s0 and s1 serving and the offline target moved last under a new chain version;
  - after healing, s2's heartbeat is refused (its lease is gone), it registers again under
    a higher incarnation with the same ids, unfences, and its target resyncs (syncing,
    then serving once it reports up-to-date).

Usage: test_mgmtd_partition.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

LEASE_MS = 1000
CHECK_MS = 100
SLACK_S = 3.0  # upper bound for scheduling on a loaded machine: catches hangs only


def test(c):
    c.add_storage(2, targets=1)
    c.add_storage(1, targets=1, netns=True)
    statuses = c.wait_registered()
    c.cli("chain-table", "gen", "--replicas", "3")
    before = c.snapshot()
    cid = next(iter(before.chains))
    st = statuses["s2"]
    nid, tid = st["node_id"], st["targets"][0]
    check(before.nodes[nid]["addrs"] == [c.node("s2").addr],
          "s2 registered %s, expected its namespace address %s" %
          (before.nodes[nid]["addrs"], c.node("s2").addr))
    log("before: %s" % before)

    t0 = time.monotonic()
    c.partition("s2")
    c.wait_until(lambda: (c.node("s2").status() or {}).get("fenced") == 1,
                 LEASE_MS / 2000 + SLACK_S, "s2 fenced after the partition",
                 state=lambda: c.node("s2").status())
    log("s2 fenced %.2fs after the cut (lease/2 = %d ms)" % (time.monotonic() - t0,
                                                             LEASE_MS // 2))

    def failed():
        s = c.snapshot()
        return s if s.targets[tid]["state"] == "offline" and not s.nodes[nid]["alive"] else None
    cut = c.wait_until(failed, LEASE_MS / 1000 + CHECK_MS / 1000 + SLACK_S,
                       "mgmtd marking s2 down and its target offline")
    log("s2 down at mgmtd %.2fs after the cut: %s" % (time.monotonic() - t0, cut))
    check(c.node("s2").running(), "s2 exited during the partition")
    check(cut.chains[cid]["version"] > before.chains[cid]["version"],
          "chain %d version did not grow: %s" % (cid, cut))
    check([s for _, s in cut.members(cid)] == ["serving", "serving", "offline"] and
          cut.members(cid)[-1][0] == tid,
          "chain %d should go on with two serving and target %d last: %s" % (cid, tid, cut))

    c.heal("s2")
    new = c.wait_until(lambda: (lambda s: s if s and s["incarnation"] > st["incarnation"]
                                else None)(c.node("s2").registered()),
                       10, "s2 registered again after the heal",
                       state=lambda: c.node("s2").status())
    check(new["node_id"] == nid and new["targets"] == st["targets"],
          "s2 came back with other ids: %s, was %s" % (new, st))
    s = c.wait_until(lambda: (lambda s: s if s.targets[tid]["state"] in ("waiting", "syncing")
                              else None)(c.snapshot()), 5, "s2's target resyncing")
    log("healed: incarnation %d -> %d; %s" % (st["incarnation"], new["incarnation"], s))
    check(s.nodes[nid]["alive"] and s.nodes[nid]["incarnation"] == new["incarnation"],
          "mgmtd has s2 as %s, the node says incarnation %d" % (s.nodes[nid], new["incarnation"]))
    c.wait_until(lambda: c.targets()[tid]["state"] == "syncing", 5, "s2's target syncing")
    c.node("s2").set_local("uptodate")
    c.wait_until(lambda: [x for _, x in c.snapshot().members(cid)] == ["serving"] * 3, 5,
                 "chain %d serving fully again" % cid)


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=LEASE_MS, check_interval_ms=CHECK_MS,
                 netns=True)
