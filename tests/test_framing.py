from hypothesis import given, strategies as st

from remoteio.protocol.framing import TOO_LARGE, FrameBuffer


def test_several_frames_in_one_read():
    assert FrameBuffer().feed(b'{"a":1}\n{"b":2}\n{"c":3}\n') == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_one_frame_over_many_reads():
    buf = FrameBuffer()
    out = []
    for byte in b'{"id":1,"op":"ping"}\n':
        out += buf.feed(bytes([byte]))
    assert out == [b'{"id":1,"op":"ping"}']
    assert buf.pending == 0


def test_partial_frame_is_held():
    buf = FrameBuffer()
    assert buf.feed(b'{"id":') == []
    assert buf.pending == 6
    assert buf.feed(b'1}\n') == [b'{"id":1}']


def test_blank_lines_and_crlf():
    assert FrameBuffer().feed(b'\n\r\n  \n{"a":1}\r\n') == [b'{"a":1}']


def test_frame_at_limit_passes_and_over_limit_is_reported_once():
    buf = FrameBuffer(max_frame=10)
    assert buf.feed(b"x" * 10 + b"\n") == [b"x" * 10]
    assert buf.feed(b"y" * 11 + b"\n") == [TOO_LARGE]


def test_oversized_frame_split_over_reads_is_skipped_up_to_its_newline():
    buf = FrameBuffer(max_frame=10)
    assert buf.feed(b"z" * 25) == [TOO_LARGE]
    assert buf.feed(b"z" * 1000) == []
    assert buf.feed(b"zz\nok\n") == [b"ok"]
    assert buf.pending == 0


def test_memory_stays_bounded_while_skipping():
    buf = FrameBuffer(max_frame=100)
    buf.feed(b"a" * 200)
    for _ in range(100):
        buf.feed(b"a" * 10_000)
    assert buf.pending == 0


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=10))
def test_any_split_gives_the_same_frames(frames, cuts):
    """However a stream is cut into reads, the same frames come out in order."""
    stream = b"".join(f + b"\n" for f in frames)
    expected = [f.rstrip(b"\r") for f in frames if f and not f.isspace()]
    buf = FrameBuffer(max_frame=100)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        out += buf.feed(stream[pos:pos + size])
        pos += size
        i += 1
    assert out == expected
