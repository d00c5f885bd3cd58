"""A pin of an :class:`~remoteio.aio.AsyncRemoteServer`: RemotePin's methods, awaited.

>>> async def blink(server):                                      # doctest: +SKIP
...     led = await server.pin(7)
...     await led.blink(on_time=0.2, off_time=0.2, time_ms=2000, wait=True)
...     button = await (await server.pin(11)).as_input(pull="up")
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Callable, Dict, List, Mapping, Optional, Tuple, Union

from ..client import display
from ..errors import PinClosed, ServerError
from ..client.pinlogic import (HeldLease, PinEvent, adapt, binary, change_event, check_task, lease_expiry,
                               lease_left, rewatch_gap, setup_requests, sync_budget, task_failure)
from ..pins import BOARD_TO_BCM, PinSpec, describe
from .link import settle_all

log = logging.getLogger(__name__)

#: events a slow ``events()`` reader may fall behind by before the oldest go
EVENT_QUEUE = 256


class AsyncRemotePin:
    """One board-numbered pin; every request is a coroutine."""

    def __init__(self, server: Any, board: int):
        self._server = server
        self.board = board
        self.gpio = BOARD_TO_BCM.get(board)  # None for an expander's pin ("mcp0:A3")
        self._closed = False
        self._watching = False
        self._watch_lock: Optional[asyncio.Lock] = None  # made on the loop, when first needed
        self._claimed = False
        self._seq = 0
        self._last_value: Any = None  # the level the last event (or watch reply) gave
        self._carried = 0  # missed over a reconnect, told with the next event
        self.missed_events = 0
        self.setup: Dict[str, Any] = {}
        self.restore_setup: Dict[str, Any] = {}
        self._lease: Optional[HeldLease] = None
        self.last_task_failure: Optional[ServerError] = None
        self.leases_expired = 0   # how many of this pin's leases ran out on the Pi
        self._on_lease_expired: Optional[Callable] = None
        self._callbacks: Dict[str, Optional[Callable[[PinEvent], Any]]] = {
            "changed": None, "high": None, "low": None}
        #: each reader's queue -> the events dropped from its head since it last took one
        self._queues: Dict["asyncio.Queue[PinEvent]", int] = {}
        self._subscribers: List[Callable[[PinEvent], None]] = []

    def subscribe(self, listener: Callable[[PinEvent], None]) -> None:
        """Hand every change to *listener* too (on the loop: it must not block)."""
        self._subscribers = self._subscribers + [listener]

    def unsubscribe(self, listener: Callable[[PinEvent], None]) -> None:
        self._subscribers = [s for s in self._subscribers if s is not listener]

    async def trace(self, seconds: float) -> Any:
        """Record this pin's changes for *seconds* (a remoteio.client.trace.Trace)."""
        return await self._server.trace([self], seconds)

    async def widget(self, pwm: Optional[bool] = None) -> Any:
        """A live ipywidget of this pin (``pip install 'remoteio[jupyter]'``)."""
        from ..client.widgets import pin_widget_async
        return await pin_widget_async(self, pwm)

    def _repr_html_(self) -> str:
        return display.pin_html(self.board, self.gpio, None, "closed" if self._closed else
                                "open (await pin.state() for what it does)")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(display.pin_text(self.board, self.gpio, None, "closed" if self._closed
                                      else "open"))

    def __repr__(self) -> str:
        return f"<AsyncRemotePin {describe(self.board)} " \
               f"{'closed' if self._closed else 'open'}>"

    # ---- requests ----------------------------------------------------------------------------
    async def _request(self, op: str, **fields: Any) -> Dict[str, Any]:
        self._check_open()
        return await self._server.request(op, pin=self.board, **fields)

    def _check_open(self) -> None:
        if self._closed:
            raise PinClosed(f"{describe(self.board)} is closed; use server.pin() to open it again")

    async def _task(self, op: str, wait: bool, lease_ms: float, revert: str, **fields: Any) -> None:
        check_task(op, lease_ms, revert, fields)
        if lease_ms:
            fields.update(lease_ms=lease_ms, revert=revert)
        sent = time.monotonic()  # the Pi's deadline is no earlier than this + lease_ms
        if not wait:
            self._check_open()
            await self._server.request(op, pin=self.board, **fields)
        else:
            await self._until_idle([(op, dict(fields, pin=self.board))], None,
                                   floor_ms=fields.get("time_ms", 0))
        self._claimed = True
        self._lease = (op, fields, sent + lease_ms / 1000.0) if lease_ms else None

    def lease_request(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """The leased write a reconnect re-sends now (None: none, or it has run
        out): asked at the moment it goes out, so its time left is exact."""
        resend = lease_left(self._lease, time.monotonic())
        return None if resend is None or self._closed else (resend[0], dict(resend[1], pin=self.board))

    def setup_requests(self) -> List[Tuple[str, Dict[str, Any]]]:
        if self._closed:
            return []
        return setup_requests(self.board, claimed=self._claimed, setup=self.setup,
                              restore_setup=self.restore_setup,
                              lease=lease_left(self._lease, time.monotonic()),
                              watching=self._watching)

    async def open(self) -> "AsyncRemotePin":
        """Claim the pin for this connection (``server.pin()`` does it)."""
        await self._request("open")
        self._claimed = True
        return self

    async def on(self, time_ms: float = 0, *, wait: bool = False, lease_ms: float = 0,
                 revert: str = "safe") -> None:
        """Switch on; with *time_ms*, switch off again after that long."""
        await self._task("on", wait, lease_ms, revert, time_ms=time_ms)

    async def off(self, time_ms: float = 0, *, wait: bool = False, lease_ms: float = 0,
                  revert: str = "safe") -> None:
        """Switch off; with *time_ms*, hold the pin off for that long (wait mode)."""
        await self._task("off", wait, lease_ms, revert, time_ms=time_ms)

    async def value(self, time_ms: float = 0, level: float = 1.0, *, wait: bool = False,
                    lease_ms: float = 0, revert: str = "safe") -> None:
        """Drive a PWM *level* between 0 and 1 (then off after *time_ms*)."""
        await self._task("value", wait, lease_ms, revert, time_ms=time_ms, level=level)

    async def blink(self, time_ms: float = 0, on_time: float = 1.0, off_time: float = 1.0,
                    *, wait: bool = False, lease_ms: float = 0, revert: str = "safe") -> None:
        """Blink until replaced, or for *time_ms*."""
        await self._task("blink", wait, lease_ms, revert, time_ms=time_ms, on_time=on_time,
                         off_time=off_time)

    async def pulse(self, time_ms: float = 0, fade_in_time: float = 1.0,
                    fade_out_time: float = 1.0, *, wait: bool = False, lease_ms: float = 0,
                    revert: str = "safe") -> None:
        """Fade in and out with PWM until replaced, or for *time_ms*."""
        await self._task("pulse", wait, lease_ms, revert, time_ms=time_ms,
                         fade_in_time=fade_in_time, fade_out_time=fade_out_time)

    async def as_input(self, pull: Optional[str] = None, bounce_ms: float = 0) -> "AsyncRemotePin":
        """Make the pin an input (*pull* 'up', 'down' or None; debounce on the Pi)."""
        await self._request("input", pull=pull, bounce_ms=bounce_ms)
        self.setup = {"mode": "input", "pull": pull, "bounce_ms": bounce_ms}
        self._claimed, self._lease = True, None
        return self

    async def as_output(self) -> "AsyncRemotePin":
        """Make the pin an output again (off)."""
        await self._request("output")
        self.setup = {"mode": "output"}
        self._claimed = True
        return self

    async def read(self) -> Any:
        """The pin's level now, read on the Pi."""
        return (await self._request("read"))["value"]

    async def state(self) -> Dict[str, Any]:
        """What the pin is doing: mode, value, task, time left, queue length..."""
        return await self._request("state")

    async def sync(self, timeout: Optional[float] = None) -> None:
        """Wait until the pin's running and queued tasks have ended (see RemotePin.sync)."""
        await self._until_idle([], timeout)

    async def _until_idle(self, before: List[Tuple[str, Dict[str, Any]]],
                          timeout: Optional[float], floor_ms: float = 0.0) -> None:
        self._check_open()
        server = self._server
        pin = {"pin": self.board}
        requests = before + [("state", pin), ("sync", pin)]
        link = await server.live_link()
        futures = link.pipeline(requests)
        ops = [op for op, _ in requests]
        if timeout is not None:
            await settle_all(futures, ops, timeout)
            return
        try:
            state = (await settle_all(futures[:-1], ops[:-1], server.timeout))[-1]
        except BaseException:
            futures[-1].cancel()  # nobody will wait for the sync either
            raise
        await settle_all(futures[-1:], ops[-1:], sync_budget(state, server.timeout, floor_ms))

    async def close(self) -> None:
        """Release the pin: at once (nowait) or after its queued work (wait)."""
        if self._closed:
            return
        await self._request("close")
        self._closed = True
        self._watching = False
        self._server.forget(self)

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> "AsyncRemotePin":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    # ---- events ------------------------------------------------------------------------------
    async def watch(self) -> None:
        """Subscribe to change events (a callback or ``events()`` does it for you)."""
        if self._watching:
            return
        if self._watch_lock is None:
            self._watch_lock = asyncio.Lock()
        async with self._watch_lock:  # a callback's watch and an awaited one: one request
            if not self._watching:
                self._check_open()
                # the numbering starts from the reply's as it is read, before the
                # first event after it (which may come in the same read)
                link = await self._server.live_link()
                await link.call("watch", {"pin": self.board}, self._server.timeout, self._watched)
                self._watching = True

    def _watched(self, reply: Mapping[str, Any]) -> None:
        self._seq = reply.get("seq", 0)
        self._last_value = reply.get("value")

    def rewatched(self, reply: Mapping[str, Any]) -> None:
        """The reply to this pin's watch on a fresh connection (a reconnect):
        what it missed meanwhile counts in ``missed_events`` and in the next
        event's ``missed`` (as RemotePin.rewatched)."""
        gap = rewatch_gap(self._seq, self._last_value, reply)
        self.missed_events += gap
        self._carried += gap
        self._seq = reply.get("seq", 0)
        self._last_value = reply.get("value")

    @property
    def watching(self) -> bool:
        return self._watching

    async def unwatch(self) -> None:
        if self._watching:
            self._watching = False
            await self._request("unwatch")

    def _set_callback(self, kind: str, callback: Optional[Callable]) -> None:
        self._callbacks[kind] = adapt(callback)
        if callback is not None and not self._watching:
            task = asyncio.get_running_loop().create_task(self.watch())
            task.add_done_callback(_log_failure)

    when_changed = property(lambda self: self._callbacks["changed"],
                            lambda self, cb: self._set_callback("changed", cb),
                            doc="Called with a PinEvent on every change (a coroutine "
                                "function is awaited), in order, on the dispatcher task.")
    when_high = property(lambda self: self._callbacks["high"],
                         lambda self, cb: self._set_callback("high", cb))
    when_low = property(lambda self: self._callbacks["low"],
                        lambda self, cb: self._set_callback("low", cb))
    when_lease_expired = property(lambda self: self._on_lease_expired,
                                  lambda self, cb: setattr(self, "_on_lease_expired", adapt(cb)),
                                  doc="Called with the level the Pi set when a lease this "
                                      "client holds ran out unrenewed (no watch needed).")

    async def events(self) -> AsyncIterator[PinEvent]:
        """``async for event in pin.events()``: every change from now on (the
        watch is started for you); at most EVENT_QUEUE wait unread, older
        ones are dropped and counted in the next event's ``missed``."""
        queue: "asyncio.Queue[PinEvent]" = asyncio.Queue(EVENT_QUEUE)
        self._queues[queue] = 0
        try:
            await self.watch()
            while True:
                event = await queue.get()
                dropped = self._queues.get(queue, 0)
                if dropped:   # the ones dropped just before it (a full queue) are its missed
                    self._queues[queue] = 0
                    event = event._replace(missed=event.missed + dropped)
                yield event
        finally:
            self._queues.pop(queue, None)

    async def wait_for_edge(self, edge: str = "both",
                            timeout: Optional[float] = None) -> Optional[PinEvent]:
        """The next change (``'rising'``, ``'falling'`` or ``'both'``), or None after *timeout*."""
        if edge not in ("both", "rising", "falling"):
            raise ValueError("edge must be 'both', 'rising' or 'falling'")
        return await self._next(lambda e: edge == "both" or e.edge == edge, timeout)

    async def wait_for_value(self, value: int, timeout: Optional[float] = None) -> bool:
        """Wait until the pin reads *value* (0 or 1); False after *timeout*."""
        wanted = binary("value", value)
        queue: "asyncio.Queue[PinEvent]" = asyncio.Queue(EVENT_QUEUE)
        self._queues[queue] = 0
        try:
            await self.watch()
            if await self.read() == wanted:  # a PWM output's 0.3 is neither
                return True
            return await self._from(queue, lambda e: e.value == wanted,
                                    timeout) is not None
        finally:
            self._queues.pop(queue, None)

    async def _next(self, match: Callable[[PinEvent], bool],
                    timeout: Optional[float]) -> Optional[PinEvent]:
        queue: "asyncio.Queue[PinEvent]" = asyncio.Queue(EVENT_QUEUE)
        self._queues[queue] = 0
        try:
            await self.watch()
            return await self._from(queue, match, timeout)
        finally:
            self._queues.pop(queue, None)

    @staticmethod
    async def _from(queue: "asyncio.Queue[PinEvent]", match: Callable[[PinEvent], bool],
                    timeout: Optional[float]) -> Optional[PinEvent]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return None
            try:
                event = await asyncio.wait_for(queue.get(), left)
            except asyncio.TimeoutError:
                return None
            if match(event):
                return event

    def handle_event(self, message: Dict[str, Any]) -> None:
        """An event for this pin (on the loop, from the link: never blocks)."""
        kind = message.get("event")
        if kind == "change":
            event, missed = change_event(self.board, message, self._seq)
            if self._carried:
                event, self._carried = event._replace(missed=missed + self._carried), 0
            self._seq = event.seq
            self._last_value = event.value
            self.missed_events += missed
            for listener in self._subscribers:
                try:
                    listener(event)
                except Exception:
                    log.exception("a listener of BOARD%d raised", self.board)
            for queue in list(self._queues):
                if queue.full():
                    oldest = queue.get_nowait()
                    self._queues[queue] += 1 + oldest.missed
                    self.missed_events += 1
                queue.put_nowait(event)
            for kind in ("changed", "high" if event.edge == "rising" else "low"):
                callback = self._callbacks[kind]
                if callback is not None:
                    self._server.dispatch(callback, event)
        elif kind in ("closed", "worker_failed"):
            self._watching = False
            if kind == "worker_failed":
                log.warning("server: %s", message.get("message"))
        elif kind == "task_failed":
            self.last_task_failure = task_failure(self.board, message)
            log.warning("%s", self.last_task_failure)
        elif kind == "lease_expired":
            self.leases_expired += 1
            log.warning("%s", lease_expiry(self.board, message))
            if self._on_lease_expired is not None:
                self._server.dispatch(self._on_lease_expired, message.get("value"))


def _log_failure(task: "asyncio.Task[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("watching for a callback failed: %s", task.exception())


class AsyncSimControl:
    """The server's simulated board (the ``sim`` operation), awaited."""

    def __init__(self, server: Any):
        self._server = server

    async def _sim(self, action: str, **fields: Any) -> Dict[str, Any]:
        return await self._server.request("sim", action=action, **fields)

    async def drive(self, pin: PinSpec, level: Union[int, bool, None]) -> None:
        if level is None:  # let go, as release()
            await self.release(pin)
            return
        await self._sim("drive", pin=pin, level=binary("level", level))

    async def release(self, pin: PinSpec) -> None:
        await self._sim("release", pin=pin)

    async def wire(self, pin: PinSpec, to: PinSpec) -> None:
        await self._sim("wire", pin=pin, to=to)

    async def echo(self, trigger: PinSpec, echo: PinSpec, width_us: float) -> None:
        await self._sim("echo", pin=trigger, to=echo, width_us=width_us)

    async def unwire(self, pin: PinSpec) -> None:
        await self._sim("unwire", pin=pin)

    async def levels(self) -> Dict[int, int]:
        return {int(b): v for b, v in (await self._sim("levels"))["levels"].items()}

    async def history(self, pin: PinSpec, since_ns: int = 0) -> List[Tuple[int, float]]:
        reply = await self._sim("history", pin=pin, since_ns=since_ns)
        return [tuple(entry) for entry in reply["history"]]
