"""The serial ports' gate: which port a request names, whether its access lets it through, who listens.

A request names a port by its configured name or by its configured device
path; anything else is unknown (a client never opens a file of its choice).

>>> from remoteio.server.serialconfig import SerialRule
>>> gate = SerialGate("write", {("serial", "serial0"): SerialRule("/dev/ttyAMA0", "read")})
>>> gate.resolve("/dev/ttyAMA0"), gate.pins(("serial", "serial0"))
(('serial', 'serial0'), (8, 10))
>>> gate.check(("serial", "serial0"), "serial_write", {})
Traceback (most recent call last):
...
remoteio.errors.Forbidden: serial port serial0 is read-only: serial_write is refused
>>> gate.resolve("/dev/ttyUSB0")
Traceback (most recent call last):
...
remoteio.errors.BadArgument: no serial port '/dev/ttyUSB0' on this server (its ports: serial0)
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Dict, List, Set, Tuple

from ..errors import BadArgument, Forbidden
from ..protocol.serial import READ_OPS, UART_PINS
from .serialconfig import SIM_DEFAULT, SerialRule

Key = Tuple[str, str]


class SerialGate:
    """*rules*: the ``[buses]`` rules by key (only ``("serial", name)`` ones are
    read); *sim*: the simulated board, which has ``serial0`` (an echo on the
    header's UART) when the configuration declares no port."""

    def __init__(self, default_access: str, rules: Dict[Any, Any], sim: bool = False):
        self.default_access = default_access
        self.ports: Dict[str, SerialRule] = {
            key[1]: rule for key, rule in rules.items() if key[0] == "serial"}
        if sim and not self.ports:
            self.ports[SIM_DEFAULT] = SerialRule("sim:echo", header_pins=True)
        self._devices = {rule.device: name for name, rule in self.ports.items()}
        self._users: Dict[str, Set[int]] = defaultdict(set)   # port -> connections receiving

    def resolve(self, port: str) -> Key:
        """The key of the port a request names (its name or its device's path)."""
        name = port if port in self.ports else self._devices.get(port)
        if name is None:
            have = ", ".join(sorted(self.ports)) or "none"
            raise BadArgument(f"no serial port {port!r} on this server (its ports: {have})")
        return ("serial", name)

    def check(self, key: Key, op: str, args: Dict[str, Any]) -> None:
        """Raise Forbidden unless the port's access lets *op* through."""
        name = key[1]
        access = self.ports[name].access or self.default_access
        if access == "none":
            raise Forbidden(f"serial port {name} is not served (access none)")
        if access == "read" and (op not in READ_OPS or args.get("output")):
            raise Forbidden(f"serial port {name} is read-only: {op} is refused")

    def pins(self, key: Key) -> Tuple[int, ...]:
        """The header pins the port's worker holds while it runs."""
        return UART_PINS if self.ports[key[1]].holds_header() else ()

    def settings(self, key: Key) -> Dict[str, Any]:
        """What the port's worker is told when it starts (plain data)."""
        rule = self.ports[key[1]]
        return {"name": key[1], "device": rule.device, "baudrate": rule.baudrate,
                "script": list(rule.script), "interval_ms": rule.interval_ms}

    # ---- who receives a port's data (the router tells its worker too) -----------------------
    def opened(self, conn: int, key: Key, on: bool) -> None:
        if on:
            self._users[key[1]].add(conn)
        else:
            self._users[key[1]].discard(conn)

    def users(self, key: Key) -> Tuple[int, ...]:
        return tuple(sorted(self._users.get(key[1], ())))

    def closed(self, conn: int) -> List[Key]:
        """*conn* is gone: the ports it received from."""
        keys = []
        for name, users in self._users.items():
            if conn in users:
                users.discard(conn)
                keys.append(("serial", name))
        return keys
