"""Simulated bus devices (an MCP23017, a register-file chip) behind an smbus2-shaped bus.

:class:`SimI2CBus` has smbus2's ``SMBus`` methods, so the bus worker runs
the same code over it as over a real ``/dev/i2c-N``, and tests run the same
calls locally against it to compare with what a server answers. A missing
device NAKs like the kernel does (``OSError`` ENXIO).

>>> bus = SimI2CBus([("mcp23017", 0x20)])
>>> bus.read_byte_data(0x20, 0x00)   # IODIRA: every pin an input after reset
255
>>> bus.write_byte_data(0x20, 0x00, 0x00); bus.write_byte_data(0x20, 0x12, 0x05)
>>> bus.read_byte_data(0x20, 0x14)   # OLATA follows a write to GPIOA
5
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

#: how long a chip's transaction waits for its lock before going on without it (a
#: process killed inside one, by the hang supervision, never lets go of it)
LOCK_TIMEOUT_S = 5.0


@contextlib.contextmanager
def held(lock: Any) -> Iterator[None]:
    """*lock* held for one transaction of a chip model (see :class:`ChipMemory`)."""
    got = lock.acquire(timeout=LOCK_TIMEOUT_S)
    if not got:
        log.warning("a simulated chip's lock was not let go of in %.0f s (its holder "
                    "died?): going on without it", LOCK_TIMEOUT_S)
    try:
        yield
    finally:
        if got:
            lock.release()


def _nak(addr: int) -> OSError:
    return OSError(errno.ENXIO, f"{os.strerror(errno.ENXIO)} (no device at 0x{addr:02x})")


class RegisterChip:
    """A chip of *size* byte registers behind an address pointer that moves
    on after each byte read or written (an EEPROM, i2c-stub's chips)."""

    def __init__(self, size: int = 256):
        self.size = size
        self.registers = bytearray(size)
        self.pointer = 0
        self.blocks: Dict[int, List[int]] = {}   # SMBus block writes, read back by block reads

    def read(self, register: int) -> int:
        return self.registers[register % self.size]

    def write(self, register: int, value: int) -> None:
        self.registers[register % self.size] = value

    def send_byte(self, value: int) -> None:
        """An SMBus send byte (``write_byte``): it sets the pointer."""
        self.pointer = value % self.size

    def advance(self, register: int) -> int:
        """The register after *register* in a sequential transfer."""
        return (register + 1) % self.size

    # ---- what the bus does to a chip ---------------------------------------------
    def read_from(self, register: int, count: int) -> List[int]:
        out = []
        for _ in range(count):
            out.append(self.read(register))
            register = self.advance(register)
        self.pointer = register
        return out

    def write_from(self, register: int, data: Sequence[int]) -> None:
        for value in data:
            self.write(register, value)
            register = self.advance(register)
        self.pointer = register


# MCP23017 registers with IOCON.BANK = 0 (datasheet DS20001952, table 3-5): A at even, B at odd
IODIR, IPOL, GPINTEN, DEFVAL, INTCON, IOCON, GPPU, INTF, INTCAP, GPIO, OLAT = range(0, 22, 2)
#: the same registers as bases: an MCP230xx's register is base * ports + port
#: (MCP23017 bank 0: two ports; MCP23008: one)
B_IODIR, B_IPOL, B_IOCON, B_GPPU, B_INTF, B_INTCAP, B_GPIO, B_OLAT = 0, 1, 5, 6, 7, 8, 9, 10
B_GPINTEN, B_DEFVAL, B_INTCON = 2, 3, 4
_SEQOP = 0x20     # IOCON bit 5: 1 = the address pointer does not move on
#: IOCON bits 6, 2, 1: INTA/INTB one line; INT open-drain (overrides INTPOL); INT active-high
MIRROR, ODR, INTPOL = 0x40, 0x04, 0x02
NO_INPUT = 255    # an input pin nothing outside drives


class ChipMemory:
    """Where an expander model keeps its state: here, in this process (the
    shared one, seen by every worker, is :class:`~.simchips.SharedChipMemory`).
    ``lock`` (re-entrant) is held for each of the model's transactions: an
    input's change (INTF set, INT asserted) and a read that clears the
    interrupt (INTF cleared, INT let go) each read, then write, the flags and
    the wire; two processes interleaving them left INT let go while an
    interrupt was pending. A shared chip's lock is shared by every process."""

    def __init__(self, size: int, pins: int):
        self.lock: Any = threading.RLock()
        self.registers = bytearray(size)
        self.inputs = bytearray([NO_INPUT] * pins)   # driven level per pin, or NO_INPUT
        self.levels = bytearray(pins)                # the levels last recorded
        self.writes = 0                              # I2C write transactions to the chip
        self.history: List[Tuple[int, str, int]] = []

    def count_write(self) -> None:
        self.writes += 1

    def record(self, t_ns: int, bit: int, name: str, level: int) -> None:
        self.history.append((t_ns, name, level))
        del self.history[:-10_000]   # bounded


class MCP23017(RegisterChip):
    """16 I/O pins in two ports (A, B) per the datasheet's register map, bank 0.

    Outputs drive their pins from OLAT (a write to GPIO writes OLAT); inputs
    read what :meth:`drive_input` sets, or 1 with the pull-up on (GPPU) and
    nothing driving; IPOL inverts what an input reads. INTF and INTCAP are
    read only. Interrupt-on-change (datasheet 3.6): a change of an input
    enabled in GPINTEN (against its last level, or against DEFVAL with
    INTCON) sets its INTF bit and, if the port had none pending, captures
    the port in INTCAP; INTA (INTB) is asserted while port A's (B's) INTF
    is not 0, both ports on each with IOCON.MIRROR; a read of the port's
    GPIO or INTCAP clears it. *interrupt(level)*: what drives the wire INTA
    is on (None: let go, for the open-drain output of IOCON.ODR).
    ``history`` records every change of a port pin's level:
    ``(time_ns, "GPA0", level)``. *memory*: where the state lives (shared
    between processes for an expander the server drives); *reset*: start it
    at the chip's power-on state."""

    ports, per_port = 2, 11   # per_port: registers per port

    def __init__(self, memory: Optional[ChipMemory] = None, reset: bool = True,
                 interrupt: Optional[Callable[[Optional[int]], None]] = None) -> None:
        size = self.per_port * self.ports
        super().__init__(size)
        self.interrupt = interrupt
        self.memory = memory if memory is not None else ChipMemory(size, 8 * self.ports)
        self.registers = self.memory.registers  # type: ignore[assignment]
        if reset:
            for port in range(self.ports):
                self.registers[B_IODIR * self.ports + port] = 0xFF
            self.memory.levels[:] = bytes(self.pin_levels())

    @property
    def history(self) -> List[Tuple[int, str, int]]:
        return self.memory.history

    @property
    def writes(self) -> int:
        """I2C write transactions the chip has taken (a test counts them)."""
        return self.memory.writes

    def _reg(self, base: int, port: int) -> int:
        return base * self.ports + port

    def pin_levels(self) -> List[int]:
        """The level on each port pin, GPA0..GPA7 then GPB0..GPB7."""
        levels = []
        registers, inputs = self.registers, self.memory.inputs
        for port in range(self.ports):
            iodir, olat = registers[self._reg(B_IODIR, port)], registers[self._reg(B_OLAT, port)]
            pullup = registers[self._reg(B_GPPU, port)]
            for bit in range(8):
                if not iodir >> bit & 1:
                    levels.append(olat >> bit & 1)
                else:
                    driven = inputs[port * 8 + bit]
                    levels.append(driven if driven != NO_INPUT else pullup >> bit & 1)
        return levels

    def is_input(self, bit: int) -> bool:
        return bool(self.registers[self._reg(B_IODIR, bit // 8)] >> bit % 8 & 1)

    def drive_input(self, port: int, bit: int, level: Optional[int]) -> None:
        """Drive an input pin from outside (None: let it float)."""
        with held(self.memory.lock):
            self.memory.inputs[port * 8 + bit] = NO_INPUT if level is None else int(bool(level))
            self._record()

    def read_from(self, register: int, count: int) -> List[int]:
        with held(self.memory.lock):   # one transfer: a sequential read is one transaction
            return super().read_from(register, count)

    def read(self, register: int) -> int:
        with held(self.memory.lock):
            return self._read(register)

    def _read(self, register: int) -> int:
        base, port = divmod(register, self.ports)
        if base == B_GPIO:
            levels = self.pin_levels()[port * 8:port * 8 + 8]
            value = sum(level << bit for bit, level in enumerate(levels))
            value ^= self.registers[self._reg(B_IPOL, port)] & \
                self.registers[self._reg(B_IODIR, port)]
            self._clear_interrupt(port)
            return value
        if base == B_INTCAP:
            self._clear_interrupt(port)
        return self.registers[register]

    # ---- interrupt-on-change -------------------------------------------------------
    def _changed(self, old: Sequence[int], new: Sequence[int]) -> None:
        registers = self.registers
        for port in range(self.ports):
            enabled = registers[self._reg(B_GPINTEN, port)] & registers[self._reg(B_IODIR, port)]
            if not enabled:
                continue
            intcon = registers[self._reg(B_INTCON, port)]
            defval = registers[self._reg(B_DEFVAL, port)]
            fired = 0
            for bit in range(8):
                n = port * 8 + bit
                if enabled >> bit & 1 and old[n] != new[n] and \
                        (not intcon >> bit & 1 or new[n] != defval >> bit & 1):
                    fired |= 1 << bit
            if fired:
                flags = self._reg(B_INTF, port)
                if not registers[flags]:   # the capture of the first change is kept
                    levels = new[port * 8:port * 8 + 8]
                    registers[self._reg(B_INTCAP, port)] = sum(
                        level << bit for bit, level in enumerate(levels)) ^ \
                        (registers[self._reg(B_IPOL, port)] & registers[self._reg(B_IODIR, port)])
                registers[flags] |= fired
                self._drive_interrupt()

    def _clear_interrupt(self, port: int) -> None:
        if self.registers[self._reg(B_INTF, port)]:
            self.registers[self._reg(B_INTF, port)] = 0
            self._drive_interrupt()

    def _drive_interrupt(self) -> None:
        """Set the INTA wire from the flags (INTB is not wired in a simulation)."""
        if self.interrupt is None:
            return
        iocon = self.registers[self._reg(B_IOCON, 0)]
        flags = [self.registers[self._reg(B_INTF, port)] for port in range(self.ports)]
        asserted = any(flags) if iocon & MIRROR else bool(flags[0])
        if iocon & ODR:
            self.interrupt(0 if asserted else None)
        else:
            self.interrupt(int(asserted) if iocon & INTPOL else int(not asserted))

    def write(self, register: int, value: int) -> None:
        with held(self.memory.lock):
            self._write(register, value)

    def _write(self, register: int, value: int) -> None:
        base = register // self.ports
        if base in (B_INTF, B_INTCAP):
            return  # read only
        if base == B_GPIO:
            register += (B_OLAT - B_GPIO) * self.ports
        if base == B_IOCON:
            for port in range(self.ports):   # one register, seen at both addresses
                self.registers[self._reg(B_IOCON, port)] = value & 0x7F
        else:
            self.registers[register] = value
        self._record()

    def write_from(self, register: int, data: Sequence[int]) -> None:
        with held(self.memory.lock):
            self.memory.count_write()
            super().write_from(register, data)

    def advance(self, register: int) -> int:
        if self.registers[self._reg(B_IOCON, 0)] & _SEQOP:
            return register
        return (register + 1) % self.size

    def _record(self) -> None:
        levels = self.pin_levels()
        old = self.memory.levels
        now = time.monotonic_ns()
        before = bytes(old)
        for n, new in enumerate(levels):
            if old[n] != new:
                self.memory.record(now, n, f"GP{'AB'[n // 8]}{n % 8}", new)
        old[:] = bytes(levels)
        if before != bytes(levels):
            self._changed(before, levels)


class MCP23008(MCP23017):
    """The 8-pin MCP23008: the MCP23017's registers for one port (IODIR 0x00 .. OLAT 0x0A)."""

    ports = 1


class StuckChip(RegisterChip):
    """A device that holds the bus (SDA low): every transfer to it hangs, as
    one to a real stuck bus can; the server's hang supervision ends it."""

    def read_from(self, register: int, count: int) -> List[int]:
        time.sleep(3600)
        return []

    write_from = read_from  # type: ignore[assignment]


#: device kind (as a configuration names it) -> its model
DEVICE_KINDS = {"mcp23017": MCP23017, "mcp23008": MCP23008, "registers": RegisterChip,
                "stuck": StuckChip}

#: what a simulated server's I2C bus 1 has when the configuration names nothing
DEFAULT_I2C_DEVICES = (("mcp23017", 0x20), ("registers", 0x50))


class SimI2CBus:
    """smbus2's ``SMBus`` methods over simulated chips (*devices*: (kind, address) pairs)."""

    def __init__(self, devices: Iterable[Tuple[str, int]] = DEFAULT_I2C_DEVICES,
                 shared: Optional[Dict[int, RegisterChip]] = None):
        self.devices: Dict[int, RegisterChip] = {
            addr: DEVICE_KINDS[kind]() for kind, addr in devices}
        self.devices.update(shared or {})   # the chips other processes see too (expanders)

    def _chip(self, addr: int) -> RegisterChip:
        chip = self.devices.get(addr)
        if chip is None:
            raise _nak(addr)
        return chip

    def close(self) -> None:
        pass

    def write_quick(self, i2c_addr: int, force: Any = None) -> None:
        self._chip(i2c_addr)

    def read_byte(self, i2c_addr: int, force: Any = None) -> int:
        chip = self._chip(i2c_addr)
        return chip.read_from(chip.pointer, 1)[0]

    def write_byte(self, i2c_addr: int, value: int, force: Any = None) -> None:
        self._chip(i2c_addr).send_byte(value)

    def read_byte_data(self, i2c_addr: int, register: int, force: Any = None) -> int:
        return self._chip(i2c_addr).read_from(register, 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: Any = None) -> None:
        self._chip(i2c_addr).write_from(register, [value])

    def read_word_data(self, i2c_addr: int, register: int, force: Any = None) -> int:
        low, high = self._chip(i2c_addr).read_from(register, 2)
        return low | high << 8   # SMBus words are little-endian

    def write_word_data(self, i2c_addr: int, register: int, value: int, force: Any = None) -> None:
        self._chip(i2c_addr).write_from(register, [value & 0xFF, value >> 8])

    def process_call(self, i2c_addr: int, register: int, value: int, force: Any = None) -> int:
        self.write_word_data(i2c_addr, register, value)
        return self.read_word_data(i2c_addr, register)

    def read_block_data(self, i2c_addr: int, register: int, force: Any = None) -> List[int]:
        return list(self._chip(i2c_addr).blocks.get(register, []))

    def write_block_data(self, i2c_addr: int, register: int, data: Sequence[int],
                         force: Any = None) -> None:
        self._chip(i2c_addr).blocks[register] = list(data)

    def block_process_call(self, i2c_addr: int, register: int, data: Sequence[int],
                           force: Any = None) -> List[int]:
        self.write_block_data(i2c_addr, register, data)
        return self.read_block_data(i2c_addr, register)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: Any = None) -> List[int]:
        return self._chip(i2c_addr).read_from(register, length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int],
                             force: Any = None) -> None:
        self._chip(i2c_addr).write_from(register, data)

    def rdwr(self, messages: Sequence[Tuple[int, int, List[int]]]) -> List[Optional[List[int]]]:
        """``i2c_rdwr`` in plain data: (addr, read length or -1, bytes to write) each;
        a write's first byte sets the pointer, a read goes on from it."""
        out: List[Optional[List[int]]] = []
        for addr, length, data in messages:
            chip = self._chip(addr)
            if length < 0:
                chip.pointer = data[0] % chip.size
                chip.write_from(chip.pointer, data[1:])
                out.append(None)
            else:
                out.append(chip.read_from(chip.pointer, length))
        return out
