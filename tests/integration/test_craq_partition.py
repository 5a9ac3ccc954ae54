#!/usr/bin/env python3
"""test_craq_partition.py - a real storage daemon of a CRAQ chain cut off by the network.

Needs root and `ip netns` (else exit 77). mgmtd and storage daemons d0, d1 run on the host,
d2 in its own network namespace (reaching mgmtd over a veth pair); one chain d0,d1,d2 with
d2 the tail, since a namespaced daemon cannot reach daemons on the host (see
StorageDaemon in tests/harness/cluster.py). tests/storage/test_craq_client writes whole
chunks through the head ("fill" mode). Setting the veth down drops packets, like a pulled
cable:

  - d2 must log that it fenced itself within lease/2 (+ slack) while its process keeps
    running;
  - mgmtd must mark d2 down and its target offline after the lease, under a new chain
    version with d0 and d1 serving;
  - writes through the head still succeed with the two host members (the chunks written
    before are overwritten and new ones added, so d2 ends up stale and missing chunks);
  - after healing, d2 registers again under a higher incarnation with the same ids, its
    target goes waiting/syncing, d1 resyncs it and it serves again; `sluice chain check`
    must then find the three replicas identical (exit 0).

Usage: test_craq_partition.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

LEASE_MS = 2000  # long enough that ASan daemons on a loaded machine keep theirs
HEARTBEAT_MS = 100
CHECK_MS = 100
SLACK_S = 3.0  # upper bound for scheduling on a loaded machine: catches hangs only
BEFORE_CHUNKS = 20  # written with all three members serving
DURING_CHUNKS = 40  # written during the partition: 20 overwrites, 20 new chunks


def serving(ch):
    return all(m["state"] == "serving" for m in ch["members"])


def fill(c, client, cid, n):
    r = subprocess.run([client, c.mgmtd.uri, str(cid), "fill", str(n)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    log("fill %d exited %d: %s%s" % (n, r.returncode, r.stdout, r.stderr[-2000:]))
    check(r.returncode == 0, "writing %d chunks through the head failed" % n)


def test(c):
    client = os.path.join(c.build, "tests", "storage", "test_craq_client")
    if not os.path.exists(client):
        cluster.skip("%s not built" % client)
    names = c.add_storage_daemons(2, targets=1)
    names += c.add_storage_daemons(1, targets=1, netns=True)
    ns = c.node(names[2])
    sts = c.wait_registered(names, timeout=20)
    tids = [sts[n]["targets"][0] for n in names]
    nid, tid = sts[ns.name]["node_id"], tids[2]
    check(ns.addr.startswith("tcp://%s:" % ns.ns_ip) and
          c.nodes()[nid]["addrs"] == [ns.addr],
          "%s registered %s, expected its namespace address %s" %
          (ns.name, c.nodes()[nid]["addrs"], ns.addr))
    c.cli("chain-table", "set", "--chain", ",".join(str(t) for t in tids))
    chain = c.wait_until(lambda: next((ch for ch in c.chains().values()
                                       if [m["target"] for m in ch["members"]] == tids and
                                       serving(ch)), None),
                         20, "the chain %s serving" % tids)
    cid = chain["id"]
    # The client retries routing errors, but a daemon on an old table would also keep the
    # first writes waiting: let every daemon fetch the chain first.
    c.wait_until(lambda: all("1 with local targets" in open(c.node(n).log_path).read()
                             for n in names) or None, 10, "daemons fetched the chain")
    fill(c, client, cid, BEFORE_CHUNKS)
    r = c.cli("chain", "check", cid, check=False)
    check(r.returncode == 0, "replicas differ before the partition (exit %d): %s%s" %
          (r.returncode, r.stdout, r.stderr))
    before = c.snapshot()
    log("before: %s" % before)

    # Partition: d2 fences itself, mgmtd takes its target offline, the chain goes on.
    off = ns.log_size()
    t0 = time.monotonic()
    c.partition(ns.name)
    c.wait_until(lambda: any("fenced: no mgmtd lease" in line for line in ns.log_since(off)),
                 LEASE_MS / 2000 + SLACK_S, "%s logging that it fenced itself" % ns.name,
                 state=lambda: ns.log_since(off)[-5:])
    log("%s fenced %.2fs after the cut (lease/2 = %d ms)" %
        (ns.name, time.monotonic() - t0, LEASE_MS // 2))

    def cut_off():
        s = c.snapshot()
        return s if s.targets[tid]["state"] == "offline" and not s.nodes[nid]["alive"] else None
    cut = c.wait_until(cut_off, LEASE_MS / 1000 + CHECK_MS / 1000 + SLACK_S,
                       "mgmtd marking %s down and its target offline" % ns.name)
    log("%s down at mgmtd %.2fs after the cut: %s" % (ns.name, time.monotonic() - t0, cut))
    check(ns.running(), "%s exited during the partition" % ns.name)
    check(cut.chains[cid]["version"] > before.chains[cid]["version"],
          "chain %d version did not grow: %s" % (cid, cut))
    check(cut.members(cid) == [(tids[0], "serving"), (tids[1], "serving"), (tid, "offline")],
          "chain %d should go on with %s serving and %d offline: %s" % (cid, tids[:2], tid, cut))
    fill(c, client, cid, DURING_CHUNKS)
    check(ns.running(), "%s exited during the partition" % ns.name)

    # Heal: d2 registers again, d1 resyncs its target, the replicas are identical.
    host_off = {n: c.node(n).log_size() for n in names[:2]}
    ns_off = ns.log_size()
    c.heal(ns.name)
    new = c.wait_until(lambda: (lambda s: s if s and s["incarnation"] >
                                sts[ns.name]["incarnation"] else None)(ns.registered()),
                       LEASE_MS / 1000 + SLACK_S + 5, "%s registered again after the heal" %
                       ns.name, state=ns.status)
    check(new["node_id"] == nid and new["targets"] == sts[ns.name]["targets"],
          "%s came back with other ids: %s, was %s" % (ns.name, new, sts[ns.name]))
    seen = []

    def back():
        s = c.snapshot()
        state = s.targets[tid]["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return s if serving(s.chains[cid]) else None
    s = c.wait_until(back, 60, "chain %d serving again after the resync" % cid)
    log("healed: incarnation %d -> %d; target %d went %s; %s" %
        (sts[ns.name]["incarnation"], new["incarnation"], tid, " -> ".join(seen), s))
    check(s.nodes[nid]["alive"] and s.nodes[nid]["incarnation"] == new["incarnation"],
          "mgmtd has %s as %s, expected incarnation %d" % (ns.name, s.nodes[nid],
                                                           new["incarnation"]))
    check(s.members(cid)[-1][0] == tid, "target %d is not the tail again: %s" % (tid, s))
    # The target must have been syncing, not straight back to serving (polling may miss
    # a short resync): d1 starts a resync only when its routing table has its successor
    # syncing, and it must have reached it at its namespace address and finished.
    d1_log = c.node(names[1]).log_since(host_off[names[1]])
    started = [line for line in d1_log
               if "resync of target %d (%s) from %d starts" % (tid, ns.addr, tids[1]) in line]
    done = [line for line in d1_log
            if "resync of target %d from %d" % (tid, tids[1]) in line and ") done:" in line]
    for line in started + done:
        log("%s: %s" % (names[1], line))
    check(started and done, "no started and finished resync of target %d at %s by %s in "
          "its log" % (tid, ns.addr, names[1]))
    check(any("lease held" in line for line in ns.log_since(ns_off)),
          "%s never logged holding a lease again" % ns.name)
    r = c.cli("chain", "check", cid, check=False)
    log("sluice chain check %d:\n%s%s" % (cid, r.stdout, r.stderr))
    check(r.returncode == 0, "replicas differ after the resync (exit %d)" % r.returncode)
    c.check_daemons()


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=HEARTBEAT_MS, lease_ms=LEASE_MS,
                 check_interval_ms=CHECK_MS, netns=True)
