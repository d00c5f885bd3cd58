"""The paho-mqtt client the bridge talks to its broker with (paho 2.x).

Credentials, TLS, the Last Will (``offline``, retained), reconnects with
exponential backoff, and the socket options that keep commands from waiting
on TCP's delayed acknowledgements.
"""
from __future__ import annotations

import logging
import socket
from typing import Any

from .hass import PAYLOAD_OFFLINE
from .settings import MqttSettings

log = logging.getLogger("remoteio.mqtt")


def require_paho() -> Any:
    """paho.mqtt.client, or a RuntimeError that says how to install it."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise RuntimeError("the MQTT bridge needs paho-mqtt 2: pip install 'remoteio[mqtt]'") from None
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise RuntimeError("the MQTT bridge needs paho-mqtt 2 (this is 1.x): "
                           "pip install --upgrade 'paho-mqtt>=2'")
    return mqtt


def reconnect_max_s(settings: MqttSettings) -> float:
    """The backoff's longest wait: ``reconnect_max_s``, but at most a quarter of
    the shortest ``safe_after_ms`` of a pin that goes safe on broker loss, so a
    broker back in time is found before that pin's lease runs out.

    >>> from remoteio.bridges.settings import PinSettings
    >>> reconnect_max_s(MqttSettings(broker="b", pins={7: PinSettings(
    ...     board=7, on_broker_loss="safe", safe_after_ms=8000)}))
    2.0
    """
    delays = [pin.safe_after_ms / 4000.0 for pin in settings.pins.values()
              if pin.on_broker_loss == "safe"]
    return max(settings.reconnect_min_s, min([settings.reconnect_max_s] + delays))


def new_client(settings: MqttSettings, status_topic: str) -> Any:
    """A configured client, not connected yet (the caller sets the callbacks)."""
    mqtt = require_paho()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                         protocol=mqtt.MQTTv311)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.read_password())
    if settings.tls:
        client.tls_set(ca_certs=settings.cafile)  # verifies the broker and its host name
    client.will_set(status_topic, PAYLOAD_OFFLINE, settings.qos, retain=True)
    client.reconnect_delay_set(settings.reconnect_min_s, reconnect_max_s(settings))
    client.on_socket_open = _no_delay
    client.on_publish = _ack_now
    return client


def _no_delay(client: Any, userdata: Any, sock: Any) -> None:
    """paho leaves Nagle's algorithm on: a small publish right after a PUBACK
    would then wait for the broker's delayed ACK (40 ms on Linux)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError) as exc:  # not TCP (a unix socket, websockets)
        log.debug("TCP_NODELAY not set: %s", exc)


def _ack_now(client: Any, userdata: Any, mid: Any, reason: Any, properties: Any) -> None:
    """A broker's PUBACK has come: acknowledge it at once (Linux TCP_QUICKACK).
    A broker that leaves Nagle's algorithm on (Mosquitto's default) would
    otherwise hold the next command it has for us until our delayed ACK (40 ms)."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    sock = client.socket()
    if quickack is not None and sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except (OSError, AttributeError):
            pass
