"""The expander worker: one process owns one I/O expander chip and runs the timing of all its pins.

A worker kind beside the pin and bus workers (key ``("expander", name)``).
Each of the chip's pins is a :class:`~.pinworker.PinMachine`, the state
machine of a header pin's worker (queue semantics, jobs, leases, the pin
rules' gate), with an :class:`~.expanderdriver.ExpanderPinDriver`; the
router sends each pin's messages wrapped in :class:`~.messages.ForPin`.
The register writes of one turn are made together: the parts of one batch
``write`` and the pins whose jobs change at the same moment share one write
per register (``ExpanderChip.flush``). Watched inputs are read by polling
the chip's GPIO registers every ``poll_ms``, stamped with the Pi's clock;
with an interrupt line (:mod:`.expanderint`) they are enabled in GPINTEN
instead and read when the line falls: INTCAP (the levels at the interrupt,
stamped with the line's edge) then GPIO (the levels now).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Optional, Set, Tuple

from ..errors import ServerError
from ..pins import PCF_CHIPS, expander_pin_name
from .channel import Channel
from .config import PinRule
from .expanderdriver import ExpanderChip, ExpanderPinDriver
from .expanderint import InterruptLine
from .messages import ForPin, Pong, Probe, Stop, Task, decode
from .pcf8574 import PCF8574Chip
from .pinworker import PinMachine
from .status import FUNCTIONS, StatusTable
from .worker import Worker

log = logging.getLogger(__name__)


class ExpanderPin(PinMachine):
    """One pin of an expander: its machine, answering through its worker."""

    def __init__(self, host: "ExpanderWorker", chip: ExpanderChip, name: str, bit: int, mode: str,
                 rule: PinRule):
        self.reply, self.part_reply = host.reply, host.part_reply
        self.event, self.message = host.event, host.message
        super().__init__(name, ExpanderPinDriver(chip, name, bit, self._on_edge, host.read_levels),
                         mode, None, rule)

    def _on_edge(self, level: int, t_ns: int) -> None:
        """A change the worker read, on its loop's thread: the event goes out
        with the turn's replies, after them (sent at once, as an edge thread's
        are, it would take along a watch's reply before its GPINTEN write)."""
        self._emit(level, t_ns)

    def idle(self) -> None:
        """The worker posts its pins' status (:meth:`ExpanderWorker.idle`)."""

    def post(self, status: StatusTable, pid: int) -> None:
        """What ``info`` shows for this pin; never a read of the chip (an input's
        value is the level last read, by a poll or an interrupt)."""
        job, lease, driver = self.job, self.lease, self.driver
        mode = driver.mode
        value = float(driver.seen or 0) if mode in ("input", "unset") else driver.level
        status.post(self.board, pid=pid,
                    function=mode if mode in FUNCTIONS else "unset",
                    task=job.name if job else "", watchers=len(self.watchers),
                    queue=len(self.pending), value=value,
                    ends_ns=int(job.until * 1e9) if job and job.until else 0,
                    lease_ns=int(lease.deadline * 1e9) if lease else 0)


class ExpanderWorker(Worker):
    def __init__(self, settings: Dict[str, Any], bus: Any, mode: str, tasks: Channel,
                 replies: Channel, backend: Any = None, status: Optional[StatusTable] = None):
        super().__init__(tasks, replies)
        self.status, self.pid = status, os.getpid()
        if status is not None:   # the slots of an expander declared after our fork
            status.adopt(settings.get("slots", {}))
        expander = settings["expander"]
        self.name = expander["name"]
        self.line: Optional[InterruptLine] = None
        if expander.get("interrupt") is not None and backend is not None:
            try:
                self.line = InterruptLine(backend, expander["interrupt"])
            except Exception as exc:  # the chip's pins still work; its inputs are polled
                log.error("expander %s: interrupt line pin %d unusable, inputs polled: %s",
                          self.name, expander["interrupt"], exc)
        self.chip = make_chip(bus, expander, interrupt=self.line is not None)
        self.poll_s = expander["poll_ms"] / 1000.0
        self.next_poll: Optional[float] = None
        rules = settings["rules"]
        self.pins: Dict[str, ExpanderPin] = {}
        for bit in range(8 * self.chip.ports):
            name = expander_pin_name(self.name, bit, expander["chip"])
            self.pins[name] = ExpanderPin(self, self.chip, name, bit, mode,
                                          PinRule(**rules.get(name, {})))
        try:
            self.chip.reset()   # every pin released: what a fresh worker starts from
        except ServerError as exc:
            log.error("%s", exc.message)
        self.touched: Set[ExpanderPin] = set()   # the pins to post in idle()
        if status is not None:   # a fresh worker's pins (all released) replace a dead one's
            for pin in self.pins.values():
                pin.post(status, self.pid)

    def __str__(self) -> str:
        return f"expander {self.name}"

    # ---- the Worker contract -------------------------------------------------------
    def handle(self, message: Any) -> None:
        kind = type(message)
        if kind is ForPin:
            pin = self.pins.get(message.pin)
            if pin is None:  # the router names only this expander's pins
                log.error("%s: no pin %r", self, message.pin)
                return
            inner = decode(message.message)
            part = type(inner) is Task and inner.part   # a batch: its parts' writes go together
            if not part and self.chip.deferring:
                self._flush_chip()   # a single task's write is made (and judged) at once
            self.chip.deferring = part
            self.touched.add(pin)
            pin.handle(inner)
        elif kind is Probe:
            self.message(Pong())
        elif kind is Stop:
            self.chip.deferring = True
            for pin in self.pins.values():
                pin.stop()
            self._flush_chip()
            self.running = False

    def next_wake(self) -> Optional[float]:
        wake = None
        for pin in self.pins.values():
            at = pin.next_wake()
            if at is not None and (wake is None or at < wake):
                wake = at
        if self.next_poll is not None and (wake is None or self.next_poll < wake):
            wake = self.next_poll
        return wake

    def advance(self) -> None:
        """Every pin's clock, then the chip's writes of this moment together."""
        self.chip.deferring = True
        now = time.monotonic()
        for pin in self.pins.values():
            at = pin.next_wake()
            if at is not None and at <= now:
                self.touched.add(pin)
            pin.advance()
        self._flush_chip()
        self._poll()   # after the writes: an input just made one is read as one

    def idle(self) -> None:
        """The status of the pins this turn changed, for ``info``."""
        if self.touched and self.status is not None:
            for pin in self.touched:
                pin.post(self.status, self.pid)
        self.touched.clear()

    def _flush_chip(self) -> None:
        self.chip.deferring = False
        try:
            self.chip.flush()
        except ServerError as exc:
            log.warning("%s: a register write failed (the pins keep what the chip had): %s",
                        self, exc.message)

    def event_fds(self) -> Tuple[int, ...]:
        return self.line.fds() if self.line is not None else ()

    def service(self, fd: int) -> None:
        """The interrupt line moved: on a fall, the chip is read."""
        assert self.line is not None
        fell = self._line_fall()
        if fell is not None or not self.line.level():
            self._interrupted(fell if fell is not None else time.monotonic_ns())

    def _line_fall(self) -> Optional[int]:
        """The time of the line's last fall among the edges not yet read, or None.
        The last: the line cannot fall again before a read clears the chip, so a
        pending interrupt began at the last fall (an earlier one's record can be
        left over from a fall between a drain and the read that cleared it)."""
        assert self.line is not None
        falls = [t_ns for level, t_ns in self.line.edges() if not level]
        return falls[-1] if falls else None

    def _interrupted(self, t_ns: int) -> None:
        """Read the chip as its interrupt asks (:meth:`_read_interrupt`); a read
        that fails is tried again on the clock (INT stays asserted: no new edge)."""
        try:
            self._read_interrupt(t_ns)
        except ServerError as exc:
            log.warning("%s: reading its inputs on an interrupt failed: %s", self, exc.message)
            self.next_poll = time.monotonic() + self.poll_s

    def _read_interrupt(self, t_ns: int) -> int:
        """INTF and INTCAP (the levels at the interrupt, stamped *t_ns*), then
        GPIO (the levels now, returned); the read clears the interrupt. A pin not
        enabled in GPINTEN has no captured level: its level now only."""
        polled = [pin for pin in self.pins.values() if pin.driver.polled]
        flags, captured = self.chip.read_captured()
        levels = self.chip.read_inputs()
        now = time.monotonic_ns()
        enabled = self.chip.gpinten
        self.touched.update(polled)
        for pin in polled:
            bit = pin.driver.bit
            if flags >> (bit & ~7) & 0xFF and enabled >> bit & 1:   # its level at t_ns
                pin.driver.polled_level(captured >> bit & 1, t_ns)
            pin.driver.polled_level(levels >> bit & 1, now)
        return levels

    def read_levels(self) -> int:
        """The GPIO levels for a client's ``read`` (or a watch's reply). With
        inputs enabled in GPINTEN, through the interrupt's read: reading GPIO
        clears a pending interrupt, and another watched input's captured edge
        would be lost; so the captures are told first, as if the line had fallen."""
        if self.line is None or not self.chip.gpinten:
            return self.chip.read_inputs()
        return self._read_interrupt(self._read_time())

    def _enable(self) -> None:
        """Interrupt-on-change for the watched inputs. A newly watched input's
        starting level is read BEFORE its GPINTEN bit is set, and the chip read
        again after: an edge between the two is in INTCAP (or in GPIO), so from
        the watch's reply on (it leaves at the end of this turn) no edge is
        lost. Read the other way round, a whole pulse landing between the
        write and the read left its captured level taken as the start: the
        rise reported, not the fall."""
        mask = 0
        for pin in self.pins.values():
            if pin.driver.polled:
                mask |= 1 << pin.driver.bit
        added = mask & ~self.chip.gpinten
        if not added:
            self._set_gpinten(mask)   # fewer (or the same) inputs: nothing to read
            return
        self._interrupted(self._read_time())   # their first levels (no event); others' too
        if self._set_gpinten(mask):
            self._interrupted(self._read_time())   # what changed since, as an interrupt

    def _read_time(self) -> int:
        """The stamp of a captured level read outside :meth:`service`: the line's
        fall if one waits, else now (the interrupt began before the read)."""
        fell = self._line_fall()
        return fell if fell is not None else time.monotonic_ns()

    def _set_gpinten(self, mask: int) -> bool:
        try:
            self.chip.enable_interrupts(mask)
        except ServerError as exc:
            log.warning("%s: enabling interrupts failed: %s", self, exc.message)
            return False
        return True

    def _poll(self) -> None:
        if self.line is not None:
            self._enable()
            if self.next_poll is not None and time.monotonic() >= self.next_poll:
                self.next_poll = None   # a read that failed: again while INT is asserted
                if not self.line.level():
                    self._interrupted(time.monotonic_ns())
            return
        polled = [pin for pin in self.pins.values() if pin.driver.polled]
        if not polled:
            self.next_poll = None
            return
        now = time.monotonic()
        fresh = any(pin.driver.seen is None for pin in polled)   # a watch answered this turn
        if self.next_poll is not None and now < self.next_poll and not fresh:
            return   # (a new watch's first level is read before its reply, not at the next poll)
        self.next_poll = now + self.poll_s
        try:
            levels = self.chip.read_inputs()
        except ServerError as exc:
            log.warning("%s: polling its inputs failed: %s", self, exc.message)
            return
        t_ns = time.monotonic_ns()
        self.touched.update(polled)
        for pin in polled:
            pin.driver.polled_level(levels >> pin.driver.bit & 1, t_ns)

    def make_safe(self) -> None:
        self.chip.deferring = True
        for pin in self.pins.values():
            pin.make_safe()
        self._flush_chip()
        self.touched.update(self.pins.values())
        try:
            self.chip.bus.close()
        except OSError:
            pass
        if self.line is not None:
            self.line.close()


def make_chip(bus: Any, expander: Dict[str, Any], interrupt: bool) -> ExpanderChip:
    """The chip of an expander's settings, on *bus*: an MCP230xx's registers or a PCF8574's port."""
    if expander["chip"] in PCF_CHIPS:
        return PCF8574Chip(bus, expander["name"], expander["bus"], expander["address"],
                           interrupt=interrupt)
    return ExpanderChip(bus, expander["name"], expander["bus"], expander["address"],
                        2 if expander["chip"] == "mcp23017" else 1, interrupt=interrupt)


class _Unopened:
    """A bus whose device file would not open: every call fails with why."""

    def __init__(self, exc: OSError):
        self.exc = exc

    def _fail(self, *args: Any) -> Any:
        raise self.exc

    write_byte_data = write_i2c_block_data = read_word_data = read_byte_data = _fail
    read_i2c_block_data = write_byte = read_byte = _fail

    def close(self) -> None:
        pass


def run_expander_worker(key: Any, task_fd: int, reply_fd: int, settings: Dict[str, Any], *,
                        mode: str, chips: Any = None, backend: Any = None,
                        status: Optional[StatusTable] = None) -> None:
    """An expander worker's process, from the zygote's fork to its end; *chips*:
    the simulated board's shared chips (None on real hardware); *backend*: the
    GPIO backend, for its interrupt line."""
    from .spawn import worker_signals
    worker_signals()
    tasks, replies = Channel(task_fd, reader=True), Channel(reply_fd, reader=False)
    expander = settings["expander"]
    if chips is not None:
        from .simdevices import SimI2CBus
        bus: Any = SimI2CBus((), shared=chips.models(expander["bus"]))
    else:
        try:
            from .i2cbus import KernelI2CBus
            bus = KernelI2CBus(expander["bus"])
        except OSError as exc:
            log.error("expander %s: I2C bus %d cannot be opened: %s", expander["name"],
                      expander["bus"], exc)
            bus = _Unopened(exc)
    interrupt = expander.get("interrupt")
    if backend is not None and interrupt is not None:
        backend.prepare_worker(interrupt)   # as a pin worker's, before its pin's factory
    try:
        ExpanderWorker(settings, bus, mode, tasks, replies, backend, status).run()
    finally:
        if backend is not None and interrupt is not None:
            backend.cleanup_worker()
