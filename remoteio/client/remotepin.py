"""A pin on a remote Pi, used as if it were local.

Every method returns once the pin's worker on the Pi has accepted the task
(or raises the reason it refused); timing (``time_ms``, blink, pulse) happens
on the Pi. Pass ``wait=True`` to return only once the task has ended.

>>> from remoteio import RemoteServer                      # doctest: +SKIP
>>> with RemoteServer("pi.local") as server:               # doctest: +SKIP
...     led = server.pin(7, "b")    # physical pin 7 = GPIO4
...     led.on(time_ms=2000)        # on for 2 s, timed on the Pi
...     led.blink(on_time=0.2, off_time=0.2)
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from . import display
from ..errors import PinClosed, RemoteIOError, ServerError
from ..pins import BOARD_TO_BCM, describe
from .link import abandon, wait_all
from .pinlogic import (HeldLease, PinEvent, adapt, binary, change_event, check_task, lease_expiry, lease_left,
                       rewatch_gap, setup_requests, sync_budget, task_failure)

if TYPE_CHECKING:  # the server hands itself to its pins
    from .client import RemoteServer

__all__ = ["RemotePin", "PinEvent"]

log = logging.getLogger(__name__)


class RemotePin:
    """One board-numbered pin of a :class:`~remoteio.RemoteServer`."""

    def __init__(self, server: "RemoteServer", board: int):
        self._server = server
        self.board = board
        self.gpio = BOARD_TO_BCM.get(board)  # None for an expander's pin ("mcp0:A3")
        self._closed = False
        self._watching = False
        self._seq = 0
        self._last_value: Any = None  # the level the last event (or watch reply) gave
        self._carried = 0  # missed over a reconnect, told with the next event
        self.missed_events = 0
        self._cond = threading.Condition()
        self._events: Deque[Tuple[int, PinEvent]] = deque(maxlen=256)
        self._event_count = 0
        self._callbacks: Dict[str, Optional[Callable[[PinEvent], None]]] = {
            "changed": None, "high": None, "low": None}
        #: the client's own record of the pin's setup, re-applied after a reconnect
        self.setup: Dict[str, Any] = {}
        self._claimed = False
        self._lease: Optional[HeldLease] = None
        #: fields of a raw ``setup`` op to replay after a reconnect (the
        #: gpiozero pin factory keeps its pin's configuration here)
        self.restore_setup: Dict[str, Any] = {}
        #: the last queued task the Pi could not run (a ``task_failed``
        #: event); the next sync() raises it too
        self.last_task_failure: Optional[ServerError] = None
        #: how many of this pin's leases ran out on the Pi (``lease_expired`` events)
        self.leases_expired = 0
        self._on_lease_expired: Optional[Callable] = None
        #: who else hears every change (traces, widgets): see subscribe()
        self._subscribers: List[Callable[[PinEvent], None]] = []

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RemotePin {describe(self.board)} {state}>"

    def _shown(self) -> Tuple[Optional[Dict[str, Any]], str]:
        if self._closed:
            return None, "closed"
        try:
            return self.state(), ""
        except RemoteIOError as exc:
            return None, str(exc)

    def _repr_html_(self) -> str:
        return display.pin_html(self.board, self.gpio, *self._shown())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(display.pin_text(self.board, self.gpio, *self._shown()))

    # ---- requests ----------------------------------------------------------------
    def _request(self, op: str, **fields: Any) -> Dict[str, Any]:
        self._check_open()
        return self._server.request(op, pin=self.board, **fields)

    def _check_open(self) -> None:
        if self._closed:
            raise PinClosed(f"{describe(self.board)} is closed; use server.pin() to open it again")

    def _task(self, op: str, wait: bool, lease_ms: float, revert: str, **fields: Any) -> None:
        check_task(op, lease_ms, revert, fields)
        if fields["time_ms"] == 0 and fields["time_ms"] is not False:
            del fields["time_ms"]  # the protocol's default: a smaller frame to write and read
        if lease_ms:
            fields.update(lease_ms=lease_ms, revert=revert)
        sent = time.monotonic()  # the Pi's deadline is no earlier than this + lease_ms
        if not wait:
            self._check_open()
            server = self._server  # straight to the link: the commonest call, one layer less
            server.live_link().request(op, {"pin": self.board, **fields}, server.timeout)
        else:
            self._until_idle([(op, dict(fields, pin=self.board))], None,
                             floor_ms=fields.get("time_ms", 0))
        self._claimed = True
        self._lease = (op, fields, sent + lease_ms / 1000.0) if lease_ms else None

    def lease_request(self) -> Optional[Tuple[str, Dict[str, Any]]]:
        """The leased write a reconnect re-sends now (None: none, or it has run
        out): asked at the moment it goes out, so its time left is exact."""
        resend = lease_left(self._lease, time.monotonic())
        return None if resend is None or self._closed else (resend[0], dict(resend[1], pin=self.board))

    def setup_requests(self) -> List[Tuple[str, Dict[str, Any]]]:
        """What re-creates this pin's setup on a fresh connection (a reconnect):
        the claim, the input configuration, a lease still held, the watch."""
        if self._closed:
            return []
        return setup_requests(self.board, claimed=self._claimed, setup=self.setup,
                              restore_setup=self.restore_setup,
                              lease=lease_left(self._lease, time.monotonic()),
                              watching=self._watching)

    def open(self) -> "RemotePin":
        """Claim the pin for this connection (:meth:`RemoteServer.pin` does it)."""
        self._request("open")
        self._claimed = True
        return self

    # Every task takes, besides its own fields:
    #   wait:      return only once the task has ended (not just been accepted)
    #   lease_ms:  a dead-man switch: unless the same call comes again within
    #              lease_ms, the Pi reverts the pin (docs/reliability.md)
    #   revert:    what the lease reverts to: "safe" (the pin's safe value) or
    #              "previous" (the level before the lease began)
    def on(self, time_ms: float = 0, *, wait: bool = False, lease_ms: float = 0,
           revert: str = "safe") -> None:
        """Switch on; with *time_ms*, switch off again after that long."""
        self._task("on", wait, lease_ms, revert, time_ms=time_ms)

    def off(self, time_ms: float = 0, *, wait: bool = False, lease_ms: float = 0,
            revert: str = "safe") -> None:
        """Switch off; with *time_ms*, hold the pin off for that long (wait mode)."""
        self._task("off", wait, lease_ms, revert, time_ms=time_ms)

    def value(self, time_ms: float = 0, level: float = 1.0, *, wait: bool = False,
              lease_ms: float = 0, revert: str = "safe") -> None:
        """Drive a PWM *level* between 0 and 1 (then off after *time_ms*)."""
        self._task("value", wait, lease_ms, revert, time_ms=time_ms, level=level)

    def blink(self, time_ms: float = 0, on_time: float = 1.0, off_time: float = 1.0,
              *, wait: bool = False, lease_ms: float = 0, revert: str = "safe") -> None:
        """Blink (*on_time*/*off_time* in seconds) until replaced, or for *time_ms*."""
        self._task("blink", wait, lease_ms, revert, time_ms=time_ms, on_time=on_time,
                   off_time=off_time)

    def pulse(self, time_ms: float = 0, fade_in_time: float = 1.0, fade_out_time: float = 1.0,
              *, wait: bool = False, lease_ms: float = 0, revert: str = "safe") -> None:
        """Fade in and out with PWM until replaced, or for *time_ms*."""
        self._task("pulse", wait, lease_ms, revert, time_ms=time_ms,
                   fade_in_time=fade_in_time, fade_out_time=fade_out_time)

    def as_input(self, pull: Optional[str] = None, bounce_ms: float = 0) -> "RemotePin":
        """Make the pin an input: *pull* ``'up'``, ``'down'`` or None (floating;
        BOARD3/5's fixed pull-up: up); edges shorter than *bounce_ms* are
        ignored (debounced on the Pi)."""
        self._request("input", pull=pull, bounce_ms=bounce_ms)
        self.setup = {"mode": "input", "pull": pull, "bounce_ms": bounce_ms}
        self._claimed, self._lease = True, None
        return self

    def as_output(self) -> "RemotePin":
        """Make the pin an output again (off)."""
        self._request("output")
        self.setup = {"mode": "output"}
        self._claimed = True
        return self

    def read(self) -> Any:
        """The pin's level now (0/1, or the PWM level of an output), read on the Pi."""
        return self._request("read")["value"]

    def state(self) -> Dict[str, Any]:
        """What the pin is doing: mode, value, task, time left, queue length..."""
        reply = self._request("state")
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    def sync(self, timeout: Optional[float] = None) -> None:
        """Wait until the pin's running and queued tasks have ended, however
        long that is: the Pi says how long (``busy_ms`` of ``state``) and the
        wait is the call timeout beyond that. With *timeout*, wait at most
        that many seconds in all. Raises the failure of a queued task the Pi
        could not run (e.g. WrongMode)."""
        self._until_idle([], timeout)

    def _until_idle(self, before: List[Tuple[str, Dict[str, Any]]], timeout: Optional[float],
                    floor_ms: float = 0.0) -> None:
        """Send *before* (a task, for wait=True), ``state`` and ``sync`` in one
        write; wait for the sync's reply. ``state`` says how long the pin's
        work will take (``busy_ms``; a server that does not say counts as 0,
        and *floor_ms* as a lower bound: the task just sent), so the sync is
        given the call timeout beyond that, unless *timeout* bounds it all."""
        self._check_open()
        server = self._server
        pin = {"pin": self.board}
        calls = server.live_link().pipeline(before + [("state", pin), ("sync", pin)])
        if timeout is not None:  # the caller's bound for everything
            wait_all(calls, timeout)
            return
        try:
            state = wait_all(calls[:-1], server.timeout)[-1]
        except BaseException:
            abandon(calls[-1:])  # nobody will wait for the sync either
            raise
        wait_all(calls[-1:], sync_budget(state, server.timeout, floor_ms))

    def close(self) -> None:
        """Release the pin: at once (nowait) or after its queued work (wait)."""
        if self._closed:
            return
        self._request("close")
        self._closed = True
        self._watching = False
        self._server.forget(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "RemotePin":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---- events ------------------------------------------------------------------
    def watch(self) -> None:
        """Subscribe to change events (setting a callback does it for you)."""
        if not self._watching:
            self._check_open()
            # the numbering starts from the reply's as it is read, before the
            # first event after it (which may come in the same read)
            self._server.live_link().request("watch", {"pin": self.board}, self._server.timeout,
                                             self._watched)
            self._watching = True

    def _watched(self, reply: Mapping[str, Any]) -> None:
        with self._cond:
            self._seq = reply.get("seq", 0)
            self._last_value = reply.get("value")

    def rewatched(self, reply: Mapping[str, Any]) -> None:
        """The reply to this pin's watch on a fresh connection (a reconnect):
        what it missed meanwhile counts in ``missed_events`` and in the next
        event's ``missed``, and the numbering goes on from the Pi's (a
        restarted server's starts again). Called as the reply is read, before
        any event after it."""
        with self._cond:
            gap = rewatch_gap(self._seq, self._last_value, reply)
            self.missed_events += gap
            self._carried += gap
            self._seq = reply.get("seq", 0)
            self._last_value = reply.get("value")

    @property
    def watching(self) -> bool:
        """Is this client subscribed to the pin's changes? (A watch ends when
        the pin's holder closes it or its worker fails.)"""
        return self._watching

    def unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._request("unwatch")

    def _set_callback(self, kind: str, callback: Optional[Callable]) -> None:
        self._callbacks[kind] = adapt(callback)
        if callback is not None:
            self.watch()

    when_changed = property(
        lambda self: self._callbacks["changed"],
        lambda self, cb: self._set_callback("changed", cb),
        doc="Called (on the client's dispatcher thread) with a PinEvent on every change.")
    when_high = property(
        lambda self: self._callbacks["high"],
        lambda self, cb: self._set_callback("high", cb),
        doc="Called when the pin goes high (a rising edge).")
    when_low = property(
        lambda self: self._callbacks["low"],
        lambda self, cb: self._set_callback("low", cb),
        doc="Called when the pin goes low (a falling edge).")

    when_lease_expired = property(
        lambda self: self._on_lease_expired,
        lambda self, cb: setattr(self, "_on_lease_expired", adapt(cb)),
        doc="Called (on the dispatcher thread) with the level the Pi set when a lease "
            "this client holds on the pin ran out unrenewed (no watch needed).")

    def wait_for_edge(self, edge: str = "both", timeout: Optional[float] = None) -> Optional[PinEvent]:
        """Wait for the next change (``'rising'``, ``'falling'`` or ``'both'``);
        the event, or None after *timeout* seconds."""
        if edge not in ("both", "rising", "falling"):
            raise ValueError("edge must be 'both', 'rising' or 'falling'")
        self.watch()
        with self._cond:
            start = self._event_count
        return self._wait_event(lambda e: edge == "both" or e.edge == edge, start, timeout)

    def wait_for_value(self, value: int, timeout: Optional[float] = None) -> bool:
        """Wait until the pin reads *value* (0 or 1); False after *timeout*."""
        wanted = binary("value", value)
        self.watch()
        with self._cond:
            start = self._event_count
        if self.read() == wanted:  # a PWM output's 0.3 is neither
            return True
        return self._wait_event(lambda e: e.value == wanted, start, timeout) is not None

    def _wait_event(self, match: Callable[[PinEvent], bool], start: int,
                    timeout: Optional[float]) -> Optional[PinEvent]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                for index, event in self._events:
                    if index > start and match(event):
                        return event
                start = max(start, self._event_count)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def handle_change(self, message: Dict[str, Any]) -> None:
        """An event for this pin (called by whoever reads the socket: never blocks)."""
        with self._cond:
            event, missed = change_event(self.board, message, self._seq)
            if self._carried:
                event, self._carried = event._replace(missed=missed + self._carried), 0
            self._seq = event.seq
            self._last_value = event.value
            self.missed_events += missed
            self._event_count += 1
            self._events.append((self._event_count, event))
            # listeners (widgets, traces) hear it before waiters wake, so a
            # wait_for_value() that returned has them up to date
            for listener in self._subscribers:
                try:
                    listener(event)
                except Exception:  # whoever reads must go on
                    log.exception("a listener of BOARD%d raised", self.board)
            self._cond.notify_all()
        for kind in ("changed", "high" if event.edge == "rising" else "low"):
            callback = self._callbacks[kind]
            if callback is not None:
                self._server.dispatch(callback, event)

    def subscribe(self, listener: Callable[[PinEvent], None]) -> None:
        """Hand every change from now on to *listener* too (traces and widgets
        do): it runs on the thread reading the socket (the client's reader, or a
        caller waiting for its reply), so it must not block or
        call the server. Call :meth:`watch` for the changes to come."""
        self._subscribers = self._subscribers + [listener]

    def unsubscribe(self, listener: Callable[[PinEvent], None]) -> None:
        self._subscribers = [s for s in self._subscribers if s is not listener]

    def trace(self, seconds: float) -> Any:
        """Record this pin's changes for *seconds* (a :class:`remoteio.client.trace.Trace`)."""
        return self._server.trace([self.board], seconds)

    def widget(self, pwm: Optional[bool] = None) -> Any:
        """A live ipywidget of this pin (``pip install 'remoteio[jupyter]'``): an
        output as a toggle (a slider with *pwm*, or when it is in PWM), an
        input as an indicator; both follow change events."""
        from .widgets import pin_widget
        return pin_widget(self, pwm)

    def handle_unwatched(self) -> None:
        self._watching = False

    def handle_task_failed(self, message: Dict[str, Any]) -> None:
        """A task this client queued could not run (the reading thread: no blocking)."""
        failure = task_failure(self.board, message)
        self.last_task_failure = failure
        log.warning("%s", failure)

    def handle_lease_expired(self, message: Dict[str, Any]) -> None:
        """The Pi reverted the pin: a lease ran out unrenewed (the reading thread: no blocking)."""
        self.leases_expired += 1
        log.warning("%s", lease_expiry(self.board, message))
        if self._on_lease_expired is not None:
            self._server.dispatch(self._on_lease_expired, message.get("value"))
