"""Frames of an already validated shape, read without the JSON decoder.

Nearly every frame of a busy connection is one of a few shapes: a pin
command with an integer id, the op, a board pin number and at most one
number field (``{"id":5,"op":"on","pin":7}``,
``{"id":6,"op":"value","pin":7,"level":0.5}``), written compactly, in that
order, by the client library and most others. :func:`parse_known` matches
exactly those bytes and builds the same :class:`~.reading.Request` the full
path (``json.loads``, then :func:`~.reading.parse_message`) builds, through
the same validators; it answers None for anything else (other shapes,
whitespace, escapes, duplicate or unknown keys, a string pin, ``null``,
another order...), and the caller takes the full path.

Why it is the same: the pattern admits only JSON that ``json.loads`` reads
the way it is read here (integers without leading zeros, numbers in JSON's
own grammar turned into ``int``/``float`` as the decoder does, an op and a
field name of plain lower-case letters, no key twice), and the op/field
pair must be in the table built from :data:`~.ops.OPS`.

>>> parse_known(b'{"id":5,"op":"on","pin":7,"time_ms":100}').args
{'time_ms': 100.0, 'lease_ms': 0.0, 'revert': 'safe'}
>>> parse_known(b'{"id":5, "op":"on","pin":7}') is None
True
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional, Tuple, Union

from ..errors import Rejected, ServerError
from ..pins import pin_key
from .ops import OPS, PIN, REQUIRED, OpSpec
from .reading import Request, parse_request

# id: at most 15 digits (always within reading.MAX_INT_ID, 2**53); pin: 1..99
# (pin_key judges it); a number in JSON's grammar (digits bounded: longer ones
# take the full path, which reads them the same)
_SHAPE = re.compile(
    rb'\{"id":(-?(?:0|[1-9][0-9]{0,14})),"op":"([a-z_]{2,16})","pin":([1-9][0-9]?)'
    rb'(?:,"([a-z_]{2,16})":(-?(?:0|[1-9][0-9]{0,15})(\.[0-9]{1,17})?([eE][-+]?[0-9]{1,3})?))?\}')

#: what a known shape needs: the spec, the field's validator (None: no field),
#: and the defaults of the other fields in the spec's order
_Entry = Tuple[OpSpec, Optional[Callable[[str, Any], Any]], Tuple[Tuple[str, Any], ...]]


def _table() -> Dict[Tuple[bytes, Optional[bytes]], _Entry]:
    table: Dict[Tuple[bytes, Optional[bytes]], _Entry] = {}
    for name, spec in OPS.items():
        if spec.scope != PIN or not name.replace("_", "").isalpha():
            continue
        fields = spec.fields
        if all(default is not REQUIRED for _, default in fields.values()):
            table[(name.encode(), None)] = (spec, None, tuple(
                (key, default) for key, (_, default) in fields.items()))
        for field, (validate, _) in fields.items():
            if field in ("id", "op", "pin") or not field.replace("_", "").isalpha():
                continue
            rest = tuple((key, default) for key, (_, default) in fields.items() if key != field)
            if all(default is not REQUIRED for _, default in rest):
                table[(name.encode(), field.encode())] = (spec, validate, rest)
    return table


_KNOWN = _table()
#: pin bytes -> board number, for the pins pin_key accepted once
_PINS: Dict[bytes, Any] = {}
#: the id's part of a known shape; what follows it is the frame's "tail"
_ID = re.compile(rb'\{"id":(-?(?:0|[1-9][0-9]{0,14})),"op":')
#: tail bytes -> (spec, board, validated args) of the tails read in full
#: once (a busy connection repeats a few: ``"op":"on","pin":7}``), bounded
_TAILS: Dict[bytes, Tuple[OpSpec, Any, Dict[str, Any]]] = {}
MAX_TAILS = 1024


def parse_known(frame: bytes) -> Optional[Request]:
    """The :class:`Request` of a frame of a known shape (or :exc:`Rejected`,
    as the full path would raise it); None: not a known shape."""
    head = _ID.match(frame)
    if head is not None:
        known = _TAILS.get(frame[head.end() - 5:])
        if known is not None:   # the same bytes read the same way: validators are pure
            id_text = head.group(1)
            return Request("0" if id_text == b"-0" else id_text.decode(), known[0], known[1],
                           dict(known[2]))
    match = _SHAPE.fullmatch(frame)
    if match is None:
        return None
    id_text, op, pin_text, field, number, frac, exp = match.groups()
    entry = _KNOWN.get((op, field))
    if entry is None:
        return None
    spec, validate, rest = entry
    id_json = str(int(id_text))   # "-0" is 0, as json.loads reads it
    try:
        board = _PINS.get(pin_text)
        if board is None:
            board = pin_key(int(pin_text))
            _PINS[pin_text] = board
        if validate is None:
            args = dict(rest)
        else:
            name = field.decode()
            value = float(number) if frac or exp else int(number)
            args = {name: validate(name, value)}
            args.update(rest)
        if spec.check is not None:
            spec.check(args)
    except ServerError as exc:
        raise Rejected(exc, id_json) from None
    if len(_TAILS) < MAX_TAILS:
        _TAILS[frame[match.end(1) + 1:]] = (spec, board, dict(args))
    return Request(id_json, spec, board, args)


def parse(frame: Union[bytes, str]) -> Request:
    """:func:`parse_known`, else the full path (:func:`~.reading.parse_request`)."""
    if type(frame) is bytes:
        request = parse_known(frame)
        if request is not None:
            return request
    return parse_request(frame)
