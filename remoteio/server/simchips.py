"""The simulated board's MCP230xx chips in shared memory, seen by every worker.

An expander's worker drives its chip and the I2C bus worker of the same bus
may read it too, so the chip cannot be a private model of either: its
registers, what drives its inputs, the number of writes it has taken and a
history ring per port pin live in one anonymous shared mapping made before
the zygote forks (the :class:`~.backends.simboard.SimBoard` holds it). The
simulated I2C buses' own MCP23017/MCP23008 chips live there too (a slot
given by the server's process when the bus's worker first starts, or when
the ``sim`` operation first names the chip: ``"i2c1@0x20:A3"``), so their
pins have a history and a replaced bus worker finds the chip as it was.

>>> chips = SimChips()
>>> chip = chips.declare("mcp0", 1, 0x20, "mcp23017")
>>> chip.write_from(0x00, [0xF7]); chip.write_from(0x14, [0x08])   # GPA3 an output, high
>>> chips.model(1, 0x20).read(0x12) & 0x08, chips.pin("mcp0:A3")[1], chips.history("mcp0:A3")[-1][1]
(8, 3, 1.0)
>>> chips.bus_devices = lambda bus: [("mcp23017", 0x20), ("mcp23008", 0x21)]
>>> [(addr, kind) for addr, kind, _ in chips.declare_bus(1)]   # the expander's slot is kept
[(32, 'mcp23017'), (33, 'mcp23008')]
>>> chips.pin("i2c1@0x21:A2")[1]
2
"""
from __future__ import annotations

import functools
import logging
import mmap
import struct
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import BadPin
from ..pins import PCF_CHIPS, bus_chip_pin, expander_pin_parts, is_bus_chip_spec
from .simdevices import DEVICE_KINDS, NO_INPUT, MCP23017
from .simpcf import SimPCF8574

log = logging.getLogger(__name__)

#: chips a simulated board can hold (its expanders at most EXPANDERS of them;
#: the mapping's pages are touched only when a slot is used), history entries per pin
SLOTS, HISTORY, PINS = 24, 1024, 16
EXPANDERS = 8
#: the device kinds a bus's configuration names that live in a shared slot
SHARED_KINDS = ("mcp23017", "mcp23008")
_REGISTERS = 32
_COUNTER = struct.Struct("=Q")
_ENTRY = struct.Struct("=qd")
_HEADS = _REGISTERS + 2 * PINS + _COUNTER.size
_RING = _HEADS + PINS * _COUNTER.size
_SLOT = _RING + PINS * HISTORY * _ENTRY.size
#: a slot's directory entry: kind (0: free), bus, address, interrupt line (-1: none), name
#: (empty for a bus's own chip that is no expander)
_DIRECTORY = struct.Struct("=bBBb16s")
_KINDS = ("mcp23017", "mcp23008", "pcf8574", "pcf8574a")
#: the models of the kinds a slot can hold
_MODELS = {"mcp23017": DEVICE_KINDS["mcp23017"], "mcp23008": DEVICE_KINDS["mcp23008"],
           "pcf8574": SimPCF8574, "pcf8574a": SimPCF8574}
Model = Union[MCP23017, SimPCF8574]


def _pin_names(kind: str, pins: int) -> List[str]:
    """A model's names of its pins in ``history``: "GPA0" (MCP230xx), "P0" (PCF8574)."""
    if kind in PCF_CHIPS:
        return [f"P{bit}" for bit in range(pins)]
    return [f"GP{'AB'[bit // 8]}{bit % 8}" for bit in range(pins)]


class SharedChipMemory:
    """A chip's state in slot *index* of the shared mapping (see ChipMemory)."""

    def __init__(self, mem: mmap.mmap, index: int, size: int, pins: int, lock: Any,
                 kind: str = "mcp23017"):
        self.mem, self.base, self.lock = mem, index * _SLOT, lock
        self.names = _pin_names(kind, pins)
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
        rows = [(t, self.names[bit], int(v))
                for bit in range(len(self.levels)) for t, v in self.pin_history(bit)]
        return sorted(rows)


class SimChips:
    """The shared expander chips of one simulated board, by (bus, address) and by name."""

    def __init__(self, wire: Optional[Callable[[int, Optional[int]], None]] = None) -> None:
        # anonymous + MAP_SHARED: seen by forks; the slots' directory after the slots, so
        # a chip given a slot after the workers' fork (at run time) is seen by them too
        self._mem = mmap.mmap(-1, SLOTS * _SLOT + SLOTS * _DIRECTORY.size)
        #: wire(line, level): the board's header line a chip's INTA drives (None: let go)
        self._wire = wire
        #: bus number -> its simulated devices ((kind, address) pairs); the server sets it
        self.bus_devices: Callable[[int], Sequence[Tuple[str, int]]] = lambda bus: ()
        self._lock = threading.Lock()   # the router's thread and a test's may declare at once
        # every chip's transactions, in every process: made before the zygote's fork (a
        # semaphore in shared memory; "fork": unlinked at once, no resource tracker)
        import multiprocessing  # here: only a simulated board loads it
        self.chip_lock = multiprocessing.get_context("fork").RLock()
        self._left_private: set = set()   # (bus, address) of chips a full board could not take

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
        """expander name -> its chip's (bus, address)."""
        return {name: (bus, address) for _, _, bus, address, _, name in self._entries() if name}

    def _slot(self, bus: int, address: int) -> Optional[Tuple[int, str, Optional[int]]]:
        for index, kind, b, a, line, _ in self._entries():
            if (b, a) == (bus, address):
                return index, kind, line
        return None

    def _write_entry(self, index: int, kind: str, bus: int, address: int,
                     interrupt_line: Optional[int], name: str) -> None:
        _DIRECTORY.pack_into(self._mem, SLOTS * _SLOT + index * _DIRECTORY.size,
                             _KINDS.index(kind) + 1, bus, address,
                             -1 if interrupt_line is None else interrupt_line, name.encode())

    def declare(self, name: str, bus: int, address: int, kind: str,
                interrupt_line: Optional[int] = None) -> Model:
        """An expander's chip (at power-on in a free slot, unless its bus's own
        chip has one already); *interrupt_line*: the header line (BCM) its INTA
        is wired to."""
        with self._lock:
            slot = self._slot(bus, address)
            if slot is None:
                if len(self.names) >= EXPANDERS:
                    raise ValueError(f"a simulated board holds at most {EXPANDERS} expanders")
                used = len(self._entries())
                if used >= SLOTS:
                    raise ValueError(f"the simulated board's {SLOTS} chip slots are full")
                index, reset = used, True
            else:
                index, reset = slot[0], False
            self._write_entry(index, kind, bus, address, interrupt_line, name)
        return self._model(bus, address, reset=reset)

    def _new(self, bus: int, address: int, kind: str) -> Optional[Model]:
        """The chip at (bus, address), given a slot at power-on if it has none; None: full."""
        with self._lock:   # one slot per chip, and none past the mapping
            if self._slot(bus, address) is None:
                used = len(self._entries())
                if used >= SLOTS:
                    return None
                self._write_entry(used, kind, bus, address, None, "")
                return self._model(bus, address, reset=True)
        return self._model(bus, address, reset=False)

    def declare_bus(self, bus: int) -> List[Tuple[int, str, int]]:
        """Give *bus*'s own MCP230xx chips a slot at power-on (those that have
        none yet; a full board leaves the rest private to the bus's worker);
        ``(address, kind, slot)`` of every shared chip of the bus, expanders'
        too: what its worker is told (:meth:`attach`)."""
        for kind, address in self.bus_devices(bus):
            if kind not in SHARED_KINDS or self._slot(bus, address) is not None:
                continue
            if self._new(bus, address, kind) is None and (bus, address) not in self._left_private:
                self._left_private.add((bus, address))
                log.warning("the simulated board's %d chip slots are full: the %s at 0x%02x "
                            "on I2C bus %d stays private to its worker", SLOTS, kind, address, bus)
        return sorted((address, kind, index) for index, kind, b, address, _, _ in self._entries()
                      if b == bus)

    def _memory(self, index: int, kind: str) -> SharedChipMemory:
        cls = _MODELS[kind]
        return SharedChipMemory(self._mem, index, cls.per_port * cls.ports, 8 * cls.ports,
                                self.chip_lock, kind)

    def attach(self, index: int, kind: str) -> Model:
        """A view of the chip in slot *index* (a bus worker's, told by the server)."""
        if kind not in _KINDS or not 0 <= index < SLOTS:   # (an expander's slot: any kind)
            raise ValueError(f"no shared {kind} in slot {index}")
        return _MODELS[kind](memory=self._memory(index, kind), reset=False)

    def _model(self, bus: int, address: int, reset: bool) -> Model:
        slot = self._slot(bus, address)
        assert slot is not None
        index, kind, line = slot
        cls = _MODELS[kind]
        memory = self._memory(index, kind)
        if reset:
            memory.inputs[:] = bytes([NO_INPUT] * len(memory.inputs))
        wire = self._wire
        interrupt = functools.partial(wire, line) if wire is not None and line is not None \
            else None
        return cls(memory=memory, reset=reset, interrupt=interrupt)

    def model(self, bus: int, address: int) -> Optional[Model]:
        """A view of the shared chip at (bus, address), or None."""
        return self._model(bus, address, reset=False) if self._slot(bus, address) else None

    def models(self, bus: int) -> Dict[int, Model]:
        """address -> the shared chips of *bus* (for its bus worker)."""
        return {address: self._model(b, address, reset=False)
                for _, _, b, address, _, _ in self._entries() if b == bus}

    def pin(self, spec: str) -> Tuple[Model, int]:
        """The chip and bit of an expander pin (``"mcp0:A3"``) or of a bus's
        chip (``"i2c1@0x20:A3"``); BadPin if unknown."""
        if is_bus_chip_spec(spec):
            bus, address, bit = bus_chip_pin(spec)
            self.declare_bus(bus)
            chip = self.model(bus, address)
            if chip is None or bit >= 8 * chip.ports:
                raise BadPin(f"{spec!r} is not a pin of an MCP23017/MCP23008 on simulated "
                             f"I2C bus {bus}")
            return chip, bit
        name, bit, style = expander_pin_parts(spec)
        where = self.names.get(name)
        chip = self.model(*where) if where else None
        if chip is None or bit >= 8 * chip.ports or \
                (style == "P") != isinstance(chip, SimPCF8574):   # "pcf0:A3", "mcp0:P3"
            raise BadPin(f"{spec!r} is not a pin of an expander on this simulated board")
        return chip, bit

    def history(self, spec: str, since_ns: int = 0) -> List[Tuple[int, float]]:
        """An expander pin's level changes ``(t_ns, level)``, oldest first."""
        chip, bit = self.pin(spec)
        return chip.memory.pin_history(bit, since_ns)   # type: ignore[attr-defined]
