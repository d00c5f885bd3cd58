"""The one gate: access, the standalone check, the hold clock (rules.py)."""
from __future__ import annotations

import pytest

from remoteio.server.config import PinRule, ServerConfig
from remoteio.errors import Forbidden
from remoteio.server.rules import HoldClock, Rules, check_hold


def rules(**rule) -> Rules:
    return Rules(ServerConfig(pins={7: PinRule(**rule)}))


def test_an_open_pin_allows_everything():
    r = rules()
    for op, args in (("on", {}), ("set", {"state": 1.0}), ("blink", {})):
        r.check(7, op, args)


@pytest.mark.parametrize("op", ["on", "output", "sim", "write", "setup"])
def test_a_pin_not_served_refuses_every_operation(op):
    with pytest.raises(Forbidden, match="not served"):
        rules(access="none").check_access(7, op)


@pytest.mark.parametrize("op", ["read", "state", "sync", "watch", "unwatch", "read_many"])
def test_a_read_only_pin_allows_reading(op):
    rules(access="read").check_access(7, op)


@pytest.mark.parametrize("op, args", [
    ("on", {}), ("set", {"state": 1.0}), ("output", {}), ("write", {}), ("blink", {}),
    ("setup", {"function": "output", "state": None, "frequency": None}),
    ("setup", {"function": None, "state": 1.0, "frequency": None}),
    ("setup", {"function": "input", "state": None, "frequency": 100.0}),
])
def test_a_read_only_pin_refuses_every_change_of_what_it_drives(op, args):
    with pytest.raises(Forbidden, match="read-only"):
        rules(access="read").check_access(7, op, args)


@pytest.mark.parametrize("op, args", [
    ("open", {}), ("input", {"pull": "up"}), ("close", {}),
    ("setup", {"function": "input", "pull": "up", "state": None, "frequency": None}),
])
def test_a_read_only_pin_may_become_an_input_with_a_pull_like_a_button(op, args):
    rules(access="read").check_access(7, op, args)


def test_sim_honours_access():
    rules(access="read").check_sim(7, "history")
    with pytest.raises(Forbidden, match="read-only"):
        rules(access="read").check_sim(7, "drive")
    with pytest.raises(Forbidden, match="not served"):
        rules(access="none").check_sim(7, "history")
    rules().check_sim(7, "wire")


@pytest.mark.parametrize("op, args", [
    ("on", {}), ("set", {"state": 1.0}), ("setup", {"state": 1.0}), ("blink", {}),
    ("on", {"time_ms": 1500.0}), ("value", {"level": 0.5, "lease_ms": 2000.0}),
])
def test_max_hold_refuses_what_could_keep_the_pin_away_too_long(op, args):
    with pytest.raises(Forbidden, match="at most 1000 ms"):
        rules(max_hold_ms=1000).check(7, op, args)


@pytest.mark.parametrize("op, args", [
    ("off", {}), ("set", {"state": 0.0}), ("setup", {"state": 0.0}), ("setup", {"state": None}),
    ("on", {"time_ms": 900.0}), ("on", {"lease_ms": 1000.0}), ("output", {}), ("input", {}),
    ("blink", {"time_ms": 500.0}), ("close", {}),
])
def test_max_hold_allows_what_returns_in_time_or_stays_safe(op, args):
    rules(max_hold_ms=1000).check(7, op, args)


def test_the_safe_value_decides_what_is_away():
    r = rules(max_hold_ms=1000, safe_value=1)
    r.check(7, "on", {})
    r.check(7, "set", {"state": 1.0})
    with pytest.raises(Forbidden):
        r.check(7, "off", {})


def test_lease_only_wants_a_lease_to_leave_the_safe_value():
    r = rules(lease_only=True)
    r.check(7, "on", {"lease_ms": 60_000.0})
    r.check(7, "off", {})
    for op, args in (("on", {"time_ms": 100.0}), ("set", {"state": 1.0}), ("setup", {"state": 1.0})):
        with pytest.raises(Forbidden, match="lease"):
            r.check(7, op, args)


def test_a_hold_counts_the_stretch_already_spent_away():
    rule = PinRule(max_hold_ms=1000)
    check_hold(rule, "BOARD7", "on", away=True, back_in=0.5, leased=False, away_for=0.5)
    with pytest.raises(Forbidden, match="1100 ms"):
        check_hold(rule, "BOARD7", "on", away=True, back_in=0.6, leased=False, away_for=0.5)
    check_hold(rule, "BOARD7", "off", away=False, back_in=None, leased=False, away_for=5.0)


def test_the_hold_clock_starts_when_the_pin_leaves_its_safe_value():
    clock = HoldClock(rest=0.1)
    assert clock.away_for(10.0) == 0.0
    clock.drove(away=True, now=10.0)
    clock.drove(away=True, now=10.3)  # still away: the same stretch
    assert clock.away_for(10.5) == pytest.approx(0.5)


def test_a_short_rest_does_not_end_the_stretch():
    clock = HoldClock(rest=0.1)
    clock.drove(away=True, now=10.0)
    clock.drove(away=False, now=10.5)
    clock.drove(away=True, now=10.55)
    assert clock.away_for(10.6) == pytest.approx(0.6)


def test_a_long_enough_rest_starts_a_new_stretch():
    clock = HoldClock(rest=0.1)
    clock.drove(away=True, now=10.0)
    clock.drove(away=False, now=10.5)
    assert clock.away_for(10.65) == 0.0
    clock.drove(away=True, now=10.7)
    assert clock.away_for(10.8) == pytest.approx(0.1)


def test_rules_reloaded_while_serving_bind_the_running_workers_and_keep_the_clients():
    from remoteio import RemoteServer
    from remoteio.server import Server
    from remoteio.testing import wait_until
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        with RemoteServer(*server.address) as remote:
            pin = remote.pin(7)
            pin.on()
            pin.off()
            server.reload_rules(pins={7: {"max_hold_ms": 500}})

            def refused() -> bool:
                try:
                    remote.request("set", pin=7, state=1.0)  # through the running worker
                except Forbidden:
                    return True
                remote.request("set", pin=7, state=0.0)
                return False
            assert wait_until(refused, timeout=5)
            pin.on(time_ms=300)  # within the new bound: fine, same connection
            assert server.sim.value(7) == 1.0


def test_a_reload_that_makes_a_blinking_pin_read_only_stops_the_blink_where_it_is():
    from remoteio import RemoteServer
    from remoteio.server import Server
    from remoteio.testing import wait_until
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        with RemoteServer(*server.address) as remote:
            pin = remote.pin(7)
            pin.blink(on_time=0.02, off_time=0.02)
            assert wait_until(lambda: len(server.sim.history(7)) >= 4, timeout=5)
            server.reload_rules(pins={7: {"access": "read"}})
            assert wait_until(lambda: remote.request("state", pin=7)["task"] is None, timeout=5)
            seen = len(server.sim.history(7))
            # ten blink periods: a blink still running would have changed the pin
            assert not wait_until(lambda: len(server.sim.history(7)) > seen, timeout=0.4)
            with pytest.raises(Forbidden):
                pin.on()
            pin.close()  # letting it go is still allowed


def test_a_timed_task_on_a_pin_a_reload_makes_read_only_still_ends_safe():
    from remoteio import RemoteServer
    from remoteio.server import Server
    from remoteio.testing import wait_until
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        with RemoteServer(*server.address) as remote:
            pin = remote.pin(7)
            pin.blink(on_time=0.05, off_time=0.05, time_ms=1500)
            assert wait_until(lambda: len(server.sim.history(7)) >= 3, timeout=5)
            server.reload_rules(pins={7: {"access": "read"}})
            # the blink stops where it is, and the pin is not left on when its time is up
            assert wait_until(lambda: server.sim.value(7) == 0.0
                              and remote.request("state", pin=7)["task"] is None, timeout=10)


def test_the_pin_rules_bind_a_bus_or_an_expander_on_the_pins_it_would_use():
    from remoteio import RemoteServer
    from remoteio.server import Server
    rules = {3: {"access": "none"}, 19: {"access": "read"}, 27: {"access": "none"},
             16: {"access": "none"}, 18: {"access": "read"}}
    with Server(host="127.0.0.1", port=0, backend="sim", declare_expanders=True,
                pins=rules) as server, RemoteServer(*server.address) as remote:
        with pytest.raises(Forbidden, match="BOARD3"):
            remote.i2c(1).write_byte_data(0x50, 0, 0xAB)      # SDA1 is not served
        with pytest.raises(Forbidden, match="BOARD19"):
            remote.spi(0, 0).xfer2([0xFF])                    # MOSI is read-only: a bus drives it
        with pytest.raises(Forbidden, match="BOARD27"):
            remote.i2c(0).write_byte_data(0x50, 0, 0x55)      # the HAT EEPROM's bus
        with pytest.raises(Forbidden, match="BOARD16"):       # an interrupt line not served
            remote.declare_expander("mcpz", "mcp23017", bus=2, address=0x21, interrupt=16)
        # a read-only pin may be an interrupt line: the expander's worker only reads it
        remote.declare_expander("mcpy", "mcp23017", bus=2, address=0x22, interrupt=18)
        remote.pin("mcpy:B0").as_input(pull="up")
        assert server.sim.function(16) == "released"
        assert remote.ping() > 0


@pytest.mark.parametrize("let_go", ["input", "setup"])
def test_letting_a_safe_high_output_go_as_an_input_never_drives_it_low(let_go):
    from remoteio import RemoteServer
    from remoteio.server import Server
    from remoteio.testing import wait_until
    with Server(host="127.0.0.1", port=0, backend="sim", pins={18: {"safe_value": 1}}) as server, \
            RemoteServer(*server.address) as remote:
        relay = remote.pin(18)
        relay.as_output()                       # starts at its safe value: 1 (an active-low relay off)
        assert wait_until(lambda: server.sim.value(18) == 1.0, timeout=5)
        before = server.sim.history(18)
        if let_go == "input":
            relay.as_input(pull="up")
        else:                                   # gpiozero's way: setup function=input
            remote.request("setup", pin=18, function="input", pull="up")
        assert remote.request("state", pin=18)["mode"] == "input"
        assert server.sim.history(18) == before  # not driven on the way (it was 0 for ~0.5 ms)
        pwm = remote.pin(16)
        pwm.value(level=0.5)
        pwm.as_input()                          # a PWM output stops at its safe value first
        assert [level for _, level in server.sim.history(16)][-2:] == [0.5, 0.0]


@pytest.mark.parametrize("let_go", ["close", "input"])
def test_a_pin_a_reload_made_read_only_is_let_go_at_the_level_it_has(let_go):
    from remoteio import RemoteServer
    from remoteio.server import Server
    from remoteio.testing import wait_until
    with Server(host="127.0.0.1", port=0, backend="sim") as server, RemoteServer(*server.address) as remote:
        pin = remote.pin(7)
        pin.on()
        assert wait_until(lambda: server.sim.value(7) == 1.0, timeout=5)
        server.reload_rules(pins={7: {"access": "read"}})

        def refused() -> bool:   # the router has the new rules, and the worker had them before this
            try:
                pin.on()
            except Forbidden:
                return True
            return False
        assert wait_until(refused, timeout=5)
        before = server.sim.history(7)
        if let_go == "close":
            pin.close()
        else:
            remote.request("input", pin=7, pull="floating")
        assert remote.request("state", pin=7)["mode"] in ("input", "released", "unset")
        assert server.sim.history(7) == before  # never driven, to its safe value (0) neither
