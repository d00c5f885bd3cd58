"""The bus operations of the whitelist: each I2C/SMBus call, its fields and their ranges.

One table (:data:`I2C_CALLS`) says which fields each SMBus call takes; the
wire operations (``i2c_<call>``, see :mod:`.ops`), a ``transaction``'s parts
and the client's positional arguments are all read from it.

>>> clean_call("read_byte_data", {"addr": 0x20, "register": 0x12})
{'addr': 32, 'register': 18}
>>> clean_call("write_byte", {"addr": 0x20, "value": 256})
Traceback (most recent call last):
...
remoteio.errors.BadArgument: value must be between 0 and 255, not 256
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from ..errors import BadArgument
from . import fields as f
from .spi import SPI_PINS

#: SMBus blocks carry at most 32 bytes (the SMBus specification's limit)
MAX_BLOCK = 32
#: parts of one ``i2c_transaction``
MAX_TRANSACTION = 64
#: messages of one ``i2c_rdwr``, and the bytes of each
MAX_MESSAGES, MAX_MESSAGE_BYTES = 16, 4096
#: the I2C buses a server may have (/dev/i2c-0 .. /dev/i2c-255)
BUS_NUMBER = f.integer_in(0, 255)

Validator = Callable[[str, Any], Any]


def byte_list(minimum: int, maximum: int) -> Validator:
    """A list of *minimum* to *maximum* integers 0..255."""
    def check(name: str, value: Any) -> List[int]:
        if not isinstance(value, list) or not minimum <= len(value) <= maximum:
            raise BadArgument(f"{name} must be a list of {minimum} to {maximum} bytes")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 255:
                raise BadArgument(f"{name} must hold integers 0..255, not {item!r}")
        return list(value)
    return check


_ADDR = f.integer_in(0x03, 0x77)      # 7-bit addresses; 0-2 and 0x78-0x7f are reserved
_REGISTER = f.integer_in(0, 255)
_BYTE = f.integer_in(0, 255)
_WORD = f.integer_in(0, 0xFFFF)
_LENGTH = f.integer_in(1, MAX_BLOCK)

#: SMBus call -> its fields, in smbus2's argument order (after i2c_addr);
#: the value says whether the call answers with a value
I2C_CALLS: Dict[str, Tuple[Tuple[Tuple[str, Validator], ...], bool]] = {
    "write_quick": ((), False),
    "read_byte": ((), True),
    "write_byte": ((("value", _BYTE),), False),
    "read_byte_data": ((("register", _REGISTER),), True),
    "write_byte_data": ((("register", _REGISTER), ("value", _BYTE)), False),
    "read_word_data": ((("register", _REGISTER),), True),
    "write_word_data": ((("register", _REGISTER), ("value", _WORD)), False),
    "process_call": ((("register", _REGISTER), ("value", _WORD)), True),
    "read_block_data": ((("register", _REGISTER),), True),
    "write_block_data": ((("register", _REGISTER), ("data", byte_list(0, MAX_BLOCK))), False),
    "block_process_call": ((("register", _REGISTER), ("data", byte_list(0, MAX_BLOCK))), True),
    "read_i2c_block_data": ((("register", _REGISTER), ("length", _LENGTH)), True),
    "write_i2c_block_data": ((("register", _REGISTER), ("data", byte_list(1, MAX_BLOCK))),
                             False),
}


def call_fields(call: str) -> Dict[str, Tuple[Validator, Any]]:
    """The wire fields of ``i2c_<call>`` (beside ``bus``), all required."""
    from .ops import REQUIRED
    return {name: (check, REQUIRED) for name, check in _CHECKS[call]}


#: call -> its fields' (name, validator), addr first: made once, read per part
_CHECKS: Dict[str, Tuple[Tuple[str, Validator], ...]] = {
    call: (("addr", _ADDR),) + spec[0] for call, spec in I2C_CALLS.items()}
_NAMES = {call: frozenset(name for name, _ in checks) for call, checks in _CHECKS.items()}


def clean_call(call: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """The validated fields of one SMBus *call* (a transaction's part)."""
    checks = _CHECKS[call]
    if len(args) != len(checks) or not _NAMES[call].issuperset(args):
        extra = set(args) - _NAMES[call]
        if extra:
            raise BadArgument(f"{call} has no field {sorted(extra)[0]!r} (its fields: "
                              f"{', '.join(name for name, _ in checks)})")
        missing = next(name for name, _ in checks if name not in args)
        raise BadArgument(f"{call} needs the field {missing!r}")
    return {name: check(name, args[name]) for name, check in checks}


def transaction(name: str, value: Any) -> List[Tuple[str, Dict[str, Any]]]:
    """``[{"call": ..., fields...}, ...]``: 1 to :data:`MAX_TRANSACTION` SMBus calls."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_TRANSACTION:
        raise BadArgument(f"{name} must be a list of 1 to {MAX_TRANSACTION} calls")
    parts = []
    for n, part in enumerate(value):
        if not isinstance(part, dict) or part.get("call") not in I2C_CALLS:
            raise BadArgument(f"{name}[{n}] must be an object whose call is one of "
                              f"{', '.join(I2C_CALLS)}")
        args = {k: v for k, v in part.items() if k != "call"}
        try:
            parts.append((part["call"], clean_call(part["call"], args)))
        except BadArgument as exc:
            raise BadArgument(f"{name}[{n}]: {exc}") from None
    return parts


def messages(name: str, value: Any) -> List[Tuple[int, int, List[int]]]:
    """``i2c_rdwr``'s messages: ``[{"addr", "read": n} | {"addr", "write": [bytes]}]``
    -> ``[(addr, read length or -1, bytes to write)]``."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_MESSAGES:
        raise BadArgument(f"{name} must be a list of 1 to {MAX_MESSAGES} messages")
    clean = []
    for n, msg in enumerate(value):
        where = f"{name}[{n}]"
        if not isinstance(msg, dict) or set(msg) not in ({"addr", "read"}, {"addr", "write"}):
            raise BadArgument(f"{where} must be {{addr, read: length}} or {{addr, write: bytes}}")
        addr = _ADDR(f"{where}.addr", msg["addr"])
        if "read" in msg:
            clean.append((addr, f.integer_in(1, MAX_MESSAGE_BYTES)(f"{where}.read", msg["read"]),
                          []))
        else:
            clean.append((addr, -1, byte_list(1, MAX_MESSAGE_BYTES)(f"{where}.write",
                                                                    msg["write"])))
    return clean


#: header pins (board numbers) a bus holds while its worker runs
BUS_PINS: Dict[Tuple[Any, ...], Tuple[int, ...]] = {
    ("i2c", 0): (27, 28),         # GPIO0 (ID_SD), GPIO1 (ID_SC): the HAT EEPROM's bus
    ("i2c", 1): (3, 5),           # GPIO2 (SDA1), GPIO3 (SCL1)
}
BUS_PINS.update({("spi", bus, device): pins for (bus, device), pins in SPI_PINS.items()})


def request_bus(op: str, args: Dict[str, Any]) -> Tuple[Any, ...]:
    """The bus a validated bus request is for: ``("i2c", 1)``, ``("spi", 0, 0)``."""
    if op.startswith("spi_"):
        return ("spi", args["bus"], args["device"])
    return ("i2c", args["bus"])


def bus_name(key: Tuple[Any, ...]) -> str:
    """``("i2c", 1)`` -> ``"I2C bus 1"``; ``("spi", 0, 1)`` -> ``"SPI bus 0 device 1"``."""
    if key[0] == "spi":
        return f"SPI bus {key[1]} device {key[2]}"
    kind, number = key
    if kind == "serial":
        return f"serial port {number}"
    return f"{kind.upper()} bus {number}"
