"""The serial ports of ``[buses]``: each declared by name with its device, never chosen by a client.

::

    [buses.serial0]
    device = "/dev/ttyAMA0"      # a tty, or a simulated device: "sim:echo", "sim:script"
    access = "write"             # "none", "read" or "write"
    baudrate = 115200            # until a client sets another
    header_pins = true           # holds BOARD8/10 (default: for the Pi's primary UART)

    [buses.serial_gps]
    device = "sim:script"        # plays its lines in turn, one every interval_ms
    script = ["$GPGGA,...\\r\\n", "$GPRMC,...\\r\\n"]
    interval_ms = 1000

>>> rule = parse_serial_rule({"device": "sim:echo"}, lambda k, m: ValueError(m))
>>> rule.device, rule.access, rule.holds_header()   # access None: [buses] default_access
('sim:echo', None, False)
>>> parse_serial_rule({"device": "/dev/ttyAMA0"}, lambda k, m: ValueError(m)).holds_header()
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from ..protocol.serial import BAUDRATE, PORT_NAME, PRIMARY_UARTS
from ..errors import BadArgument
from .settingtable import Fail, Invalid, Setting, access, optional, parse_table
SIM_DEVICES = ("sim:echo", "sim:script")
#: the port the simulated board has when the configuration declares none
SIM_DEFAULT = "serial0"


@dataclass(frozen=True)
class SerialRule:
    device: str
    access: Optional[str] = None            # None: [buses] default_access
    baudrate: int = 9600
    header_pins: Optional[bool] = None      # None: the primary UART's device holds them
    script: Tuple[str, ...] = ()
    interval_ms: float = 100.0

    def holds_header(self) -> bool:
        """Does this port's worker hold the header's UART pins (BOARD8/10)?"""
        if self.header_pins is not None:
            return self.header_pins
        return self.device in PRIMARY_UARTS


def serial_key(name: str) -> Optional[Tuple[str, str]]:
    """``"serial0"`` -> ``("serial", "serial0")``; None for a name that is not a port's."""
    return ("serial", name) if PORT_NAME.match(name) else None


def _device(device: Any) -> str:
    if not isinstance(device, str) or not (device.startswith("/dev/") or device in SIM_DEVICES):
        raise Invalid("device must be a tty's path (/dev/ttyAMA0) or one of "
                      f"{', '.join(SIM_DEVICES)}, not {device!r}")
    return device


def _baudrate(value: Any) -> int:
    try:
        return BAUDRATE("baudrate", value)
    except BadArgument as exc:
        raise Invalid(exc.message) from None


def _header_pins(header: Any) -> bool:
    if not isinstance(header, bool):
        raise Invalid("header_pins must be true or false")
    return header


def _script(script: Any) -> Tuple[str, ...]:
    if not isinstance(script, list) or not all(isinstance(line, str) for line in script):
        raise Invalid("script must be a list of strings")
    return tuple(script)


def _interval(interval: Any) -> float:
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or not 1 <= interval <= 3_600_000:
        raise Invalid("interval_ms must be a number of ms, 1 .. 3600000")
    return float(interval)


_SETTINGS = {"device": Setting(None, _device), "access": Setting(None, optional(access)),
             "baudrate": Setting(9600, _baudrate),
             "header_pins": Setting(None, optional(_header_pins)),
             "script": Setting([], _script), "interval_ms": Setting(100.0, _interval)}


def parse_serial_rule(table: Dict[str, Any], fail: Fail) -> SerialRule:
    """One ``[buses.serialX]`` table; *fail(key, message)* makes the error to raise."""
    rule = SerialRule(**parse_table(table, _SETTINGS, fail))
    if rule.device == "sim:script" and not rule.script:
        raise fail("script", "a sim:script device needs its script (a list of strings)")
    return rule
