"""The state of one connection: greeting first, then (maybe) authentication.

A connection starts ``new``: only ``hello`` (and ``ping``) are accepted.
``hello`` answers with the server's welcome (protocol and server version,
board, mode, operations). If the server needs no authentication the
connection is then ``ready``; otherwise it waits for ``auth`` (see
:mod:`remoteio.protocol.auth`) and nothing else is carried out until that
succeeds.

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
_ALWAYS = frozenset(("hello", "ping"))


class Session:
    def __init__(self, welcome: Dict[str, Any], authenticator: Any = None):
        self.welcome = welcome
        self.authenticator = authenticator
        self.state = NEW
        self.client = ""
        self.challenge: Any = None

    @property
    def ready(self) -> bool:
        return self.state == READY

    def gate(self, op: str) -> Optional[ServerError]:
        """The error that refuses *op* in the current state, or None."""
        if self.state == READY or op in _ALWAYS:
            return None
        if self.state == NEW:
            return HelloRequired(f"send hello before {op}")
        if op == "auth":
            return None
        return AuthRequired(f"authenticate (op auth) before {op}")

    def hello(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["protocol"] < PROTOCOL_VERSION:
            raise BadArgument(
                f"this server speaks protocol {PROTOCOL_VERSION}; the client speaks {args['protocol']}")
        self.client = args["client"]
        result = dict(self.welcome, protocol=PROTOCOL_VERSION)
        if self.authenticator is None:
            self.state = READY
            result["auth"] = None
        else:
            self.challenge = self.authenticator.challenge()
            self.state = AUTHENTICATING
            result["auth"] = self.challenge.offer()
        return result

    def auth(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if self.state == READY:
            return {}
        result = self.challenge.verify(args)  # raises AuthFailed
        self.state = READY
        return result
