"""Serial: 115,200 baud sustained from the Pi to a client, over a real tty (a pty pair).

The bench process is the device on the pty's master, writing at a UART's
pace (115,200 baud, 8N1: 11,520 bytes/s) a numbered byte pattern; the
server (``remoteio serve --sim`` in its own process) has the slave as its
port ``serial0``; a client library connection reads it as pushed. Figures:
bytes/s delivered (over the time from the first byte written to the last
received), and bytes lost (written and never delivered, or delivered
wrong), which must be 0.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List

from remoteio import RemoteServer

from .harness import ServerProcess, row
from .plan import Plan

BAUD = 115_200
BYTES_PER_S = BAUD // 10          # 8N1: ten bits a byte
SECONDS = {"smoke": 1.0, "quick": 3.0, "full": 5.0}
PATTERN = bytes(range(251)) * 64   # 251: prime, so a slip shows in the comparison


def serial(plan: Plan) -> List[Dict[str, Any]]:
    seconds = SECONDS.get(plan.name, 3.0)
    total = int(BYTES_PER_S * seconds)
    expected = (PATTERN * (total // len(PATTERN) + 1))[:total]
    master, slave = os.openpty()
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"remoteio-bench-serial-{os.getpid()}.toml"
    config.write_text(f'[buses.serial0]\ndevice = "{os.ttyname(slave)}"\nbaudrate = {BAUD}\n')
    try:
        with ServerProcess("--config", str(config)) as server:
            with RemoteServer(*server.address, timeout=10.0) as client:
                port = client.serial("serial0", BAUD, timeout=0)
                arrivals: List[float] = []
                port.when_data = lambda p: arrivals.append(time.monotonic())
                started = _paced_write(master, expected)
                deadline = time.monotonic() + 10.0
                while port.bytes_received + port.bytes_lost < total \
                        and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.05)   # the callback thread's last turn
                got = port.read_all()
                last = arrivals[-1] if arrivals else time.monotonic()
                lost_on_way = port.bytes_lost
    finally:
        os.close(master)
        os.close(slave)
        config.unlink()
    wrong = sum(1 for a, b in zip(got, expected) if a != b)
    lost = total - len(got) + wrong
    rate = len(got) / max(1e-9, last - started)
    return [
        row("serial.115200.rate", f"serial at {BAUD} baud, Pi → client: bytes/s delivered",
            figure=f"{rate:,.0f} B/s", target=f"≥ {BYTES_PER_S * 0.98:,.0f} B/s (the line's rate)",
            met=rate >= BYTES_PER_S * 0.98, bytes_per_s=round(rate), seconds=seconds,
            notes=f"{len(got):,} of {total:,} bytes in {last - started:.2f} s, paced as a UART"),
        row("serial.115200.lost", f"serial at {BAUD} baud, Pi → client: bytes lost",
            figure=f"{lost} bytes", target="0", met=lost == 0, lost=lost,
            counted_by_client=lost_on_way,
            notes="missing, wrong, or counted lost by the client (bytes_lost)"),
    ]


def _paced_write(master: int, data: bytes) -> float:
    """Write *data* at the line's pace (a burst every 5 ms); the time of the first byte."""
    started = time.monotonic()
    sent = 0
    while sent < len(data):
        due = min(len(data), int((time.monotonic() - started) * BYTES_PER_S) + 1)
        while sent < due:
            sent += os.write(master, data[sent:due])
        time.sleep(0.005)
    return started
