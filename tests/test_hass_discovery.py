"""Home Assistant MQTT discovery payloads, checked against Home Assistant's
schema for each entity type (remoteio/bridges/hass.py).

The schema below is Home Assistant's own, written out from its MQTT
integration (homeassistant/components/mqtt: schemas.py, entity.py for the
keys every entity takes, switch.py, light/schema_basic.py,
binary_sensor.py, button.py): which keys are required, which are known,
and the type of each. Home Assistant drops keys it does not know without a
word, so an unknown key here is a typo that would silently do nothing.
"""
from __future__ import annotations

import json
import re

import pytest

from remoteio.bridges.hass import discovery_messages, entity_config
from remoteio.bridges.settings import BINARY_SENSOR_CLASSES, MqttSettings, PinSettings

STR, INT, BOOL = str, int, bool
PUBLISH_TOPIC, SUBSCRIBE_TOPIC, ICON, QOS = "publish topic", "subscribe topic", "icon", "qos"

COMMON = {  # every MQTT entity: availability, device, naming
    "availability_topic": SUBSCRIBE_TOPIC, "availability_mode": STR, "availability_template": STR,
    "payload_available": STR, "payload_not_available": STR, "device": dict,
    "enabled_by_default": BOOL, "entity_category": STR, "icon": ICON,
    "json_attributes_topic": SUBSCRIBE_TOPIC, "json_attributes_template": STR,
    "unique_id": STR, "name": STR, "qos": QOS, "encoding": STR, "origin": dict,
    "default_entity_id": STR, "object_id": STR,
}
SCHEMAS = {
    "switch": ({"command_topic"}, {
        "command_topic": PUBLISH_TOPIC, "state_topic": SUBSCRIBE_TOPIC, "payload_on": STR,
        "payload_off": STR, "state_on": STR, "state_off": STR, "optimistic": BOOL,
        "retain": BOOL, "value_template": STR, "command_template": STR, "device_class": STR}),
    "light": ({"command_topic"}, {
        "command_topic": PUBLISH_TOPIC, "state_topic": SUBSCRIBE_TOPIC, "payload_on": STR,
        "payload_off": STR, "optimistic": BOOL, "retain": BOOL, "state_value_template": STR,
        "brightness_command_topic": PUBLISH_TOPIC, "brightness_command_template": STR,
        "brightness_state_topic": SUBSCRIBE_TOPIC, "brightness_scale": INT,
        "brightness_value_template": STR, "on_command_type": STR, "schema": STR}),
    "binary_sensor": ({"state_topic"}, {
        "state_topic": SUBSCRIBE_TOPIC, "payload_on": STR, "payload_off": STR,
        "device_class": STR, "expire_after": INT, "force_update": BOOL, "off_delay": INT,
        "value_template": STR}),
    "button": ({"command_topic"}, {
        "command_topic": PUBLISH_TOPIC, "command_template": STR, "payload_press": STR,
        "device_class": STR, "retain": BOOL}),
}
CHOICES = {
    ("switch", "device_class"): ("outlet", "switch"),
    ("button", "device_class"): ("identify", "restart", "update"),
    ("binary_sensor", "device_class"): BINARY_SENSOR_CLASSES,
    ("light", "on_command_type"): ("first", "last", "brightness"),
    ("light", "schema"): ("basic", "json", "template"),
}
DEVICE_KEYS = {"identifiers": list, "connections": list, "manufacturer": STR, "model": STR,
               "name": STR, "hw_version": STR, "serial_number": STR, "sw_version": STR,
               "via_device": STR, "suggested_area": STR, "configuration_url": STR}
ORIGIN_KEYS = {"name": STR, "sw_version": STR, "support_url": STR}
DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>[A-Za-z0-9_/-]+)/(?P<component>[a-z_]+)/(?P<node>[a-zA-Z0-9_-]+)/"
    r"(?P<object>[a-zA-Z0-9_-]+)/config$")

BOARD = {"model": "5B", "revision": "d04170", "soc": "BCM2712", "backend": "lgpio",
         "description": "Raspberry Pi 5B rev 1.0"}


def valid_topic(topic, subscribe: bool) -> bool:
    if not isinstance(topic, str) or not topic or "\0" in topic or len(topic.encode()) > 65535:
        return False
    return subscribe or ("+" not in topic and "#" not in topic)


def check_against_schema(component: str, config: dict) -> None:
    """Home Assistant's discovery schema of *component*, as assertions."""
    required, own = SCHEMAS[component]
    known = {**COMMON, **own}
    assert required <= set(config), f"missing {required - set(config)}"
    assert not set(config) - set(known), f"keys Home Assistant does not know: {set(config) - set(known)}"
    for key, value in config.items():
        kind = known[key]
        if kind in (PUBLISH_TOPIC, SUBSCRIBE_TOPIC):
            assert valid_topic(value, kind == SUBSCRIBE_TOPIC), (key, value)
        elif kind == ICON:
            assert re.match(r"^[a-z0-9-]+:[a-z0-9-]+$", value), value
        elif kind == QOS:
            assert value in (0, 1, 2)
        else:
            assert isinstance(value, kind) and not (kind is INT and isinstance(value, bool)), key
        if (component, key) in CHOICES:
            assert value in CHOICES[(component, key)], (key, value)
    device = config["device"]
    assert device.get("identifiers") or device.get("connections")
    assert all(isinstance(i, str) for i in device.get("identifiers", []))
    for key, value in device.items():
        assert isinstance(value, DEVICE_KEYS[key]), key
    assert set(config["origin"]) <= set(ORIGIN_KEYS) and isinstance(config["origin"]["name"], str)
    if component == "light":
        assert config["brightness_scale"] >= 1


def settings_with(*pins: PinSettings, node: str = "greenhouse") -> MqttSettings:
    return MqttSettings(node=node, pins={pin.board: pin for pin in pins})


EXAMPLES = [
    PinSettings(7, entity="switch", id="pump", name="Pump", icon="mdi:water-pump"),
    PinSettings(8, entity="switch", id="socket", name="Socket", device_class="outlet", inverted=True),
    PinSettings(12, entity="light", id="lamp", name="Lamp", brightness_scale=100),
    PinSettings(11, entity="binary_sensor", id="door", name="Door", device_class="door", pull="up"),
    PinSettings(13, entity="binary_sensor", id="motion", name="Motion", device_class="motion"),
    PinSettings(15, entity="button", id="bell", name="Bell", pulse_ms=300, icon="mdi:bell"),
]


@pytest.mark.parametrize("pin", EXAMPLES, ids=lambda pin: f"{pin.entity}-{pin.id}")
def test_each_entity_type_matches_home_assistants_discovery_schema(pin):
    settings = settings_with(pin)
    topic, config = entity_config(settings, pin, BOARD, "3.0.0")
    check_against_schema(pin.entity, config)
    match = DISCOVERY_TOPIC.match(topic)
    assert match and match["prefix"] == "homeassistant" and match["component"] == pin.entity
    assert (match["node"], match["object"]) == ("remoteio_greenhouse", pin.id)
    json.dumps(config)  # it is JSON as it stands


def test_every_entity_of_a_pi_is_grouped_under_one_device_with_the_boards_model_and_revision():
    settings = settings_with(*EXAMPLES)
    messages = discovery_messages(settings, BOARD, "3.0.0")
    assert len(messages) == len(EXAMPLES)
    devices = [json.loads(payload)["device"] for _, payload in messages]
    assert all(device == devices[0] for device in devices)
    assert devices[0]["model"] == "Raspberry Pi 5B" and devices[0]["hw_version"] == "d04170"
    assert devices[0]["manufacturer"] == "Raspberry Pi Ltd"
    assert devices[0]["sw_version"] == "remoteio 3.0.0"
    unique = [json.loads(payload)["unique_id"] for _, payload in messages]
    assert len(set(unique)) == len(unique)


def test_two_pis_are_two_devices_and_their_unique_ids_never_collide():
    pin = PinSettings(7, id="pump", name="Pump")
    one = json.loads(discovery_messages(settings_with(pin, node="pi-a"), BOARD, "3.0.0")[0][1])
    two = json.loads(discovery_messages(settings_with(pin, node="pi-b"), BOARD, "3.0.0")[0][1])
    assert one["device"]["identifiers"] != two["device"]["identifiers"]
    assert one["unique_id"] != two["unique_id"]
    assert one["command_topic"] == "remoteio/pi-a/pump/set" != two["command_topic"]


def test_a_simulated_board_says_so_in_the_device_model():
    sim = dict(BOARD, backend="sim")
    config = entity_config(settings_with(EXAMPLES[0]), EXAMPLES[0], sim, "3.0.0")[1]
    assert "simulated" in config["device"]["model"]


def test_availability_is_the_bridges_status_topic_with_online_and_offline():
    config = entity_config(settings_with(EXAMPLES[0]), EXAMPLES[0], BOARD, "3.0.0")[1]
    assert config["availability_topic"] == "remoteio/greenhouse/status"
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")


def test_the_light_uses_its_own_brightness_topics_and_sends_brightness_alone_on_turn_on():
    pin = EXAMPLES[2]
    config = entity_config(settings_with(pin), pin, BOARD, "3.0.0")[1]
    assert config["brightness_command_topic"] == "remoteio/greenhouse/lamp/brightness/set"
    assert config["brightness_state_topic"] == "remoteio/greenhouse/lamp/brightness/state"
    assert config["brightness_scale"] == 100 and config["on_command_type"] == "brightness"


def test_a_binary_sensor_shows_its_change_events_as_attributes():
    pin = EXAMPLES[3]
    config = entity_config(settings_with(pin), pin, BOARD, "3.0.0")[1]
    assert config["json_attributes_topic"] == "remoteio/greenhouse/door/event"
    assert config["device_class"] == "door" and "command_topic" not in config


def test_a_button_presses_on_its_pulse_topic():
    pin = EXAMPLES[5]
    config = entity_config(settings_with(pin), pin, BOARD, "3.0.0")[1]
    assert config["command_topic"] == "remoteio/greenhouse/bell/pulse"
    assert config["payload_press"] == "PRESS"
