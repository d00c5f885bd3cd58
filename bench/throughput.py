"""Pipelined commands: send without waiting, count the acknowledgements.

Each command is ``on``/``off`` alternating, so each one changes its pin, and
the server acknowledges it only after the pin's worker applied it. One
selector loop drives every connection: frames are encoded once, replies are
counted, not parsed (newlines, and ``"ok":true`` in complete lines), so the
client stays cheap; its own CPU is measured and reported beside the figure.
"""
from __future__ import annotations

import selectors
import socket
import time
from typing import Any, Callable, Dict, List, Sequence

from .harness import OK, PINS_26, ServerProcess, frame, row
from .plan import Plan

BATCH = 256      # frames per send()
WINDOW = 2048    # commands in flight per connection (the server allows 4000 per pin)
TARGET = 200_000


class _Conn:
    def __init__(self, address, pins: Sequence[int], total: int):
        self.sock = socket.create_connection(address, timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(frame(0, "hello", client="bench-pipeline"))
        self.sock.sendall(b"".join(frame(n + 1, "open", pin=p) for n, p in enumerate(pins)))
        self._expect_lines(1 + len(pins))
        # frame n: pin n % len(pins); on/off alternating for each pin
        per = len(pins)
        self.batch = b"".join(
            frame(10 + n, "off" if (n // per) % 2 else "on", pin=pins[n % per]) for n in range(BATCH))
        assert BATCH % (2 * per) == 0, "a batch must leave every pin off"
        self.total = total
        self.sent = self.acked = self.ok = 0
        self.tail = b""
        self.pending = memoryview(b"")
        self.sock.setblocking(False)

    def reset(self) -> None:
        """Forget the warm-up (all of it acknowledged)."""
        self.sent = self.acked = self.ok = 0

    def _expect_lines(self, lines: int) -> None:
        data = b""
        while data.count(b"\n") < lines:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        if data.count(OK) != lines:
            raise RuntimeError(f"setup refused: {data[:500]!r}")

    def fill(self) -> None:
        """Send batches while the window allows (non-blocking: a short write
        is finished on a later call)."""
        while True:
            if not self.pending:
                if self.sent >= self.total or self.sent - self.acked + BATCH > WINDOW:
                    return
                self.pending = memoryview(self.batch)
                self.sent += BATCH
            try:
                self.pending = self.pending[self.sock.send(self.pending):]
            except BlockingIOError:
                return

    def receive(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("server closed the connection")
        self.acked += data.count(b"\n")
        data = self.tail + data
        cut = data.rfind(b"\n") + 1
        self.ok += data.count(OK, 0, cut)
        self.tail = data[cut:]


def _run(conns: List[_Conn], selector, seconds: float) -> None:
    """Until every connection sent its total and got every ack, or *seconds*
    pass (then, bounded, until what is in flight is acknowledged)."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if all(c.acked >= c.sent >= c.total for c in conns):
            return
        for conn in conns:
            conn.fill()
        for key, _ in selector.select(0.5):
            key.data.receive()
    for conn in conns:
        conn.total = conn.sent  # stop sending
    while time.perf_counter() < deadline + 5 and any(c.acked < c.sent or c.pending for c in conns):
        for conn in conns:
            conn.fill()
        for key, _ in selector.select(0.5):
            key.data.receive()


def drive(address, pin_sets: Sequence[Sequence[int]], total: int, seconds: float,
          server_cpu: Callable[[], float] = lambda: 0.0) -> Dict[str, Any]:
    """Pipeline *total* commands spread over one connection per pin set
    (after a warm-up of one window per connection); *server_cpu* tells the
    CPU seconds the server used so far."""
    per_conn = (total // len(pin_sets) // BATCH + 1) * BATCH
    conns = [_Conn(address, pins, WINDOW) for pins in pin_sets]
    selector = selectors.DefaultSelector()
    try:
        for conn in conns:
            selector.register(conn.sock, selectors.EVENT_READ, conn)
        _run(conns, selector, 10.0)  # warm-up: every worker busy once, caches warm
        for conn in conns:
            conn.reset()
            conn.total = per_conn
        server0 = server_cpu()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        _run(conns, selector, seconds)
        elapsed = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        server_used = server_cpu() - server0
    finally:
        selector.close()
        for conn in conns:
            conn.sock.close()
    acked = sum(c.acked for c in conns)
    sent = sum(c.sent for c in conns)
    return {"connections": len(conns), "pins": sum(len(p) for p in pin_sets), "sent": sent,
            "acked": acked, "ok": sum(c.ok for c in conns), "seconds": round(elapsed, 3),
            "per_s": round(acked / elapsed), "client_cpu_percent": round(100 * cpu / elapsed, 1),
            "client_us_per_command": round(1e6 * cpu / max(acked, 1), 2),
            "server_cpu_percent": round(100 * server_used / elapsed, 1)}


def pipelined(plan: Plan) -> List[Dict[str, Any]]:
    """1 connection on 1 pin, on 8 pins; 4 connections on 2 pins each; each
    case *plan.pipeline_runs* times, the row shows the worst run (the target
    holds in every one). Pins are not reused between cases (a closed
    connection's pins are released asynchronously), nor between runs."""
    cases = [
        ("pipelined.1conn.1pin", "pipelined, 1 connection, 1 pin", [[0]]),
        ("pipelined.1conn.8pins", "pipelined, 1 connection, 8 pins", [list(range(1, 9))]),
        ("pipelined.4conn.8pins", "pipelined, 4 connections × 2 pins (one client loop)",
         [[9 + 2 * c, 10 + 2 * c] for c in range(4)]),
    ]
    runs: Dict[str, List[Dict[str, Any]]] = {key: [] for key, _, _ in cases}
    for _ in range(plan.pipeline_runs):
        with ServerProcess() as server:  # a fresh server per run: every case gets fresh pins
            for key, _, pin_sets in cases:
                runs[key].append(drive(server.address, [[PINS_26[i] for i in pins]
                                                        for pins in pin_sets],
                                       plan.pipeline_commands, plan.pipeline_seconds,
                                       server.cpu_seconds))
    rows = []
    for key, name, _ in cases:
        results = runs[key]
        worst = min(results, key=lambda r: r["per_s"])
        lost = sum(r["sent"] - r["acked"] for r in results)
        refused = sum(r["acked"] - r["ok"] for r in results)
        honest = lost == 0 and refused == 0
        rows.append(row(
            key, name, figure=f"{worst['per_s']:,} /s",
            target=f"≥ {TARGET:,} /s in every run", met=(
                all(r["per_s"] >= TARGET for r in results) and honest),
            notes=(f"worst of {len(results)} run{'s' if len(results) > 1 else ''}: "
                   + ", ".join(f"{r['per_s']:,}" for r in results) + " /s; "
                   f"client used {worst['client_cpu_percent']} % of a core, "
                   f"the server {worst['server_cpu_percent']} %"
                   + ("" if honest else f"; CHECK FAILED: {lost} unanswered, {refused} refused")),
            runs=results, **worst))
    return rows
