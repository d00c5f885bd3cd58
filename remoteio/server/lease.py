"""Leases: a dead-man switch on a task, as pure functions of the clock.

``on(lease_ms=5000)`` switches on and, unless the same write comes again
within 5 s (a heartbeat renews it), reverts. What it reverts to is stated:
``revert="safe"`` (the pin's safe value, off unless configured) or
``revert="previous"`` (the level before the lease began).

Rules that keep a revert from doing harm (the mistakes of other tools):

* only the newest lease of a pin can fire: any later task replaces or
  cancels it (a task without a lease cancels it);
* a write identical to the leased one renews it (same deadline logic, no new
  edge, the blink keeps its phase), with the revert it asks for now;
* ``previous`` means the level before the *first* of a chain of leased
  writes, so a revert never lands on a level that only an older leased
  command had asked for.

>>> lease = start_lease(None, "on", {"lease_ms": 500, "revert": "safe"}, now=10.0,
...                     level_before=0.0, safe_value=0)
>>> lease.deadline, lease.revert_to
(10.5, 0.0)
>>> renewed = renew(lease, "on", {"lease_ms": 500, "revert": "safe"}, now=10.4, safe_value=0)
>>> renewed.deadline
10.9
>>> renew(lease, "on", {"lease_ms": 500, "revert": "previous"}, now=10.4, safe_value=1).revert_to
0.0
>>> renew(renewed, "on", {"lease_ms": 500, "revert": "safe"}, now=10.5, safe_value=1).revert_to
1.0
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, Optional, Tuple

_NOT_PART_OF_THE_WRITE = ("lease_ms", "revert")


@dataclass(frozen=True)
class Lease:
    key: Tuple[Any, ...]     # the write it holds (op and its fields)
    deadline: float          # time.monotonic() seconds
    revert_to: float         # level applied when it runs out
    previous: float          # level before the chain of leased writes began
    conn: int                # who holds it (told when it runs out)


def write_key(op: str, args: Dict[str, Any]) -> Tuple[Any, ...]:
    return (op,) + tuple(sorted((k, v) for k, v in args.items() if k not in _NOT_PART_OF_THE_WRITE))


def renew(lease: Optional[Lease], op: str, args: Dict[str, Any], now: float, *,
          safe_value: float) -> Optional[Lease]:
    """The renewed lease if this write renews *lease*, else None; its revert
    is the renewal's (a renewal that now asks for "safe" must get it)."""
    if lease is None or not args.get("lease_ms") or write_key(op, args) != lease.key:
        return None
    return replace(lease, deadline=now + args["lease_ms"] / 1000.0,
                   revert_to=_revert_to(args, lease.previous, safe_value))


def _revert_to(args: Dict[str, Any], previous: float, safe_value: float) -> float:
    return previous if args.get("revert") == "previous" else float(safe_value)


def start_lease(current: Optional[Lease], op: str, args: Dict[str, Any], *, now: float,
                level_before: float, safe_value: float, conn: int = 0) -> Optional[Lease]:
    """The lease a new task brings (None: the task cancels any lease)."""
    lease_ms = args.get("lease_ms") or 0.0
    if not lease_ms:
        return None
    previous = current.previous if current is not None else level_before
    return Lease(write_key(op, args), now + lease_ms / 1000.0,
                 _revert_to(args, previous, safe_value), previous, conn)
