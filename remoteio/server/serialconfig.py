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
from typing import Any, Callable, Dict, Optional, Tuple

from ..protocol.serial import BAUDRATE, PORT_NAME, PRIMARY_UARTS
from ..errors import BadArgument

ACCESS = ("none", "read", "write")
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


def parse_serial_rule(table: Dict[str, Any], fail: Callable[[Optional[str], str], Exception]
                      ) -> SerialRule:
    """One ``[buses.serialX]`` table; *fail(key, message)* makes the error to raise."""
    known = ("device", "access", "baudrate", "header_pins", "script", "interval_ms")
    for key in table:
        if key not in known:
            raise fail(key, f"unknown setting {key!r} (known: {', '.join(known)})")
    device = table.get("device")
    if not isinstance(device, str) or not (device.startswith("/dev/") or device in SIM_DEVICES):
        raise fail("device", "device must be a tty's path (/dev/ttyAMA0) or one of "
                             f"{', '.join(SIM_DEVICES)}, not {device!r}")
    access = table.get("access")
    if access is not None and access not in ACCESS:
        raise fail("access", f"access must be one of {', '.join(ACCESS)}, not {access!r}")
    try:
        baudrate = BAUDRATE("baudrate", table.get("baudrate", 9600))
    except BadArgument as exc:
        raise fail("baudrate", exc.message) from None
    header = table.get("header_pins")
    if header is not None and not isinstance(header, bool):
        raise fail("header_pins", "header_pins must be true or false")
    script = table.get("script", [])
    if not isinstance(script, list) or not all(isinstance(line, str) for line in script):
        raise fail("script", "script must be a list of strings")
    if device == "sim:script" and not script:
        raise fail("script", "a sim:script device needs its script (a list of strings)")
    interval = table.get("interval_ms", 100.0)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
            or not 1 <= interval <= 3_600_000:
        raise fail("interval_ms", "interval_ms must be a number of ms, 1 .. 3600000")
    return SerialRule(device, access, baudrate, header, tuple(script), float(interval))
