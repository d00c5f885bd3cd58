"""The floors every latency is compared with, measured in the same run.

* bare: a Python TCP echo in another process (one connection, TCP_NODELAY)
* relayed: the same echo, but each message goes through a second process over
  a multiprocessing pipe and back: the least any process-per-pin design can do
"""
from __future__ import annotations

import multiprocessing
import socket
from typing import Any, Dict

from .harness import RawClient, percentiles, round_trips

#: the message the floors echo: as long as a small request
PING = b'{"id":1,"op":"ping"}\n'


def _accept(listener: socket.socket) -> socket.socket:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _bare_echo(listener: socket.socket) -> None:
    conn = _accept(listener)
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def _relay(pipe, parent_end) -> None:
    parent_end.close()  # so that the server's close means end of file here
    while True:
        try:
            data = pipe.recv_bytes()
        except EOFError:
            return
        pipe.send_bytes(data)


def _relayed_echo(listener: socket.socket) -> None:
    ours, theirs = multiprocessing.Pipe()
    relay = multiprocessing.get_context("fork").Process(target=_relay, args=(theirs, ours))
    relay.start()
    theirs.close()
    conn = _accept(listener)
    while True:
        data = conn.recv(65536)
        if not data:
            break
        ours.send_bytes(data)
        conn.sendall(ours.recv_bytes())
    ours.close()
    relay.join(5)


class Floor:
    """An echo server process (``"bare"`` or ``"relayed"``) and a client
    connected to it, kept for the whole run so that it can be measured again."""

    def __init__(self, kind: str):
        listener = socket.create_server(("127.0.0.1", 0))
        target = _bare_echo if kind == "bare" else _relayed_echo
        self.proc = multiprocessing.get_context("fork").Process(target=target, args=(listener,))
        self.proc.start()
        address = listener.getsockname()
        listener.close()
        self.client = RawClient(address, timeout=10.0, keep_events=False)

    def measure(self, count: int) -> Dict[str, Any]:
        return percentiles(round_trips(lambda n: self.client.call_line(PING), count))

    def close(self) -> None:
        self.client.close()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
