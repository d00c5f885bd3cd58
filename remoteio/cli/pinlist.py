"""Pin lists as the command takes them: ``7``, ``7,11,13``, ``9-11``,
``GPIO9-11``, ``all`` (as gpioget/gpioset and pinctrl take lists).

A bare number is a board number; a range is in one numbering, its ends
included, and skips the power and ground pins inside it; ``all`` is every
GPIO of the header, in board order.

>>> pin_list("7,11")
[7, 11]
>>> pin_list("9-11")
[10, 11]
>>> pin_list("GPIO9-11")
[21, 19, 23]
>>> len(pin_list("all"))
28
"""
from __future__ import annotations

import argparse
import re
from typing import Iterable, List

from ..errors import BadPin
from ..pins import ALL_BOARD_PINS, BOARD_TO_BCM, POWER_AND_GROUND, board_pin, pin_key
from ..errors import PinListError  # noqa: F401 (defined in errors.py)

_END = re.compile(r"^(BOARD|GPIO|BCM|J8:|B|G)?(\d{1,3})$", re.I)
_KIND = {"BOARD": "b", "J8:": "b", "B": "b", "GPIO": "g", "BCM": "g", "G": "g"}


def _end(text: str, default_kind: str, which: str) -> tuple:
    found = _END.match(text.strip())
    if not found:
        raise PinListError(f"cannot read {text!r} as the {which} of a range of header pins "
                           "(e.g. 9-11, GPIO9-11)")
    prefix, number = found.group(1), int(found.group(2))
    return (_KIND[prefix.upper()] if prefix else default_kind), number


def _range(text: str) -> List[int]:
    first, last = text.split("-", 1)
    kind, lo = _end(first, "b", "start")
    kind_last, hi = _end(last, kind, "end")
    if kind_last != kind:
        raise PinListError(f"range {text!r}: both ends in one numbering (9-11 or GPIO9-11)")
    step = 1 if hi >= lo else -1
    numbers = range(lo, hi + step, step)
    if kind == "g":
        for end in (lo, hi):
            if end not in BOARD_TO_BCM.values():
                raise PinListError(f"range {text!r}: GPIO{end} is not on the 40-pin header "
                                   "(GPIO0 to GPIO27 are)")
        return [board_pin(n, "g") for n in numbers]
    for end in (lo, hi):
        if end not in BOARD_TO_BCM and end not in POWER_AND_GROUND:
            raise PinListError(f"range {text!r}: board pin {end} is not on the 40-pin header")
    boards = [n for n in numbers if n in BOARD_TO_BCM]
    if not boards:
        raise PinListError(f"range {text!r} has no GPIO in it (only power and ground)")
    return boards


class EveryPin(list):
    """A pin list with ``all`` in it: the verbs leave out the pins that a bus,
    a serial port or an expander holds then (common.without_held), which
    ``all`` does not mean."""


def pin_list(text: str) -> List[int]:
    """The board numbers of one argument (BadPin/PinListError if it does not read).

    >>> isinstance(pin_list("all"), EveryPin), isinstance(pin_list("7"), EveryPin)
    (True, False)
    """
    boards: List[int] = []
    every = False
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise PinListError(f"an empty item in the pin list {text!r}")
        if item.lower() == "all":
            boards.extend(ALL_BOARD_PINS)
            every = True
        elif "-" in item.strip("-"):
            boards.extend(_range(item))
        else:
            boards.append(pin_key(item))   # an expander pin too: "mcp0:A3"
    return EveryPin(boards) if every else boards


def pins_arg(text: str) -> List[int]:
    """argparse ``type=`` for a pin list: a bad one is a usage error (exit 2)."""
    try:
        return pin_list(text)
    except (BadPin, PinListError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def flatten(lists: Iterable[Iterable[int]]) -> List[int]:
    """The pins of several arguments, in order."""
    return [board for group in lists for board in group]


def names(boards: List[int]) -> str:
    """``BOARD7 (GPIO4)``, ``BOARD7 (GPIO4), BOARD11 (GPIO17)``, or ``28 pins``."""
    from ..pins import describe
    if len(boards) > 4:
        return f"{len(boards)} pins"
    return ", ".join(describe(b) for b in boards)
