"""Outputs through a real GPIO driver: what the server drives is what the
line carries, with the timing on the server (the scenarios of
tests/test_tasks.py, observed from outside the server).

Pins are given in GPIO (BCM) numbering; on the gpio-sim chip line offset N
is GPIO N. Timing bounds are generous: the VM emulates its CPU.
"""
import time

import pytest

from hwrig import board_of, timing_retry

LED = 17   # BOARD11
DIM = 12   # BOARD32


def test_on_and_off_drive_the_line(rig, board):
    led = rig.client().pin(LED, "g")
    led.on()                                # acknowledged once applied: no waiting
    assert board.level(LED) == 1
    assert led.read() == 1
    info = board.info(LED)
    if info is not None:
        assert {"used", "output"} <= info["flags"], info
    led.off()
    assert board.level(LED) == 0
    assert led.read() == 0


def test_value_one_is_a_steady_high_and_zero_a_low(rig, board):
    led = rig.client().pin(LED, "g")
    led.value(level=1.0)
    recorder = board.record(LED)
    time.sleep(0.3)
    assert recorder.stop().levels() == [1.0]      # no PWM at full level: nothing toggles
    led.value(level=0.0)
    assert board.level(LED) == 0


def test_value_drives_pwm_then_off_stops_it(rig, board):
    dim = rig.client().pin(DIM, "g")

    def pwm(attempt):
        recorder = board.record(DIM)
        dim.value(level=0.3)
        began = time.monotonic_ns()
        time.sleep(1.0)
        recording = recorder.stop()
        if board.kernel:
            # software PWM at 100 Hz (lgpio's, gpiod's): the line really toggles, ~30 % high
            assert len(recording.changes) > 50, recording.changes[:10]
            assert 0.15 <= recording.duty(since_ns=began) <= 0.5
        else:
            assert recording.levels()[-1] == pytest.approx(0.3)
    timing_retry(pwm)
    assert dim.read() == pytest.approx(0.3)
    assert dim.state()["frequency"] == 100
    dim.value(time_ms=200, level=0.6, wait=True)   # timed: PWM, then off by itself
    recorder = board.record(DIM)
    time.sleep(0.3)
    assert recorder.stop().levels() == [0.0]       # off, and no stray PWM edge after


def test_timed_on_turns_off_by_itself(rig, board):
    led = rig.client().pin(LED, "g")

    def timed_on(attempt):
        recorder = board.record(LED)
        started = time.monotonic()
        led.on(time_ms=300, wait=True)
        assert time.monotonic() - started >= 0.3
        assert board.level(LED) == 0
        highs = recorder.stop().pulses()
        assert len(highs) == 1 and 290 <= highs[0][1] <= 600, highs
    timing_retry(timed_on)


def test_wait_mode_timed_task_holds_the_queue(rig, board):
    led = rig.client().pin(LED, "g")
    recorder = board.record(LED)
    led.on(time_ms=1500)                        # long enough for a slow VM to ask
    led.off()                                   # accepted at once, runs when the on ends
    assert led.state()["queue"] == 1
    assert board.level(LED) == 1
    led.sync(timeout=15)
    assert board.level(LED) == 0
    highs = recorder.stop().pulses()
    assert len(highs) == 1 and highs[0][1] >= 1490, highs


def test_timed_blink_shows_every_edge_then_the_queued_task_runs(rig, board):
    led = rig.client().pin(LED, "g")

    def blink(attempt):
        led.off()
        recorder = board.record(LED)
        led.blink(time_ms=1000, on_time=0.1, off_time=0.1)
        led.on()                                # queued behind the timed blink
        led.sync(timeout=15)
        recording = recorder.stop()
        assert board.level(LED) == 1
        highs = recording.pulses()
        assert len(highs) == 5, recording.changes
        assert all(85 <= width <= 200 for _, width in highs), highs
        lows = [(b - (a + w * 1e6)) / 1e6 for (a, w), (b, _) in zip(highs, highs[1:])]
        assert all(85 <= gap <= 200 for gap in lows), lows
        last_t, last_level = recording.changes[-1]
        assert last_level == 1.0
        assert (last_t - highs[0][0]) / 1e6 >= 990   # the on() ran once the blink had ended
    timing_retry(blink)


def test_untimed_blink_is_replaced_by_the_next_task(rig, board):
    led = rig.client().pin(LED, "g")
    led.blink(on_time=10, off_time=10)
    assert board.level(LED) == 1
    started = time.monotonic()
    led.off(wait=True)
    assert time.monotonic() - started < 5
    assert board.level(LED) == 0


def test_pulse_fades_through_pwm_levels_then_ends_off(rig, board):
    glow = rig.client().pin(DIM, "g")
    recorder = board.record(DIM)
    glow.pulse(time_ms=600, fade_in_time=0.2, fade_out_time=0.2, wait=True)
    recording = recorder.stop()
    if board.kernel:
        assert len(recording.changes) > 20       # PWM edges on the line
    else:
        assert any(0.2 < v < 0.8 for v in recording.levels())
    assert recording.levels()[-1] == 0.0
    assert board.level(DIM) == 0


def test_close_lets_go_of_the_line(rig, board):
    led = rig.client().pin(LED, "g")
    led.on()
    assert board.held(LED)
    led.close()
    assert board.wait_level(LED, 0)
    deadline = time.monotonic() + 10
    while board.held(LED) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not board.held(LED)


def test_batch_write_and_read_pins(rig, board):
    remote = rig.client()
    button = remote.pin(27, "g").as_input(pull="up")
    remote.write({17: 1, 22: 1, 23: 0}, numbering="g")
    assert [board.level(g) for g in (17, 22, 23)] == [1, 1, 0]
    board.drive(27, 0)
    values = remote.read_pins([17, 22, 23, 27], numbering="g")
    assert values == {board_of(17): 1, board_of(22): 1, board_of(23): 0, board_of(27): 0}
    board.release(27)
    assert button.read() == 1
    remote.write({17: 0, 22: 0.5}, numbering="g")
    assert board.level(17) == 0
    assert remote.read_pins([22], numbering="g") == {board_of(22): pytest.approx(0.5)}
    if board.kernel:
        recorder = board.record(22)
        time.sleep(0.3)
        assert len(recorder.stop().changes) > 10   # PWM on the line
    remote.write({22: 0}, numbering="g")
    assert board.level(22) == 0
