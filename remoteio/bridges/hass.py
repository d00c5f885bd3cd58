"""Home Assistant MQTT discovery payloads, as pure functions (docs/mqtt.md).

Each configured pin becomes one entity, published retained on
``<discovery_prefix>/<component>/remoteio_<node>/<id>/config``; every entity
of a Pi names the same ``device`` (its identifiers, the board's model and
revision, the server's version), so Home Assistant groups them under one
device per Pi. Availability is the bridge's ``<prefix>/<node>/status``.

=================  ===========================================================
entity             what Home Assistant gets
=================  ===========================================================
``switch``         on/off; the state is the level the Pi reports
``light``          on/off and a brightness slider (PWM level on the Pi)
``binary_sensor``  an input's level, with its change event as attributes
``button``         a press drives the pin ON for ``pulse_ms`` (timed on the Pi)
=================  ===========================================================

>>> from remoteio.bridges.settings import MqttSettings, PinSettings
>>> settings = MqttSettings(node="shed", pins={7: PinSettings(7, id="pump", name="Pump")})
>>> topic, config = entity_config(settings, settings.pins[7], {"model": "5B"}, "3.0.0")
>>> topic, config["command_topic"], config["device"]["identifiers"]
('homeassistant/switch/remoteio_shed/pump/config', 'remoteio/shed/pump/set', ['remoteio_shed'])
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from .._version import __version__
from .settings import MqttSettings, PinSettings
from .topics import OFF, ON, Topics

PAYLOAD_ONLINE, PAYLOAD_OFFLINE = "online", "offline"
PRESS = "PRESS"


def node_id(settings: MqttSettings) -> str:
    return f"remoteio_{settings.node}"


def device(settings: MqttSettings, board: Dict[str, Any], server_version: str) -> Dict[str, Any]:
    """The Home Assistant device of one Pi (shared by all its entities)."""
    model = str(board.get("model") or "unknown")
    simulated = board.get("backend") == "sim"
    info: Dict[str, Any] = {
        "identifiers": [node_id(settings)],
        "name": settings.node,
        "manufacturer": "Raspberry Pi Ltd" if not simulated else "remoteio",
        "model": f"Raspberry Pi {model}" + (" (simulated board)" if simulated else ""),
        "sw_version": f"remoteio {server_version}" if server_version else "remoteio",
    }
    if board.get("revision"):
        info["hw_version"] = str(board["revision"])
    return info


def discovery_topic(settings: MqttSettings, pin: PinSettings) -> str:
    return f"{settings.discovery_prefix}/{pin.entity}/{node_id(settings)}/{pin.id}/config"


def entity_config(settings: MqttSettings, pin: PinSettings, board: Dict[str, Any],
                  server_version: str) -> Tuple[str, Dict[str, Any]]:
    """``(config topic, payload)`` of one pin's entity."""
    topics = Topics(settings.prefix, settings.node)
    config: Dict[str, Any] = {
        "name": pin.name,
        "unique_id": f"{node_id(settings)}_{pin.id}",
        "device": device(settings, board, server_version),
        "origin": {"name": "remoteio", "sw_version": __version__},
        "availability_topic": topics.status,
        "payload_available": PAYLOAD_ONLINE,
        "payload_not_available": PAYLOAD_OFFLINE,
        "qos": settings.qos,
    }
    if pin.icon:
        config["icon"] = pin.icon
    if pin.device_class:
        config["device_class"] = pin.device_class
    state = topics.pin(pin.id, "state")
    if pin.entity == "switch":
        config.update(command_topic=topics.pin(pin.id, "set"), state_topic=state,
                      payload_on=ON, payload_off=OFF, optimistic=False)
    elif pin.entity == "light":
        config.update(command_topic=topics.pin(pin.id, "set"), state_topic=state,
                      payload_on=ON, payload_off=OFF, optimistic=False,
                      brightness_command_topic=topics.pin(pin.id, "brightness/set"),
                      brightness_state_topic=topics.pin(pin.id, "brightness/state"),
                      brightness_scale=pin.brightness_scale, on_command_type="brightness")
    elif pin.entity == "binary_sensor":
        config.update(state_topic=state, payload_on=ON, payload_off=OFF,
                      json_attributes_topic=topics.pin(pin.id, "event"))
    elif pin.entity == "button":
        config.update(command_topic=topics.pin(pin.id, "pulse"), payload_press=PRESS)
    else:  # settings.py allows no other entity
        raise ValueError(f"no Home Assistant entity for {pin.entity!r}")
    return discovery_topic(settings, pin), config


def discovery_messages(settings: MqttSettings, board: Dict[str, Any],
                       server_version: str) -> List[Tuple[str, str]]:
    """Every pin's ``(config topic, JSON payload)``, in board order."""
    messages = []
    for board_number in sorted(settings.pins):
        topic, config = entity_config(settings, settings.pins[board_number], board,
                                      server_version)
        messages.append((topic, json.dumps(config, sort_keys=True)))
    return messages
