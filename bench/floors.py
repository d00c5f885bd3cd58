"""The floors every latency is compared with, measured in the same run.

* bare: a Python TCP echo in another process (one connection, TCP_NODELAY)
* relayed: the same echo, but each message goes through a second process over
  a multiprocessing pipe and back: the least any process-per-pin design can do
"""
from __future__ import annotations

import multiprocessing
import socket
from typing import Tuple


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


def start_floor(kind: str) -> Tuple[multiprocessing.Process, Tuple[str, int]]:
    """Start an echo server process; returns it and its address."""
    listener = socket.create_server(("127.0.0.1", 0))
    target = _bare_echo if kind == "bare" else _relayed_echo
    proc = multiprocessing.get_context("fork").Process(target=target, args=(listener,))
    proc.start()
    address = listener.getsockname()
    listener.close()
    return proc, address
