#!/usr/bin/env python3
"""test_storage_registration.py - real sluice-storage daemons register with mgmtd.

Two storage daemons with two target directories each register under their own addresses;
mgmtd's target list must show the four targets with their paths, up to date, with the
capacity the daemons measured. A daemon restarted after SIGKILL and one after SIGTERM come
back with the same node and target ids (from their ids files) and a higher incarnation, and
the SIGTERM exits 0. A daemon started with one target directory that cannot be opened (a
file where the directory should be) serves its other target and reports the broken one
offline.

Usage: test_storage_registration.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402


def targets_of(c, name):
    st = c.node(name).registered()
    return st, {tid: c.targets()[tid] for tid in st["targets"].values()}


def test(c):
    names = c.add_storage_daemons(2, targets=2)
    sts = c.wait_registered(names, timeout=20)
    for name in names:
        st, targets = targets_of(c, name)
        d = c.node(name)
        for i, tid in st["targets"].items():
            t = targets[tid]
            check(t["path"] == d.target_dirs[i], "target %d path %s" % (tid, t["path"]))
            check(t["capacity_bytes"] > 0, "target %d has no capacity" % tid)
        c.wait_until(lambda: all(c.targets()[tid]["local_state"] == "uptodate"
                                 for tid in st["targets"].values()),
                     10, "%s targets up to date" % name)
    log("registered: %s" % sts)

    for name, sig in ((names[0], signal.SIGKILL), (names[1], signal.SIGTERM)):
        before = sts[name]
        c.restart(name, sig=sig)
        after = c.wait_until(lambda: (lambda s: s if s and s["incarnation"] >
                                      before["incarnation"] else None)(
                                          c.node(name).registered()),
                             20, "%s registered again" % name)
        check(after["node_id"] == before["node_id"], "%s: node id %d -> %d" %
              (name, before["node_id"], after["node_id"]))
        check(after["targets"] == before["targets"], "%s: target ids %s -> %s" %
              (name, before["targets"], after["targets"]))
    check(len(c.nodes()) == 2, "nodes: %s" % c.nodes())

    # A target that does not open: the daemon serves the other one and reports it offline.
    d = c.node(c.add_storage_daemons(1, targets=2, start=False)[0])
    with open(d.target_dirs[1], "w") as f:
        f.write("not a directory\n")
    d.start()
    st = c.wait_until(lambda: d.registered(), 20, "daemon with a broken target registered")
    c.wait_until(lambda: c.targets()[st["targets"][1]]["local_state"] == "offline" and
                 c.targets()[st["targets"][0]]["local_state"] == "uptodate",
                 10, "broken target offline, the other up to date")


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=2000)
