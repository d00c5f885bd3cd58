"""The serial operations of the whitelist: their fields, bounds and the data event's shape.

A serial port is named by the name the server's configuration gives it
(``[buses.serial0]``) or by that table's ``device`` path; a client never
chooses a file. Bytes travel as base64 text in the JSON frames, both ways.

>>> data_field("data", "aGk=")
b'hi'
>>> data_field("data", "")
Traceback (most recent call last):
...
remoteio.errors.BadArgument: data must be base64 of 1 to 8192 bytes
>>> BAUDRATE("baudrate", 115200)
115200
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Callable, Dict, Tuple

from ..errors import BadArgument
from . import fields as f

#: bytes of one ``serial_write`` (a longer write is split by the client)
MAX_WRITE = 8192
#: bytes of one ``serial_data`` event at most (what one read of the tty gives)
CHUNK = 4096
#: what a port's name may look like (the configuration's table name)
PORT_NAME = re.compile(r"^serial[A-Za-z0-9_-]{0,32}$")
#: baud rates a request may ask for (the tty's driver may refuse some)
BAUDRATE = f.integer_in(50, 4_000_000)
#: the Pi's primary UART on the header: its names, and the pins it holds
PRIMARY_UARTS = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")
UART_PINS = (8, 10)        # BOARD8 = GPIO14 (TXD), BOARD10 = GPIO15 (RXD)

Validator = Callable[[str, Any], Any]


def port_field(name: str, value: Any) -> str:
    """A port's configured name or device path (resolved by the server's gate)."""
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise BadArgument(f"{name} must be a serial port's name (serial0) or its device path")
    return value


def data_field(name: str, value: Any) -> bytes:
    """Base64 text of 1 to :data:`MAX_WRITE` bytes."""
    try:
        data = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        data = b""
    if not 0 < len(data) <= MAX_WRITE:
        raise BadArgument(f"{name} must be base64 of 1 to {MAX_WRITE} bytes")
    return data


def encode_data(data: bytes) -> str:
    """Bytes as the wire carries them."""
    return base64.b64encode(data).decode("ascii")


def decode_data(text: str) -> bytes:
    return base64.b64decode(text)


def serial_ops(required: Any) -> Tuple[Tuple[str, Dict[str, Tuple[Validator, Any]]], ...]:
    """(operation, its fields) for each serial operation (``ops`` makes the specs)."""
    port = {"port": (port_field, required)}
    return (
        # start receiving the port's data (serial_data events); set its line
        ("serial_open", dict(port, baudrate=(BAUDRATE, None))),
        ("serial_close", port),
        ("serial_write", dict(port, data=(data_field, required),
                              timeout=(f.number_in(0, 600), 10.0))),
        ("serial_configure", dict(port, baudrate=(BAUDRATE, required))),
        ("serial_reset", dict(port, input=(f.boolean, True), output=(f.boolean, False))),
        ("serial_flush", dict(port, timeout=(f.number_in(0, 600), 10.0))),
    )


#: operations a port with ``access = "read"`` lets through
READ_OPS = frozenset(("serial_open", "serial_close", "serial_configure", "serial_reset"))
