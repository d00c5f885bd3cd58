"""The asyncio client: :class:`AsyncRemoteServer`, a connection to one remoteio server.

The same features and names as :class:`remoteio.RemoteServer`, awaited:

>>> async def main():                                              # doctest: +SKIP
...     async with AsyncRemoteServer("pi.local") as server:
...         led = await server.pin(7)
...         await led.on(time_ms=2000)
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from ..client import display, trace
from .._version import __version__
from ..client.client import DEFAULT_PORT, SESSION
from ..errors import ConnectFailed, ConnectionLost, LinkError, RemoteIOError
from ..client.liveness import FIRST_BACKOFF, MAX_BACKOFF
from ..client.pinlogic import by_pin
from ..pins import PinSpec, pin_key
from ..protocol import auth
from ..protocol.client_conn import Greeting
from ..tls import PLAIN_HINT, ClientTLS, TLSVerifyFailed, Trust, handshake_failed
from ..tokens import find_token
from .link import AsyncLink, settle_all
from .pin import AsyncRemotePin, AsyncSimControl

log = logging.getLogger(__name__)


class AsyncRemoteServer:
    """A connection to a remoteio server, for asyncio (and Jupyter's top-level
    ``await``). ``async with AsyncRemoteServer(host) as server`` connects and
    closes; every argument means what it means for RemoteServer."""

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
        self._tls = ClientTLS.resolve(tls, fingerprint, cafile, tofu, cert, key)
        self._tofu = tofu
        self.tls = self._tls.enabled
        self.heartbeat = float(heartbeat)
        self.reconnect = reconnect
        self.wait_for_reconnect = wait_for_reconnect
        self.take_over = take_over
        self.welcome: Dict[str, Any] = {}
        self._pins: Dict[int, AsyncRemotePin] = {}
        self._link: Optional[AsyncLink] = None
        self._closed = False
        self._connected: Optional[asyncio.Event] = None
        self._wake: Optional[asyncio.Event] = None
        self._keeper: Optional["asyncio.Task[None]"] = None
        self._callbacks: Optional["asyncio.Queue[Any]"] = None
        self._dispatcher: Optional["asyncio.Task[None]"] = None
        self._when_connection_changed: Optional[Callable[..., Any]] = None
        self.attempts = 0  # failed reconnection attempts in a row
        self._last_info: Optional[Dict[str, Any]] = None  # what the display shows

    # ---- connection ---------------------------------------------------------------------
    async def connect(self) -> "AsyncRemoteServer":
        """Connect and greet (``async with`` does it)."""
        self._connected, self._wake = asyncio.Event(), asyncio.Event()
        self._link = await self._open()
        self._connected.set()
        if self.heartbeat or self.reconnect:
            self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="remoteio-keeper")
        return self

    async def _open(self) -> AsyncLink:
        where = f"{self.host}:{self.port}"
        loop = asyncio.get_running_loop()
        trust = None
        if self.tls:
            trust = Trust(self.host, self.port, cafile=self._tls.cafile,
                          fingerprint=self._tls.fingerprint, tofu=self._tofu,
                          cert=self._tls.cert, key=self._tls.key)
        try:
            transport, link = await asyncio.wait_for(loop.create_connection(
                lambda: AsyncLink(self._on_event, self._on_lost), self.host, self.port,
                ssl=trust.context if trust else None,
                server_hostname=(trust.server_hostname or "") if trust else None),
                self.connect_timeout)
        except ssl.SSLError as exc:
            raise handshake_failed(where, exc) from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {where}: {exc or 'timed out'}") from None
        binding = ""
        if trust is not None:
            der = transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
            try:
                trust.check(der)
            except TLSVerifyFailed:
                transport.abort()
                raise
            binding = auth.channel_binding(der)
        try:
            self.welcome = await self._greet(link, binding)
        except LinkError as exc:
            transport.abort()
            if link.conn.refusal is not None:   # it said why before it closed (server_busy)
                raise link.conn.refusal from None
            hint = "" if trust is not None else f"; {PLAIN_HINT}"
            raise ConnectFailed(f"{where} did not greet as a remoteio server: {exc}{hint}") from None
        except BaseException:
            transport.abort()
            raise
        return link

    async def _greet(self, link: AsyncLink, binding: str) -> Dict[str, Any]:
        greeting = Greeting(
            where=f"{self.host}:{self.port}", client=f"remoteio-py-aio/{__version__}",
            heartbeat=self.heartbeat, session=SESSION, take_over=self.take_over,
            token=None if self._token is False else find_token(self._token or None))
        welcome = await link.call(*greeting.hello(), self.connect_timeout)
        step = greeting.on_hello(welcome, binding)
        if step is None:
            return welcome
        return greeting.on_auth(await link.call(*step, self.connect_timeout))

    def _on_lost(self, reason: BaseException) -> None:
        if self._closed or self._connected is None or not self._connected.is_set():
            return
        log.warning("connection to %s:%d lost: %s", self.host, self.port, reason)
        self._connected.clear()
        self._notify_connection(False)
        self._wake.set()

    async def _keep(self) -> None:
        """Heartbeats when nothing was sent for a while; reconnects with backoff
        (the sync client's Keeper, as a task)."""
        backoff = FIRST_BACKOFF
        jitter = random.Random()
        while not self._closed:
            link = self._link
            if link.lost is not None:
                if not self.reconnect:
                    return
                try:
                    await self._reconnect()
                except (RemoteIOError, OSError) as exc:
                    self.attempts += 1
                    log.info("reconnecting to %s:%d failed (%s); next try in %.1f s",
                             self.host, self.port, exc, backoff)
                    await self._sleep(backoff * jitter.uniform(0.8, 1.2))
                    backoff = min(MAX_BACKOFF, backoff * 2)
                else:
                    self.attempts, backoff = 0, FIRST_BACKOFF
                continue
            if not self.heartbeat:
                await self._sleep(None)
                continue
            quiet = link.conn.quiet()
            if quiet < self.heartbeat:
                await self._sleep(self.heartbeat - quiet)
                continue
            try:
                await link.call("ping", {}, self.timeout)
            except LinkError as exc:
                link.abort(exc)
            except RemoteIOError as exc:  # refused, yet answered: the link is alive
                log.debug("heartbeat ping refused: %s", exc)

    async def _sleep(self, seconds: Optional[float]) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _reconnect(self) -> None:
        link = await self._open()
        self._link = link
        for pin in list(self._pins.values()):
            for op, fields in pin.setup_requests():
                try:
                    if "lease_ms" in fields:
                        # re-armed only where the Pi no longer has it (a restart, or
                        # the old link's close made the pin safe), and only for the
                        # time left: a reconnect never moves a lease's deadline
                        state = await link.call("state", {"pin": pin.board}, self.timeout)
                        if state.get("lease"):
                            continue
                        resend = pin.lease_request()
                        if resend is None:
                            continue
                        op, fields = resend
                    # a watch's reply tells what it missed while the link was down:
                    # counted as it is read, before the first event after it
                    await link.call(op, fields, self.timeout,
                                    pin.rewatched if op == "watch" else None)
                except LinkError as exc:
                    # no answer: this link failed too; calling it connected would lose
                    # this setup for good (the sync client's rule, docs/reliability.md)
                    link.abort(exc)
                    raise ConnectionLost(f"after reconnecting, {op} on BOARD{pin.board} got no "
                                         f"answer ({exc}); the setup is re-applied on the next "
                                         "connection") from None
                except RemoteIOError as exc:  # answered: the server refuses it, a retry would too
                    log.warning("after reconnecting, %s on BOARD%d failed: %s", op, pin.board, exc)
        log.info("reconnected to %s:%d; pin setup re-applied", self.host, self.port)
        self._connected.set()
        self._notify_connection(True)

    def _notify_connection(self, connected: bool) -> None:
        if self._when_connection_changed is not None and not self._closed:
            self.dispatch(self._when_connection_changed, connected)

    when_connection_changed = property(
        lambda self: self._when_connection_changed,
        lambda self, callback: setattr(self, "_when_connection_changed", callback),
        doc="Called with True or False (a coroutine function is awaited) when "
            "the connection is lost or comes back.")

    @property
    def connected(self) -> bool:
        return not self._closed and self._link is not None and self._link.lost is None

    async def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """Wait until connected (after a reconnect); False after *timeout*."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def live_link(self) -> AsyncLink:
        link = self._link
        if link is not None and link.lost is None and not self._closed:
            return link
        if self._closed or link is None:
            raise ConnectionLost("this AsyncRemoteServer is closed (or not connected yet)")
        deadline = time.monotonic() + self.timeout
        while link.lost is not None:
            left = deadline - time.monotonic()
            if not self.wait_for_reconnect or left <= 0:
                again = ("reconnecting in the background" if self.reconnect
                         else "no reconnect (reconnect=False)")
                raise ConnectionLost(f"not connected to {self.host}:{self.port} "
                                     f"({link.lost}); {again}")
            await self.wait_connected(left)
            link = self._link
        return link

    board = property(lambda self: self.welcome.get("board", {}), doc="The server's board.")
    mode = property(lambda self: self.welcome.get("mode", ""))
    server_version = property(lambda self: self.welcome.get("server", ""))

    # ---- requests ----------------------------------------------------------------------------
    async def request(self, op: str, **fields: Any) -> Dict[str, Any]:
        """Send one request; its reply's fields (raises on refusal)."""
        link = self._link
        if link is None or link.lost is not None or self._closed:
            link = await self.live_link()  # raises, or waits for a reconnect
        return await link.call(op, fields, self.timeout)

    async def request_pipeline(self, requests: List[Tuple[str, Dict[str, Any]]],
                               timeout: Optional[float] = None) -> List[Dict[str, Any]]:
        """Send several requests in one write; all replies, in order."""
        link = await self.live_link()
        await link.writable(self.timeout)
        return await settle_all(link.pipeline(requests), [op for op, _ in requests],
                                self.timeout if timeout is None else timeout)

    # ---- pins ----------------------------------------------------------------------------------
    async def pin(self, number: PinSpec, numbering: str = "b", *,
                  claim: bool = True) -> AsyncRemotePin:
        """The pin *number* (see RemoteServer.pin), claimed unless *claim* is False."""
        board = pin_key(number, numbering)
        pin = self._pins.get(board)
        fresh = pin is None or pin.closed
        if fresh:
            pin = self._pins[board] = AsyncRemotePin(self, board)
        if fresh and claim:
            try:
                await pin.open()
            except BaseException:
                self.forget(pin)
                raise
        return pin

    def forget(self, pin: AsyncRemotePin) -> None:
        if self._pins.get(pin.board) is pin:
            del self._pins[pin.board]

    @property
    def pins(self) -> Dict[int, AsyncRemotePin]:
        return dict(self._pins)

    async def write(self, levels: Dict[PinSpec, float], numbering: str = "b") -> None:
        """Set several outputs in one request: ``{7: 1, 11: 0, 13: 0.5}``."""
        try:
            await self.request("write", pins={str(pin_key(p, numbering)): level
                                              for p, level in levels.items()})
        except RemoteIOError as exc:  # refused in part: the outcomes by pin
            if exc.results is not None:
                exc.results = by_pin(exc.results)
            raise

    async def read_pins(self, pins: Iterable[PinSpec], numbering: str = "b") -> Dict[Any, Any]:
        """Read several pins in one request: ``{board: level}`` (an expander's
        pin by its name)."""
        values = (await self.request("read_many", pins=[pin_key(p, numbering) for p in pins]))["values"]
        return {key if ':' in key else int(key): value for key, value in values.items()}

    async def ping(self) -> float:
        """One round trip to the server, in seconds."""
        start = time.perf_counter()
        await self.request("ping")
        return time.perf_counter() - start

    async def declare_expander(self, name: str, chip: str, bus: Optional[int] = None,
                               address: Optional[int] = None, poll_ms: Optional[float] = None,
                               interrupt: Optional[int] = None) -> Dict[str, Any]:
        """Add an I/O expander at run time (``[server] declare_expanders = true``)."""
        return await self.request("expander_declare", expander=name, chip=chip, bus=bus,
                                  address=address, poll_ms=poll_ms, interrupt=interrupt)

    async def info(self) -> Dict[str, Any]:
        """Uptime, pins in use and their tasks, load and memory of the server."""
        self._last_info = display.Info(await self.request("info"))
        return self._last_info

    async def trace(self, pins: Iterable[Union[PinSpec, AsyncRemotePin]], seconds: float) -> Any:
        """Record the changes of *pins* for *seconds* (a remoteio.client.trace.Trace)."""
        watched = [p if isinstance(p, AsyncRemotePin) else await self.pin(p, claim=False)
                   for p in pins]
        return await trace.record_async(self, watched, seconds)

    @property
    def sim(self) -> AsyncSimControl:
        """Drive and observe the server's simulated board (sim backend only)."""
        return AsyncSimControl(self)

    # ---- events and callbacks ------------------------------------------------------------
    def _on_event(self, message: Dict[str, Any]) -> None:
        pin = self._pins.get(message.get("pin"))
        if pin is not None:
            pin.handle_event(message)

    def dispatch(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run *callback* on the dispatcher task, in order; a coroutine is awaited."""
        if self._callbacks is None:
            self._callbacks = asyncio.Queue()
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch_loop(), name="remoteio-callbacks")
        self._callbacks.put_nowait((callback, args))

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._callbacks.get()
            if item is None:  # close(): the callbacks queued before it have run
                return
            callback, args = item
            try:
                outcome = callback(*args)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("a remoteio callback raised")

    # ---- closing --------------------------------------------------------------------------
    async def close(self, timeout: Optional[float] = None) -> None:
        """Close once outstanding replies are in (at most *timeout* s)."""
        if self._closed:
            return
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        if self._link is not None:
            await self._link.close(self.timeout if timeout is None else timeout)
        if self._dispatcher is not None:  # as the sync client: queued callbacks still run
            self._callbacks.put_nowait(None)
            done, _ = await asyncio.wait([self._dispatcher], timeout=self.timeout)
            if not done:
                self._dispatcher.cancel()
                await asyncio.gather(self._dispatcher, return_exceptions=True)

    async def __aenter__(self) -> "AsyncRemoteServer":
        return await self.connect()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def view(self) -> Dict[str, Any]:
        return display.view_of(self, self._last_info, "await server.info() to list them",
                               title="AsyncRemoteServer")

    def _repr_html_(self) -> str:  # pins as of the last info(): display cannot await
        return display.server_html(self.view())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(display.server_text(self.view()))

    def __repr__(self) -> str:
        return f"<AsyncRemoteServer {self.host}:{self.port} " \
               f"{'connected' if self.connected else 'closed'}>"
