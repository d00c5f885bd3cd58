"""I2C round trips beside an acked pin write, in the same run: ``python -m bench.buses``.

A server on the simulated board in this process's machine (its own
process tree: the zygote and workers), one client; each figure is the p50
(and p99) of *count* round trips, the pin write and the I2C calls
interleaved in rounds so the machine's load falls on all alike.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

from remoteio import RemoteServer
from remoteio.server.app import Server

Rows = Dict[str, List[float]]


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1000.0


def measure(count: int = 2000) -> Rows:
    rows: Rows = {"pin write (acked)": [], "i2c read_byte_data": [],
                  "i2c transaction of 32 read_byte_data": []}
    calls = [("read_byte_data", 0x20, reg % 22) for reg in range(32)]
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        with RemoteServer(*server.address) as remote:
            pin, bus = remote.pin(7), remote.i2c(1)
            for _ in range(50):   # warm: workers started, caches hot
                pin.on(); bus.read_byte_data(0x20, 0); bus.transaction(calls)
            for n in range(count):
                level = n & 1
                rows["pin write (acked)"].append(_time(lambda: pin.on() if level else pin.off()))
                rows["i2c read_byte_data"].append(_time(lambda: bus.read_byte_data(0x20, 0x12)))
                rows["i2c transaction of 32 read_byte_data"].append(
                    _time(lambda: bus.transaction(calls)))
    return rows


def report(rows: Rows) -> str:
    base = statistics.median(rows["pin write (acked)"])
    single = statistics.median(rows["i2c read_byte_data"])
    lines = ["| round trip | p50 µs | p99 µs | × |", "|---|---|---|---|"]
    for name, samples in rows.items():
        samples = sorted(samples)
        p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99) - 1]
        ref = single if "transaction" in name else base
        against = "one call" if "transaction" in name else "pin write"
        lines.append(f"| {name} | {p50:.0f} | {p99:.0f} | {p50 / ref:.2f} × {against} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    print(report(measure(args.count)))


if __name__ == "__main__":
    main()
