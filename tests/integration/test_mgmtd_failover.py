#!/usr/bin/env python3
"""test_mgmtd_failover.py - a storage node fails and returns; its chains follow the rules.

Six fakestor nodes with one target each; `sluice chain-table gen --replicas 3` must print
its balance summary and create two chains of three serving targets on distinct nodes.

 1. SIGKILL one node: within lease + check interval (+ slack) mgmtd marks the node down and
    its target offline; every chain holding it got a higher version with the offline
    target last; other chains are untouched.
 2. Restart it (it reports online): its target resyncs (waiting, then syncing right
    behind the serving members); once it reports up-to-date it serves again.
 3. Kill two nodes of one chain, bring both back: one syncs while the other waits - never
    two syncing in that chain at any poll - then the other syncs, then all serve.

Usage: test_mgmtd_failover.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

LEASE_MS = 1000
CHECK_MS = 100
SLACK_S = 3.0  # upper bound for scheduling on a loaded machine: catches hangs only


def node_of_target(c, statuses, tid):
    return next(n for n, st in statuses.items() if tid in st["targets"].values())


def states(snap, chain_id):
    return [s for _, s in snap.members(chain_id)]


def gen_table(c):
    r = c.cli("chain-table", "gen", "--replicas", "3")
    out = r.stdout
    log("chain-table gen printed:\n" + out.rstrip())
    check(re.search(r"chains per node: min \d+ max \d+", out),
          "no balance summary in the output of chain-table gen:\n" + out)
    check(re.search(r"chain table \d+ set: 2 chains", out),
          "chain-table gen did not report setting 2 chains:\n" + out)
    snap = c.snapshot()
    check(len(snap.chains) == 2, "expected 2 chains, have %s" % snap)
    used = set()
    for cid, ch in snap.chains.items():
        nodes = [m["node"] for m in ch["members"]]
        check(len(nodes) == 3 and len(set(nodes)) == 3,
              "chain %d: members not on 3 distinct nodes: %s" % (cid, ch["members"]))
        check(states(snap, cid) == ["serving"] * 3, "chain %d not all serving: %s" %
              (cid, snap))
        used |= {m["target"] for m in ch["members"]}
    check(len(used) == 6, "chains use %d targets, expected all 6" % len(used))
    return snap


def fail_one(c, statuses, before):
    # The head of the first chain: its failure must also move it from head to tail.
    cid = min(before.chains)
    tid = before.members(cid)[0][0]
    name = node_of_target(c, statuses, tid)
    nid = statuses[name]["node_id"]
    log("killing %s (node %d, target %d, head of chain %d)" % (name, nid, tid, cid))
    t0 = time.monotonic()
    c.kill(name)

    def failed():
        s = c.snapshot()
        return s if (s.targets[tid]["state"] == "offline" and
                     not s.nodes[nid]["alive"]) else None
    after = c.wait_until(failed, LEASE_MS / 1000 + CHECK_MS / 1000 + SLACK_S,
                         "target %d offline after SIGKILL of %s" % (tid, name))
    log("target %d offline %.2fs after the kill (lease %d ms)" %
        (tid, time.monotonic() - t0, LEASE_MS))
    for ch in before.chains:
        if ch in after.chains_of([tid]):
            check(after.chains[ch]["version"] > before.chains[ch]["version"],
                  "chain %d version %d did not grow past %d" %
                  (ch, after.chains[ch]["version"], before.chains[ch]["version"]))
            check(after.members(ch)[-1] == (tid, "offline"),
                  "chain %d: offline target %d is not last: %s" % (ch, tid, after))
            check(states(after, ch) == ["serving", "serving", "offline"],
                  "chain %d: expected serving, serving, offline: %s" % (ch, after))
        else:
            check(after.chains[ch] == before.chains[ch],
                  "chain %d changed though it does not hold target %d: %s" % (ch, tid, after))
    return name, tid, cid


def bring_back(c, name, tid, cid):
    c.start(name)
    c.wait_registered([name])
    snap = c.wait_until(lambda: (lambda s: s if s.targets[tid]["state"] == "syncing" else None)(
        c.snapshot()), 5, "target %d syncing after %s came back" % (tid, name))
    check(snap.members(cid)[-1] == (tid, "syncing") and
          states(snap, cid) == ["serving", "serving", "syncing"],
          "chain %d: expected serving, serving, then syncing %d: %s" % (cid, tid, snap))
    c.node(name).set_local("uptodate")
    c.wait_until(lambda: states(c.snapshot(), cid) == ["serving"] * 3, 5,
                 "chain %d all serving after %s reported up-to-date" % (cid, name))
    log("%s: target %d serving again" % (name, tid))


def two_in_one_chain(c, statuses, snap):
    cid = max(snap.chains)
    tids = [t for t, _ in snap.members(cid)[1:]]  # leave the head serving
    names = [node_of_target(c, statuses, t) for t in tids]
    log("killing %s (targets %s of chain %d)" % (names, tids, cid))
    for n in names:
        c.kill(n)
    c.wait_until(lambda: (lambda s: all(s.targets[t]["state"] == "offline" for t in tids))(
        c.snapshot()), LEASE_MS / 1000 + CHECK_MS / 1000 + SLACK_S,
        "targets %s offline" % tids)
    for n in names:
        c.start(n)
    c.wait_registered(names)

    # Poll until all serve; at no poll may two members of the chain sync at once. Each
    # syncing member is told it is up to date only once it syncs (never before: see the
    # README of tests/harness on reporting up-to-date early).
    seen = []
    deadline = time.monotonic() + 15
    told = set()
    while True:
        c.check_daemons()
        ch = c.chains()[cid]
        st = {m["target"]: m["state"] for m in ch["members"]}
        seen.append(tuple(st[t] for t in tids))
        syncing = [t for t in tids if st[t] == "syncing"]
        check(len(syncing) <= 1, "chain %d has %d syncing members: %s" %
              (cid, len(syncing), ch["members"]))
        if all(st[t] == "serving" for t in tids):
            break
        check(time.monotonic() < deadline, "chain %d not all serving after 15 s; states "
              "seen (targets %s): %s" % (cid, tids, seen[-10:]))
        for t in syncing:
            if t not in told:
                # Both heartbeat by now (wait_registered): the other waits its turn.
                other = [u for u in tids if u != t][0]
                check(st[other] in ("waiting", "serving"), "target %d is %s while %d syncs" %
                      (other, st[other], t))
                told.add(t)
                c.node(node_of_target(c, statuses, t)).set_local("uptodate")
        time.sleep(0.05)
    check(told == set(tids), "not every returning target synced: told %s" % told)
    check(any("waiting" in s for s in seen), "never saw a target waiting: %s" % seen)
    log("chain %d: %d polls, at most one syncing; states seen %s" %
        (cid, len(seen), sorted(set(seen))))


def test(c):
    c.add_storage(6, targets=1)
    statuses = c.wait_registered()
    snap = gen_table(c)
    name, tid, cid = fail_one(c, statuses, snap)
    bring_back(c, name, tid, cid)
    statuses = c.wait_registered()
    two_in_one_chain(c, statuses, c.snapshot())


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=LEASE_MS, check_interval_ms=CHECK_MS)
