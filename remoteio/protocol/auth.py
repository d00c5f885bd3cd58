"""Shared-secret authentication: HMAC-SHA256 challenge and response.

The token never crosses the wire. The server's ``hello`` reply carries a
fresh random nonce; the client answers with its own nonce and
``HMAC(token, "remoteio-auth-v1|client|" + server_nonce + "|" + client_nonce)``;
the server checks it in constant time and proves it knows the token too
with the same HMAC over ``"server"``. A captured exchange is useless later:
the next connection gets another server nonce.

Over TLS both proofs are bound to the TLS channel: ``"|" + binding`` is
added to the message, where binding is ``tls-server-end-point:`` and the
SHA-256 of the server's certificate (RFC 5929; Python's ssl offers neither
the TLS exporter nor a ``tls-unique`` that TLS 1.3 defines). A relay in the
middle shows the client its own certificate, so the proofs it relays are
for the wrong channel and fail on both sides.

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
import ipaddress
import secrets
import time
from typing import Any, Deque, Dict, List, Optional

from ..errors import AuthFailed

METHOD = "hmac-sha256"
NONCE_BYTES = 32


def new_nonce() -> str:
    return secrets.token_hex(NONCE_BYTES)


BINDING = "tls-server-end-point"


def proof(token: str, side: str, server_nonce: str, client_nonce: str, binding: str = "") -> str:
    """The MAC one *side* ("client" or "server") sends to prove it knows
    *token*, bound to the TLS channel when *binding* is given."""
    message = f"remoteio-auth-v1|{side}|{server_nonce}|{client_nonce}"
    if binding:
        message += "|" + binding
    return hmac.new(token.encode("utf-8"), message.encode(), hashlib.sha256).hexdigest()


def channel_binding(server_cert_der: bytes) -> str:
    """The binding of a TLS channel to the server certificate it runs under."""
    return f"{BINDING}:{hashlib.sha256(server_cert_der).hexdigest()}"


class Challenge:
    """One connection's authentication: one nonce, one attempt."""

    def __init__(self, token: str, binding: str = ""):
        self._token = token
        self._binding = binding
        self.nonce = new_nonce()
        self._used = False

    def offer(self) -> Dict[str, Any]:
        offer = {"method": METHOD, "nonce": self.nonce}
        if self._binding:
            offer["binding"] = BINDING
        return offer

    def verify(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """Check the client's proof; return the server's (raises AuthFailed)."""
        if self._used:
            raise AuthFailed("one authentication attempt per connection")
        self._used = True
        client_nonce = args["nonce"]
        expected = proof(self._token, "client", self.nonce, client_nonce, self._binding)
        if not hmac.compare_digest(expected, args["mac"]):
            raise AuthFailed("authentication failed: wrong token (or a relay in the middle)")
        return {"mac": proof(self._token, "server", self.nonce, client_nonce, self._binding)}


class Authenticator:
    """The server side: a challenge per connection."""

    def __init__(self, token: str, binding: str = ""):
        if not token or not token.strip():
            raise ValueError("an empty token authenticates nobody")
        self._token = token
        self.binding = binding  # of the server's TLS channel ("" without TLS)

    def challenge(self) -> Challenge:
        return Challenge(self._token, self.binding)


class Penalties:
    """Failed authentications, answered the way sshd's per-source penalties
    and fail2ban answer them: a delay per source that doubles with each
    failure (1 s, 2 s, 4 s ... at most :attr:`max_s`) and ends, forgotten
    after :attr:`forget_s` without failures; attempts refused meanwhile do
    not count and do not extend it; and a budget of failures per minute for
    all sources together, so that many addresses (every IPv6 /128 of a /64,
    which counts as one source here) cannot guess in parallel. Bounded: at
    most :attr:`max_sources` sources are remembered.

    >>> p = Penalties()
    >>> p.failed("10.0.0.9", now=100.0); p.refused("10.0.0.9", now=100.5)
    0.5
    >>> p.refused("10.0.0.9", now=101.0) is None
    True
    >>> p.source("2001:db8::1") == p.source("2001:db8::ffff")
    True
    """

    def __init__(self, first_s: float = 1.0, max_s: float = 60.0, forget_s: float = 600.0,
                 budget: int = 100, window_s: float = 60.0, max_sources: int = 10_000):
        self.first_s, self.max_s, self.forget_s = first_s, max_s, forget_s
        self.budget, self.window_s, self.max_sources = budget, window_s, max_sources
        self._sources: "collections.OrderedDict[str, List[float]]" = collections.OrderedDict()
        self._recent: Deque[float] = collections.deque()  # failures of all sources

    @staticmethod
    def source(address: str) -> str:
        """What one penalty covers: an IPv4 address, an IPv6 /64."""
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return address
        if ip.version == 6:
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def refused(self, address: str, now: Optional[float] = None) -> Optional[float]:
        """Seconds until *address* may try again (None: it may now)."""
        now = time.monotonic() if now is None else now
        while self._recent and now - self._recent[0] > self.window_s:
            self._recent.popleft()
        if len(self._recent) >= self.budget:
            return round(self.window_s - (now - self._recent[0]), 3)
        entry = self._sources.get(self.source(address))
        if entry is None:
            return None
        strikes, until, last = entry
        if now - last > self.forget_s:
            del self._sources[self.source(address)]
            return None
        return round(until - now, 3) if now < until else None

    def failed(self, address: str, now: Optional[float] = None) -> None:
        now = time.monotonic() if now is None else now
        key = self.source(address)
        strikes = self._sources.pop(key, [0, 0.0, 0.0])[0] + 1
        self._sources[key] = [strikes, now + min(self.max_s, self.first_s * 2 ** (strikes - 1)), now]
        while len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)  # the longest quiet
        self._recent.append(now)
        while len(self._recent) > self.budget:
            self._recent.popleft()
