"""Fixtures of the network-fault suite (inside the VM: bash tests/net/run.sh).

* ``net`` (session): the two namespaces and their veth pair (netrig.py);
  skips outside a root machine with sch_netem (this host's kernel has none).
* ``faults``: the link's faults, all cleared after each test.
* ``make_server``: ``remoteio serve --sim`` in the server namespace, a fresh one
  per test (stopped by pid at the end); its log is printed if the test fails.
* ``observer``: a client in the server's namespace, over its loopback, which
  no fault touches: it reads the simulated board's history and drives inputs.
* ``connect``: RemoteServer clients in the client namespace, closed at the end
  (to ``server``'s port unless given another).
* ``floor``: the guest's timer floor (netrig.TimerFloor) measured while the test
  runs, for its timing bounds: documented figure + the floor's worst lateness.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netrig  # noqa: E402
from remoteio import RemoteServer  # noqa: E402


def _netem_available() -> bool:
    return os.geteuid() == 0 and (Path("/sys/module/sch_netem").exists() or
                                  os.environ.get("REMOTEIO_NET_RIG") == "1")


@pytest.fixture(scope="session")
def net() -> Iterator[None]:
    if not _netem_available():
        message = "needs root and sch_netem (run inside the VM: bash tests/net/run.sh)"
        if os.environ.get("REMOTEIO_NET_REQUIRE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    netrig.create()
    yield
    netrig.destroy()


@pytest.fixture
def faults(net) -> Iterator[netrig.Faults]:
    f = netrig.Faults()
    f.clear()
    yield f
    f.clear()
    f.old_address()


@pytest.fixture
def floor() -> Iterator[netrig.TimerFloor]:
    with netrig.TimerFloor() as timer_floor:
        yield timer_floor


SERVERS: List[netrig.ServerProcess] = []


@pytest.fixture
def make_server(net, tmp_path) -> Iterator[Callable[..., netrig.ServerProcess]]:
    made: List[netrig.ServerProcess] = []

    def make(on_disconnect: str = "finish") -> netrig.ServerProcess:
        server = netrig.ServerProcess(tmp_path / f"server{len(made)}", on_disconnect)
        made.append(server)
        SERVERS.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()
        SERVERS.remove(server)


@pytest.fixture
def server(make_server) -> netrig.ServerProcess:
    return make_server()


@pytest.fixture
def observer(server) -> Iterator[RemoteServer]:
    with netrig.netns(netrig.SERVER_NS):
        client = RemoteServer(netrig.SERVER_IP, server.port, timeout=10)
    yield client
    client.close(1)


@pytest.fixture
def connect(net, request) -> Iterator[Callable[..., RemoteServer]]:
    made: List[RemoteServer] = []

    def make(**kw) -> RemoteServer:
        # the ``server`` fixture's only when no port is given: a test that
        # makes its own does not wait for another to start (~10 s in the guest)
        port = kw.pop("port", None) or request.getfixturevalue("server").port
        with netrig.netns(netrig.CLIENT_NS):
            client = RemoteServer(netrig.SERVER_IP, port, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(0.5)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in SERVERS:
            report.sections.append((f"server log {server.log}", server.log_text()[-6000:]))
