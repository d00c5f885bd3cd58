"""Reading requests: one frame in, one validated :class:`Request` out.

Everything that can be wrong with a frame raises :exc:`Rejected`, which
carries the error to send back and the request's ``id`` when it could be
read (JSON ``null`` otherwise). Nothing here touches a socket.

>>> parse_request(b'{"id": 1, "op": "on", "pin": "GPIO4", "time_ms": 2000}').args
{'time_ms': 2000.0, 'lease_ms': 0.0, 'revert': 'safe'}
>>> try:
...     parse_request(b'{"id": 2, "op": "on", "pin": 7, "time_ms": -1}')
... except Rejected as e:
...     print(e.id_json, e.error.code)
2 bad_argument
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union

from ..errors import BadArgument, BadFrame, BadPin, ServerError, UnknownOp
from ..pins import pin_key
from .ops import OPS, PIN, REQUIRED, OpSpec
from ..errors import Rejected  # noqa: F401 (defined in errors.py)

#: the largest integer id accepted (JSON numbers beyond it lose precision)
MAX_INT_ID = 2**53
MAX_STR_ID = 64

_loads = json.loads
_RESERVED = frozenset(("id", "op", "pin"))


class Request:
    """A validated request. ``pin`` is a board number, an expander pin's
    canonical name (``"mcp0:A3"``), or None."""

    __slots__ = ("id_json", "op", "spec", "pin", "args")

    def __init__(self, id_json: str, spec: OpSpec, pin: Optional[int], args: Dict[str, Any]):
        self.id_json = id_json
        self.op = spec.name
        self.spec = spec
        self.pin = pin
        self.args = args

    def __repr__(self) -> str:
        return f"Request(id={self.id_json}, op={self.op!r}, pin={self.pin}, args={self.args})"


def encode_id(value: Any) -> str:
    """The JSON text of a valid request id, or raise :exc:`BadFrame`."""
    if isinstance(value, int) and not isinstance(value, bool):
        if -MAX_INT_ID <= value <= MAX_INT_ID:
            return str(value)
    elif isinstance(value, str) and len(value) <= MAX_STR_ID:
        return json.dumps(value)
    raise BadFrame(
        f"id must be an integer (|id| <= 2**53) or a string of at most {MAX_STR_ID} characters")


def decode_json(frame: Union[bytes, str]) -> Any:
    """Decode one frame's JSON, or raise :exc:`BadFrame`."""
    try:
        if isinstance(frame, bytes):
            frame = frame.decode("utf-8")
        return _loads(frame)
    except UnicodeDecodeError:
        raise BadFrame("frame is not valid UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise BadFrame(f"frame is not valid JSON ({str(exc)[:80]})") from None


def parse_request(frame: Union[bytes, str]) -> Request:
    """Validate one frame into a :class:`Request` or raise :exc:`Rejected`."""
    try:
        message = decode_json(frame)
    except BadFrame as exc:
        raise Rejected(exc) from None
    return parse_message(message)


def parse_message(message: Any) -> Request:
    """Validate an already decoded JSON value (see :func:`parse_request`)."""
    if not isinstance(message, dict):
        raise Rejected(BadFrame(
            f"a frame must be a JSON object, not {type(message).__name__}"))
    try:
        id_json = encode_id(message["id"])
    except KeyError:
        raise Rejected(BadFrame("the request has no id")) from None
    except BadFrame as exc:
        raise Rejected(exc) from None
    try:
        return _parse_fields(message, id_json)
    except ServerError as exc:
        raise Rejected(exc, id_json) from None


def _parse_fields(message: Dict[str, Any], id_json: str) -> Request:
    op = message.get("op")
    if not isinstance(op, str):
        raise UnknownOp("the request has no op (a string naming the operation)")
    spec = OPS.get(op)
    if spec is None:
        # not the list itself: a server with a token gives it only after auth (hello's ops)
        raise UnknownOp(f"unknown op {op[:40]!r} (the welcome's ops lists the operations)")
    pin = None
    if spec.scope == PIN:
        if "pin" not in message:
            raise BadPin(f"{op} needs a pin")
        pin = pin_key(message["pin"])
    elif "pin" in message and "pin" not in spec.fields:
        raise BadArgument(f"{op} takes no pin")
    args: Dict[str, Any] = {}
    spec_fields = spec.fields
    for key, value in message.items():
        if key in _RESERVED and key not in spec_fields:
            continue
        try:
            validate, default = spec_fields[key]
        except KeyError:
            known = ", ".join(spec_fields) or "none"
            raise BadArgument(f"{op} has no field {key[:40]!r} (its fields: {known})") from None
        # an explicit null means "not given": the default, where there is one
        args[key] = default if value is None and default is not REQUIRED else validate(key, value)
    for key, (_, default) in spec_fields.items():
        if key not in args:
            if default is REQUIRED:
                raise BadArgument(f"{op} needs the field {key!r}")
            args[key] = default
    if spec.check is not None:
        spec.check(args)
    return Request(id_json, spec, pin, args)
