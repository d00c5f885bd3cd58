"""End-to-end behaviours every client must have, run against the sync and the asyncio client.

Each scenario is written once, in the sync client's words; the ``remote``
fixture connects with either (tests/drivers.py runs the async one on a loop
of its own and blocks on each call).
"""
from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterator

import pytest

from remoteio.testing import wait_until
from drivers import DRIVERS, Loop
from remoteio.errors import (AuthFailed, AuthRequired, BadPin, ConnectFailed, ConnectionLost,
                             PinBusy, WrongMode)
from remoteio.server import Server
from remoteio.tls import TLSVerifyFailed, generate_self_signed


@pytest.fixture(params=sorted(DRIVERS))
def connect(request) -> Iterator[Callable[..., Any]]:
    """Connect with the sync or the async client; everything opened is closed after."""
    loop = Loop() if request.param == "async" else None
    opened = []

    def connect(address, **options):
        factory = DRIVERS[request.param]
        remote = factory(loop, *address, **options) if loop else factory(*address, **options)
        opened.append(remote)
        return remote

    yield connect
    for remote in opened:
        remote.close()
    if loop is not None:
        loop.stop()


@pytest.fixture
def remote(server, connect):
    return connect(server.address)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_timed_task_with_wait_returns_once_it_has_ended(server, remote):
    led = remote.pin(7)
    start = time.monotonic()
    led.on(time_ms=300, wait=True)
    assert time.monotonic() - start >= 0.29
    assert led.read() == 0 and server.sim.value(7) == 0


def test_refusals_come_back_as_their_classes(server, remote, connect):
    with pytest.raises(BadPin):
        remote.pin(1)
    remote.pin(7).on()
    other = connect(server.address)
    with pytest.raises(PinBusy):
        other.pin(7)
    assert other.pin(7, claim=False).read() == 1  # watching and reading stay open to all


def test_an_input_delivers_its_changes_to_callbacks_and_waiters(server, remote):
    button = remote.pin(11)
    button.as_input(pull="down")
    seen = []
    button.when_changed = seen.append
    assert wait_until(lambda: button.watching, timeout=5)
    remote.sim.drive(11, 1)
    assert wait_until(lambda: seen, timeout=5)
    assert seen[0].edge == "rising" and seen[0].value == 1 and seen[0].ts_ns > 0
    assert button.wait_for_value(1, timeout=5)
    remote.sim.drive(11, 0)
    assert wait_until(lambda: len(seen) >= 2, timeout=5)
    assert seen[1].edge == "falling" and seen[1].seq == seen[0].seq + 1


def test_batches_write_and_read_many_pins_in_one_request(server, remote):
    for board in (7, 11, 13):
        remote.pin(board)
    remote.write({7: 1, 11: 0, 13: 0.5})
    assert remote.read_pins([7, 11, 13]) == {7: 1, 11: 0, 13: 0.5}
    replies = remote.request_pipeline([("read", {"pin": 7}), ("read", {"pin": 11})])
    assert [reply["value"] for reply in replies] == [1, 0]


def test_a_lease_not_renewed_reverts_the_pin(server, remote):
    pump = remote.pin(12)
    pump.on(lease_ms=200)
    assert server.sim.value(12) == 1.0
    assert wait_until(lambda: server.sim.value(12) == 0.0, timeout=5)


def test_sync_waits_for_queued_work_and_raises_what_could_not_run(server, remote):
    led = remote.pin(7)
    led.on(time_ms=150)
    led.off(time_ms=150)
    start = time.monotonic()
    led.sync()
    assert time.monotonic() - start >= 0.25
    button = remote.pin(11)
    button.as_input()
    with pytest.raises(WrongMode):
        button.on()


def test_info_lists_the_pins_in_use(server, remote):
    remote.pin(7).on(time_ms=5000)
    pins = {entry["pin"]: entry for entry in remote.info()["pins"]}
    assert pins[7]["task"] == "on" and pins[7]["remaining_ms"] > 1000
    assert remote.board["backend"] == "sim" and remote.mode == "wait"
    assert remote.ping() < 5


def test_a_second_connection_of_this_process_takes_over_when_asked(server, connect):
    first = connect(server.address)
    first.pin(7).on()
    again = connect(server.address, take_over=True)  # the notebook cell run again
    again.pin(7).off()
    assert server.sim.value(7) == 0


def test_a_closed_client_refuses_calls(server, remote):
    led = remote.pin(7)
    remote.close()
    with pytest.raises(ConnectionLost):
        led.on()


def test_nothing_listening_fails_fast(connect):
    start = time.monotonic()
    with pytest.raises(ConnectFailed):
        connect(("127.0.0.1", _free_port()), timeout=2)
    assert time.monotonic() - start < 2


def test_a_token_is_proved_both_ways(connect):
    with Server(host="127.0.0.1", port=0, backend="sim", token="s3cret-token-1234") as server:
        remote = connect(server.address, token="s3cret-token-1234")
        remote.pin(7).on()
        assert server.sim.value(7) == 1.0
        with pytest.raises(AuthFailed):
            connect(server.address, token="wrong-token-56789")
        with pytest.raises(AuthRequired):
            connect(server.address, token=None)


def test_tls_with_a_pinned_fingerprint(tmp_path, connect, monkeypatch):
    monkeypatch.delenv("REMOTEIO_TOKEN", raising=False)
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    fingerprint = generate_self_signed(cert, key, ["localhost", "127.0.0.1"])
    with Server(host="127.0.0.1", port=0, backend="sim", tls_cert=cert, tls_key=key,
                token="tls-token-123456789") as server:
        remote = connect(server.address, fingerprint=fingerprint, token="tls-token-123456789")
        remote.pin(7).on()
        assert server.sim.value(7) == 1.0
        wrong = "sha256:" + ":".join(["00"] * 32)
        with pytest.raises(TLSVerifyFailed):
            connect(server.address, fingerprint=wrong, token="tls-token-123456789")


def test_the_client_reconnects_and_reapplies_its_setup(connect):
    port = _free_port()
    first = Server(host="127.0.0.1", port=port, backend="sim").start()
    remote = connect(("127.0.0.1", port), heartbeat=0.5)
    changes = []
    remote.when_connection_changed = changes.append
    led, button = remote.pin(7), remote.pin(11).as_input(pull="up", bounce_ms=5)
    presses = []
    button.when_low = presses.append
    pump = remote.pin(12)
    pump.on(lease_ms=60_000)
    assert wait_until(lambda: button.watching, timeout=5)
    first.stop()
    assert wait_until(lambda: not remote.connected, timeout=5)
    with pytest.raises(ConnectionLost, match="reconnecting"):
        led.on()                                     # fails fast while disconnected
    second = Server(host="127.0.0.1", port=port, backend="sim").start()
    try:
        assert remote.wait_connected(timeout=10)
        assert wait_until(lambda: changes == [False, True], timeout=5), changes
        assert second.sim.function(11) == "input" and second.sim.pull(11) == "up"
        assert second.sim.value(12) == 1.0           # the lease it still held
        assert button.state()["bounce_ms"] == 5
        second.sim.drive(11, 0)
        assert wait_until(lambda: presses, timeout=5)  # the watch came back too
        led.on()
        assert second.sim.value(7) == 1.0
    finally:
        remote.close()
        second.stop()


def test_heartbeats_keep_a_quiet_client_connected(connect):
    with Server(host="127.0.0.1", port=0, backend="sim", heartbeat_timeout=1.0) as server:
        remote = connect(server.address, heartbeat=0.2, reconnect=False)
        led = remote.pin(7)
        # the server drops a client silent for 3 heartbeats + 1 s (1.6 s here)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert remote.connected
            time.sleep(0.1)
        led.on()
        assert server.sim.value(7) == 1.0
