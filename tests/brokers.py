"""A real Mosquitto broker for the MQTT tests, and a paho client that watches it.

The broker is Debian's ``mosquitto`` (.ci/run installs it), started by the
test as a child process on 127.0.0.1 with a free port, a generated
configuration that requires a password (``mosquitto_passwd``), no
persistence (a restart loses every retained message: what comes back, the
bridge published again), and stopped by its pid.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest

from remoteio.testing import free_port

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto")
                                          else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
USER, PASSWORD = "remoteio", "a broker password"

needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None or MOSQUITTO_PASSWD is None,
    reason="the mosquitto broker is not installed (apt-get install mosquitto; .ci/run does)")


class Mosquitto:
    """One broker: ``start()``, ``stop()``, ``restart()`` (same port)."""

    def __init__(self, folder: Path, *, tls: Optional[Tuple[str, str]] = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.passwords = folder / "passwords"
        subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(self.passwords), USER, PASSWORD],
                       check=True, capture_output=True, timeout=30)
        self.log_path = folder / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous false",
                 f"password_file {self.passwords}", "persistence false",
                 f"log_dest file {self.log_path}", "log_type all", "user root"]
        if tls is not None:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 15.0) -> "Mosquitto":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}):\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen:\n{self.output()}")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Watcher:
    """A paho client subscribed to everything: records messages, publishes."""

    def __init__(self, broker: Mosquitto, *, username: str = USER, password: str = PASSWORD,
                 topics: Tuple[str, ...] = ("#",), cafile: Optional[str] = None):
        import paho.mqtt.client as mqtt
        self.messages: List[Tuple[str, bytes, bool, int]] = []
        self._cond = threading.Condition()
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"watcher-{time.monotonic_ns()}")
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        if cafile:
            self.client.tls_set(ca_certs=cafile)
        self.topics = topics

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if not reason.is_failure:
                client.subscribe([(topic, 1) for topic in self.topics])
                self.connected.set()

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            with self._cond:
                self.messages.append((message.topic, bytes(message.payload),
                                      bool(message.retain), time.monotonic_ns()))
                self._cond.notify_all()
        self.client.on_connect = on_connect
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.on_message = on_message
        self.client.connect_async("127.0.0.1", broker.port, 30)
        self.client.loop_start()
        assert self.connected.wait(10), "the watcher could not connect to the broker"

    def wait_for(self, match: Callable[[str, bytes], bool], timeout: float = 10.0,
                 since: int = 0) -> Optional[Tuple[str, bytes, bool, int]]:
        """The first message from index *since* on that matches, waiting up to *timeout*."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages[since:]:
                    if match(message[0], message[1]):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_payload(self, topic: str, payload: Any, timeout: float = 10.0, since: int = 0) -> bool:
        wanted = payload.encode() if isinstance(payload, str) else payload
        return self.wait_for(lambda t, p: t == topic and p == wanted, timeout, since) is not None

    def wait_sequence(self, topic: str, payloads: List[Any], timeout: float = 10.0,
                      since: int = 0) -> bool:
        """Wait until *topic* has carried *payloads* in this order (others may
        come between) from message *since* on."""
        wanted = [p.encode() if isinstance(p, str) else p for p in payloads]
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = iter(p for t, p, _, _ in self.messages[since:] if t == topic)
                if all(any(p == w for p in seen) for w in wanted):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def on(self, topic: str) -> List[bytes]:
        with self._cond:
            return [p for t, p, _, _ in self.messages if t == topic]

    def publish(self, topic: str, payload: Any, retain: bool = False, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# ---- fixtures (import them into a test module: ``from brokers import broker, ...``) ------
@pytest.fixture
def broker(tmp_path: Path):
    started = Mosquitto(tmp_path / "broker").start()
    yield started
    started.stop()


@pytest.fixture
def watcher(broker: Mosquitto):
    watching = Watcher(broker)
    yield watching
    watching.close()


def bridge_settings(broker: Mosquitto, pins: Any, node: str = "pi", **options: Any) -> Any:
    """Settings for a bridge on *broker* (quick reconnects, for tests)."""
    from remoteio.bridges.settings import MqttSettings
    values = dict(broker="127.0.0.1", port=broker.port, username=USER, password=PASSWORD,
                  node=node, reconnect_min_s=0.1, reconnect_max_s=0.5, keepalive_s=5)
    values.update(options)
    return MqttSettings(pins={pin.board: pin for pin in pins}, **values)


@pytest.fixture
def make_bridge():
    """``make_bridge(server, settings)``: a started bridge, ready (published), stopped after."""
    from remoteio import RemoteServer
    from remoteio.bridges.mqtt import MqttBridge
    started: List[Any] = []

    def make(server: Any, settings: Any, ready: bool = True, **client: Any) -> Any:
        address = server.address if hasattr(server, "address") else server
        bridge = MqttBridge(settings, lambda: RemoteServer(*address, reconnect=True, **client))
        started.append(bridge.start())
        if ready:
            assert bridge.ready.wait(15), "the bridge did not publish its pins"
        return bridge
    yield make
    for bridge in started:
        bridge.stop()
