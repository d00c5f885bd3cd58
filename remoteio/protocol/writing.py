"""Writing frames: replies and events (server side), requests (client side).

Every frame is one compact JSON object and a newline, ASCII only.

>>> ok("7")
b'{"id":7,"ok":true}\\n'
>>> ok("7", {"value": 1})
b'{"id":7,"ok":true,"value":1}\\n'
>>> error("7", "bad_pin", "board pin 1 is 3V3 power, not a GPIO")
b'{"id":7,"ok":false,"error":{"code":"bad_pin","message":"board pin 1 is 3V3 power, not a GPIO"}}\\n'
>>> request(3, "on", {"pin": 7})
b'{"id":3,"op":"on","pin":7}\\n'
"""
from __future__ import annotations

import json
from json.encoder import JSONEncoder, c_make_encoder, encode_basestring_ascii
from typing import Any, Mapping, Optional

from ..errors import ServerError

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def ok(id_json: str, result: Optional[Mapping[str, Any]] = None) -> bytes:
    """A success reply; *result* fields are added beside ``id`` and ``ok``."""
    if not result:
        return b'{"id":%s,"ok":true}\n' % id_json.encode()
    return ('{"id":%s,"ok":true,%s\n' % (id_json, _encode(result)[1:])).encode()


def error(id_json: str, code: str, message: str, detail: Optional[str] = None,
          extra: Optional[Mapping[str, Any]] = None) -> bytes:
    """A failure reply with a stable error *code* and a human *message*
    (*extra* fields beside ``error``: a batch's per-pin ``results``)."""
    fields = {"code": code, "message": message}
    if detail:
        fields["detail"] = detail
    more = "," + _encode(extra)[1:-1] if extra else ""
    return ('{"id":%s,"ok":false,"error":%s%s}\n' % (id_json, _encode(fields), more)).encode()


def body(result: Mapping[str, Any]) -> str:
    """The fields of a success reply, encoded once for many replies (info)."""
    return _encode(result)[1:-1]


def ok_body(id_json: str, fields: str) -> bytes:
    """A success reply from :func:`body`'s text."""
    return ('{"id":%s,"ok":true%s%s}\n' % (id_json, "," if fields else "", fields)).encode()


def error_from(exc: ServerError, id_json: str = "null") -> bytes:
    return error(id_json, exc.code, exc.message or exc.code, getattr(exc, "detail", None))


def event(name: str, fields: Mapping[str, Any]) -> bytes:
    """A frame the server pushes without a request: ``{"event": name, ...}``."""
    if not fields:
        return b'{"event":"%s"}\n' % name.encode()
    return ('{"event":"%s",%s\n' % (name, _encode(fields)[1:])).encode()


# the C encoder made once (JSONEncoder.encode makes one per call: half its time);
# no circular-reference markers: a cycle raises RecursionError, turned into ValueError
_encode_once = c_make_encoder(None, JSONEncoder().default, encode_basestring_ascii, None,
                              ":", ",", False, False, False) if c_make_encoder else None


def request(request_id: Any, op: str, fields: Mapping[str, Any]) -> bytes:
    """A request frame (client side)."""
    if (_encode_once is None or request_id.__class__ is not int or op.__class__ is not str
            or "id" in fields or "op" in fields):
        body = {"id": request_id, "op": op}
        body.update(fields)
        return (_encode(body) + "\n").encode()
    head = '{"id":%d,"op":%s' % (request_id, encode_basestring_ascii(op))
    if not fields:
        return (head + "}\n").encode()
    try:  # the fields alone through the encoder: half the time of a whole body
        return (head + "," + "".join(_encode_once(fields, 0))[1:] + "\n").encode()
    except RecursionError:
        raise ValueError("a circular reference in the request") from None
