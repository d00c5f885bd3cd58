"""The client's side of a connection as pure code: requests to bytes, bytes to replies and events.

h11-style: :class:`ClientConnection` does no I/O and reads no clock of its
own (one is injected). Whoever owns the socket (the sync client's reader
thread, the asyncio client's protocol) hands it the bytes it received and
writes the bytes it returns; replies come back matched to the *waiter*
(a lock, a future: whatever the caller registered with the request).
:class:`Greeting` is the hello and authentication steps, as decisions.

>>> conn = ClientConnection(clock=lambda: 0.0)
>>> conn.send([("read", {"pin": 7}, "w1")])
b'{"id":1,"op":"read","pin":7}\\n'
>>> conn.receive(b'{"id":1,"ok":true,"value":1}\\n{"event":"change","pin":7}\\n')
[Reply(waiter='w1', message={'id': 1, 'ok': True, 'value': 1}), Event(message={'event': 'change', 'pin': 7})]
>>> result({"id": 2, "ok": False, "error": {"code": "pin_busy", "message": "held"}})
Traceback (most recent call last):
...
remoteio.errors.PinBusy: held
"""
from __future__ import annotations

import hmac
import itertools
import json
import json.scanner
import logging
import time
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import (AuthFailed, AuthRequired, BadArgument, ConnectFailed, ProtocolViolation,
                      RemoteIOError, error_for_code)
from . import auth, writing
from .framing import MAX_FRAME, TOO_LARGE, FrameBuffer
from .ops import PROTOCOL_VERSION

log = logging.getLogger(__name__)

#: replies and events may be larger than requests (info, state, history)
CLIENT_MAX_FRAME = 4 << 20

_scan = json.scanner.make_scanner(json.JSONDecoder())
_decode = json.JSONDecoder().decode
_ACKED = b',"ok":true}'
_ACKED_LINE = _ACKED + b"\n"


def _ack_id(digits: bytes) -> Optional[int]:
    """The id of a bare acknowledgement from the digits between ``{"id":`` and
    ``,"ok":true}``, or None if they are not exactly a JSON integer's."""
    if digits.isdigit() and len(digits) < 16 and (digits[0] != 48 or len(digits) == 1):
        return int(digits)
    return None


def _loads(frame: bytes) -> Any:
    """One frame's JSON, as json.loads would give it, with shortcuts: a bare
    acknowledgement (``{"id":7,"ok":true}``, the reply to most writes) is read
    without a parser, and the scanner is called directly (json.loads spends
    as long again guessing the encoding and checking what trails)."""
    if frame.endswith(_ACKED) and frame.startswith(b'{"id":'):
        request_id = _ack_id(frame[6:-11])
        if request_id is not None:
            return {"id": request_id, "ok": True}
    text = frame.decode()
    try:
        message, end = _scan(text, 0)
    except StopIteration:
        return _decode(text)  # raises the parser's error (a ValueError)
    return message if end == len(text) else _decode(text)


def _fitting(op: str, frame: bytes) -> bytes:
    """*frame*, or ValueError if it is over the protocol's frame size: the server
    could not read its id, so its refusal would reach no caller (who would wait
    out the timeout)."""
    if len(frame) > MAX_FRAME + 1:  # the newline is not counted
        raise ValueError(f"the request is {len(frame) - 1} bytes as JSON; a frame may be at "
                         f"most {MAX_FRAME} (docs/protocol.md): send less in one call")
    return frame


class Reply(NamedTuple):
    """The reply to a request: its waiter and the whole message (``ok`` or not)."""
    waiter: Any
    message: Dict[str, Any]


class Event(NamedTuple):
    """A frame the server pushed without a request (``{"event": ...}``)."""
    message: Dict[str, Any]


Received = Union[Reply, Event]


def result(message: Mapping[str, Any]) -> Dict[str, Any]:
    """A reply's fields (``id`` and ``ok`` left out), or the server's error raised
    as its class from remoteio.errors."""
    if not message.get("ok"):
        raise error_of(message)
    return {k: v for k, v in message.items() if k not in ("id", "ok")}


def error_of(message: Mapping[str, Any]) -> RemoteIOError:
    """The exception a failed reply (or a ``task_failed`` event) stands for."""
    error = message.get("error") or {}
    code = error.get("code", "internal_error")
    exc = error_for_code(code)(error.get("message", code), code=code, detail=error.get("detail"))
    if isinstance(message.get("results"), dict):  # a batch: what became of every pin
        exc.results = message["results"]
    return exc


class ClientConnection:
    """Framing, request ids and reply matching of one client connection."""

    __slots__ = ("_frames", "_pending", "_ids", "clock", "last_sent", "last_received", "refusal")

    def __init__(self, max_frame: int = CLIENT_MAX_FRAME,
                 clock: Callable[[], float] = time.monotonic):
        self._frames = FrameBuffer(max_frame)
        self._pending: Dict[int, Any] = {}
        self._ids = itertools.count(1)
        self.clock = clock
        #: when a request last went out: the server judges a client's liveness
        #: by what it receives, so heartbeats follow this, not last_received
        self.last_sent = self.last_received = clock()
        #: the last error the server sent for no request (server_busy: it refused
        #: the connection and closes it): what a failed greeting reports
        self.refusal: Optional[RemoteIOError] = None

    # ---- requests out -----------------------------------------------------------------
    def send(self, requests: Sequence[Tuple[str, Mapping[str, Any], Any]]) -> bytes:
        """The bytes of ``(op, fields, waiter)`` requests, each waiter now waiting
        for its reply. A request that cannot be encoded (NaN, not JSON) raises
        BadArgument and registers none of them."""
        frames = []
        ids = []
        try:
            for op, fields, waiter in requests:
                request_id = next(self._ids)
                frames.append(_fitting(op, writing.request(request_id, op, fields)))
                self._pending[request_id] = waiter
                ids.append(request_id)
        except (TypeError, ValueError) as exc:
            for unsent in ids:
                self._pending.pop(unsent, None)
            raise BadArgument(f"cannot send {op}: {exc}") from None
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def send_one(self, op: str, fields: Mapping[str, Any], waiter: Any) -> bytes:
        """:meth:`send` of one request (the common case, without the lists)."""
        request_id = next(self._ids)
        try:
            frame = _fitting(op, writing.request(request_id, op, fields))
        except (TypeError, ValueError) as exc:
            raise BadArgument(f"cannot send {op}: {exc}") from None
        self._pending[request_id] = waiter
        return frame

    def sent(self) -> None:
        """The bytes :meth:`send` returned went out (the heartbeat's clock)."""
        self.last_sent = self.clock()

    def quiet(self) -> float:
        """Seconds since a request last went out."""
        return self.clock() - self.last_sent

    # ---- bytes in -----------------------------------------------------------------------
    def receive(self, data: bytes) -> List[Received]:
        """Replies (to their waiters) and events in *data*; a reply to a waiter
        no longer known (forgotten) is dropped. Raises ProtocolViolation for a
        frame over the limit, ValueError for one that is not JSON."""
        self.last_received = self.clock()
        pending = self._pending
        if data.endswith(_ACKED_LINE) and data.startswith(b'{"id":') and self._frames.between:
            # the commonest read by far: one bare acknowledgement, nothing around it
            request_id = _ack_id(data[6:-12])
            if request_id is not None:
                waiter = pending.pop(request_id, None)
                return [] if waiter is None else [Reply(waiter, {"id": request_id, "ok": True})]
        out: List[Received] = []
        for frame in self._frames.feed(data):
            if frame is TOO_LARGE:
                raise ProtocolViolation(
                    f"the server sent a frame over {self._frames.max_frame >> 20} MiB")
            message = _loads(frame)
            request_id = message.get("id")
            if request_id is not None:
                waiter = pending.pop(request_id, None)
                if waiter is not None:
                    out.append(Reply(waiter, message))
            elif "event" in message:
                out.append(Event(message))
            else:
                self.refusal = error_of(message)
                if self.refusal.code != "server_busy":
                    log.warning("server error without a request: %s", message.get("error"))
        return out

    # ---- the end --------------------------------------------------------------------------
    def fail(self) -> List[Any]:
        """Every waiter still waiting (the connection is gone: none will get a reply)."""
        waiters = list(self._pending.values())
        self._pending.clear()
        return waiters

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def waiting(self) -> List[Any]:
        return list(self._pending.values())


class Greeting:
    """hello, then the challenge-response if the server asks for it, as steps:
    :meth:`hello` is the first request, :meth:`on_hello` judges its reply (and
    gives the ``auth`` request, if any), :meth:`on_auth` judges that one."""

    def __init__(self, *, where: str, client: str, heartbeat: float, session: str,
                 take_over: bool, token: Optional[str]):
        self.where = where
        self._token = token
        self._fields = {"protocol": PROTOCOL_VERSION, "client": client, "heartbeat": heartbeat,
                        "session": session, "take_over": take_over}
        self._offer: Dict[str, Any] = {}
        self._nonce = ""
        self._binding = ""

    def hello(self) -> Tuple[str, Dict[str, Any]]:
        return "hello", dict(self._fields)

    def on_hello(self, welcome: Dict[str, Any],
                 binding: str = "") -> Optional[Tuple[str, Dict[str, Any]]]:
        """The ``auth`` request the server's welcome asks for, or None (done).
        *binding* is the TLS channel's (auth.channel_binding), "" without TLS."""
        offer = welcome.get("auth")
        token = self._token
        if not offer:
            if token is not None:
                # whoever answers at this address skipped the proof a server with
                # our token would ask for: an impostor, or a server without auth
                raise AuthFailed(
                    f"{self.where} asks for no authentication, but this client has a "
                    "token: refusing a server that cannot prove it knows it (an impostor?). "
                    "To use a server without authentication, pass token=False "
                    "(--no-token for the remoteio command)")
            return None
        if token is None:
            raise AuthRequired(f"{self.where} needs a token: give one (token= in Python, "
                               "--token-file for the remoteio command), set REMOTEIO_TOKEN or "
                               "REMOTEIO_TOKEN_FILE, or put it in ~/.config/remoteio/token")
        if offer.get("method") != auth.METHOD:
            raise ConnectFailed(f"the server wants authentication method {offer.get('method')!r}")
        # over TLS the proofs are bound to this channel (the certificate we saw)
        if bool(binding) != (offer.get("binding") == auth.BINDING):
            raise AuthFailed("the server and this client disagree on binding the proof to TLS: "
                             "not trusting it")
        self._offer, self._binding, self._nonce = offer, binding, auth.new_nonce()
        return "auth", {"nonce": self._nonce,
                        "mac": auth.proof(token, "client", offer["nonce"], self._nonce, binding)}

    def on_auth(self, reply: Dict[str, Any]) -> Dict[str, Any]:
        """The server's side of the proof, checked; the welcome after auth."""
        assert self._token is not None and self._offer
        expected = auth.proof(self._token, "server", self._offer["nonce"], self._nonce,
                              self._binding)
        reply = dict(reply)
        if not hmac.compare_digest(str(reply.pop("mac", "")), expected):
            raise AuthFailed("the server could not prove it knows the token: not trusting it")
        return reply
