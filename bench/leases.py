"""A lease under load: how late it fires, read from the simulated board's own timestamps.

One pin is switched on with ``lease_ms`` = 200 and never renewed; the board
records the rise and the revert, so the lateness is (fall − rise) − 200 ms.
Idle: nothing else happens. Loaded: the other 24 open pins blink every 10 ms
and a second connection floods a 26th pin with ``state`` requests and never
reads a reply (the server stops reading it once its output is full: the
client that "deadlocked the server" of the control-plane issue). Target
(DESIGN.md): every lease fires within 50 ms of its deadline (the largest
lateness, not a percentile).
"""
from __future__ import annotations

import socket
import threading
import time
from typing import Any, Dict, List

from remoteio.testing import high_periods

from .harness import FAST_BLINK, PINS_26, ServerProcess, frame, hello, percentiles, row
from .plan import Plan

LEASE_MS = 200.0
TARGET_MS = 50.0


class Flood(threading.Thread):
    """A connection that sends ``state`` requests for *pin* as fast as the
    server takes them and never reads (bounded: until :meth:`stop`, each
    send waiting at most 0.5 s)."""

    def __init__(self, address: Any, pin: int):
        super().__init__(name="bench-flood", daemon=True)
        self.sock = socket.create_connection(address, timeout=5.0)
        self.sock.sendall(frame(0, "hello", client="bench-flood"))
        self.sock.settimeout(0.5)
        self.chunk = b"".join(frame(n, "state", pin=pin) for n in range(1, 1001))
        self.done = threading.Event()
        self.sent = 0

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.sent += self.sock.send(self.chunk)
            except socket.timeout:
                continue   # the server stopped reading us: the point of the exercise
            except OSError:
                return     # the server closed us (16 MiB of replies unread)

    def stop(self) -> None:
        self.done.set()
        self.join(5)
        self.sock.close()


def _leases(client: Any, pin: int, reps: int) -> List[int]:
    """Lateness (ns) of *reps* leases on *pin*, one after the other."""
    lateness = []
    for _ in range(reps):
        since = time.monotonic_ns()
        client.request("on", pin=pin, lease_ms=LEASE_MS)
        deadline = time.monotonic() + LEASE_MS / 1000 + 5.0
        periods: List[Any] = []
        while not periods and time.monotonic() < deadline:
            time.sleep(LEASE_MS / 4000)
            periods = high_periods(client.history(pin, since))
        if periods:
            rise, fall = periods[0]
            lateness.append(fall - rise - int(LEASE_MS * 1e6))
    return lateness


def leases(plan: Plan) -> List[Dict[str, Any]]:
    reps = max(3, plan.timed_reps // 4)
    leased, flooded, others = PINS_26[0], PINS_26[1], PINS_26[2:]
    rows = []
    with ServerProcess() as server:
        client = hello(server.address)
        client.pipeline([("open", {"pin": p}) for p in (leased, *others)])
        for loaded in (False, True):
            flood = None
            if loaded:
                client.pipeline([("blink", dict(pin=p, **FAST_BLINK)) for p in others])
                flood = Flood(server.address, flooded)
                flood.start()
            try:
                lateness = _leases(client, leased, reps)
            finally:
                if flood is not None:
                    flood.stop()
            if loaded:
                client.pipeline([("off", {"pin": p}) for p in others])
            stats = percentiles(lateness)
            where = ("24 pins blinking every 10 ms, a client flooding a 26th and never reading"
                     if loaded else "idle")
            complete = stats["n"] == reps
            worst_ms = stats.get("max_us", 0) / 1000 if stats["n"] else None
            notes = (f"{stats['n']} of {reps} leases of {LEASE_MS:g} ms seen to revert; "
                     f"largest {worst_ms:.2f} ms late" if stats["n"] else "no lease seen to revert")
            if loaded and flood is not None:
                notes += f"; the flood sent {flood.sent:,} bytes"
            rows.append(row(f"leases.{'loaded' if loaded else 'idle'}",
                            f"lease revert lateness, {where}", stats=stats,
                            target=f"every one ≤ {TARGET_MS:g} ms late",
                            met=complete and worst_ms is not None and worst_ms <= TARGET_MS,
                            notes=notes, loaded=loaded))
        client.close()
    return rows
