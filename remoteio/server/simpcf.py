"""The simulated PCF8574 / PCF8574A: one quasi-bidirectional port and its INT output, per the datasheet.

The chip has no registers: a byte written sets the 8 pins' latches, a byte
read returns the 8 pins' levels. A pin latched 0 is driven low; a pin
latched 1 is high through the chip's weak pull-up unless something outside
drives it (:meth:`SimPCF8574.drive_input`), so it is an input. INT (open
drain) is asserted while an input pin's level differs from the levels the
last read or write saw, and let go on a read, a write, or the pin's return
to that level (datasheet "Interrupt output"): a pulse that ends before the
read leaves no trace but the line's fall. ``history`` records each pin's
changes as ``(time_ns, "P3", level)``.

Its state is in a :class:`~.simdevices.ChipMemory` (private, or the
simulated board's shared one, :mod:`.simchips`): ``registers[0]`` the
latches, ``registers[1]`` the levels the last read or write saw; each of its
transactions holds the memory's lock, as the MCP230xx model's do.

>>> chip = SimPCF8574()
>>> chip.send_byte(0xF0); chip.drive_input(0, 5, 0)      # P0..P3 low; a finger on P5
>>> hex(chip.read_from(0, 1)[0]), chip.is_input(5), chip.is_input(0)
('0xd0', True, False)
"""
from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence, Tuple

from .simdevices import NO_INPUT, ChipMemory, RegisterChip, held

_LATCH, _SEEN = 0, 1


class SimPCF8574(RegisterChip):
    """8 quasi-bidirectional pins P0..P7 (see the module). *interrupt(level)*
    drives the wire INT is on (0, or None: let go); *memory*: where the state
    lives; *reset*: start at power-on (every pin latched 1)."""

    ports = 1
    per_port = 2   # bytes of state (registers) per port, for a shared slot

    def __init__(self, memory: Optional[ChipMemory] = None, reset: bool = True,
                 interrupt: Optional[Callable[[Optional[int]], None]] = None) -> None:
        super().__init__(self.per_port)
        self.interrupt = interrupt
        self.memory = memory if memory is not None else ChipMemory(self.per_port, 8)
        self.registers = self.memory.registers  # type: ignore[assignment]
        if reset:
            self.registers[_LATCH] = 0xFF
            self.memory.levels[:] = bytes(self.pin_levels())
            self.registers[_SEEN] = self._port()

    @property
    def history(self) -> List[Tuple[int, str, int]]:
        return self.memory.history

    @property
    def writes(self) -> int:
        """Bytes written to the port (one per write transaction's byte)."""
        return self.memory.writes

    @property
    def latch(self) -> int:
        """The byte last written."""
        return self.registers[_LATCH]

    def pin_levels(self) -> List[int]:
        """The level on each pin, P0..P7."""
        latch, inputs = self.registers[_LATCH], self.memory.inputs
        return [0 if not latch >> bit & 1 else
                (inputs[bit] if inputs[bit] != NO_INPUT else 1) for bit in range(8)]

    def is_input(self, bit: int) -> bool:
        """Is the pin latched 1 (weak high: an input)?"""
        return bool(self.registers[_LATCH] >> bit & 1)

    def _port(self) -> int:
        return sum(level << bit for bit, level in enumerate(self.pin_levels()))

    def drive_input(self, port: int, bit: int, level: Optional[int]) -> None:
        """Drive pin *bit* from outside (None: let go; the pull-up wins)."""
        with held(self.memory.lock):
            self.memory.inputs[bit] = NO_INPUT if level is None else int(bool(level))
            self._record()

    # ---- what the bus does to it: every byte read is the port, every byte written latched --
    def read_from(self, register: int, count: int) -> List[int]:
        with held(self.memory.lock):
            value = self._port()
            self.registers[_SEEN] = value
            self._drive_interrupt()
            return [value] * count

    def read(self, register: int) -> int:
        return self.read_from(register, 1)[0]

    def write_from(self, register: int, data: Sequence[int]) -> None:
        """A write transaction's data bytes, latched in turn (a register-style
        call's register byte is not modelled: the last data byte is kept)."""
        with held(self.memory.lock):
            for value in data:
                self.memory.count_write()
                self.registers[_LATCH] = value & 0xFF
                self._record()
            self.registers[_SEEN] = self._port()
            self._drive_interrupt()

    def write(self, register: int, value: int) -> None:
        self.write_from(register, [value])

    def send_byte(self, value: int) -> None:
        """An SMBus send byte (``write_byte``): the PCF8574's one write."""
        self.write_from(0, [value])

    def _record(self) -> None:
        levels, old = self.pin_levels(), self.memory.levels
        now = time.monotonic_ns()
        for bit, new in enumerate(levels):
            if old[bit] != new:
                self.memory.record(now, bit, f"P{bit}", new)
        old[:] = bytes(levels)
        self._drive_interrupt()

    def _drive_interrupt(self) -> None:
        if self.interrupt is None:
            return
        inputs, seen = self.registers[_LATCH], self.registers[_SEEN]
        self.interrupt(0 if (self._port() ^ seen) & inputs else None)
