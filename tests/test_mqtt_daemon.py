"""The MQTT bridge as users run it, in its own processes, against a real
Mosquitto broker: ``remoteio serve --config`` with an ``[mqtt]`` section
(the daemon runs the bridge), and ``remoteio mqtt`` (its Last Will when it
is killed, a restart)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from remoteio import RemoteServer
from remoteio.server import Server

from brokers import PASSWORD, USER, broker, needs_mosquitto, watcher  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install -e '.[test]')")
pytestmark = needs_mosquitto

TOKEN = "a token the bridge must know too"


def test_the_daemon_runs_the_bridge_of_its_mqtt_section(
        tmp_path, broker, watcher, server_process):  # noqa: F811 (pytest fixtures)
    """...a client of its own server, with its token and over its TLS."""
    pytest.importorskip("cryptography", reason="making a certificate needs cryptography")
    from remoteio.tls import generate_self_signed
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    fingerprint = generate_self_signed(cert, key, ["127.0.0.1"])
    (tmp_path / "mqtt-password").write_text(PASSWORD + "\n")
    config = tmp_path / "remoteio.toml"
    config.write_text(f"""
[server]
token = "{TOKEN}"
tls_cert = "{cert}"
tls_key = "{key}"

[mqtt]
broker = "127.0.0.1"
port = {broker.port}
username = "{USER}"
password_file = "{tmp_path / 'mqtt-password'}"
node = "daemon"
reconnect_min_s = 0.1

[mqtt.pins.7]
name = "Pump"
icon = "mdi:water-pump"

[mqtt.pins.11]
entity = "binary_sensor"
pull = "up"
""")
    daemon = server_process("--config", str(config))
    assert watcher.wait_payload("remoteio/daemon/status", "online", timeout=20)
    found = watcher.wait_for(lambda t, p: t == "homeassistant/switch/remoteio_daemon/pin7/config")
    assert found and b"mdi:water-pump" in found[1]
    watcher.publish("remoteio/daemon/pin7/set", "ON")
    assert watcher.wait_payload("remoteio/daemon/pin7/state", "ON")
    with RemoteServer(*daemon.address, token=TOKEN, fingerprint=fingerprint) as look:  # the Pi's level
        assert look.read_pins([7]) == {7: 1}
        look.sim.drive(11, 0)
        assert watcher.wait_payload("remoteio/daemon/pin11/state", "OFF")
    mark = watcher.mark()
    assert daemon.terminate() == 0
    assert watcher.wait_payload("remoteio/daemon/status", "offline", since=mark)


def start_bridge(
        tmp_path: Path, address, broker, *extra: str) -> subprocess.Popen:  # noqa: F811 (pytest fixtures)
    (tmp_path / "pw").write_text(PASSWORD)
    log = open(tmp_path / f"bridge-{os.getpid()}-{len(list(tmp_path.iterdir()))}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "remoteio", "mqtt", "--host", address[0], "--port", str(address[1]),
         "--broker", "127.0.0.1", "--broker-port", str(broker.port), "--username", USER,
         "--password-file", str(tmp_path / "pw"), "--node", "cli", *extra],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_remoteio_mqtt_bridges_a_server_and_its_last_will_says_offline_when_killed(
        tmp_path, broker, watcher):  # noqa: F811 (pytest fixtures)
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        bridge = start_bridge(tmp_path, server.address, broker, "--switch", "7", "--light", "12",
                              "--binary-sensor", "11", "--button", "15")
        try:
            assert watcher.wait_payload("remoteio/cli/status", "online", timeout=20)
            for component, pin in (("switch", 7), ("light", 12), ("binary_sensor", 11), ("button", 15)):
                assert watcher.wait_for(
                    lambda t, p: t == f"homeassistant/{component}/remoteio_cli/pin{pin}/config")
            watcher.publish("remoteio/cli/pin7/set", "ON")
            assert server.sim.wait_for(7, 1.0)
            mark = watcher.mark()
            bridge.send_signal(signal.SIGKILL)   # no goodbye: the broker sends the Last Will
            bridge.wait(10)
            assert watcher.wait_payload("remoteio/cli/status", "offline", since=mark, timeout=15)
            assert server.sim.wait_for(7, 0.0)   # and the server made the bridge's pins safe
            again = start_bridge(tmp_path, server.address, broker, "--switch", "7")
            try:                                 # a new bridge: online, its pins claimed again
                assert watcher.wait_payload("remoteio/cli/status", "online", since=mark, timeout=20)
                watcher.publish("remoteio/cli/pin7/set", "ON")
                assert server.sim.wait_for(7, 1.0)
                mark = watcher.mark()
                again.send_signal(signal.SIGTERM)
                assert again.wait(15) == 0
                assert watcher.wait_payload("remoteio/cli/status", "offline", since=mark)
            finally:
                stop(again)
        finally:
            stop(bridge)


def test_remoteio_mqtt_needs_pins_and_says_so(tmp_path, broker):  # noqa: F811 (pytest fixtures)
    result = subprocess.run([sys.executable, "-m", "remoteio", "mqtt", "--broker-port",
                             str(broker.port)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no pins to bridge" in result.stderr


def test_check_config_reads_the_mqtt_section(tmp_path):
    config = tmp_path / "remoteio.toml"
    config.write_text('[mqtt]\nbroker = "hass.local"\nnode = "shed"\n\n[mqtt.pins.7]\n'
                      '[mqtt.pins.11]\nentity = "binary_sensor"\n')
    result = subprocess.run([sys.executable, "-m", "remoteio", "check-config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "MQTT bridge to hass.local:1883 as remoteio/shed, 2 pins" in result.stdout
    config.write_text('[mqtt]\nbroker = "hass.local"\n\n[mqtt.pins.7]\nentity = "lamp"\n')
    result = subprocess.run([sys.executable, "-m", "remoteio", "check-config", str(config)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "remoteio.toml:5: [mqtt.pins.7] entity" in result.stderr
