"""The MQTT bridge when things go away, against a real Mosquitto broker: the
broker restarting, the broker gone (what each pin does), the remoteio server
restarting, two Pis on one broker, passwords and TLS (docs/mqtt.md)."""
from __future__ import annotations

import json
import logging
import time

import pytest

from remoteio import RemoteServer
from remoteio.bridges.settings import PinSettings
from remoteio.server import Server

from brokers import (Mosquitto, Watcher, bridge_settings, broker,  # noqa: F401
                     make_bridge, needs_mosquitto, watcher)
from remoteio.testing import wait_until

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install -e '.[test]')")
pytestmark = needs_mosquitto

PUMP = PinSettings(7, id="pump", name="Pump")
T = "remoteio/pi/"


@pytest.fixture
def server():
    with Server(host="127.0.0.1", port=0, backend="sim") as srv:
        yield srv


def test_after_a_broker_restart_discovery_state_and_availability_come_back(
        server, broker, make_bridge):  # noqa: F811 (pytest fixtures)
    door = PinSettings(11, entity="binary_sensor", id="door", pull="up")
    bridge = make_bridge(server, bridge_settings(broker, [PUMP, door]))
    first = Watcher(broker)
    first.publish(T + "pump/set", "ON")
    assert server.sim.wait_for(7, 1.0)
    first.close()
    broker.restart()                   # no persistence: every retained message is gone
    assert wait_until(bridge.broker_connected.is_set, timeout=10)
    late = Watcher(broker)             # retained, so a new subscriber sees them all
    try:
        assert late.wait_payload("remoteio/pi/status", "online")
        assert late.wait_payload(T + "pump/state", "ON") and late.wait_payload(T + "door/state", "ON")
        for component, pin in (("switch", "pump"), ("binary_sensor", "door")):
            found = late.wait_for(lambda t, p: t == f"homeassistant/{component}/remoteio_pi/{pin}/config")
            assert found and json.loads(found[1])["unique_id"] == f"remoteio_pi_{pin}"
        late.publish(T + "pump/set", "OFF")  # and commands work again
        assert server.sim.wait_for(7, 0.0)
    finally:
        late.close()


def test_without_the_broker_a_safe_pin_reverts_after_its_delay_and_a_hold_pin_stays(
        server, broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    safe = PinSettings(7, id="pump", on_broker_loss="safe", safe_after_ms=1000)
    hold = PinSettings(8, id="light", on_broker_loss="hold")
    make_bridge(server, bridge_settings(broker, [safe, hold]))
    watcher.publish(T + "pump/set", "ON")
    watcher.publish(T + "light/set", "ON")
    assert server.sim.wait_for(7, 1.0) and server.sim.wait_for(8, 1.0)
    # while the broker is there, the bridge renews the lease: the pump stays on
    assert wait_until(lambda: server.sim.value(7) != 1.0, timeout=2.5) is None
    with RemoteServer(*server.address) as look:      # it is a lease, on the Pi
        assert look.pin(7, claim=False).state()["lease"]["revert_to"] == 0.0
    stopped = time.monotonic()
    broker.stop()
    assert server.sim.wait_for(7, 0.0, timeout=5)
    took = time.monotonic() - stopped
    assert took < 1.0 + 1.0, took     # at most its delay after the last renewal (+ load)
    assert server.sim.value(8) == 1.0   # hold: untouched
    broker.start()
    back = Watcher(broker)
    try:
        assert back.wait_payload(T + "pump/state", "OFF") and back.wait_payload(T + "light/state", "ON")
    finally:
        back.close()


def test_the_remoteio_server_going_away_marks_the_pi_offline_then_online_again(
        broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    with Server(host="127.0.0.1", port=0, backend="sim") as first:
        address = first.address
        make_bridge(address, bridge_settings(broker, [PUMP]))
        watcher.publish(T + "pump/set", "ON")
        assert first.sim.wait_for(7, 1.0) and watcher.wait_payload(T + "pump/state", "ON")
        mark = watcher.mark()
    assert watcher.wait_payload(T + "status", "offline", since=mark)
    with Server(host=address[0], port=address[1], backend="sim") as second:
        assert watcher.wait_payload(T + "status", "online", since=mark, timeout=15)
        assert watcher.wait_payload(T + "pump/state", "OFF", since=mark)  # the new Pi's real level
        watcher.publish(T + "pump/set", "ON")     # its pins were claimed again
        assert second.sim.wait_for(7, 1.0)


def test_two_pis_on_one_broker_are_two_devices_each_driving_its_own_pins(
        broker, watcher, make_bridge):  # noqa: F811 (pytest fixtures)
    with Server(host="127.0.0.1", port=0, backend="sim") as pi_a, \
            Server(host="127.0.0.1", port=0, backend="sim") as pi_b:
        make_bridge(pi_a, bridge_settings(broker, [PUMP], node="pi-a"))
        make_bridge(pi_b, bridge_settings(broker, [PUMP], node="pi-b"))
        watcher.publish("remoteio/pi-a/pump/set", "ON")
        assert pi_a.sim.wait_for(7, 1.0) and watcher.wait_payload("remoteio/pi-a/pump/state", "ON")
        assert pi_b.sim.value(7) == 0.0
        watcher.publish("remoteio/pi-b/pump/set_on_ms", "200")
        assert watcher.wait_sequence("remoteio/pi-b/pump/state", ["ON", "OFF"])
        assert pi_a.sim.value(7) == 1.0
        configs = {}
        for node in ("pi-a", "pi-b"):
            found = watcher.wait_for(lambda t, p: t == f"homeassistant/switch/remoteio_{node}/pump/config")
            configs[node] = json.loads(found[1])
        assert configs["pi-a"]["device"]["identifiers"] != configs["pi-b"]["device"]["identifiers"]
        assert watcher.wait_payload("remoteio/pi-a/status", "online")
        assert watcher.wait_payload("remoteio/pi-b/status", "online")


def test_the_broker_requires_the_password_and_a_wrong_one_is_logged(
        server, broker, make_bridge, caplog):  # noqa: F811 (pytest fixtures)
    caplog.set_level(logging.ERROR, logger="remoteio.mqtt")
    refused = []
    anonymous = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="anonymous")
    anonymous.on_connect = lambda client, userdata, flags, reason, props: refused.append(reason)
    anonymous.connect("127.0.0.1", broker.port, 10)
    anonymous.loop_start()
    try:
        assert wait_until(lambda: refused, timeout=10) and refused[0].is_failure
    finally:
        anonymous.disconnect()
        anonymous.loop_stop()
    bridge = make_bridge(server, bridge_settings(broker, [PUMP], password="wrong"), ready=False)
    assert wait_until(lambda: any("refused the bridge" in r.getMessage() for r in caplog.records),
                      timeout=10)
    assert not bridge.ready.is_set() and server.sim.function(7) != "output"


def test_tls_to_the_broker_with_a_password(server, tmp_path, make_bridge):  # noqa: F811 (pytest fixtures)
    pytest.importorskip("cryptography", reason="making a certificate needs cryptography")
    from remoteio.tls import generate_self_signed
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    generate_self_signed(cert, key, ["127.0.0.1", "localhost"])
    tls_broker = Mosquitto(tmp_path / "tls-broker", tls=(cert, key)).start()
    try:
        make_bridge(server, bridge_settings(tls_broker, [PUMP], tls=True, cafile=cert))
        watching = Watcher(tls_broker, cafile=cert)
        try:
            assert watching.wait_payload(T + "status", "online")
            watching.publish(T + "pump/set", "ON")
            assert server.sim.wait_for(7, 1.0) and watching.wait_payload(T + "pump/state", "ON")
        finally:
            watching.close()
    finally:
        tls_broker.stop()
