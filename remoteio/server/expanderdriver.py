"""An I/O expander's registers and its pins, as an expander worker drives them.

:class:`ExpanderChip` keeps the image of the registers the worker writes
(IODIR, GPPU, OLAT per port) and writes what changed: each changed register
once, the two ports of an MCP23017 in one sequential write when both
changed. While the worker *defers* (the parts of one batch, the pins due at
one moment of its clock) changes only mark the image; :meth:`ExpanderChip.flush`
then writes them, so 8 pins of one port switched together are ONE register
write. :class:`ExpanderPinDriver` is one pin of it with the methods a
:class:`~.pinworker.PinMachine` calls on a :class:`~.driver.PinDriver`.

>>> from remoteio.server.simdevices import SimI2CBus
>>> bus = SimI2CBus([("mcp23017", 0x20)])
>>> chip = ExpanderChip(bus, "mcp0", 1, 0x20, ports=2); chip.reset()
>>> chip.deferring = True
>>> for bit in range(8):
...     chip.set_bit(B_IODIR, bit, 0); chip.set_bit(B_OLAT, bit, 1)
>>> chip.flush(), bus.devices[0x20].read(0x12)       # OLATA, then IODIRA: 2 writes
(2, 255)
"""
from __future__ import annotations

import errno
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import BadArgument, BusError, NotSupported, WrongMode
from .simdevices import (
    B_DEFVAL, B_GPINTEN, B_GPIO, B_GPPU, B_INTCON, B_INTF, B_IODIR, B_IOCON, B_IPOL, B_OLAT,
    MIRROR, ODR,
)

#: the order changed registers are written in: pull-ups, then levels, then
#: directions (an output starts at its level: no blip through another one)
_FLUSH_ORDER = (B_GPPU, B_OLAT, B_IODIR)


class ExpanderChip:
    """The register image of one MCP230xx on an smbus2-shaped *bus*."""

    def __init__(self, bus: Any, name: str, number: int, address: int, ports: int,
                 interrupt: bool = False):
        self.interrupt = interrupt   # its INT line is wired to a header pin the worker watches
        self.gpinten = 0             # the inputs enabled for interrupt-on-change (bit n: pin n)
        self.bus, self.name, self.number, self.address, self.ports = bus, name, number, address, ports
        self.image: Dict[int, List[int]] = {B_IODIR: [0xFF] * ports, B_GPPU: [0] * ports,
                                            B_OLAT: [0] * ports}
        self.written = {base: list(values) for base, values in self.image.items()}
        self.dirty: Dict[int, set] = {base: set() for base in _FLUSH_ORDER}
        self.deferring = False
        self.writes = 0          # register write transactions made (for the log and tests)

    def _fail(self, exc: OSError) -> BusError:
        code = errno.errorcode.get(exc.errno or 0, "EIO")
        return BusError(f"expander {self.name} (I2C bus {self.number}, address "
                        f"0x{self.address:02x}): {exc.strerror or exc} ({code})", detail=code)

    def reset(self) -> None:
        """Every pin an input, no pull-up, no inversion, latches low: the
        chip's power-on state, whatever a previous program left."""
        for base, value in ((B_OLAT, 0), (B_IPOL, 0), (B_GPPU, 0), (B_IODIR, 0xFF)):
            self._write(base, [value] * self.ports)
        if self.interrupt:
            # INTA and INTB one line (MIRROR), open-drain (ODR: active low, the Pi's
            # pull-up; any number of chips may share a wire); on change, not against DEFVAL
            self._write(B_IOCON, [MIRROR | ODR])
            for base in (B_GPINTEN, B_INTCON, B_DEFVAL):
                self._write(base, [0] * self.ports)
            self.gpinten = 0
            self.read_inputs()   # clears what a previous program left pending
        for base in _FLUSH_ORDER:
            self.image[base] = [0xFF if base == B_IODIR else 0] * self.ports
            self.written[base] = list(self.image[base])
            self.dirty[base].clear()

    def _write(self, base: int, values: List[int], first_port: int = 0) -> None:
        register = base * self.ports + first_port
        try:
            if len(values) == 1:
                self.bus.write_byte_data(self.address, register, values[0])
            else:  # sequential registers (IOCON.SEQOP = 0): A then B in one transaction
                self.bus.write_i2c_block_data(self.address, register, values)
        except OSError as exc:
            raise self._fail(exc) from None
        self.writes += 1

    def set_bit(self, base: int, bit: int, value: int) -> None:
        port, bit = divmod(bit, 8)
        old = self.image[base][port]
        new = old | 1 << bit if value else old & ~(1 << bit)
        if new != old:
            self.image[base][port] = new
            self.dirty[base].add(port)
        if not self.deferring:
            self.flush()

    def bit(self, base: int, bit: int) -> int:
        return self.image[base][bit // 8] >> bit % 8 & 1

    def flush(self) -> int:
        """Write what changed; the number of write transactions it took. A
        write that fails (BusError) changes nothing: the image goes back to
        what the chip was last given."""
        made = 0
        try:
            for base in _FLUSH_ORDER:
                ports = sorted(self.dirty[base])
                if not ports:
                    continue
                values = [self.image[base][port] for port in ports]
                self._write(base, values, 0 if len(ports) == 2 else ports[0])
                self.written[base] = list(self.image[base])
                self.dirty[base].clear()
                made += 1
        except BusError:
            for base in _FLUSH_ORDER:
                self.image[base] = list(self.written[base])
                self.dirty[base].clear()
            raise
        return made

    def pull_of(self, label: str, pull: str) -> str:
        """The pull an input of this chip gets when *pull* is asked for (GPPU:
        a pull-up or none); BadArgument if it cannot have it."""
        if pull == "down":
            raise BadArgument(f"{label} has a pull-up only (the chip's GPPU); pull must be "
                              "'up' or 'floating'", detail="PinInvalidPull")
        return pull

    def enable_interrupts(self, mask: int) -> None:
        """GPINTEN = *mask* (bit n: pin n interrupts on change), if it changed."""
        if mask != self.gpinten:
            self._write(B_GPINTEN, [mask >> 8 * port & 0xFF for port in range(self.ports)])
            self.gpinten = mask

    def read_captured(self) -> Tuple[int, int]:
        """(INTF, INTCAP) of every port in one read: which pins interrupted and
        the port levels at the interrupt; the read clears the interrupt."""
        try:
            data = self.bus.read_i2c_block_data(self.address, B_INTF * self.ports,
                                                2 * self.ports)
        except OSError as exc:
            raise self._fail(exc) from None
        ports = self.ports
        flags = sum(data[port] << 8 * port for port in range(ports))
        captured = sum(data[ports + port] << 8 * port for port in range(ports))
        return flags, captured

    def read_inputs(self) -> int:
        """The GPIO registers: bit n = the level on pin n (one read)."""
        try:
            if self.ports == 2:
                return self.bus.read_word_data(self.address, B_GPIO * 2)   # GPIOA, then GPIOB
            return self.bus.read_byte_data(self.address, B_GPIO)
        except OSError as exc:
            raise self._fail(exc) from None


class ExpanderPinDriver:
    """Pin *bit* of *chip* with :class:`~.driver.PinDriver`'s methods (a digital
    pin: no PWM; a pull-up only, the chip's GPPU)."""

    bcm = None
    pwm_configured = False
    frequency = None

    def __init__(self, chip: ExpanderChip, name: str, bit: int,
                 on_edge: Callable[[int, int], None],
                 read_levels: Optional[Callable[[], int]] = None):
        self.chip, self.label, self.bit, self.on_edge = chip, name, bit, on_edge
        # a read for a client goes through the worker's, which first tells any
        # interrupt pending (a plain GPIO read would clear it unseen)
        self.read_levels = read_levels or chip.read_inputs
        self.mode = "released"
        self.level = 0.0
        self.pull = chip.pull_of(name, "floating")
        self.bounce_ms = 0.0
        self.edges = "both"
        self.watching = False
        self.seen: Optional[int] = None   # the input level last read (for change events)

    def open(self) -> None:
        if self.mode == "released":
            self.mode, self.level = "unset", 0.0

    def release(self) -> None:
        """An input without pull-up again (the chip's power-on state)."""
        self.chip.set_bit(B_GPPU, self.bit, 0)
        self.chip.set_bit(B_IODIR, self.bit, 1)
        self.mode, self.pull, self.level = "released", self.chip.pull_of(self.label, "floating"), 0.0

    def check_output(self) -> None:
        if self.mode == "input":
            raise WrongMode(f"{self.label} is configured as an input; send 'output' (or close "
                            "it) first", detail="PinSetInput")

    def drive(self, level: float, pwm: bool) -> bool:
        if pwm or 0.0 < level < 1.0:
            raise NotSupported(f"{self.label} is a digital expander pin: no PWM (value between "
                               "0 and 1, pulse)")
        self.open()
        before = self.level if self.mode == "output" else 0.0
        if self.mode != "output":
            self.check_output()
        self.chip.set_bit(B_OLAT, self.bit, int(level >= 0.5))
        self.chip.set_bit(B_IODIR, self.bit, 0)
        self.mode, self.level = "output", float(level)
        return level != before

    #: an expander's pins have no fixed resistor (a PCF8574's weak pull-up is its pull_of)
    fixed_pull = ""

    def check_input(self, pull: str) -> None:
        self.chip.pull_of(self.label, pull)

    def make_input(self, pull: str, bounce_ms: float, pwm_stops_at: Optional[float] = None) -> None:
        # the direction bit switches the line to an input as it is (no PWM on a chip pin)
        self.open()
        self.check_input(pull)
        self.chip.set_bit(B_GPPU, self.bit, int(pull == "up"))
        self.chip.set_bit(B_IODIR, self.bit, 1)
        self.mode, self.bounce_ms, self.level = "input", bounce_ms, 0.0
        self.pull = self.chip.pull_of(self.label, pull)
        self.seen = None

    def set_pull(self, pull: str) -> None:
        self.check_input(pull)
        self.chip.set_bit(B_GPPU, self.bit, int(pull == "up"))
        self.pull = self.chip.pull_of(self.label, pull)

    def set_frequency(self, frequency: Optional[float]) -> None:
        if frequency:
            raise NotSupported(f"{self.label} is a digital expander pin: no PWM frequency")

    def set_edge_options(self, bounce_ms: Optional[float], edges: Optional[str]) -> None:
        if bounce_ms is not None:
            self.bounce_ms = bounce_ms
        if edges is not None:
            self.edges = edges

    def make_output(self, level: float = 0.0) -> None:
        self.mode = "unset" if self.mode == "input" else self.mode
        self.drive(level, False)

    def read(self) -> int:
        self.open()
        if self.mode == "output":
            return int(self.level >= 0.5)
        return self.read_levels() >> self.bit & 1   # never `seen`: that is the poll's

    # ---- change events: the worker polls the chip and tells each watched input --------------
    def watch(self, on: bool) -> None:
        """Watched or not (by anyone): a first watch starts from the level read
        next; a second watcher, or one leaving while others stay, keeps the level
        last read, or the next change would be taken for the start and lost."""
        if on and not self.watching and self.mode != "output":
            self.seen = None
        self.watching = on

    @property
    def polled(self) -> bool:
        """Does this pin need the worker to poll the chip (a watched input)?"""
        return self.watching and self.mode in ("input", "unset")

    def polled_level(self, level: int, t_ns: int) -> None:
        """What the poll read on this pin at *t_ns*: a change event if it changed."""
        if self.seen is None:
            self.seen = level
            return
        if level != self.seen:
            self.seen = level
            if self.edges == "both" or self.edges == ("rising" if level else "falling"):
                self.on_edge(level, t_ns)

    def event_fds(self) -> Tuple[int, ...]:
        return ()

    def read_events(self) -> None:
        pass
