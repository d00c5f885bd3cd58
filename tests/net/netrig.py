"""The network-fault rig: two namespaces joined by a veth pair, a server in one,
clients in the other, faults made by tc (netem, tbf) and nftables.

Runs as root inside the VM of tests/hw (tests/net/run.sh): the VM's kernel has
sch_netem, this machine's has not. Every fault is real: packets dropped,
delayed, reordered or throttled by the kernel, never a mock.

    server ns "rio-s": veth "rio-vs" 10.77.0.1/24, the server (sim backend)
    client ns "rio-c": veth "rio-vc" 10.77.0.2/24 (+ .3 for an address change)

Faults are applied on the client's side only (its veth's qdisc, its nftables),
so the server's own loopback (the observer's way in) is never touched.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, NamedTuple, Optional

from remoteio import testing

SERVER_NS, CLIENT_NS = "rio-s", "rio-c"
SERVER_IF, CLIENT_IF = "rio-vs", "rio-vc"
SERVER_IP, CLIENT_IP, CLIENT_IP2 = "10.77.0.1", "10.77.0.2", "10.77.0.3"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_ns_lock = threading.Lock()


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (a list of words, never a shell string); its output captured."""
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stdout}")
    return r


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *args, check=check)


KEEP_NS = "rio-keep"
KEEP_RULES = "table inet keep {\n" + "".join(
    f"  chain {hook} {{ type filter hook {hook} priority 0; policy accept; }}\n"
    for hook in ("prerouting", "input", "forward", "output", "postrouting")) + "}\n"


def hold_hook_keys() -> None:
    """Hold netfilter's hook keys on for the whole run: a table of empty accept chains
    on every inet hook, in a namespace of its own that nothing else touches.

    Why: the kernel switches the code of its packet path (a static key: int3, then the
    new bytes) each time the first hook of a kind comes or the last goes, and the faults
    below add and delete tables many times. Under QEMU's multi-threaded TCG a vCPU can
    still run the old translation with the int3 in it after the patch is done, and the
    guest kernel dies (seen once in CI: "Oops: int3" in ip_local_deliver, mid-chaos).
    With a table always there, the faults' tables only count up and down: no patching.
    The namespace is left in place (the VM's guest is thrown away; elsewhere an
    empty table in a namespace of its own changes no packet's path)."""
    if KEEP_NS not in sh("ip", "netns", "list").stdout.split():
        sh("ip", "netns", "add", KEEP_NS)
    if in_ns(KEEP_NS, "nft", "list", "table", "inet", "keep", check=False).returncode == 0:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".nft") as f:
        f.write(KEEP_RULES)
        f.flush()
        in_ns(KEEP_NS, "nft", "-f", f.name)


def create() -> None:
    """The two namespaces and the veth pair between them (from scratch)."""
    destroy()
    hold_hook_keys()
    for ns in (SERVER_NS, CLIENT_NS):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", SERVER_IF, "netns", SERVER_NS, "type", "veth",
       "peer", "name", CLIENT_IF, "netns", CLIENT_NS)
    sh("ip", "-n", SERVER_NS, "addr", "add", f"{SERVER_IP}/24", "dev", SERVER_IF)
    sh("ip", "-n", CLIENT_NS, "addr", "add", f"{CLIENT_IP}/24", "dev", CLIENT_IF)
    for ns, dev in ((SERVER_NS, SERVER_IF), (CLIENT_NS, CLIENT_IF)):
        sh("ip", "-n", ns, "link", "set", dev, "up")


def destroy() -> None:
    for ns in (SERVER_NS, CLIENT_NS):
        sh("ip", "netns", "del", ns, check=False)


@contextlib.contextmanager
def netns(ns: str) -> Iterator[None]:
    """Make sockets (and threads) created inside the block belong to *ns*.

    setns() moves only the calling thread; a thread it starts inherits the
    namespace, so a RemoteServer made here reconnects from here too (its
    keeper thread). The lock keeps two threads from swapping namespaces at once."""
    with _ns_lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {ns}")
            try:
                yield
            finally:
                if _libc.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(home)
            os.close(target)


# ---- faults (all on the client's side) ------------------------------------------------

class Faults:
    """What is done to the link now; clear() undoes all of it."""

    def __init__(self) -> None:
        self.active: List[str] = []

    def _qdisc(self, *spec: str) -> None:
        in_ns(CLIENT_NS, "tc", "qdisc", "del", "dev", CLIENT_IF, "root", check=False)
        if spec:
            in_ns(CLIENT_NS, "tc", "qdisc", "add", "dev", CLIENT_IF, "root", *spec)

    def _nft(self, *chains: str) -> None:
        """Drop every packet of the hooks given ("input", "output") in the client ns:
        no FIN, no RST, nothing (a Wi-Fi gone, a cable pulled)."""
        in_ns(CLIENT_NS, "nft", "delete", "table", "inet", "rio", check=False)
        if not chains:
            return
        rules = "table inet rio {\n" + "".join(
            f"  chain {c} {{ type filter hook {c} priority 0; policy accept; "
            f"oifname \"{CLIENT_IF}\" drop; iifname \"{CLIENT_IF}\" drop; }}\n" for c in chains) + "}\n"
        with tempfile.NamedTemporaryFile("w", suffix=".nft") as f:
            f.write(rules)
            f.flush()
            in_ns(CLIENT_NS, "nft", "-f", f.name)

    def partition(self) -> None:
        """Everything dropped, both ways."""
        self._nft("input", "output")
        self.active.append("partition")

    def half_open(self, drop: str = "output") -> None:
        """One direction dropped: "output" (the client's packets never reach the
        server) or "input" (the server's never reach the client)."""
        self._nft(drop)
        self.active.append(f"drop {drop}")

    def netem(self, *spec: str) -> None:
        """e.g. netem("loss", "30%") or netem("delay", "500ms", "200ms", "reorder", "25%")."""
        self._qdisc("netem", *spec)
        self.active.append("netem " + " ".join(spec))

    def bandwidth(self, rate: str = "64kbit") -> None:
        self._qdisc("tbf", "rate", rate, "burst", "4kb", "latency", "400ms")
        self.active.append(f"tbf {rate}")

    def clear(self) -> None:
        self._qdisc()
        self._nft()
        self.active.clear()

    def new_address(self) -> None:
        """The client's address changes (DHCP, another Wi-Fi): the old one is
        gone (its connections half-open on the server), a new one comes."""
        # (deleted first: deleting a primary address takes its secondaries along)
        in_ns(CLIENT_NS, "ip", "addr", "del", f"{CLIENT_IP}/24", "dev", CLIENT_IF)
        in_ns(CLIENT_NS, "ip", "addr", "add", f"{CLIENT_IP2}/24", "dev", CLIENT_IF)

    def old_address(self) -> None:
        in_ns(CLIENT_NS, "ip", "addr", "del", f"{CLIENT_IP2}/24", "dev", CLIENT_IF, check=False)
        in_ns(CLIENT_NS, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", CLIENT_IF, check=False)


# ---- the server -----------------------------------------------------------------------

class ServerProcess:
    """`remoteio serve --sim` in the server namespace, its log in a file."""

    def __init__(self, workdir: Path, on_disconnect: str = "finish", port: int = 0) -> None:
        self.workdir = workdir
        self.on_disconnect = on_disconnect
        self.port = port
        self.proc: Optional[subprocess.Popen] = None
        self.log = workdir / "server.log"

    def start(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", SERVER_NS, sys.executable, "-m", "remoteio", "serve", "--sim",
                 "--host", SERVER_IP, "--port", str(self.port), "--no-advertise",
                 "--on-disconnect", self.on_disconnect, "--log-level", "debug"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            m = re.search(r"serving on \S+ port (\d+)", text)
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL (ip netns exec execs the server: the pid is the server's)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# ---- the guest's own timer floor, and its CPU's pace -----------------------------------

# A process of its own (as a pin worker is) that sleeps in select() for
# INTERVAL_S at a time and keeps how late each wake was; every CPU_EVERY-th
# wake it also times a fixed loop of Python (calibrated at its start to take
# at least CPU_MS: the quickest of 5 runs is its pace then) and keeps how much
# longer it took than at the start. A line on its stdin asks for
# "count worst_ms p99_ms samples slowest_x p90_x base_ms" so far.
_FLOOR_CHILD = """
import select, sys, time
interval, every, target = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
def work(n):
    start, x = time.monotonic(), 0
    for i in range(n):
        x += i
    return time.monotonic() - start
n = 1000
while True:  # the quickest of 5 runs: a stall in one does not shrink the loop
    base = min(work(n) for _ in range(5))
    if base >= target:
        break
    n *= 2
late, slow = [], []
while True:
    start = time.monotonic()
    if select.select([sys.stdin], [], [], interval)[0]:
        if not sys.stdin.readline():
            break
        ranked, paced = sorted(late) or [0.0], sorted(slow) or [1.0]
        print(len(late), ranked[-1], ranked[int(0.99 * (len(ranked) - 1))], len(slow),
              paced[-1], paced[int(0.9 * (len(paced) - 1))], base * 1000, flush=True)
        continue
    late.append((time.monotonic() - start - interval) * 1000)
    if len(late) % every == 0:
        slow.append(work(n) / base)
"""


class FloorReport(NamedTuple):
    wakes: int
    worst_ms: float  # the latest wake
    p99_ms: float
    samples: int  # CPU loops timed
    slowest_x: float  # the slowest loop, against the pace at the start
    p90_x: float
    base_ms: float  # the loop at the start


class TimerFloor:
    """How late a plain timer wakes in this guest, and how much slower its
    CPU runs than at the start, under the load of the same run: the floor
    under every timing bound here (a lease's revert, a heartbeat's check are
    timers of their own processes; the work around them runs at the guest's
    pace). A test's bound is the documented figure + the floor's worst
    lateness measured meanwhile for each timer or thread wake on its path,
    + its own work, measured at the start, at the slowest pace seen
    (`allowance`).

        with TimerFloor() as floor:
            ...
            assert late_ms <= 50 + floor.worst_ms()
    """

    INTERVAL_S = 0.02
    CPU_EVERY = 5  # wakes: a loop every 100 ms
    CPU_MS = 4.0  # about 4 % of one guest CPU

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None

    def __enter__(self) -> "TimerFloor":
        self.proc = subprocess.Popen([sys.executable, "-c", _FLOOR_CHILD, str(self.INTERVAL_S),
                                      str(self.CPU_EVERY), str(self.CPU_MS)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.report()  # calibrated: its pace at the start is taken before the test's work
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def report(self) -> FloorReport:
        self.proc.stdin.write("report\n")
        self.proc.stdin.flush()
        ready = select.select([self.proc.stdout], [], [], 30)[0]
        if not ready:
            raise RuntimeError("the timer floor's process did not answer")
        words = self.proc.stdout.readline().split()
        return FloorReport(int(words[0]), float(words[1]), float(words[2]), int(words[3]),
                           float(words[4]), float(words[5]), float(words[6]))

    def worst_ms(self) -> float:
        return self.report().worst_ms

    def allowance(self, wakes: int, work_s: float) -> float:
        """Seconds a path may run past its documented figure in this guest now:
        each of its *wakes* (a timer, a thread woken) as late as the latest
        wake seen, and its *work_s* of work (measured at the start: `call_work`)
        at the slowest pace the CPU loop saw meanwhile (never faster than then)."""
        r = self.report()
        return wakes * r.worst_ms / 1000 + work_s * max(1.0, r.slowest_x)

    def describe(self) -> str:
        r = self.report()
        return (f"timer floor: {r.wakes} wakes of {self.INTERVAL_S * 1000:g} ms, "
                f"worst {r.worst_ms:.1f} ms late, p99 {r.p99_ms:.1f} ms; CPU: {r.samples} loops "
                f"of {r.base_ms:.1f} ms, the slowest x{r.slowest_x:.2f}, p90 x{r.p90_x:.2f}")


def call_work(client: Any, calls: int = 5) -> float:
    """A call's work in this guest now (s): the slowest of a few pings, each
    the client's send, the server's answer and the client's wake for it."""
    took = []
    for _ in range(calls):
        start = time.monotonic()
        client.ping()
        took.append(time.monotonic() - start)
    return max(took)


def rising_edges(history: list, since_ns: int = 0) -> List[int]:
    """The times (ns) the pin went from low to high, in a sim history."""
    out, last = [], 0.0
    for t, value in history:
        if value > 0 and last <= 0 and t >= since_ns:
            out.append(t)
        last = value
    return out


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """remoteio.testing's, polling a little less often (the guest is slow)."""
    return testing.wait_until(predicate, timeout, interval)
