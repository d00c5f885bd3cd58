"""How the ``remoteio`` command shows things: tables, values, durations, JSON."""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ..pins import BOARD_TO_BCM

PIN_COLUMNS = ("PIN", "GPIO", "MODE", "VALUE", "TASK", "LEFT", "QUEUE", "REVERT", "OWNER")


def emit(line: str = "") -> None:
    """One line on stdout, flushed (so a pipe sees each event as it happens)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def emit_json(data: Any) -> None:
    emit(json.dumps(data, sort_keys=True))


def micro() -> str:
    """``µs``, or ``us`` where stdout cannot show a µ."""
    try:
        "µ".encode(sys.stdout.encoding or "ascii")
        return "µs"
    except (UnicodeEncodeError, LookupError):
        return "us"


def value(level: Any) -> str:
    """0, 1, a PWM level (0.5), or - for none."""
    if level is None:
        return "-"
    if isinstance(level, bool):
        return str(int(level))
    if isinstance(level, float):
        return f"{level:g}"
    return str(level)


def duration_ms(ms: Optional[float]) -> str:
    """812 ms, 1.71 s, 3 min 20 s, - for none."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    """Left-aligned columns, two spaces apart, no trailing blanks."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def pin_row(pin: Dict[str, Any], owner: Optional[str] = None) -> List[str]:
    """One row of PIN_COLUMNS, from a ``state`` reply or an ``info`` pin entry."""
    board = pin.get("pin")
    lease = pin.get("lease")
    if lease:  # state: {revert_to, in_ms}
        revert = f"to {value(lease.get('revert_to'))} in {duration_ms(lease.get('in_ms'))}"
    elif pin.get("lease_ms") is not None:  # info: only the time left
        revert = f"in {duration_ms(pin['lease_ms'])}"
    else:
        revert = "-"
    gpio = pin.get("gpio", BOARD_TO_BCM.get(board))
    return [str(board), "-" if gpio is None else str(gpio),  # an expander's pin has none
            pin.get("mode") or "-", value(pin.get("value")), pin.get("task") or "-",
            duration_ms(pin.get("remaining_ms")), value(pin.get("queue")), revert,
            owner or pin.get("owner") or "-"]


def pin_table(rows: List[List[str]]) -> List[str]:
    return table(PIN_COLUMNS, rows)


def uptime(seconds: float) -> str:
    return duration_ms(seconds * 1000)
