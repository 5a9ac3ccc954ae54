#!/usr/bin/env python3
"""test_chain_check.py - `sluice chain check` finds replicas that differ.

mgmtd and three real sluice-storage daemons (debug.fault_injection on) with one target each,
in one chain set with `sluice chain-table set --chain T0,T1,T2`. Chunks are written to each
target directly with `sluice chunk write` (chain_id 0: a local, non-replicated write, which
a chained target accepts only under debug.fault_injection), so the replicas can be made to
differ on purpose:

  1. the same chunks on all three: exit 0, "0 differences", `chunk list` shows them;
  2. one chunk rewritten on T0 (other crc and commit_ver), an extra chunk on T1, a chunk
     missing on T2: exit 1, each difference named, in text and in JSON;
  3. T2 forced offline by the admin: still compared, flagged as not serving, and the
     difference it alone has is marked as not among the serving members;
  4. T1's daemon stopped: reported unreachable, exit 2, JSON says incomplete;
  plus usage errors and an unknown chain (exit 2).

Usage: test_chain_check.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, fail, log  # noqa: E402

CHUNK = 64 * 1024
LENGTH = 8192


def test(c):
    names = c.add_storage_daemons(3, targets=1, extra=["debug.fault_injection=true"])
    sts = c.wait_registered(names, timeout=20)
    tid = {n: sts[n]["targets"][0] for n in names}
    t0, t1, t2 = (tid[n] for n in names)
    c.wait_until(lambda: all(c.targets()[t]["local_state"] == "uptodate" for t in tid.values()),
                 10, "targets up to date")
    c.cli("chain-table", "set", "--chain", "%d,%d,%d" % (t0, t1, t2))
    chains = c.chains()
    check(len(chains) == 1, "expected one chain: %s" % chains)
    cid = next(iter(chains))
    c.wait_until(lambda: [(m["target"], m["state"]) for m in c.chains()[cid]["members"]] ==
                 [(t0, "serving"), (t1, "serving"), (t2, "serving")], 10,
                 "chain %d serving in the order set" % cid)

    def write(name, inode, index, pattern, by_addr=False):
        args = ["chunk", "write", "--target", tid[name], "--inode", inode, "--index", index,
                "--chunk-size", CHUNK, "--pattern", pattern, "--length", LENGTH, "--json"]
        if by_addr:  # the node's address given, instead of looked up in the routing
            args += ["--node-addr", c.node(name).addr]
        r = c.cli(*args, check=False)
        if r.returncode != 0:
            fail("chunk write of %d:%d on target %d (%s) exited %d: %s\n(a refusal of a "
                 "chain_id 0 write to a chained target means debug.fault_injection is not "
                 "honoured by sluice-storage)" %
                 (inode, index, tid[name], name, r.returncode, r.stderr.strip()))
        w = json.loads(r.stdout)
        check(w["length"] == LENGTH and w["inode"] == inode and w["index"] == index,
              "chunk write reply: %s" % w)
        return w

    def chain_check(*extra):
        r = c.cli("chain", "check", cid, *extra, check=False)
        log("chain check %s -> %d\n%s%s" % (" ".join(extra), r.returncode, r.stdout,
                                             r.stderr))
        return r

    def chain_check_json():
        r = chain_check("--json")
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError as e:
            fail("chain check --json printed invalid JSON (%s): %r" % (e, r.stdout[:500]))

    # 1. Identical replicas.
    base = [(1, 0, "alpha"), (1, 1, "beta"), (2, 0, "gamma")]
    for n in names:
        for inode, index, pat in base:
            write(n, inode, index, pat, by_addr=(n == names[0]))
    for n in names:
        listing = c.cli_json("chunk", "list", "--target", tid[n])
        got = [(ch["inode"], ch["index"], ch["length"]) for ch in listing["chunks"]]
        check(got == [(i, x, LENGTH) for i, x, _ in base] and listing["count"] == 3,
              "chunk list of target %d: %s" % (tid[n], listing))
    r = chain_check()
    check(r.returncode == 0, "identical replicas: exit %d" % r.returncode)
    check("3 members, 3 chunks, 0 differences" in r.stdout, "summary: %r" % r.stdout)
    rc, j = chain_check_json()
    check(rc == 0 and j["identical"] and j["complete"] and j["chunks"] == 3 and
          j["differences"] == [] and j["chain"] == cid, "JSON of identical replicas: %s" % j)
    check([(m["target"], m["chunks"], m["reachable"]) for m in j["members"]] ==
          [(t0, 3, True), (t1, 3, True), (t2, 3, True)], "members: %s" % j["members"])

    # 2. A different write on T0, an extra chunk on T1, a chunk missing on T2.
    w = write(names[0], 1, 1, "BETA")
    check(w["commit_ver"] == 2, "rewrite of 1:1 on T0: %s" % w)
    write(names[1], 3, 0, "extra")
    write(names[0], 4, 0, "delta")
    write(names[1], 4, 0, "delta")
    r = chain_check()
    check(r.returncode == 1, "differences: exit %d" % r.returncode)
    lines = {ln.split()[1]: ln for ln in r.stdout.splitlines() if ln.startswith("chunk ")}
    check(sorted(lines) == ["1:1", "3:0", "4:0"], "difference lines: %s" % r.stdout)
    check("target %d len %d ver 2" % (t0, LENGTH) in lines["1:1"] and
          "target %d len %d ver 1" % (t1, LENGTH) in lines["1:1"], "1:1: %s" % lines["1:1"])
    check("target %d missing" % t0 in lines["3:0"] and "target %d missing" % t2 in
          lines["3:0"] and "target %d len" % t1 in lines["3:0"], "3:0: %s" % lines["3:0"])
    check("target %d missing" % t2 in lines["4:0"] and "target %d missing" % t0 not in
          lines["4:0"], "4:0: %s" % lines["4:0"])
    check("3 members, 5 chunks, 3 differences" in r.stdout, "summary: %r" % r.stdout)
    rc, j = chain_check_json()
    check(rc == 1 and not j["identical"] and j["complete"], "JSON verdict: %s" % j)
    check(j["chunks"] == 5 and j["differences_total"] == 3 and
          j["differences_listed"] == 3, "JSON counts: %s" % j)
    diffs = {(d["inode"], d["index"]): {x["target"]: x for x in d["replicas"]}
             for d in j["differences"]}
    check(sorted(diffs) == [(1, 1), (3, 0), (4, 0)], "JSON differences: %s" % j["differences"])
    a, b = diffs[(1, 1)][t0], diffs[(1, 1)][t1]
    check(a["present"] and b["present"] and a["crc"] != b["crc"] and a["commit_ver"] == 2 and
          b["commit_ver"] == 1, "1:1 replicas: %s" % diffs[(1, 1)])
    check([diffs[(3, 0)][t]["present"] for t in (t0, t1, t2)] == [False, True, False],
          "3:0 replicas: %s" % diffs[(3, 0)])
    check([diffs[(4, 0)][t]["present"] for t in (t0, t1, t2)] == [True, True, False],
          "4:0 replicas: %s" % diffs[(4, 0)])

    # 3. T2 not serving: compared anyway, flagged; its own difference is not a serving one.
    c.cli("target", "offline", t2)
    c.wait_until(lambda: {m["target"]: m["state"] for m in c.chains()[cid]["members"]}[t2] ==
                 "offline", 10, "target %d offline" % t2)
    r = chain_check()
    check(r.returncode == 1, "with T2 offline: exit %d" % r.returncode)
    check("target %d [offline] missing" % t2 in r.stdout, "T2 not flagged: %r" % r.stdout)
    check("target %d (offline): not serving, compared anyway" % t2 in r.stdout,
          "T2 not noted: %r" % r.stdout)
    check("3 differences (2 among serving members)" in r.stdout, "summary: %r" % r.stdout)
    rc, j = chain_check_json()
    sd = {(d["inode"], d["index"]): d["serving_differ"] for d in j["differences"]}
    check(rc == 1 and sd == {(1, 1): True, (3, 0): True, (4, 0): False} and
          j["differences_serving"] == 2, "serving_differ: %s" % j)

    # 4. A member that cannot be reached: an error, exit 2, the rest still compared.
    c.stop(names[1])
    r = chain_check()
    check(r.returncode == 2, "T1 stopped: exit %d" % r.returncode)
    check("target %d" % t1 in r.stderr, "no error line naming target %d: %r" % (t1, r.stderr))
    check("target %d (" % t1 in r.stdout and "unreachable" in r.stdout,
          "T1 not reported unreachable: %r" % r.stdout)
    check("3 members (1 unreachable)" in r.stdout, "summary: %r" % r.stdout)
    rc, j = chain_check_json()
    m1 = {m["target"]: m for m in j["members"]}[t1]
    check(rc == 2 and not j["complete"] and not m1["reachable"] and m1["error"],
          "JSON with T1 stopped: %s" % j)
    check(all(t1 not in {x["target"] for x in d["replicas"]} for d in j["differences"]),
          "T1 still compared: %s" % j["differences"])

    # Usage errors and an unknown chain.
    for args in (("chain", "check"), ("chain", "check", "x"), ("chain", "check", "1", "2"),
                 ("chain", "check", cid, "--target", "1")):
        r = c.cli(*args, check=False)
        check(r.returncode == 2 and "usage: sluice chain check" in r.stderr,
              "sluice %s: exit %d, %r" % (" ".join(map(str, args)), r.returncode, r.stderr))
    r = c.cli("chain", "check", 9999, check=False)
    check(r.returncode == 2 and "chain 9999" in r.stderr, "unknown chain: exit %d, %r" %
          (r.returncode, r.stderr))
    for args in (("chunk", "write", "--target", t0, "--inode", 1, "--index", 0,
                  "--chunk-size", 1000, "--pattern", "x", "--length", 1),
                 ("chunk", "write", "--target", t0, "--inode", 1, "--index", 0,
                  "--chunk-size", CHUNK, "--pattern", "x"),
                 ("chunk", "write", "--target", t0, "--inode", 1, "--index", 0,
                  "--chunk-size", CHUNK, "--offset", CHUNK - 1, "--pattern", "x",
                  "--length", 2),
                 ("chunk", "list")):
        r = c.cli(*args, check=False)
        check(r.returncode == 2 and "usage: sluice chunk" in r.stderr,
              "sluice %s: exit %d, %r" % (" ".join(map(str, args)), r.returncode, r.stderr))


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=100, lease_ms=2000)
