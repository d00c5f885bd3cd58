"""Pin rules: which pins may be used, how, and for how long.

The router checks every request against the rules of its pin (every part
of a batch too) before anything is sent to a worker; a refusal is a
``forbidden`` error that names the rule.

* ``access``: ``none`` (the pin is not served at all), ``read`` (read,
  state, sync, watch only) or ``write`` (everything; the default).
* ``max_hold_ms``: no single command may leave the pin away from its safe
  value longer than this: such a task needs ``time_ms`` or ``lease_ms`` at
  most this long.
* ``lease_only``: a task that leaves the pin away from its safe value must
  carry a lease (``lease_ms``), renewed by the client.
* ``safe_value``: the level the pin is put in when it is made safe.
"""
from __future__ import annotations

from typing import Any, Dict

from ..config import PinRule, ServerConfig
from ..errors import Forbidden
from ..pins import describe

READ_OPS = frozenset(("read", "state", "sync", "watch", "unwatch"))
TASK_LEVELS = {"on": 1.0, "off": 0.0}


def _resting_level(op: str, args: Dict[str, Any]) -> Any:
    """The level a task leaves the pin at (None: it keeps changing)."""
    if op in TASK_LEVELS:
        return TASK_LEVELS[op]
    if op == "value":
        return args.get("level")
    return None  # blink, pulse


class Rules:
    def __init__(self, config: ServerConfig):
        self.config = config

    def rule(self, board: int) -> PinRule:
        return self.config.rule(board)

    def check(self, board: int, op: str, args: Dict[str, Any]) -> None:
        """Raise Forbidden if the rules of *board* do not allow *op*."""
        rule = self.config.rule(board)
        if rule.access == "write" and rule.max_hold_ms is None and not rule.lease_only:
            return  # the usual case: nothing to check
        if rule.access == "none":
            raise Forbidden(f"{describe(board)} is not served by this server")
        if op in READ_OPS:
            return
        if rule.access == "read":
            raise Forbidden(f"{describe(board)} is read-only on this server ({op} refused)")
        if op not in ("on", "off", "value", "blink", "pulse"):
            return
        if _resting_level(op, args) == rule.safe_value:
            return  # putting the pin in its safe state is always allowed
        lease = args.get("lease_ms") or 0.0
        timed = args.get("time_ms") or 0.0
        if rule.lease_only and not lease:
            raise Forbidden(f"{describe(board)} may only be driven with a lease (lease_ms)")
        if rule.max_hold_ms is not None:
            bounds = [t for t in (lease, timed) if t]
            if not bounds or min(bounds) > rule.max_hold_ms:
                raise Forbidden(
                    f"{describe(board)} may be held for at most {rule.max_hold_ms:g} ms: "
                    f"give time_ms or lease_ms of {rule.max_hold_ms:g} or less")
