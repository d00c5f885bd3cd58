"""Pins of I/O expanders (MCP23017, MCP23008) are remote pins: timed on the Pi, ruled, owned."""
from __future__ import annotations

import os
import signal
import time
from typing import Iterator

import pytest

from remoteio import RemoteServer
from remoteio.errors import BadArgument, BadPin, Forbidden, NotSupported, PinBusy
from remoteio.server.app import Server
from remoteio.server.config import ConfigError, parse_config
from remoteio.testing import pulses, wait_until

EXPANDERS = {"mcp0": {"chip": "mcp23017", "bus": 1, "address": 0x20},
             "mcp1": {"chip": "mcp23008", "bus": 1, "address": 0x21, "poll_ms": 5}}
RULES = {"mcp0:B5": {"access": "none"}, "mcp0:B6": {"access": "read"},
         "mcp0:B7": {"max_hold_ms": 500}, "mcp0:B4": {"safe_value": 1}}


def _server(mode: str = "wait") -> Server:
    return Server(host="127.0.0.1", port=0, backend="sim", mode=mode, expanders=EXPANDERS,
                  pins=RULES)


@pytest.fixture
def server() -> Iterator[Server]:
    with _server() as srv:
        yield srv


@pytest.fixture
def remote(server: Server) -> Iterator[RemoteServer]:
    with RemoteServer(*server.address, timeout=5.0) as client:
        yield client


def test_a_timed_on_of_an_expander_pin_is_timed_on_the_pi(server, remote):
    remote.pin("mcp0:A3").on(time_ms=300, wait=True)
    (start, width), = pulses(server.sim.history("mcp0:A3"))
    assert 299 <= width <= 500   # the bounds of a header pin's timed on (test_tasks.py)


def test_a_blink_of_an_expander_pin_keeps_its_phase_on_the_pi(server, remote):
    led = remote.pin("mcp0:B0")
    led.blink(time_ms=450, on_time=0.05, off_time=0.05)
    led.sync(timeout=5)
    blinks = pulses(server.sim.history("mcp0:B0"))
    assert len(blinks) == 5, blinks
    # the phase is kept from the first edge: each fall at 50 ms + 100 ms × n after it, never
    # early; a loaded machine makes an edge late (a late rise only shortens its own pulse)
    first = blinks[0][0]
    lateness = [(start + w * 1e6 - first) / 1e6 - (50 + 100 * n)
                for n, (start, w) in enumerate(blinks)]
    assert all(-0.5 <= late <= 100 for late in lateness), (blinks, lateness)


def test_an_mcp23008_pin_is_timed_the_same_way(server, remote):
    remote.pin("mcp1:A7").on(time_ms=200, wait=True)
    (start, width), = pulses(server.sim.history("mcp1:7"))
    assert 199 <= width <= 400


def test_in_nowait_mode_a_new_task_cuts_the_running_one_short():
    with _server("nowait") as server, RemoteServer(*server.address) as remote:
        led = remote.pin("mcp0:A1")
        led.on(time_ms=2000)
        assert wait_until(lambda: server.sim.level("mcp0:A1") == 1)
        time.sleep(0.1)   # the scenario: off() comes 100 ms later
        led.off()
        (start, width), = pulses(server.sim.history("mcp0:A1"))
        assert 90 <= width < 1000
        assert led.state()["task"] == "off"


def test_a_lease_not_renewed_reverts_an_expander_pin(server, remote):
    pump = remote.pin("mcp0:A2")
    pump.on(lease_ms=200)
    assert server.sim.level("mcp0:A2") == 1
    assert wait_until(lambda: server.sim.level("mcp0:A2") == 0, timeout=5)
    assert pump.state()["lease"] is None


def test_the_pin_rules_apply_to_expander_pins(server, remote):
    with pytest.raises(Forbidden, match="mcp0:B5 is not served"):
        remote.pin("mcp0:B5")
    watcher = remote.pin("mcp0:B6", claim=False)
    with pytest.raises(Forbidden, match="read-only"):
        watcher.on()
    held = remote.pin("mcp0:B7")
    with pytest.raises(Forbidden, match="at most 500 ms"):
        held.on()
    held.on(time_ms=100, wait=True)
    safe_high = remote.pin("mcp0:B4")
    safe_high.as_output()
    assert server.sim.level("mcp0:B4") == 1          # output starts at its safe value
    safe_high.off(time_ms=100, wait=True)            # a timed task ends at the safe value
    assert [v for _, v in server.sim.history("mcp0:B4")][-2:] == [0.0, 1.0]


def test_a_batch_write_to_one_port_is_one_register_write(server, remote):
    chip = server.sim.board.chips.model(1, 0x20)
    for bit in range(8):
        remote.pin(f"mcp0:A{bit}").off()       # outputs already: only levels change below
    before = chip.writes
    remote.write({f"mcp0:A{bit}": 1 for bit in range(8)})
    assert chip.writes - before == 1
    assert chip.read(0x14) == 0xFF             # OLATA
    before = chip.writes
    remote.write({7: 1, "mcp0:A0": 0, "mcp0:A7": 0})  # header and expander pins in one batch
    assert chip.writes - before == 1 and chip.read(0x14) == 0x7E
    assert server.sim.value(7) == 1.0
    assert remote.read_pins(["mcp0:A0", "mcp0:A1", 7]) == {"mcp0:A0": 0, "mcp0:A1": 1, 7: 1}


def test_an_expander_input_has_the_chips_pull_up_and_change_events(server, remote):
    button = remote.pin("mcp1:A2").as_input(pull="up")
    assert button.read() == 1
    events = []
    button.when_changed = events.append
    server.sim.drive("mcp1:A2", 0)
    assert wait_until(lambda: len(events) == 1, timeout=5)
    server.sim.drive("mcp1:A2", None)             # let go: the pull-up wins
    assert wait_until(lambda: len(events) == 2, timeout=5)
    assert [(e.value, e.edge) for e in events] == [(0, "falling"), (1, "rising")]
    assert events[0].ts_ns < events[1].ts_ns <= time.monotonic_ns()   # the Pi's clock
    with pytest.raises(BadArgument, match="pull-up only"):
        remote.pin("mcp1:A3").as_input(pull="down")


def test_pwm_on_an_expander_pin_is_not_supported(remote):
    with pytest.raises(NotSupported, match="digital"):
        remote.pin("mcp0:A5").value(level=0.5)


def test_a_pin_of_no_expander_or_past_the_chips_pins_is_a_bad_pin(remote):
    with pytest.raises(BadPin, match="no expander 'mcp7'"):
        remote.pin("mcp7:A0")
    with pytest.raises(BadPin, match="MCP23008"):
        remote.pin("mcp1:B0")


def test_a_killed_expander_worker_is_replaced_and_its_pins_made_safe(server, remote):
    led = remote.pin("mcp0:A6")
    led.on()
    pid = wait_until(lambda: server.expander_worker_pids().get("mcp0"), 5)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: server.expander_worker_pids().get("mcp0") not in (None, pid), 5)
    assert wait_until(lambda: server.sim.level("mcp0:A6") == 0, 5)   # the chip reset
    led.on(time_ms=100, wait=True)    # the fresh worker serves the pin
    assert pulses(server.sim.history("mcp0:A6"))[-1][1] >= 99


def test_a_disconnect_puts_an_expander_pin_in_its_safe_state(server):
    with RemoteServer(*server.address) as first:
        first.pin("mcp0:A4").on()
        assert server.sim.level("mcp0:A4") == 1
    assert wait_until(lambda: server.sim.level("mcp0:A4") == 0, 5)
    with RemoteServer(*server.address) as second:   # and it is free for the next client
        second.pin("mcp0:A4").on()


def test_an_expander_pin_is_held_like_a_header_pin(server, remote):
    remote.pin("mcp0:A0").on()
    with RemoteServer(*server.address) as other:
        with pytest.raises(PinBusy):
            other.pin("mcp0:A0")
        assert other.pin("mcp0:A0", claim=False).read() == 1


def test_a_raw_i2c_call_to_an_expanders_address_is_refused_naming_it(remote):
    bus = remote.i2c(1)
    with pytest.raises(PinBusy, match="held by expander mcp0"):
        bus.read_byte_data(0x20, 0x00)
    with pytest.raises(PinBusy, match="expander mcp1"):
        bus.transaction([("read_byte_data", 0x50, 0), ("write_byte_data", 0x21, 0x0A, 1)])
    assert bus.read_byte_data(0x50, 0) == 0   # another chip of the same bus is served


def test_a_gpiozero_led_on_an_expander_pin_works_over_the_network(server):
    from gpiozero import LED
    from remoteio.gpiozero_factory import RemoteIOFactory
    factory = RemoteIOFactory(*server.address)
    try:
        led = LED("mcp0:B3", pin_factory=factory)
        led.on()
        assert server.sim.level("mcp0:B3") == 1 and led.is_lit
        led.off()
        assert server.sim.level("mcp0:B3") == 0
        led.close()
    finally:
        factory.close()


def test_expanders_are_declared_in_the_configuration_file():
    config = parse_config('[expanders.bells]\nchip = "mcp23017"\nbus = 1\naddress = 0x24\n'
                          'poll_ms = 20\n[pins."bells:A0"]\nmax_hold_ms = 1000\n')
    spec = config.expanders["bells"]
    assert (spec.chip, spec.bus, spec.address, spec.poll_ms) == ("mcp23017", 1, 0x24, 20.0)
    assert config.pins["bells:A0"].max_hold_ms == 1000
    with Server.from_config(config, host="127.0.0.1", port=0, backend="sim") as server, \
            RemoteServer(*server.address) as remote:
        remote.pin("bells:A0").on(time_ms=100, wait=True)
        assert pulses(server.sim.history("bells:A0"))


@pytest.mark.parametrize("table, says", [
    ('chip = "pcf9999"', "chip must be one of"),
    ('chip = "mcp23017"\naddress = 0x90', "address must be"),
    ('chip = "mcp23017"\ninterrupt = 4', "interrupt must be a header GPIO pin"),
    ('chip = "mcp23017"\ninterrupt = 5', "a pin of I2C bus 1 itself"),
    ('chip = "mcp23017"\npoll_ms = 0', "poll_ms must be"),
])
def test_a_wrong_expander_table_is_a_located_config_error(table, says):
    with pytest.raises(ConfigError, match=says):
        parse_config(f"[expanders.mcp0]\n{table}\n", "remoteio.toml")


def test_a_failed_register_write_is_a_bus_error_naming_the_expander_and_changes_nothing():
    from remoteio.errors import BusError
    from remoteio.server.expanderdriver import ExpanderChip
    from remoteio.server.simdevices import B_OLAT, SimI2CBus
    chip = ExpanderChip(SimI2CBus(()), "mcp9", 1, 0x27, ports=2)   # nothing at 0x27: a NAK
    with pytest.raises(BusError, match=r"expander mcp9 \(I2C bus 1, address 0x27\).*ENXIO"):
        chip.set_bit(B_OLAT, 3, 1)
    assert chip.bit(B_OLAT, 3) == 0 and chip.flush() == 0


def test_info_lists_the_declared_expanders_and_their_pins_state(server, remote):
    remote.pin("mcp0:A3").on(time_ms=5000)
    remote.pin("mcp1:A2").as_input(pull="up")
    assert wait_until(lambda: {e["name"]: e for e in remote.info()["expanders"]}["mcp1"]["pins"],
                      timeout=5)
    info = {e["name"]: e for e in remote.info()["expanders"]}
    assert set(info) == {"mcp0", "mcp1"}
    mcp0 = info["mcp0"]
    assert (mcp0["chip"], mcp0["bus"], mcp0["address"], mcp0["interrupt"]) == \
        ("mcp23017", 1, 0x20, None)
    assert mcp0["pid"] == server.expander_worker_pids()["mcp0"]
    pins = {p["pin"]: p for p in mcp0["pins"]}
    assert len(pins) == 16 and pins["mcp0:A3"]["gpio"] is None
    a3 = pins["mcp0:A3"]
    assert (a3["mode"], a3["task"], a3["value"]) == ("output", "on", 1.0)
    assert a3["owner"] is not None and 0 < a3["remaining_ms"] <= 5000
    assert pins["mcp0:A4"]["mode"] == "released" and pins["mcp0:A4"]["owner"] is None
    a2 = {p["pin"]: p for p in info["mcp1"]["pins"]}["mcp1:A2"]
    assert a2["mode"] == "input"
    assert all(isinstance(p["pin"], int) for p in remote.info()["pins"])   # header pins only


# ---- declaring an expander at run time ---------------------------------------------------
def test_declaring_an_expander_at_run_time_is_forbidden_unless_the_server_allows_it(remote):
    with pytest.raises(Forbidden, match="declare_expanders"):
        remote.declare_expander("mcp7", "mcp23017", address=0x27)
    with pytest.raises(BadPin):
        remote.pin("mcp7:A0")


def test_an_expander_declared_at_run_time_serves_timed_pins_and_interrupts():
    with Server(host="127.0.0.1", port=0, backend="sim", expanders=EXPANDERS,
                declare_expanders=True) as server, \
            RemoteServer(*server.address, timeout=5.0) as remote:
        remote.pin("mcp0:A0").on()   # workers forked before the declaration see the new chip
        answer = remote.declare_expander("mcp7", "mcp23008", address=0x27, interrupt=16)
        assert answer["pins"][0] == "mcp7:A0" and len(answer["pins"]) == 8
        remote.pin("mcp7:A5").on(time_ms=200, wait=True)
        (start, width), = pulses(server.sim.history("mcp7:A5"))
        assert 199 <= width <= 400
        button = remote.pin("mcp7:A1").as_input(pull="up")
        events = []
        button.when_changed = events.append
        chip = server.backend.sim.chips.model(1, 0x27)
        assert wait_until(lambda: chip.registers[0x02] & 0x02, timeout=5)   # GPINTEN
        server.sim.drive("mcp7:A1", 0)
        server.sim.drive("mcp7:A1", None)
        assert wait_until(lambda: len(events) == 2, timeout=5)
        assert "mcp7" in {e["name"] for e in remote.info()["expanders"]}
        with pytest.raises(BadArgument, match="declared already"):
            remote.declare_expander("mcp7", "mcp23008", address=0x26)
        with pytest.raises(PinBusy, match="expander mcp0 already"):
            remote.declare_expander("mcp8", "mcp23017", address=0x20)
        with pytest.raises(BadArgument, match="chip must be one of"):
            remote.declare_expander("mcp9", "pcf9999", address=0x38)


@pytest.mark.parametrize("rules, refusal", [
    (dict(buses={"i2c1": {"access": "none"}}), "I2C bus 1 is not served"),
    (dict(buses={"i2c1": {"access": "read"}}), "I2C bus 1 is read-only"),
    (dict(buses={"i2c1": {"addresses": [0x50]}}), "address 0x27 is not in its allowlist"),
    (dict(pins={3: {"access": "read"}}), "BOARD3 .*read-only"),
    (dict(pins={5: {"access": "none"}}), "BOARD5 .*not served"),
])
def test_an_expander_declared_at_run_time_is_bound_by_its_buss_rules_and_its_pins(rules, refusal):
    with Server(host="127.0.0.1", port=0, backend="sim", declare_expanders=True, **rules) as server, \
            RemoteServer(*server.address, timeout=5.0) as remote:
        with pytest.raises(Forbidden, match=refusal):
            remote.declare_expander("mcp7", "mcp23008", address=0x27)
        with pytest.raises(BadPin):   # refused means not declared: no pin of it drives the bus
            remote.pin("mcp7:A0").on()
        assert server.backend.sim.chips.names == () or "mcp7" not in server.backend.sim.chips.names


@pytest.mark.parametrize("buses, refusal", [
    ({"i2c1": {"access": "none"}}, "not served"),
    ({"i2c1": {"access": "read"}}, "read-only"),
    ({"i2c1": {"addresses": [0x50]}}, "0x20 is not in its allowlist"),
])
def test_a_configured_expander_on_a_bus_its_rule_refuses_is_a_configuration_error(buses, refusal):
    with pytest.raises(ValueError, match=rf"\[expanders.mcp0\].*{refusal}"):
        Server(host="127.0.0.1", port=0, backend="sim", buses=buses, expanders=EXPANDERS)


def test_the_configuration_file_allows_declaring_expanders_at_run_time():
    assert parse_config("").declare_expanders is False
    config = parse_config("[server]\ndeclare_expanders = true\n")
    with Server.from_config(config, host="127.0.0.1", port=0, backend="sim") as server, \
            RemoteServer(*server.address) as remote:
        assert remote.declare_expander("late", "mcp23017", address=0x24)["pins"][15] == "late:B7"
        remote.pin("late:B7").on()
        assert server.sim.level("late:B7") == 1


def test_the_asyncio_client_declares_an_expander_too():
    import asyncio
    from remoteio.aio import AsyncRemoteServer

    async def declare(address):
        async with AsyncRemoteServer(*address) as remote:
            return await remote.declare_expander("amcp", "mcp23008", address=0x25, poll_ms=5)
    with Server(host="127.0.0.1", port=0, backend="sim", declare_expanders=True) as server:
        assert asyncio.run(declare(server.address))["pins"][-1] == "amcp:A7"
