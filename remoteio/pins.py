"""The Raspberry Pi 40-pin header: board numbers, BCM GPIO numbers, pin specs.

Internally remoteio names every pin by its *board* number (its physical
position on the J8 header), as the original remoteio did; GPIO numbers are
translated at the edge.

>>> board_pin(7, "b")
7
>>> board_pin(4, "g")
7
>>> board_pin("GPIO4")
7
>>> bcm_of(7)
4
"""
from __future__ import annotations

from typing import Dict, Union

from .errors import BadPin

#: board number -> BCM GPIO number, for the 28 GPIO pins of the 40-pin header.
BOARD_TO_BCM: Dict[int, int] = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27,
    15: 22, 16: 23, 18: 24, 19: 10, 21: 9, 22: 25, 23: 11, 24: 8,
    26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
    36: 16, 37: 26, 38: 20, 40: 21,
}
BCM_TO_BOARD: Dict[int, int] = {bcm: board for board, bcm in BOARD_TO_BCM.items()}

#: header positions that are not GPIOs, and what they are.
POWER_AND_GROUND: Dict[int, str] = {
    1: "3V3 power", 17: "3V3 power", 2: "5V power", 4: "5V power",
    6: "ground", 9: "ground", 14: "ground", 20: "ground", 25: "ground",
    30: "ground", 34: "ground", 39: "ground",
}

#: board pins that carry the HAT ID EEPROM bus; usable, but best left alone.
ID_EEPROM_PINS = (27, 28)

ALL_BOARD_PINS = tuple(sorted(BOARD_TO_BCM))

PinSpec = Union[int, str]

_PREFIXES = (
    # longest first, so "BOARD" wins over "B" and "GPIO" over "G"
    ("BOARD", "b"), ("GPIO", "g"), ("BCM", "g"), ("J8:", "b"),
    ("B", "b"), ("G", "g"),
)


def _check_board(number: int) -> int:
    if number in BOARD_TO_BCM:
        return number
    if number in POWER_AND_GROUND:
        raise BadPin(
            f"board pin {number} is {POWER_AND_GROUND[number]}, not a GPIO")
    raise BadPin(
        f"board pin {number} is not on the 40-pin header (GPIO pins are "
        f"{', '.join(map(str, ALL_BOARD_PINS))})")


def _check_bcm(number: int) -> int:
    try:
        return BCM_TO_BOARD[number]
    except KeyError:
        raise BadPin(
            f"GPIO{number} is not on the 40-pin header (GPIO0 to GPIO27 are)"
        ) from None


def _is_number(text: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²" or "①", which int() refuses
    return 0 < len(text) <= 3 and text.isascii() and text.isdigit()


def board_pin(spec: PinSpec, numbering: str = "b") -> int:
    """Return the board number of *spec*, or raise :exc:`BadPin`.

    *spec* is an int (read with *numbering*: ``'b'`` board, ``'g'`` GPIO/BCM)
    or a string: ``"7"``, ``"b7"``, ``"g4"``, ``"BOARD7"``, ``"GPIO4"``,
    ``"BCM4"``, ``"J8:7"`` (case does not matter).
    """
    if numbering not in ("b", "g"):
        raise BadPin(f"numbering must be 'b' (board) or 'g' (GPIO), not {numbering!r}")
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise BadPin(f"a pin is an int or a string such as 'GPIO4', not {spec!r}")
    if isinstance(spec, str):
        text = spec.strip().upper()
        for prefix, kind in _PREFIXES:
            if text.startswith(prefix) and _is_number(text[len(prefix):]):
                numbering, text = kind, text[len(prefix):]
                break
        if not _is_number(text):
            raise BadPin(
                f"cannot read pin {spec!r}: use e.g. 7, 'b7', 'g4', 'BOARD7' or 'GPIO4'")
        spec = int(text)
    return _check_board(spec) if numbering == "b" else _check_bcm(spec)


def bcm_of(board: int) -> int:
    """The BCM GPIO number of a board pin."""
    return BOARD_TO_BCM[_check_board(board)]


def describe(board: int) -> str:
    """A human name for a board pin: ``'BOARD7 (GPIO4)'``."""
    return f"BOARD{board} (GPIO{BOARD_TO_BCM[board]})"
