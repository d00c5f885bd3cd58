"""bench/edgefloor.py, the edge floor of the kernel bench, against a real gpio-sim line."""
from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hwrig import REQUIRE_KERNEL, GpioSimChip, gpiosim

ROOT = Path(__file__).resolve().parents[2]
LINE = 27


@pytest.fixture
def chip():
    if not gpiosim.available():
        if REQUIRE_KERNEL:
            pytest.fail("gpio-sim is not usable here (run.sh requires it)")
        pytest.skip("needs gpio-sim (run inside the VM: bash tests/hw/run.sh)")
    pytest.importorskip("gpiod")
    with GpioSimChip(num_lines=28) as made:
        yield made


def _read_line(sock: socket.socket, timeout: float = 10.0) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([sock], [], [], timeout)
        assert ready, f"no edge line within {timeout} s (got {data!r})"
        chunk = sock.recv(4096)
        assert chunk, "the edge floor closed the connection"
        data += chunk
    return data


def test_the_edge_floor_relays_each_edge_of_the_line_to_its_client_and_ends_when_it_leaves(chip):
    proc = subprocess.Popen([sys.executable, "-m", "bench.edgefloor", "--chip", chip.chip_path,
                             "--line", str(LINE)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)
        assert ready, "the edge floor did not say its port within 60 s"
        with socket.create_connection(("127.0.0.1", int(proc.stdout.readline())), timeout=10) as sock:
            for pull in ("pull-up", "pull-down"):
                chip.pull(LINE, pull)
                offset, stamp = _read_line(sock).split()
                assert int(offset) == LINE and int(stamp) > 0
        assert proc.wait(30) == 0   # its client left: it ends, and its watcher with it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
