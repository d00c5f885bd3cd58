"""The simulated I2C buses' MCP23017s in the board's shared chips: watched, driven, kept."""
from __future__ import annotations

import os
import signal
import time
from typing import Iterator

import pytest

from remoteio import RemoteServer
from remoteio.errors import BadPin, Forbidden, NotSupported, PinBusy
from remoteio.server.app import Server
from remoteio.server.simchips import SLOTS, SimChips
from remoteio.server.simdevices import SimI2CBus
from remoteio.testing import pulses, wait_until

IODIRA, GPPUA, GPIOA, OLATA = 0x00, 0x0C, 0x12, 0x14


@pytest.fixture
def server() -> Iterator[Server]:
    buses = {"i2c3": {"devices": ["mcp23017@0x21", "registers@0x50"]},
             "i2c4": {"access": "read"}}
    with Server(host="127.0.0.1", port=0, backend="sim", buses=buses,
                expanders={"mcp0": {"chip": "mcp23017", "bus": 5, "address": 0x20}}) as srv:
        yield srv


def test_the_chasers_pattern_on_raw_i2c_shows_in_the_boards_history_in_order(server):
    with RemoteServer(*server.address) as remote:
        bus = remote.i2c(1)
        bus.write_byte_data(0x20, IODIRA, 0xF0)      # GPA0-3 outputs, as the example's
        since = time.monotonic_ns()
        for bell in range(4):
            bus.write_byte_data(0x20, GPIOA, 1 << bell)
            time.sleep(0.05)
        bus.write_byte_data(0x20, GPIOA, 0x00)
        seen = [pulses(remote.sim.history(f"i2c1@0x20:A{bell}", since)) for bell in range(4)]
        assert [len(p) for p in seen] == [1, 1, 1, 1]
        starts = [p[0][0] for p in seen]
        assert starts == sorted(starts)                # bell 0, then 1, 2, 3
        for (_, width_ms), in seen:
            assert 40 <= width_ms <= 1000              # generous: the sleep was 50 ms
        assert remote.sim.history("i2c1@0x20:GPA4", since) == []   # an input nobody drove
        assert server.sim.history("i2c1@0x20:A0", since) == remote.sim.history("i2c1@0x20:0",
                                                                               since)


def test_an_input_driven_on_the_sim_is_read_back_with_its_pull_up(server):
    with RemoteServer(*server.address) as remote:
        bus = remote.i2c(3)
        bus.write_byte_data(0x21, IODIRA, 0xFF)
        bus.write_byte_data(0x21, GPPUA, 0x0F)         # pull-ups on GPA0-3
        assert bus.read_byte_data(0x21, GPIOA) == 0x0F
        remote.sim.drive("i2c3@0x21:A1", 0)            # a button to ground
        remote.sim.drive("i2c3@0x21:A6", 1)
        assert bus.read_byte_data(0x21, GPIOA) == 0x4D
        remote.sim.release("i2c3@0x21:A1")
        assert bus.read_byte_data(0x21, GPIOA) == 0x4F
        assert [v for _, v in remote.sim.history("i2c3@0x21:A1")][-2:] == [0.0, 1.0]


def test_a_killed_bus_worker_is_replaced_and_the_chips_registers_survive(server):
    with RemoteServer(*server.address) as remote:
        bus = remote.i2c(1)
        bus.write_byte_data(0x20, IODIRA, 0x0F)
        bus.write_byte_data(0x20, GPIOA, 0xA0)
        pid = wait_until(lambda: server.bus_worker_pids().get(("i2c", 1)), 5.0)   # (known a moment after)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: server.bus_worker_pids().get(("i2c", 1)) != pid, 5.0)   # gone

        def answers() -> bool:
            try:
                return bus.read_byte_data(0x20, OLATA) == 0xA0
            except Exception:   # worker_failed while the pool notices the death
                return False
        assert wait_until(answers, 10.0)
        assert wait_until(lambda: server.bus_worker_pids().get(("i2c", 1)) not in (None, pid), 5.0)
        assert bus.read_byte_data(0x20, IODIRA) == 0x0F
        assert server.sim.level("i2c1@0x20:A7") == 1   # the pin still driven high


@pytest.mark.parametrize("name", ["i2c1@0x20:C3", "i2c1@0x20:A8", "i2c1@zz:A3", "i2c1@0x20",
                                  "i2c999@0x20:A3", "i2c1@0x02:A3", "i2c1@0x20:A3;rm"])
def test_a_malformed_bus_chip_pin_name_is_bad_pin(server, name):
    with RemoteServer(*server.address) as remote:
        with pytest.raises(BadPin):
            remote.sim.history(name)
        assert remote.sim.history("i2c1@0x20:A0") is not None   # the server goes on


def test_a_bus_chip_pin_of_no_such_chip_is_bad_pin(server):
    with RemoteServer(*server.address) as remote:
        for name in ("i2c1@0x21:A0",      # nothing at 0x21 on bus 1
                     "i2c1@0x50:A0",      # the register-file chip has no pins
                     "i2c3@0x20:A0"):     # bus 3's devices name no chip at 0x20
            with pytest.raises(BadPin, match="not a pin"):
                remote.sim.drive(name, 1)
        with pytest.raises(NotSupported):
            remote.sim.wire("i2c1@0x20:A0", 7)


def test_a_bus_chip_pin_honours_its_buses_access(server):
    with RemoteServer(*server.address) as remote:
        assert remote.sim.history("i2c4@0x20:A0") == []
        with pytest.raises(Forbidden, match="read-only"):
            remote.sim.drive("i2c4@0x20:A0", 1)


def test_an_expander_and_raw_i2c_on_other_buses_stay_as_they_were(server):
    with RemoteServer(*server.address) as remote:
        remote.pin("mcp0:A2").on()
        assert server.sim.level("mcp0:A2") == 1
        assert server.sim.level("i2c5@0x20:A2") == 1   # the same shared chip
        with pytest.raises(PinBusy, match="expander mcp0"):
            remote.i2c(5).read_byte_data(0x20, GPIOA)
        assert remote.i2c(1).read_byte_data(0x20, IODIRA) == 0xFF   # bus 1's own chip, at power-on


def test_a_full_board_leaves_further_bus_chips_private_and_says_so(caplog):
    chips = SimChips()
    chips.bus_devices = lambda bus: [("mcp23017", 0x20 + n) for n in range(8)]
    for bus in range(4):   # 32 chips for 24 slots
        chips.declare_bus(bus)
    shared = [chips.model(bus, 0x20 + n) is not None for bus in range(4) for n in range(8)]
    assert shared.count(True) == SLOTS and shared[:SLOTS] == [True] * SLOTS
    assert "stays private" in caplog.text
    with pytest.raises(BadPin, match="not a pin"):
        chips.pin("i2c3@0x27:A0")
    bus = SimI2CBus([("mcp23017", 0x27)], shared=chips.models(3))   # its worker's private one
    assert bus.read_byte_data(0x27, IODIRA) == 0xFF


def test_an_input_change_during_a_read_that_clears_the_interrupt_leaves_int_asserted():
    """The worker's read clears INTF and lets INT go while the controller's drive
    sets INTF and asserts INT: each reads, then writes, the flags and the wire,
    from two processes. The chip's lock makes each one transaction."""
    import threading
    wire: list = [None]              # the header line INTA drives (None: let go)
    late: list = []

    def drive(line, level):          # as SimBoard.wire_drive: nothing when unchanged
        if level is None and not late:   # the read is letting go: a change comes now
            late.append(threading.Thread(target=controller.drive_input, args=(0, 0, 0)))
            late[0].start()
            late[0].join(0.5)        # without the lock it runs here, in the read's middle
        if wire[-1] != level:
            wire.append(level)
    chips = SimChips(wire=drive)
    worker = chips.declare("mcp3", 1, 0x23, "mcp23008", interrupt_line=27)
    controller = chips.model(1, 0x23)          # another view of the shared chip
    worker.write_from(0x05, [0x44])            # IOCON: MIRROR | ODR
    controller.drive_input(0, 0, 1)            # GP0 high
    worker.write_from(0x02, [0x01])            # GPINTEN: GP0
    controller.drive_input(0, 0, 0)            # GP0 falls: INT asserted
    controller.drive_input(0, 0, 1)            # and rises while pending (no new capture)
    assert wire == [None, 0]
    assert worker.read_from(0x08, 1) == [0]    # INTCAP read: clears, lets go
    late[0].join(10)
    assert not late[0].is_alive()
    intf = controller.registers[0x07]         # INTF (a read would clear it)
    assert intf == 0x01 and wire[-1] == 0      # the fall during the read: pending, INT low
