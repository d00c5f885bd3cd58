"""The state of one connection: greeting first, then (maybe) authentication.

A connection starts ``new``: only ``hello`` is accepted (and ``ping`` on a
server without authentication). Without authentication, ``hello`` answers
with the server's welcome (protocol and server version, board, mode,
operations) and the connection is ``ready``. With authentication, ``hello``
answers only with a challenge (see :mod:`remoteio.protocol.auth`); ``auth``
with the right proof then answers with the welcome, and nothing else is
carried out before that.

>>> session = Session({"server": "3.0.0"})
>>> session.gate("on").code
'hello_required'
>>> session.hello({"protocol": 1, "client": "doc"})["server"]
'3.0.0'
>>> session.gate("on") is None
True
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..errors import AuthRequired, BadArgument, HelloRequired, ServerError
from .ops import PROTOCOL_VERSION

NEW, AUTHENTICATING, READY = "new", "authenticating", "ready"


class Session:
    def __init__(self, welcome: Dict[str, Any], authenticator: Any = None):
        self.welcome = welcome
        self.authenticator = authenticator
        self.state = NEW
        self.client = ""
        self.heartbeat = 0.0  # seconds the client promises between messages (0: none)
        self.challenge: Any = None

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def greeted(self) -> bool:
        """Has the peer said hello?"""
        return self.state != NEW

    def gate(self, op: str) -> Optional[ServerError]:
        """The error that refuses *op* in the current state, or None."""
        if self.state == READY or op == "hello":
            return None
        if op == "ping" and self.authenticator is None:
            return None
        if op == "auth":
            if self.state == AUTHENTICATING:
                return None
            if self.state == NEW:
                return HelloRequired("send hello before auth")
        if self.authenticator is not None:
            return AuthRequired(f"authenticate (hello, then auth) before {op}")
        return HelloRequired(f"send hello before {op}")

    def hello(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["protocol"] < PROTOCOL_VERSION:
            raise BadArgument(
                f"this server speaks protocol {PROTOCOL_VERSION}; the client speaks {args['protocol']}")
        self.client = args["client"]
        self.heartbeat = args.get("heartbeat") or 0.0
        if self.authenticator is None:
            self.state = READY
            return dict(self.welcome, protocol=PROTOCOL_VERSION, auth=None)
        if self.state != READY:
            self.challenge = self.authenticator.challenge()
            self.state = AUTHENTICATING
        # nothing about the board or the server before the peer proves itself
        return {"protocol": PROTOCOL_VERSION, "auth": self.challenge.offer()}

    def auth(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """Verify the client's proof: the welcome and the server's own proof."""
        if self.authenticator is None or self.state == READY:
            return {}  # nothing to prove
        result = self.challenge.verify(args)  # raises AuthFailed
        self.state = READY
        return dict(self.welcome, protocol=PROTOCOL_VERSION, **result)
