"""The server's side of one connection as an object: bytes in; reply frames,
requests for the pins and a close reason out.

No sockets and no threads (as h11 does for HTTP): the listener feeds it what
it reads and carries out what it gives back. It splits frames, validates
them, keeps the session gate (hello first, then authentication), answers
what belongs to the connection itself (``hello``, ``ping``, ``auth``) and
bounds what a peer that has proved nothing may cost (a few refusals, then
the connection closes). The clock is injected (``ping`` answers with it).

>>> conn = ServerConnection(Session({"server": "3.0.0"}), clock_ns=lambda: 42)
>>> conn.receive_data(b'{"id":1,"op":"on","pin":7}\\n{"id":2,"op":"hello"}\\n{"id":3,"op":"ping"}\\n')
3
>>> conn.next_step().frame
b'{"id":1,"ok":false,"error":{"code":"hello_required","message":"send hello before on"}}\\n'
>>> step = conn.next_step(); type(step).__name__, step.take_over
('Greeted', False)
>>> conn.next_step().frame
b'{"id":3,"ok":true,"time_ns":42}\\n'
>>> conn.receive_data(b'{"id":4,"op":"on","pin":7}\\n')
1
>>> type(conn.next_step()).__name__
'PinRequest'
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, NamedTuple, Optional, Union

from ..errors import AuthFailed, FrameTooLarge, Rejected, ServerError
from . import writing
from .auth import Penalties
from .framing import TOO_LARGE, Frame, FrameBuffer, MAX_FRAME
from .ops import CONNECTION, SERVER
from .known import parse
from .reading import Request
from .session import Session

log = logging.getLogger(__name__)

#: error replies a connection may earn before hello (and auth) succeeds
PRE_READY_REFUSALS = 4


class Answer(NamedTuple):
    """A reply frame to send (an answer, or a refusal)."""
    frame: bytes


class Greeted(NamedTuple):
    """``hello`` was answered (*frame*): the router learns the client's session."""
    frame: bytes
    session: Optional[str]
    take_over: bool


class PinRequest(NamedTuple):
    """A request for the router (a pin's, or the server's when ``server_scope``)."""
    request: Request

    @property
    def server_scope(self) -> bool:
        return self.request.spec.scope == SERVER


Step = Union[Answer, Greeted, PinRequest, None]


class ServerConnection:
    def __init__(self, session: Session, *, max_frame: int = MAX_FRAME,
                 penalties: Optional[Penalties] = None, ip: str = "local", peer: str = "local",
                 clock_ns: Callable[[], int] = time.monotonic_ns):
        self.session = session
        self.penalties = penalties if penalties is not None else Penalties()
        self.ip, self.peer = ip, peer
        self.max_frame = max_frame
        self.clock_ns = clock_ns
        self.refusals = 0
        #: why the connection must end once its replies are out (None: it goes on)
        self.close_reason: Optional[str] = None
        self._frames = FrameBuffer(max_frame)
        self._waiting: Deque[Frame] = deque()

    @property
    def ready(self) -> bool:
        """Has the peer said hello (and authenticated, where that is asked)?"""
        return self.session.ready

    @property
    def waiting(self) -> int:
        """Frames received, not yet handled."""
        return len(self._waiting)

    def receive_data(self, data: bytes) -> int:
        """Take bytes read from the peer; the number of frames now waiting."""
        if self.close_reason is None:
            self._waiting.extend(self._frames.feed(data))
        return len(self._waiting)

    def discard(self) -> None:
        """Forget the frames not yet handled (the connection is ending)."""
        self._waiting.clear()

    def next_step(self) -> Step:
        """Handle the next waiting frame: what the listener must do for it
        (None: nothing; no frame waits, or the connection is ending)."""
        if self.close_reason is not None or not self._waiting:
            self._waiting.clear()
            return None
        frame = self._waiting.popleft()
        if frame is TOO_LARGE:
            return self._refuse(FrameTooLarge(f"a frame may be at most {self.max_frame} bytes"))
        req = None
        try:
            req = parse(frame)  # type: ignore[arg-type]
            refusal = self.session.gate(req.op)
            if refusal is not None:
                raise Rejected(refusal, req.id_json)
            if req.spec.scope != CONNECTION:
                return PinRequest(req)
            if req.op == "hello":
                welcome = self.session.hello(req.args)
                return Greeted(writing.ok(req.id_json, welcome), req.args["session"],
                               req.args["take_over"])
            return Answer(writing.ok(req.id_json, self._connection_op(req)))
        except Rejected as rejected:
            return self._refuse(rejected.error, rejected.id_json)
        except ServerError as exc:
            return self._refuse(exc, req.id_json if req else "null")
        except Exception:  # a bug: answer this frame, keep the connection
            log.exception("a frame from %s failed", self.peer)
            return Answer(writing.error_from(ServerError("internal error; see the server log"),
                                             req.id_json if req else "null"))

    def _refuse(self, error: ServerError, id_json: str = "null") -> Answer:
        """An error reply; before hello/auth succeeds only a few are given
        (a peer that has proved nothing gets little of our memory)."""
        if not self.session.ready:
            self.refusals += 1
            if self.refusals >= PRE_READY_REFUSALS and self.close_reason is None:
                self.close_reason = f"{self.refusals} refused frames before hello/auth"
        return Answer(writing.error_from(error, id_json))

    def _connection_op(self, req: Request) -> Optional[Dict[str, Any]]:
        if req.op == "ping":
            result: Dict[str, Any] = {"time_ns": self.clock_ns()}
            if req.args["data"] is not None:
                result["data"] = req.args["data"]
            return result
        if req.op == "auth":
            return self._authenticate(req)
        raise ServerError(f"{req.op} is not a connection operation")  # pragma: no cover

    def _authenticate(self, req: Request) -> Dict[str, Any]:
        wait = self.penalties.refused(self.ip)
        if wait is not None:  # refused, not counted: a penalty is never extended by waiting it out
            self.close_reason = "authentication refused"
            raise AuthFailed(f"too many failed attempts (from {self.penalties.source(self.ip)}, or "
                             f"from everywhere); try again in {max(1, round(wait))} s")
        try:
            return self.session.auth(req.args)
        except AuthFailed as exc:
            self.penalties.failed(self.ip)
            log.warning("authentication failed for %s: %s", self.peer, exc.message)
            self.close_reason = "authentication failed"
            raise
