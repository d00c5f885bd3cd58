"""What the client library costs over a raw socket: acknowledged writes by
the raw socket, by RemotePin.on/off and by gpiozero's LED.on/off through the
remoteio factory, to one server, taking turns a chunk at a time (so all three
see the same machine), each verified on the board like bench.latency's rows.
Target (issue 21): the library and gpiozero within 1.15× the raw socket (p50).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from remoteio import RemoteServer

from .harness import OK, PINS_26, ServerProcess, frame, hello, percentiles, row
from .latency import timed_writes
from .plan import Plan

TARGET = "≤ 1.15× the raw socket (p50, same turns)"
LIMIT = 1.15


def client_cost(plan: Plan, floor_p50: float) -> List[Dict[str, Any]]:
    from gpiozero import LED
    from remoteio.gpiozero_factory import RemoteIOFactory

    rounds = max(1, min(10, plan.lib_latency // 200))
    chunk = plan.lib_latency // rounds + plan.lib_latency // rounds % 2
    raw_pin, lib_pin, zero_pin = PINS_26[:3]
    samples: Dict[str, List[int]] = {"raw": [], "library": [], "gpiozero": []}
    checks: Dict[str, Dict[str, int]] = {name: {} for name in samples}
    with ServerProcess() as server:
        raw = hello(server.address)
        lib = RemoteServer(*server.address, heartbeat=0, reconnect=False)
        factory = RemoteIOFactory(*server.address, heartbeat=0, reconnect=False)
        try:
            raw.request("open", pin=raw_pin)
            frames = [frame(1, "on", pin=raw_pin), frame(2, "off", pin=raw_pin)]
            led = lib.pin(lib_pin)
            zero = LED(f"BOARD{zero_pin}", pin_factory=factory)
            cases: Dict[str, Tuple[Callable[[int], bool], Callable[[int], Any]]] = {
                "raw": (lambda n: OK in raw.call_line(frames[n & 1]),
                        lambda since: raw.history(raw_pin, since)),
                "library": (lambda n: (led.off() if n & 1 else led.on()) or True,
                            lambda since: lib.sim.history(lib_pin, since)),
                "gpiozero": (lambda n: (zero.off() if n & 1 else zero.on()) or True,
                             lambda since: lib.sim.history(zero_pin, since)),
            }
            for round_ in range(rounds):
                for name, (call, history) in cases.items():
                    got, check = timed_writes(call, history, chunk,
                                              warmup=200 if round_ == 0 else 20)
                    samples[name] += got
                    for key, value in check.items():
                        checks[name][key] = checks[name].get(key, 0) + value
            zero.close()
        finally:
            factory.close()
            lib.close()
            raw.close()
    raw_stats = percentiles(samples["raw"])
    rows = [_row("raw", "client cost, acked writes in turns: raw socket", raw_stats,
                 checks["raw"], rounds)]
    for name, title in (("library", "client library (RemotePin.on/off)"),
                        ("gpiozero", "gpiozero LED.on()/off() via the factory")):
        stats = percentiles(samples[name])
        ratio = stats["p50_us"] / raw_stats["p50_us"] if raw_stats["p50_us"] else 0.0
        rows.append(_row(name, f"client cost, acked writes in turns: {title}", stats,
                         checks[name], rounds, ratio=round(ratio, 3), target=TARGET,
                         met=ratio <= LIMIT and _verified(stats, checks[name])))
    return rows


def _verified(stats: Dict[str, Any], check: Dict[str, int]) -> bool:
    return check.get("verified", 0) == stats["n"]


def _row(name: str, title: str, stats: Dict[str, Any], check: Dict[str, int], rounds: int,
         **extra: Any) -> Dict[str, Any]:
    ratio = extra.get("ratio")
    notes = (f"{check.get('verified', 0)}/{stats['n']} acks verified on the board"
             if _verified(stats, check) else f"CHECK FAILED: {check}")
    if ratio is not None:
        notes = f"{ratio:.2f}× the raw socket's p50; {notes}"
    return row(f"client_cost.{name}", title, stats=stats, floor=True, notes=notes,
               check=check, rounds=rounds, **extra)
