#!/usr/bin/env python3
"""test_craq_chaos.py - chain members SIGKILLed and restarted under continuous replicated
writes; afterwards every acknowledged update must be on every replica.

mgmtd (heartbeat 100 ms, lease 1500 ms) and four sluice-storage daemons with three targets
each; `sluice chain-table gen --replicas 3` makes four chains of three members on three
different daemons, so every daemon is a member of three chains (and one daemon's death
hits the head, a middle member or the tail of several chains at once).
tests/storage/test_craq_chaos (craqload.c) writes all the time: 32 writers, one tagged
update in flight each, to the head of each chunk's chain, retrying every failed update
with the same tag against the new head, and keeps a model of the acknowledged updates.

Rounds (chains taken in turn; 2 rounds by default, the `slow` suite runs 10):
  - kill the head, then a middle member, then the tail of a chain (SIGKILL of its daemon):
    wait until mgmtd fails it (every chain it is in gets a new version with it offline),
    check that every chain keeps acknowledging writes, restart the daemon, and wait until
    it is back: every member of every chain serving again (re-registered, resynced by its
    predecessor while the writes go on, reported up to date), and writes still acked;
  - kill a middle member and start it again at once, before its lease runs out: mgmtd
    learns of the restart from the new registration;
  - kill two members of one chain at once, leaving the member that came back last: it
    takes every write of that chain alone, so unless its resync gave it every
    acknowledged update the writers see acks that differ from their model; both return.
Then once: kill the tail of a chain, restart it, and kill the member before it while it
resyncs (or just after, when the resync was quicker than we looked).
Then the writers stop, every member must serve, the client reads every chunk from every
member and compares bytes, length and version with its model, and `sluice chain check`
must find the members of every chain identical.

Usage: test_craq_chaos.py BUILD_DIR [--rounds N] [--chunks N] (exit 0 pass, 1 fail, 77
skip). --chunks: chunks of 64 KiB per chain (64; the `slow` suite uses 256, which makes
resyncs longer). $SLUICE_TEST_SEED fixes the client's updates (the kill timing still
varies). On failure the cluster dir is kept with every daemon's log and the client's
(chaos-client.log: each failed update's attempts with UTC times like the daemons' logs).
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
import cluster  # noqa: E402
from cluster import check, fail, log  # noqa: E402

HEARTBEAT_MS = 100
LEASE_MS = 1500
DAEMONS = 4
TARGETS = 3
REPLICAS = 3
NOTICE_S = LEASE_MS / 1000 + 10  # mgmtd fails a dead node: lease + check + slack
BACK_S = 120                     # restart, re-register, wait, resync, serve (sanitizers)
PROGRESS_S = 60                  # the writers keep getting acks (retries back off <= 0.2 s)
MORE_ACKS = 20                   # acks per chain that show the chain takes writes


def arg(name, default):
    a = sys.argv[2:]
    return int(a[a.index(name) + 1]) if name in a else default


class Client:
    """The test_craq_chaos process and its control dir."""

    def __init__(self, c, chains, seed, chunks=64):
        self.c = c
        self.bin = os.path.join(c.build, "tests", "storage", "test_craq_chaos")
        if not os.path.exists(self.bin):
            cluster.skip("%s not built" % self.bin)
        self.ctl = os.path.join(c.dir, "chaos-ctl")
        os.makedirs(self.ctl)
        self.log_path = os.path.join(c.dir, "chaos-client.log")
        argv = [self.bin, c.mgmtd.uri, self.ctl, "--chains", ",".join(map(str, chains)),
                "--seed", str(seed), "--chunks", str(chunks)]
        log("client: %s" % " ".join(argv))
        with open(self.log_path, "ab") as f:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=subprocess.STDOUT, close_fds=True,
                                         preexec_fn=cluster._child_setup)

    def alive(self):
        """Fail at once (with its output) if the client exited before it was told to."""
        if self.proc.poll() is not None:
            fail("test_craq_chaos exited early with status %d (its output is below)" %
                 self.proc.returncode)

    def tail(self, n=60):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def counters(self, name="progress"):
        """{"acked": N, ..., "chain": {id: acked}} from a control file, or None."""
        try:
            with open(os.path.join(self.ctl, name)) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        p = {"chain": {}}
        for line in lines:
            w = line.split()
            if len(w) == 3 and w[0] == "chain":
                p["chain"][int(w[1])] = int(w[2])
            elif len(w) == 2:
                p[w[0]] = int(w[1])
        return p

    def touch(self, name):
        open(os.path.join(self.ctl, name), "w").close()

    def close(self, failed):
        if self.proc.poll() is None:
            self.proc.kill()  # our own child; it keeps no state worth a clean exit
            self.proc.wait()
        if failed:
            print("---- tail of %s ----\n%s" % (self.log_path, self.tail()), flush=True)


def all_serving(chains):
    return all(m["state"] == "serving" for ch in chains.values() for m in ch["members"])


def describe(chains):
    return "; ".join("chain %d v%d %s" % (cid, ch["version"], " ".join(
        "%d(%s)" % (m["target"], m["state"]) for m in ch["members"]))
        for cid, ch in sorted(chains.items()))


class Chaos:
    def __init__(self, c, client, owner, chain_ids):
        self.c = c
        self.client = client
        self.owner = owner      # target id -> daemon name
        self.chain_ids = chain_ids
        self.last_restarted = None  # the daemon started most recently

    def wait(self, pred, timeout, what):
        def guarded():
            self.client.alive()
            return pred()
        return self.c.wait_until(guarded, timeout, what,
                                 state=lambda: describe(self.c.chains()))

    def wait_writes(self, chain_ids, what):
        """Every chain in chain_ids acknowledges MORE_ACKS more updates."""
        p0 = self.wait(self.client.counters, 10, "client progress")["chain"]

        def more():
            p = self.client.counters()["chain"]
            return all(p[cid] >= p0[cid] + MORE_ACKS for cid in chain_ids)
        self.wait(more, PROGRESS_S, "chains %s to take writes %s" % (chain_ids, what))

    def wait_serving(self, what):
        t0 = time.monotonic()
        self.wait(lambda: all_serving(self.c.chains()), BACK_S, what)
        return time.monotonic() - t0

    def kill(self, names, why):
        """SIGKILL the daemons and wait until mgmtd has failed their targets in every chain
        (a new chain version with them offline). Returns the chains they were in."""
        before = self.c.chains()
        dead = {t for t, n in self.owner.items() if n in names}
        hit = [cid for cid, ch in before.items() if any(m["target"] in dead
                                                        for m in ch["members"])]
        log("SIGKILL %s (%s); chains hit: %s" % (",".join(names), why, hit))
        for n in names:
            self.c.kill(n)

        def noticed():
            now = self.c.chains()
            return all(now[cid]["version"] > before[cid]["version"] and
                       all(m["state"] in ("offline", "lastsrv") for m in now[cid]["members"]
                           if m["target"] in dead) for cid in hit)
        t0 = time.monotonic()
        self.wait(noticed, NOTICE_S, "mgmtd to fail %s" % ",".join(names))
        log("mgmtd noticed after %.1f s: %s" % (time.monotonic() - t0, describe(self.c.chains())))
        return hit

    def restart(self, names):
        for n in names:
            self.c.start(n)
            self.last_restarted = n
        took = self.wait_serving("%s back: every member of every chain serving" %
                                 ",".join(names))
        log("%s back and every chain serving after %.1f s" % (",".join(names), took))

    def one_member(self, cid, role):
        members = self.c.chains()[cid]["members"]
        tid = members[{"head": 0, "middle": 1, "tail": -1}[role]]["target"]
        name = self.owner[tid]
        self.kill([name], "target %d, the %s of chain %d" % (tid, role, cid))
        self.wait_writes(self.chain_ids, "with %s down" % name)
        self.restart([name])
        self.wait_writes(self.chain_ids, "after %s came back" % name)

    def fast_restart(self, cid):
        """Kill the middle member and start it again at once, before its lease runs out:
        mgmtd learns of the restart from the new registration."""
        before = self.c.chains()
        tid = before[cid]["members"][1]["target"]
        name = self.owner[tid]
        log("SIGKILL %s (target %d, the middle of chain %d) and restart at once" %
            (name, tid, cid))
        self.c.kill(name)
        self.c.start(name)
        self.last_restarted = name
        self.wait(lambda: self.c.chains()[cid]["version"] > before[cid]["version"],
                  NOTICE_S, "chain %d to change after the restart of %s" % (cid, name))
        took = self.wait_serving("%s back after its restart: every member serving" % name)
        log("%s back and every chain serving after %.1f s" % (name, took))
        self.wait_writes(self.chain_ids, "after %s came back" % name)

    def during_resync(self, cid):
        """Kill the tail of chain cid, restart it, and kill the member before it while it
        is being resynced (if the resync is quicker than we look, just after it)."""
        members = self.c.chains()[cid]["members"]
        tid = members[-1]["target"]
        name = self.owner[tid]
        self.kill([name], "target %d, the tail of chain %d" % (tid, cid))
        self.c.start(name)
        self.last_restarted = name
        syncing = None
        t0 = time.monotonic()
        while syncing is None and time.monotonic() - t0 < BACK_S:
            self.client.alive()
            ch = self.c.chains()
            syncing = next((c for c in ch.values() for m in c["members"]
                            if m["target"] in self.targets_of(name) and
                            m["state"] == "syncing"), None)
            if syncing is None and all_serving(ch):
                syncing = ch[cid]
        order = [m["target"] for m in syncing["members"]]
        me = next(i for i, t in enumerate(order) if t in self.targets_of(name))
        pred = order[me - 1] if me > 0 else order[1]  # the one it resyncs from
        seen = "while it syncs" if any(m["state"] == "syncing" for m in syncing["members"]) \
            else "just after it synced"
        self.kill([self.owner[pred]], "target %d, before %s in chain %d, %s" %
                  (pred, name, syncing["id"], seen))
        self.wait_writes(self.chain_ids, "with %s down" % self.owner[pred])
        self.restart([self.owner[pred]])
        self.wait_writes(self.chain_ids, "after %s came back" % self.owner[pred])

    def targets_of(self, name):
        return {t for t, n in self.owner.items() if n == name}

    def two_members(self, turn):
        """Kill two members of one chain at once, leaving the member that came back last
        (resynced moments ago: it must hold every acknowledged update) alone."""
        chains = self.c.chains()
        mine = [cid for cid in self.chain_ids if any(
            self.owner[m["target"]] == self.last_restarted for m in chains[cid]["members"])]
        cid = mine[turn % len(mine)] if mine else self.chain_ids[turn % len(self.chain_ids)]
        members = chains[cid]["members"]
        keep = next((m for m in members if self.owner[m["target"]] == self.last_restarted),
                    members[-1])
        survivor = keep["target"]
        names = [self.owner[m["target"]] for m in members if m is not keep]
        self.kill(names, "two members of chain %d; target %d is left" % (cid, survivor))
        ch = self.c.chains()[cid]
        check([m["target"] for m in ch["members"] if m["state"] == "serving"] == [survivor],
              "chain %d after losing two members: %s" % (cid, ch))
        self.wait_writes(self.chain_ids, "with %s down (chain %d on target %d alone)" %
                         (",".join(names), cid, survivor))
        self.restart(names)
        self.wait_writes(self.chain_ids, "after %s came back" % ",".join(names))


def setup(c):
    names = c.add_storage_daemons(DAEMONS, targets=TARGETS)
    sts = c.wait_registered(names, timeout=30)
    owner = {tid: n for n in names for tid in sts[n]["targets"].values()}
    c.cli("chain-table", "gen", "--replicas", REPLICAS, "--seed", 1)
    chains = c.wait_until(lambda: (lambda ch: ch if len(ch) == DAEMONS * TARGETS // REPLICAS
                                   and all_serving(ch) else None)(c.chains()),
                          30, "the chains serving")
    log("chains: %s" % describe(chains))
    for cid, ch in chains.items():
        check(len(ch["members"]) == REPLICAS and
              len({owner[m["target"]] for m in ch["members"]}) == REPLICAS,
              "chain %d is not %d members on different daemons: %s" % (cid, REPLICAS, ch))
    return owner, sorted(chains)


def finish(c, client, chain_ids):
    client.touch("stop")
    final = c.wait_until(lambda: client.counters("stopped") or client.alive(), 120,
                         "the writers to stop")
    log("writers stopped: %s" % final)
    check(final["failed"] == 0 and final["errors"] == 0, "the writers failed:\n" + client.tail())
    c.wait_until(lambda: all_serving(c.chains()), BACK_S, "every member serving")
    client.touch("verify")
    try:
        rc = client.proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        fail("test_craq_chaos did not finish verifying in 300 s")
    log("test_craq_chaos exited %d; its last lines:\n%s" % (rc, client.tail(12)))
    check(rc == 0, "replicas differ from the acknowledged updates (exit %d)" % rc)
    for cid in chain_ids:
        r = c.cli("chain", "check", cid, check=False)
        check(r.returncode == 0, "sluice chain check %d exited %d:\n%s%s" %
              (cid, r.returncode, r.stdout, r.stderr))
    log("sluice chain check: all %d chains identical on every member" % len(chain_ids))
    c.check_daemons()


def test(c):
    rounds = arg("--rounds", 2)
    seed = int(os.environ.get("SLUICE_TEST_SEED") or random.getrandbits(48))
    owner, chain_ids = setup(c)
    client = Client(c, chain_ids, seed, arg("--chunks", 64))
    failed = True
    try:
        chaos = Chaos(c, client, owner, chain_ids)
        chaos.wait_writes(chain_ids, "before the first kill")
        turn = 0
        for r in range(rounds):
            for step in ("head", "middle", "tail", "restart at once", "two at once"):
                log("---- round %d/%d: %s" % (r + 1, rounds, step))
                cid = chain_ids[turn % len(chain_ids)]
                if step == "restart at once":
                    chaos.fast_restart(cid)
                elif step == "two at once":
                    chaos.two_members(turn)
                else:
                    chaos.one_member(cid, step)
                turn += 1
        log("---- a member killed while the one after it resyncs")
        chaos.during_resync(chain_ids[turn % len(chain_ids)])
        finish(c, client, chain_ids)
        failed = False
    finally:
        client.close(failed)


if __name__ == "__main__":
    cluster.main(test, heartbeat_ms=HEARTBEAT_MS, lease_ms=LEASE_MS, check_interval_ms=100)
