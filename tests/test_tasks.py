"""Every pin operation end to end, in both modes, asserted on the simulated
board's own timestamps (shared/DESIGN.md, "Task semantics"). Timing bounds
are generous; exact figures belong in bench/."""
import time

import pytest

from remoteio import RemoteServer

from remoteio.testing import levels, pulses, wait_until


def connect(server):
    return RemoteServer(*server.address, timeout=5.0)


def test_timed_on_turns_off_by_itself(any_server):
    with connect(any_server) as remote:
        led = remote.pin(7, "b")
        led.on(time_ms=300, wait=True)
    (start, width), = pulses(any_server.sim.history(7))
    assert 299 <= width <= 500   # generous: a loaded CI machine is late, never early


def test_untimed_tasks_return_at_once_and_hold_until_replaced(any_server):
    with connect(any_server) as remote:
        led = remote.pin(7)
        started = time.monotonic()
        led.on()
        assert time.monotonic() - started < 1.0
        assert any_server.sim.value(7) == 1.0
        led.off()
        assert any_server.sim.value(7) == 0.0


def test_wait_mode_timed_task_holds_the_queue(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.on(time_ms=300)
        led.off()          # accepted at once, runs when the on ends
        assert led.state()["queue"] == 1
        led.sync(timeout=5)
    (start, width), = pulses(server.sim.history(7))
    assert 299 <= width <= 500   # generous: a loaded CI machine is late, never early


def test_nowait_mode_new_task_cuts_the_running_one_short(nowait_server):
    with connect(nowait_server) as remote:
        led = remote.pin(7)
        led.on(time_ms=2000)
        assert wait_until(lambda: nowait_server.sim.value(7) == 1.0)
        time.sleep(0.1)   # the scenario: off() comes 100 ms later
        led.off()
        (start, width), = pulses(nowait_server.sim.history(7))
        assert 90 <= width < 1000
        assert led.state()["task"] == "off"


def test_nowait_never_skips_a_task(nowait_server):
    """On/off pairs sent back to back all show both edges on the pin."""
    with connect(nowait_server) as remote:
        remote.pin(7)
        remote.request_pipeline([(op, {"pin": 7}) for _ in range(200) for op in ("on", "off")])
    values = levels(nowait_server.sim.history(7))
    assert values == [1.0, 0.0] * 200


def test_wait_mode_next_task_does_not_wait_for_an_untimed_blink(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.blink(on_time=10, off_time=10)
        assert wait_until(lambda: server.sim.value(7) == 1.0)
        started = time.monotonic()
        led.off(wait=True)
        assert time.monotonic() - started < 2.0
        assert server.sim.value(7) == 0.0


def test_timed_blink_holds_the_queue_in_wait_mode_then_goes_off(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.blink(time_ms=450, on_time=0.05, off_time=0.05)
        led.on()
        led.sync(timeout=5)
        history = server.sim.history(7)  # before the client leaves (its pin then goes safe)
    blink_pulses = pulses(history)
    assert len(blink_pulses) == 5
    # phase is kept: a late on edge (a loaded machine) shortens that one pulse
    assert all(25 <= w <= 150 for _, w in blink_pulses), blink_pulses
    # the on() ran only once the blink had ended, 450 ms after it began
    last_t, last_value = history[-1]
    assert last_value == 1.0
    assert (last_t - blink_pulses[0][0]) / 1e6 >= 449


def test_off_with_time_holds_the_pin_off(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.on()
        t0 = time.monotonic_ns()
        led.off(time_ms=200)
        led.on(wait=True)
        history = server.sim.history(7, t0)  # before the client leaves (its pin then goes safe)
    assert levels(history) == [0.0, 1.0]
    assert (history[1][0] - history[0][0]) / 1e6 >= 199


def test_value_drives_pwm(any_server):
    with connect(any_server) as remote:
        dim = remote.pin(12)
        dim.value(level=0.3)
        assert any_server.sim.value(12) == pytest.approx(0.3)
        assert dim.read() == pytest.approx(0.3)
        assert dim.state()["frequency"] == 100
        dim.value(time_ms=100, level=0.6, wait=True)
        assert any_server.sim.value(12) == 0.0


def test_pulse_fades_through_pwm_levels_then_ends_off(any_server):
    with connect(any_server) as remote:
        glow = remote.pin(12)
        glow.pulse(time_ms=400, fade_in_time=0.1, fade_out_time=0.1, wait=True)
    values = levels(any_server.sim.history(12))
    assert any(0.2 < v < 0.8 for v in values)
    assert max(values) > 0.9
    assert values[-1] == 0.0


def test_read_and_state_are_answered_at_once_while_a_timed_task_holds(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.on(time_ms=3000)
        led.off()
        started = time.monotonic()
        assert led.read() == 1
        state = led.state()
        assert time.monotonic() - started < 1.0
        assert state["mode"] == "output" and state["task"] == "on" and state["queue"] == 1
        assert 0 < state["remaining_ms"] <= 3000


def test_pins_are_independent(any_server):
    """A fast blink on one pin never delays a timed task on another."""
    with connect(any_server) as remote:
        busy = [remote.pin(p) for p in (11, 12, 13, 15)]
        for pin in busy:
            pin.blink(on_time=0.002, off_time=0.002)
        led = remote.pin(7)
        led.on(time_ms=200, wait=True)
    (start, width), = pulses(any_server.sim.history(7))
    assert 199 <= width <= 350


def test_close_in_wait_mode_waits_for_queued_work(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.on(time_ms=300)
        led.close()
        assert server.sim.function(7) == "output"
        assert wait_until(lambda: server.sim.function(7) == "released", timeout=5)
    (start, width), = pulses(server.sim.history(7))
    assert width >= 299


def test_close_in_nowait_mode_is_immediate(nowait_server):
    with connect(nowait_server) as remote:
        led = remote.pin(7)
        led.on(time_ms=3000)
        led.close()
        assert wait_until(lambda: nowait_server.sim.function(7) == "released", timeout=2)
    (start, width), = pulses(nowait_server.sim.history(7))
    assert width < 2000


def test_closed_pin_refuses_tasks_on_both_ends(server):
    with connect(server) as remote:
        led = remote.pin(7)
        led.close()
        with pytest.raises(Exception) as info:
            led.on()
        assert info.value.code == "pin_closed"
        again = remote.pin(7)
        assert again is not led
        again.on()
        assert server.sim.value(7) == 1.0


def test_soft_close_on_disconnect_finishes_queued_work_in_wait_mode(server):
    remote = connect(server)
    led = remote.pin(7)
    led.on(time_ms=300)
    led.blink(time_ms=200, on_time=0.02, off_time=0.02)
    remote.close()  # gone while the on is still running
    assert wait_until(lambda: server.sim.function(7) == "released", timeout=5)
    highs = pulses(server.sim.history(7))
    assert highs[0][1] >= 299          # the timed on ran to its end
    assert len(highs) >= 4             # and the queued blink ran too
    assert server.sim.value(7) == 0.0


def test_disconnect_in_nowait_mode_releases_at_once(nowait_server):
    remote = connect(nowait_server)
    remote.pin(7).on(time_ms=5000)
    remote.close()
    assert wait_until(lambda: nowait_server.sim.function(7) == "released", timeout=2)
    assert nowait_server.sim.value(7) == 0.0


def test_wait_true_returns_after_the_task(server):
    with connect(server) as remote:
        led = remote.pin(7)
        started = time.monotonic()
        led.on(time_ms=250, wait=True)
        assert time.monotonic() - started >= 0.25
        assert server.sim.value(7) == 0.0


def test_same_pin_object_for_every_spelling(client):
    led = client.pin(7, "b")
    assert client.pin(4, "g") is led
    assert client.pin("GPIO4") is led
    assert client.pin("BOARD7") is led
    assert client.pins == {7: led}
