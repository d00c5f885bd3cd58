"""What the listener keeps of one client connection: its socket, its output, and its protocol object."""
from __future__ import annotations

import time
from typing import Any, Optional

from ..protocol.server_connection import ServerConnection
from ..protocol.session import Session
from .transport import Transport


class Connection:
    __slots__ = ("id", "transport", "peer", "ip", "protocol", "out", "pending",
                 "eof", "eof_at", "events", "events_dropped", "opened_at", "last_seen",
                 "closing_reason", "left")

    def __init__(self, conn_id: int, transport: Transport, peer: str, ip: str,
                 protocol: ServerConnection):
        self.id = conn_id
        self.transport = transport
        self.peer = peer
        self.ip = ip
        self.protocol = protocol    # frames, the session gate, hello/ping/auth (no sockets)
        self.out = bytearray()
        self.pending = 0            # requests handed to the router, not yet answered
        self.eof = False            # no more reading: the peer sent end of file, or we end it
        self.eof_at = 0.0
        self.events = 0             # what the selector watches for (0: not registered)
        self.events_dropped = 0
        self.opened_at = self.last_seen = time.monotonic()
        self.closing_reason: Optional[str] = None  # why we close it (logged)
        self.left = False           # the router told: its pins follow their disconnect policy

    @property
    def session(self) -> Session:
        return self.protocol.session

    @property
    def sock(self) -> Any:
        return self.transport.sock

    def silent_for(self, now: float) -> float:
        return now - self.last_seen


def format_peer(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr) or "local"


def peer_ip(addr: Any) -> str:
    return addr[0] if isinstance(addr, tuple) and addr else "local"
