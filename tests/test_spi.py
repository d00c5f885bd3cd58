"""SPI over the network: spidev's calls on a remote device, compared with a local model."""
from __future__ import annotations

import errno
import importlib.util
import os
import signal
from typing import Any, Iterator, List

import pytest

from remoteio import RemoteServer
from remoteio.errors import BadArgument, BusError, Forbidden, NotSupported, PinBusy
from remoteio.server.app import Server
from remoteio.server.config import load_config
from remoteio.server.spidevices import MCP3008, SimSpiDev
from remoteio.testing import RawClient, wait_until

VOLTS = [0.0, 3.3, 1.65, 0.5, 2.2, 3.0, 0.01, 5.0]   # CH7 above Vref: clamped to 1023


def mcp3008_calls() -> List[tuple]:
    """spidev's transfer calls over every MCP3008 request: single-ended and
    differential, byte-aligned (gpiozero's) and not, CS held long enough for
    the LSB-first repeat and the zeros after it."""
    calls: List[tuple] = []
    for channel in range(8):
        calls.append(("xfer2", [0x01, 0x80 | channel << 4, 0x00]))        # single-ended
        calls.append(("xfer2", [0x01, channel << 4, 0x00]))               # differential
        calls.append(("xfer", [0x01, 0x80 | channel << 4, 0x00]))
        calls.append(("xfer2", [0x18 | channel, 0x00, 0x00]))             # start bit earlier
        calls.append(("xfer2", [0x01, 0x80 | channel << 4, 0, 0, 0, 0]))  # LSB first, zeros
    calls += [("readbytes", 3), ("writebytes", [0x01, 0x80, 0x00]), ("xfer2", [0x00] * 8),
              ("xfer3", [0x01, 0x90, 0x00] * 3000), ("writebytes2", bytes(range(256)) * 20),
              ("xfer", (0x01, 0xF0, 0x00))]
    return calls


def run(spi: Any, calls: List[tuple]) -> List[Any]:
    """Each call's result on *spi* (a RemoteSPI or a local SimSpiDev)."""
    return [list(getattr(spi, name)(arg) or []) for name, arg in calls]


def local_mcp3008() -> SimSpiDev:
    chip = MCP3008()
    chip.volts[:] = VOLTS
    spi = SimSpiDev(chip)
    spi.open(0, 0)
    return spi


@pytest.fixture
def spi(client: RemoteServer):
    for channel, volts in enumerate(VOLTS):
        client.sim.set_adc_voltage(channel, volts)
    with client.spi(0, 0) as device:
        yield device


def test_every_spidev_call_answers_as_the_local_model_of_the_same_mcp3008(spi, client):
    calls, local = mcp3008_calls(), local_mcp3008()
    assert run(spi, calls) == run(local, calls)
    # and the chip saw the same chip-select periods (xfer3/writebytes2: 4,096-byte blocks)
    seen = [sent for _, sent, _ in client.sim.spi_history()]
    assert seen[-len(local.history):] == [sent for _, sent, _ in local.history]


def test_results_come_back_in_spidevs_types(spi):
    assert isinstance(spi.xfer([1, 0x80, 0]), list) and isinstance(spi.xfer2((1, 0x80, 0)), tuple)
    assert isinstance(spi.xfer3([1, 0x80, 0]), tuple) and isinstance(spi.readbytes(2), list)
    assert spi.writebytes([1]) is None and spi.writebytes2(bytes(5000)) is None


def test_the_model_reads_what_the_datasheet_says():
    spi = local_mcp3008()

    def read(channel: int, single: bool = True) -> int:
        rx = spi.xfer2([0x01, (0x80 if single else 0) | channel << 4, 0x00])
        return (rx[1] & 0x03) << 8 | rx[2]
    assert [read(c) for c in range(8)] == [0, 1023, 512, 155, 682, 930, 3, 1023]
    assert read(0, single=False) == 0                   # CH0 - CH1 < 0
    assert read(1, single=False) == 1023                # CH1 - CH0 = 3.3 V
    rx = spi.xfer2([0x01, 0xA0, 0x00, 0x00, 0x00])      # CH2 = 512: only B9 set
    assert rx[1] & 0x04 == 0                            # the null bit
    assert rx[3:] == [0x00, 0x80]   # B1..B8 LSB first (all 0), then B9
    assert spi.xfer2([0x00, 0x00]) == [0, 0]


def test_the_models_fast_transfer_clocks_the_same_bits_as_its_bit_by_bit_reading():
    import random
    chip, rng = MCP3008(), random.Random(16)
    chip.volts[:] = VOLTS
    for _ in range(2000):
        data = bytes(rng.choice((0, 1, rng.randrange(256))) for _ in range(rng.randrange(1, 7)))
        bits = [byte >> (7 - n) & 1 for byte in data for n in range(8)]
        out = chip.exchange(bits)
        expected = bytes(sum(b << (7 - n) for n, b in enumerate(out[i:i + 8]))
                         for i in range(0, len(out), 8))
        assert chip.transfer(data, 0) == expected, data.hex()


def test_gpiozeros_mcp3008_reads_the_simulated_chip_over_the_network(server, client):
    gpiozero = pytest.importorskip("gpiozero")
    from remoteio.client.gpiozero_factory import RemoteIOFactory
    client.sim.set_adc_voltage(3, 1.65)
    factory = RemoteIOFactory(*server.address)
    try:
        with gpiozero.MCP3008(channel=3, pin_factory=factory) as adc:
            assert adc.raw_value == 512
            assert adc.voltage == pytest.approx(1.65, abs=0.01)
        history = client.sim.spi_history()
        assert history[-1][1] == bytes([0x01, 0xB0, 0x00])   # gpiozero's xfer2 reached the chip
    finally:
        factory.close()


def test_settings_are_validated_applied_on_the_pi_and_kept_per_object(client):
    first = client.spi(0, 0, mode=3, max_speed_hz=1_000_000)
    assert (first.mode, first.max_speed_hz, first.bits_per_word) == (3, 1_000_000, 8)
    first.cshigh = True
    assert first.cshigh and first.mode == 3
    with client.spi(0, 0) as second:      # the device's settings as the first left them
        assert second.mode == 3 and second.cshigh
        second.cshigh = False
        second.mode = 0
    client.sim.set_adc_voltage(0, 3.3)
    assert first.xfer2([1, 0x80, 0]) == [0, 0, 0]    # CS active high: the chip never selected
    first.cshigh = False
    assert first.xfer2([1, 0x80, 0]) == [0, 3, 0xFF]  # mode 3 is one the MCP3008 takes
    for name, value in (("mode", 4), ("mode", "0"), ("cshigh", 1), ("bits_per_word", 7),
                        ("max_speed_hz", 1.5)):
        with pytest.raises(TypeError):
            setattr(first, name, value)
    with pytest.raises(BusError) as caught:    # the Pi's controller does 8 bits, MSB first
        first.bits_per_word = 16
    assert caught.value.detail == "EINVAL" and "SPI bus 0 device 0" in caught.value.message
    with pytest.raises(BusError, match="EINVAL"):
        first.lsbfirst = True
    assert not first.lsbfirst and first.bits_per_word == 8
    first.close()


@pytest.mark.parametrize("call, arg, says", [
    ("xfer2", [0] * 4097, "4096"), ("writebytes", list(range(256)) * 17, "4096"),
    ("xfer", [], "1 to 4096"), ("readbytes", 0, "count"), ("readbytes", 4097, "count"),
    ("xfer2", [256], "0..255"), ("writebytes", [-1], "0..255"),
])
def test_bad_lengths_and_values_are_bad_arguments(spi, call, arg, says):
    with pytest.raises(BadArgument, match=says):
        getattr(spi, call)(arg)
    assert len(spi.xfer2([1, 0x80, 0])) == 3     # the device goes on


def test_the_wire_bounds_lengths_and_fields_for_any_client(server):
    raw = RawClient(server.address)
    raw.hello()
    try:
        for fields, says in (({"data": "00" * 4097}, "4096"), ({"data": "0g"}, "hex"),
                             ({"data": [1, 2]}, "hex"), ({"data": "01", "mode_bits": 128}, "mode_bits"),
                             ({"data": "01", "device": 256}, "device")):
            reply = raw.call({"id": 1, "op": "spi_xfer2", **fields})
            assert reply["error"]["code"] == "bad_argument", reply
            assert says in reply["error"]["message"]
        assert raw.request("spi_xfer2", data="018000")["data"] == "000000"
    finally:
        raw.close()


def test_an_open_device_holds_its_pins_both_ways_and_shares_the_bus_pins(client):
    ce0 = client.spi(0, 0)
    for pin in (19, 21, 23, 24):
        with pytest.raises(PinBusy, match="SPI bus 0 device 0"):
            client.pin(pin)
    ce1 = client.spi(0, 1)
    with pytest.raises(PinBusy, match="device 0 and SPI bus 0 device 1"):
        client.pin("GPIO11")
    ce0.close()                          # CE0 is free; the bus pins stay with CE1
    client.pin(24).on()
    with pytest.raises(PinBusy, match="SPI bus 0 device 1"):
        client.pin(23)
    ce1.close()
    client.pin(23).on()                  # all free once the last device closed
    with pytest.raises(PinBusy, match="BOARD23"):
        client.spi(0, 1)
    client.pin(23).close()
    client.pin(24).close()
    assert client.pin(7).read() in (0, 1)   # other pins are never touched
    with client.spi(0, 0) as again:
        assert len(again.readbytes(2)) == 2


def test_another_connections_device_keeps_the_pins_until_it_closes_or_goes(server, client):
    with RemoteServer(*server.address) as other:
        other.spi(0, 0).xfer2([0])
        mine = client.spi(0, 0)
        mine.close()
        with pytest.raises(PinBusy):
            client.pin(19)
    assert wait_until(lambda: _free(client, 19), 5.0)   # the other connection went


def _free(client: RemoteServer, board: int) -> bool:
    try:
        client.pin(board).close()
        return True
    except PinBusy:
        return False


@pytest.fixture
def ruled_server() -> Iterator[Server]:
    buses = {"spi0.0": {"access": "read"}, "spi0.1": {"access": "none"},
             "spi1.0": {"devices": ["loopback"]}}
    with Server(host="127.0.0.1", port=0, backend="sim", buses=buses) as srv:
        yield srv


def test_access_read_lets_only_readbytes_through_and_none_refuses_all(ruled_server):
    with RemoteServer(*ruled_server.address) as remote:
        spi = remote.spi(0, 0)
        assert spi.readbytes(3) == [0, 0, 0]
        spi.mode = 3                               # settings are not data
        for call, arg in (("xfer2", [1]), ("xfer", [1]), ("writebytes", [1]), ("xfer3", [1])):
            with pytest.raises(Forbidden, match="read-only"):
                getattr(spi, call)(arg)
        with pytest.raises(Forbidden, match="read-only"):
            remote.sim.set_adc_voltage(0, 1.0)
        assert remote.sim.adc_voltages() == [0.0] * 8
        with pytest.raises(Forbidden, match="not served"):
            remote.spi(0, 1)
        loop = remote.spi(1, 0)
        assert loop.xfer2([1, 2, 3]) == [1, 2, 3] and loop.xfer3(bytes(5000))[:2] == (0, 0)
        with pytest.raises(NotSupported, match="no simulated MCP3008"):
            remote.sim.set_adc_voltage(0, 1.0, bus=1)


def test_the_configuration_file_spells_a_device_as_spi_bus_dot_chip_select(tmp_path):
    path = tmp_path / "remoteio.toml"
    path.write_text('[buses.spi0.1]\naccess = "read"\ndevices = ["loopback"]\n')
    config = load_config(str(path))
    rule = config.buses[("spi", 0, 1)]
    assert (rule.access, rule.devices) == ("read", (("loopback", 0),))
    path.write_text('[buses.spi0.0]\naddresses = [32]\n')
    with pytest.raises(Exception, match="addresses"):
        load_config(str(path))


def test_a_killed_worker_is_replaced_and_the_device_reopens_on_the_next_call(server, client):
    spi = client.spi(0, 0)
    client.pin(7).on()
    pid = wait_until(lambda: server.bus_worker_pids().get(("spi", 0, 0)), 5.0)   # (known a moment after)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: server.bus_worker_pids().get(("spi", 0, 0)) != pid, 5.0)   # gone
    assert client.pin(7).read() == 1            # other pins go on
    client.sim.set_adc_voltage(2, 1.65)         # a fresh worker (a fresh chip)
    rx = spi.xfer2([1, 0xA0, 0])
    assert (rx[1] & 3) << 8 | rx[2] == 512
    assert wait_until(lambda: server.bus_worker_pids().get(("spi", 0, 0)) not in (None, pid), 5.0)
    with pytest.raises(PinBusy):                # held again, by the fresh worker's device
        client.pin(19)
    spi.close()
    client.pin(19).close()


def test_spi_sim_is_refused_on_real_hardware_and_needs_an_mcp3008(client):
    with pytest.raises(NotSupported, match="nothing"):
        client.sim.set_adc_voltage(0, 1.0, device=1)
    assert client.sim.adc_voltages() == [0.0] * 8
    with pytest.raises(BadArgument):
        client.request("spi_sim", action="set_voltage", channel=8, volts=1.0)


def test_spi_sim_on_real_hardware_is_not_supported_and_holds_nothing():
    from remoteio.server.ownership import Ownership
    from remoteio.server.spiusers import SpiUsers
    ownership = Ownership()
    with pytest.raises(NotSupported, match="simulated board"):
        SpiUsers(ownership).admit(1, ("spi", 0, 0), "spi_sim", sim=False)
    assert SpiUsers(ownership).admit(1, ("spi", 0, 0), "spi_sim") and not ownership.bus_held


def test_a_closed_device_refuses_calls_as_spidev_does_and_closing_twice_is_fine(client):
    spi = client.spi(0, 0)
    spi.close()
    spi.close()
    with pytest.raises(OSError) as caught:
        spi.xfer2([1, 0x80, 0])
    assert caught.value.errno == errno.EBADF
    spi.open(0, 0)
    assert len(spi.xfer2([1, 0x80, 0])) == 3
    spi.close()


def test_a_real_device_that_cannot_be_opened_says_why_naming_it():
    from remoteio.server.spibus import SpiDevice
    device = SpiDevice(250, 250)   # the kernel's spidev path: no such device here
    if importlib.util.find_spec("spidev") is None:   # the worker says how to get it
        with pytest.raises(NotSupported, match=r"remoteio\[pi\]"):
            device.perform("spi_xfer2", {"data": b"\x01"})
        return
    with pytest.raises(BusError) as caught:
        device.perform("spi_xfer2", {"data": b"\x01"})
    assert caught.value.detail == "ENOENT" and "SPI bus 250 device 250" in caught.value.message


def test_a_bad_mode_attribute_is_refused_with_spidevs_words_by_the_client_and_the_model(client):
    remote, local = client.spi(0, 0), local_mcp3008()
    for name, value in (("mode", 4), ("cshigh", 1), ("threewire", "yes"), ("no_cs", None)):
        words = []
        for device in (remote, local):
            with pytest.raises(TypeError) as caught:
                setattr(device, name, value)
            words.append(str(caught.value))
        assert words[0] == words[1], (name, words)
    assert words[0] == "The no_cs attribute must be boolean"
    remote.cshigh = True   # and a good one is set on both alike
    local.cshigh = True
    assert remote.cshigh and local.cshigh and remote.mode == local.mode == 0
    remote.close()
