"""What every measurement uses: the server process, a raw client, statistics.

The server always runs in its own process (``python -m remoteio serve
--sim``, its own GIL) on 127.0.0.1 with a free port; the bench process is
the client. Every loop here is bounded in count and in time.
"""
from __future__ import annotations

import gc
import math
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import psutil

from remoteio import testing
from remoteio.pins import ALL_BOARD_PINS
from remoteio.testing import RawClient, frame

__all__ = ["RawClient", "frame", "hello", "ServerProcess", "percentiles", "rank", "row", "no_gc",
           "round_trips", "ROOT", "PINS_26", "FAST_BLINK", "OK"]

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


# ---- the thinnest client: remoteio.testing.RawClient -------------------------------------
def hello(address: Tuple[str, int]) -> RawClient:
    client = RawClient(address, timeout=10.0, keep_events=False)
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


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid* and all its descendants now."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return total
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


# ---- the server -------------------------------------------------------------------------
class ServerProcess(testing.ServerProcess):
    """``python -m remoteio serve --sim`` in its own process (its own GIL),
    with what the resource rows measure of it."""

    def __init__(self, *args: str):
        super().__init__("--sim", "--log-level", "warning", *args, cwd=ROOT)

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.proc.pid)

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
        return self.tail(lines)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __exit__(self, *exc: Any) -> None:
        self.stop()
