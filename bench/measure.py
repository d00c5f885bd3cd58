"""The measurements. Each returns a list of result rows (plain dicts)."""
from __future__ import annotations

import json
import time
from typing import Any, Dict, List

from remoteio.pins import ALL_BOARD_PINS

from .floors import start_floor
from .harness import RawClient, ServerProcess, hello, percentiles, round_trips

#: the 26 pins a benchmark opens: every GPIO but the ID EEPROM pair (board 27, 28)
PINS_26 = [p for p in ALL_BOARD_PINS if p not in (27, 28)]
FRAME = b'{"id":1,"op":"ping"}\n'


def frames_for(pin: int) -> List[bytes]:
    return [json.dumps({"id": n, "op": op, "pin": pin}).encode() + b"\n"
            for n, op in enumerate(("on", "off"))]


def floors(count: int) -> Dict[str, Dict[str, Any]]:
    """The bare and relayed TCP echo round trips."""
    out = {}
    for kind in ("bare", "relayed"):
        proc, address = start_floor(kind)
        client = RawClient(address)
        out[kind] = percentiles(round_trips(client, [FRAME], count))
        client.close()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return out


def acked_writes(server: ServerProcess, count: int) -> List[Dict[str, Any]]:
    """Acknowledged write round trip with 1, 8 and 26 pins open."""
    client = hello(server.address)
    rows = []
    opened = 0
    for pins in (1, 8, 26):
        while opened < pins:
            client.request({"id": 1, "op": "on", "pin": PINS_26[opened]})
            opened += 1
        stats = percentiles(round_trips(client, frames_for(PINS_26[0]), count))
        rows.append({"name": f"acked write, {pins} pin{'s' if pins > 1 else ''} open", **stats})
    client.close()
    return rows


def idle_cpu(server: ServerProcess, seconds: float) -> Dict[str, Any]:
    """CPU of the whole server (all processes) while 26 pins sit open."""
    client = hello(server.address)
    for pin in PINS_26:
        client.request({"id": 1, "op": "on", "pin": pin})
    time.sleep(0.5)  # let every worker settle into its blocking wait
    before = server.cpu_seconds()
    started = time.monotonic()
    time.sleep(seconds)
    used = server.cpu_seconds() - before
    elapsed = time.monotonic() - started
    client.close()
    return {"name": "idle CPU, 26 pins open", "percent_of_one_core": round(100 * used / elapsed, 3),
            "seconds": round(elapsed, 1), "pss_mib": server.pss_mib()}
