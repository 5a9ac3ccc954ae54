#!/usr/bin/env python3
"""test_mgmtd_badinput.py - mgmtd refuses bad requests and leaves its map as it was.

Three fakestor nodes with three targets each (a0..a2 on s0, b0..b2 on s1, c0..c2 on s2)
and one chain a0,b0,c0. Then, each refused without any change of the routing version:

  - CLI requests (the CLI must exit 1 with exactly one "sluice: ..." line on stderr naming
    the error code): a chain with two replicas on one node, with a target that does not
    exist, with a target twice, with a target already in a chain, keeping a chain that does
    not exist; forcing an unknown target offline; reordering an unknown chain or a chain
    with members it does not have.
  - Registrations (fakestor nodes started with a forged ids file): an unknown node id
    (-ENOENT), a known node id with a target id that does not exist (-ENOENT), a known node
    id with another node's target (-EPERM). The forged nodes must stay unregistered and
    fenced, and the node whose id they borrowed undisturbed.
  - Heartbeats from unknown nodes: mgmtd restarted with an empty data dir no longer knows
    the running nodes; their heartbeats and then their registrations are refused with
    -ENOENT, they fence themselves, and the fresh map stays empty.

Usage: test_mgmtd_badinput.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import errno
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, log  # noqa: E402

REGISTER_RETRY_S = 1.0  # the node agent's registration interval before mgmtd told it one


def cli_refused(c, args, rc, version):
    r = c.cli(*args, check=False)
    lines = r.stderr.splitlines()
    what = "sluice %s" % " ".join(map(str, args))
    check(r.returncode == 1, "%s exited %d, expected 1 (stderr %r)" %
          (what, r.returncode, r.stderr))
    check(len(lines) == 1 and lines[0].startswith("sluice: "),
          "%s: expected one 'sluice: ...' error line, got %r" % (what, r.stderr))
    check("(%d)" % rc in lines[0], "%s: expected error %d in %r" % (what, rc, lines[0]))
    now = c.routing_version()
    check(now == version, "%s changed the routing version from %d to %d" %
          (what, version, now))
    log("refused as expected: %s -> %s" % (what, lines[0]))


def cli_cases(c, t):
    c.cli("chain-table", "set", "--chain", "%d,%d,%d" % (t["a"][0], t["b"][0], t["c"][0]))
    chain = next(iter(c.chains()))
    v = c.routing_version()
    free = "%d,%d,%d"
    cases = [
        (["chain-table", "set", "--chain", free % (t["a"][1], t["a"][2], t["b"][1])],
         -errno.EINVAL),
        (["chain-table", "set", "--chain", free % (t["a"][1], t["b"][1], 999999)],
         -errno.ENOENT),
        (["chain-table", "set", "--chain", free % (t["a"][1], t["a"][1], t["b"][1])],
         -errno.EINVAL),
        (["chain-table", "set", "--chain", free % (t["a"][0], t["b"][1], t["c"][1])],
         -errno.EBUSY),
        (["chain-table", "set", "--chain", "4242:" + free % (t["a"][1], t["b"][1], t["c"][1])],
         -errno.ENOENT),
        (["target", "offline", "999999"], -errno.ENOENT),
        (["chain", "set-order", "4242", free % (t["a"][0], t["b"][0], t["c"][0])],
         -errno.ENOENT),
        (["chain", "set-order", str(chain), free % (t["a"][1], t["b"][1], t["c"][1])],
         -errno.EINVAL),
    ]
    for args, rc in cases:
        cli_refused(c, args, rc, v)
    return v


def forged_registrations(c, statuses, t, version):
    s0 = statuses["s0"]
    forged = c.add_storage(3, targets=1, start=False)
    # unknown node id; known node, unknown target id; known node, another node's target
    texts = ["node_id 999\n",
             "node_id %d\ntarget %%s 999999\n" % s0["node_id"],
             "node_id %d\ntarget %%s %d\n" % (s0["node_id"], t["b"][2])]
    rcs = [-errno.ENOENT, -errno.ENOENT, -errno.EPERM]
    for name, text in zip(forged, texts):
        node = c.node(name)
        if "%s" in text:
            text = text % os.path.join(node.state_dir, "t0")
        with open(os.path.join(node.state_dir, "node.ids"), "w") as f:
            f.write(text)
        node.start()
    for name, rc in zip(forged, rcs):
        needle = "register with %s failed" % c.mgmtd.uri
        c.wait_until(lambda: any(needle in line and "(%d)" % rc in line
                                 for line in c.node(name).log_since(0)),
                     5 + REGISTER_RETRY_S, "%s refused with %d" % (name, rc),
                     state=lambda: c.node(name).log_since(0)[-3:])
    time.sleep(2 * REGISTER_RETRY_S)  # a couple more refused attempts
    for name in forged:
        st = c.node(name).status()
        check(st and st["incarnation"] == 0 and st["fenced"] == 1,
              "%s with forged ids is registered or unfenced: %s" % (name, st))
    snap = c.snapshot()
    check(snap.version == version, "refused registrations moved the routing version from %d "
          "to %d" % (version, snap.version))
    check(len(snap.nodes) == 3 and 999 not in snap.nodes, "nodes now: %s" % sorted(snap.nodes))
    check(snap.nodes[s0["node_id"]]["incarnation"] == s0["incarnation"],
          "s0's incarnation moved: a forged registration took its id")
    check(c.node("s0").registered()["incarnation"] == s0["incarnation"], "s0 was disturbed")
    for name in forged:
        c.stop(name)
    log("forged registrations refused, map unchanged at version %d" % version)


def unknown_heartbeats(c, statuses):
    c.kill("mgmtd")
    shutil.rmtree(c.mgmtd.data_dir)
    c.start("mgmtd")
    v = c.routing_version()
    check(v == 0 and not c.nodes(), "a fresh mgmtd has version %d and nodes %s" %
          (v, c.nodes()))
    for name, st in statuses.items():
        node = c.node(name)
        hb = "heartbeat of node %d incarnation %d refused" % (st["node_id"], st["incarnation"])
        c.wait_until(lambda: any(hb in line and "(%d)" % -errno.ENOENT in line
                                 for line in node.log_since(0)), 5,
                     "%s: heartbeat refused with ENOENT" % name,
                     state=lambda: node.log_since(0)[-3:])
        c.wait_until(lambda: (lambda s: s and s["fenced"] == 1 and s["incarnation"] == 0)(
            node.status()), 5, "%s fenced and unregistered" % name)
    time.sleep(2 * REGISTER_RETRY_S)  # its registrations keep being refused
    snap = c.snapshot()
    check(snap.version == 0 and not snap.nodes and not snap.targets,
          "refused heartbeats and registrations changed the fresh map: v%d nodes %s "
          "targets %s" % (snap.version, sorted(snap.nodes), sorted(snap.targets)))
    for name in statuses:
        st = c.node(name).status()
        check(st["fenced"] == 1 and st["incarnation"] == 0, "%s: %s" % (name, st))
    log("heartbeats from unknown nodes refused; fresh map still empty")


def test(c):
    c.add_storage(3, targets=3)
    statuses = c.wait_registered()
    t = {k: [statuses[n]["targets"][i] for i in range(3)]
         for k, n in (("a", "s0"), ("b", "s1"), ("c", "s2"))}
    version = cli_cases(c, t)
    forged_registrations(c, statuses, t, version)
    unknown_heartbeats(c, statuses)


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=1000, check_interval_ms=100)
