"""The SPI part of ``[buses]``: a device's table (``[buses.spi0.0]``) and its simulated chip.

::

    [buses.spi0.0]                 # /dev/spidev0.0 (TOML reads it as spi0 -> 0)
    access = "read"                # "none", "read" (readbytes only) or "write"
    devices = ["mcp3008"]          # the simulated board's chip there: mcp3008, loopback, or []

>>> spi_key("spi0.1"), spi_key("spi0"), spi_key("i2c1")
(('spi', 0, 1), None, None)
>>> parse_spi_rule({"devices": ["loopback"]}, lambda k, m: ValueError(m)).devices
(('loopback', 0),)
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from .busconfig import BusRule
from .settingtable import Fail, Invalid, Setting, access, optional, parse_table
from .spidevices import SPI_DEVICE_KINDS, default_spi_device

_NAME = re.compile(r"^spi(\d{1,3})\.(\d{1,3})$")
_BUS = re.compile(r"^spi(\d{1,3})$")


def spi_key(name: str) -> Optional[Tuple[str, int, int]]:
    """``"spi0.1"`` -> ``("spi", 0, 1)``; None for anything else."""
    match = _NAME.match(name)
    if match and int(match.group(1)) <= 255 and int(match.group(2)) <= 255:
        return ("spi", int(match.group(1)), int(match.group(2)))
    return None


def flatten_spi(data: Dict[str, Any]) -> Dict[str, Any]:
    """TOML's ``[buses.spi0.0]`` arrives as ``{"spi0": {"0": {...}}}``: -> ``{"spi0.0": {...}}``."""
    flat: Dict[str, Any] = {}
    for name, value in data.items():
        if _BUS.match(name) and isinstance(value, dict) and value and all(
                isinstance(k, str) and k.isdigit() and isinstance(v, dict)
                for k, v in value.items()):
            flat.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            flat[name] = value
    return flat


def _devices(devices: Any) -> Tuple[Tuple[str, int], ...]:
    if not isinstance(devices, list) or len(devices) > 1 or not all(
            d in SPI_DEVICE_KINDS for d in devices):
        raise Invalid("devices must be [] or one of "
                      f"{', '.join(repr([k]) for k in SPI_DEVICE_KINDS)}, not {devices!r}")
    return tuple((d, 0) for d in devices)


_SETTINGS = {"access": Setting("write", access), "devices": Setting(None, optional(_devices))}


def parse_spi_rule(table: Dict[str, Any], fail: Fail) -> BusRule:
    """One ``[buses.spiB.C]`` table; *fail(key, message)* makes the error to raise."""
    return BusRule(**parse_table(table, _SETTINGS, fail, of=" for an SPI device"))


def spi_settings(rule: BusRule, key: Tuple[Any, ...], sim: bool) -> Dict[str, Any]:
    """What an SPI worker is told when it starts (plain data)."""
    if rule.devices is None:
        kind = default_spi_device(key[1], key[2])
    else:
        kind = rule.devices[0][0] if rule.devices else "none"
    return {"sim": sim, "device_kind": kind}
