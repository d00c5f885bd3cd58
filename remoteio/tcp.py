"""TCP socket tuning shared by the server and the client: no Nagle, and a
dead peer (power cut, Wi-Fi gone, a NAT that forgot us: no FIN ever comes)
noticed within :data:`DEAD_PEER_S` seconds.

>>> DEAD_PEER_S
19
"""
from __future__ import annotations

import socket
import struct

#: keepalive: the first probe after this long with nothing received...
KEEPALIVE_IDLE_S = 10
#: ...then a probe every KEEPALIVE_INTERVAL_S, and the peer is dead after KEEPALIVE_PROBES
KEEPALIVE_INTERVAL_S = 3
KEEPALIVE_PROBES = 3
#: the keepalive probes' span; Linux gives up at this probe timer or the next,
#: one interval later (measured 18.85-22.0 s in tests/net: docs/reliability.md)
DEAD_PEER_S = KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_PROBES
#: TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before the
#: connection is given up (without it, ~15 minutes of retransmissions). Linux
#: then also lets it decide when keepalive gives up (at the first probe timer
#: at or past it), hence DEAD_PEER_S: the same bound both ways
USER_TIMEOUT_MS = DEAD_PEER_S * 1000


def tune(sock: socket.socket) -> None:
    """TCP_NODELAY and the keepalive above on a TCP socket (others untouched;
    on systems without these options the kernel's defaults stay)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                        ("TCP_KEEPCNT", KEEPALIVE_PROBES), ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS)):
        option = getattr(socket, name, None)  # a fixed list of names, never from the wire
        if option is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
            except OSError:
                pass


def reset(sock: socket.socket) -> None:
    """Abort the connection: RST, and what is still unsent is dropped by the
    kernel, so a request given up on is never delivered later. Wakes a thread
    blocked reading it (shutdown of the reading side sends nothing)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()
