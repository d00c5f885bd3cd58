"""One configuration table read against a table of its settings (each a
default and a check), with the checks the bus tables share.

>>> SETTINGS = {"access": Setting("write", access), "addresses": Setting(None, optional(tuple))}
>>> parse_table({"access": "read"}, SETTINGS, lambda key, message: ValueError(message))
{'access': 'read', 'addresses': None}
>>> parse_table({"acess": "read"}, SETTINGS, lambda key, message: ValueError(message))
Traceback (most recent call last):
ValueError: unknown setting 'acess' (known: access, addresses)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional

ACCESS = ("none", "read", "write")

#: *fail(key, message)* makes the error to raise (a ConfigError naming the
#: file and line, or a ValueError for rules a program gives)
Fail = Callable[[Optional[str], str], Exception]


class Invalid(Exception):
    """A check's refusal: the message, which :func:`parse_table` names the key for."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Setting:
    default: Any
    #: the given value (or the default) -> the parsed value; raises :class:`Invalid`
    check: Callable[[Any], Any]


def parse_table(table: Mapping[str, Any], settings: Mapping[str, Setting], fail: Fail,
                of: str = "") -> Dict[str, Any]:
    """*table*'s values by setting, checked in the order of *settings*; *of*
    names what the table is in the unknown-setting message (" for an SPI device")."""
    for key in table:
        if key not in settings:
            raise fail(key, f"unknown setting {key!r}{of} (known: {', '.join(settings)})")
    values = {}
    for key, setting in settings.items():
        try:
            values[key] = setting.check(table.get(key, setting.default))
        except Invalid as exc:
            raise fail(key, exc.message) from None
    return values


def access(value: Any) -> str:
    """``access``: one of :data:`ACCESS`."""
    if value not in ACCESS:
        raise Invalid(f"access must be one of {', '.join(ACCESS)}, not {value!r}")
    return value


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """*check*, with None (not given) let through."""
    return lambda value: None if value is None else check(value)
