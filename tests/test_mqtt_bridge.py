"""The MQTT bridge against a real Mosquitto broker: pins driven through MQTT
with paho-mqtt, checked on the simulated board; states, events, validation,
the server's pin rules (remoteio/bridges/mqtt.py, docs/mqtt.md)."""
from __future__ import annotations

import json
import logging
import time

import pytest

from remoteio.bridges.settings import PinSettings
from remoteio.server import Server

from brokers import bridge_settings, broker, make_bridge, needs_mosquitto, watcher  # noqa: F401
from remoteio.testing import pulses, wait_until

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install -e '.[test]')")
pytestmark = needs_mosquitto

PUMP = PinSettings(7, id="pump", name="Pump")
LAMP = PinSettings(12, entity="light", id="lamp", name="Lamp")
DOOR = PinSettings(11, entity="binary_sensor", id="door", name="Door", pull="up")
BELL = PinSettings(15, entity="button", id="bell", name="Bell", pulse_ms=250)
T = "remoteio/pi/"


@pytest.fixture
def server():
    with Server(host="127.0.0.1", port=0, backend="sim",
                pins={8: {"safe_value": 1}, 13: {"max_hold_ms": 1000}, 16: {"access": "read"}}) as srv:
        yield srv


def test_a_switch_set_over_mqtt_drives_the_pin_and_its_retained_state_follows_the_pi(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [PUMP]))
    assert watcher.wait_payload(T + "status", "online")
    assert watcher.wait_payload(T + "pump/state", "OFF")
    watcher.publish(T + "pump/set", "ON")
    assert server.sim.wait_for(7, 1.0) and watcher.wait_payload(T + "pump/state", "ON")
    mark = watcher.mark()
    watcher.publish(T + "pump/set", "OFF")
    assert server.sim.wait_for(7, 0.0) and watcher.wait_payload(T + "pump/state", "OFF", since=mark)
    late = type(watcher)(broker)  # a subscriber that comes later gets the retained state
    try:
        found = late.wait_for(lambda t, p: t == T + "pump/state")
        assert found and found[1] == b"OFF" and found[2] is True
    finally:
        late.close()


def test_set_on_ms_is_timed_on_the_pi_and_the_state_goes_off_by_itself(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [PUMP]))
    mark = watcher.mark()
    watcher.publish(T + "pump/set_on_ms", "300")
    assert watcher.wait_sequence(T + "pump/state", ["ON", "OFF"], since=mark)
    (start, width), = pulses(server.sim.history(7))
    assert 299 <= width < 400, width  # timed on the Pi, whatever the broker does


def test_the_lease_form_reverts_on_the_pi_unless_it_is_published_again(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [PUMP]))
    mark = watcher.mark()
    watcher.publish(T + "pump/set", json.dumps({"state": "ON", "lease_ms": 400}))
    assert watcher.wait_sequence(T + "pump/state", ["ON", "OFF"], since=mark)
    (start, width), = pulses(server.sim.history(7))
    assert 399 <= width < 600, width


def test_a_light_takes_brightness_from_home_assistant_and_reports_the_pwm_level(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [LAMP]))
    watcher.publish(T + "lamp/brightness/set", "64")
    assert wait_until(lambda: abs(server.sim.value(12) - 64 / 255) < 1e-5)
    assert watcher.wait_payload(T + "lamp/brightness/state", "64")
    assert watcher.wait_payload(T + "lamp/state", "ON")
    watcher.publish(T + "lamp/set", "OFF")
    assert server.sim.wait_for(12, 0.0) and watcher.wait_payload(T + "lamp/brightness/state", "0")
    watcher.publish(T + "lamp/set", "ON")              # back at its last level
    assert wait_until(lambda: abs(server.sim.value(12) - 64 / 255) < 1e-5)
    watcher.publish(T + "lamp/set", "0.5")             # a level 0..1 on /set
    assert wait_until(lambda: server.sim.value(12) == 0.5)
    assert watcher.wait_payload(T + "lamp/brightness/state", "128")


def test_an_input_edge_is_published_with_the_pis_timestamp(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [DOOR]))
    assert watcher.wait_payload(T + "door/state", "ON")  # pulled up
    mark = watcher.mark()
    before = time.monotonic_ns()
    server.sim.drive(11, 0)
    found = watcher.wait_for(lambda t, p: t == T + "door/event", since=mark)
    assert found and watcher.wait_payload(T + "door/state", "OFF", since=mark)
    event = json.loads(found[1])
    assert event["state"] == "OFF" and event["edge"] == "falling" and event["value"] == 0
    assert before <= event["ts_ns"] <= found[3]   # the Pi's clock, at the edge
    assert found[2] is False                      # events are not retained; states are


def test_a_button_press_pulses_the_pin_for_its_pulse_ms(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [BELL]))
    watcher.publish(T + "bell/pulse", "PRESS")
    assert wait_until(lambda: len(pulses(server.sim.history(15))) == 1, timeout=5)
    (start, width), = pulses(server.sim.history(15))
    assert 249 <= width < 350, width


def test_inverted_pins_mean_on_when_the_level_is_low(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    relay = PinSettings(8, id="relay", name="Relay", inverted=True)
    button = PinSettings(11, entity="binary_sensor", id="button", pull="up", inverted=True)
    make_bridge(server, bridge_settings(broker, [relay, button]))
    assert watcher.wait_payload(T + "button/state", "OFF")      # pulled up: not pressed
    watcher.publish(T + "relay/set", "ON")
    assert server.sim.wait_for(8, 0.0, what="level") and watcher.wait_payload(T + "relay/state", "ON")
    watcher.publish(T + "relay/set", "OFF")
    assert server.sim.wait_for(8, 1.0) and watcher.wait_payload(T + "relay/state", "OFF")
    server.sim.drive(11, 0)
    assert watcher.wait_payload(T + "button/state", "ON")


def test_garbage_is_logged_and_ignored_and_the_bridge_goes_on(
        server, broker, watcher, make_bridge, caplog):  # noqa: F811 (pytest fixtures)
    caplog.set_level(logging.WARNING, logger="remoteio.mqtt")
    watcher.publish(T + "pump/set", "ON", retain=True)   # a retained command is never run
    make_bridge(server, bridge_settings(broker, [PUMP, LAMP]))
    watcher.publish(T + "pump/set", "", retain=True)     # (and cleared again)
    bad = [(T + "pump/set", b"2"), (T + "pump/set", b"banana"), (T + "pump/set", b"\xff\x00"),
           (T + "pump/set", b"x" * 100_000), (T + "pump/set", b'{"state": "ON", "lease_ms": -1}'),
           (T + "pump/set", b'{"__class__": 1}'), (T + "pump/set_on_ms", b"-5"),
           (T + "lamp/set", b"1.5"), (T + "lamp/brightness/set", b"256"),
           (T + "nosuchpin/set", b"ON"), (T + "pump/brightness/set", b"10")]
    for topic, payload in bad:
        watcher.publish(topic, payload)
    watcher.publish(T + "lamp/set", "0.25")              # the first good one after them
    assert wait_until(lambda: server.sim.value(12) == 0.25)
    assert server.sim.value(7) == 0.0 and server.sim.history(7) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "remoteio.mqtt"]
    assert sum("ignored" in m for m in messages) >= len(bad), messages
    assert any("retained command" in m for m in messages)


def test_the_servers_pin_rules_apply_to_everything_from_mqtt(
        server, broker, watcher, make_bridge, caplog):  # noqa: F811 (pytest fixtures)
    caplog.set_level(logging.WARNING, logger="remoteio.mqtt")
    heater = PinSettings(13, id="heater")                     # max_hold_ms = 1000 on the server
    sensor_pin = PinSettings(16, id="sensor")                 # access = "read" on the server
    make_bridge(server, bridge_settings(broker, [heater, sensor_pin]))
    watcher.publish(T + "heater/set", "ON")                   # could stay on for ever: refused
    watcher.publish(T + "heater/set_on_ms", "5000")           # longer than the rule: refused
    watcher.publish(T + "heater/set_on_ms", "200")            # allowed
    assert wait_until(lambda: len(pulses(server.sim.history(13))) == 1, timeout=5)
    assert server.sim.history(13)[0][1] == 1.0 and len(server.sim.history(13)) == 2
    refused = [r.getMessage() for r in caplog.records if "refused by the server" in r.getMessage()]
    assert len(refused) == 2 and all("heater" in m for m in refused)
    # the read-only pin is left out: no entity, and nothing drives it
    assert any("BOARD16" in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
    configs = [t for t, *_ in watcher.messages if t.endswith("/config")]
    assert configs == ["homeassistant/switch/remoteio_pi/heater/config"]
    watcher.publish(T + "sensor/set", "ON")
    assert server.sim.function(16) != "output"


def test_home_assistant_coming_online_gets_discovery_and_states_again(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    make_bridge(server, bridge_settings(broker, [PUMP, DOOR]))
    topic = "homeassistant/switch/remoteio_pi/pump/config"
    assert watcher.wait_for(lambda t, p: t == topic)
    mark = watcher.mark()
    watcher.publish("homeassistant/status", "online")
    assert watcher.wait_for(lambda t, p: t == topic, since=mark)
    assert watcher.wait_payload(T + "door/state", "ON", since=mark)
    assert watcher.wait_payload(T + "status", "online", since=mark)
