"""The client library: timeouts, failures, threads, Jupyter-style event loops."""
import asyncio
import socket
import threading
import time

import pytest

from remoteio import RemoteServer
from remoteio.errors import BadPin, CallTimeout, ConnectFailed, ConnectionLost, PinClosed, RemoteIOError
from remoteio.testing import free_port


class SilentServer:
    """Accepts connections, reads everything, answers hello (or not), then nothing."""

    def __init__(self, greet: bool):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.greet = greet
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        conn.settimeout(10)
        try:
            data = conn.recv(4096)
            if self.greet and data:
                conn.sendall(b'{"id":1,"ok":true,"server":"silent","protocol":1,"auth":null}\n')
            while conn.recv(4096):
                pass
        except OSError:
            pass

    def close(self):
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_nothing_listening_fails_fast():
    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="cannot connect"):
        RemoteServer("127.0.0.1", free_port(), timeout=2)
    assert time.monotonic() - started < 2


def test_a_server_that_never_greets_times_out():
    silent = SilentServer(greet=False)
    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="did not greet"):
        RemoteServer(*silent.address, timeout=0.5)
    assert time.monotonic() - started < 3
    silent.close()


def test_a_server_that_stops_answering_times_out_every_call():
    silent = SilentServer(greet=True)
    remote = RemoteServer(*silent.address, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(CallTimeout):
        remote.pin(7)
    assert 0.25 < time.monotonic() - started < 2
    started = time.monotonic()
    remote.close()
    assert time.monotonic() - started < 2
    silent.close()


def test_a_server_that_dies_fails_outstanding_calls_at_once(server):
    remote = RemoteServer(*server.address, timeout=30)
    remote.pin(7).on(time_ms=10_000)
    pending = remote._link.call("sync", {"pin": 7})
    started = time.monotonic()
    server.stop()
    with pytest.raises(RemoteIOError):
        pending.result(30)
    assert time.monotonic() - started < 10
    with pytest.raises(ConnectionLost):
        remote.pin(11)
    assert not remote.connected
    remote.close()


def test_close_is_quick_and_final(server):
    remote = RemoteServer(*server.address)
    remote.pin(7).on()
    started = time.monotonic()
    remote.close()
    assert time.monotonic() - started < 2
    with pytest.raises(ConnectionLost):
        remote.ping()
    remote.close()  # twice is fine


def test_errors_come_back_as_their_classes(client):
    with pytest.raises(BadPin):
        client.pin(1)
    with pytest.raises(ValueError):       # BadArgument is a ValueError too
        client.pin(7).on(time_ms=-1)
    pin = client.pin(7)
    pin.close()
    with pytest.raises(PinClosed):
        pin.on()


def test_many_threads_share_one_client(server, client):
    boards = (7, 11, 12, 13, 15, 16, 18, 22)
    errors = []

    def drive(board):
        try:
            pin = client.pin(board)
            for n in range(200):
                pin.on() if n % 2 else pin.off()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(b,)) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert all(server.sim.value(b) == 1.0 for b in boards)


def test_works_inside_a_running_event_loop(server):
    """As in Jupyter: an asyncio loop is already running in the thread."""
    async def notebook_cell():
        with RemoteServer(*server.address) as remote:
            remote.pin(7).on(time_ms=50, wait=True)
            return remote.info()["pins"][0]["pin"]
    assert asyncio.run(notebook_cell()) == 7


def test_welcome_describes_the_server(client):
    assert client.board["backend"] == "sim"
    assert client.mode == "wait"
    assert client.server_version
    assert "on" in client.welcome["ops"]
    assert client.ping() < 1.0
    assert repr(client).endswith("connected>")


def test_a_task_without_a_duration_leaves_time_ms_to_its_default_on_the_wire():
    from fakeservers import ScriptedServer
    stand_in = ScriptedServer(lambda message: [(0.0, {"ok": True, "id": message["id"]})])
    remote = RemoteServer(*stand_in.address, timeout=10.0, heartbeat=0, reconnect=False)
    try:
        pin = remote.pin(7)
        pin.on()
        pin.off(time_ms=0.0)
        pin.on(time_ms=250)
        pin.blink(on_time=0.1, off_time=0.1)
    finally:
        remote.close()
        stand_in.close()
    sent = [m for m in stand_in.requests if m["op"] != "open"]
    assert [m.get("time_ms") for m in sent] == [None, None, 250, None]
    assert [m["op"] for m in sent] == ["on", "off", "on", "blink"]


def test_info_asked_right_after_a_reply_shows_what_the_reply_did(server, client):
    # a burst of info shares one answer; an info sent after a reply is a new moment
    for n in range(20):
        pin = client.pin(7)
        (pin.on if n % 2 == 0 else pin.off)()
        row = {entry["pin"]: entry for entry in client.info()["pins"]}[7]
        assert (row["mode"], row["value"]) == ("output", 1.0 if n % 2 == 0 else 0.0), (n, row)
