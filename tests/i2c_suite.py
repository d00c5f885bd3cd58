"""The I2C suite: the same SMBus calls on a remote bus and on a local model of its chips.

Shared by tests/test_i2c.py (the simulated chips) and tests/hw (i2c-stub's).
"""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple

Call = Tuple[Any, ...]


def run(bus: Any, calls: Sequence[Call]) -> List[Any]:
    """Each call's result on *bus* (smbus2's SMBus, our model, or RemoteI2C)."""
    results = []
    for name, *args in calls:
        value = getattr(bus, name)(*args)
        results.append(list(value) if isinstance(value, (list, bytes, bytearray)) else value)
    return results


def register_calls(addr: int) -> List[Call]:
    """Every byte, block and pointer call smbus2 has, on a register-file chip."""
    return [
        ("write_quick", addr),
        ("write_byte_data", addr, 0x10, 0x5A), ("read_byte_data", addr, 0x10),
        ("write_byte", addr, 0x10), ("read_byte", addr), ("read_byte", addr),
        ("write_word_data", addr, 0x20, 0xBEEF), ("read_word_data", addr, 0x20),
        ("read_byte_data", addr, 0x20), ("process_call", addr, 0x30, 0x1234),
        ("write_i2c_block_data", addr, 0x40, list(range(100, 132))),
        ("read_i2c_block_data", addr, 0x40, 32), ("read_i2c_block_data", addr, 0x50, 5),
        ("write_byte_data", addr, 0xFF, 7), ("read_i2c_block_data", addr, 0xFE, 3),
    ]


def smbus_block_calls(addr: int) -> List[Call]:
    """SMBus block transfers (a chip that keeps what a block write sent)."""
    return [
        ("write_block_data", addr, 0x60, [1, 2, 3]), ("read_block_data", addr, 0x60),
        ("write_block_data", addr, 0x61, []), ("read_block_data", addr, 0x61),
        ("block_process_call", addr, 0x62, list(range(32))),
    ]


def mcp23017_calls(addr: int) -> List[Call]:
    """An MCP23017 driven per its datasheet (IOCON.BANK = 0)."""
    return [
        ("read_i2c_block_data", addr, 0x00, 22),            # the reset state, all registers
        ("write_byte_data", addr, 0x00, 0xF0),              # IODIRA: GPA0-3 outputs
        ("write_byte_data", addr, 0x12, 0x0F),              # GPIOA -> OLATA
        ("read_byte_data", addr, 0x14), ("read_byte_data", addr, 0x12),
        ("write_byte_data", addr, 0x0C, 0x30),              # GPPUA: pull-ups on GPA4/5
        ("write_byte_data", addr, 0x02, 0x10),              # IPOLA: GPA4 inverted
        ("read_byte_data", addr, 0x12),
        ("write_word_data", addr, 0x14, 0x0305),            # OLATA, OLATB
        ("read_word_data", addr, 0x14),
        ("write_byte_data", addr, 0x0E, 0xFF), ("read_byte_data", addr, 0x0E),  # INTF: read only
        ("write_byte_data", addr, 0x0B, 0x20),              # IOCON (B's address): SEQOP
        ("read_byte_data", addr, 0x0A),
        ("read_i2c_block_data", addr, 0x12, 3),             # no auto-increment now
    ]
