"""Shared fixtures: servers on the simulated board, clients, raw connections.

Every server listens on 127.0.0.1 with a port picked by the kernel, every
wait is bounded, and every process a test starts is stopped by its pid.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from remoteio import RemoteServer
from remoteio.server import Server

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.002) -> Any:
    """Poll *predicate* until it is truthy (returned) or *timeout* passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def pulses(history: List[Tuple[int, float]]) -> List[Tuple[int, float]]:
    """High periods of a pin history as ``(start_ns, width_ms)``."""
    out, rose = [], None
    for t, value in history:
        if value >= 0.5 and rose is None:
            rose = t
        elif value < 0.5 and rose is not None:
            out.append((rose, (t - rose) / 1e6))
            rose = None
    return out


def levels(history: List[Tuple[int, float]]) -> List[float]:
    return [value for _, value in history]


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(host="127.0.0.1", port=0, backend="sim") as srv:
        yield srv


@pytest.fixture
def nowait_server() -> Iterator[Server]:
    with Server(host="127.0.0.1", port=0, backend="sim", mode="nowait") as srv:
        yield srv


@pytest.fixture(params=["wait", "nowait"])
def any_server(request) -> Iterator[Server]:
    with Server(host="127.0.0.1", port=0, backend="sim", mode=request.param) as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[RemoteServer]:
    with RemoteServer(*server.address, timeout=5.0) as remote:
        yield remote


class Raw:
    """A bare protocol connection: send frames, read replies, no client library."""

    def __init__(self, address: Tuple[str, int], timeout: float = 5.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.events: List[Dict[str, Any]] = []

    def send(self, frame: Any) -> None:
        data = frame if isinstance(frame, bytes) else (json.dumps(frame) + "\n").encode()
        self.sock.sendall(data)

    def recv(self) -> Dict[str, Any]:
        """The next reply (events are kept aside in ``self.events``)."""
        while True:
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "event" in message:
                self.events.append(message)
                continue
            return message

    def call(self, frame: Any) -> Dict[str, Any]:
        self.send(frame)
        return self.recv()

    def hello(self) -> Dict[str, Any]:
        reply = self.call({"id": "hello", "op": "hello"})
        assert reply["ok"], reply
        return reply

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server: Server) -> Iterator[Raw]:
    conn = Raw(server.address)
    conn.hello()
    yield conn
    conn.close()


class ServerProcess:
    """``python -m remoteio serve`` in a child process, on a free port."""

    def __init__(self, tmp_path: Path, *args: str):
        self.log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "wb")  # a file, not a pipe: never blocks the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "remoteio", "serve", "--host", "127.0.0.1", "--port", "0",
             "--sim", *args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        found = wait_until(lambda: re.search(rb"serving on \S+ port (\d+)", self.log_path.read_bytes()),
                           timeout=20)
        if not found:
            self.kill()
            raise RuntimeError(f"server did not start:\n{self.output()}")
        self.port = int(found.group(1))
        self.address = ("127.0.0.1", self.port)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> List[int]:
        import psutil
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: List[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        proc = ServerProcess(tmp_path, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        for pid in proc.children():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
