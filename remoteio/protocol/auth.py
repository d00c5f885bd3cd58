"""Shared-secret authentication: HMAC-SHA256 challenge and response.

The token never crosses the wire. The server's ``hello`` reply carries a
fresh random nonce; the client answers with its own nonce and
``HMAC(token, "remoteio-auth-v1|client|" + server_nonce + "|" + client_nonce)``;
the server checks it in constant time and proves it knows the token too
with the same HMAC over ``"server"``. A captured exchange is useless later:
the next connection gets another server nonce.

>>> server = Authenticator("s3cret").challenge()
>>> offer = server.offer()
>>> client_nonce = new_nonce()
>>> mac = proof("s3cret", "client", offer["nonce"], client_nonce)
>>> reply = server.verify({"nonce": client_nonce, "mac": mac})
>>> reply["mac"] == proof("s3cret", "server", offer["nonce"], client_nonce)
True
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import time
from typing import Any, Deque, Dict

from ..errors import AuthFailed

METHOD = "hmac-sha256"
NONCE_BYTES = 32


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


def proof(token: str, side: str, server_nonce: str, client_nonce: str) -> str:
    """The MAC one *side* ("client" or "server") sends to prove it knows *token*."""
    message = f"remoteio-auth-v1|{side}|{server_nonce}|{client_nonce}".encode()
    return hmac.new(token.encode("utf-8"), message, hashlib.sha256).hexdigest()


class Challenge:
    """One connection's authentication: one nonce, one attempt."""

    def __init__(self, token: str):
        self._token = token
        self.nonce = new_nonce()
        self._used = False

    def offer(self) -> Dict[str, Any]:
        return {"method": METHOD, "nonce": self.nonce}

    def verify(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """Check the client's proof; return the server's (raises AuthFailed)."""
        if self._used:
            raise AuthFailed("one authentication attempt per connection")
        self._used = True
        client_nonce = args["nonce"]
        expected = proof(self._token, "client", self.nonce, client_nonce)
        if not hmac.compare_digest(expected, args["mac"]):
            raise AuthFailed("authentication failed: wrong token")
        return {"mac": proof(self._token, "server", self.nonce, client_nonce)}


class Authenticator:
    """The server side: a challenge per connection."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("an empty token authenticates nobody")
        self._token = token

    def challenge(self) -> Challenge:
        return Challenge(self._token)


class FailureLimiter:
    """Counts failed authentications per peer address; past *limit* failures
    within *window* seconds, that address is refused until they age out."""

    def __init__(self, limit: int = 5, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._failures: Dict[str, Deque[float]] = collections.defaultdict(collections.deque)

    def _recent(self, address: str, now: float) -> Deque[float]:
        failures = self._failures[address]
        while failures and now - failures[0] > self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def blocked(self, address: str, now: float = None) -> bool:
        now = time.monotonic() if now is None else now
        return address in self._failures and len(self._recent(address, now)) >= self.limit

    def failed(self, address: str, now: float = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(address, now)
        self._failures[address].append(now)
