"""remoteio.client.wire: one thread's reading (and the link's writing) of a socket."""
from __future__ import annotations

import os
import socket
import threading

import pytest

from remoteio.client.wire import Wire


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.settimeout(5.0)  # the link's sockets have a timeout: the wire must honour it
    b.settimeout(5.0)
    yield a, b
    a.close()
    b.close()


def test_a_small_request_goes_out_whole_in_one_write(pair):
    a, b = pair
    Wire(a).send(b'{"id":1,"op":"on","pin":7}\n')
    assert b.recv(100) == b'{"id":1,"op":"on","pin":7}\n'


def test_a_request_larger_than_the_buffers_goes_out_whole_while_the_peer_reads(pair):
    a, b = pair
    data = os.urandom(4 << 20)
    got = bytearray()

    def drain() -> None:
        while len(got) < len(data):
            chunk = b.recv(1 << 16)
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    Wire(a).send(data)
    reader.join(10.0)
    assert not reader.is_alive() and bytes(got) == data


def test_a_request_the_peer_never_reads_times_out_with_the_sockets_timeout(pair):
    a, _ = pair
    a.settimeout(0.2)
    with pytest.raises(socket.timeout):
        Wire(a).send(b"x" * (32 << 20))


def test_a_read_woken_for_nothing_is_none_so_its_reader_waits_again(pair):
    a, _ = pair
    assert Wire(a).read() is None


def test_a_read_gives_what_came_and_empty_bytes_at_the_end(pair):
    a, b = pair
    wire = Wire(a)
    b.sendall(b"hi\n")
    assert wire.wait(5.0) and wire.read() == b"hi\n"
    b.shutdown(socket.SHUT_WR)
    assert wire.wait(5.0) and wire.read() == b""


def test_reading_a_closed_socket_fails_instead_of_reading_whatever_took_its_number(pair):
    a, _ = pair
    wire = Wire(a)
    number = a.fileno()
    a.close()
    r, w = os.pipe()  # most likely given the closed socket's number
    try:
        os.write(w, b"not yours")
        with pytest.raises(OSError):
            wire.read()
        if r == number:
            assert os.read(r, 100) == b"not yours"
    finally:
        os.close(r)
        os.close(w)
