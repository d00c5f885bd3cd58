"""Scale: an acked call to one more resource while every other header pin blinks at 100 Hz.

Issue 21's scale target: with the header's pins blinking at 100 Hz, an acked
round trip to a 29th resource (a bus; an expander pin where one is
declared: here an MCP23017 pin's acked write, each one I2C write by the
expander's worker) stays within 1.2× its round trip with the header idle. I2C1 holds
BOARD3/5 while its worker runs, so the pins blinking are the 26 others
(every GPIO of the header but those two): the most a server with I2C1 in
use can have. Idle and busy take turns, a chunk each, so both see the same
machine.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from remoteio.pins import ALL_BOARD_PINS

from .harness import OK, ServerProcess, frame, hello, percentiles, round_trips, row
from .plan import Plan

#: every GPIO of the header but I2C1's two (held by the bus while it runs)
BLINKING = [p for p in ALL_BOARD_PINS if p not in (3, 5)]
#: 100 Hz: 5 ms on, 5 ms off
HZ_100 = {"on_time": 0.005, "off_time": 0.005}
TARGET = 1.2
#: the expander the server declares for the expander rows (beside the I2C bus's own chips)
EXPANDER = '[expanders.mcp0]\nchip = "mcp23017"\nbus = 1\naddress = 0x21\n'


def scale(plan: Plan) -> List[Dict[str, Any]]:
    """The I2C round trip and an expander pin's acked write, idle and with 26
    pins blinking at 100 Hz, in turns."""
    rounds = max(1, min(10, plan.latency // 400))
    chunk = max(20, plan.latency // 2 // rounds)
    probe = frame(1, "i2c_read_byte_data", bus=1, addr=0x20, register=0x12)
    writes = [frame(2, "on", pin="mcp0:A0"), frame(3, "off", pin="mcp0:A0")]  # each an I2C write
    samples: Dict[bool, List[int]] = {False: [], True: []}
    expander: Dict[bool, List[int]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "remoteio.toml"
        config.write_text(EXPANDER)
        with ServerProcess("--config", str(config)) as server:
            client = hello(server.address)
            try:
                assert OK in client.call_line(probe), "the simulated I2C bus does not answer"
                assert OK in client.call_line(writes[0]), "the expander does not answer"
                client.pipeline([("open", {"pin": p}) for p in BLINKING])
                for round_ in range(rounds):
                    for busy in (False, True):
                        if busy:
                            client.pipeline([("blink", dict(pin=p, **HZ_100)) for p in BLINKING])
                            time.sleep(0.05)  # every worker is in its blink: the steady state
                        warmup = 100 if round_ == 0 else 10
                        samples[busy] += round_trips(lambda n: _ok(client.call_line(probe)),
                                                     chunk, warmup=warmup)
                        expander[busy] += round_trips(
                            lambda n: _ok(client.call_line(writes[n % 2])), chunk, warmup=warmup)
                        if busy:
                            client.pipeline([("off", {"pin": p}) for p in BLINKING])
            finally:
                client.close()
    return _rows(samples, rounds, chunk) + _expander_rows(expander, rounds, chunk)


def _expander_rows(samples: Dict[bool, List[int]], rounds: int, chunk: int
                   ) -> List[Dict[str, Any]]:
    idle, busy = percentiles(samples[False]), percentiles(samples[True])
    ratio = busy["p50_us"] / idle["p50_us"]
    tail = busy["p99_us"] / idle["p99_us"]
    return [
        row("scale.expander.idle", "expander pin (MCP23017) acked on/off, header idle (raw socket)",
            stats=idle, floor=True, notes=f"{rounds} rounds of {chunk}, each write one I2C write"),
        row("scale.expander.busy",
            f"expander pin acked on/off, {len(BLINKING)} header pins blinking at 100 Hz",
            stats=busy, floor=True, target=f"≤ {TARGET}× idle (p50)", met=ratio <= TARGET,
            ratio_p50=round(ratio, 3), ratio_p99=round(tail, 3),
            notes=f"{ratio:.2f}× idle at p50, {tail:.2f}× at p99"),
    ]


def _rows(samples: Dict[bool, List[int]], rounds: int, chunk: int) -> List[Dict[str, Any]]:
    idle, busy = percentiles(samples[False]), percentiles(samples[True])
    ratio = busy["p50_us"] / idle["p50_us"]
    tail = busy["p99_us"] / idle["p99_us"]
    return [
        row("scale.i2c.idle", "I2C read_byte_data round trip, header idle (raw socket)",
            stats=idle, floor=True, notes=f"{rounds} rounds of {chunk}, taking turns with the busy case"),
        row("scale.i2c.busy", f"I2C read_byte_data round trip, {len(BLINKING)} pins blinking at 100 Hz",
            stats=busy, floor=True, target=f"≤ {TARGET}× idle (p50)", met=ratio <= TARGET,
            ratio_p50=round(ratio, 3), ratio_p99=round(tail, 3),
            notes=f"{ratio:.2f}× idle at p50, {tail:.2f}× at p99"),
    ]


def _ok(line: bytes) -> None:
    if OK not in line:
        raise RuntimeError(f"a call failed: {line[:200]!r}")
