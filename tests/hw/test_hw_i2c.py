"""The I2C suite against the kernel's i2c-stub chips (a real /dev/i2c-N, inside the VM).

The VM loads ``i2c-dev`` and ``i2c-stub chip_addr=0x20,0x50,0x6b``
(tests/hw/vm/vmsetup.py); the server's bus worker opens the stub's bus with
smbus2, and every result is compared with :class:`StubChips`, a local model
of what i2c-stub.c does.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from remoteio import RemoteServer
from remoteio.errors import BusError, PinBusy
from hwrig import REQUIRE_KERNEL, REVISION, start_server, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared suite
from i2c_suite import mcp23017_calls, register_calls, run  # noqa: E402

CHIPS = (0x20, 0x50, 0x6b)


def stub_bus() -> Optional[int]:
    """The number of i2c-stub's adapter (/dev/i2c-N), if it is loaded."""
    for adapter in Path("/sys/class/i2c-dev").glob("i2c-*"):
        if (adapter / "name").read_text().strip() == "SMBus stub driver":
            return int(adapter.name.split("-")[1])
    return None


class StubChips:
    """i2c-stub.c's chips: 256 16-bit words and a pointer each; byte
    calls use a word's low byte, block calls the low bytes of consecutive words."""

    def __init__(self, addrs=CHIPS):
        self.words: Dict[int, List[int]] = {a: [0] * 256 for a in addrs}
        self.pointer = {a: 0 for a in addrs}

    def write_quick(self, addr):
        assert addr in self.words

    def read_byte(self, addr):
        value = self.words[addr][self.pointer[addr]] & 0xFF
        self.pointer[addr] = (self.pointer[addr] + 1) % 256
        return value

    def write_byte(self, addr, value):
        self.pointer[addr] = value

    def read_byte_data(self, addr, reg):
        self.pointer[addr] = (reg + 1) % 256
        return self.words[addr][reg] & 0xFF

    def write_byte_data(self, addr, reg, value):
        self.words[addr][reg] = self.words[addr][reg] & 0xFF00 | value
        self.pointer[addr] = (reg + 1) % 256

    def read_word_data(self, addr, reg):
        return self.words[addr][reg]

    def write_word_data(self, addr, reg, value):
        self.words[addr][reg] = value

    def read_i2c_block_data(self, addr, reg, length):
        # the stub stops at register 0xff; smbus2 still hands back *length*
        # bytes (the rest of its zeroed buffer)
        got = min(length, 256 - reg)
        self.pointer[addr] = (reg + got) % 256
        return [w & 0xFF for w in self.words[addr][reg:reg + got]] + [0] * (length - got)

    def write_i2c_block_data(self, addr, reg, data):
        data = data[:256 - reg]
        for n, value in enumerate(data):
            self.write_byte_data(addr, reg + n, value)
        self.pointer[addr] = (reg + len(data)) % 256


# i2c-stub has no process call, and SMBus block data only with its functionality= option
SUITE = [c for c in register_calls(0x50) if c[0] != "process_call"] + [
    c for c in mcp23017_calls(0x20) if c[1:3] != (0x20, 0x0E)]   # INTF is read only on a real one


@pytest.fixture
def i2c(rig):
    number = stub_bus()
    if not rig.kernel or number is None:  # the bus worker is the same on either GPIO backend
        if REQUIRE_KERNEL:
            pytest.fail("i2c-stub is not loaded (tests/hw/vm/vmsetup.py loads it in the VM)")
        pytest.skip("no i2c-stub here (run inside the VM: bash tests/hw/run.sh)")
    bus = rig.client().i2c(number)
    # the kernel's chips outlive a test: every word zeroed, every pointer at 0,
    # as a fresh model starts
    clear = [("write_word_data", a, reg, 0) for a in CHIPS for reg in range(256)]
    clear += [("write_byte", a, 0) for a in CHIPS]
    for start in range(0, len(clear), 64):
        bus.transaction(clear[start:start + 64])
    return bus


def test_smbus_calls_on_i2c_stub_answer_as_the_model_of_its_chips(i2c):
    # mcp23017_calls reads an MCP23017's reset state: on the stub, a register file
    assert run(i2c, SUITE) == run(StubChips(), SUITE)


def test_a_transaction_on_i2c_stub_gives_the_same_results_in_one_round_trip(i2c):
    assert i2c.transaction(SUITE) == run(StubChips(), SUITE)


def test_mcp23017_shaped_register_writes_read_back_from_a_kernel_chip(i2c):
    i2c.write_byte_data(0x6b, 0x00, 0x00)          # IODIRA: outputs
    for bit in range(4):                           # the chaser's pattern on GPIOA
        i2c.write_byte_data(0x6b, 0x12, 1 << bit)
        assert i2c.read_byte_data(0x6b, 0x12) == 1 << bit


def test_no_chip_at_an_address_is_a_bus_error_from_the_kernel(i2c):
    with pytest.raises(BusError) as caught:
        i2c.read_byte_data(0x33, 0)
    assert caught.value.detail in ("ENXIO", "ENODEV", "EREMOTEIO")
    assert "0x33" in caught.value.message
    i2c.write_byte_data(0x50, 0x77, 0x42)          # the bus goes on
    assert i2c.read_byte_data(0x50, 0x77) == 0x42


def test_an_expander_pin_is_driven_through_the_registers_of_a_kernel_chip(i2c, rig, tmp_path):
    """i2c-stub's chip at 0x6b as an MCP23017 the server declares: the
    expander's worker writes OLAT/IODIR with smbus2 on the kernel's bus, and
    this test reads them back on its own /dev/i2c-N (a register file answers
    what was written); the stub's GPIOA register is what a poll reads."""
    import smbus2
    number = stub_bus()
    config = tmp_path / "expander.toml"
    (tmp_path / "srv").mkdir()
    config.write_text(f'[expanders.stub]\nchip = "mcp23017"\nbus = {number}\naddress = 0x6b\n')
    server = start_server(["--backend", rig.backend, "--chip", str(rig.chip.chip_number),
                           "--revision", REVISION, "--config", str(config)], tmp_path / "srv")
    local = smbus2.SMBus(number)
    try:
        with RemoteServer(*server.address, timeout=10.0) as remote:
            bell = remote.pin("stub:A3")
            bell.on()
            assert local.read_byte_data(0x6b, 0x14) == 0x08       # OLATA: GPA3 high
            assert local.read_byte_data(0x6b, 0x00) == 0xF7       # IODIRA: GPA3 an output
            bell.on(time_ms=300)                                  # timed on the Pi
            assert wait_until(lambda: local.read_byte_data(0x6b, 0x14) == 0, 5.0)
            for bit in range(8):
                remote.pin(f"stub:A{bit}").off()
            remote.write({f"stub:A{bit}": 1 for bit in range(8)})  # one register write
            assert local.read_byte_data(0x6b, 0x14) == 0xFF
            remote.pin("stub:B1").on()
            assert local.read_byte_data(0x6b, 0x15) == 0x02       # OLATB
            button = remote.pin("stub:B0").as_input(pull="up")
            assert local.read_byte_data(0x6b, 0x0D) == 0x01       # GPPUB
            local.write_word_data(0x6b, 0x12, 0x0000)            # GPIOA, GPIOB as the chip reads
            assert button.read() == 0
            local.write_word_data(0x6b, 0x12, 0x0100)            # GPB0 high
            assert button.read() == 1
            with pytest.raises(PinBusy, match="expander stub"):
                remote.i2c(number).read_byte_data(0x6b, 0x14)
    finally:
        local.close()
        server.terminate()


def test_a_pcf8574s_pin_writes_reach_a_kernel_chip_one_byte_each(i2c, rig, tmp_path):
    """i2c-stub's chip at 0x20 as a PCF8574 the server declares. The stub is a
    register file behind a pointer: an SMBus send byte (the PCF8574's write)
    sets the pointer, a receive byte returns the word at it (and moves it on).
    With every word k preloaded with k, a receive byte right after the
    worker's write returns the byte it wrote, through the kernel. Outputs
    only: every read moves the pointer, so the stub cannot stand for the
    chip's inputs or its INT (tests/test_pcf8574.py has those, simulated)."""
    import smbus2
    number = stub_bus()
    local = smbus2.SMBus(number)
    for k in range(256):
        local.write_word_data(0x20, k, k)
    config = tmp_path / "pcf.toml"
    (tmp_path / "srv").mkdir()
    config.write_text(f'[expanders.pcf]\nchip = "pcf8574"\nbus = {number}\naddress = 0x20\n')
    server = start_server(["--backend", rig.backend, "--chip", str(rig.chip.chip_number),
                           "--revision", REVISION, "--config", str(config)], tmp_path / "srv")
    try:
        with RemoteServer(*server.address, timeout=10.0) as remote:
            bell = remote.pin("pcf:P3")
            bell.off()                                   # after the worker's reset (0xFF)
            assert local.read_byte(0x20) == 0xF7         # P3 latched low, the rest high
            bell.on()
            assert local.read_byte(0x20) == 0xFF         # P3 weak high
            bell.on(time_ms=300, wait=True)              # timed on the Pi: low at its end
            assert local.read_byte(0x20) == 0xF7
            remote.write({f"pcf:P{bit}": bit % 2 for bit in range(8)})   # one byte
            assert local.read_byte(0x20) == 0xAA
            with pytest.raises(PinBusy, match="expander pcf"):
                remote.i2c(number).read_byte(0x20)
    finally:
        local.close()
        server.terminate()
