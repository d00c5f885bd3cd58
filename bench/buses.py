"""I2C and SPI round trips beside an acked pin write, in the same run: ``python -m bench.buses``.

A server on the simulated board in this process's machine (its own
process tree: the zygote and workers), one client; each figure is the p50
(and p99) of *count* round trips, the pin write and the bus calls
interleaved in rounds so the machine's load falls on all alike. The SPI row
is an MCP3008 reading as gpiozero does it: one 3-byte ``xfer2`` on SPI0 CE0.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable, Dict, List

from remoteio import RemoteServer
from remoteio.server.app import Server

Rows = Dict[str, List[float]]


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1000.0


def measure(count: int = 2000) -> Rows:
    rows: Rows = {"pin write (acked)": [], "i2c read_byte_data": [],
                  "i2c transaction of 32 read_byte_data": [],
                  "spi xfer2 of 3 bytes (an MCP3008 reading)": []}
    calls = [("read_byte_data", 0x20, reg % 22) for reg in range(32)]
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        with RemoteServer(*server.address) as remote:
            pin, bus, spi = remote.pin(7), remote.i2c(1), remote.spi(0, 0)
            for _ in range(50):   # warm: workers started, caches hot
                pin.on()
                bus.read_byte_data(0x20, 0)
                bus.transaction(calls)
                spi.xfer2([0x01, 0x80, 0x00])
            for n in range(count):
                level = n & 1
                rows["pin write (acked)"].append(_time(lambda: pin.on() if level else pin.off()))
                rows["i2c read_byte_data"].append(_time(lambda: bus.read_byte_data(0x20, 0x12)))
                rows["i2c transaction of 32 read_byte_data"].append(
                    _time(lambda: bus.transaction(calls)))
                rows["spi xfer2 of 3 bytes (an MCP3008 reading)"].append(
                    _time(lambda: spi.xfer2([0x01, 0x80, 0x00])))
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


#: (row key, measure()'s row, its target: (× of which row, at most))
SECTION_ROWS = (
    ("buses.pin_write", "pin write (acked)", None),
    ("buses.i2c.read_byte_data", "i2c read_byte_data", ("pin write (acked)", 1.5)),
    ("buses.i2c.transaction32", "i2c transaction of 32 read_byte_data",
     ("i2c read_byte_data", 3.0)),
    ("buses.spi.xfer2", "spi xfer2 of 3 bytes (an MCP3008 reading)", ("pin write (acked)", 1.5)),
)


def section(count: int) -> List[Dict[str, Any]]:
    """``python -m bench``'s buses section: measure()'s rows, with issue 16's targets."""
    from .harness import percentiles, row
    rows = measure(count)
    p50 = {name: statistics.median(samples) for name, samples in rows.items()}
    out = []
    for key, name, target in SECTION_ROWS:
        stats = percentiles([us * 1000.0 for us in rows[name]])
        if target is None:
            out.append(row(key, f"{name}, client library (in-process server)", stats=stats))
            continue
        ref, most = target
        ratio = p50[name] / p50[ref]
        out.append(row(key, name, stats=stats, target=f"≤ {most}× {ref} (p50)",
                       met=ratio <= most, ratio_p50=round(ratio, 3),
                       notes=f"{ratio:.2f}× {ref} at p50, same run, interleaved"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    print(report(measure(args.count)))


if __name__ == "__main__":
    main()
