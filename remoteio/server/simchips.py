"""The simulated board's expander chips in shared memory, seen by every worker.

An expander's worker drives its chip and the I2C bus worker of the same bus
may read it too, so the chip cannot be a private model of either: its
registers, what drives its inputs, the number of writes it has taken and a
history ring per port pin live in one anonymous shared mapping made before
the zygote forks (the :class:`~.backends.simboard.SimBoard` holds it).

>>> chips = SimChips()
>>> chip = chips.declare("mcp0", 1, 0x20, "mcp23017")
>>> chip.write_from(0x00, [0xF7]); chip.write_from(0x14, [0x08])   # GPA3 an output, high
>>> chips.model(1, 0x20).read(0x12) & 0x08, chips.pin("mcp0:A3")[1], chips.history("mcp0:A3")[-1][1]
(8, 3, 1.0)
"""
from __future__ import annotations

import functools
import mmap
import struct
from typing import Callable, Dict, List, Optional, Tuple

from ..errors import BadPin
from ..pins import expander_pin
from .simdevices import DEVICE_KINDS, NO_INPUT, MCP23017

#: expander chips a simulated board can hold, and history entries per pin
SLOTS, HISTORY, PINS = 8, 1024, 16
_REGISTERS = 32
_COUNTER = struct.Struct("=Q")
_ENTRY = struct.Struct("=qd")
_HEADS = _REGISTERS + 2 * PINS + _COUNTER.size
_RING = _HEADS + PINS * _COUNTER.size
_SLOT = _RING + PINS * HISTORY * _ENTRY.size
#: a slot's directory entry: kind (0: free), bus, address, interrupt line (-1: none), name
_DIRECTORY = struct.Struct("=bBBb16s")
_KINDS = ("mcp23017", "mcp23008")


class SharedChipMemory:
    """A chip's state in slot *index* of the shared mapping (see ChipMemory)."""

    def __init__(self, mem: mmap.mmap, index: int, size: int, pins: int):
        self.mem, self.base = mem, index * _SLOT
        view = memoryview(mem)
        self.registers = view[self.base:self.base + size]
        self.inputs = view[self.base + _REGISTERS:self.base + _REGISTERS + pins]
        self.levels = view[self.base + _REGISTERS + PINS:self.base + _REGISTERS + PINS + pins]

    @property
    def writes(self) -> int:
        return _COUNTER.unpack_from(self.mem, self.base + _REGISTERS + 2 * PINS)[0]

    def count_write(self) -> None:
        _COUNTER.pack_into(self.mem, self.base + _REGISTERS + 2 * PINS, self.writes + 1)

    def _head(self, bit: int) -> int:
        return _COUNTER.unpack_from(self.mem, self.base + _HEADS + bit * _COUNTER.size)[0]

    def record(self, t_ns: int, bit: int, name: str, level: int) -> None:
        head = self._head(bit)
        _ENTRY.pack_into(self.mem, self.base + _RING + (bit * HISTORY + head % HISTORY) *
                         _ENTRY.size, t_ns, float(level))
        _COUNTER.pack_into(self.mem, self.base + _HEADS + bit * _COUNTER.size, head + 1)

    def pin_history(self, bit: int, since_ns: int = 0) -> List[Tuple[int, float]]:
        head = self._head(bit)
        entries = [_ENTRY.unpack_from(self.mem, self.base + _RING + (bit * HISTORY + n % HISTORY)
                                      * _ENTRY.size) for n in range(max(0, head - HISTORY), head)]
        return [e for e in entries if e[0] >= since_ns]

    @property
    def history(self) -> List[Tuple[int, str, int]]:
        """Every pin's changes, as the private model lists them."""
        rows = [(t, f"GP{'AB'[bit // 8]}{bit % 8}", int(v))
                for bit in range(len(self.levels)) for t, v in self.pin_history(bit)]
        return sorted(rows)


class SimChips:
    """The shared expander chips of one simulated board, by (bus, address) and by name.

    Which chip is in which slot is in the shared mapping too, so a chip
    declared after the workers' fork (at run time) is seen by them."""

    def __init__(self, wire: Optional[Callable[[int, Optional[int]], None]] = None) -> None:
        # anonymous + MAP_SHARED: seen by forks; the slots' directory after the slots
        self._mem = mmap.mmap(-1, SLOTS * _SLOT + SLOTS * _DIRECTORY.size)
        #: wire(line, level): the board's header line a chip's INTA drives (None: let go)
        self._wire = wire

    def _entries(self) -> List[Tuple[int, str, int, int, Optional[int], str]]:
        """(index, kind, bus, address, interrupt line, name) of every used slot."""
        out = []
        for index in range(SLOTS):
            kind, bus, address, line, name = _DIRECTORY.unpack_from(
                self._mem, SLOTS * _SLOT + index * _DIRECTORY.size)
            if kind:
                out.append((index, _KINDS[kind - 1], bus, address, None if line < 0 else line,
                            name.rstrip(b"\0").decode()))
        return out

    @property
    def names(self) -> Dict[str, Tuple[int, int]]:
        return {name: (bus, address) for _, _, bus, address, _, name in self._entries()}

    def _slot(self, bus: int, address: int) -> Optional[Tuple[int, str, Optional[int]]]:
        for index, kind, b, a, line, _ in self._entries():
            if (b, a) == (bus, address):
                return index, kind, line
        return None

    def declare(self, name: str, bus: int, address: int, kind: str,
                interrupt_line: Optional[int] = None) -> MCP23017:
        """A chip at power-on in a free slot; *interrupt_line*: the header line
        (BCM) its INTA is wired to."""
        slot = self._slot(bus, address)
        entries = self._entries()
        if slot is None:
            if len(entries) >= SLOTS:
                raise ValueError(f"a simulated board holds at most {SLOTS} expanders")
            index, reset = len(entries), True
        else:
            index, reset = slot[0], False
        _DIRECTORY.pack_into(self._mem, SLOTS * _SLOT + index * _DIRECTORY.size,
                             _KINDS.index(kind) + 1, bus, address,
                             -1 if interrupt_line is None else interrupt_line, name.encode())
        return self._model(bus, address, reset=reset)

    def _model(self, bus: int, address: int, reset: bool) -> MCP23017:
        slot = self._slot(bus, address)
        assert slot is not None
        index, kind, line = slot
        cls = DEVICE_KINDS[kind]
        memory = SharedChipMemory(self._mem, index, 11 * cls.ports, 8 * cls.ports)
        if reset:
            memory.inputs[:] = bytes([NO_INPUT] * len(memory.inputs))
        wire = self._wire
        interrupt = functools.partial(wire, line) if wire is not None and line is not None \
            else None
        return cls(memory=memory, reset=reset, interrupt=interrupt)

    def model(self, bus: int, address: int) -> Optional[MCP23017]:
        """A view of the shared chip at (bus, address), or None."""
        return self._model(bus, address, reset=False) if self._slot(bus, address) else None

    def models(self, bus: int) -> Dict[int, MCP23017]:
        """address -> the shared chips of *bus* (for its bus worker)."""
        return {address: self._model(b, address, reset=False)
                for _, _, b, address, _, _ in self._entries() if b == bus}

    def pin(self, spec: str) -> Tuple[MCP23017, int]:
        """The chip and bit of an expander pin (``"mcp0:A3"``); BadPin if unknown."""
        name, bit = expander_pin(spec)
        where = self.names.get(name)
        chip = self.model(*where) if where else None
        if chip is None or bit >= 8 * chip.ports:
            raise BadPin(f"{spec!r} is not a pin of an expander on this simulated board")
        return chip, bit

    def history(self, spec: str, since_ns: int = 0) -> List[Tuple[int, float]]:
        """An expander pin's level changes ``(t_ns, level)``, oldest first."""
        chip, bit = self.pin(spec)
        return chip.memory.pin_history(bit, since_ns)   # type: ignore[attr-defined]
