"""The client: :class:`RemoteServer`, a connection to one remoteio server.

Thread-safe and synchronous: it never runs an asyncio loop, so it works the
same in scripts, threads and Jupyter. One persistent connection; replies are
matched to requests by whoever reads it (a waiting caller, or the reader
thread while none waits: client/link.py); callbacks run on a separate
dispatcher thread, so a callback may itself call the server.

>>> from remoteio import RemoteServer                       # doctest: +SKIP
>>> server = RemoteServer("192.168.1.38", 8509)             # doctest: +SKIP
>>> led = server.pin(7, "b")                                # doctest: +SKIP
>>> led.on(time_ms=2000)                                    # doctest: +SKIP
>>> server.close()                                          # doctest: +SKIP
"""
from __future__ import annotations

import logging
import queue
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import display, trace
from .._version import __version__
from ..errors import (ConnectFailed, ConnectionLost, LinkError,
                      RemoteIOError)
from .liveness import Keeper
from .link import Link, wait_all
from .pinlogic import by_pin
from ..pins import PinSpec, pin_key
from ..protocol import auth
from ..protocol.client_conn import Greeting
from .remotepin import RemotePin
from .serial import SerialPorts
from ..settings import DEFAULT_PORT
from .simcontrol import SimControl
from ..tls import PLAIN_HINT, ClientTLS
from ..tls import connect as tls_connect
from ..tokens import find_token

if TYPE_CHECKING:
    from .buses import RemoteI2C
    from .spi import RemoteSPI
    from .serial import RemoteSerial

log = logging.getLogger(__name__)

#: this Python process, as servers see it: a connection may take over pins an
#: older connection of the same process holds, if it asks (take_over=True)
SESSION = secrets.token_hex(8)


class RemoteServer:
    """A connection to a remoteio server.

    *timeout* bounds every call (seconds); a server that does not answer in
    time raises :exc:`~remoteio.errors.CallTimeout`, a lost connection
    :exc:`~remoteio.errors.ConnectionLost`, and a refusal the matching
    :exc:`~remoteio.errors.ServerError` subclass. With *take_over*, pins held
    by an older connection of this same Python process (a notebook cell run
    again) are taken over instead of refused with PinBusy.
    """

    def __init__(self, host: str = "localhost", port: int = DEFAULT_PORT, timeout: float = 5.0,
                 *, connect_timeout: Optional[float] = None, token: Union[str, bool, None] = None,
                 tls: Optional[bool] = None, fingerprint: Optional[str] = None,
                 cafile: Optional[str] = None, tofu: bool = False,
                 cert: Optional[str] = None, key: Optional[str] = None, heartbeat: float = 5.0,
                 reconnect: bool = True, wait_for_reconnect: bool = False,
                 take_over: bool = False):
        self.host = host
        self.port = int(port)
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout or timeout)
        self._token = token
        settings = ClientTLS.resolve(tls, fingerprint, cafile, tofu, cert, key)
        self._fingerprint, self._cafile = settings.fingerprint, settings.cafile
        self._cert, self._key = settings.cert, settings.key
        self._tofu = tofu
        self.take_over = take_over
        self.tls = settings.enabled
        self._pins: Dict[int, RemotePin] = {}
        #: the serial ports opened through this client (where their events go)
        self.serial_ports = SerialPorts()
        self._pins_lock = threading.Lock()
        self._dispatch_queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._dispatcher: Optional[threading.Thread] = None
        self._closed = False
        self.heartbeat = float(heartbeat)
        self.wait_for_reconnect = wait_for_reconnect
        self._connected = threading.Event()
        self._when_connection_changed: Optional[Callable[..., Any]] = None
        self.welcome: Dict[str, Any] = {}
        self._keeper: Optional[Keeper] = None
        self._link = self._connect()
        self._connected.set()
        self._keeper = Keeper(self, self.heartbeat, reconnect)
        if self.heartbeat or reconnect:
            self._keeper.start()

    # ---- connection ---------------------------------------------------------------
    def _connect(self, take_over: bool = False) -> Link:
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {where}: {exc}") from None
        if self.tls:
            try:
                sock = tls_connect(sock, self.host, self.port, cafile=self._cafile,
                                   fingerprint=self._fingerprint, tofu=self._tofu,
                                   cert=self._cert, key=self._key, timeout=self.connect_timeout)
            except RemoteIOError:
                raise
            except OSError as exc:
                sock.close()
                raise ConnectFailed(f"TLS with {where} failed: {exc}") from None
        link = Link(sock, send_timeout=self.timeout, on_event=self._on_event, on_lost=self._on_lost)
        try:
            self.welcome = self._greet(link, take_over or self.take_over)
        except LinkError as exc:
            link.close(0.1)
            if link.conn.refusal is not None:   # it said why before it closed (server_busy)
                raise link.conn.refusal from None
            hint = "" if self.tls else f"; {PLAIN_HINT}"
            raise ConnectFailed(f"{where} did not greet as a remoteio server: {exc}{hint}") from None
        except RemoteIOError:
            link.close(0.1)
            raise
        return link

    def _greet(self, link: Link, take_over: bool) -> Dict[str, Any]:
        """hello, and the challenge-response if the server asks for it
        (the steps are protocol.client_conn.Greeting's)."""
        greeting = Greeting(
            where=f"{self.host}:{self.port}", client=f"remoteio-py/{__version__}",
            heartbeat=self.heartbeat, session=SESSION, take_over=take_over,
            token=None if self._token is False else find_token(self._token or None))
        welcome = _fields(link.call(*greeting.hello()).result(self.connect_timeout))
        binding = auth.channel_binding(link.sock.getpeercert(binary_form=True)) if self.tls else ""
        step = greeting.on_hello(welcome, binding)
        if step is None:
            return welcome
        return greeting.on_auth(_fields(link.call(*step).result(self.connect_timeout)))

    def _on_lost(self, reason: BaseException) -> None:
        """The link failed (called by whoever read or wrote it, or the keeper)."""
        if self._keeper is None or not self._connected.is_set():
            return  # still (re)connecting: whoever is connecting sees the failure
        log.warning("connection to %s:%d lost: %s", self.host, self.port, reason)
        self._connected.clear()
        self._notify_connection(False)
        self._keeper.wake.set()

    def _reconnect(self) -> None:
        """Connect again and re-apply this client's pin setup (keeper thread).

        With take_over: the old connection may still hold our pins on the
        server (half-open: it has not noticed it is dead yet); the client
        that is really there gets them."""
        link = self._connect(take_over=True)
        self._link = link
        for pin in list(self.pins.values()):
            for op, fields in pin.setup_requests():
                try:
                    if "lease_ms" in fields:
                        # re-armed only where the Pi no longer has it (a restart, or
                        # the old link's close made the pin safe), and only for the
                        # time left: a reconnect never moves a lease's deadline
                        state = link.call("state", {"pin": pin.board}).result(self.timeout)
                        if state.get("lease"):
                            continue
                        resend = pin.lease_request()
                        if resend is None:
                            continue
                        op, fields = resend
                    # a watch's reply tells what it missed while the link was down:
                    # counted as it is read, before the first event after it
                    link.call(op, fields, pin.rewatched if op == "watch" else None
                              ).result(self.timeout)
                except LinkError as exc:
                    # no answer: this link failed too, and a client that called itself
                    # connected now would have lost this setup (a watch, a claim) for good
                    self._replay_failed(link, f"{op} on BOARD{pin.board}", exc)
                except RemoteIOError as exc:  # answered: the server refuses it, a retry would too
                    log.warning("after reconnecting, %s on BOARD%d failed: %s", op, pin.board, exc)
        try:
            self.serial_ports.reopen(link, self.timeout)
        except LinkError as exc:
            self._replay_failed(link, "reopening the serial ports", exc)
        log.info("reconnected to %s:%d; pin setup re-applied", self.host, self.port)
        self._connected.set()
        self._notify_connection(True)

    def _replay_failed(self, link: Link, what: str, exc: LinkError) -> None:
        """A reconnect's setup went unanswered: that link is dropped and the
        keeper tries again (raises)."""
        link.abort(exc)
        raise ConnectionLost(f"after reconnecting, {what} got no answer ({exc}); "
                             "the setup is re-applied on the next connection") from None

    def _notify_connection(self, connected: bool) -> None:
        callback = self._when_connection_changed
        if callback is not None and not self._closed:
            self._dispatch(callback, connected)

    @property
    def connected(self) -> bool:
        """Is the client connected to the server now?"""
        return not self._closed and self._link.lost is None

    when_connection_changed = property(
        lambda self: self._when_connection_changed,
        lambda self, callback: setattr(self, "_when_connection_changed", callback),
        doc="Called with True or False (on the dispatcher thread) when the "
            "connection is lost or comes back.")

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """Wait until connected (after a reconnect); False after *timeout*."""
        return self._connected.wait(timeout)

    @property
    def closed(self) -> bool:
        """Was :meth:`close` called?"""
        return self._closed

    @property
    def link(self) -> Link:
        """The connection now, lost or not (the liveness thread watches it)."""
        return self._link

    def reconnect(self) -> None:
        """Connect again now and re-apply this client's pin setup (the liveness
        thread calls it after a loss; raises if the server cannot be reached)."""
        self._reconnect()

    @property
    def reconnect_attempts(self) -> int:
        """Failed reconnection attempts in a row (0 while connected)."""
        return self._keeper.attempts if self._keeper is not None else 0

    def live_link(self) -> Link:
        """The connection, waiting up to the call timeout for a reconnect
        (``wait_for_reconnect``); raises ConnectionLost otherwise."""
        return self._current_link()

    def forget(self, pin: RemotePin) -> None:
        """Stop tracking *pin* (it was closed): no events, no setup on reconnect."""
        self._forget(pin)

    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` on this client's callback thread (in order)."""
        self._dispatch(callback, *args)

    def _current_link(self) -> Link:
        if self._closed:
            raise ConnectionLost("this RemoteServer is closed")
        link = self._link
        if link.lost is None:
            return link
        deadline = time.monotonic() + self.timeout
        while link.lost is not None:
            left = deadline - time.monotonic()
            if not self.wait_for_reconnect or left <= 0:
                again = ("reconnecting in the background" if self._keeper is not None
                         and self._keeper.reconnect else "no reconnect (reconnect=False)")
                raise ConnectionLost(f"not connected to {self.host}:{self.port} "
                                     f"({link.lost}); {again}")
            if self._connected.wait(left) and self._link is link:
                # the flag is from before the loss (its reader is clearing it): a moment
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
            link = self._link
        return link

    @property
    def board(self) -> Dict[str, Any]:
        """The server's board: model, revision, SoC, backend."""
        return self.welcome.get("board", {})

    @property
    def mode(self) -> str:
        return self.welcome.get("mode", "")

    @property
    def server_version(self) -> str:
        return self.welcome.get("server", "")

    # ---- requests ------------------------------------------------------------------
    def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        """Send one request and return its reply's fields (raises on refusal)."""
        return self._current_link().request(op, fields, self.timeout)

    def request_pipeline(self, requests: List[Tuple[str, Dict[str, Any]]],
                         timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        """Send several requests in one write; wait for all replies (in order)."""
        calls = self._current_link().pipeline(requests)
        return wait_all(calls, self.timeout if timeout is None else timeout)

    # ---- pins ----------------------------------------------------------------------
    def pin(self, number: PinSpec, numbering: str = "b", *, claim: bool = True) -> RemotePin:
        """The pin *number* (``'b'`` board or ``'g'`` GPIO numbering; strings
        like ``"GPIO4"`` work too). The same object comes back for the same
        pin. With *claim* (the default) the pin is claimed for this connection
        at once, so a pin held by someone else fails here with PinBusy; use
        ``claim=False`` to read or watch a pin another client drives."""
        board = pin_key(number, numbering)
        with self._pins_lock:
            pin = self._pins.get(board)
            fresh = pin is None or pin.closed
            if fresh:
                pin = self._pins[board] = RemotePin(self, board)
        if fresh and claim:
            try:
                pin.open()
            except RemoteIOError:
                self._forget(pin)
                raise
        return pin

    def _forget(self, pin: RemotePin) -> None:
        with self._pins_lock:
            if self._pins.get(pin.board) is pin:
                del self._pins[pin.board]

    @property
    def pins(self) -> Dict[int, RemotePin]:
        """The pins this client uses, by board number."""
        with self._pins_lock:
            return dict(self._pins)

    def write(self, levels: Dict[PinSpec, float], numbering: str = "b") -> None:
        """Set several outputs in one request: ``{7: 1, 11: 0, 13: 0.5}``.

        One round trip; applied in the order given, each pin by its own
        worker (not at the same instant: see docs/inputs.md)."""
        pins = {str(pin_key(p, numbering)): level for p, level in levels.items()}
        try:
            self.request("write", pins=pins)
        except RemoteIOError as exc:  # refused in part: the outcomes by pin, as read_pins keys them
            if exc.results is not None:
                exc.results = by_pin(exc.results)
            raise

    def read_pins(self, pins: Iterable[PinSpec], numbering: str = "b") -> Dict[Any, Any]:
        """Read several pins in one request: ``{board: level}`` (an expander's
        pin by its name)."""
        boards = [pin_key(p, numbering) for p in pins]
        values = self.request("read_many", pins=boards)["values"]
        return {key if ':' in key else int(key): value for key, value in values.items()}

    # ---- the server ----------------------------------------------------------------
    def i2c(self, bus: int = 1) -> "RemoteI2C":
        """I2C bus *bus* of the Pi, with smbus2's ``SMBus`` methods (docs/buses.md)."""
        from .buses import RemoteI2C
        return RemoteI2C(self, bus)

    def spi(self, bus: int = 0, device: int = 0, *, mode: Optional[int] = None,
            max_speed_hz: Optional[int] = None, bits_per_word: Optional[int] = None) -> "RemoteSPI":
        """SPI device /dev/spidev<bus>.<device> of the Pi, opened, with spidev's calls
        and attributes (docs/buses.md); its header pins are held until it is closed."""
        from .spi import RemoteSPI
        return RemoteSPI(self, bus, device, mode=mode, max_speed_hz=max_speed_hz,
                         bits_per_word=bits_per_word)

    def serial(self, port: str = "serial0", baudrate: Optional[int] = None,
               timeout: Optional[float] = None, **options: Any) -> "RemoteSerial":
        """Serial port *port* of the Pi (its configured name, or that port's
        device path), with pyserial's methods and its data pushed (docs/buses.md)."""
        from .serial import RemoteSerial
        return RemoteSerial(self, port, baudrate, timeout, **options)

    def ping(self) -> float:
        """One round trip to the server, in seconds."""
        start = time.perf_counter()
        self.request("ping")
        return time.perf_counter() - start

    def declare_expander(self, name: str, chip: str, bus: Optional[int] = None,
                         address: Optional[int] = None, poll_ms: Optional[float] = None,
                         interrupt: Optional[int] = None) -> Dict[str, Any]:
        """Add an I/O expander at run time (the server must allow it:
        ``[server] declare_expanders = true``); its pins' names."""
        return self.request("expander_declare", expander=name, chip=chip, bus=bus, address=address,
                            poll_ms=poll_ms, interrupt=interrupt)

    def info(self) -> Dict[str, Any]:
        """Uptime, pins in use and their tasks, load and memory of the server."""
        return display.Info(_fields(self.request("info")))

    def trace(self, pins: Iterable[Union[PinSpec, RemotePin]], seconds: float) -> Any:
        """Record the changes of *pins* for *seconds*, with the Pi's timestamps:
        a :class:`remoteio.client.trace.Trace` (rows, DataFrame, ``.plot()``)."""
        return trace.record(self, self._watched(pins), seconds)

    def recording(self, pins: Iterable[Union[PinSpec, RemotePin]]) -> Any:
        """Record *pins* while a ``with`` block runs; its ``.trace`` after."""
        return trace.Recorder(self, self._watched(pins))

    def _watched(self, pins: Iterable[Union[PinSpec, RemotePin]]) -> List[RemotePin]:
        return [p if isinstance(p, RemotePin) else self.pin(p, claim=False) for p in pins]

    def dashboard(self) -> Any:
        """A live ipywidget of the header (``pip install 'remoteio[jupyter]'``)."""
        from .widgets import dashboard
        return dashboard(self)

    @property
    def sim(self) -> SimControl:
        """Drive and observe the server's simulated board (sim backend only)."""
        return SimControl(self)

    @staticmethod
    def discover(timeout: float = 3.0, interfaces: Optional[Iterable[str]] = None) -> List[Any]:
        """The remoteio servers advertising on the LAN (mDNS), after listening
        *timeout* seconds: :class:`~remoteio.bridges.discovery.DiscoveredServer`
        (name, host, port, version, board, auth, tls, fingerprint...). Needs
        zeroconf (``pip install 'remoteio[discovery]'``); docs/discovery.md."""
        from ..bridges.discovery import browse
        return browse(timeout, list(interfaces) if interfaces else None)

    # ---- events and callbacks ------------------------------------------------------
    def _on_event(self, message: Dict[str, Any]) -> None:
        if "port" in message:   # a serial port's data or failure (client/serial.py)
            self.serial_ports.handle(message)
            return
        kind = message.get("event")
        pin = self._pins.get(message.get("pin"))
        if pin is None:
            return
        if kind == "change":
            pin.handle_change(message)
        elif kind in ("closed", "worker_failed"):
            pin.handle_unwatched()
            if kind == "worker_failed":
                log.warning("server: %s", message.get("message"))
        elif kind == "task_failed":
            pin.handle_task_failed(message)
        elif kind == "lease_expired":
            pin.handle_lease_expired(message)

    def _dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        if self._dispatcher is None:
            with self._pins_lock:
                if self._dispatcher is None:
                    self._dispatcher = threading.Thread(
                        target=self._dispatch_loop, name="remoteio-callbacks", daemon=True)
                    self._dispatcher.start()
        self._dispatch_queue.put((callback, args))

    def _dispatch_loop(self) -> None:
        while True:
            item = self._dispatch_queue.get()
            if item is None:
                return
            callback, args = item
            try:
                callback(*args)
            except Exception:
                log.exception("a remoteio callback raised")

    # ---- closing -------------------------------------------------------------------
    def close(self, timeout: Optional[float] = None) -> None:
        """Close the connection once outstanding replies are in (waiting at
        most *timeout* seconds, default the call timeout). The server then
        soft-closes this client's pins (queued work still runs in wait mode)."""
        if self._closed:
            return
        self._closed = True
        if self._keeper is not None:
            self._keeper.wake.set()
        self._link.close(self.timeout if timeout is None else timeout)
        if self._dispatcher is not None:
            self._dispatch_queue.put(None)
            if threading.current_thread() is not self._dispatcher:
                self._dispatcher.join(self.timeout)

    def __enter__(self) -> "RemoteServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<RemoteServer {self.host}:{self.port} {state}>"

    # ---- notebooks (remoteio.client.display renders) ---------------------------------------
    def view(self) -> Dict[str, Any]:
        info, error = None, ""
        if self.connected:
            try:
                info = self.info()
            except RemoteIOError as exc:
                error = str(exc)
        return display.view_of(self, info, error)

    def _repr_html_(self) -> str:
        return display.server_html(self.view())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(display.server_text(self.view()))


def _fields(reply: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}
