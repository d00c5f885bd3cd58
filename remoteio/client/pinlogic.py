"""What a client-side pin decides, whichever client does the I/O (sync or asyncio).

>>> setup_requests(7, claimed=True, setup={}, restore_setup={}, lease=None, watching=True)
[('open', {'pin': 7}), ('watch', {'pin': 7})]
>>> event, missed = change_event(7, {"event": "change", "pin": 7, "value": 1,
...                                  "edge": "rising", "ts": 5, "seq": 3}, last_seq=1)
>>> event.edge, missed
('rising', 1)
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from ..errors import BadArgument, ServerError, error_for_code
from ..pins import describe

Request = Tuple[str, Dict[str, Any]]
#: a leased write as the client keeps it: (op, fields, when it runs out at the
#: latest as this client can tell: time.monotonic() of its send + lease_ms)
HeldLease = Tuple[str, Dict[str, Any], float]


class PinEvent(NamedTuple):
    """A change of a watched pin, as the server saw it."""
    pin: int        #: board number
    value: Any      #: new level (0/1; a PWM level for outputs in PWM)
    edge: str       #: "rising" or "falling"
    ts_ns: int      #: server's monotonic clock, nanoseconds
    seq: int        #: per-pin sequence number
    missed: int     #: events lost just before this one (a slow reader)


def check_task(op: str, lease_ms: Any, revert: Any, fields: Mapping[str, Any]) -> None:
    """Refuse a task argument given as None: on the wire, null is the field's
    default (a ``value(level=None)`` would drive the pin fully on, a
    ``lease_ms=None`` would silently be no lease).

    >>> check_task("value", 0, "safe", {"time_ms": 0, "level": None})
    Traceback (most recent call last):
    ...
    remoteio.errors.BadArgument: value: level must be a number, not None
    """
    if lease_ms is None or revert is None or None in fields.values():
        name = "lease_ms" if lease_ms is None else "revert" if revert is None else next(
            key for key, given in fields.items() if given is None)
        raise BadArgument(f"{op}: {name} must be {'a string' if name == 'revert' else 'a number'}, "
                          "not None")


def binary(name: str, value: Any) -> int:
    """*value* as 0 or 1 (True, False, 0.0 and 1.0 too), or BadArgument: a
    level that is neither is a mistake, never rounded.

    >>> binary("value", True), binary("value", 0.0)
    (1, 0)
    >>> binary("value", "0")
    Traceback (most recent call last):
    ...
    remoteio.errors.BadArgument: value must be 0 or 1, not '0'
    """
    if value.__class__ in (int, bool, float) and value in (0, 1):
        return int(value)
    raise BadArgument(f"{name} must be 0 or 1, not {value!r}")


def by_pin(outcomes: Mapping[str, Any]) -> Dict[Any, Any]:
    """A batch's per-pin mapping from the wire, keyed as the caller named the
    pins: board numbers as ints, an expander's pin by its name.

    >>> by_pin({"7": {"ok": True}, "mcp0:A3": {"ok": True}})
    {7: {'ok': True}, 'mcp0:A3': {'ok': True}}
    """
    return {key if ":" in key else int(key): outcome for key, outcome in outcomes.items()}


def adapt(callback: Optional[Callable]) -> Optional[Callable[[PinEvent], Any]]:
    """Accept callbacks of no argument or of one (the event), like gpiozero; one
    that takes ``*args`` (``print``) gets the event.

    >>> adapt(print)(PinEvent(7, 1, "rising", 0, 1, 0))
    PinEvent(pin=7, value=1, edge='rising', ts_ns=0, seq=1, missed=0)
    """
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError("a callback must be callable or None")
    try:
        params = inspect.signature(callback).parameters.values()
        takes = sum(1 for p in params if p.kind == p.VAR_POSITIONAL or (
            p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)))
    except (TypeError, ValueError):
        takes = 1
    if takes == 0:
        return lambda event: callback()
    return callback


def setup_requests(board: int, *, claimed: bool, setup: Mapping[str, Any],
                   restore_setup: Mapping[str, Any], lease: Optional[Request],
                   watching: bool) -> List[Request]:
    """What re-creates a pin's setup on a fresh connection (a reconnect): the
    claim, the input configuration, the raw ``setup`` fields (the gpiozero
    factory's), a lease still held, the watch."""
    pin = {"pin": board}
    requests: List[Request] = []
    if claimed:
        requests.append(("open", pin))
    if setup.get("mode") == "input":
        requests.append(("input", dict(pin, pull=setup["pull"], bounce_ms=setup["bounce_ms"])))
    if restore_setup:
        requests.append(("setup", dict(restore_setup, **pin)))
    if lease is not None:
        requests.append((lease[0], dict(lease[1], **pin)))
    if watching:
        requests.append(("watch", pin))
    return requests


def lease_left(lease: Optional[HeldLease], now: float) -> Optional[Request]:
    """The leased write a reconnect re-sends: with only the time it has left
    since this client sent it (a reconnect never extends a lease: only the
    program's own renewals do), or None once that time is up (the Pi reverted
    the pin at the deadline; the library must not drive it again behind the
    program's back: that is what the dead-man switch guards against).

    A timed task (``time_ms``) goes again only for the time it has left, and
    not at all once that is up: it ended on the Pi, and running it again
    would be a second pulse nobody asked for.

    >>> lease_left(("on", {"time_ms": 0, "lease_ms": 1500, "revert": "safe"}, 11.5), now=11.0)
    ('on', {'time_ms': 0, 'lease_ms': 500.0, 'revert': 'safe'})
    >>> lease_left(("on", {"time_ms": 0, "lease_ms": 1500, "revert": "safe"}, 11.5), now=11.6)
    >>> lease_left(("on", {"time_ms": 500, "lease_ms": 1500, "revert": "safe"}, 11.5), now=10.2)
    ('on', {'time_ms': 300.0, 'lease_ms': 1300.0, 'revert': 'safe'})
    >>> lease_left(("on", {"time_ms": 500, "lease_ms": 1500, "revert": "safe"}, 11.5), now=10.6)
    """
    if lease is None:
        return None
    op, fields, runs_out = lease
    left_ms = round((runs_out - now) * 1000.0, 3)
    if left_ms < 1.0:
        return None
    resent = dict(fields, lease_ms=min(left_ms, fields["lease_ms"]))
    if fields.get("time_ms"):   # the task's time counted from when it was sent, as the lease's
        task_left_ms = round(fields["time_ms"] - (fields["lease_ms"] - left_ms), 3)
        if task_left_ms < 1.0:
            return None
        resent["time_ms"] = task_left_ms
    return op, resent


def change_event(board: int, message: Mapping[str, Any], last_seq: int) -> Tuple[PinEvent, int]:
    """The PinEvent of a ``change`` event and how many were missed before it."""
    seq = message.get("seq", 0)
    missed = max(0, seq - last_seq - 1) if last_seq else 0
    return PinEvent(board, message.get("value"), message.get("edge", ""),
                    message.get("ts", 0), seq, missed), missed


def rewatch_gap(last_seq: int, last_value: Any, reply: Mapping[str, Any]) -> int:
    """How many events a watcher missed while its connection was down, from
    the reply to its watch on the new one (``seq``: the pin's number now,
    ``value``: its level now). The Pi numbers an event only when someone
    watches (nobody watching, it does not even look at the pin's edges), so
    a level that changed unnumbered counts as one missed event, at least.

    >>> rewatch_gap(5, 1, {"seq": 8, "value": 1})  # three went to the dead link
    3
    >>> rewatch_gap(5, 1, {"seq": 5, "value": 0})  # nobody watched; the level moved
    1
    >>> rewatch_gap(5, 1, {"seq": 5, "value": 1})  # nothing seen to happen
    0
    >>> rewatch_gap(5, 1, {"seq": 0, "value": 1})  # a restarted server numbers from 0
    0
    """
    seq = reply.get("seq", 0)
    gap = seq - last_seq if seq >= last_seq else 0
    if gap == 0 and last_value is not None and reply.get("value") != last_value:
        gap = 1
    return gap


def task_failure(board: int, message: Mapping[str, Any]) -> ServerError:
    """The error of a ``task_failed`` event (a queued task the Pi could not run).

    >>> str(task_failure(7, {"op": "on", "error": {"code": "wrong_mode", "message": "an input"}}))
    'a queued on on BOARD7 could not run: an input'
    >>> str(task_failure(13, {"op": "value", "error": {"code": "forbidden",
    ...     "message": "a queued value on BOARD13 (GPIO27) could not run: away too long"}}))
    'a queued value on BOARD13 (GPIO27) could not run: away too long'
    """
    error = message.get("error") or {}
    code = error.get("code", "internal_error")
    text = error.get("message", code)
    if " could not run: " not in text:   # the Pi's own message says it already
        text = f"a queued {message.get('op', 'task')} on BOARD{board} could not run: {text}"
    return error_for_code(code)(text, code=code)


def lease_expiry(board: int, message: Mapping[str, Any]) -> str:
    """What the holder's log says of a ``lease_expired`` event (the Pi reverted the pin).

    >>> lease_expiry(7, {"event": "lease_expired", "pin": 7, "value": 0.0})
    'the lease on BOARD7 (GPIO4) ran out before it was renewed: the Pi set the pin to 0'
    """
    value = message.get("value")
    level = f"{value:g}" if isinstance(value, (int, float)) else "its revert level"
    return f"the lease on {describe(board)} ran out before it was renewed: the Pi set the pin to {level}"


def sync_budget(state: Mapping[str, Any], call_timeout: float, floor_ms: float = 0.0) -> float:
    """How long to wait for a ``sync`` reply: the call timeout beyond the work
    the Pi says is left (``busy_ms`` of ``state``; absent or NaN counts as 0,
    *floor_ms* is a lower bound: the task just sent)."""
    busy_ms = state.get("busy_ms")
    if not isinstance(busy_ms, (int, float)) or busy_ms != busy_ms:
        busy_ms = 0.0
    return call_timeout + max(0.0, busy_ms, floor_ms) / 1000.0
