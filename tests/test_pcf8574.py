"""PCF8574 / PCF8574A expander pins: remote pins timed on the Pi, over one quasi-bidirectional port."""
from __future__ import annotations

import time
from typing import Iterator

import pytest

from remoteio import RemoteServer
from remoteio.errors import BadArgument, BadPin, BusError, Forbidden, PinBusy
from remoteio.server.app import Server
from remoteio.server.config import ConfigError, parse_config
from remoteio.server.pcf8574 import PCF8574Chip
from remoteio.server.simdevices import B_GPPU, B_IODIR, B_OLAT, SimI2CBus
from remoteio.server.simpcf import SimPCF8574
from remoteio.testing import pulses, wait_until

EXPANDERS = {"pcf0": {"chip": "pcf8574", "address": 0x20, "poll_ms": 5},
             "pcfa": {"chip": "pcf8574a"},
             "pcfi": {"chip": "pcf8574", "address": 0x27, "poll_ms": 60_000, "interrupt": 11},
             "mcp0": {"chip": "mcp23017", "address": 0x21}}
RULES = {"pcfa:P7": {"access": "none"}}


def _server(mode: str = "wait", **more) -> Server:
    return Server(host="127.0.0.1", port=0, backend="sim", mode=mode, expanders=EXPANDERS,
                  pins=RULES, **more)


@pytest.fixture
def server() -> Iterator[Server]:
    with _server() as srv:
        yield srv


@pytest.fixture
def remote(server: Server) -> Iterator[RemoteServer]:
    with RemoteServer(*server.address, timeout=5.0) as client:
        yield client


# ---- the chip, on a simulated bus ---------------------------------------------------------
def _chip(interrupt: bool = False):
    model = SimPCF8574()
    chip = PCF8574Chip(SimI2CBus((), shared={0x20: model}), "pcf9", 1, 0x20, interrupt)
    chip.reset()
    return chip, model


def test_the_byte_written_has_inputs_at_1_and_outputs_at_their_level():
    chip, model = _chip()
    chip.deferring = True
    chip.set_bit(B_IODIR, 0, 0)                       # P0 an output, low
    chip.set_bit(B_IODIR, 1, 0)
    chip.set_bit(B_OLAT, 1, 1)                        # P1 an output, high (weak, as an input)
    chip.set_bit(B_OLAT, 2, 0)                        # P2 stays an input: its latch is 1
    assert chip.flush() == 1 and model.latch == 0xFE
    assert chip.flush() == 0                          # nothing changed: no write
    chip.set_bit(B_IODIR, 1, 1)                       # a high output becomes an input: same byte
    assert chip.flush() == 0 and model.writes == 2    # the reset's write and one more


def test_a_reset_latches_every_pin_high_and_a_read_is_one_read_byte():
    chip, model = _chip()
    assert model.latch == 0xFF and chip.bit(B_IODIR, 5) == 1
    model.drive_input(0, 3, 0)
    assert chip.read_inputs() == 0xF7


def test_a_failed_write_is_a_bus_error_naming_the_expander_and_changes_nothing():
    chip = PCF8574Chip(SimI2CBus(()), "pcf9", 1, 0x27)   # nothing at 0x27: a NAK
    with pytest.raises(BusError, match=r"expander pcf9 \(I2C bus 1, address 0x27\).*ENXIO"):
        chip.set_bit(B_IODIR, 3, 0)
    assert chip.bit(B_IODIR, 3) == 1 and chip.flush() == 0


def test_an_interrupt_takes_one_read_whose_levels_are_the_next_read_inputs():
    chip, model = _chip(interrupt=True)
    model.drive_input(0, 4, 0)
    before = model.memory.writes
    flags, levels = chip.read_captured()
    assert (flags, levels) == (0xFF, 0xEF)
    model.drive_input(0, 4, None)                     # changed since: not seen by the next one
    assert chip.read_inputs() == 0xEF and chip.read_inputs() == 0xFF
    assert model.memory.writes == before


def test_a_pull_down_is_refused_and_floating_is_the_chips_pull_up():
    chip, _ = _chip()
    with pytest.raises(BadArgument, match="weak pull-up") as info:
        chip.pull_of("pcf9:P1", "down")
    assert info.value.detail == "PinInvalidPull"
    assert chip.pull_of("pcf9:P1", "floating") == chip.pull_of("pcf9:P1", "up") == "up"
    chip.set_bit(B_GPPU, 1, 1)                        # no register behind it: no write
    assert chip.flush() == 0


# ---- the simulated chip -------------------------------------------------------------------
def test_the_simulated_int_is_low_while_an_input_differs_from_the_last_read_or_write():
    wire = []
    model = SimPCF8574(interrupt=wire.append)
    model.drive_input(0, 2, 0)
    assert wire[-1] == 0                              # asserted
    model.read_from(0, 1)
    assert wire[-1] is None                           # a read lets go
    model.drive_input(0, 2, None)
    assert wire[-1] == 0
    model.drive_input(0, 2, 0)                        # back to the level last read: let go
    assert wire[-1] is None
    model.drive_input(0, 2, None)
    model.send_byte(0xFF)                             # a write lets go too
    assert wire[-1] is None
    model.send_byte(0xFE)                             # an output's change is no interrupt
    model.drive_input(0, 0, 1)                        # nor is a drive fighting an output low
    assert wire[-1] is None and model.pin_levels()[0] == 0


def test_the_simulated_chip_records_its_pins_as_p0_to_p7():
    model = SimPCF8574()
    model.send_byte(0xF7)
    assert model.history[-1][1:] == ("P3", 0)


# ---- pins served ---------------------------------------------------------------------------
def test_a_timed_on_of_a_pcf8574_pin_is_timed_on_the_pi(server, remote):
    led = remote.pin("pcf0:P3")
    led.off()                     # (at power-on the pin is high already: an on changes nothing)
    led.on(time_ms=300, wait=True)
    (start, width), = pulses(server.sim.history("pcf0:P3"))
    assert 299 <= width <= 500   # the bounds of a header pin's timed on (test_tasks.py)


def test_an_output_high_is_the_weak_high_of_an_input_and_low_is_driven(server, remote):
    led = remote.pin("pcf0:p1")                       # "p1" read as P1
    led.on()
    chip = server.sim.board.chips.model(1, 0x20)
    assert server.sim.level("pcf0:P1") == 1 and server.sim.function("pcf0:P1") == "input"
    led.off()
    assert chip.latch == 0xFD and server.sim.function("pcf0:P1") == "output"
    assert led.state()["pin"] == "pcf0:P1"


def test_a_lease_not_renewed_reverts_a_pcf8574_pin(server, remote):
    pump = remote.pin("pcf0:P2")
    pump.off()
    pump.on(lease_ms=200)
    assert server.sim.level("pcf0:P2") == 1
    assert wait_until(lambda: server.sim.level("pcf0:P2") == 0, timeout=5)
    assert pump.state()["lease"] is None


def test_in_nowait_mode_a_new_task_cuts_a_pcf8574_pins_running_one_short():
    with _server("nowait") as server, RemoteServer(*server.address) as remote:
        led = remote.pin("pcf0:P4")
        led.off()
        led.on(time_ms=2000)
        assert wait_until(lambda: server.sim.level("pcf0:P4") == 1)
        time.sleep(0.1)   # the scenario: off() comes 100 ms later
        led.off()
        (start, width), = pulses(server.sim.history("pcf0:P4"))
        assert 90 <= width < 1000
        assert led.state()["task"] == "off"


def test_a_batch_write_to_the_eight_pins_is_one_bus_write(server, remote):
    chip = server.sim.board.chips.model(1, 0x20)
    for bit in range(7):
        remote.pin(f"pcf0:P{bit}").on()                # outputs (weak high): only levels change
    remote.pin("pcf0:P7").on()
    before = chip.writes
    remote.write({f"pcf0:P{bit}": bit % 2 for bit in range(8)})
    assert chip.writes - before == 1 and chip.latch == 0xAA
    before = chip.writes
    remote.write({7: 1, "pcf0:P0": 1, "pcf0:P7": 0})   # header and expander pins in one batch
    assert chip.writes - before == 1 and chip.latch == 0x2B
    assert server.sim.value(7) == 1.0
    assert remote.read_pins(["pcf0:P0", "pcf0:P2", 7]) == {"pcf0:P0": 1, "pcf0:P2": 0, 7: 1}


def test_a_polled_input_has_the_chips_pull_up_and_change_events(server, remote):
    button = remote.pin("pcf0:P5").as_input()          # no pull given: the chip's pull-up
    assert button.read() == 1 and button.state()["pull"] == "up"
    events = []
    button.when_changed = events.append
    server.sim.drive("pcf0:P5", 0)
    assert wait_until(lambda: len(events) == 1, timeout=5)
    server.sim.drive("pcf0:P5", None)                  # let go: the pull-up wins
    assert wait_until(lambda: len(events) == 2, timeout=5)
    assert [(e.value, e.edge) for e in events] == [(0, "falling"), (1, "rising")]
    assert events[0].ts_ns < events[1].ts_ns <= time.monotonic_ns()   # the Pi's clock


def test_an_input_change_is_read_on_the_interrupt_lines_fall_stamped_with_it(server, remote):
    button = remote.pin("pcfi:P6").as_input(pull="up")
    events = []
    button.when_changed = events.append
    assert wait_until(lambda: server.expander_worker_pids().get("pcfi"), timeout=5)
    chip = server.sim.board.chips.model(1, 0x27)
    for level, edge in ((0, "falling"), (None, "rising")):
        before = time.monotonic_ns()
        server.sim.drive("pcfi:P6", level)             # poll_ms is 60 s: only INT tells it
        after = time.monotonic_ns()
        assert wait_until(lambda: events and events[-1].edge == edge, timeout=5), events
        assert before <= events[-1].ts_ns <= after     # the line's fall, on the Pi's clock
        assert wait_until(lambda: server.sim.level(11) == 1, timeout=5)   # a read let go
    assert [e.value for e in events] == [0, 1] and chip.latch == 0xFF


def test_a_pull_down_on_a_pcf8574_pin_is_a_bad_argument_saying_why(remote):
    with pytest.raises(BadArgument, match="always has the chip's weak pull-up"):
        remote.pin("pcf0:P1").as_input(pull="down")


def test_a_gpiozero_button_on_a_pcf8574_pin_works_over_the_network(server):
    from gpiozero import Button, DigitalInputDevice
    from gpiozero.exc import PinInvalidPull
    from remoteio.gpiozero_factory import RemoteIOFactory
    factory = RemoteIOFactory(*server.address)
    try:
        button = Button("pcf0:P3", pin_factory=factory)
        assert not button.is_pressed
        server.sim.drive("pcf0:P3", 0)
        assert wait_until(lambda: button.is_pressed, timeout=5)
        button.close()
        with pytest.raises(PinInvalidPull, match="weak pull-up"):   # pull_up=False: down
            DigitalInputDevice("pcf0:P4", pin_factory=factory)
    finally:
        factory.close()


@pytest.mark.parametrize("name, says", [
    ("pcf0:A3", "pcf0 is a PCF8574, with pins pcf0:P0 .. pcf0:P7 \\(bit numbers and A/B names "
                "are an MCP chip's\\)"),
    ("pcf0:3", "pcf0:A3: pcf0 is a PCF8574, with pins pcf0:P0 .. pcf0:P7 \\(bit numbers"),
    ("pcf0:P8", "'pcf0:P3' \\(PCF8574: P0-P7\\)"),
    ("mcp0:P1", "mcp0 is an MCP23017, with pins mcp0:A0 .. mcp0:B7"),
])
def test_a_name_not_of_the_chips_range_is_a_bad_pin_naming_the_range(remote, name, says):
    with pytest.raises(BadPin, match=says):
        remote.pin(name)


def test_a_pcf8574a_is_at_0x38_by_default_its_address_held_and_its_pins_ruled(server, remote):
    assert {e["name"]: e["address"] for e in remote.info()["expanders"]}["pcfa"] == 0x38
    remote.pin("pcfa:P0").off()
    assert server.sim.board.chips.model(1, 0x38).latch == 0xFE
    with pytest.raises(PinBusy, match=r"held by expander pcfa \(a PCF8574A\): use its pins, "
                                      r"pcfa:P0 .. pcfa:P7"):
        remote.i2c(1).read_byte(0x38)
    with pytest.raises(Forbidden, match="pcfa:P7 is not served"):
        remote.pin("pcfa:p7")


@pytest.mark.parametrize("table, says", [
    ('chip = "pcf8574"\naddress = 0x38', r"address must be an I2C address \(a PCF8574's\) "
                                         "0x20..0x27"),
    ('chip = "pcf8574a"\naddress = 0x20', "0x38..0x3f"),
])
def test_a_pcf_address_out_of_its_chips_range_is_a_located_config_error(table, says):
    with pytest.raises(ConfigError, match=says):
        parse_config(f"[expanders.pcf0]\n{table}\n", "remoteio.toml")


def test_a_pcf8574_declared_at_run_time_by_a_client_serves_its_pins():
    with Server(host="127.0.0.1", port=0, backend="sim", declare_expanders=True) as server, \
            RemoteServer(*server.address, timeout=5.0) as remote:
        answer = remote.declare_expander("late", "pcf8574a", address=0x3B, poll_ms=5)
        assert answer["pins"] == [f"late:P{bit}" for bit in range(8)]
        led = remote.pin("late:P5")
        led.off()
        led.on(time_ms=200, wait=True)
        (start, width), = pulses(server.sim.history("late:P5"))
        assert 199 <= width <= 400
