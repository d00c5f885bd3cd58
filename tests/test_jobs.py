import pytest

from remoteio.server.jobs import PULSE_FPS, Blink, Pulse, make_job


def test_steady_jobs():
    on = make_job("on", {"time_ms": 0}, 100.0)
    assert on.level_at(1e9) == 1.0 and not on.timed and on.wake_at(100.0) is None
    timed = make_job("off", {"time_ms": 250}, 100.0)
    assert timed.level_at(100.1) == 0.0 and timed.until == pytest.approx(100.25)
    assert timed.wake_at(100.0) == pytest.approx(100.25)
    assert make_job("value", {"time_ms": 0, "level": 0.3}, 0).pwm
    assert not make_job("value", {"time_ms": 0, "level": 1.0}, 0).pwm


def test_blink_levels_and_changes_come_from_the_start_time():
    blink = Blink(start=10.0, until=None, on_time=0.2, off_time=0.3)
    assert [blink.level_at(10.0 + t) for t in (0.0, 0.19, 0.21, 0.49, 0.51, 1.0)] == [1, 1, 0, 0, 1, 1]
    assert blink.next_change(10.0) == pytest.approx(10.2)
    assert blink.next_change(10.25) == pytest.approx(10.5)
    # waking late does not shift later edges
    assert blink.next_change(10.0 + 5 * 0.5 + 0.01) == pytest.approx(12.7)


def test_timed_blink_wakes_at_its_end_at_the_latest():
    blink = make_job("blink", {"time_ms": 300, "on_time": 1.0, "off_time": 1.0}, 0.0)
    assert blink.wake_at(0.0) == pytest.approx(0.3)


def test_pulse_ramps_up_and_down_in_steps():
    pulse = Pulse(start=0.0, until=None, fade_in=1.0, fade_out=0.5)
    assert pulse.level_at(0.0) == 0.0
    assert pulse.level_at(0.5) == pytest.approx(0.5)
    assert pulse.level_at(1.0) == pytest.approx(1.0)
    assert pulse.level_at(1.25) == pytest.approx(0.5)
    assert pulse.level_at(1.5) == pytest.approx(0.0)
    assert pulse.next_change(0.0) == pytest.approx(1 / PULSE_FPS)
    assert Pulse(0.0, None, 0.0, 1.0).level_at(0.0) == pytest.approx(1.0)


def test_unknown_task():
    with pytest.raises(ValueError):
        make_job("close", {}, 0)
