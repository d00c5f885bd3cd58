"""The bridge's topics and payloads, as pure functions (docs/mqtt.md).

Under ``<prefix>/<node>/``:

==========================  ====  =====================================================
topic                        dir   payload
==========================  ====  =====================================================
``status``                   out   ``online`` / ``offline`` (retained; the Last Will)
``<id>/set``                 in    ``ON``, ``OFF``, a level 0..1 (light), or JSON
                                   ``{"state": "ON", "level": 0.5, "time_ms": 2000,
                                   "lease_ms": 5000, "revert": "safe"}``
``<id>/set_on_ms``           in    milliseconds: ON for that long, timed on the Pi
``<id>/brightness/set``      in    0..brightness_scale (light; Home Assistant's slider)
``<id>/pulse``               in    ``PRESS``: a button's pulse of pulse_ms
``<id>/state``               out   ``ON`` / ``OFF``, as the Pi reports it (retained)
``<id>/brightness/state``    out   0..brightness_scale (light, retained)
``<id>/event``               out   an input's change: JSON with the Pi's timestamp
==========================  ====  =====================================================

Data from the network never chooses code: a topic is looked up in a fixed
table of leaves (:data:`COMMAND_LEAVES`), the pin among the configured ids,
and a payload is parsed into an :class:`Intent` by validators that refuse
(:exc:`BadPayload`) anything else.

>>> topics = Topics("remoteio", "shed")
>>> topics.split("remoteio/shed/pump/set")
('pump', 'set')
>>> parse_command("set", b'{"state": "ON", "lease_ms": 3000}', PinSettings(7))
Intent(kind='set', state=True, level=None, time_ms=0.0, lease_ms=3000.0, revert='safe')
>>> to_request(Intent("set", True), PinSettings(7, inverted=True), last_level=1.0)
('off', {})
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .settings import MAX_DURATION_MS, PinSettings
from ..errors import BadPayload  # noqa: F401 (defined in errors.py)

#: the largest payload looked at; anything bigger is refused unread
MAX_PAYLOAD = 512
ON, OFF = "ON", "OFF"
#: the command topics a pin listens on, by leaf: which entities accept each
COMMAND_LEAVES: Dict[str, Tuple[str, ...]] = {
    "set": ("switch", "light"),   # not a button: it pulses (an ON would stay on)
    "set_on_ms": ("switch", "light", "button"),
    "brightness/set": ("light",),
    "pulse": ("button",),
}
_WORDS = {"on": True, "off": False, "true": True, "false": False}
_JSON_KEYS = {"state", "level", "time_ms", "lease_ms", "revert"}


@dataclass(frozen=True)
class Topics:
    """Topic names of one node (one Pi)."""
    prefix: str
    node: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.node}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    def pin(self, pin_id: str, leaf: str) -> str:
        return f"{self.base}/{pin_id}/{leaf}"

    def subscriptions(self) -> List[str]:
        """What the bridge subscribes to: every command leaf of every pin."""
        return [f"{self.base}/+/{leaf}" for leaf in COMMAND_LEAVES]

    def split(self, topic: str) -> Optional[Tuple[str, str]]:
        """``(pin id, leaf)`` of a command topic of this node, else None."""
        start = self.base + "/"
        if not topic.startswith(start):
            return None
        pin_id, _, leaf = topic[len(start):].partition("/")
        if not pin_id or leaf not in COMMAND_LEAVES:
            return None
        return pin_id, leaf


@dataclass(frozen=True)
class Intent:
    """What a message asks of a pin, in the user's terms (ON is ON, even on
    an inverted pin). ``state`` True/False, or None with a ``level``."""
    kind: str
    state: Optional[bool] = None
    level: Optional[float] = None
    time_ms: float = 0.0
    lease_ms: float = 0.0
    revert: str = "safe"


def _text(payload: bytes) -> str:
    if len(payload) > MAX_PAYLOAD:
        raise BadPayload(f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayload("payload is not UTF-8 text") from None


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadPayload(f"{name} must be a number, not {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadPayload(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise BadPayload(f"{name} must be between {low:g} and {high:g}, not {value!r}")
    return float(value)


def _duration(name: str, value: Any, minimum: float = 0.0) -> float:
    value = _number(name, value, 0, MAX_DURATION_MS)
    if value < minimum or (minimum and value == 0):
        raise BadPayload(f"{name} must be at least {minimum:g} ms")
    return value


def parse_command(leaf: str, payload: bytes, pin: PinSettings) -> Intent:
    """The :class:`Intent` of a command message (raises :exc:`BadPayload`)."""
    if pin.entity not in COMMAND_LEAVES.get(leaf, ()):
        raise BadPayload(f"a {pin.entity} takes no {leaf!r} messages")
    text = _text(payload)
    if leaf == "set_on_ms":
        return Intent(leaf, True, time_ms=_duration("set_on_ms", text, minimum=1))
    if leaf == "brightness/set":
        brightness = _number("brightness", text, 0, pin.brightness_scale)
        return Intent(leaf, level=brightness / pin.brightness_scale)
    if leaf == "pulse":
        if text.upper() not in ("PRESS", ""):
            raise BadPayload(f"a pulse takes PRESS, not {text[:40]!r}")
        return Intent(leaf, True, time_ms=pin.pulse_ms)
    if text.startswith("{"):
        return _parse_json(leaf, text, pin)
    word = _WORDS.get(text.lower())
    if word is not None:
        return Intent(leaf, word)
    level = _number("level", text, 0, 1)
    return _level_intent(leaf, level, pin)


def _level_intent(leaf: str, level: float, pin: PinSettings, **extra: Any) -> Intent:
    if pin.entity == "light":
        return Intent(leaf, level=level, **extra)
    if level not in (0.0, 1.0):
        raise BadPayload(f"a {pin.entity} is ON or OFF (or 1/0), not a level {level:g}")
    return Intent(leaf, bool(level), **extra)


def _parse_json(leaf: str, text: str, pin: PinSettings) -> Intent:
    try:
        data = json.loads(text)
    except ValueError:
        raise BadPayload("payload is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadPayload("a JSON command is an object")
    unknown = set(data) - _JSON_KEYS
    if unknown:
        raise BadPayload(f"unknown key(s) {', '.join(sorted(map(str, unknown)))[:80]}")
    extra: Dict[str, Any] = {}
    if "time_ms" in data:
        extra["time_ms"] = _duration("time_ms", data["time_ms"])
    if "lease_ms" in data:
        extra["lease_ms"] = _duration("lease_ms", data["lease_ms"])
    if "revert" in data:
        if data["revert"] not in ("safe", "previous"):
            raise BadPayload("revert must be 'safe' or 'previous'")
        if not extra.get("lease_ms"):
            raise BadPayload("revert needs lease_ms")
        extra["revert"] = data["revert"]
    if ("state" in data) == ("level" in data):
        raise BadPayload("a JSON command has a state or a level (one of them)")
    if "level" in data:
        return _level_intent(leaf, _number("level", data["level"], 0, 1), pin, **extra)
    state = data["state"]
    word = _WORDS.get(state.lower()) if isinstance(state, str) else None
    if word is None:
        raise BadPayload("state must be ON or OFF")
    if extra.get("time_ms") and not word:
        raise BadPayload("time_ms is for ON: a timed task ends at the pin's safe value")
    return Intent(leaf, word, **extra)


def logical(pin: PinSettings, wanted: float) -> float:
    """The level the user means -> the level on the pin (and back)."""
    return 1.0 - wanted if pin.inverted else wanted


def to_request(intent: Intent, pin: PinSettings, last_level: float) -> Tuple[str, Dict[str, Any]]:
    """The remoteio request (op, fields) that carries out *intent*.
    *last_level* is the light's last brightness (0..1), for a bare ON."""
    if intent.level is not None:
        wanted = intent.level
    elif intent.state:
        wanted = last_level if pin.entity == "light" and last_level > 0 else 1.0
    else:
        wanted = 0.0
    level = logical(pin, wanted)
    fields: Dict[str, Any] = {}
    if intent.time_ms:
        fields["time_ms"] = intent.time_ms
    if intent.lease_ms:
        fields.update(lease_ms=intent.lease_ms, revert=intent.revert)
    if level >= 1.0:
        return "on", fields
    if level <= 0.0:
        return "off", fields
    return "value", dict(fields, level=round(level, 6))


def render_state(pin: PinSettings, value: Any) -> Dict[str, str]:
    """The retained messages of a pin the Pi reports at *value* (0/1 or a
    PWM level): ``{leaf: payload}``."""
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = 0.0
    if not math.isfinite(level):
        level = 0.0
    level = min(1.0, max(0.0, logical(pin, level)))
    if pin.entity == "light":
        brightness = round(level * pin.brightness_scale)
        return {"state": ON if brightness > 0 else OFF, "brightness/state": str(brightness)}
    return {"state": ON if level >= 0.5 else OFF}


def render_event(pin: PinSettings, value: Any, edge: str, ts_ns: int, seq: int,
                 missed: int) -> str:
    """An input's change, with the Pi's timestamp (its monotonic clock, ns)."""
    state = render_state(pin, value)["state"]
    return json.dumps({"state": state, "value": value, "edge": edge, "ts_ns": ts_ns,
                       "seq": seq, "missed": missed}, sort_keys=True)
