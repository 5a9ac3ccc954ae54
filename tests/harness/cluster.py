"""cluster.py - a throw-away Sluice cluster of real processes for multi-process tests.

A Cluster owns a fresh temp dir and the daemons it starts there: one sluice-mgmtd and any
number of sluice-test-fakestor storage nodes (later: storage daemons, meta servers,
mounts). It reads the cluster's state the way an operator does, through the `sluice` CLI's
--json output, and changes it the way the world does: signals (SIGKILL, SIGSTOP, SIGCONT),
restarts, the fakestor control file, and network partitions.

Design:
  - Every daemon runs in its own session (so its own process group) with its output in
    DIR/<name>.log, appended across restarts under a "=== start N ===" marker. Signals go
    to that process group only; the harness never signals anything it did not start, and a
    pid is only signalled while its Popen has not been reaped, so it cannot have been
    reused. PR_SET_PDEATHSIG (SIGKILL) is set in every child so that even a SIGKILL of
    the test itself does not leave daemons behind.
  - mgmtd listens on 127.0.0.1 port 0 (or 0.0.0.0 when the cluster has network
    namespaces) and writes its bound URI to a ready file; the harness waits for that file
    and restarts mgmtd on the same port and data dir.
  - Storage node i registers the address tcp://127.0.0.(10+i):9000 (its "host"), has its
    own state dir, control file and status file. A node created with netns=True runs in
    its own network namespace, joined to the host by a veth pair with the addresses
    10.231.X.1 (host side) and 10.231.X.2 (namespace side) of a /30 the harness picks free;
    partition()/heal() set the host end of the pair down/up.
  - Cleanup is guaranteed: `with Cluster(...)` stops every daemon (SIGCONT, SIGTERM, then
    SIGKILL), deletes the veths and namespaces it created, and removes the temp dir on
    success or keeps it and prints the tail of every log on failure. An atexit hook and
    handlers for SIGTERM/SIGINT/SIGHUP (meson's timeout sends SIGTERM) lead to the same
    cleanup.
  - Tests exit 0 (pass), 1 (fail) or 77 (skip): run(test_fn) maps TestFailure and any
    other exception to 1 and TestSkip to 77. Failures name the test's file:line.

Only the Python 3 standard library is used. Single-threaded: every method is called from
the test's main thread.

Typical use (see tests/harness/README.md):

    import cluster
    from cluster import check, wait_until

    def test(c):
        a, b, d = c.add_storage(3, targets=1)
        c.wait_registered()
        c.cli('chain-table', 'gen', '--replicas', '3')
        c.kill(a)                                   # SIGKILL
        c.wait_until(lambda: c.targets()[...]['state'] == 'offline', 5, 'target offline')

    cluster.main(test, heartbeat_ms=100, lease_ms=1000)
"""

import atexit
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

SKIP_EXIT = 77
LOG_TAIL_LINES = 40
CLI_TIMEOUT_MS = 5000  # per CLI request; a stopped mgmtd must not hang a test for long
NETNS_SUBNET = "10.231"  # partition tests use 10.231.X.0/30
_LOCK_PATH = "/tmp/sluice-test-netns.lock"  # serialises picking X between parallel tests


# ---- outcomes and checks -------------------------------------------------------------------


class TestFailure(Exception):
    """A check failed; the message starts with the test's file:line."""


class TestSkip(Exception):
    """The test cannot run here (exit 77)."""


def _where():
    """file:line of the innermost caller outside this file (the test's line)."""
    f = sys._getframe(1)
    here = os.path.abspath(__file__)
    while f and os.path.abspath(f.f_code.co_filename) == here:
        f = f.f_back
    if not f:
        return "?"
    return "%s:%d" % (os.path.basename(f.f_code.co_filename), f.f_lineno)


def fail(msg):
    raise TestFailure("%s: %s" % (_where(), msg))


def check(cond, msg="check failed"):
    """Fail with msg (and the caller's file:line) unless cond holds."""
    if not cond:
        raise TestFailure("%s: %s" % (_where(), msg))


def skip(msg):
    raise TestSkip(msg)


def wait_until(pred, timeout, what, interval=0.05, state=None):
    """Poll pred() until it returns something true and return that. After timeout seconds
    fail naming what was awaited (and state(), if given, to show what was seen instead).
    Timeouts are upper bounds that catch hangs, never performance assertions."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            extra = ""
            if state:
                try:
                    extra = "\n  last seen: %s" % (state(),)
                except Exception as e:  # the state dump must not hide the timeout
                    extra = "\n  (state unavailable: %s)" % e
            raise TestFailure("%s: timed out after %.1fs waiting for %s%s" %
                              (_where(), timeout, what, extra))
        time.sleep(interval)


def log(msg):
    """Progress line on stdout (meson keeps it in the test log)."""
    print("[%7.2f] %s" % (time.monotonic() - _T0, msg), flush=True)


_T0 = time.monotonic()


# ---- process plumbing ----------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _child_setup():
    """preexec_fn: die with the test (best effort; the with-block is the real cleanup)."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _tail(path, n=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return ["(cannot read %s: %s)" % (path, e)]
    return lines[-n:]


class Daemon:
    """One process the cluster (re)starts under a fixed name."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.log_path = os.path.join(cluster.dir, name + ".log")
        self.proc = None
        self.starts = 0
        self.expected_running = False
        self.stopped = False  # SIGSTOPped
        self.netns = None

    def argv(self):
        raise NotImplementedError

    def start(self):
        if self.running():
            fail("%s is already running" % self.name)
        self.starts += 1
        argv = self.argv()
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        with open(self.log_path, "ab") as logf:
            logf.write(("=== start %d: %s\n" % (self.starts, " ".join(argv))).encode())
            logf.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, close_fds=True,
                                         start_new_session=True, preexec_fn=_child_setup)
        self.expected_running = True
        self.stopped = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig):
        """Signal our process group, only while the child is unreaped (pid not reusable)."""
        if self.proc is None or self.proc.returncode is not None:
            return False
        if self.proc.poll() is not None:
            return False
        # Exited after poll(): a zombie until we reap it, so the group id is still ours.
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False
        return True

    def wait_exit(self, timeout):
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def halt(self, sig=signal.SIGTERM, timeout=5.0):
        """Stop the process (sig, then SIGKILL after timeout); returns its exit status."""
        self.expected_running = False
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.send(sig)
        if self.stopped and sig != signal.SIGKILL:
            self.send(signal.SIGCONT)  # a stopped process acts on SIGTERM only when woken
        rc = self.wait_exit(timeout)
        if rc is None:
            self.send(signal.SIGKILL)
            rc = self.wait_exit(10.0)
            if sig != signal.SIGKILL:
                self.cluster.unclean.append("%s ignored signal %d for %.0f s" %
                                            (self.name, sig, timeout))
        elif sig == signal.SIGTERM and rc != 0:
            # A clean shutdown exits 0; anything else is a shutdown bug or a sanitizer
            # report (LeakSanitizer exits 23).
            self.cluster.unclean.append("%s exited %d on SIGTERM" % (self.name, rc))
        self.stopped = False
        return rc

    def log_size(self):
        """Current length of the log, to read only what comes after with log_since()."""
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        """The log's lines from byte offset on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return []

    def check_alive(self):
        """Fail if the process died while it should be running (a crash or an ASSERT)."""
        if self.expected_running and self.proc is not None and self.proc.poll() is not None:
            self.expected_running = False
            fail("%s exited unexpectedly with status %s (log: %s)" %
                 (self.name, self.proc.returncode, self.log_path))


class Mgmtd(Daemon):
    def __init__(self, cluster, name="mgmtd"):
        super().__init__(cluster, name)
        self.data_dir = os.path.join(cluster.dir, name + "-data")
        self.ready_file = os.path.join(cluster.dir, name + ".ready")
        self.port = 0
        self.uri = None  # for clients in the host namespace

    def argv(self):
        c = self.cluster
        host = "0.0.0.0" if c.listen_any else "127.0.0.1"
        return [c.bin_mgmtd,
                "--set", "mgmtd.listen=tcp://%s:%d" % (host, self.port),
                "--set", "mgmtd.data_dir=" + self.data_dir,
                "--set", "mgmtd.ready_file=" + self.ready_file,
                "--set", "mgmtd.heartbeat_ms=%dms" % c.heartbeat_ms,
                "--set", "mgmtd.lease_ms=%dms" % c.lease_ms,
                "--set", "mgmtd.check_interval_ms=%dms" % c.check_interval_ms,
                "--set", "log.level=info"]

    def start(self):
        for p in (self.ready_file, self.ready_file + ".tmp"):
            if os.path.exists(p):
                os.unlink(p)
        super().start()
        deadline = time.monotonic() + 15.0
        while not os.path.exists(self.ready_file):
            if not self.running():
                self.expected_running = False
                fail("%s exited with status %s before it was ready" %
                     (self.name, self.proc.returncode))
            if time.monotonic() > deadline:
                fail("%s not ready after 15 s" % self.name)
            time.sleep(0.02)
        with open(self.ready_file) as f:
            bound = f.read().strip()
        m = re.fullmatch(r"tcp://(.*):(\d+)", bound)
        if not m:
            fail("%s ready file holds %r, not tcp://HOST:PORT" % (self.name, bound))
        port = int(m.group(2))
        if self.port and port != self.port:
            fail("%s restarted on port %d, not %d" % (self.name, port, self.port))
        self.port = port
        self.uri = "tcp://127.0.0.1:%d" % port

    def uri_from(self, node):
        """The URI node reaches this mgmtd at (through its veth when in a namespace)."""
        if node.netns:
            return "tcp://%s:%d" % (node.host_ip, self.port)
        return self.uri


class StorageNode(Daemon):
    """A sluice-test-fakestor: registers `targets` targets and heartbeats their states."""

    def __init__(self, cluster, name, index, targets):
        super().__init__(cluster, name)
        self.index = index
        self.ntargets = targets
        self.state_dir = os.path.join(cluster.dir, name)
        self.control = os.path.join(cluster.dir, name + ".control")
        self.status_file = os.path.join(cluster.dir, name + ".status")
        self.addr = "tcp://127.0.0.%d:9000" % (10 + index)
        self.host_ip = None  # host end of the veth when in a namespace
        self.veth = None
        os.makedirs(self.state_dir, exist_ok=True)

    def argv(self):
        c = self.cluster
        return [c.bin_fakestor, "--mgmtd", c.mgmtd.uri_from(self),
                "--state-dir", self.state_dir, "--targets", str(self.ntargets),
                "--addr", self.addr, "--control", self.control,
                "--status", self.status_file]

    def start(self, keep_control=False):
        """Start the node. A restarted storage daemon reports its targets online, so the
        control file is removed unless keep_control. The old status file is removed."""
        if not keep_control and os.path.exists(self.control):
            os.unlink(self.control)
        if os.path.exists(self.status_file):
            os.unlink(self.status_file)  # a stale one would read as registered
        super().start()

    def status(self):
        """The status file as a dict (node_id, incarnation, fenced, routing_version: ints;
        targets: {index: id}), or None before the first one."""
        try:
            with open(self.status_file) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        st = {"targets": {}}
        for line in text.splitlines():
            w = line.split()
            if len(w) == 2 and w[0] in ("node_id", "incarnation", "fenced", "routing_version"):
                st[w[0]] = int(w[1])
            elif len(w) == 3 and w[0] == "target":
                st["targets"][int(w[1])] = int(w[2])
        return st

    def registered(self):
        """The status when registered, unfenced and every target id known; else None."""
        st = self.status()
        if (st and st.get("incarnation", 0) > 0 and st.get("fenced") == 0 and
                len(st["targets"]) == self.ntargets and all(st["targets"].values())):
            return st
        return None

    def target_ids(self):
        st = self.status()
        return [st["targets"][i] for i in range(self.ntargets)] if st else []

    def set_local(self, states):
        """Report local states: {index: 'offline'|'online'|'uptodate'} or one state for all
        targets. Written atomically; the node picks it up within 100 ms."""
        if isinstance(states, str):
            states = {i: states for i in range(self.ntargets)}
        tmp = self.control + ".tmp"
        with open(tmp, "w") as f:
            for i, s in sorted(states.items()):
                f.write("%d %s\n" % (i, s))
        os.rename(tmp, self.control)


class StorageDaemon(Daemon):
    """A real sluice-storage with `targets` target directories under the cluster dir. It
    listens on 127.0.0.(10+index) (its "host"), port picked at first start and kept across
    restarts, and registers with mgmtd under that address. extra: more --set options.

    Created with netns=True (Cluster(netns=True) needed) it runs in its own namespace,
    listens on the namespace end of its veth (10.231.X.2) and reaches mgmtd through the
    host end. Limitation: it cannot reach daemons on the host, which listen on 127.0.0.x
    (the host can reach it). So it must never have to connect to another storage daemon:
    make it the TAIL of its chain (`chain-table set --chain H1,H2,NS`) - its predecessor
    forwards writes and resync to it, and it forwards nothing. A restarted or resynced
    member goes last anyway, so the order holds while only it fails."""

    def __init__(self, cluster, name, index, targets, extra=()):
        super().__init__(cluster, name)
        self.index = index
        self.ntargets = targets
        self.state_dir = os.path.join(cluster.dir, name)
        self.target_dirs = [os.path.join(cluster.dir, "%s-t%d" % (name, i))
                            for i in range(targets)]
        self.ready_file = os.path.join(cluster.dir, name + ".ready")
        self.host = "127.0.0.%d" % (10 + index)
        self.port = 0
        self.addr = None
        self.extra = list(extra)
        os.makedirs(self.state_dir, exist_ok=True)

    def argv(self):
        c = self.cluster
        argv = [c.bin_storage,
                "--set", "storage.listen=tcp://%s:%d" % (self.host, self.port),
                "--set", "storage.mgmtd=" + c.mgmtd.uri_from(self),
                "--set", "storage.targets=" + ",".join(self.target_dirs),
                "--set", "storage.state_dir=" + self.state_dir,
                "--set", "storage.ready_file=" + self.ready_file,
                "--set", "storage.group_bytes=16MiB",
                "--set", "storage.reserve_bytes=16MiB",
                "--set", "storage.buffer_bytes=64MiB",
                "--set", "log.level=info"]
        for opt in self.extra:
            argv += ["--set", opt]
        return argv

    def start(self):
        for p in (self.ready_file, self.ready_file + ".tmp"):
            if os.path.exists(p):
                os.unlink(p)
        super().start()
        deadline = time.monotonic() + 30.0
        while not os.path.exists(self.ready_file):
            if not self.running():
                self.expected_running = False
                fail("%s exited with status %s before it was ready" %
                     (self.name, self.proc.returncode))
            if time.monotonic() > deadline:
                fail("%s not ready after 30 s" % self.name)
            time.sleep(0.02)
        with open(self.ready_file) as f:
            bound = f.read().strip()
        m = re.fullmatch(r"tcp://(.*):(\d+)", bound)
        if not m:
            fail("%s ready file holds %r" % (self.name, bound))
        if self.port and int(m.group(2)) != self.port:
            fail("%s restarted on port %s, not %d" % (self.name, m.group(2), self.port))
        self.port = int(m.group(2))
        self.addr = bound

    def node_info(self):
        """This daemon's entry in mgmtd's node list (matched by address), or None."""
        for n in self.cluster.nodes().values():
            if n["addrs"] == [self.addr]:
                return n
        return None

    def status(self):
        """What mgmtd knows of this daemon, like StorageNode.status(): node_id,
        incarnation, alive, targets {index: id} (matched by path); None if unknown."""
        n = self.node_info()
        if n is None:
            return None
        by_path = {t["path"]: t["id"] for t in self.cluster.targets().values()
                   if t["node"] == n["id"]}
        return {"node_id": n["id"], "incarnation": n["incarnation"], "alive": n["alive"],
                "targets": {i: by_path[p] for i, p in enumerate(self.target_dirs)
                            if p in by_path}}

    def registered(self):
        st = self.status()
        if st and st["alive"] and len(st["targets"]) == self.ntargets:
            return st
        return None

    def target_ids(self):
        st = self.status()
        return [st["targets"][i] for i in range(self.ntargets)] if st else []


# ---- network namespaces --------------------------------------------------------------------

def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    if check and r.returncode != 0:
        fail("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def netns_available():
    """(True, "") when we may create network namespaces and veths, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not root"
    if not shutil.which("ip"):
        return False, "no ip command (iproute2)"
    probe = "sluice-probe-%d" % os.getpid()
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return False, "ip netns add failed: " + r.stderr.strip()
    _ip("netns", "del", probe, check=False)
    return True, ""


# ---- the cluster -----------------------------------------------------------------------------

_live = []  # clusters not yet closed, for the atexit hook


class Snapshot:
    """One consistent view (a single routing version) of nodes, targets and chains."""

    def __init__(self, version, nodes, targets, chains):
        self.version = version
        self.nodes = nodes      # {id: node list --json entry}
        self.targets = targets  # {id: target list --json entry}
        self.chains = chains    # {id: chain list --json entry}

    def members(self, chain_id):
        """[(target, state)] head to tail."""
        return [(m["target"], m["state"]) for m in self.chains[chain_id]["members"]]

    def chains_of(self, target_ids):
        ids = set(target_ids)
        return sorted(c for c, ch in self.chains.items()
                      if any(m["target"] in ids for m in ch["members"]))

    def __repr__(self):
        ch = "; ".join("chain %d v%d %s" % (c, self.chains[c]["version"], " ".join(
            "%d(%s)" % m for m in self.members(c))) for c in sorted(self.chains))
        return "routing v%d: %s" % (self.version, ch or "no chains")


class Cluster:
    def __init__(self, test_name, build_dir, heartbeat_ms=100, lease_ms=1000,
                 check_interval_ms=100, netns=False, start_mgmtd=True):
        """A fresh cluster in its own temp dir. netns=True: the test uses network
        namespaces (raises TestSkip when unavailable) and mgmtd listens on 0.0.0.0."""
        self.build = os.path.abspath(build_dir)
        self.bin_mgmtd = os.path.join(self.build, "mgmtd", "sluice-mgmtd")
        self.bin_fakestor = os.path.join(self.build, "tests", "lib", "sluice-test-fakestor")
        self.bin_cli = os.path.join(self.build, "tools", "sluice")
        self.bin_storage = os.path.join(self.build, "storage", "sluice-storage")
        for b in (self.bin_mgmtd, self.bin_fakestor, self.bin_cli):
            if not os.access(b, os.X_OK):
                fail("%s is missing: build it first (ninja -C %s)" % (b, self.build))
        if netns:
            ok, why = netns_available()
            if not ok:
                skip("network namespaces unavailable: " + why)
        self.heartbeat_ms = heartbeat_ms
        self.lease_ms = lease_ms
        self.check_interval_ms = check_interval_ms
        self.listen_any = netns
        self.dir = tempfile.mkdtemp(prefix="sluice-%s-" % test_name)
        self.daemons = {}
        self.storage = []
        self.netns_created = []
        self.veths_created = []
        self.closed = False
        self.unclean = []  # daemons that did not stop cleanly on SIGTERM
        _live.append(self)
        log("cluster dir %s" % self.dir)
        self.mgmtd = Mgmtd(self)
        self.daemons["mgmtd"] = self.mgmtd
        if start_mgmtd:
            try:
                self.mgmtd.start()
            except BaseException:
                self.close(True)  # no with-block yet to do it
                raise
            log("mgmtd on %s" % self.mgmtd.uri)

    # -- context manager and cleanup --

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        failed = etype is not None and not issubclass(etype, TestSkip)
        if failed:
            print("FAILED: %s" % (evalue if isinstance(evalue, TestFailure) else
                                  "".join(traceback.format_exception(etype, evalue, tb))),
                  flush=True)
        crashed = self.close(failed)
        if crashed and not failed:
            raise TestFailure("daemons died or stopped badly: " + ", ".join(crashed))
        return False

    def close(self, failed):
        """Stop everything, remove what we created; keep the dir and print the logs if
        failed or a daemon died on its own or did not exit 0 on SIGTERM. Returns those
        daemons' descriptions."""
        if self.closed:
            return []
        self.closed = True
        if self in _live:
            _live.remove(self)
        crashed = []
        for d in self.daemons.values():
            if d.expected_running and d.proc is not None and d.proc.poll() is not None:
                crashed.append("%s (status %s)" % (d.name, d.proc.returncode))
        if failed and self.mgmtd.running() and not self.mgmtd.stopped:
            self._dump_routing()
        # Storage first, so mgmtd does not log their leases running out. Every step is
        # attempted even if one before it fails.
        for d in sorted(self.daemons.values(), key=lambda d: d is self.mgmtd):
            try:
                d.halt()
            except Exception as e:
                print("cannot stop %s: %s" % (d.name, e), flush=True)
        self._net_cleanup()
        crashed += self.unclean
        if crashed:
            print("daemons that died or stopped badly: %s" % ", ".join(crashed), flush=True)
            failed = True
        if failed:
            for d in self.daemons.values():
                print("---- tail of %s ----" % d.log_path)
                for line in _tail(d.log_path):
                    print("  " + line)
            print("kept %s for inspection" % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return crashed

    def _dump_routing(self):
        for what in (("node", "list"), ("chain", "list"), ("target", "list")):
            try:
                r = self.cli(*what, check=False)
                print("---- sluice %s ----\n%s%s" % (" ".join(what), r.stdout, r.stderr))
            except Exception as e:  # diagnostics only: never block the cleanup
                print("---- sluice %s: %s" % (" ".join(what), e))

    def _net_cleanup(self):
        for args in [("link", "del", v) for v in self.veths_created] + \
                [("netns", "del", ns) for ns in self.netns_created]:
            try:
                r = _ip(*args, check=False)
                if r.returncode != 0:
                    print("cleanup: ip %s: %s" % (" ".join(args), r.stderr.strip()))
            except Exception as e:
                print("cleanup: ip %s: %s" % (" ".join(args), e))
        self.veths_created = []
        self.netns_created = []

    # -- daemons --

    def add_storage(self, count=1, targets=1, start=True, netns=False):
        """Add count fakestor nodes named s0, s1, ... with `targets` targets each; start
        them unless start=False. Returns their names."""
        names = []
        for _ in range(count):
            i = len(self.storage)
            node = StorageNode(self, "s%d" % i, i, targets)
            if netns:
                self._put_in_netns(node)
            self.storage.append(node)
            self.daemons[node.name] = node
            names.append(node.name)
            if start:
                node.start()
        return names

    def add_storage_daemons(self, count=1, targets=1, start=True, extra=(), netns=False):
        """Add count real sluice-storage daemons named d0, d1, ... with `targets` target
        directories each; start them unless start=False. Returns their names. netns=True:
        each in its own network namespace (see StorageDaemon for what that limits)."""
        if not os.access(self.bin_storage, os.X_OK):
            fail("%s is missing: build it first" % self.bin_storage)
        if netns and not self.listen_any:
            fail("namespaced storage daemons need Cluster(netns=True): mgmtd on 0.0.0.0")
        names = []
        for _ in range(count):
            i = len(self.storage)
            node = StorageDaemon(self, "d%d" % i, i, targets, extra)
            if netns:
                self._put_in_netns(node)
                node.host = node.ns_ip  # listen on the namespace end of the veth
                node.addr = None  # the bound URI, known once started
            self.storage.append(node)
            self.daemons[node.name] = node
            names.append(node.name)
            if start:
                node.start()
        return names

    def node(self, name):
        return self.daemons[name]

    def start(self, name, **kw):
        self.daemons[name].start(**kw)

    def kill(self, name, sig=signal.SIGKILL):
        """Send sig to the daemon. A terminating signal also waits for it to exit."""
        d = self.daemons[name]
        if sig in (signal.SIGSTOP, signal.SIGCONT, signal.SIGTSTP):
            if not d.send(sig):
                fail("%s is not running" % name)
            return
        d.expected_running = False
        if not d.send(sig):
            fail("%s is not running" % name)
        if d.stopped and sig != signal.SIGKILL:
            d.send(signal.SIGCONT)  # let a stopped process act on sig
        if d.wait_exit(10.0) is None:
            fail("%s did not exit within 10 s of signal %d" % (name, sig))
        d.stopped = False

    def stop(self, name):
        """SIGTERM (SIGKILL after 5 s); returns the exit status."""
        return self.daemons[name].halt()

    def restart(self, name, sig=signal.SIGTERM, **kw):
        d = self.daemons[name]
        if d.running():
            if sig == signal.SIGTERM:
                d.halt()
            else:
                self.kill(name, sig)
        d.start(**kw)

    def stop_all(self):
        for d in sorted(self.daemons.values(), key=lambda d: d is self.mgmtd):
            d.halt()

    def check_daemons(self):
        for d in self.daemons.values():
            d.check_alive()

    def wait_until(self, pred, timeout, what, interval=0.05, state=None):
        """wait_until that also fails at once when a daemon dies unexpectedly."""
        def guarded():
            self.check_daemons()
            return pred()
        if state is None and self.mgmtd.running() and not self.mgmtd.stopped:
            state = self.snapshot
        return wait_until(guarded, timeout, what, interval, state)

    def wait_registered(self, names=None, timeout=10.0):
        """Wait until the nodes (default: all running storage nodes) are registered and
        unfenced; returns {name: status}."""
        nodes = [self.daemons[n] for n in names] if names else \
            [s for s in self.storage if s.expected_running]

        def all_registered():
            sts = {n.name: n.registered() for n in nodes}
            return sts if all(sts.values()) else None
        return self.wait_until(all_registered, timeout,
                               "nodes %s registered" % ",".join(n.name for n in nodes),
                               state=lambda: {n.name: n.status() for n in nodes})

    # -- the CLI --

    def cli(self, *args, check=True):
        """Run `sluice --mgmtd URI --timeout MS ARGS`; fails the test on a non-zero exit
        unless check=False. Returns the CompletedProcess (text stdout/stderr)."""
        argv = [self.bin_cli, "--mgmtd", self.mgmtd.uri, "--timeout", str(CLI_TIMEOUT_MS)]
        argv += [str(a) for a in args]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_MS / 1000 + 30)
        if check and r.returncode != 0:
            fail("sluice %s exited %d: %s" % (" ".join(argv[5:]), r.returncode,
                                               r.stderr.strip()))
        return r

    def cli_json(self, *args):
        r = self.cli(*(list(args) + ["--json"]))
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            fail("sluice %s --json printed invalid JSON (%s): %r" %
                 (" ".join(map(str, args)), e, r.stdout[:500]))

    def routing_version(self):
        return self.cli_json("status")["routing_version"]

    def nodes(self):
        return {n["id"]: n for n in self.cli_json("node", "list")["nodes"]}

    def targets(self):
        return {t["id"]: t for t in self.cli_json("target", "list")["targets"]}

    def chains(self):
        return {c["id"]: c for c in self.cli_json("chain", "list")["chains"]}

    def snapshot(self):
        """Nodes, targets and chains of one routing version (retried while it moves)."""
        for _ in range(20):
            nl = self.cli_json("node", "list")
            tl = self.cli_json("target", "list")
            cl = self.cli_json("chain", "list")
            v = nl["routing_version"]
            if tl["routing_version"] == v and cl["routing_version"] == v:
                return Snapshot(v, {n["id"]: n for n in nl["nodes"]},
                                {t["id"]: t for t in tl["targets"]},
                                {c["id"]: c for c in cl["chains"]})
        fail("routing version kept changing across 20 snapshots")

    # -- network partitions --

    def _put_in_netns(self, node):
        tag = "%d%s" % (os.getpid(), node.name)
        ns = "sluice-%s" % tag
        host_if = ("slh" + tag)[:15]
        ns_if = ("sln" + tag)[:15]
        with open(_LOCK_PATH, "a") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)  # two tests must not pick the same subnet
            used = set(int(x) for x in re.findall(
                r"inet %s\.(\d+)\." % re.escape(NETNS_SUBNET),
                _ip("-o", "-4", "addr", "show").stdout))
            x = next((x for x in range(256) if x not in used), None)
            if x is None:
                fail("no free %s.X.0/30 subnet" % NETNS_SUBNET)
            _ip("netns", "add", ns)
            self.netns_created.append(ns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
            self.veths_created.append(host_if)
            host_ip, ns_ip = "%s.%d.1" % (NETNS_SUBNET, x), "%s.%d.2" % (NETNS_SUBNET, x)
            _ip("addr", "add", host_ip + "/30", "dev", host_if)
            _ip("link", "set", host_if, "up")
        _ip("link", "set", ns_if, "netns", ns)
        _ip("-n", ns, "addr", "add", ns_ip + "/30", "dev", ns_if)
        _ip("-n", ns, "link", "set", ns_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        node.netns = ns
        node.veth = host_if
        node.host_ip = host_ip
        node.ns_ip = ns_ip
        node.addr = "tcp://%s:9000" % ns_ip
        log("%s in namespace %s: %s <-> %s over %s" % (node.name, ns, ns_ip, host_ip, host_if))

    def partition(self, name):
        """Cut a namespaced node off (its veth down): packets are dropped, not refused."""
        node = self.daemons[name]
        check(node.netns, "%s is not in a network namespace" % name)
        _ip("link", "set", node.veth, "down")

    def heal(self, name):
        node = self.daemons[name]
        check(node.netns, "%s is not in a network namespace" % name)
        _ip("link", "set", node.veth, "up")


# ---- running a test ---------------------------------------------------------------------------

class _Interrupted(Exception):
    pass


def _on_signal(sig, frame):
    # Restore defaults first: a second signal while cleaning up must not re-enter.
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL if s != signal.SIGINT else signal.default_int_handler)
    raise _Interrupted("interrupted by signal %d" % sig)


def _atexit_cleanup():
    for c in list(_live):
        try:
            c.close(True)
        except Exception as e:
            print("cleanup of %s: %s" % (c.dir, e), file=sys.stderr)


atexit.register(_atexit_cleanup)


def main(test_fn, **cluster_kw):
    """Run test_fn(cluster) on a fresh Cluster built from argv[1] (the build dir, default
    $SLUICE_BUILD_DIR or ./build) and exit 0, 1 or 77. cluster_kw go to Cluster()."""
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    build = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SLUICE_BUILD_DIR", "build")
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    if name.startswith("test_"):
        name = name[5:]
    try:
        with Cluster(name, build, **cluster_kw) as c:
            test_fn(c)
    except TestSkip as e:
        print("SKIP: %s" % e, flush=True)
        sys.exit(SKIP_EXIT)
    except TestFailure as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
    except BaseException as e:  # noqa: B902 - anything else is a failure too
        if isinstance(e, SystemExit) and e.code in (0, None):
            raise
        traceback.print_exc()
        print("FAIL: %s" % (e,), flush=True)
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)
