"""The non-blocking pipes between the server's processes (channel.py)."""
from __future__ import annotations

from remoteio.server.channel import ChannelClosed, channel_pair

import pytest


def test_a_full_pipe_keeps_what_it_cannot_take_and_never_blocks():
    reader, writer = channel_pair(size=65536)
    big = b"x" * 20000
    for _ in range(50):  # ~1 MB into a 64 KiB pipe: send() must return every time
        writer.send(big)
    assert writer.pending > 0
    got = []
    while writer.pending or len(got) < 50:
        got += reader.receive()
        writer.flush()
    assert got == [big] * 50


def test_receive_reads_about_its_budget_and_leaves_the_rest():
    reader, writer = channel_pair()
    for n in range(200):
        writer.send(b"y" * 1000 + bytes([n]))
    first = reader.receive(budget=65536)
    rest = reader.receive()
    assert 0 < len(first) < 200 and len(first) + len(rest) == 200
    assert [m[-1] for m in first + rest] == list(range(200))


def test_the_end_of_the_writer_is_the_end_of_the_channel():
    reader, writer = channel_pair()
    writer.send([1])
    writer.close()
    assert reader.receive() == [[1]]
    with pytest.raises(ChannelClosed):
        reader.receive()


def test_a_writer_whose_reader_is_gone_says_so():
    reader, writer = channel_pair()
    reader.close()
    with pytest.raises(OSError):
        writer.send([1])
