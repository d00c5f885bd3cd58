"""The SPI operations of the whitelist: their fields, the bytes on the wire, the pins held.

Bytes travel as hex text (``"018000"``: 4,096 bytes fit a 16 KiB request
frame, where a JSON list of numbers would not). Every operation names its
device (``bus``, ``device``: ``/dev/spidevB.C``) and may carry the settings
it runs with (``mode_bits``, ``bits_per_word``, ``max_speed_hz``): the
client sends its object's own, so two clients of one device each keep theirs.

>>> hex_bytes(1, 4096)("data", "01 80 00".replace(" ", ""))
b'\\x01\\x80\\x00'
>>> hex_bytes(1, 4)("data", "0102030405")
Traceback (most recent call last):
...
remoteio.errors.BadArgument: data must hold 1 to 4 bytes (hex text), not 5
>>> mode_bits(cpol_cpha=3, cshigh=True)
7
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from ..errors import BadArgument
from . import fields as f

#: the most bytes of one transfer (spidev's buffer: its SPIDEV_MAXPATH and the
#: kernel's default ``bufsiz``); xfer3/writebytes2 send longer data in such blocks
MAX_TRANSFER = 4096
#: the kernel's SPI mode bits (linux/spi/spidev.h), as spidev keeps them
CPHA, CPOL, CS_HIGH, LSB_FIRST, THREE_WIRE, LOOP, NO_CS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
MODE_FLAGS = {"cshigh": CS_HIGH, "lsbfirst": LSB_FIRST, "threewire": THREE_WIRE, "loop": LOOP,
              "no_cs": NO_CS}

Validator = Callable[[str, Any], Any]


def hex_bytes(minimum: int, maximum: int) -> Validator:
    """Hex text of *minimum* to *maximum* bytes -> bytes."""
    def check(name: str, value: Any) -> bytes:
        if not isinstance(value, str) or len(value) > 2 * maximum + 2:
            if isinstance(value, str):
                raise BadArgument(f"{name} must hold {minimum} to {maximum} bytes (hex text), "
                                  f"not {len(value) // 2}")
            raise BadArgument(f"{name} must be hex text (\"018000\"), not {type(value).__name__}")
        try:
            data = bytes.fromhex(value)
        except ValueError:
            raise BadArgument(f"{name} must be hex text (\"018000\"), not {value[:20]!r}") from None
        if not minimum <= len(data) <= maximum:
            raise BadArgument(f"{name} must hold {minimum} to {maximum} bytes (hex text), "
                              f"not {len(data)}")
        return data
    return check


def checked_setting(name: str, value: Any) -> int:
    """*value* for spidev's ``bits_per_word`` or ``max_speed_hz`` attribute,
    checked as spidev checks it (TypeError, spidev's own messages).

    >>> checked_setting("bits_per_word", 8)
    8
    >>> checked_setting("bits_per_word", 7)
    Traceback (most recent call last):
    TypeError: invalid bits_per_word (8 to 32)
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"The {name} attribute must be an integer")
    if name == "bits_per_word" and not 8 <= value <= 32:
        raise TypeError("invalid bits_per_word (8 to 32)")
    return value


def with_mode_attribute(bits: int, name: str, value: Any) -> int:
    """The kernel's mode *bits* after spidev's ``mode`` (0..3) or one of its
    flags (:data:`MODE_FLAGS`) is set to *value*, checked as spidev checks it
    (TypeError, spidev's own messages).

    >>> with_mode_attribute(CS_HIGH, "mode", 3), with_mode_attribute(CS_HIGH, "cshigh", False)
    (7, 0)
    >>> with_mode_attribute(0, "threewire", 1)
    Traceback (most recent call last):
    TypeError: The 3wire attribute must be boolean
    """
    if name == "mode":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
            raise TypeError("The mode attribute must be an integer between 0 and 3.")
        return bits & ~(CPOL | CPHA) | value
    if not isinstance(value, bool):
        raise TypeError(f"The {'3wire' if name == 'threewire' else name} attribute must be boolean")
    bit = MODE_FLAGS[name]
    return bits | bit if value else bits & ~bit


def mode_bits(cpol_cpha: int = 0, **flags: bool) -> int:
    """spidev's ``mode`` (0..3) and flags (``cshigh=True``...) -> the kernel's mode bits."""
    bits = cpol_cpha
    for name, on in flags.items():
        if on:
            bits |= MODE_FLAGS[name]
    return bits


BUS_NUMBER = f.integer_in(0, 255)
_U32 = f.integer_in(1, 2**32 - 1)
#: what a request may say of the device's settings (None: leave them as they are)
SETTINGS: Dict[str, Tuple[Validator, Any]] = {
    "mode_bits": (f.integer_in(0, 0x7F), None),
    "bits_per_word": (f.integer_in(8, 32), None),    # spidev's own bounds
    "max_speed_hz": (_U32, None),
}
#: a transfer's own overrides, as spidev's xfer(values, speed_hz, delay_usecs, bits_per_word)
_PER_TRANSFER = {
    "speed_hz": (f.integer_in(0, 2**32 - 1), 0),
    "delay_usecs": (f.integer_in(0, 0xFFFF), 0),
    "transfer_bits": (f.integer_in(0, 255), 0),
}


def spi_fields(op: str) -> Dict[str, Tuple[Validator, Any]]:
    """The wire fields of ``spi_<op>``."""
    from .ops import REQUIRED
    fields: Dict[str, Tuple[Validator, Any]] = {"bus": (BUS_NUMBER, 0), "device": (BUS_NUMBER, 0)}
    if op in ("xfer", "xfer2"):
        fields.update(data=(hex_bytes(1, MAX_TRANSFER), REQUIRED), **_PER_TRANSFER)
    elif op == "writebytes":
        fields["data"] = (hex_bytes(1, MAX_TRANSFER), REQUIRED)
    elif op == "readbytes":
        fields["count"] = (f.integer_in(1, MAX_TRANSFER), REQUIRED)
    elif op == "sim":
        fields.update(action=(f.one_of(("set_voltage", "voltages", "history")), REQUIRED),
                      channel=(f.integer_in(0, 7), None), volts=(f.number_in(0.0, 100.0), None))
    if op != "sim":
        fields.update(SETTINGS)
    return fields


#: the spi_* operations: spidev's calls, then configure/close (the device) and sim
SPI_OPS = ("xfer", "xfer2", "readbytes", "writebytes", "configure", "close", "sim")
#: the ones that may change what the device does (access "read" refuses them)
WRITE_OPS = frozenset(("spi_xfer", "spi_xfer2", "spi_writebytes"))

#: SPI devices (bus, chip select) -> the header pins (board numbers) they hold
#: while open: SPI0 MOSI/MISO/SCLK are BOARD19/21/23 (GPIO10/9/11), CE0 BOARD24
#: (GPIO8), CE1 BOARD26 (GPIO7); SPI1 (the auxiliary one, spi1-3cs overlay)
#: MISO/MOSI/SCLK BOARD35/38/40 (GPIO19/20/21), CE0..2 BOARD12/11/36 (GPIO18/17/16)
SPI_PINS: Dict[Tuple[int, int], Tuple[int, ...]] = {
    (0, 0): (19, 21, 23, 24), (0, 1): (19, 21, 23, 26),
    (1, 0): (35, 38, 40, 12), (1, 1): (35, 38, 40, 11), (1, 2): (35, 38, 40, 36),
}
