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
>>> pin_key("MCP0:gpb7"), pin_key("mcp0:3"), pin_key("GPIO4"), pin_key("pcf0:p3")
('mcp0:B7', 'mcp0:A3', 7, 'pcf0:P3')

A pin of an I/O expander the server declares (docs/expanders.md) is named
``"<expander>:<port><bit>"``: ``"mcp0:A3"``, ``"mcp0:B7"`` (an MCP23008 has
port A only); ``"mcp0:GPA3"`` (the datasheet's name) and the bit number
``"mcp0:11"`` (0-7 port A, 8-15 port B) are read too. Case does not matter;
the canonical spelling is ``"mcp0:A3"``. A PCF8574's pins are ``"pcf0:P0"`` ..
``"pcf0:P7"`` (the datasheet's P0..P7); the bit number form is for MCP chips only.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Tuple, Union

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


def describe(board: Union[int, str]) -> str:
    """A human name for a board pin: ``'BOARD7 (GPIO4)'`` (an expander's pin: its name)."""
    if isinstance(board, str):
        return board
    return f"BOARD{board} (GPIO{BOARD_TO_BCM[board]})"


# ---- pins of I/O expanders (docs/expanders.md) --------------------------------------------
#: an expander's name as a configuration declares it: a letter, then letters, digits, _
EXPANDER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_EXPANDER_PIN = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,15}):(?:(?:[Gg][Pp])?([ABab])|([Pp]))([0-7])$|"
                           r"^([A-Za-z][A-Za-z0-9_]{0,15}):(1[0-5]|[0-9])$")
#: the chips whose pins are named P0..P7 (quasi-bidirectional, one port; docs/expanders.md)
PCF_CHIPS = ("pcf8574", "pcf8574a")

#: a pin as the server names it: a board number, or an expander pin's name
PinKey = Union[int, str]


def expander_pin_parts(spec: Any) -> Tuple[str, int, str]:
    """``"mcp0:B3"`` -> ``("mcp0", 11, "AB")``, ``"pcf0:P3"`` -> ``("pcf0", 3, "P")``,
    ``"mcp0:11"`` -> ``("mcp0", 11, "")``: name, bit (0-15) and the naming style;
    BadPin if it is not such a name."""
    match = _EXPANDER_PIN.match(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise BadPin(f"cannot read pin {spec!r}: an expander's pin is named like 'mcp0:A3' "
                     "(MCP23017/MCP23008: A0-A7, B0-B7) or 'pcf0:P3' (PCF8574: P0-P7)")
    if match.group(2):
        return (match.group(1).lower(), "AB".index(match.group(2).upper()) * 8 +
                int(match.group(4)), "AB")
    if match.group(3):
        return match.group(1).lower(), int(match.group(4)), "P"
    return match.group(5).lower(), int(match.group(6)), ""


def expander_pin(spec: Any) -> Tuple[str, int]:
    """``"mcp0:B3"`` -> ``("mcp0", 11)`` (the bit, 0-15); BadPin if it is not such a name."""
    name, bit, _ = expander_pin_parts(spec)
    return name, bit


def expander_pin_name(expander: str, bit: int, chip: str = "") -> str:
    """The canonical name of bit *bit* (0-15) of *expander*: ``"mcp0:B3"``
    (``"pcf0:P3"`` when *chip* is one of :data:`PCF_CHIPS`)."""
    if chip in PCF_CHIPS:
        return f"{expander}:P{bit}"
    return f"{expander}:{'AB'[bit // 8]}{bit % 8}"


#: a port pin of a simulated I2C bus's own chip: "i2c1@0x20:A3" (bus, address, pin)
_BUS_CHIP_PIN = re.compile(r"^i2c(\d{1,3})@(0x[0-9a-fA-F]{1,2}|\d{1,3}):"
                           r"(?:(?:[Gg][Pp])?([ABab])([0-7])|(1[0-5]|[0-9]))$")


def is_bus_chip_spec(spec: Any) -> bool:
    """Does *spec* name a pin of a bus's chip (``"i2c1@0x20:A3"``)? An
    expander's name has no ``@``, so the two cannot be confused."""
    return isinstance(spec, str) and "@" in spec


def bus_chip_pin(spec: Any) -> Tuple[int, int, int]:
    """``"i2c1@0x20:B3"`` -> ``(1, 0x20, 11)``: bus, address, bit (0-15); BadPin if malformed.

    >>> bus_chip_pin("i2c1@0x21:GPA7"), bus_chip_pin("i2c3@32:9")
    ((1, 33, 7), (3, 32, 9))
    """
    match = _BUS_CHIP_PIN.match(spec.strip()) if isinstance(spec, str) else None
    bus, address = (int(match.group(1)), int(match.group(2), 0)) if match else (-1, -1)
    if match is None or bus > 255 or not 0x03 <= address <= 0x77:
        raise BadPin(f"cannot read pin {spec!r}: a bus chip's pin is named like 'i2c1@0x20:A3' "
                     "(bus 0-255, address 0x03-0x77, A0-A7/B0-B7)")
    if match.group(3):
        return bus, address, "AB".index(match.group(3).upper()) * 8 + int(match.group(4))
    return bus, address, int(match.group(5))


def is_expander_spec(spec: Any) -> bool:
    return isinstance(spec, str) and ":" in spec and not spec.strip().upper().startswith("J8:")


def pin_key(spec: PinSpec, numbering: str = "b") -> PinKey:
    """A header pin's board number (see :func:`board_pin`), or an expander
    pin's canonical name (``"mcp0:A3"``, ``"pcf0:P3"``); BadPin for anything else."""
    if is_expander_spec(spec):   # the chip is not known here: "P" names keep their style
        name, bit, style = expander_pin_parts(spec)
        return f"{name}:P{bit}" if style == "P" else expander_pin_name(name, bit)
    return board_pin(spec, numbering)


def pin_order(key: PinKey) -> Tuple[int, Any]:
    """A sort key putting header pins (by number) before expander pins (by name)."""
    return (1, key) if isinstance(key, str) else (0, key)
