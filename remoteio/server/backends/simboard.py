"""The simulated board: 28 GPIO lines in shared memory, observable and drivable.

One :class:`SimBoard` is created by the server before any pin worker is
forked; every worker inherits the same anonymous shared mapping and the same
per-line wake pipes, so a level written by one process is seen by all, and
whoever changes what an input sees (a test, the router, the worker of a wired
output) writes an *edge record* ``(level, t_ns)`` into that input's pipe. The
input's worker reads the records in order, so no edge is lost and each keeps
its exact timestamp.

What the board keeps per line (index = BCM GPIO number); each field is read
and written on its own, and has one writer, so no process clobbers another's:

* ``function``, ``pull``, ``value`` (what an output drives, 0..1),
  ``frequency`` (PWM), the output ``history``: written by the line's worker
* ``drive``: a level applied from outside (a finger on a button), or none
* ``group``: lines joined by a jumper wire (see :meth:`SimBoard.wire`)
* ``echo``: an ultrasonic sensor: when this line (the trigger) falls after a
  pulse, another line (the echo) goes high for a set time

Level of a line that is not an output, in order of precedence: an outside
drive; an echo pulse in progress; an output on the same wire (a PWM output is
a square wave: high for ``value`` of each period); the pulls on the wire (any
pull-up and no pull-down: high); low. Timestamps are ``time.monotonic_ns()``
(CLOCK_MONOTONIC), comparable across processes on one machine.

>>> board = SimBoard()
>>> board.set_output(4, 1.0)         # what a worker does when it drives GPIO4
>>> board.value(4), board.history(4)[-1][1]
(1.0, 1.0)
"""
from __future__ import annotations

import mmap
import os
import struct
import time
from typing import List, Optional, Sequence, Tuple

from ...errors import BadArgument
from ...pins import BOARD_TO_BCM, board_pin, is_expander_spec
from ..simchips import SimChips

NUM_LINES = 28
HISTORY = 4096
#: time from the trigger's falling edge to the start of the echo (a real
#: HC-SR04 takes a few hundred microseconds to send its burst)
ECHO_DELAY_NS = 200_000

RELEASED, INPUT, OUTPUT = 0, 1, 2
FUNCTION_NAMES = {RELEASED: "released", INPUT: "input", OUTPUT: "output"}
FLOATING, PULL_UP, PULL_DOWN = 0, 1, 2
PULL_NAMES = {FLOATING: "floating", PULL_UP: "up", PULL_DOWN: "down"}
#: the lines with a fixed pull-up on the board itself (I2C1's SDA and SCL, as on a Pi)
FIXED_PULL_UPS = (2, 3)
PULL_CODES = {name: code for code, name in PULL_NAMES.items()}
NO_DRIVE = -1

# one line's record: (name, struct format); each field packed on its own
_FIELDS = (("function", "b"), ("pull", "b"), ("drive", "b"), ("group", "b"), ("echo_to", "b"),
           ("value", "d"), ("frequency", "d"), ("head", "Q"), ("echo_ns", "q"),
           ("window_start", "q"), ("window_end", "q"))
_FIELD = {}
_offset = 0
for _name, _fmt in _FIELDS:
    _struct = struct.Struct("=" + _fmt)
    _FIELD[_name] = (_offset, _struct)
    _offset += _struct.size
_LINE_SIZE = (_offset + 7) // 8 * 8
#: the whole record at once (the fields are packed back to back, as above):
#: one unpack where a write would otherwise make five
_LINE = struct.Struct("=" + "".join(fmt for _, fmt in _FIELDS))
_VALUE_AT, _VALUE = _FIELD["value"]
_HEAD_AT, _HEAD = _FIELD["head"]
_ENTRY = struct.Struct("=qd")
_EDGE = struct.Struct("=bq")  # one edge record in a wake pipe: level, t_ns
_HISTORY_OFFSET = _LINE_SIZE * NUM_LINES


class SimBoard:
    """28 simulated GPIO lines shared by every process forked after creation."""

    def __init__(self) -> None:
        size = _HISTORY_OFFSET + NUM_LINES * HISTORY * _ENTRY.size
        self._mem = mmap.mmap(-1, size)  # anonymous + MAP_SHARED: seen by forks
        #: the expanders on its I2C buses, shared by their workers (docs/expanders.md)
        self.chips = SimChips(self.wire_drive)
        for line in range(NUM_LINES):
            for name, initial in (("drive", NO_DRIVE), ("group", -1), ("echo_to", -1)):
                self._set(line, name, initial)
            if line in FIXED_PULL_UPS:  # high before anyone opens them, as on a Pi
                self._set(line, "pull", PULL_UP)
        self._wake: List[Tuple[int, int]] = []
        for _ in range(NUM_LINES):
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._wake.append((r, w))

    def _get(self, line: int, name: str):
        offset, field = _FIELD[name]
        return field.unpack_from(self._mem, line * _LINE_SIZE + offset)[0]

    def _set(self, line: int, name: str, value) -> None:
        offset, field = _FIELD[name]
        field.pack_into(self._mem, line * _LINE_SIZE + offset, value)

    # ---- observing ---------------------------------------------------------
    def function(self, line: int) -> str:
        return FUNCTION_NAMES[self._get(line, "function")]

    def pull(self, line: int) -> str:
        return PULL_NAMES[self._get(line, "pull")]

    def value(self, line: int) -> float:
        """What the line's worker drives (0..1), whatever its function."""
        return self._get(line, "value")

    def frequency(self, line: int) -> Optional[float]:
        return self._get(line, "frequency") or None

    def _output_level(self, line: int, now_ns: int) -> int:
        value, frequency = self._get(line, "value"), self._get(line, "frequency")
        if frequency and 0.0 < value < 1.0:  # a square wave, high for `value` of each period
            return 1 if (now_ns * frequency / 1e9) % 1.0 < value else 0
        return 1 if value >= 0.5 else 0

    def level(self, line: int, now_ns: Optional[int] = None) -> int:
        """The digital level on the line: what a voltmeter (or a read) sees."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        if self._get(line, "function") == OUTPUT:
            return self._output_level(line, now_ns)
        drive = self._get(line, "drive")
        if drive != NO_DRIVE:
            return drive
        if self._get(line, "window_start") <= now_ns < self._get(line, "window_end"):
            return 1
        pulls = {self._get(line, "pull")}
        for other in self.wired_to(line):
            if self._get(other, "function") == OUTPUT:
                return self._output_level(other, now_ns)
            pulls.add(self._get(other, "pull"))
        if PULL_UP in pulls and PULL_DOWN in pulls:  # fighting pulls: this line's own wins
            return 1 if self._get(line, "pull") == PULL_UP else 0
        return 1 if PULL_UP in pulls else 0

    def history(self, line: int, since_ns: int = 0) -> List[Tuple[int, float]]:
        """Changes of the line's output as ``(t_ns, value)``, oldest first."""
        head = self._get(line, "head")
        first = max(0, head - HISTORY)
        base = _HISTORY_OFFSET + line * HISTORY * _ENTRY.size
        entries = [_ENTRY.unpack_from(self._mem, base + (n % HISTORY) * _ENTRY.size)
                   for n in range(first, head)]
        lapped = self._get(line, "head") - HISTORY - first
        if lapped > 0:  # the writer lapped us while we read: drop what may be overwritten
            entries = entries[lapped:]
        return [e for e in entries if e[0] >= since_ns]

    def wired_to(self, line: int) -> List[int]:
        group = self._get(line, "group")
        if group < 0:
            return []
        return [o for o in range(NUM_LINES) if o != line and self._get(o, "group") == group]

    # ---- driving from outside ----------------------------------------------
    def drive(self, line: int, level: Optional[int]) -> None:
        """Apply *level* (0/1) to the line from outside, or None to let go."""
        self._set(line, "drive", NO_DRIVE if level is None else (1 if level else 0))
        self.notify(line)
        self._notify_wire(line)

    def wire_drive(self, line: int, level: Optional[int]) -> None:
        """A chip's output wired to *line* (an expander's INT) drives *level*,
        or lets go (None); nothing happens, and no edge is told, if unchanged."""
        want = NO_DRIVE if level is None else (1 if level else 0)
        if self._get(line, "drive") != want:
            self.drive(line, level)

    def wire(self, lines: Sequence[int]) -> None:
        """Join *lines* with a jumper wire (an output then drives the others)."""
        lines = sorted(set(lines))
        if len(lines) < 2:
            raise BadArgument("a wire joins at least two different pins")
        for line in lines:
            self._leave_group(line)
        used = {self._get(other, "group") for other in range(NUM_LINES)}
        group = min(g for g in range(NUM_LINES) if g not in used)
        for line in lines:
            self._set(line, "group", group)
        for line in lines:
            self.notify(line)

    def unwire(self, line: int) -> None:
        """Take *line* off its wire (a wire left with one line is removed)."""
        members = [line] + self.wired_to(line)
        self._leave_group(line)
        for member in members:
            self.notify(member)

    def _leave_group(self, line: int) -> None:
        others = self.wired_to(line)
        for member in [line] + (others if len(others) == 1 else []):
            self._set(member, "group", -1)

    def echo(self, trigger: int, echo: Optional[int], width_ns: int = 0) -> None:
        """Fit an ultrasonic sensor: each time *trigger* falls after a pulse,
        *echo* goes high for *width_ns* (None removes it)."""
        if echo is not None and (echo == trigger or width_ns <= 0):
            raise BadArgument("an echo needs another pin and a width above 0")
        self._set(trigger, "echo_to", -1 if echo is None else echo)
        self._set(trigger, "echo_ns", 0 if echo is None else int(width_ns))

    def notify(self, line: int, t_ns: Optional[int] = None, level: Optional[int] = None) -> None:
        """Tell the line's worker its input level may have changed."""
        if not self._wake:
            return  # closed: no worker is left to tell
        t_ns = time.monotonic_ns() if t_ns is None else t_ns
        record = _EDGE.pack(self.level(line, t_ns) if level is None else level, t_ns)
        try:
            os.write(self._wake[line][1], record)
        except BlockingIOError:
            pass  # the reader is far behind; it re-reads the level when it wakes

    # ---- used by the line's own worker -------------------------------------
    def set_function(self, line: int, function: int) -> None:
        self._set(line, "function", function)
        if function != OUTPUT:
            self._set(line, "frequency", 0.0)
        self._notify_wire(line)

    def set_pull(self, line: int, pull: int) -> None:
        self._set(line, "pull", pull)
        self.notify(line)
        self._notify_wire(line)

    def set_frequency(self, line: int, frequency: Optional[float]) -> None:
        self._set(line, "frequency", frequency or 0.0)

    def set_output(self, line: int, value: float) -> None:
        """Drive *value* on an output line and record it in the history."""
        mem, start = self._mem, line * _LINE_SIZE
        _, _, _, group, echo, old, _, head, echo_ns, _, _ = _LINE.unpack_from(mem, start)
        if value == old and head:
            return
        t_ns = time.monotonic_ns()
        base = _HISTORY_OFFSET + line * HISTORY * _ENTRY.size
        _ENTRY.pack_into(mem, base + (head % HISTORY) * _ENTRY.size, t_ns, value)
        _VALUE.pack_into(mem, start + _VALUE_AT, value)
        _HEAD.pack_into(mem, start + _HEAD_AT, head + 1)
        if group >= 0:
            self._notify_wire(line, t_ns)
        if echo >= 0 and old >= 0.5 > value:  # the trigger fell: the sensor answers
            start = t_ns + ECHO_DELAY_NS
            end = start + echo_ns
            self._set(echo, "window_end", 0)
            self._set(echo, "window_start", start)
            self._set(echo, "window_end", end)
            self.notify(echo, start, level=1)
            self.notify(echo, end, level=0)

    def output_frequency(self, line: int) -> Optional[float]:
        """An output line's PWM frequency (0.0: none); None if the line is no output."""
        record = _LINE.unpack_from(self._mem, line * _LINE_SIZE)
        return record[6] if record[0] == OUTPUT else None

    def _notify_wire(self, line: int, t_ns: Optional[int] = None) -> None:
        for other in self.wired_to(line):
            self.notify(other, t_ns)

    def wake_fd(self, line: int) -> int:
        """The read end of the line's wake pipe (edge records)."""
        return self._wake[line][0]

    @staticmethod
    def read_edges(fd: int) -> List[Tuple[int, int]]:
        """Drain a wake pipe: the ``(level, t_ns)`` records waiting in it."""
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 65536 - 65536 % _EDGE.size)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        return [_EDGE.unpack_from(data, i) for i in range(0, len(data) - len(data) % _EDGE.size, _EDGE.size)]

    def close(self) -> None:
        """Close the wake pipes (the levels and histories stay readable)."""
        for r, w in self._wake:
            for fd in (r, w):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake = []


class SimHeader:
    """The simulated board seen through the 40-pin header (board numbers).

    What tests and users hold (``Server.sim``): every method takes board pin
    numbers or pin strings (``7``, ``"GPIO4"``), like the rest of remoteio.

    >>> header = SimHeader(SimBoard())
    >>> header.drive(11, 1); header.level("GPIO17")
    1
    """

    def __init__(self, board: SimBoard):
        self.board = board

    @staticmethod
    def _line(pin) -> int:
        return BOARD_TO_BCM[board_pin(pin)]

    def level(self, pin) -> int:
        """The digital level on the pin now (an expander's pin too: ``"mcp0:A3"``)."""
        if is_expander_spec(pin):
            chip, bit = self.board.chips.pin(pin)
            return chip.pin_levels()[bit]
        return self.board.level(self._line(pin))

    def value(self, pin) -> float:
        """What the pin's output drives (0..1)."""
        if is_expander_spec(pin):
            return float(self.level(pin))
        return self.board.value(self._line(pin))

    def function(self, pin) -> str:
        """``released``, ``input`` or ``output``."""
        if is_expander_spec(pin):  # an input until its chip makes it an output (IODIR, a latch 0)
            chip, bit = self.board.chips.pin(pin)
            return "input" if chip.is_input(bit) else "output"
        return self.board.function(self._line(pin))

    def frequency(self, pin) -> Optional[float]:
        """The pin's PWM frequency (None: no PWM)."""
        return self.board.frequency(self._line(pin))

    def pull(self, pin) -> str:
        return self.board.pull(self._line(pin))

    def history(self, pin, since_ns: int = 0) -> List[Tuple[int, float]]:
        """Every change of the pin's output: ``[(t_ns, value), ...]`` (an
        expander's pin: every change of its level)."""
        if is_expander_spec(pin):
            return self.board.chips.history(pin, since_ns)
        return self.board.history(self._line(pin), since_ns)

    def drive(self, pin, level: Optional[int]) -> None:
        """Apply a level from outside (None: let go)."""
        if is_expander_spec(pin):
            chip, bit = self.board.chips.pin(pin)
            chip.drive_input(bit // 8, bit % 8, level)
            return
        self.board.drive(self._line(pin), level)

    def wire(self, *pins) -> None:
        """Join pins with a jumper wire."""
        self.board.wire([self._line(p) for p in pins])

    def unwire(self, pin) -> None:
        self.board.unwire(self._line(pin))

    def echo(self, trigger, echo, width_us: float) -> None:
        """An ultrasonic distance sensor (HC-SR04): whenever *trigger* falls
        after a pulse, *echo* goes high for *width_us* microseconds (for
        gpiozero's DistanceSensor: distance = width × 343 m/s ÷ 2)."""
        self.board.echo(self._line(trigger), self._line(echo), int(width_us * 1000))

    def wait_for(self, pin, value: float, timeout: float = 5.0, *, what: str = "value") -> bool:
        """Wait (polling every millisecond, at most *timeout* s) until the
        pin's ``value`` (or ``level``) equals *value*; False on timeout."""
        read = self.value if what == "value" else self.level
        deadline = time.monotonic() + timeout
        while read(pin) != value:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)
        return True
