"""Validators for request fields: each takes the raw JSON value and returns
the clean value or raises :exc:`~remoteio.errors.BadArgument` saying why.

Durations are validated, never clamped: NaN, infinities, negatives, booleans
and absurd values are refused with a message that names the field and the
allowed range.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

from ..errors import BadArgument

Validator = Callable[[str, Any], Any]

#: longest duration any timed task or lease may last (24 hours)
MAX_DURATION_MS = 86_400_000.0
#: longest blink/pulse phase (1 hour)
MAX_PHASE_S = 3600.0
#: shortest blink/pulse phase (1 ms): below that no backend keeps time
MIN_PHASE_S = 0.001
#: pins of one batch (write, read_many): the header's 28 and expanders' pins
MAX_BATCH = 64


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadArgument(f"{name} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadArgument(f"{name} must be finite, not {value}")
    return value


def duration_ms(maximum: float = MAX_DURATION_MS) -> Validator:
    """A duration in milliseconds, 0 ≤ value ≤ *maximum*."""
    def check(name: str, value: Any) -> float:
        value = _number(name, value)
        if not 0 <= value <= maximum:
            raise BadArgument(f"{name} must be between 0 and {maximum:g} ms, not {value}")
        return float(value)
    return check


def seconds(minimum: float, maximum: float = MAX_PHASE_S, *,
            exclusive_min: bool = False) -> Validator:
    """A time in seconds within [minimum, maximum] (or (minimum, maximum])."""
    def check(name: str, value: Any) -> float:
        value = _number(name, value)
        low_ok = value > minimum if exclusive_min else value >= minimum
        if not (low_ok and value <= maximum):
            bracket = "(" if exclusive_min else "["
            raise BadArgument(
                f"{name} must be in {bracket}{minimum:g}, {maximum:g}] seconds, not {value}")
        return float(value)
    return check


def zero_or_seconds(minimum: float, maximum: float = MAX_PHASE_S) -> Validator:
    """0, or a time in seconds within [minimum, maximum]."""
    check_range = seconds(minimum, maximum)

    def check(name: str, value: Any) -> float:
        value = _number(name, value)
        if value == 0:
            return 0.0
        try:
            return check_range(name, value)
        except BadArgument:
            raise BadArgument(
                f"{name} must be 0 or in [{minimum:g}, {maximum:g}] seconds, not {value}") from None
    return check


def fraction(name: str, value: Any) -> float:
    """A level between 0 and 1 inclusive."""
    value = _number(name, value)
    if not 0 <= value <= 1:
        raise BadArgument(f"{name} must be between 0 and 1, not {value}")
    return float(value)


def number_in(minimum: float, maximum: float) -> Validator:
    def check(name: str, value: Any) -> float:
        value = _number(name, value)
        if not minimum <= value <= maximum:
            raise BadArgument(f"{name} must be between {minimum:g} and {maximum:g}, not {value}")
        return float(value)
    return check


def integer_in(minimum: int, maximum: int) -> Validator:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadArgument(f"{name} must be an integer, not {type(value).__name__}")
        if not minimum <= value <= maximum:
            raise BadArgument(f"{name} must be between {minimum} and {maximum}, not {value}")
        return value
    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadArgument(f"{name} must be true or false, not {value!r}")
    return value


def one_of(choices: Sequence[Any], *, aliases: Optional[dict] = None) -> Validator:
    """One of *choices* (strings or None); *aliases* map other spellings."""
    aliases = aliases or {}

    def check(name: str, value: Any) -> Any:
        if isinstance(value, str) or value is None:
            value = aliases.get(value, value)
            if value in choices:
                return value
        shown = ", ".join("null" if c is None else repr(c) for c in choices)
        raise BadArgument(f"{name} must be one of {shown}, not {value!r}")
    return check


def text(max_length: int) -> Validator:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_length:
            raise BadArgument(f"{name} must be a string of at most {max_length} characters")
        return value
    return check


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def hex_string(min_length: int, max_length: int) -> Validator:
    """Hex digits only (``bytes.fromhex`` would let spaces through), an even
    number of them, *min_length* to *max_length*."""
    def check(name: str, value: Any) -> str:
        ok = (isinstance(value, str) and min_length <= len(value) <= max_length
              and len(value) % 2 == 0 and _HEX_DIGITS.issuperset(value))
        if not ok:
            raise BadArgument(
                f"{name} must be a hex string of {min_length} to {max_length} characters")
        return value.lower()
    return check


def any_json(name: str, value: Any) -> Any:
    return value


def pin_levels(name: str, value: Any) -> dict:
    """``{pin: level}`` for a batch write: at most 64 pins (the header's and
    expanders'), levels 0..1."""
    from ..pins import describe, pin_key
    if not isinstance(value, dict) or not 0 < len(value) <= MAX_BATCH:
        raise BadArgument(f"{name} must be an object of 1 to {MAX_BATCH} pin: level pairs")
    levels = {}
    for spec, level in value.items():
        board = pin_key(spec)
        if board in levels:
            raise BadArgument(f"{name} names {describe(board)} twice")
        levels[board] = (1.0 if level is True else 0.0 if level is False
                         else fraction(f"{name}[{spec}]", level))
    return levels


def pin_list(name: str, value: Any) -> list:
    """A list of 1 to 64 distinct pins (board numbers or pin strings)."""
    from ..pins import pin_key
    if not isinstance(value, list) or not 0 < len(value) <= MAX_BATCH:
        raise BadArgument(f"{name} must be a list of 1 to {MAX_BATCH} pins")
    boards = [pin_key(spec) for spec in value]
    if len(set(boards)) != len(boards):
        raise BadArgument(f"{name} names a pin twice")
    return boards
