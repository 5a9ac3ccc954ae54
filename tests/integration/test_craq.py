#!/usr/bin/env python3
"""test_craq.py - replicated updates through a real chain of three sluice-storage daemons.

mgmtd and three storage daemons (one target each, debug.fault_injection on so the client
can make one replica differ on purpose) form one chain; once every daemon has the routing
table with the chain, tests/storage/test_craq_client runs its steps against it (tagged
writes with many in flight, retries, refusals, repair of a diverged member, a read while
an update is pending on a stopped tail, truncate and remove), each checked on every
member. Afterwards the chain still serves. Then the middle member is SIGKILLed, chunks are
written while it is away, and it is restarted: it must be resynced by its predecessor and
serve again, and `sluice chain check` must find the three replicas identical.

Usage: test_craq.py BUILD_DIR (exit 0 pass, 1 fail, 77 skip).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, fail, log  # noqa: E402


def serving(ch):
    return all(m["state"] == "serving" for m in ch["members"])


def test(c):
    client = os.path.join(c.build, "tests", "storage", "test_craq_client")
    if not os.path.exists(client):
        cluster.skip("%s not built" % client)
    # A resync bandwidth cap (8 MiB/s) makes the resync below take about a second, so
    # the pacing runs and `sluice status` can show its progress; no timing is checked.
    names = c.add_storage_daemons(3, targets=1, extra=("debug.fault_injection=true",
                                                       "storage.resync_bytes_per_s=8MiB"))
    sts = c.wait_registered(names, timeout=20)
    tids = [sts[n]["targets"][0] for n in names]
    c.cli("chain-table", "set", "--chain", ",".join(str(t) for t in tids))
    chain = c.wait_until(lambda: next((ch for ch in c.chains().values()
                                       if sorted(m["target"] for m in ch["members"]) ==
                                       sorted(tids) and serving(ch)), None),
                         20, "the chain serving")
    log("chain %s: %s" % (chain["id"], chain))
    tail_tid = chain["members"][-1]["target"]
    tail = next(c.node(n) for n in names if sts[n]["targets"][0] == tail_tid)
    # Every daemon must have fetched a routing table with the chain before the client
    # writes (the client retries nothing, so a daemon still on an old table would refuse
    # with EROUTING): the daemons log "routing vN: .., 1 with local targets".
    c.wait_until(lambda: all("1 with local targets" in open(c.node(n).log_path).read()
                             for n in names) or None, 10, "daemons fetched the chain")
    r = subprocess.run([client, c.mgmtd.uri, str(chain["id"]), str(tail.proc.pid)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    log("test_craq_client exited %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    if r.returncode != 0:
        fail("test_craq_client failed (exit %d)" % r.returncode)
    # The divergence step must have been repaired by a full replace (not by luck), and the
    # stalled write must have been seen pending on the head.
    logs = "".join(open(c.node(n).log_path).read() for n in names)
    check("its version differs" in logs and "its result differs" in logs,
          "full replaces not logged: the divergence steps did not exercise the repair")
    check("pending reads: ENOTCOMMIT seen" in r.stdout, "the pending-read step did not run")
    ch = c.chains()[chain["id"]]
    check(serving(ch), "chain after the run: %s" % ch)

    # Resync: the middle member dies, chunks are written while it is away, it comes back,
    # its predecessor brings it up to date and it serves again, identical to the others.
    mid_tid = ch["members"][1]["target"]
    mid = next(n for n in names if sts[n]["targets"][0] == mid_tid)
    c.kill(mid)
    c.wait_until(lambda: next((m for m in c.chains()[chain["id"]]["members"]
                               if m["target"] == mid_tid and m["state"] == "offline"), None),
                 20, "target %d offline" % mid_tid)
    r = subprocess.run([client, c.mgmtd.uri, str(chain["id"]), "fill", "40"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    log("fill exited %d: %s%s" % (r.returncode, r.stdout, r.stderr[-2000:]))
    check(r.returncode == 0, "writing with a member down failed")
    c.start(mid)
    screens = []

    def back():
        st = c.cli("status", check=False).stdout
        # keep one screen of the resync, preferably one with progress reported
        if "\n  syncing:" in st and (not screens or "chunks (" in st):
            screens[:] = [st]
        return serving(c.chains()[chain["id"]]) or None
    c.wait_until(back, 60, "chain %d serving again after the resync" % chain["id"])
    for st in screens:
        log("sluice status during the resync:\n" + st)
    logs = "".join(open(c.node(n).log_path).read() for n in names)
    done = [ln for ln in logs.splitlines() if "resync of target %d" % mid_tid in ln and
            ") done:" in ln]
    check(done, "no finished resync of target %d in the logs" % mid_tid)
    log("\n".join(done))
    r = c.cli("chain", "check", chain["id"], check=False)
    log("sluice chain check %d:\n%s%s" % (chain["id"], r.stdout, r.stderr))
    check(r.returncode == 0, "replicas differ after the resync (exit %d)" % r.returncode)
    c.check_daemons()


if __name__ == "__main__":
    # A long lease: the client stops the tail (SIGSTOP) for a moment on purpose, which must
    # not cost it its lease and change the chain under the test.
    cluster.main(test, lease_ms=3000)
