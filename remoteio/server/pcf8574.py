"""A PCF8574 / PCF8574A as an expander worker drives it: one quasi-bidirectional port, no registers.

The chip has one byte each way: a write sets the 8 pins' latches, a read
returns the 8 pins' levels. A pin latched 0 is driven low (strong); a pin
latched 1 is high through a weak current source, so it is an input too
(whatever pulls it low wins): the byte written is ``IODIR | (OLAT & ~IODIR)``
over the image :class:`~.expanderdriver.ExpanderChip` keeps (IODIR bit 1: an
input, GPPU unused), and :meth:`PCF8574Chip.flush` sends it with ONE
``write_byte`` when it changed, so a batch across the 8 pins is one bus
write. Its INT output has no flag or capture register: it is asserted while
an input differs from what the last read or write saw, and a read clears it;
:meth:`PCF8574Chip.read_captured` is that read, and the worker stamps its
levels with the line's fall (docs/expanders.md, "PCF8574 and PCF8574A").

>>> from remoteio.server.simdevices import SimI2CBus
>>> from remoteio.server.simpcf import SimPCF8574
>>> bus = SimI2CBus((), shared={0x20: SimPCF8574()})
>>> chip = PCF8574Chip(bus, "pcf0", 1, 0x20); chip.reset()
>>> chip.deferring = True
>>> for bit in range(4):
...     chip.set_bit(B_IODIR, bit, 0); chip.set_bit(B_OLAT, bit, bit % 2)
>>> chip.flush(), hex(bus.read_byte(0x20)), chip.writes     # P0, P2 low; one write_byte
(1, '0xfa', 2)
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from ..errors import BadArgument, BusError
from .expanderdriver import ExpanderChip
from .simdevices import B_GPPU, B_IODIR, B_OLAT

_BASES = (B_IODIR, B_GPPU, B_OLAT)


class PCF8574Chip(ExpanderChip):
    """The port image of one PCF8574/PCF8574A on an smbus2-shaped *bus*
    (``set_bit``, ``bit`` and ``deferring`` as an MCP230xx's)."""

    def __init__(self, bus: Any, name: str, number: int, address: int,
                 interrupt: bool = False):
        super().__init__(bus, name, number, address, ports=1, interrupt=interrupt)
        self.sent = 0xFF   # the byte last written (power-on: every pin weak high)
        self._captured: Optional[int] = None   # read_captured's levels, for read_inputs

    def pull_of(self, label: str, pull: str) -> str:
        """An input always has the chip's weak pull-up: "up" (and "floating",
        which cannot be had) is what it gets; "down" cannot be."""
        if pull == "down":
            raise BadArgument(f"{label} is a PCF8574 pin: an input always has the chip's "
                              "weak pull-up, never a pull-down (pull must be 'up')",
                              detail="PinInvalidPull")
        return "up"

    def port_byte(self) -> int:
        """The byte the pins' image asks for: inputs 1, outputs their level."""
        iodir, olat = self.image[B_IODIR][0], self.image[B_OLAT][0]
        return (iodir | olat & ~iodir) & 0xFF

    def _send(self, value: int) -> None:
        try:
            self.bus.write_byte(self.address, value)
        except OSError as exc:
            raise self._fail(exc) from None
        self.writes += 1
        self.sent = value

    def _keep(self) -> None:
        self.written = {base: list(self.image[base]) for base in _BASES}
        for ports in self.dirty.values():
            ports.clear()

    def reset(self) -> None:
        """Every pin an input (latched 1), whatever a previous program left."""
        self._send(0xFF)
        self.image = {B_IODIR: [0xFF], B_GPPU: [0], B_OLAT: [0]}
        self._keep()
        self.gpinten = 0
        self._captured = None
        if self.interrupt:
            self.read_inputs()   # clears what a previous program left pending

    def flush(self) -> int:
        """Write the port if its byte changed: 1 write or 0. A write that fails
        (BusError) changes nothing: the image goes back to what the chip has."""
        byte = self.port_byte()
        made = 0
        if byte != self.sent:
            try:
                self._send(byte)
            except BusError:
                self.image = {base: list(self.written[base]) for base in _BASES}
                self._keep()
                raise
            made = 1
        self._keep()
        return made

    def enable_interrupts(self, mask: int) -> None:
        """No register: every input drives INT. The mask is kept for the worker."""
        self.gpinten = mask

    def read_captured(self) -> Tuple[int, int]:
        """The one read an interrupt takes (it clears INT): every pin "flagged",
        the levels read. There is no capture register: these are the levels at
        the read, which the worker stamps with the line's fall; the
        :meth:`read_inputs` right after it returns them, not a second read."""
        self._captured = self._read()
        return 0xFF, self._captured

    def read_inputs(self) -> int:
        """The 8 pins' levels (one ``read_byte``)."""
        if self._captured is not None:
            levels, self._captured = self._captured, None
            return levels
        return self._read()

    def _read(self) -> int:
        try:
            return self.bus.read_byte(self.address)
        except OSError as exc:
            raise self._fail(exc) from None
