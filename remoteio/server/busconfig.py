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

ACCESS = ("none", "read", "write")
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


def parse_bus_rule(table: Dict[str, Any], fail: Callable[[Optional[str], str], Exception]
                   ) -> BusRule:
    """One ``[buses.i2cN]`` table; *fail(key, message)* makes the error to raise."""
    known = ("access", "addresses", "devices")
    for key in table:
        if key not in known:
            raise fail(key, f"unknown setting {key!r} (known: {', '.join(known)})")
    access = table.get("access", "write")
    if access not in ACCESS:
        raise fail("access", f"access must be one of {', '.join(ACCESS)}, not {access!r}")
    addresses = table.get("addresses")
    if addresses is not None:
        if not isinstance(addresses, list) or not all(
                isinstance(a, int) and not isinstance(a, bool) and 0x03 <= a <= 0x77
                for a in addresses):
            raise fail("addresses", "addresses must be a list of I2C addresses 0x03..0x77")
        addresses = tuple(addresses)
    devices = table.get("devices")
    if devices is not None:
        parsed = []
        for device in devices if isinstance(devices, list) else [None]:
            match = _DEVICE.match(device) if isinstance(device, str) else None
            if match is None:
                raise fail("devices", 'devices must be a list like ["mcp23017@0x20", '
                                      f'"registers@0x50"], not {device!r}')
            parsed.append((match.group(1), int(match.group(2), 0)))
        devices = tuple(parsed)
    return BusRule(access, addresses, devices)


def parse_buses(data: Dict[str, Any], fail: Callable[[str, Optional[str], str], Exception]
                ) -> Tuple[str, Dict[Tuple[Any, ...], BusRule]]:
    """The ``[buses]`` section -> (default access, rule per bus)."""
    from .spiconfig import flatten_spi, parse_spi_rule, spi_key
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
        if serial_key(name) is not None:   # a serial port's table (serialconfig.py)
            rules[serial_key(name)] = parse_serial_rule(
                value, lambda k, m, t=f"buses.{name}": fail(t, k, m))
            continue
        key = bus_key(name) or spi_key(name)
        if key is None:
            raise fail(f"buses.{name}", None,
                       f"{name} is not a bus (i2c0 .. i2c255, spi0.0 .. spi255.255) "
                       "or a serial port (serial...)")
        parse = parse_spi_rule if key[0] == "spi" else parse_bus_rule
        rules[key] = parse(value, lambda k, m, t=f"buses.{name}": fail(t, k, m))
    return default, rules


def bus_rules(rules: Dict[Any, Any]) -> Dict[Tuple[Any, ...], BusRule]:
    """Rules as a program gives them (``{"i2c1": {"access": "read"}}``) -> rules by bus key."""
    from .spiconfig import parse_spi_rule, spi_key
    clean = {}
    for name, rule in rules.items():
        if isinstance(name, str) and serial_key(name) is not None:
            clean[serial_key(name)] = rule if isinstance(rule, SerialRule) else parse_serial_rule(
                rule, lambda k, m: ValueError(f"{name}: {m}"))
            continue
        key = (bus_key(name) or spi_key(name)) if isinstance(name, str) else tuple(name)
        if key is None:
            raise ValueError(f"{name!r} is not a bus (i2c0 .. i2c255, spi0.0 .. spi255.255) "
                             "or a serial port (serial...)")
        parse = parse_spi_rule if key[0] == "spi" else parse_bus_rule
        clean[key] = rule if isinstance(rule, (BusRule, SerialRule)) else parse(
            rule, lambda k, m: ValueError(f"{name}: {m}"))
    return clean
