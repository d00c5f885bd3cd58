"""Input edge -> client: how long after the edge the client knows.

A second connection drives the input on the simulated board (``sim`` drive);
the board stamps the edge with CLOCK_MONOTONIC in the server process, and the
event carries that stamp (``ts``). Latency = the moment the client has the
event (raw socket: the frame read; library: the callback running on its
dispatcher thread) − ``ts``; both processes read the same clock.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Dict, List

from remoteio import RemoteServer

from .harness import PINS_26, ServerProcess, frame, hello, no_gc, percentiles, row
from .plan import Plan

TARGET = "p50 ≤ 300 µs"


def _raw(server: ServerProcess, edges: int) -> Dict[str, Any]:
    """A raw socket watching the input: latency to the event frame's arrival."""
    pin = PINS_26[2]
    watcher, driver = hello(server.address), hello(server.address)
    watcher.request("input", pin=pin, pull="down")
    watcher.request("watch", pin=pin)
    drives = [frame(1, "sim", action="drive", pin=pin, level=level) for level in (1, 0)]
    samples, missing = [], 0
    watcher.sock.settimeout(2.0)
    with no_gc():
        for n in range(edges + 20):
            driver.call_line(drives[n & 1])
            try:
                line = watcher.read_line()
            except OSError:
                missing += 1
                continue
            now = time.monotonic_ns()
            event = json.loads(line)
            if n >= 20:  # the first ones warm up
                samples.append(now - event["ts"])
    watcher.close()
    driver.close()
    return {"samples": samples, "missing": missing}


def _library(server: ServerProcess, edges: int) -> Dict[str, Any]:
    """The client library: latency to the user's callback running."""
    pin_number = PINS_26[3]
    lib = RemoteServer(*server.address, heartbeat=0, reconnect=False)
    driver = hello(server.address)
    got = threading.Event()
    seen: List[tuple] = []

    def callback(event) -> None:
        seen.append((time.monotonic_ns(), event.ts_ns, event.value))
        got.set()

    samples, missing = [], 0
    try:
        button = lib.pin(pin_number).as_input(pull="down")
        button.when_changed = callback
        drives = [frame(1, "sim", action="drive", pin=pin_number, level=level) for level in (1, 0)]
        with no_gc():
            for n in range(edges + 20):
                got.clear()
                driver.call_line(drives[n & 1])
                if not got.wait(2.0):
                    missing += 1
                    continue
                now, ts, _ = seen[-1]
                if n >= 20:
                    samples.append(now - ts)
    finally:
        lib.close()
        driver.close()
    return {"samples": samples, "missing": missing, "events": len(seen)}


def edge_latency(plan: Plan) -> List[Dict[str, Any]]:
    rows = []
    with ServerProcess() as server:
        for key, name, measure, target in (
                ("edge.raw", "input edge → event frame read (raw socket)", _raw, ""),
                ("edge.callback", "input edge → client callback runs (library)", _library, TARGET)):
            result = measure(server, plan.edges)
            stats = percentiles(result["samples"])
            honest = result["missing"] == 0 and stats["n"] == plan.edges
            met = None if not target else honest and stats["p50_us"] <= 300
            rows.append(row(key, name, stats=stats, floor=True, target=target,
                            met=met if honest else False,
                            notes="" if honest else f"CHECK FAILED: {result['missing']} edges without event",
                            missing=result["missing"]))
    return rows
