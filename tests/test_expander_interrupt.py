"""An I/O expander's interrupt line: short input pulses seen through a header
pin, as the chip signals them."""
from __future__ import annotations

import time
from typing import Iterator

import pytest

from remoteio import RemoteServer
from remoteio.errors import PinBusy
from remoteio.server.app import Server
from remoteio.server.config import ConfigError, parse_config
from remoteio.testing import wait_until

INTERRUPTED = {"mcp2": {"chip": "mcp23017", "address": 0x22, "poll_ms": 60_000,
                        "interrupt": 11},
               "mcp3": {"chip": "mcp23008", "address": 0x23, "poll_ms": 60_000,
                        "interrupt": 13}}


@pytest.fixture
def interrupted() -> Iterator[Server]:
    with Server(host="127.0.0.1", port=0, backend="sim", expanders=INTERRUPTED) as srv:
        yield srv


@pytest.mark.parametrize("pin, address, gpinten", [("mcp2:B1", 0x22, 0x05),
                                                   ("mcp3:A6", 0x23, 0x02)])
def test_an_input_pulse_shorter_than_poll_ms_is_seen_through_the_interrupt_line(
        interrupted, pin, address, gpinten):
    chip = interrupted.backend.sim.chips.model(1, address)
    with RemoteServer(*interrupted.address, timeout=5.0) as remote:
        button = remote.pin(pin).as_input(pull="up")
        events = []
        button.when_changed = events.append
        bit = 1 << int(pin[-1])
        assert wait_until(lambda: chip.registers[gpinten] & bit, timeout=5)   # GPINTEN
        before = time.monotonic_ns()
        interrupted.sim.drive(pin, 0)      # microseconds low: polling (60 s) cannot see it
        interrupted.sim.drive(pin, None)
        after = time.monotonic_ns()
        assert wait_until(lambda: len(events) == 2, timeout=5)
        assert [(e.value, e.edge) for e in events] == [(0, "falling"), (1, "rising")]
        # the fall is stamped with the interrupt line's edge, on the Pi's clock
        assert before <= events[0].ts_ns <= after
        assert events[0].ts_ns <= events[1].ts_ns <= time.monotonic_ns()
        line = INTERRUPTED[pin.split(":")[0]]["interrupt"]
        assert wait_until(lambda: interrupted.sim.level(line) == 1, timeout=5)  # cleared
        interrupted.sim.drive(pin, 0)      # and it goes on: the next change interrupts again
        assert wait_until(lambda: len(events) == 3, timeout=5)
        assert events[2].value == 0


def test_the_interrupt_line_is_held_by_its_expander_both_ways(interrupted):
    with RemoteServer(*interrupted.address, timeout=5.0) as remote:
        remote.pin(13).on()   # mcp3's line, taken as a pin before its expander starts
        with pytest.raises(PinBusy, match=r"expander mcp3 .* needs BOARD13"):
            remote.pin("mcp3:A0").on()
        remote.pin("mcp2:A0").on()   # mcp2's worker holds pin 11 now
        with pytest.raises(PinBusy, match="held by expander mcp2"):
            remote.pin(11).on()


def test_the_simulated_chip_drives_its_interrupt_as_the_datasheet_says():
    from remoteio.server.simdevices import MCP23008, MCP23017, MIRROR, ODR
    wire: list = []

    def drive(level):   # a wire: what it is driven to, when that changes
        if not wire or wire[-1] != level:
            wire.append(level)
    chip = MCP23017(interrupt=drive)
    chip.write(0x0A, MIRROR | ODR)               # IOCON: one line, open-drain
    chip.write(0x05, 0x01)                       # GPINTENB: GPB0
    chip.drive_input(1, 0, 1)                    # GPB0 rises: INT pulled low
    chip.drive_input(1, 0, 0)                    # and falls while pending: no new capture
    assert wire == [0] and chip.read(0x0F) == 0x01 and chip.read(0x11) == 0x01  # INTFB, INTCAPB
    assert wire == [0, None] and chip.read(0x0F) == 0   # reading INTCAP cleared it
    chip.drive_input(0, 0, 1)                    # GPA0 is not enabled: nothing
    assert wire == [0, None]
    small = MCP23008(interrupt=drive)      # the same registers at its addresses
    small.write(0x04, 0x02)                      # INTCON: against DEFVAL (0) ...
    small.write(0x02, 0x02)                      # GPINTEN: GP1; IOCON 0: push-pull, active low
    small.drive_input(0, 1, 1)
    assert wire[-1] == 0 and small.read(0x07) == 0x02
    small.read(0x09)                             # reading GPIO clears it too
    assert wire[-1] == 1


def test_an_interrupt_line_on_a_backend_calling_back_from_its_thread_wakes_a_select():
    import select
    from gpiozero.pins.mock import MockFactory
    from remoteio.server.backends import Backend
    from remoteio.server.expanderint import InterruptLine
    factory = MockFactory(revision="a02082")   # calls back as lgpio's thread would

    class MockBackend(Backend):
        name = "mock"

        def make_factory(self):
            return factory
    line = InterruptLine(MockBackend(), 11)
    try:
        pin = factory.pin(17)
        assert pin.pull == "up" and line.level() == 1   # the Pi's pull-up: INT is open-drain
        before = time.monotonic_ns()
        pin.drive_low()                                  # the chip asserts INT
        readable, _, _ = select.select(line.fds(), [], [], 5)
        assert readable == list(line.fds())
        (level, t_ns), = line.edges()
        assert level == 0 and before <= t_ns <= time.monotonic_ns()
        assert line.edges() == []                        # each edge once
    finally:
        line.close()
        factory.close()


def test_one_interrupt_line_for_two_expanders_is_a_config_error():
    with pytest.raises(ConfigError, match="interrupt line of mcp0 already"):
        parse_config('[expanders.mcp0]\nchip = "mcp23017"\ninterrupt = 11\n'
                     '[expanders.mcp1]\nchip = "mcp23008"\naddress = 0x21\ninterrupt = 11\n',
                     "remoteio.toml")
    config = parse_config('[expanders.mcp0]\nchip = "mcp23017"\ninterrupt = 11\n')
    assert config.expanders["mcp0"].interrupt == 11
