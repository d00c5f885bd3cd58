"""Shared fixtures: servers on the simulated board, clients, raw connections
(the helpers behind them are remoteio.testing).

Every server listens on 127.0.0.1 with a port picked by the kernel, every
wait is bounded, and every process a test starts is stopped by its pid.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from remoteio import RemoteServer
from remoteio.server import Server
from remoteio.testing import RawClient, ServerProcess

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def raw(server: Server) -> Iterator[RawClient]:
    conn = RawClient(server.address)
    conn.hello()
    yield conn
    conn.close()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: List[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        proc = ServerProcess("--sim", *args, workdir=tmp_path, start_timeout=20, cwd=ROOT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
