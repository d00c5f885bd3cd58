"""pins (also ``info --pins``): the whole 40-pin header in its own two-column
layout, like pinctrl and gpiozero's pinout: every pin's number, name,
function, level and holder.

A pin nobody uses is not read on real hardware unless ``--read`` is given:
reading a pin makes it an input, which is a change. On a simulated board
every level is known without reading (the board's own ``sim levels``).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List

from . import output
from .common import EXIT_OK, add_connection_options, client_verb, examples, held_pins
from ..pins import BOARD_TO_BCM, POWER_AND_GROUND

SHORT = {"3V3 power": "3V3", "5V power": "5V", "ground": "GND"}


def header(remote: Any, read: bool = False) -> List[Dict[str, Any]]:
    """The 40 positions: pin, name, gpio, function, level, holder."""
    from ..errors import ServerError
    info = remote.info()
    used = {entry["pin"]: entry for entry in info.get("pins", [])}
    held = held_pins(info)  # by a bus, a serial port, an expander
    levels: Dict[int, Any] = {}
    try:
        reply = remote.request("sim", action="levels")
        levels = {int(board): level for board, level in reply.get("levels", {}).items()}
    except ServerError:
        pass  # real hardware: not_supported
    unknown = [b for b in sorted(BOARD_TO_BCM) if b not in used and b not in levels
               and b not in held]   # a bus's pin: its read is refused
    if read and unknown:
        try:
            levels.update(remote.read_pins(unknown))
        except ServerError as exc:
            print(f"remoteio: note: could not read every pin: {exc}", file=sys.stderr)
    rows = []
    for board in range(1, 41):
        if board in POWER_AND_GROUND:
            rows.append({"pin": board, "name": SHORT[POWER_AND_GROUND[board]], "gpio": None,
                         "function": None, "level": None, "holder": None})
            continue
        entry = used.get(board)
        level = entry.get("value") if entry else None
        if level is None:
            level = levels.get(board)
        rows.append({"pin": board, "name": f"GPIO{BOARD_TO_BCM[board]}",
                     "gpio": BOARD_TO_BCM[board],
                     "function": "bus" if board in held else
                                 (entry.get("mode") or "unset") if entry else "unused",
                     "level": level, "holder": held.get(board) or (entry or {}).get("owner")})
    return rows


def _cells(row: Dict[str, Any]) -> List[str]:
    if row["gpio"] is None:
        return ["", "", "", row["name"]]
    return [row["holder"] or "-", row["function"], output.value(row["level"]), row["name"]]


def render(rows: List[Dict[str, Any]]) -> List[str]:
    """Odd pins on the left (mirrored), even pins on the right, as on the board."""
    titles = ["HOLDER", "FUNCTION", "LEVEL", "NAME"]
    left = [titles] + [_cells(r) for r in rows[0::2]]
    right = [titles] + [_cells(r) for r in rows[1::2]]
    widths = [max(len(line[i]) for line in left + right) for i in range(4)]
    lines = []
    for n, (lcells, rcells) in enumerate(zip(left, right)):
        lpin, rpin = ("PIN", "PIN") if n == 0 else (f"({2 * n - 1})", f"({2 * n})")
        lhs = "  ".join(c.rjust(w) for c, w in zip(lcells, widths))
        rhs = "  ".join(c.ljust(w) for c, w in zip(reversed(rcells), reversed(widths)))
        lines.append(f"{lhs}  {lpin:>4} {rpin:<4}  {rhs}".rstrip())
    return lines


def show_header(args: argparse.Namespace, remote: Any) -> int:
    rows = header(remote, read=getattr(args, "read", False))
    if args.json:
        output.emit_json(rows)
        return EXIT_OK
    board = remote.board
    output.emit(f"{board.get('description') or board.get('model', '?')} at "
                f"{remote.host}:{remote.port}: the 40-pin header, pin 1 at the top left")
    output.emit()
    for line in render(rows):
        output.emit(line)
    if not getattr(args, "read", False) and any(
            r["function"] == "unused" and r["level"] is None for r in rows):
        output.emit()
        output.emit("(levels of unused pins are not read: reading makes a pin an input; "
                    "--read reads them)")
    return EXIT_OK


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    pins = verbs.add_parser(
        "pins", help="the whole header: every pin's name, function, level and holder",
        description="The 40-pin header as it is on the board (odd pins on the left, even "
                    "on the right): each pin's number, name, function (input, output, "
                    "unused...), level and the connection holding it. Nothing is claimed or "
                    "changed. On real hardware the levels of unused pins are read only with "
                    "--read (reading makes a pin an input).",
        epilog=examples("remoteio pins", "remoteio pins --read", "remoteio pins --json",
                        "remoteio info --pins"))
    pins.add_argument("--read", action="store_true",
                      help="read the pins nobody uses too (they become inputs)")
    pins.add_argument("--json", action="store_true",
                      help="a JSON list of the 40 positions: pin, name, gpio, function, "
                           "level, holder")
    add_connection_options(pins)
    pins.set_defaults(run=client_verb(show_header))
