"""I2C over the network: smbus2's calls on a remote bus, compared with a local model."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import pytest
import smbus2

from remoteio import RemoteServer
from remoteio.client.buses import i2c_msg
from remoteio.errors import BadArgument, BusError, Forbidden, PinBusy, WorkerFailed
from remoteio.server.app import Server
from remoteio.server.simdevices import MCP23017, SimI2CBus

from remoteio.testing import wait_until
from i2c_suite import mcp23017_calls, register_calls, run, smbus_block_calls

SUITE = register_calls(0x50) + smbus_block_calls(0x50) + mcp23017_calls(0x20)


@pytest.fixture
def i2c(client: RemoteServer):
    return client.i2c(1)


def test_every_smbus_call_answers_as_the_local_model_of_the_same_chips(i2c):
    assert run(i2c, SUITE) == run(SimI2CBus(), SUITE)


def test_a_transaction_runs_every_call_in_one_round_trip_with_the_same_results(i2c):
    results = i2c.transaction(SUITE)
    assert results == run(SimI2CBus(), SUITE)
    assert len(results) == len(SUITE)


def test_i2c_rdwr_sets_the_pointer_and_reads_on_as_the_model_does(i2c):
    local = SimI2CBus()
    for bus, msg_type in ((i2c, i2c_msg), (local, None)):
        if msg_type is None:
            assert local.rdwr([(0x50, -1, [0x70, 9, 8, 7])]) == [None]
            expected = local.rdwr([(0x50, -1, [0x70]), (0x50, 3, [])])[1]
        else:
            bus.i2c_rdwr(i2c_msg.write(0x50, [0x70, 9, 8, 7]))
            write, read = i2c_msg.write(0x50, [0x70]), i2c_msg.read(0x50, 3)
            bus.i2c_rdwr(write, read)
            got = list(read)
    assert got == expected == [9, 8, 7]


def test_smbus2s_own_i2c_msg_works_with_the_remote_bus(i2c):
    i2c.write_i2c_block_data(0x50, 0x00, [11, 22, 33])
    write, read = smbus2.i2c_msg.write(0x50, [0x00]), smbus2.i2c_msg.read(0x50, 3)
    i2c.i2c_rdwr(write, read)
    assert list(read) == [11, 22, 33]


def test_no_device_at_an_address_is_a_bus_error_naming_bus_address_and_errno(i2c):
    with pytest.raises(BusError) as caught:
        i2c.read_byte_data(0x33, 0)
    assert caught.value.code == "bus_error" and caught.value.detail == "ENXIO"
    assert "I2C bus 1" in caught.value.message and "0x33" in caught.value.message
    assert i2c.read_byte_data(0x20, 0x00) == 0xFF   # the bus goes on


def test_a_transaction_stops_at_its_first_failure_and_names_the_part(i2c):
    with pytest.raises(BusError) as caught:
        i2c.transaction([("write_byte_data", 0x50, 0, 1), ("read_byte", 0x44),
                         ("write_byte_data", 0x50, 0, 2)])
    assert "part 1" in caught.value.message
    assert i2c.read_byte_data(0x50, 0) == 1


@pytest.mark.parametrize("call, args, says", [
    ("write_i2c_block_data", (0x50, 0, list(range(33))), "data"),
    ("write_block_data", (0x50, 0, [256]), "0..255"),
    ("read_i2c_block_data", (0x50, 0, 33), "length"),
    ("read_i2c_block_data", (0x50, 0, 0), "length"),
    ("read_byte_data", (0x50, 256), "register"),
    ("write_byte_data", (0x50, 0, -1), "value"),
    ("write_word_data", (0x50, 0, 0x10000), "value"),
    ("read_byte", (0x78,), "addr"),
    ("read_byte", (0x02,), "addr"),
])
def test_bad_lengths_registers_values_and_addresses_are_bad_arguments(i2c, call, args, says):
    with pytest.raises(BadArgument) as caught:
        getattr(i2c, call)(*args)
    assert says in caught.value.message


def test_a_transaction_longer_than_its_bound_is_refused(i2c):
    with pytest.raises(BadArgument):
        i2c.transaction([("read_byte", 0x50)] * 65)


def test_a_pin_of_the_bus_is_pin_busy_naming_the_bus(client, i2c):
    i2c.read_byte(0x50)
    with pytest.raises(PinBusy, match="I2C bus 1"):
        client.pin(3)
    with pytest.raises(PinBusy, match="I2C bus 1"):
        client.pin("GPIO3").read()


def test_opening_a_bus_whose_pins_a_connection_holds_is_pin_busy(client):
    client.pin(5).on()
    with pytest.raises(PinBusy, match="BOARD5"):
        client.i2c(1).read_byte(0x50)
    client.pin(5).close()
    assert client.i2c(1).read_byte_data(0x20, 0) == 0xFF
    assert client.pin(7).read() in (0, 1)   # other pins are free


@pytest.fixture
def ruled_server() -> Iterator[Server]:
    buses = {"i2c1": {"access": "read", "addresses": [0x20]},
             "i2c2": {"access": "none"},
             "i2c3": {"devices": ["stuck@0x10", "registers@0x11"]}}
    with Server(host="127.0.0.1", port=0, backend="sim", buses=buses,
                hang_timeout=1.0) as srv:
        yield srv


def test_bus_access_and_the_address_allowlist_refuse_with_forbidden(ruled_server):
    with RemoteServer(*ruled_server.address) as remote:
        bus = remote.i2c(1)
        assert bus.read_byte_data(0x20, 0) == 0xFF
        with pytest.raises(Forbidden, match="read-only"):
            bus.write_byte_data(0x20, 0, 0)
        with pytest.raises(Forbidden, match="allowlist"):
            bus.read_byte_data(0x50, 0)
        with pytest.raises(Forbidden, match="read-only"):
            bus.transaction([("read_byte", 0x20), ("write_byte", 0x20, 0)])
        with pytest.raises(Forbidden, match="not served"):
            remote.i2c(2).read_byte(0x20)


def test_a_stuck_bus_times_out_without_blocking_another_bus_or_any_pin(ruled_server):
    with RemoteServer(*ruled_server.address, timeout=10.0) as remote:
        stuck, other = remote.i2c(3), remote.i2c(1)
        pool = ThreadPoolExecutor(1)
        call = pool.submit(stuck.read_byte, 0x10)
        assert wait_until(lambda: ruled_server.bus_worker_pids().get(("i2c", 3)), 5.0)
        started = time.monotonic()
        assert other.read_byte_data(0x20, 0) == 0xFF
        remote.pin(7).on()
        assert remote.pin(7).read() == 1
        assert time.monotonic() - started < 1.0   # while bus 3 hangs
        with pytest.raises(WorkerFailed, match="I2C bus 3"):
            call.result(8.0)
        pool.shutdown()
        assert stuck.read_byte_data(0x11, 0) == 0   # a fresh worker for the next call


def test_the_mcp23017_model_records_its_port_pins_as_they_change():
    chip = MCP23017()
    chip.write(0x00, 0xFE)         # GPA0 an output
    chip.write(0x12, 0x01)
    chip.write(0x12, 0x00)
    assert [(name, level) for _, name, level in chip.history] == [("GPA0", 1), ("GPA0", 0)]
    chip.drive_input(1, 3, 1)
    assert chip.read(0x13) == 0x08 and chip.history[-1][1:] == ("GPB3", 1)


def test_the_bus_bench_measures_every_row():
    from bench.buses import measure, report
    rows = measure(count=20)
    assert all(len(samples) == 20 for samples in rows.values())
    assert "transaction" in report(rows)
