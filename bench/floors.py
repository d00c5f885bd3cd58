"""The floors every latency is compared with, measured in the same run.

* bare: a Python TCP echo in another process (one connection, TCP_NODELAY)
* relayed: the same echo, but each message goes through a second process over
  a multiprocessing pipe and back: the least any process-per-pin design can do
* forks: 26 processes forked as the zygote forks its workers, by a process of
  the zygote's size: the least 26 pins' workers cost before any of our code
"""
from __future__ import annotations

import multiprocessing
import os
import socket
import time
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


def _greeter(listener: socket.socket) -> None:
    """(In its own process) one selector loop: accept every connection and answer
    each line with a small ``ok`` reply carrying its id, until the listener closes
    on our side (the parent terminates us)."""
    import json
    import selectors
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            if key.data is None:
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    selector.register(conn, selectors.EVENT_READ, [b""])
                continue
            conn, pending = key.fileobj, key.data
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                selector.unregister(conn)
                conn.close()
                continue
            *lines, pending[0] = (pending[0] + data).split(b"\n")
            for line in lines:
                reply = {"id": json.loads(line).get("id"), "ok": True}
                conn.send(json.dumps(reply).encode() + b"\n")


class Greeter:
    """A bare Python server (one selector loop, another process) that answers
    every line ``{"id": ..., "ok": true}``: the floor of the crowd section, which
    plays its clients against it in the same way as against remoteio."""

    def __init__(self):
        listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.proc = multiprocessing.get_context("fork").Process(target=_greeter, args=(listener,))
        self.proc.start()
        self.address = listener.getsockname()
        listener.close()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


def fork_floor_s(count: int = 26) -> float:
    """Seconds for *count* forks, one after the other, made as the zygote
    makes its workers' (``spawn.fork_function``: the C library's fork where
    it can) by this process once it has imported the server (the zygote's
    size): each child says it runs and stays alive until the end, as a pin's
    worker does. Run it in a process of its own, with one thread."""
    import remoteio.server.app  # noqa: F401 - a process as big as the zygote
    from remoteio.server.spawn import fork_function
    fork = fork_function()
    hold_r, hold_w = os.pipe()   # the children wait on it; its close ends them
    children = []
    t0 = time.perf_counter()
    try:
        for _ in range(count):
            ran_r, ran_w = os.pipe()
            pid = fork()
            if pid == 0:
                try:
                    os.close(hold_w)
                    os.write(ran_w, b"!")
                    os.read(hold_r, 1)   # end of file once the parent closes hold_w
                finally:
                    os._exit(0)
            children.append(pid)
            os.close(ran_w)
            os.read(ran_r, 1)
            os.close(ran_r)
        return round(time.perf_counter() - t0, 3)
    finally:
        os.close(hold_w)
        os.close(hold_r)
        for pid in children:
            os.waitpid(pid, 0)
