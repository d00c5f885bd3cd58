"""What every measurement uses: the server process, a raw client, statistics.

The server always runs in its own process (``python -m remoteio serve
--sim``, its own GIL) on 127.0.0.1 with a free port; the bench process is
the client. Every loop here is bounded in count and in time.
"""
from __future__ import annotations

import gc
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import psutil

from remoteio.pins import ALL_BOARD_PINS

ROOT = Path(__file__).resolve().parent.parent

#: the 26 pins a benchmark opens: every GPIO but the ID EEPROM pair (board 27, 28)
PINS_26 = [p for p in ALL_BOARD_PINS if p not in (27, 28)]
#: "fast" blinking for the busy cases: 10 ms on, 10 ms off
FAST_BLINK = {"on_time": 0.01, "off_time": 0.01}
OK = b'"ok":true'


# ---- statistics ---------------------------------------------------------------------
def rank(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank *q* quantile of sorted samples (p99 of 100 samples
    is the 99th, not the largest)."""
    return ordered[max(0, min(len(ordered), math.ceil(q * len(ordered))) - 1)]


def percentiles(samples_ns: Sequence[float]) -> Dict[str, Any]:
    """p50/p90/p99/min/max/mean of nanosecond samples, in microseconds."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"n": 0, "p50_us": None, "p99_us": None}
    us = lambda v: round(v / 1000, 1)  # noqa: E731
    return {"n": len(ordered), "p50_us": us(rank(ordered, 0.5)), "p90_us": us(rank(ordered, 0.9)),
            "p99_us": us(rank(ordered, 0.99)), "min_us": us(ordered[0]),
            "max_us": us(ordered[-1]), "mean_us": us(sum(ordered) / len(ordered))}


def row(key: str, name: str, *, target: str = "", met: Optional[bool] = None,
        stats: Optional[Dict[str, Any]] = None, figure: str = "", notes: str = "",
        floor: bool = False, **raw: Any) -> Dict[str, Any]:
    """One line of the report. A latency row has *stats* (p50_us/p99_us) and,
    with *floor*, is also shown as a multiple of the relayed floor; any other
    row has a *figure* (text). *met* is None where there is no target."""
    out: Dict[str, Any] = {"key": key, "name": name, "target": target, "met": met,
                           "figure": figure, "notes": notes, "floor_multiple": floor}
    if stats is not None:
        out.update(stats)
    out.update(raw)
    return out


@contextmanager
def no_gc() -> Iterator[None]:
    """The client's own garbage collector stays out of timed loops."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---- the thinnest client --------------------------------------------------------------
class RawClient:
    """One socket, one frame out, one reply in (no reader thread, no JSON on
    the timed path)."""

    def __init__(self, address: Tuple[str, int], timeout: float = 10.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self._ids = 1000

    def call(self, frame: bytes) -> bytes:
        self.sock.sendall(frame)
        return self.read_line()

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def read_reply(self) -> bytes:
        """The next line that is a reply (events are skipped)."""
        while True:
            line = self.read_line()
            if not line.startswith(b'{"event"'):
                return line

    def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        """One request; its reply as a dict (raises if refused)."""
        self._ids += 1
        self.sock.sendall(frame(self._ids, op, **fields))
        reply = json.loads(self.read_reply())
        if not reply.get("ok") or reply.get("id") != self._ids:
            raise RuntimeError(f"{op} {fields} refused: {reply}")
        return reply

    def pipeline(self, requests: Sequence[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
        """Several requests in one write; all replies (any order), each checked."""
        first = self._ids + 1
        self._ids += len(requests)
        self.sock.sendall(b"".join(frame(first + n, op, **f) for n, (op, f) in enumerate(requests)))
        replies = [json.loads(self.read_reply()) for _ in requests]
        bad = [r for r in replies if not r.get("ok")]
        if bad:
            raise RuntimeError(f"refused: {bad[:3]}")
        return replies

    def history(self, pin: int, since_ns: int = 0) -> List[Tuple[int, float]]:
        """The simulated board's record of the pin's output changes."""
        return [tuple(e) for e in self.request("sim", action="history", pin=pin,
                                               since_ns=since_ns)["history"]]

    def close(self) -> None:
        self.sock.close()


def frame(request_id: int, op: str, **fields: Any) -> bytes:
    return (json.dumps({"id": request_id, "op": op, **fields}, separators=(",", ":")) + "\n").encode()


def hello(address: Tuple[str, int]) -> RawClient:
    client = RawClient(address)
    client.request("hello", client="bench")
    return client


def round_trips(call: Callable[[int], Any], count: int, warmup: int = 200,
                clock: Callable[[], int] = time.perf_counter_ns) -> List[int]:
    """Time *count* calls of ``call(n)`` (after *warmup* untimed ones)."""
    for n in range(warmup):
        call(n)
    samples = []
    with no_gc():
        for n in range(count):
            start = clock()
            call(n)
            samples.append(clock() - start)
    return samples


# ---- the server -------------------------------------------------------------------------
class ServerProcess:
    """``python -m remoteio serve --sim`` in its own process (its own GIL)."""

    def __init__(self, *args: str):
        self.log = tempfile.NamedTemporaryFile(prefix="remoteio-bench-", suffix=".log", delete=False)
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "remoteio", "serve", "--sim", "--host", "127.0.0.1", "--port", "0",
             "--log-level", "warning", *args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.port = self._port()
        self.address = ("127.0.0.1", self.port)
        self.start_s = round(time.monotonic() - started, 3)

    def _port(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for conn in psutil.Process(self.proc.pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    return conn.laddr.port
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"server did not start: {Path(self.log.name).read_text()}")

    def processes(self) -> List[psutil.Process]:
        main = psutil.Process(self.proc.pid)
        return [main] + main.children(recursive=True)

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def pss_mib(self) -> Tuple[float, int]:
        """Proportional set size of all server processes (MiB), and their count."""
        total, count = 0, 0
        for proc in self.processes():
            try:
                total += proc.memory_full_info().pss
                count += 1
            except (psutil.NoSuchProcess, AttributeError):
                pass
        return round(total / 2**20, 1), count

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
