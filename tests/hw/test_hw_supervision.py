"""Line ownership through a real GPIO driver: a dead worker, a vanished
client, a stopped or killed server all leave the lines free and low, and a
line another program holds is refused (the scenarios of
tests/test_supervision.py, plus what only a kernel can show)."""
import os
import signal
import subprocess
import sys

import pytest

from remoteio.errors import PinBusy, WorkerFailed

from hwrig import board_of, pin_pid, wait_until

LED = 17

HOLDER = """
import lgpio, sys, time
h = lgpio.gpiochip_open(int(sys.argv[1]))
lgpio.gpio_claim_output(h, int(sys.argv[2]), 1)
print("held", flush=True)
time.sleep(120)
"""

CLAIM_ALL = """
import lgpio, sys
h = lgpio.gpiochip_open(int(sys.argv[1]))
lines = [int(a) for a in sys.argv[2:]]
for line in lines:
    lgpio.gpio_claim_input(h, line)
print(" ".join(str(lgpio.gpio_read(h, line)) for line in lines), flush=True)
lgpio.gpiochip_close(h)
"""


def claim_in_another_process(rig, lines, tmp_path):
    """Claim *lines* with lgpio from a separate process: their levels, or raise."""
    result = subprocess.run([sys.executable, "-c", CLAIM_ALL, str(rig.chip.chip_number),
                             *map(str, lines)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=60)
    assert result.returncode == 0, f"another process could not claim {lines}:\n{result.stdout}"
    return [int(v) for v in result.stdout.split()]


def test_killed_worker_releases_its_line_and_the_pin_works_again(rig, board):
    remote = rig.client()
    led = remote.pin(LED, "g")
    led.on(time_ms=60_000)
    led.off()                                   # queued behind the timed on
    pending = remote._link.call("sync", {"pin": board_of(LED)})   # answered when idle
    old = pin_pid(remote, LED)
    assert old and board.level(LED) == 1 and board.held(LED)
    os.kill(old, signal.SIGKILL)
    with pytest.raises(WorkerFailed, match="made safe"):
        pending.result(20)
    # the kernel let go of the line with the dead process, the pin is safe (off)
    assert wait_until(lambda: not board.held(LED), timeout=15)
    assert board.level(LED) == 0
    led.on()                                    # the next use works, on a fresh worker
    assert board.level(LED) == 1 and board.held(LED)
    assert pin_pid(remote, LED) not in (None, old)


def test_a_vanished_client_leaves_every_line_free(rig, board):
    remote = rig.client()
    for gpio in (17, 22, 23):
        remote.pin(gpio, "g").on()
    remote.pin(12, "g").value(level=0.5)
    button = remote.pin(27, "g").as_input(pull="up")
    button.when_changed = lambda: None
    assert all(board.held(g) for g in (17, 22, 23, 12, 27))
    remote.close()                              # the server soft-closes its pins
    assert wait_until(lambda: not any(board.held(g) for g in (17, 22, 23, 12, 27)), timeout=15)
    assert [board.level(g) for g in (17, 22, 23, 12)] == [0, 0, 0, 0]


def test_a_line_held_by_another_program_is_pin_busy(rig, board, tmp_path):
    if not rig.kernel:
        pytest.skip("needs a kernel: on the simulated board no other program holds lines")
    remote = rig.client()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(rig.chip.chip_number), "5"],
                              cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PinBusy, match="another program"):
            remote.pin(5, "g")
        assert board.level(5) == 1              # untouched
    finally:
        holder.kill()
        holder.wait(10)
    pin = remote.pin(5, "g")                    # free again: the server gets it
    pin.on()
    assert board.level(5) == 1 and board.held(5)


def _busy_server(rig):
    remote = rig.client()
    remote.pin(17, "g").on()
    remote.pin(22, "g").blink(on_time=0.02, off_time=0.02)
    remote.pin(12, "g").value(level=0.5)
    remote.pin(4, "g").on(time_ms=60_000)
    button = remote.pin(27, "g").as_input(pull="up")
    button.when_changed = lambda: None
    lines = [17, 22, 12, 4, 27]
    if rig.kernel:
        assert all(rig.board.held(g) for g in lines)
    workers = rig.server.children()  # the zygote that forks the workers, and a worker per line
    assert len(workers) == 1 + len(lines), workers
    return remote, lines, workers


def test_sigterm_releases_every_line(make_rig, tmp_path):
    rig = make_rig()
    remote, lines, workers = _busy_server(rig)
    assert rig.server.terminate(timeout=60) == 0
    assert "every pin safe" in rig.server.output()
    remote.close()
    assert wait_until(lambda: not rig.server.alive_children(), timeout=10), rig.server.alive_children()
    if rig.kernel:
        # all released by the time the server has exited: no waiting here
        assert [g for g in lines if rig.board.held(g)] == []
        # another program can take them at once; the outputs are low
        assert claim_in_another_process(rig, [17, 22, 12, 4], tmp_path) == [0, 0, 0, 0]


def test_sigkill_of_the_server_leaves_no_line_held(make_rig, tmp_path):
    """The workers see their task pipe close, make their pins safe and exit."""
    rig = make_rig()
    remote, lines, workers = _busy_server(rig)
    rig.server.proc.kill()
    rig.server.proc.wait(10)
    remote.close()
    assert wait_until(lambda: not rig.server.alive_children(), timeout=20), rig.server.alive_children()
    if rig.kernel:
        assert wait_until(lambda: not any(rig.board.held(g) for g in lines), timeout=5)
        assert claim_in_another_process(rig, [17, 22, 12, 4], tmp_path) == [0, 0, 0, 0]
