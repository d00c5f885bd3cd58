"""The chaos run: a seeded random schedule of network faults against several
clients, and a checker of what docs/reliability.md promises whatever happens.

REMOTEIO_CHAOS_S (default 120) sets its length, REMOTEIO_CHAOS_SEED its seed
(default: a fresh one); a failing run names its seed, so it can be re-run."""
from __future__ import annotations

import os
import random
import threading
import time

from netrig import rising_edges, wait_until
from remoteio.errors import RemoteIOError

CHAOS_S = float(os.environ.get("REMOTEIO_CHAOS_S") or 120)
TIMEOUT = 2.0
FAULTS = ["partition", "half_output", "half_input", "loss", "delay", "bandwidth", "clear", "clear"]


def apply(faults, kind: str, rng: random.Random) -> None:
    faults.clear()
    if kind == "partition":
        faults.partition()
    elif kind.startswith("half_"):
        faults.half_open(kind[5:])
    elif kind == "loss":
        faults.netem("loss", f"{rng.choice([10, 30, 50])}%")
    elif kind == "delay":
        faults.netem("delay", f"{rng.choice([100, 500, 2000])}ms", "100ms", "reorder", "25%")
    elif kind == "bandwidth":
        faults.bandwidth("32kbit")


class Worker(threading.Thread):
    """One client: on, off, on, off... on its own pin, counting the ons sent
    and the ons acknowledged right after an acknowledged off (each of those
    must be a rising edge on the pin: nothing can merge it away)."""

    def __init__(self, client, board: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.client, self.board, self.stop = client, board, stop
        self.sent = self.acked = 0
        self.slowest = 0.0
        self.changes = []
        client.when_connection_changed = self.changes.append

    def timed(self, fn, *args):
        start = time.monotonic()
        try:
            return fn(*args)
        finally:
            self.slowest = max(self.slowest, time.monotonic() - start)

    def run(self) -> None:
        pin, low = None, False
        while not self.stop.is_set():
            try:
                if pin is None:
                    pin = self.timed(self.client.pin, self.board)
                    self.timed(pin.off)
                    low = True
                self.sent += 1
                self.timed(pin.on)
                self.acked += low
                low = False
                self.timed(pin.off)
                low = True
            except RemoteIOError:
                low = False
                time.sleep(0.2)
            time.sleep(0.05)


def test_a_seeded_chaos_of_faults_breaks_no_promise(faults, connect, observer):
    seed = int(os.environ.get("REMOTEIO_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"chaos: seed {seed}, {CHAOS_S:g} s (REMOTEIO_CHAOS_SEED={seed} to re-run)")
    stop = threading.Event()
    workers = [Worker(connect(timeout=TIMEOUT, heartbeat=1.0), board, stop) for board in (7, 11, 13)]
    for worker in workers:
        worker.start()
    schedule = []
    end = time.monotonic() + CHAOS_S
    try:
        while time.monotonic() < end:
            kind = rng.choice(FAULTS)
            hold = rng.uniform(1, 8)
            schedule.append((kind, round(hold, 1)))
            apply(faults, kind, rng)
            time.sleep(min(hold, max(0.0, end - time.monotonic())))
        faults.clear()
        assert all(wait_until(lambda w=w: w.client.connected, timeout=30) for w in workers), \
            f"seed {seed}: a client did not come back; schedule {schedule}"
        time.sleep(3)  # a few pulses on a healthy link
    finally:
        stop.set()
        for worker in workers:
            worker.join(TIMEOUT + 5)
    print(f"chaos: schedule {schedule}")
    for worker in workers:
        edges = len(rising_edges(observer.sim.history(worker.board)))
        print(f"  pin {worker.board}: sent {worker.sent}, acked {worker.acked}, ran {edges}, "
              f"slowest call {worker.slowest:.2f} s, connection {worker.changes}")
        context = f"seed {seed}, pin {worker.board}, schedule {schedule}"
        # none acknowledged is lost, none runs twice (nothing is retried behind our back)
        assert worker.acked <= edges <= worker.sent, context
        # every call returned within its timeout (+ the emulated guest's slack): none hung
        assert worker.slowest <= TIMEOUT + 2.5, context
        # when_connection_changed: False, True, False, True... once per change, ending up
        assert worker.changes == [i % 2 == 1 for i in range(len(worker.changes))], context
        assert not worker.changes or worker.changes[-1] is True, context
