"""Unit tests of the serial-stream splitter (host only, no VM needed)."""

import io
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vmconsole import Console  # noqa: E402

NONCE = "0123abcd"
START = f"@@remoteio-vm-start:{NONCE}@@\n".encode()


def end(rc):
    return f"\n@@remoteio-vm-end:{NONCE}:{rc}@@\n".encode()


def feed_in_chunks(stream, seed):
    rng = random.Random(seed)
    sink = io.BytesIO()
    con = Console(NONCE, sink)
    i = 0
    while i < len(stream):
        n = rng.choice([1, 1, 2, 3, 7, 64, 4096])
        con.feed(stream[i:i + n])
        i += n
    return con, sink.getvalue()


CASES = [
    b"",
    b"hello\n",
    b"no newline at the end",
    b"line\n\n\n",
    b"\n@@remoteio-vm-end:otherNONCE:0@@\n",   # a look-alike is plain output
    b"\n@@remoteio-vm-end\n" * 3,
    bytes(range(256)) * 4,
]


def test_output_is_exactly_what_the_command_wrote():
    boot = b"[    1.0] kernel noise\r\nmore @@remoteio-vm-start:wrong@@\n"
    for case in CASES:
        for seed in range(30):
            con, out = feed_in_chunks(boot + START + case + end(3) + b"reboot: Power down\r\n", seed)
            assert con.finished and con.marker_rc == 3
            assert out == case and bytes(con.output) == case, (case, seed)


def test_marker_line_may_end_in_crlf():
    con, out = feed_in_chunks(START.replace(b"\n", b"\r\n") + b"x" + end(0), 1)
    assert con.finished and out == b"x"


def test_dead_guest_keeps_what_was_printed():
    con, out = feed_in_chunks(START + b"partial\n", 2)
    assert not con.finished
    con.flush()
    assert bytes(con.output) == b"partial\n"


def test_no_start_marker_means_not_started():
    con, out = feed_in_chunks(b"Kernel panic - not syncing\n" * 10000, 3)
    assert not con.started and out == b"" and len(con.boot) <= 65536 + 4096
