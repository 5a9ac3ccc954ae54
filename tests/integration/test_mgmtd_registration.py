#!/usr/bin/env python3
"""test_mgmtd_registration.py - storage nodes register with mgmtd and keep their ids.

Five fakestor nodes with two targets each register; `sluice node list` must show five
alive storage nodes under their own addresses and `sluice target list` ten targets, with
the ids each node persisted (its status file) matching mgmtd's. A node restarted after
SIGKILL, and another after SIGTERM, must come back under the same node id and target ids
(read back from its ids file) with a new, higher incarnation, and without adding a node.

Usage: test_mgmtd_registration.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

NODES = 5
TARGETS = 2


def check_map(c, statuses):
    """mgmtd's map agrees with what every node persisted and reports."""
    snap = c.snapshot()
    storage = [n for n in snap.nodes.values() if n["type"] == "storage"]
    check(len(snap.nodes) == NODES, "%d nodes, expected %d: %s" %
          (len(snap.nodes), NODES, sorted(snap.nodes)))
    check(len(storage) == NODES and all(n["alive"] for n in storage),
          "not %d alive storage nodes: %s" % (NODES, snap.nodes))
    check(len(snap.targets) == NODES * TARGETS, "%d targets, expected %d" %
          (len(snap.targets), NODES * TARGETS))
    seen_nodes, seen_targets = set(), set()
    for name, st in statuses.items():
        node = c.node(name)
        nid = st["node_id"]
        check(nid in snap.nodes, "%s: node id %d unknown to mgmtd" % (name, nid))
        check(nid not in seen_nodes, "node id %d used twice" % nid)
        seen_nodes.add(nid)
        info = snap.nodes[nid]
        check(info["addrs"] == [node.addr], "%s: mgmtd has addrs %s, expected [%s]" %
              (name, info["addrs"], node.addr))
        check(info["incarnation"] == st["incarnation"],
              "%s: incarnation %d at mgmtd, %d in the status file" %
              (name, info["incarnation"], st["incarnation"]))
        for idx, tid in st["targets"].items():
            check(tid in snap.targets, "%s: target id %d unknown to mgmtd" % (name, tid))
            check(tid not in seen_targets, "target id %d used twice" % tid)
            seen_targets.add(tid)
            t = snap.targets[tid]
            check(t["node"] == nid, "target %d: node %d, expected %d" % (tid, t["node"], nid))
            want_path = os.path.join(node.state_dir, "t%d" % idx)
            check(t["path"] == want_path, "target %d: path %r, expected %r" %
                  (tid, t["path"], want_path))
            # In no chain, a target's public state mirrors its node's report (online).
            check(t["local_state"] == "online" and t["state"] == "serving",
                  "target %d: %s/%s, expected serving/online" %
                  (tid, t["state"], t["local_state"]))
    return snap


def restart_same_ids(c, name, sig, statuses):
    before = statuses[name]
    c.restart(name, sig=sig)
    st = c.wait_until(lambda: (lambda s: s if s and s["incarnation"] != before["incarnation"]
                               else None)(c.node(name).registered()),
                      10, "%s registered again after signal %d" % (name, sig))
    check(st["node_id"] == before["node_id"], "%s came back as node %d, was %d" %
          (name, st["node_id"], before["node_id"]))
    check(st["targets"] == before["targets"], "%s came back with targets %s, were %s" %
          (name, st["targets"], before["targets"]))
    check(st["incarnation"] > before["incarnation"], "%s: incarnation %d after %d" %
          (name, st["incarnation"], before["incarnation"]))
    with open(os.path.join(c.node(name).state_dir, "node.ids")) as f:
        ids = f.read()
    check("node_id %d\n" % st["node_id"] in ids, "%s: node.ids lacks its node id: %r" %
          (name, ids))
    log("%s back as node %d incarnation %d" % (name, st["node_id"], st["incarnation"]))
    statuses[name] = st


def test(c):
    c.add_storage(NODES, targets=TARGETS)
    statuses = c.wait_registered()
    log("registered: %s" % {n: s["node_id"] for n, s in statuses.items()})
    check_map(c, statuses)

    restart_same_ids(c, "s2", signal.SIGKILL, statuses)
    restart_same_ids(c, "s4", signal.SIGTERM, statuses)
    # The others were not disturbed, and nothing was registered twice.
    check_map(c, statuses)


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=1000, check_interval_ms=100)
