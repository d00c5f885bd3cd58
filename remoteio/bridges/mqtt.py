"""The MQTT bridge: one remoteio server's pins on an MQTT broker (docs/mqtt.md).

The bridge is a remoteio *client* (a :class:`~remoteio.RemoteServer`): every
command that arrives over MQTT is an ordinary request to the server, so the
server's pin rules, its timing (``time_ms``) and its leases apply to it as to
any client. It holds the pins it drives, watches every configured pin, and
publishes the level the Pi reports (never an assumed one).

Threads: ``remoteio-mqtt`` (connects, sets the pins up, then carries out
commands and lease renewals in order), paho's network thread (parses what
arrives, queues it), and the client's own (the reader, the keeper, and the
dispatcher that hands on the Pi's change events, published from there).

    bridge = MqttBridge(settings, lambda: RemoteServer("pi.local", reconnect=True)).start()
    ...
    bridge.stop()
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Optional, Tuple

from ..errors import (AuthFailed, AuthRequired, ConnectFailed, Forbidden, LinkError, PinBusy,
                      RemoteIOError, ServerError)
from ..tls import TLSVerifyFailed
from .broker import new_client, require_paho
from .hass import PAYLOAD_OFFLINE, PAYLOAD_ONLINE, discovery_messages
from .leases import Renewals
from .settings import MqttSettings, PinSettings
from .topics import BadPayload, Intent, Topics, parse_command, render_event, render_state, to_request

if TYPE_CHECKING:
    from ..server.app import Server

log = logging.getLogger("remoteio.mqtt")

#: commands waiting to be carried out; beyond this, new ones are dropped (logged)
MAX_PENDING = 1000
#: how often pins that were busy (held by another client) are tried again
CLAIM_RETRY_S = 2.0
_PUBLISH_ALL = "publish_all"


class MqttBridge:
    """Bridges one remoteio server to one MQTT broker.

    *connect* makes the :class:`~remoteio.RemoteServer` (with ``reconnect=True``);
    it is called again, with backoff, until a first connection succeeds.
    """

    def __init__(self, settings: MqttSettings, connect: Callable[[], Any]):
        settings = self.settings = settings.completed()
        self.topics = Topics(settings.prefix, settings.node)
        self._connect = connect
        self._by_id = {pin.id: pin for pin in settings.pins.values()}
        self._queue: Deque[Tuple[str, Any]] = deque()
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._state_lock = threading.Lock()
        self.broker_connected = threading.Event()
        #: set once the pins are set up and discovery and states were published
        self.ready = threading.Event()
        #: what stopped the bridge, if it stopped by itself (bad credentials...)
        self.failure: Optional[BaseException] = None
        #: set when the bridge has stopped (by stop(), or by itself: see failure)
        self.finished = threading.Event()
        self.remote: Any = None
        self._client: Any = None
        self._thread: Optional[threading.Thread] = None
        self._pins: Dict[int, Any] = {}          # board -> RemotePin, once set up
        self._waiting: Dict[int, PinSettings] = {}  # busy pins, tried again
        self._levels: Dict[int, Any] = {}        # board -> the level the Pi last reported
        self._brightness: Dict[int, float] = {}  # light: its last level > 0 (for a bare ON)
        self._renewals = Renewals()

    # ---- life cycle ------------------------------------------------------------------
    def start(self) -> "MqttBridge":
        require_paho()
        self._thread = threading.Thread(target=self._run, name="remoteio-mqtt", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Publish ``offline``, leave the broker, close the connection to the
        server (which then makes the bridge's pins safe)."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None:  # an Event, not join(): a join that Ctrl-C interrupted
            self.finished.wait(timeout)  # may return at once the next time (CPython < 3.13)

    def _run(self) -> None:
        try:
            self.remote = self._connect_remote()
            if self.remote is None:
                return
            self._set_up_pins(list(self.settings.pins.values()))
            self.remote.when_connection_changed = self._on_remote_connection
            self._start_mqtt()
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - the bridge reports, the process goes on
            self.failure = exc
            log.error("the MQTT bridge stopped: %s", exc)
        finally:
            try:
                self._shut_down()
            finally:
                self.finished.set()

    def _connect_remote(self) -> Any:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                return self._connect()
            except (AuthRequired, AuthFailed, TLSVerifyFailed):
                raise  # trying again would not help
            except (ConnectFailed, OSError) as exc:
                log.warning("cannot reach the remoteio server (%s); trying again in %.1f s",
                            exc, delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, 10.0)
        return None

    def _shut_down(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            if self.broker_connected.is_set():
                info = client.publish(self.topics.status, PAYLOAD_OFFLINE, self.settings.qos,
                                      retain=True)
                try:
                    info.wait_for_publish(2.0)
                except (RuntimeError, ValueError) as exc:
                    log.debug("offline not confirmed: %s", exc)
            client.disconnect()
            client.loop_stop()
        if self.remote is not None:
            self.remote.close()
        log.info("MQTT bridge of %s stopped", self.topics.base)

    # ---- the pins ----------------------------------------------------------------------
    def _set_up_pins(self, pins: list) -> list:
        """Claim outputs, make inputs, watch them all; the pins set up now."""
        done = []
        for pin in pins:
            try:
                remote_pin = self.remote.pin(pin.board)
                if not pin.is_output:
                    remote_pin.as_input(pull=None if pin.pull == "none" else pin.pull,
                                        bounce_ms=pin.bounce_ms)
                state = remote_pin.state()
                if pin.is_output and state.get("access") == "read":
                    raise Forbidden(f"BOARD{pin.board} is read-only on the server: "
                                    "it cannot be an output entity")
                remote_pin.when_changed = lambda event, p=pin: self._on_change(p, event)
            except (PinBusy, LinkError) as exc:  # held by someone else, or no server now
                if pin.board not in self._waiting:
                    log.warning("BOARD%d (%s) cannot be set up yet (%s); trying again every "
                                "%g s", pin.board, pin.id, exc, CLAIM_RETRY_S)
                self._waiting[pin.board] = pin
                continue
            except RemoteIOError as exc:
                log.error("BOARD%d (%s) left out of the bridge: %s", pin.board, pin.id, exc)
                self._waiting.pop(pin.board, None)
                continue
            if pin.is_output and pin.inverted and state.get("safe_value") == 0:
                log.warning("BOARD%d (%s) is inverted but its safe value is 0, which is ON: "
                            "set [pins.%d] safe_value = 1 on the server", pin.board, pin.id,
                            pin.board)
            self._waiting.pop(pin.board, None)
            self._pins[pin.board] = remote_pin
            done.append(pin)
        return done

    def _on_change(self, pin: PinSettings, event: Any) -> None:
        """A change the Pi reports (the client's dispatcher thread)."""
        with self._state_lock:
            self._levels[pin.board] = event.value
            self._publish_state(pin, event.value)
            if not pin.is_output:
                self._publish(self.topics.pin(pin.id, "event"), render_event(
                    pin, event.value, event.edge, event.ts_ns, event.seq, event.missed))

    def _on_remote_connection(self, connected: bool) -> None:
        if connected:
            log.info("the remoteio server is back: publishing every state again")
            self._enqueue(_PUBLISH_ALL, None, control=True)
            return
        # the server makes this client's pins safe: nothing of ours to renew any more
        self._renewals.clear()
        self._publish(self.topics.status, PAYLOAD_OFFLINE, retain=True)

    # ---- the broker ----------------------------------------------------------------------
    def _start_mqtt(self) -> None:
        settings = self.settings
        client = new_client(settings, self.topics.status)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        log.info("MQTT bridge: %s at %s:%d (%s), %d pin(s)", self.topics.base, settings.broker,
                 settings.broker_port, "TLS" if settings.tls else "plain TCP", len(self._pins))
        client.connect_async(settings.broker, settings.broker_port, settings.keepalive_s)
        client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("the broker %s:%d refused the bridge: %s", self.settings.broker,
                      self.settings.broker_port, reason)
            return
        qos = self.settings.qos
        self.broker_connected.set()
        log.info("connected to the broker %s:%d", self.settings.broker, self.settings.broker_port)
        client.subscribe([(topic, qos) for topic in self.topics.subscriptions()]
                         + [(f"{self.settings.discovery_prefix}/status", qos)])

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any,
                      properties: Any) -> None:
        """Subscribed (after every connect): now publish discovery and states."""
        failed = [reason for reason in reasons if reason.is_failure]
        if failed:
            log.error("the broker refused the subscriptions: %s", failed)
        self._enqueue(_PUBLISH_ALL, None, control=True)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.broker_connected.clear()
        if not self._stopping.is_set():
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        """Anything that arrives (paho's thread): validated, then queued."""
        try:
            self._receive(message.topic, message.payload, bool(message.retain))
        except Exception:  # noqa: BLE001 - one bad message never stops the bridge
            log.exception("a message on %r could not be handled", message.topic)

    def _receive(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == f"{self.settings.discovery_prefix}/status":
            if payload.strip() == PAYLOAD_ONLINE.encode():
                self._enqueue(_PUBLISH_ALL, None, control=True)  # Home Assistant restarted
            return
        if not payload:  # clearing a retained message: nothing to do
            log.debug("%s: empty message ignored", topic)
            return
        where = self.topics.split(topic)
        pin = self._by_id.get(where[0]) if where else None
        if where is None or pin is None:
            log.warning("%s: no such pin on this bridge; ignored", topic[:200])
            return
        if retained:
            log.warning("%s: a retained command is ignored (it would run again at every "
                        "reconnect); publish commands without retain", topic)
            return
        try:
            intent = parse_command(where[1], payload, pin)
        except BadPayload as exc:
            log.warning("%s: ignored: %s", topic, exc)
            return
        self._enqueue("command", (pin, intent))

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        client = self._client
        if client is not None and self.broker_connected.is_set():
            client.publish(topic, payload, self.settings.qos, retain=retain)

    def _publish_state(self, pin: PinSettings, value: Any) -> None:
        for leaf, payload in render_state(pin, value).items():
            self._publish(self.topics.pin(pin.id, leaf), payload, retain=True)

    # ---- the bridge's own thread ------------------------------------------------------
    def _enqueue(self, kind: str, item: Any, control: bool = False) -> None:
        with self._wake:
            if not control and len(self._queue) >= MAX_PENDING:
                log.warning("%d commands waiting: dropping a new one", len(self._queue))
                return
            self._queue.append((kind, item))
            self._wake.notify()

    def _loop(self) -> None:
        next_claim = time.monotonic() + CLAIM_RETRY_S
        while not self._stopping.is_set():
            now = time.monotonic()
            due = [d for d in (self._renewals.next_due(),) if d is not None] + (
                [next_claim] if self._waiting else [])
            with self._wake:
                if not self._queue and not self._stopping.is_set():
                    self._wake.wait(max(0.0, min(due, default=now + 1.0) - now))
                item = self._queue.popleft() if self._queue else None
            try:
                if item is not None:
                    self._handle(*item)
                if self._waiting and time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + CLAIM_RETRY_S
                    if self._set_up_pins(list(self._waiting.values())):
                        self._publish_all()
                self._renew_due()
            except Exception:  # noqa: BLE001 - logged; the bridge goes on
                log.exception("the MQTT bridge could not handle %s", item and item[0])

    def _handle(self, kind: str, item: Any) -> None:
        if kind == _PUBLISH_ALL:
            self._publish_all()
        elif kind == "command":
            self._command(*item)

    def _command(self, pin: PinSettings, intent: Intent) -> None:
        if pin.board not in self._pins:
            log.warning("%s: BOARD%d is not set up (busy or refused); command dropped",
                        pin.id, pin.board)
            return
        op, fields = to_request(intent, pin, self._brightness.get(pin.board, 1.0))
        bridge_lease = (pin.on_broker_loss == "safe" and not fields.get("time_ms")
                        and not fields.get("lease_ms"))
        if bridge_lease:
            fields.update(lease_ms=pin.safe_after_ms, revert="safe")
        self._renewals.drop(pin.board)
        try:
            self.remote.request(op, pin=pin.board, **fields)
        except ServerError as exc:
            log.warning("%s: %s refused by the server: %s", pin.id, op, exc)
            self._publish_read(pin)
            return
        except LinkError as exc:
            log.warning("%s: %s not sent: %s", pin.id, op, exc)
            return
        level = {"on": 1.0, "off": 0.0}.get(op, fields.get("level", 0.0))
        wanted = 1.0 - level if pin.inverted else level
        if pin.entity == "light" and wanted > 0 and not intent.time_ms:
            self._brightness[pin.board] = wanted
        if bridge_lease:
            self._renewals.add(pin.board, op, fields, level, time.monotonic())

    def _renew_due(self) -> None:
        if not self.broker_connected.is_set():
            return  # no broker: no renewals, and the Pi reverts when the leases run out
        for board, renewal in self._renewals.due(time.monotonic(), self._levels):
            try:
                self.remote.request(renewal.op, pin=board, **renewal.fields)
            except ServerError as exc:
                log.warning("BOARD%d: lease renewal refused: %s", board, exc)
                self._renewals.drop(board)
                continue
            except LinkError:
                continue
            self._renewals.renewed(board, time.monotonic())

    def _publish_read(self, pin: PinSettings) -> None:
        try:
            value = self.remote.pin(pin.board, claim=False).read()
        except RemoteIOError as exc:
            log.warning("%s: cannot read BOARD%d: %s", pin.id, pin.board, exc)
            return
        with self._state_lock:
            self._levels[pin.board] = value
            self._publish_state(pin, value)

    def _publish_all(self) -> None:
        """Discovery, every pin's state read now, then ``online`` (on every
        connect to the broker, when Home Assistant comes online, after the
        server came back)."""
        if not self.broker_connected.is_set():
            return
        settings = self.settings
        served = replace(settings, pins={board: settings.pins[board] for board in self._pins})
        if settings.discovery:
            for topic, payload in discovery_messages(served, self.remote.board,
                                                     self.remote.server_version):
                self._publish(topic, payload, retain=True)
        try:
            with self._state_lock:
                values = self.remote.read_pins(sorted(self._pins)) if self._pins else {}
                for board, value in values.items():
                    self._levels[board] = value
                    self._publish_state(settings.pins[board], value)
        except LinkError as exc:
            log.warning("cannot read the pins (%s): publishing offline", exc)
            self._publish(self.topics.status, PAYLOAD_OFFLINE, retain=True)
            return
        self._publish(self.topics.status, PAYLOAD_ONLINE, retain=True)
        self.ready.set()


def local_bridge(server: "Server", settings: MqttSettings) -> MqttBridge:
    """The bridge of a daemon's ``[mqtt]`` section: a client of *server*
    (started, in this process) over loopback, with its token and TLS."""
    from ..client.client import RemoteServer
    from .discovery import certificate_fingerprint
    host, port = server.address
    fingerprint = certificate_fingerprint(server.tls_cert) if server.tls_cert else None
    token = server.token

    def connect() -> Any:
        return RemoteServer(host, port, token=token, tls=bool(fingerprint),
                            fingerprint=fingerprint, heartbeat=5.0, reconnect=True)
    return MqttBridge(settings, connect).start()
