"""Serial ports over the network: pyserial's calls on a remote tty (a real pty pair), data pushed."""
from __future__ import annotations

import base64
import json
import os
import select
import signal
import socket
import threading
import time
from typing import Iterator, Tuple

import pytest

from remoteio import RemoteServer
from remoteio.errors import BadArgument, BusError, ConfigError, Forbidden, PinBusy
from remoteio.server.app import Server
from remoteio.server.config import parse_config
from remoteio.testing import RawClient, wait_until

SERIAL0 = ("serial", "serial0")


@pytest.fixture
def pty() -> Iterator[Tuple[int, str]]:
    """A real tty: the server's port opens the slave; the test is the device on the master."""
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


@pytest.fixture
def served(pty) -> Iterator[Tuple[Server, int]]:
    master, path = pty
    buses = {"serial0": {"device": path, "header_pins": True, "baudrate": 115200},
             "serial_ro": {"device": "sim:echo", "access": "read"},
             "serial_off": {"device": "sim:echo", "access": "none"},
             "serial_echo": {"device": "sim:echo"},
             "serial_gone": {"device": "/dev/ttyREMOTEIO-NONE"}}
    with Server(host="127.0.0.1", port=0, backend="sim", buses=buses, hang_timeout=2.0) as srv:
        yield srv, master


@pytest.fixture
def remote(served) -> Iterator[RemoteServer]:
    with RemoteServer(*served[0].address, timeout=5.0) as client:
        yield client


def to_master(master: int, data: bytes) -> None:
    """What the device sends (all of it: a pty takes a few KiB per write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(master, view):]


def from_master(master: int, n: int, timeout: float = 5.0) -> bytes:
    """*n* bytes the port wrote, read from the pty's master."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        if select.select([master], [], [], max(0.0, deadline - time.monotonic()))[0]:
            got += os.read(master, n - len(got))
    return got


def test_bytes_written_on_the_tty_are_pushed_to_the_client_in_order_and_when_data_fires(
        served, remote):
    master = served[1]
    port = remote.serial("serial0", 115200, timeout=5.0)
    calls = []
    port.when_data = lambda p: calls.append((p, threading.current_thread().name))
    sent = bytes(range(256)) * 64            # 16 KiB: several events
    to_master(master, sent)
    assert wait_until(lambda: port.in_waiting == len(sent), 10.0)   # pushed: nobody asked
    assert port.read(len(sent)) == sent
    assert wait_until(lambda: calls, 5.0)    # the callback thread runs it, a moment later
    assert calls[0] == (port, "remoteio-callbacks")
    assert port.bytes_lost == 0 and port.events_lost == 0


def test_the_clients_write_reaches_the_other_end_and_returns_its_byte_count(served, remote):
    master = served[1]
    port = remote.serial("serial0")
    assert port.write(b"hello\n") == 6
    assert from_master(master, 6) == b"hello\n"
    big = os.urandom(20_000)                  # longer than one serial_write: split, in order
    reader = threading.Thread(target=lambda: got.append(from_master(master, len(big), 10.0)))
    got = []
    reader.start()
    assert port.write(big) == len(big)
    reader.join(15.0)
    assert got == [big]
    port.flush()
    with pytest.raises(TypeError):
        port.write("text")


def test_readline_and_read_until_stop_at_their_terminator_and_timeouts_give_what_came(
        served, remote):
    master = served[1]
    port = remote.serial("serial0", timeout=5.0)
    os.write(master, b"first line\nsecond;third")
    assert port.readline() == b"first line\n"
    assert port.read_until(b";") == b"second;"
    port.timeout = 0.2
    started = time.monotonic()
    assert port.read_until(b";") == b"third"           # no terminator: what came, at the timeout
    assert 0.15 < time.monotonic() - started < 3.0
    os.write(master, b"abcdef")
    assert wait_until(lambda: port.in_waiting == 6)
    assert port.read_until(b"\n", size=4) == b"abcd"
    assert port.readline() == b"ef"


def test_read_waits_at_most_its_timeout_and_a_zero_timeout_does_not_wait(served, remote):
    master = served[1]
    port = remote.serial("serial0", timeout=0.3)
    started = time.monotonic()
    assert port.read(4) == b""
    assert 0.25 < time.monotonic() - started < 3.0
    port.timeout = 0
    started = time.monotonic()
    assert port.read(4) == b""
    assert time.monotonic() - started < 0.2
    port.timeout = None                                  # for ever: until the bytes come
    threading.Timer(0.2, os.write, (master, b"wxyz")).start()
    assert port.read(4) == b"wxyz"


def test_in_waiting_counts_unread_bytes_and_reset_input_buffer_drops_them(served, remote):
    master = served[1]
    port = remote.serial("serial0", timeout=1.0)
    os.write(master, b"12345")
    assert wait_until(lambda: port.in_waiting == 5)
    port.reset_input_buffer()
    assert port.in_waiting == 0
    os.write(master, b"after")
    assert port.read(5) == b"after"


def test_the_uart_port_holds_board8_and_board10_both_ways(served, remote):
    remote.serial("serial0")
    for board in (8, 10):
        with pytest.raises(PinBusy, match="serial port serial0"):
            remote.pin(board).on()
    remote.pin(7).on()                      # other pins are free
    with Server(host="127.0.0.1", port=0, backend="sim",
                buses={"serial0": {"device": "sim:echo", "header_pins": True}}) as srv:
        with RemoteServer(*srv.address) as client:
            client.pin(10).on()
            with pytest.raises(PinBusy, match="BOARD10"):
                client.serial("serial0")
            client.pin(10).close()
            assert client.serial("serial0").write(b"x") == 1


def test_a_port_named_by_its_device_path_is_the_configured_one(pty, served, remote):
    master, path = pty
    port = remote.serial(path, timeout=5.0)
    assert port.name == "serial0"
    os.write(master, b"by path\n")
    assert port.readline() == b"by path\n"


def test_an_unknown_port_is_a_bad_argument_and_no_file_outside_the_configuration_opens(remote):
    for name in ("serial9", "/dev/null", "../etc/passwd", "/dev/ttyS0"):
        with pytest.raises(BadArgument, match="no serial port"):
            remote.serial(name)


def test_access_read_refuses_writes_and_access_none_refuses_everything(remote):
    reader = remote.serial("serial_ro")
    with pytest.raises(Forbidden, match="read-only"):
        reader.write(b"no")
    with pytest.raises(Forbidden, match="read-only"):
        reader.reset_output_buffer()
    reader.reset_input_buffer()            # reading needs no write
    with pytest.raises(Forbidden, match="not served"):
        remote.serial("serial_off")


def test_an_oversized_write_and_a_bad_baudrate_are_bad_arguments(served, remote):
    raw = RawClient(served[0].address)
    raw.hello()
    too_big = base64.b64encode(b"x" * 8193).decode()
    reply = raw.call({"id": 1, "op": "serial_write", "port": "serial0", "data": too_big})
    assert reply["error"]["code"] in ("bad_argument", "frame_too_large")
    reply = raw.call({"id": 2, "op": "serial_write", "port": "serial0", "data": "not base64!"})
    assert reply["error"]["code"] == "bad_argument"
    raw.close()
    with pytest.raises(BadArgument, match="baudrate"):
        remote.serial("serial0", baudrate=10)
    port = remote.serial("serial0")
    with pytest.raises(BadArgument, match="baudrate"):
        port.baudrate = 5_000_000
    port.baudrate = 57600
    assert port.baudrate == 57600


def test_a_device_that_will_not_open_is_a_bus_error_with_its_errno(remote):
    with pytest.raises(BusError) as caught:
        remote.serial("serial_gone")
    assert caught.value.detail == "ENOENT" and "serial_gone" in caught.value.message
    assert remote.serial("serial_echo").write(b"ok") == 2      # other ports go on


def test_a_killed_serial_worker_is_replaced_and_the_port_opened_again(served, remote):
    server, master = served
    port = remote.serial("serial0", timeout=5.0)
    echo = remote.serial("serial_echo", timeout=5.0)
    pid = wait_until(lambda: server.bus_worker_pids().get(SERIAL0))
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: port.reopened == 1, 10.0)
    assert wait_until(lambda: server.bus_worker_pids().get(SERIAL0) not in (None, pid), 10.0)
    assert port.write(b"and back") == 8     # the fresh worker holds the tty
    assert from_master(master, 8) == b"and back"
    os.write(master, b"still here\n")
    assert port.readline() == b"still here\n"
    assert echo.write(b"e") == 1 and echo.read(1) == b"e"      # the other port never stopped
    assert remote.pin(7).read() in (0, 1)


def test_the_simulated_boards_serial0_echoes_through_the_same_worker():
    with Server(host="127.0.0.1", port=0, backend="sim") as srv:
        with RemoteServer(*srv.address) as client:
            with client.serial("serial0", 115200, timeout=5.0) as port:
                assert port.write(b"ping\n") == 5
                assert port.readline() == b"ping\n"
                with pytest.raises(PinBusy, match="serial port serial0"):
                    client.pin(8).on()   # it stands for the Pi's /dev/serial0
            assert srv.bus_worker_pids().get(SERIAL0)


def test_a_sim_script_device_plays_its_lines_in_turn():
    buses = {"serial_gps": {"device": "sim:script", "script": ["$GPGGA,1\r\n", "$GPRMC,2\r\n"],
                            "interval_ms": 20}}
    with Server(host="127.0.0.1", port=0, backend="sim", buses=buses) as srv:
        with RemoteServer(*srv.address) as client:
            port = client.serial("serial_gps", timeout=5.0)
            lines = {port.readline() for _ in range(4)}
            assert lines == {b"$GPGGA,1\r\n", b"$GPRMC,2\r\n"}


def test_bytes_arriving_while_nobody_listens_wait_for_the_next_reader_within_a_bound(
        served, remote):
    master = served[1]
    remote.serial("serial0").close()
    os.write(master, b"kept for the next reader\n")
    with RemoteServer(*served[0].address) as other:
        with other.serial("serial0", timeout=5.0) as early:   # closed (acked) before the rest
            assert early.readline() == b"kept for the next reader\n"
    total = 200_000                          # more than the worker keeps: the oldest dropped
    to_master(master, b"q" * total)
    port = remote.serial("serial0", timeout=5.0)
    assert wait_until(lambda: port.in_waiting + port.unheard == total, 10.0), (port.in_waiting, port.unheard)
    assert port.unheard > 0 and port.bytes_lost == 0
    assert port.in_waiting >= 64 << 10


def test_a_full_local_buffer_counts_the_bytes_it_lost(served, remote):
    master = served[1]
    port = remote.serial("serial0", timeout=5.0, buffer_size=1000)
    to_master(master, b"z" * 3000)
    assert wait_until(lambda: port.in_waiting + port.bytes_lost == 3000, 5.0)
    assert port.in_waiting == 1000 and port.bytes_lost == 2000


def test_a_connection_that_closes_stops_receiving_and_others_go_on(served, remote):
    master = served[1]
    keeper = remote.serial("serial0", timeout=5.0)
    with RemoteServer(*served[0].address) as other:
        other.serial("serial0")
    os.write(master, b"still")
    assert keeper.read(5) == b"still"


def test_a_serial_table_in_the_configuration_declares_a_port():
    config = parse_config('[buses.serial0]\ndevice = "/dev/ttyAMA0"\naccess = "read"\n')
    rule = config.buses[SERIAL0]
    assert (rule.device, rule.access, rule.holds_header()) == ("/dev/ttyAMA0", "read", True)
    with pytest.raises(ConfigError, match="device"):
        parse_config('[buses.serial0]\naccess = "read"\n')
    with pytest.raises(ConfigError, match="baudrate"):
        parse_config('[buses.serial0]\ndevice = "sim:echo"\nbaudrate = 3\n')


def test_a_reconnected_client_opens_its_port_again_and_loses_nothing_silently(served, remote):
    master = served[1]
    port = remote.serial("serial0", timeout=5.0)
    to_master(master, b"before\n")
    assert port.readline() == b"before\n"
    old = remote.link
    old.sock.shutdown(socket.SHUT_RDWR)          # the network drops the connection
    to_master(master, b"during\n")
    assert wait_until(lambda: port.reopened == 1, 10.0)     # on the new connection
    assert remote.link is not old and remote.connected
    to_master(master, b"after\n")
    # what was written while the link was down was delivered, or counted lost: never hidden
    total = len(b"before\nduring\nafter\n")
    assert wait_until(lambda: port.bytes_received + port.bytes_lost == total, 10.0), (
        port.bytes_received, port.bytes_lost, port.events_lost, port.unheard, port.read_all())
    got = port.read(port.in_waiting)
    assert got.endswith(b"after\n") and len(got) + port.bytes_lost == len(b"during\nafter\n")


def test_a_device_that_hangs_up_is_reported_and_its_writes_fail_with_the_errno(
        server_process, tmp_path):
    master, slave = os.openpty()
    config = tmp_path / "serial.toml"
    config.write_text(f'[buses.serial0]\ndevice = "{os.ttyname(slave)}"\n')
    os.close(slave)
    # its own process: a zygote forked from this one would keep the master open
    proc = server_process("--config", str(config))
    with RemoteServer(*proc.address) as client:
        port = client.serial("serial0", timeout=5.0)
        to_master(master, b"last words\n")
        assert port.readline() == b"last words\n"
        os.close(master)                      # the device is unplugged
        with pytest.raises(BusError) as caught:
            wait_until(lambda: port.write(b"anyone?") and False, 5.0)
        assert caught.value.detail == "EIO"
        assert client.pin(7).read() in (0, 1)


def test_a_connection_that_does_not_read_sees_exactly_how_many_bytes_it_missed(pty):
    master, path = pty
    with Server(host="127.0.0.1", port=0, backend="sim", event_buffer=16 << 10,
                buses={"serial0": {"device": path}}) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # a slow reader's small window
        sock.settimeout(10.0)
        sock.connect(srv.address)
        sock.sendall(b'{"id":1,"op":"hello"}\n{"id":2,"op":"serial_open","port":"serial0"}\n')
        lines = sock.makefile("rb")
        assert json.loads(lines.readline())["ok"] and json.loads(lines.readline())["ok"]
        total = 4 << 20
        writer = threading.Thread(target=to_master, args=(master, b"m" * total))
        writer.start()                           # while this connection reads nothing
        writer.join(60.0)
        sock.sendall(b'{"id":3,"op":"ping"}\n')  # a reply is never dropped: read up to it, then
        received, missed, expected_offset, seqs, end_sent = 0, 0, 0, [], False
        while True:
            event = json.loads(lines.readline())
            if "id" in event:                    # the queue has drained: a last word, kept
                to_master(master, b"END")
                end_sent = True
                continue
            data = base64.b64decode(event["data"])
            missed += event["offset"] - expected_offset
            expected_offset = event["offset"] + len(data)
            received += len(data)
            seqs.append(event["seq"])
            if end_sent and data.endswith(b"END"):
                break
        sock.close()
    assert missed > 0                            # the server dropped events for it ...
    assert received + missed == total + 3        # ... and the offsets account for every byte
    assert seqs[-1] - len(seqs) > 0              # the gaps show in seq too
