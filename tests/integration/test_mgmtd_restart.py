#!/usr/bin/env python3
"""test_mgmtd_restart.py - a SIGKILLed mgmtd comes back with the same map and version.

Four fakestor nodes with three targets each, four chains from `chain-table gen`. To have
more than one state on record, s3 is killed (its node down, its targets offline) and s2 is
restarted (its targets syncing or waiting). Then mgmtd is SIGKILLed and restarted on the
same port and data dir. Right after it is ready - long before any lease could run out -
`sluice status` must report the same routing version, and nodes, targets and chains must be
exactly as recorded (states, chain order and versions, incarnations). Afterwards, over more
than a lease, the live nodes keep heartbeating under the same incarnation (no
re-registration, nothing in mgmtd's log), the version does not move, and the map still
works: s2's targets finish syncing when it reports up-to-date.

Usage: test_mgmtd_restart.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

# A lease long enough that "right after the restart" is surely before any expiry, even on a
# loaded machine; mgmtd gives every live node a fresh lease when it loads the map.
LEASE_MS = 3000
CHECK_MS = 100


def comparable(snap):
    """What must survive a restart: everything but heartbeat times and usage numbers."""
    nodes = {i: (n["alive"], n["incarnation"], tuple(n["addrs"])) for i, n in snap.nodes.items()}
    targets = {i: (t["node"], t["state"], t["local_state"], t["chain"], t["path"])
               for i, t in snap.targets.items()}
    chains = {i: (ch["version"], tuple((m["target"], m["state"]) for m in ch["members"]))
              for i, ch in snap.chains.items()}
    return snap.version, nodes, targets, chains


def stable_snapshot(c):
    """A snapshot whose version held for a few heartbeats (nothing in flight)."""
    prev = None
    for _ in range(50):
        s = c.snapshot()
        if prev is not None and s.version == prev.version:
            return s
        prev = s
        time.sleep(3 * c.heartbeat_ms / 1000)
    cluster.fail("routing version never settled")


def test(c):
    c.add_storage(4, targets=3)
    statuses = c.wait_registered()
    c.cli("chain-table", "gen", "--replicas", "3")
    s3_targets = set(statuses["s3"]["targets"].values())
    s2_targets = set(statuses["s2"]["targets"].values())

    c.kill("s3")
    c.wait_until(lambda: all(c.targets()[t]["state"] == "offline" for t in s3_targets),
                 LEASE_MS / 1000 + CHECK_MS / 1000 + 3.0, "targets of s3 offline")
    c.restart("s2")
    c.wait_registered(["s2"])
    c.wait_until(lambda: all(c.targets()[t]["state"] in ("syncing", "waiting")
                             for t in s2_targets), 5, "targets of s2 resyncing")

    before = stable_snapshot(c)
    statuses = c.wait_registered()
    states = sorted(set(t["state"] for t in before.targets.values()))
    log("before: %s; target states %s" % (before, states))
    check(len(states) >= 3, "expected serving, offline and syncing targets: %s" % states)

    c.kill("mgmtd")
    log_offset = c.mgmtd.log_size()
    c.start("mgmtd")
    after = c.snapshot()
    log("after restart: %s" % after)
    check(after.version == before.version, "routing version %d after the restart, was %d" %
          (after.version, before.version))
    b, a = comparable(before), comparable(after)
    for what, i in (("nodes", 1), ("targets", 2), ("chains", 3)):
        for k in sorted(set(b[i]) | set(a[i])):
            check(b[i].get(k) == a[i].get(k), "%s %s: %s before the restart, %s after" %
                  (what, k, b[i].get(k), a[i].get(k)))

    # Over more than a lease: the live nodes heartbeat on, under the same incarnation.
    t_end = time.monotonic() + LEASE_MS / 1000 + 5 * CHECK_MS / 1000
    while time.monotonic() < t_end:
        c.check_daemons()
        time.sleep(0.1)
    now = c.wait_registered()
    for name, st in now.items():
        check(st["incarnation"] == statuses[name]["incarnation"],
              "%s: incarnation %d, was %d: it registered again" %
              (name, st["incarnation"], statuses[name]["incarnation"]))
    later = c.snapshot()
    check(comparable(later) == comparable(before),
          "the map changed after the restart though no node did:\n  before %s\n  after  %s" %
          (before, later))
    registered = [line for line in c.mgmtd.log_since(log_offset) if "registered" in line]
    check(not registered, "nodes registered again after the restart: %s" % registered)
    for name in now:
        nid = now[name]["node_id"]
        check(later.nodes[nid]["alive"], "%s (node %d) not alive" % (name, nid))

    # The restarted mgmtd still runs the chain rules: s2 catches up and serves. Each chain
    # holds at most one of its targets syncing; report up-to-date until all serve.
    c.node("s2").set_local("uptodate")

    def s2_serving():
        t = c.targets()
        return all(t[x]["state"] == "serving" for x in s2_targets)
    c.wait_until(s2_serving, 5, "targets of s2 serving after up-to-date")
    log("s2 serving again after the restart")


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=LEASE_MS, check_interval_ms=CHECK_MS)
