"""The ``[buses]`` configuration: who may use which bus, and a simulated bus's devices.

::

    [buses.i2c1]
    access = "write"               # "none", "read" or "write"
    addresses = [0x20, 0x50]       # only these devices (none given: any)
    devices = ["mcp23017@0x20", "registers@0x50"]   # the simulated board's chips

A bus without a table is open (``access = "write"``), as pins are by
default; ``[buses] default_access`` changes that for every bus.

>>> rule = parse_bus_rule({"access": "read", "addresses": [0x20]}, lambda k, m: ValueError(m))
>>> rule.access, rule.addresses
('read', (32,))
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from .serialconfig import SerialRule, parse_serial_rule, serial_key
from .settingtable import ACCESS, Fail, Invalid, Setting, access, optional, parse_table
_NAME = re.compile(r"^i2c(\d{1,3})$")
_DEVICE = re.compile(r"^(mcp23017|mcp23008|registers|stuck)@(0x[0-9a-fA-F]{1,2}|\d{1,3})$")


@dataclass(frozen=True)
class BusRule:
    access: str = "write"
    addresses: Optional[Tuple[int, ...]] = None            # None: any address
    devices: Optional[Tuple[Tuple[str, int], ...]] = None  # None: the simulated defaults


def bus_key(name: str) -> Optional[Tuple[str, int]]:
    """``"i2c1"`` -> ``("i2c", 1)``; None for a name that is not a bus."""
    match = _NAME.match(name)
    return ("i2c", int(match.group(1))) if match and int(match.group(1)) <= 255 else None


def _addresses(addresses: Any) -> Tuple[int, ...]:
    if not isinstance(addresses, list) or not all(
            isinstance(a, int) and not isinstance(a, bool) and 0x03 <= a <= 0x77
            for a in addresses):
        raise Invalid("addresses must be a list of I2C addresses 0x03..0x77")
    return tuple(addresses)


def _devices(devices: Any) -> Tuple[Tuple[str, int], ...]:
    parsed = []
    for device in devices if isinstance(devices, list) else [None]:
        match = _DEVICE.match(device) if isinstance(device, str) else None
        if match is None:
            raise Invalid('devices must be a list like ["mcp23017@0x20", '
                          f'"registers@0x50"], not {device!r}')
        parsed.append((match.group(1), int(match.group(2), 0)))
    return tuple(parsed)


_SETTINGS = {"access": Setting("write", access),
             "addresses": Setting(None, optional(_addresses)),
             "devices": Setting(None, optional(_devices))}


def parse_bus_rule(table: Dict[str, Any], fail: Fail) -> BusRule:
    """One ``[buses.i2cN]`` table; *fail(key, message)* makes the error to raise."""
    return BusRule(**parse_table(table, _SETTINGS, fail))


#: what a ``[buses]`` table's name may be, for the message that refuses one
NAMES = "a bus (i2c0 .. i2c255, spi0.0 .. spi255.255) or a serial port (serial...)"


Parse = Callable[[Dict[str, Any], Fail], Any]


def _kinds() -> Dict[str, Tuple[Callable[[str], Any], Parse]]:
    """Each bus kind's (its key from a table's name, its table's parse)."""
    from .spiconfig import parse_spi_rule, spi_key   # spiconfig imports this module
    return {"serial": (serial_key, parse_serial_rule), "i2c": (bus_key, parse_bus_rule),
            "spi": (spi_key, parse_spi_rule)}


def table_kind(name: str) -> Optional[Tuple[Tuple[Any, ...], Parse]]:
    """A ``[buses]`` table's name -> (its key, its parse); None: no bus's name.

    >>> table_kind("i2c1")[0], table_kind("spi0.1")[0], table_kind("serial0")[0]
    (('i2c', 1), ('spi', 0, 1), ('serial', 'serial0'))
    >>> table_kind("uart") is None
    True
    """
    for key_of, parse in _kinds().values():
        key = key_of(name)
        if key is not None:
            return key, parse
    return None


def parse_buses(data: Dict[str, Any], fail: Callable[[str, Optional[str], str], Exception]
                ) -> Tuple[str, Dict[Tuple[Any, ...], Any]]:
    """The ``[buses]`` section -> (default access, rule per bus)."""
    from .spiconfig import flatten_spi
    default, rules = "write", {}
    for name, value in flatten_spi(data).items():
        if not isinstance(value, dict):
            if name != "default_access":
                raise fail("buses", name, f"{name} is not a bus table ([buses.i2c1]) "
                                          "or default_access")
            if value not in ACCESS:
                raise fail("buses", name, f"default_access must be one of {', '.join(ACCESS)}")
            default = value
            continue
        kind = table_kind(name)
        if kind is None:
            raise fail(f"buses.{name}", None, f"{name} is not {NAMES}")
        key, parse = kind
        rules[key] = parse(value, lambda k, m, t=f"buses.{name}": fail(t, k, m))
    return default, rules


def bus_rules(rules: Dict[Any, Any]) -> Dict[Tuple[Any, ...], Any]:
    """Rules as a program gives them (``{"i2c1": {"access": "read"}}``) -> rules by bus key."""
    clean = {}
    for name, rule in rules.items():
        if isinstance(name, str):
            kind = table_kind(name)
            if kind is None:
                raise ValueError(f"{name!r} is not {NAMES}")
            key, parse = kind
        else:
            key = tuple(name)   # by kind; anything else is read as an I2C bus's
            kinds = _kinds()
            parse = kinds.get(key[0], kinds["i2c"])[1]
        clean[key] = rule if isinstance(rule, (BusRule, SerialRule)) else parse(
            rule, lambda k, m: ValueError(f"{name}: {m}"))
    return clean
