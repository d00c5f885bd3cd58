"""A randomized stress test of the control plane (issue 12): around pin 7,
held under a lease (renewed or not), clients that never read, bursts of
state/info/sim/task frames to other pins, disconnects and SIGKILLs of other
pins' workers. In every run: the lease fires within 50 ms of its deadline, a
fresh connection's ping is answered within 100 ms, and no process outlives
the server. Seeded (one run per seed), every wait and loop bounded."""
import json
import os
import random
import signal
import threading
import time

import psutil
import pytest

from remoteio.testing import MuteClient, RawClient, ServerProcess, wait_until

LEASED = 7
OTHERS = (11, 12, 13, 15, 16, 18, 22)
SEEDS = (1, 7, 10, 34, 42)  # wait/nowait; leases of 500..1200 ms renewed 0..3 times
PING_BOUND_S = 0.1
LEASE_BOUND_MS = 50.0
MS = 1_000_000


def random_frames(rng: random.Random, count: int) -> bytes:
    """*count* frames for pins other than the leased one, all valid."""
    out = []
    for n in range(count):
        pin = rng.choice(OTHERS)
        kind = rng.random()
        if kind < 0.35:
            frame = {"op": "state", "pin": pin}
        elif kind < 0.45:
            frame = {"op": "info"}
        elif kind < 0.55:
            frame = {"op": "sim", "action": rng.choice(("history", "levels")), "pin": pin}
        elif kind < 0.65:
            frame = {"op": "read", "pin": pin}
        else:
            frame = rng.choice((
                {"op": "on"}, {"op": "off"}, {"op": "on", "time_ms": rng.choice((1, 5, 20))},
                {"op": "off", "time_ms": 2}, {"op": "value", "level": round(rng.random(), 3)},
                {"op": "blink", "on_time": 0.002, "off_time": 0.003},
                {"op": "pulse", "fade_in_time": 0.01, "fade_out_time": 0.01, "time_ms": 30},
                {"op": "on", "lease_ms": rng.choice((5, 50))}))
            frame["pin"] = pin
        out.append(json.dumps({"id": n, **frame}))
    return ("\n".join(out) + "\n").encode()


class Pinger(threading.Thread):
    """Pings every 20 ms, on a fresh connection every 10 pings: the latencies
    of each hello and ping; one not answered within 1 s counts as 1 s and ends it."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.address, self.latencies, self.done = address, [], threading.Event()

    def run(self) -> None:
        for _ in range(100):  # connections
            sent = time.monotonic()
            try:
                conn = RawClient(self.address, timeout=1.0)
                conn.hello()
            except OSError:
                self.latencies.append(1.0)
                return
            self.latencies.append(time.monotonic() - sent)
            try:
                for n in range(10):
                    if self.done.wait(0.02):
                        return
                    sent = time.monotonic()
                    try:
                        conn.call({"id": n, "op": "ping"})
                    except OSError:
                        self.latencies.append(1.0)
                        return
                    self.latencies.append(time.monotonic() - sent)
            finally:
                conn.close()


class Observer:
    """A connection of the test's own, for what it asks the server process:
    its workers' pids (from ``info``) and a pin's history (``sim history``)."""

    def __init__(self, address):
        self.conn = RawClient(address, timeout=5.0)
        self.conn.hello()
        self.lock = threading.Lock()

    def worker_pids(self) -> dict:
        with self.lock:
            info = self.conn.call({"id": "info", "op": "info"})
        return {p["pin"]: p["pid"] for p in info["pins"] if p.get("pid")}

    def history(self, pin: int, since_ns: int) -> list:
        with self.lock:
            return self.conn.call({"id": "h", "op": "sim", "action": "history", "pin": pin,
                                   "since_ns": since_ns})["history"]

    def close(self) -> None:
        self.conn.close()


class Chaos(threading.Thread):
    """Runs a seeded schedule of abuse until stopped."""

    def __init__(self, server: ServerProcess, observer: Observer, rng: random.Random, ours: set):
        super().__init__(daemon=True)
        self.server, self.observer, self.rng, self.ours = server, observer, rng, ours
        self.stop, self.mutes, self.kills, self.errors = threading.Event(), [], 0, []
        self.schedule = sorted((rng.uniform(0, 2.5), rng.choice(
            ("mute", "mute", "burst", "burst", "disconnect", "kill"))) for _ in range(rng.randint(8, 16)))
        # the payloads, made before the clock starts
        self.payloads = [random_frames(rng, rng.choice((200, 2000, 8000, 20000))) for _ in self.schedule]

    def run(self) -> None:
        started = time.monotonic()
        for (at, action), payload in zip(self.schedule, self.payloads):
            if self.stop.wait(max(0.0, started + at - time.monotonic())):
                return
            try:
                getattr(self, action)(payload)
            except Exception as exc:  # report it, never die silently
                self.errors.append(f"{action}: {exc!r}")

    def mute(self, payload: bytes) -> None:
        self.mutes.append(MuteClient(self.server.address, payload))

    def burst(self, payload: bytes) -> None:
        mute = MuteClient(self.server.address, payload[:payload.rfind(b"\n", 0, 200_000) + 1])
        mute.thread.join(2)
        mute.close()  # a disconnect right after the burst

    def disconnect(self, payload: bytes) -> None:
        if self.mutes:
            self.mutes.pop(self.rng.randrange(len(self.mutes))).close()

    def kill(self, payload: bytes) -> None:
        """SIGKILL the worker of another pin, only if it is a process of ours."""
        pids = {pin: pid for pin, pid in self.observer.worker_pids().items() if pin != LEASED}
        if pids:
            pid = pids[self.rng.choice(sorted(pids))]
            if pid in {p.pid for p in psutil.Process().children(recursive=True)} - self.ours:
                os.kill(pid, signal.SIGKILL)
                self.kills += 1

    def close(self) -> None:
        self.stop.set()
        self.join(10)
        for mute in self.mutes:
            mute.close()


def write_timed(holder: RawClient, write: dict):
    sent = time.monotonic_ns()
    reply = holder.call(write)
    return sent, time.monotonic_ns(), reply


@pytest.mark.parametrize("seed", SEEDS)
def test_random_abuse_never_delays_the_lease_or_a_ping_and_leaks_no_process(seed, tmp_path):
    """The server runs as its own process, as it does on a Pi (the test's
    threads do not share its interpreter)."""
    rng = random.Random(seed)
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    mode = rng.choice(("wait", "nowait"))
    lease_ms = rng.choice((500, 800, 1200))
    renewals = rng.randint(0, 3)
    server = ServerProcess("--sim", "--mode", mode, workdir=tmp_path, start_timeout=20)
    try:
        observer = Observer(server.address)
        try:
            holder = RawClient(server.address, timeout=1.0)
            holder.hello()
            assert holder.call({"id": "open", "op": "open", "pin": LEASED})["ok"]
            chaos, pinger = Chaos(server, observer, rng, before), Pinger(server.address)
            write = {"id": "lease", "op": "on", "pin": LEASED, "lease_ms": lease_ms}
            try:
                sent, answered, reply = write_timed(holder, write)
                assert reply["ok"], reply
                chaos.start()
                pinger.start()
                for _ in range(renewals):  # each before the current deadline
                    time.sleep(lease_ms / 1000 * rng.uniform(0.3, 0.7))
                    try:
                        sent, answered, reply = write_timed(holder, write)
                    except OSError:
                        pytest.fail("a lease renewal was not answered within 1 s")
                    assert reply.get("renewed") is True, reply
                deadline = sent + lease_ms * MS
                fell = wait_until(lambda: next((t for t, v in observer.history(LEASED, sent)
                                                if t > sent and v < 0.5), None),
                                  timeout=lease_ms / 1000 + 3)
                assert fell, f"the lease of pin {LEASED} never fired"
                early_ms = (deadline - fell) / MS
                late_ms = (fell - answered) / MS - lease_ms
                assert early_ms <= 1, f"the lease fired {early_ms:.1f} ms early"
                assert late_ms <= LEASE_BOUND_MS, f"the lease fired {late_ms:.1f} ms late"
                try:  # the holder is told (its pings collect the event)
                    told = wait_until(lambda: holder.call({"id": "p", "op": "ping"}) and any(
                        e["event"] == "lease_expired" for e in holder.events), timeout=3)
                except OSError:
                    pytest.fail("the lease holder's ping was not answered within 1 s")
                assert told, "the lease holder got no lease_expired within 3 s"
            finally:
                pinger.done.set()
                pinger.join(5)
                chaos.close()
                holder.close()
            assert not chaos.errors, chaos.errors
            assert len(pinger.latencies) >= 10, pinger.latencies
            worst = max(pinger.latencies)
            assert worst < PING_BOUND_S, \
                f"a hello/ping took {worst * 1000:.0f} ms ({mode}, {chaos.kills} kills)"
        finally:
            observer.close()
        assert server.terminate() == 0
        assert wait_until(lambda: not {p.pid for p in me.children(recursive=True)} - before,
                          timeout=10), "processes outlived the server"
    finally:
        server.kill()
        for pid in {p.pid for p in me.children(recursive=True)} - before:  # the server's, left over
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
