"""A stand-in server on 127.0.0.1 for the client's tests: one connection (or
a few, one after another), hello answered, every other request as the test's
script says (late, out of order, or never).

Tests import it (``from fakeservers import ScriptedServer``); it runs no
remoteio code, so the client's side of the protocol is checked on its own.
"""
from __future__ import annotations

import heapq
import json
import select
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

Frame = Dict[str, Any]
#: what a scripted server does with one request: frames to send, each after a delay (s)
Script = Callable[[Frame], List[Tuple[float, Frame]]]

HELLO: Frame = {"ok": True, "server": "scripted", "protocol": 1, "mode": "wait", "auth": None}


class ScriptedServer:
    """Accepts one connection (or *connections*, each after the last ended),
    answers hello with *hello* (its id added), and every other request as
    *script* says; *reverse*: the requests read together are answered in
    reverse order, so that replies cross."""

    def __init__(self, script: Script, reverse: bool = False, hello: Optional[Frame] = None,
                 connections: int = 1):
        self.script = script
        self.reverse = reverse
        self.hello = HELLO if hello is None else hello
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.requests: List[Frame] = []
        self.connections = connections  # served one after another (a client's reconnects)
        self.connection = 0             # the one being served now (from 1)
        self._stop = threading.Event()
        self._drop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, message: Frame) -> List[Tuple[float, Frame]]:
        if message.get("op") == "hello":
            return [(0.0, dict(self.hello, id=message["id"]))]
        self.requests.append(message)
        return self.script(message)

    def drop(self) -> None:
        """Close the connection being served (the client sees it lost)."""
        self._drop.set()

    def _serve(self) -> None:
        self.sock.settimeout(10)
        while self.connection < self.connections and not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connection += 1
            self._drop.clear()
            self._serve_one(conn)

    def _serve_one(self, conn: socket.socket) -> None:
        due: List[Tuple[float, int, bytes]] = []  # a heap: (when, order, frame)
        order = 0
        buffer = b""
        with conn:
            try:
                while not self._stop.is_set() and not self._drop.is_set():
                    wait = 0.5 if not due else max(0.0, due[0][0] - time.monotonic())
                    readable, _, _ = select.select([conn], [], [], min(wait, 0.5))
                    if readable:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                        *lines, buffer = buffer.split(b"\n")
                        messages = [json.loads(line) for line in lines]
                        for message in reversed(messages) if self.reverse else messages:
                            for delay, frame in self._answer(message):
                                order += 1
                                heapq.heappush(due, (time.monotonic() + delay, order,
                                                     (json.dumps(frame) + "\n").encode()))
                    ready = []
                    while due and due[0][0] <= time.monotonic():
                        ready.append(heapq.heappop(due)[2])
                    if ready:  # in one write: frames due together are read together
                        conn.sendall(b"".join(ready))
            except (OSError, ValueError):
                return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self.thread.join(5)
