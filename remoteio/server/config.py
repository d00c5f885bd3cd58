"""The server's configuration: a TOML file, validated, mistakes located.

::

    [server]
    host = "0.0.0.0"
    port = 8509
    mode = "wait"              # "wait" or "nowait"
    backend = "auto"           # "auto", "gpiod", "lgpio", "rpigpio", "sim"
    token_file = "/etc/remoteio/token"
    on_disconnect = "finish"   # "finish" or "safe"
    realtime_priority = 0      # 1..99: pin workers run SCHED_FIFO (docs/performance.md)

    [pins]
    default_access = "write"   # "none", "read" or "write"

    [pins.7]
    access = "write"
    max_hold_ms = 60000        # no task or lease may keep it on longer
    lease_only = true          # every write must carry a lease
    safe_value = 0             # what "safe" means for this pin (0 or 1)
    on_disconnect = "safe"

A mistake is reported with the file and line it is on:
``remoteio.toml:7: [server] port must be an integer 0..65535, not "80a"``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Optional

from ..pins import pin_key as parse_pin
from ..settings import BACKEND_NAMES, DEFAULT_PORT, DISCONNECT_POLICIES, MODES
from ..tokens import check_token
from ..errors import ConfigError  # noqa: F401 (defined in errors.py)

ACCESS = ("none", "read", "write")


@dataclass(frozen=True)
class PinRule:
    """What a pin may be used for (see docs/security.md, docs/reliability.md)."""
    access: str = "write"
    max_hold_ms: Optional[float] = None
    lease_only: bool = False
    safe_value: int = 0
    on_disconnect: Optional[str] = None   # None: the server's default


@dataclass
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    mode: str = "wait"
    backend: str = "auto"
    chip: Optional[int] = None
    revision: Optional[str] = None
    token: Optional[str] = None
    token_file: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    tls_client_ca: Optional[str] = None   # client certificates signed by this CA (mutual TLS)
    on_disconnect: str = "finish"
    max_connections: int = 256
    heartbeat_timeout_s: float = 120.0    # for clients that announce no heartbeat (0: never)
    realtime_priority: int = 0            # SCHED_FIFO priority of the pin workers (0: normal)
    default_access: str = "write"
    pins: Dict[int, PinRule] = field(default_factory=dict)
    # -- bridges (docs/mqtt.md, docs/discovery.md) --
    advertise: bool = True                # _remoteio._tcp on the LAN (not on loopback)
    mqtt: Optional[Any] = None            # [mqtt]: a bridges.settings.MqttSettings
    # -- buses (docs/buses.md) --
    bus_default_access: str = "write"
    buses: Dict[Any, Any] = field(default_factory=dict)   # ("i2c", 1) -> busconfig.BusRule
    # -- I/O expanders (docs/expanders.md) --
    expanders: Dict[str, Any] = field(default_factory=dict)  # "mcp0" -> ExpanderSpec
    declare_expanders: bool = False       # may clients declare expanders at run time?

    def rule(self, board: int) -> PinRule:
        rule = self.pins.get(board)
        if rule is not None:
            return rule
        return PinRule(access=self.default_access) if self.default_access != "write" else _OPEN


_OPEN = PinRule()

_SERVER_KEYS = {
    "host": str, "port": int, "mode": str, "backend": str, "chip": int, "revision": str,
    "token": str, "token_file": str, "tls_cert": str, "tls_key": str, "tls_client_ca": str,
    "on_disconnect": str,
    "max_connections": int, "heartbeat_timeout_s": (int, float), "realtime_priority": int,
}
_PIN_KEYS = {"access": str, "max_hold_ms": (int, float), "lease_only": bool,
             "safe_value": int, "on_disconnect": str}
_CHOICES = {"mode": MODES, "backend": BACKEND_NAMES,
            "on_disconnect": DISCONNECT_POLICIES, "access": ACCESS, "default_access": ACCESS}


def load_config(path: str) -> ServerConfig:
    """Read and validate a configuration file."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:   # say where, as for any other mistake in the file
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: the file is not UTF-8 text (byte {data[exc.start]:#04x}); "
                          "TOML files are UTF-8") from None
    return parse_config(text, str(path))


def parse_config(text: str, name: str = "<config>") -> ServerConfig:
    try:  # here: a server started without a configuration file never loads it
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"{name}:{line.group(1) if line else '?'}: {exc}") from None

    def fail(table: str, key: Optional[str], message: str) -> ConfigError:
        return ConfigError(f"{name}:{_line_of(text, table, key)}: [{table}] {message}")

    config = ServerConfig()
    for table in data:
        if not isinstance(data[table], dict):  # a key before any [section]: say so, with its line
            raise ConfigError(f"{name}:{_line_in_table(text, '', table)}: {table} is outside any "
                              "section (settings go under [server], [pins], [mqtt], [buses] "
                              "or [expanders])")
        if table not in ("server", "pins", "mqtt", "buses", "expanders"):
            raise fail(table, None, "is not a section remoteio knows ([server], [pins], "
                                    "[mqtt], [buses], [expanders])")
    values = {}
    for key, value in data.get("server", {}).items():
        _check(key, value, _SERVER_KEYS, lambda msg: fail("server", key, msg))
        values[key] = value
    config = replace(config, **values)
    if not config.host.strip():  # a blank host would bind every address: never by accident
        raise fail("server", "host", 'host is blank: give an address or a name ("0.0.0.0" for '
                   'every IPv4 address, "::" for every address, "127.0.0.1" for this machine only)')
    if config.port < 0 or config.port > 65535:
        raise fail("server", "port", f"port must be 0..65535, not {config.port}")
    if not 0 <= config.realtime_priority <= 99:
        raise fail("server", "realtime_priority",
                   f"realtime_priority must be 0 (off) or 1..99, not {config.realtime_priority}")
    if config.token is not None and config.token_file is not None:
        raise fail("server", "token", "give token or token_file, not both")
    if config.token is not None:
        try:
            config.token = check_token(config.token)
        except ValueError as exc:
            raise fail("server", "token", str(exc)) from None
    if config.max_connections < 1:
        raise fail("server", "max_connections",
                   f"max_connections must be at least 1, not {config.max_connections}")
    if not 0 <= config.heartbeat_timeout_s < math.inf:
        raise fail("server", "heartbeat_timeout_s", "heartbeat_timeout_s must be a number of "
                   f"seconds, 0 or more, not {config.heartbeat_timeout_s}")
    if config.chip is not None and config.chip < 0:
        raise fail("server", "chip", f"chip must be 0 or more, not {config.chip}")
    pins = data.get("pins", {})
    tables: Dict[int, str] = {}  # board pin -> the table that set its rule
    for key, value in pins.items():
        if not isinstance(value, dict):
            if key != "default_access":
                raise fail("pins", key, f"{key} is not a pin table ([pins.7]) or default_access")
            if value not in ACCESS:
                raise fail("pins", key, f"default_access must be one of {', '.join(ACCESS)}")
            config.default_access = value
            continue
        table = f"pins.{key}"
        try:
            board = parse_pin(key)
        except ValueError as exc:
            raise fail(table, None, str(exc)) from None
        if board in tables:  # "7", "b7" and "GPIO4" are one pin: one rule, never a silent swap
            raise fail(table, None, f"[{tables[board]}] and [{table}] are the same pin "
                                    f"(board {board}): give its rule once")
        tables[board] = table
        rule = {}
        for pin_key, pin_value in value.items():
            _check(pin_key, pin_value, _PIN_KEYS, lambda msg: fail(table, pin_key, msg))
            rule[pin_key] = pin_value
        if rule.get("safe_value", 0) not in (0, 1):
            raise fail(table, "safe_value", "safe_value must be 0 or 1")
        if not 0 < rule.get("max_hold_ms", 1) < math.inf:
            raise fail(table, "max_hold_ms", "max_hold_ms must be a number of milliseconds "
                       f"more than 0, not {rule['max_hold_ms']}")
        config.pins[board] = PinRule(**rule)
    _parse_bridges(config, data, fail)
    return config


# ---- bridges: [server] advertise, and the [mqtt] section (docs/mqtt.md) ------------------
_SERVER_KEYS["advertise"] = bool
_SERVER_KEYS["declare_expanders"] = bool   # docs/expanders.md


def _parse_bridges(config: ServerConfig, data: Dict[str, Any], fail) -> None:
    if "mqtt" in data:
        from ..bridges.settings import parse_mqtt
        if not isinstance(data["mqtt"], dict):
            raise fail("mqtt", None, "mqtt must be a table ([mqtt])")
        config.mqtt = parse_mqtt(data["mqtt"], fail)
    if "buses" in data:
        from .busconfig import parse_buses
        config.bus_default_access, config.buses = parse_buses(data["buses"], fail)
    if "expanders" in data:
        from .expanderconfig import parse_expanders
        config.expanders = parse_expanders(data["expanders"], fail)


def _check(key: str, value: Any, known: Dict[str, Any], fail) -> None:
    if key not in known:
        raise fail(f"unknown setting {key!r} (known: {', '.join(known)})")
    kind = known[key]
    if isinstance(value, bool) and kind is not bool:
        raise fail(f"{key} must be {_kind_name(kind)}, not {value!r}")
    if not isinstance(value, kind):
        raise fail(f"{key} must be {_kind_name(kind)}, not {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise fail(f"{key} must be one of {', '.join(_CHOICES[key])}, not {value!r}")


def _kind_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false"}
    return names.get(kind, "a number")


def _line_of(text: str, table: str, key: Optional[str]) -> str:
    """The line of *key* in [*table*] (or of the table's header; or, for an
    inline table ``7 = { ... }`` in [pins], of its line)."""
    found = _line_in_table(text, table, key)
    if found == "?" and "." in table:
        parent, _, name = table.rpartition(".")
        found = _line_in_table(text, parent, name)
    return found


def _line_in_table(text: str, table: str, key: Optional[str]) -> str:
    """The line of *key* in [*table*] ("": before any table), or of the table's header."""
    in_table = table == ""
    header_line = "?"
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            name = stripped.strip("[] ").replace('"', "").replace("'", "")
            in_table = name == table
            if in_table:
                header_line = str(number)
            continue
        if in_table and key and re.match(rf"\s*['\"]?{re.escape(key)}['\"]?\s*=", line):
            return str(number)
    return header_line
