"""Pin rules, the one gate every change to what a pin drives passes.

The router checks access for every request (every part of a batch, every
``sim`` action too) and, before anything reaches a worker, whether the
operation alone could be allowed; the pin's worker then checks every change
it is about to make against where the pin really is (its hold clock), for
tasks, ``set``, ``setup``, ``output``, batch parts, lease renewals and
queued work alike. A refusal is a ``forbidden`` error that names the rule.

* ``access``: ``none`` (the pin is not served at all), ``read`` (read,
  state, sync, watch, ``sim history``, and configuring it as an input with
  a pull: nothing that drives it) or ``write`` (everything).
* ``max_hold_ms``: the pin may be away from its safe value for at most this
  long at a stretch, through any sequence of operations. A stretch ends
  only once the pin has rested at its safe value for ``min(100 ms,
  max_hold_ms)``.
* ``lease_only``: leaving the safe value needs a lease (``lease_ms``).
* ``safe_value``: the level the pin is put in when it is made safe; every
  timed task ends there, ``output`` starts there, and on a pin with either
  rule above every revert goes there.

>>> from remoteio.server.config import PinRule
>>> rule = PinRule(max_hold_ms=1000)
>>> check_hold(rule, "BOARD7", "on", away=True, back_in=0.9, leased=False, away_for=0.0)
>>> check_hold(rule, "BOARD7", "on", away=True, back_in=0.9, leased=False,
...            away_for=0.5)  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
remoteio.errors.Forbidden: BOARD7 may be away from its safe value for at most 1000 ms at a stretch
(on would make it 1400 ms)
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .config import PinRule, ServerConfig
from ..errors import Forbidden
from ..pins import describe

READ_OPS = frozenset(("read", "state", "sync", "watch", "unwatch", "read_many"))
#: what else a read-only pin allows: taking it, making it an input (with a
#: pull: that is how one reads a button), letting it go. Nothing drives it.
READ_CONFIG_OPS = frozenset(("open", "input", "close"))
READ_SIM = frozenset(("history", "levels"))
#: the longest rest at the safe value that ends a stretch away from it (s)
REST_S = 0.1


def bounded(rule: PinRule) -> bool:
    """Does the rule bound how long the pin may be away from its safe value?"""
    return rule.max_hold_ms is not None or rule.lease_only


def steady_level(op: str, args: Dict[str, Any]) -> Optional[float]:
    """The level an operation holds the pin at (None: it keeps changing, or
    the operation drives nothing)."""
    if op == "on":
        return 1.0
    if op == "off":
        return 0.0
    if op == "value":
        return args["level"]
    if op == "set":
        return args["state"]
    if op == "setup":
        return args.get("state")
    return None


def drives(op: str, args: Dict[str, Any]) -> bool:
    """Does the operation (maybe) leave the pin driven away from rest?"""
    if op in ("on", "off", "value", "set", "blink", "pulse", "write"):
        return True
    return op == "setup" and args.get("state") is not None


def check_hold(rule: PinRule, where: str, what: str, *, away: bool, back_in: Optional[float],
               leased: bool, away_for: float) -> None:
    """Raise Forbidden unless this change keeps the pin within its rule.

    *away*: the change leaves the pin away from its safe value; *back_in*:
    seconds until it is back for sure (a timed end or a lease, both of which
    go to the safe value), None for never; *leased*: a lease bounds it;
    *away_for*: how long the pin has been away already (this stretch)."""
    if not away or not bounded(rule):
        return
    if rule.lease_only and not leased:
        raise Forbidden(f"{where} may only be driven away from its safe value with a lease "
                        f"(lease_ms); {what} has none")
    if rule.max_hold_ms is not None:
        limit = rule.max_hold_ms
        if back_in is None:
            raise Forbidden(f"{where} may be held for at most {limit:g} ms: give time_ms or "
                            f"lease_ms of {limit:g} or less ({what} has no end)")
        total = (away_for + back_in) * 1000.0
        if total > limit + 1e-6:
            if away_for <= 0.0:
                raise Forbidden(f"{where} may be held for at most {limit:g} ms: give time_ms or "
                                f"lease_ms of {limit:g} or less")
            raise Forbidden(f"{where} may be away from its safe value for at most {limit:g} ms at "
                            f"a stretch ({what} would make it {total:.0f} ms)")


def _reads_only(args: Dict[str, Any]) -> bool:
    """A gpiozero ``setup`` that makes an input (a Button): no level, no PWM."""
    return (args.get("function") in (None, "input") and args.get("state") is None
            and not args.get("frequency"))


def task_bound(args: Dict[str, Any]) -> Optional[float]:
    """Seconds until a task (alone) is back at the safe value for sure."""
    bounds = [t / 1000.0 for t in (args.get("time_ms") or 0.0, args.get("lease_ms") or 0.0) if t]
    return min(bounds) if bounds else None


class HoldClock:
    """When the pin's current stretch away from its safe value began, as a
    pure function of the levels it was driven to and when.

    >>> clock = HoldClock(rest=0.1)
    >>> clock.drove(away=True, now=10.0); clock.drove(away=False, now=10.5)
    >>> clock.away_for(10.55), clock.away_for(10.7)
    (0.55, 0.0)
    """

    __slots__ = ("rest", "since", "back_at")

    def __init__(self, rest: float = REST_S):
        self.rest = rest
        self.since: Optional[float] = None   # start of the stretch (None: at rest)
        self.back_at: Optional[float] = None  # when it came back (rest not yet long enough)

    def drove(self, away: bool, now: float) -> None:
        if away:
            if self.since is not None and self.back_at is not None and \
                    now - self.back_at >= self.rest:
                self.since = None  # it rested long enough: a new stretch
            if self.since is None:
                self.since = now
            self.back_at = None
        elif self.since is not None and self.back_at is None:
            self.back_at = now

    def away_for(self, now: float) -> float:
        """How long the stretch a change at *now* would extend has lasted."""
        if self.since is None:
            return 0.0
        if self.back_at is not None and now - self.back_at >= self.rest:
            return 0.0
        return round(now - self.since, 9)


class Rules:
    """The rules of every pin, from the server's configuration."""

    def __init__(self, config: ServerConfig):
        self.config = config

    def rule(self, board: int) -> PinRule:
        return self.config.rule(board)

    def served(self, board: int) -> bool:
        return self.config.rule(board).access != "none"

    def check_access(self, board: int, op: str, args: Optional[Dict[str, Any]] = None) -> None:
        """Raise Forbidden if *op* may not touch *board* at all."""
        access = self.config.rule(board).access
        if access == "write":
            return
        if access == "none":
            raise Forbidden(f"{describe(board)} is not served by this server")
        if op in READ_OPS or op in READ_CONFIG_OPS or (op == "setup" and _reads_only(args or {})):
            return
        raise Forbidden(f"{describe(board)} is read-only on this server ({op} refused)")

    def check(self, board: int, op: str, args: Dict[str, Any]) -> None:
        """Access, then whether *op* alone could leave the pin within its rule
        (the worker judges it again against where the pin really is)."""
        rule = self.config.rule(board)
        if rule.access == "write" and rule.max_hold_ms is None and not rule.lease_only:
            return  # the usual case: nothing to check
        self.check_access(board, op, args)
        if not bounded(rule) or not drives(op, args):
            return
        level = steady_level(op, args)
        away = level is None or float(level) != float(rule.safe_value)
        if op == "set" and level is not None:
            away = float(bool(level)) != float(rule.safe_value) and float(level) != float(rule.safe_value)
        check_hold(rule, describe(board), op, away=away, back_in=task_bound(args),
                   leased=bool(args.get("lease_ms")), away_for=0.0)

    def check_sim(self, board: int, action: str) -> None:
        """``sim`` honours access: nothing on a pin not served; only
        history on a read-only one."""
        access = self.config.rule(board).access
        if access == "none":
            raise Forbidden(f"{describe(board)} is not served by this server")
        if access == "read" and action not in READ_SIM:
            raise Forbidden(f"{describe(board)} is read-only on this server (sim {action} refused)")
