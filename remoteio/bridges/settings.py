"""The MQTT bridge's settings: the ``[mqtt]`` table of a configuration file.

::

    [mqtt]
    broker = "homeassistant.local"
    username = "remoteio"
    password_file = "/etc/remoteio/mqtt-password"
    node = "greenhouse"              # topics under remoteio/greenhouse/...

    [mqtt.pins.7]
    entity = "switch"
    name = "Pump"
    icon = "mdi:water-pump"
    on_broker_loss = "safe"          # the pin's safe value...
    safe_after_ms = 10000            # ...10 s after the bridge lost the broker

Pure: no paho, no sockets. :func:`parse_mqtt` is called by
:func:`remoteio.server.config.parse_config` with a ``fail(table, key, message)``
that turns a message into a :class:`~remoteio.server.config.ConfigError` with the
file and line.

>>> settings = parse_mqtt({"node": "shed", "pins": {"7": {"entity": "light"}}},
...                       lambda table, key, message: ValueError(message))
>>> settings.pins[7].entity, settings.pins[7].id, settings.broker_port
('light', 'pin7', 1883)
"""
from __future__ import annotations

import math
import re
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Optional

from ..pins import board_pin

ENTITIES = ("switch", "light", "binary_sensor", "button")
OUTPUTS = ("switch", "light", "button")
ON_BROKER_LOSS = ("hold", "safe")
PULLS = ("up", "down", "none")
#: Home Assistant's binary sensor device classes (BinarySensorDeviceClass)
BINARY_SENSOR_CLASSES = (
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
    "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
    "smoke", "sound", "tamper", "update", "vibration", "window")
#: a topic level, a node name, an id: what MQTT and Home Assistant both accept
SLUG = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ICON = re.compile(r"^[a-z0-9-]+:[a-z0-9-]+$")
MAX_DURATION_MS = 86_400_000

Fail = Callable[[str, Optional[str], str], Exception]


@dataclass(frozen=True)
class PinSettings:
    """What one pin is on MQTT and in Home Assistant."""
    board: int
    entity: str = "switch"            # switch, light (PWM), binary_sensor (input), button
    id: str = ""                      # its topic level: <prefix>/<node>/<id>/...
    name: str = ""                    # the entity's name in Home Assistant
    icon: Optional[str] = None        # "mdi:water-pump"
    inverted: bool = False            # active low: ON drives (or reads) 0
    on_broker_loss: str = "hold"      # "hold", or "safe": the safe value after safe_after_ms
    safe_after_ms: float = 5000.0
    device_class: Optional[str] = None  # binary_sensor (door, motion...); switch (outlet, switch)
    pull: str = "none"                # binary_sensor: "up", "down", "none"
    bounce_ms: float = 0.0            # binary_sensor: debounced on the Pi
    pulse_ms: float = 500.0           # button: how long a press drives the pin ON
    brightness_scale: int = 255       # light: Home Assistant's brightness range

    @property
    def is_output(self) -> bool:
        return self.entity in OUTPUTS


@dataclass
class MqttSettings:
    """The broker, the topics, and the pins the bridge puts on them."""
    broker: str = "localhost"
    port: int = 0                     # 0: 1883, or 8883 with TLS
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    password_file: Optional[str] = None
    tls: bool = False
    cafile: Optional[str] = None      # verify the broker with this CA (default: the system's)
    client_id: str = ""               # default remoteio-<node>
    prefix: str = "remoteio"
    node: str = ""                    # default: this machine's host name
    discovery: bool = True            # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"
    qos: int = 1
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    pins: Dict[int, PinSettings] = field(default_factory=dict)

    @property
    def broker_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    def completed(self, node: str = "") -> "MqttSettings":
        """These settings with a node name (*node*, else this machine's host
        name) and a client id, if they had none."""
        node = self.node or slug(node) or slug(socket.gethostname().split(".")[0]) or "pi"
        return replace(self, node=node, client_id=self.client_id or f"remoteio-{node}")

    def read_password(self) -> Optional[str]:
        """The password, from ``password`` or the first line of ``password_file``."""
        if self.password_file:
            with open(self.password_file, encoding="utf-8") as handle:
                return handle.readline().rstrip("\r\n")
        return self.password


def slug(text: str) -> str:
    """A topic-safe name: ``"Pi 5 (shed)"`` -> ``"pi-5-shed"``."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9_-]", "-", text.lower())).strip("-")[:64]


_TOP_KEYS: Dict[str, Any] = {
    "broker": str, "port": int, "username": str, "password": str, "password_file": str,
    "tls": bool, "cafile": str, "client_id": str, "prefix": str, "node": str,
    "discovery": bool, "discovery_prefix": str, "qos": int, "keepalive_s": int,
    "reconnect_min_s": (int, float), "reconnect_max_s": (int, float), "pins": dict,
}
_PIN_KEYS: Dict[str, Any] = {
    "entity": str, "id": str, "name": str, "icon": str, "inverted": bool,
    "on_broker_loss": str, "safe_after_ms": (int, float), "device_class": str, "pull": str,
    "bounce_ms": (int, float), "pulse_ms": (int, float), "brightness_scale": int,
}
_CHOICES = {"entity": ENTITIES, "on_broker_loss": ON_BROKER_LOSS, "pull": PULLS}
_KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "a table"}


def _typed(key: str, value: Any, known: Dict[str, Any], fail: Callable[[str], Exception]) -> Any:
    if key not in known:
        raise fail(f"unknown setting {key!r} (known: {', '.join(known)})")
    kind = known[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise fail(f"{key} must be {_KIND_NAMES.get(kind, 'a number')}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(f"{key} must be finite, not {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise fail(f"{key} must be one of {', '.join(_CHOICES[key])}, not {value!r}")
    return value


def parse_mqtt(table: Dict[str, Any], fail: Fail) -> MqttSettings:
    """Validate the ``[mqtt]`` table (and its ``[mqtt.pins.N]`` tables)."""
    values: Dict[str, Any] = {}
    for key, value in table.items():
        values[key] = _typed(key, value, _TOP_KEYS, lambda msg, k=key: fail("mqtt", k, msg))
    pins_table = values.pop("pins", {})

    def top(key: str, message: str) -> Exception:
        return fail("mqtt", key, message)
    if not 0 <= values.get("port", 0) <= 65535:
        raise top("port", f"port must be 0..65535, not {values['port']}")
    if values.get("qos", 1) not in (0, 1, 2):
        raise top("qos", "qos must be 0, 1 or 2")
    if not 5 <= values.get("keepalive_s", 30) <= 3600:
        raise top("keepalive_s", "keepalive_s must be 5..3600")
    low, high = values.get("reconnect_min_s", 1.0), values.get("reconnect_max_s", 60.0)
    if not 0 < low <= high <= 3600:
        raise top("reconnect_min_s", "need 0 < reconnect_min_s <= reconnect_max_s <= 3600")
    if values.get("password") is not None and values.get("password_file") is not None:
        raise top("password", "give password or password_file, not both")
    for key in ("prefix", "discovery_prefix"):
        if key in values and not all(SLUG.match(level) for level in values[key].split("/")):
            raise top(key, f"{key} must be topic levels of letters, digits, _ and -, "
                           f"not {values[key]!r}")
    for key in ("node", "client_id"):
        if key in values and not SLUG.match(values[key]):
            raise top(key, f"{key} must be 1-64 letters, digits, _ or -, not {values[key]!r}")
    settings = MqttSettings(**values)
    seen: Dict[str, int] = {}
    for spec, pin_table in pins_table.items():
        name = f"mqtt.pins.{spec}"
        if not isinstance(pin_table, dict):
            raise fail("mqtt.pins", str(spec), f"{spec} is not a pin table ([mqtt.pins.7])")
        try:
            board = board_pin(spec)
        except ValueError as exc:
            raise fail(name, None, str(exc)) from None
        if board in settings.pins:
            raise fail(name, None, f"BOARD{board} is configured twice")
        pin = parse_pin(board, pin_table, lambda key, msg, n=name: fail(n, key, msg))
        if pin.id in seen:
            raise fail(name, "id", f"id {pin.id!r} is also BOARD{seen[pin.id]}'s")
        seen[pin.id] = board
        settings.pins[board] = pin
    return settings


def parse_pin(board: int, table: Dict[str, Any],
              fail: Callable[[Optional[str], str], Exception]) -> PinSettings:
    """One ``[mqtt.pins.N]`` table."""
    values = {key: _typed(key, value, _PIN_KEYS, lambda msg, k=key: fail(k, msg))
              for key, value in table.items()}
    pin = replace(PinSettings(board), **values)
    if not pin.id:
        pin = replace(pin, id=f"pin{board}")
    if not SLUG.match(pin.id):
        raise fail("id", f"id must be 1-64 letters, digits, _ or -, not {pin.id!r}")
    if not pin.name:
        pin = replace(pin, name=f"Pin {board}")
    if not 0 < len(pin.name) <= 100:
        raise fail("name", "name must be 1-100 characters")
    if pin.icon is not None and not ICON.match(pin.icon):
        raise fail("icon", f"icon must look like 'mdi:water-pump', not {pin.icon!r}")
    if not 0 < pin.safe_after_ms <= MAX_DURATION_MS:
        raise fail("safe_after_ms", f"safe_after_ms must be in (0, {MAX_DURATION_MS}]")
    if not 0 < pin.pulse_ms <= MAX_DURATION_MS:
        raise fail("pulse_ms", f"pulse_ms must be in (0, {MAX_DURATION_MS}]")
    if not 0 <= pin.bounce_ms <= 60_000:
        raise fail("bounce_ms", "bounce_ms must be 0..60000")
    if not 1 <= pin.brightness_scale <= 65535:
        raise fail("brightness_scale", "brightness_scale must be 1..65535")
    if pin.device_class is not None:
        allowed = {"binary_sensor": BINARY_SENSOR_CLASSES,
                   "switch": ("outlet", "switch")}.get(pin.entity, ())
        if pin.device_class not in allowed:
            raise fail("device_class", f"device_class {pin.device_class!r} is not one of a "
                                       f"{pin.entity}'s: {', '.join(allowed) or 'none'}")
    only = {"pull": "binary_sensor", "bounce_ms": "binary_sensor", "pulse_ms": "button",
            "brightness_scale": "light"}
    for key, entity in only.items():
        if key in values and pin.entity != entity:
            raise fail(key, f"{key} is for a {entity}, not a {pin.entity}")
    if pin.entity == "binary_sensor" and ("on_broker_loss" in values or "safe_after_ms" in values):
        raise fail("on_broker_loss", "an input has nothing to make safe")
    return pin
