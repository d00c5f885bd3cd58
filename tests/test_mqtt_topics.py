"""The MQTT bridge's pure parts: topics, payload validation, what each
message asks of the Pi, what the Pi's levels become, and the [mqtt]
configuration (remoteio/bridges/topics.py, settings.py)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from remoteio.bridges.settings import PinSettings
from remoteio.bridges.topics import (MAX_PAYLOAD, BadPayload, Intent, Topics, parse_command,
                                     render_event, render_state, to_request)
from remoteio.server.config import ConfigError, parse_config

SWITCH = PinSettings(7, id="pump")
INVERTED = PinSettings(8, id="relay", inverted=True)
LIGHT = PinSettings(12, entity="light", id="lamp", brightness_scale=100)
SENSOR = PinSettings(11, entity="binary_sensor", id="door")
BUTTON = PinSettings(15, entity="button", id="bell", pulse_ms=300)


def request(pin, leaf, payload, last_level=1.0):
    return to_request(parse_command(leaf, payload, pin), pin, last_level)


# ---- topics --------------------------------------------------------------------------
def test_command_topics_split_into_pin_and_leaf_and_nothing_else_passes():
    topics = Topics("remoteio", "shed")
    assert topics.split("remoteio/shed/pump/set") == ("pump", "set")
    assert topics.split("remoteio/shed/lamp/brightness/set") == ("lamp", "brightness/set")
    for other in ("remoteio/shed/pump/state", "remoteio/other/pump/set", "remoteio/shed//set",
                  "remoteio/shed/pump/set/extra", "remoteio/shed/pump/__class__", "remoteio/shed"):
        assert topics.split(other) is None, other
    assert all(topic.startswith("remoteio/shed/+/") for topic in topics.subscriptions())


# ---- what each message asks --------------------------------------------------------------
@pytest.mark.parametrize("payload,expected", [
    (b"ON", ("on", {})), (b"off", ("off", {})), (b"1", ("on", {})), (b"0", ("off", {})),
    (b"true", ("on", {})), (b" OFF\n", ("off", {})),
])
def test_a_switch_takes_on_and_off_in_the_usual_spellings(payload, expected):
    assert request(SWITCH, "set", payload) == expected


def test_set_on_ms_is_a_task_timed_on_the_pi():
    assert request(SWITCH, "set_on_ms", b"2500") == ("on", {"time_ms": 2500.0})


def test_the_lease_form_carries_lease_ms_and_revert_to_the_pi():
    assert request(SWITCH, "set", b'{"state": "ON", "lease_ms": 3000, "revert": "previous"}') == (
        "on", {"lease_ms": 3000.0, "revert": "previous"})
    assert request(SWITCH, "set", b'{"state": "ON", "time_ms": 500, "lease_ms": 3000}') == (
        "on", {"time_ms": 500.0, "lease_ms": 3000.0, "revert": "safe"})


def test_an_inverted_pin_drives_zero_for_on_and_its_timed_on_is_a_timed_off():
    assert request(INVERTED, "set", b"ON") == ("off", {})
    assert request(INVERTED, "set", b"OFF") == ("on", {})
    assert request(INVERTED, "set_on_ms", b"100") == ("off", {"time_ms": 100.0})


def test_a_light_takes_a_level_a_brightness_and_a_bare_on_at_its_last_level():
    assert request(LIGHT, "set", b"0.25") == ("value", {"level": 0.25})
    assert request(LIGHT, "brightness/set", b"40") == ("value", {"level": 0.4})
    assert request(LIGHT, "brightness/set", b"100") == ("on", {})
    assert request(LIGHT, "brightness/set", b"0") == ("off", {})
    assert request(LIGHT, "set", b"ON", last_level=0.6) == ("value", {"level": 0.6})
    assert request(LIGHT, "set", b'{"level": 0.5, "lease_ms": 1000}') == (
        "value", {"level": 0.5, "lease_ms": 1000.0, "revert": "safe"})


def test_a_button_press_is_a_pulse_of_its_pulse_ms():
    assert request(BUTTON, "pulse", b"PRESS") == ("on", {"time_ms": 300.0})


@pytest.mark.parametrize("pin,leaf,payload,why", [
    (SWITCH, "set", b"2", "between 0 and 1"),
    (SWITCH, "set", b"0.5", "ON or OFF"),
    (LIGHT, "set", b"1.5", "between 0 and 1"),
    (LIGHT, "set", b"-0.1", "between 0 and 1"),
    (LIGHT, "set", b"nan", "between 0 and 1"),
    (LIGHT, "set", b"inf", "between 0 and 1"),
    (SWITCH, "set", b"banana", "must be a number"),
    (SWITCH, "set", b"", "must be a number"),
    (SWITCH, "set", b"\xff\xfe", "UTF-8"),
    (SWITCH, "set", b"x" * (MAX_PAYLOAD + 1), "bytes"),
    (SWITCH, "set", b"{not json", "not valid JSON"),
    (SWITCH, "set", b"[1, 2]", "must be a number"),
    (SWITCH, "set", b'{"state": "ON", "exec": "rm -rf /"}', "unknown key"),
    (SWITCH, "set", b'{"state": "ON", "level": 1}', "one of them"),
    (SWITCH, "set", b'{"state": "MAYBE"}', "ON or OFF"),
    (SWITCH, "set", b'{"state": "ON", "lease_ms": -5}', "between 0"),
    (SWITCH, "set", b'{"state": "ON", "lease_ms": 1e12}', "between 0"),
    (SWITCH, "set", b'{"state": "ON", "lease_ms": true}', "must be a number"),
    (SWITCH, "set", b'{"state": "ON", "revert": "previous"}', "needs lease_ms"),
    (SWITCH, "set", b'{"state": "ON", "lease_ms": 10, "revert": "never"}', "revert must be"),
    (SWITCH, "set", b'{"state": "OFF", "time_ms": 100}', "time_ms is for ON"),
    (SWITCH, "set_on_ms", b"0", "at least 1 ms"),
    (SWITCH, "set_on_ms", b"0.5", "at least 1 ms"),
    (SWITCH, "set_on_ms", b"-100", "between 0"),
    (SWITCH, "set_on_ms", b"99999999999", "between 0"),
    (SWITCH, "brightness/set", b"10", "takes no"),
    (SENSOR, "set", b"ON", "takes no"),
    (LIGHT, "brightness/set", b"101", "between 0 and 100"),
    (BUTTON, "pulse", b"HOLD", "PRESS"),
    (BUTTON, "set", b"ON", "takes no"),       # a button only pulses: an ON would stay on
])
def test_bad_payloads_are_refused_with_a_reason(pin, leaf, payload, why):
    with pytest.raises(BadPayload, match=why):
        parse_command(leaf, payload, pin)


@hypothesis_settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=MAX_PAYLOAD + 20),
       leaf=st.sampled_from(["set", "set_on_ms", "brightness/set", "pulse"]),
       pin=st.sampled_from([SWITCH, INVERTED, LIGHT, SENSOR, BUTTON]))
def test_any_payload_is_either_a_valid_request_or_a_bad_payload(payload, leaf, pin):
    try:
        op, fields = to_request(parse_command(leaf, payload, pin), pin, 1.0)
    except BadPayload:
        return
    assert op in ("on", "off", "value")
    assert set(fields) <= {"time_ms", "lease_ms", "revert", "level"}
    for key in ("time_ms", "lease_ms"):
        assert 0 <= fields.get(key, 0) <= 86_400_000
    assert 0 < fields.get("level", 0.5) < 1 and math.isfinite(fields.get("level", 0.5))


# ---- what the Pi's levels become --------------------------------------------------------
def test_the_state_is_the_level_the_pi_reports_read_through_the_pins_logic():
    assert render_state(SWITCH, 1) == {"state": "ON"}
    assert render_state(SWITCH, 0) == {"state": "OFF"}
    assert render_state(INVERTED, 0) == {"state": "ON"}
    assert render_state(LIGHT, 0.4) == {"state": "ON", "brightness/state": "40"}
    assert render_state(LIGHT, 0) == {"state": "OFF", "brightness/state": "0"}
    assert render_state(SWITCH, None) == {"state": "OFF"}


def test_an_input_event_carries_the_pis_timestamp_and_sequence():
    event = json.loads(render_event(SENSOR, 1, "rising", 123456789, 7, 0))
    assert event == {"state": "ON", "value": 1, "edge": "rising", "ts_ns": 123456789,
                     "seq": 7, "missed": 0}


def test_intents_say_what_the_user_means_not_the_pins_level():
    assert parse_command("set", b"ON", INVERTED) == Intent("set", True)


# ---- the configuration -------------------------------------------------------------------
GOOD = """
[server]
backend = "sim"
advertise = false

[mqtt]
broker = "hass.local"
username = "remoteio"
password_file = "/etc/remoteio/mqtt-password"
tls = true
node = "greenhouse"

[mqtt.pins.7]
entity = "switch"
name = "Pump"
icon = "mdi:water-pump"
on_broker_loss = "safe"
safe_after_ms = 10000

[mqtt.pins.GPIO17]
entity = "binary_sensor"
device_class = "door"
pull = "up"
bounce_ms = 20
inverted = true
"""


def test_a_good_mqtt_section_is_read_with_its_defaults():
    config = parse_config(GOOD, "remoteio.toml")
    mqtt = config.mqtt
    assert config.advertise is False
    assert (mqtt.broker, mqtt.broker_port, mqtt.tls, mqtt.node) == ("hass.local", 8883, True, "greenhouse")
    assert mqtt.pins[7].on_broker_loss == "safe" and mqtt.pins[7].safe_after_ms == 10000
    assert mqtt.pins[11].entity == "binary_sensor" and mqtt.pins[11].id == "pin11"
    assert mqtt.completed().client_id == "remoteio-greenhouse"


def test_a_server_configuration_without_mqtt_advertises_by_default():
    config = parse_config("[server]\nport = 9000\n")
    assert config.mqtt is None and config.advertise is True


@pytest.mark.parametrize("text,where,words", [
    ("[mqtt]\nport = 'a'\n", ":2:", "port must be an integer"),
    ("[mqtt]\nqos = 3\n", ":2:", "qos must be 0, 1 or 2"),
    ("[mqtt]\n\ncolour = 'red'\n", ":3:", "unknown setting 'colour'"),
    ("[mqtt]\nnode = 'my pi'\n", ":2:", "letters, digits"),
    ("[mqtt]\nprefix = 'a/+/b'\n", ":2:", "topic levels"),
    ("[mqtt]\npassword = 'a'\npassword_file = 'b'\n", ":2:", "not both"),
    ("[mqtt.pins.7]\nentity = 'fan'\n", ":2:", "entity must be one of"),
    ("[mqtt.pins.7]\nentity = 'switch'\npull = 'up'\n", ":3:", "pull is for a binary_sensor"),
    ("[mqtt.pins.7]\nentity = 'light'\nbrightness_scale = 0\n", ":3:", "brightness_scale"),
    ("[mqtt.pins.7]\nicon = 'water pump'\n", ":2:", "mdi:water-pump"),
    ("[mqtt.pins.7]\nid = '#'\n", ":2:", "letters, digits"),
    ("[mqtt.pins.7]\ndevice_class = 'door'\n", ":2:", "device_class"),
    ("[mqtt.pins.7]\nsafe_after_ms = 0\n", ":2:", "safe_after_ms"),
    ("[mqtt.pins.7]\nsafe_after_ms = nan\n", ":2:", "finite"),
    ("[mqtt.pins.11]\nentity = 'binary_sensor'\non_broker_loss = 'safe'\n", ":3:", "nothing to make safe"),
    ("[mqtt.pins.1]\n", ":1:", "3V3 power"),
    ("[mqtt.pins.7]\nid = 'x'\n[mqtt.pins.11]\nid = 'x'\n", ":4:", "also BOARD7"),
    ("[mqtt.pins.7]\n[mqtt.pins.b7]\n", ":2:", "twice"),
    ("[server]\nadvertise = 'yes'\n", ":2:", "true or false"),
])
def test_mqtt_mistakes_say_file_and_line(text, where, words):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "remoteio.toml")
    assert f"remoteio.toml{where}" in str(info.value) and words in str(info.value), str(info.value)


def test_the_password_never_shows_in_the_settings_repr():
    config = parse_config("[mqtt]\npassword = 'hunter2'\n")
    assert "hunter2" not in repr(config.mqtt) and config.mqtt.read_password() == "hunter2"


# ---- the bridge's own leases (on_broker_loss = "safe") -----------------------------------
def test_a_bridge_lease_is_renewed_every_third_of_it_while_the_pin_is_where_it_was_left():
    from remoteio.bridges.leases import Renewals
    renewals = Renewals()
    renewals.add(7, "on", {"lease_ms": 3000.0, "revert": "safe"}, level=1.0, now=0.0)
    assert renewals.due(0.5, {7: 1}) == [] and renewals.next_due() == 1.0
    (board, renewal), = renewals.due(1.0, {7: 1})
    assert board == 7 and renewal.fields == {"lease_ms": 3000.0, "revert": "safe"}
    renewals.renewed(7, 1.0)
    assert renewals.next_due() == 2.0


def test_a_bridge_lease_that_ran_out_or_whose_pin_moved_is_given_up_not_sent_again():
    from remoteio.bridges.leases import Renewals
    renewals = Renewals()
    renewals.add(7, "on", {"lease_ms": 3000.0}, level=1.0, now=0.0)
    renewals.add(8, "on", {"lease_ms": 3000.0}, level=1.0, now=0.0)
    assert renewals.due(2.95, {7: 1, 8: 1}) == []          # too close to its end: the broker was away
    renewals.add(7, "on", {"lease_ms": 3000.0}, level=1.0, now=10.0)
    assert renewals.due(11.0, {7: 0}) == []                # the Pi reverted it meanwhile
    assert renewals.next_due() is None
