"""The simulated board: 28 GPIO lines in shared memory, observable and drivable.

One :class:`SimBoard` is created by the server before any pin worker is
forked; every worker inherits the same anonymous shared mapping and the same
per-line wake pipes, so a level written by one process is seen by all, and
whoever changes what an input sees (a test, the router, the worker of a wired
output) writes an *edge record* ``(level, t_ns)`` into that input's pipe. The
input's worker reads the records in order, so no edge is lost and each keeps
its exact timestamp.

What the board keeps per line (index = BCM GPIO number):

* ``function``: released, input or output (written by the line's worker)
* ``pull``: floating, up or down
* ``value``: what an output drives (0..1; PWM values in between)
* ``drive``: a level applied from outside (a finger on a button), or none
* ``group``: lines joined by a jumper wire (see :meth:`SimBoard.wire`)
* ``history``: a ring of ``(t_ns, value)`` for every change of an output

Levels of an input, in order of precedence: an outside drive; else an output
on the same wire (high when its value >= 0.5); else the pull (floating reads
low). Timestamps are ``time.monotonic_ns()`` (CLOCK_MONOTONIC), comparable
across processes on one machine.

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

from ..errors import BadArgument
from ..pins import BOARD_TO_BCM, board_pin

NUM_LINES = 28
HISTORY = 4096

RELEASED, INPUT, OUTPUT = 0, 1, 2
FUNCTION_NAMES = {RELEASED: "released", INPUT: "input", OUTPUT: "output"}
FLOATING, PULL_UP, PULL_DOWN = 0, 1, 2
PULL_NAMES = {FLOATING: "floating", PULL_UP: "up", PULL_DOWN: "down"}
PULL_CODES = {name: code for code, name in PULL_NAMES.items()}
NO_DRIVE = -1

# per line: function, pull, drive, group (signed bytes), pad, value, frequency,
# history head (count of entries ever written)
_LINE = struct.Struct("=bbbb4xddQ")
_ENTRY = struct.Struct("=qd")
_EDGE = struct.Struct("=bq")  # one edge record in a wake pipe: level, t_ns
_LINE_OFFSET = 0
_HISTORY_OFFSET = _LINE.size * NUM_LINES


def _line_at(index: int) -> int:
    return _LINE_OFFSET + index * _LINE.size


class SimBoard:
    """28 simulated GPIO lines shared by every process forked after creation."""

    def __init__(self) -> None:
        size = _HISTORY_OFFSET + NUM_LINES * HISTORY * _ENTRY.size
        self._mem = mmap.mmap(-1, size)  # anonymous + MAP_SHARED: seen by forks
        for line in range(NUM_LINES):
            _LINE.pack_into(self._mem, _line_at(line), RELEASED, FLOATING, NO_DRIVE, -1, 0.0, 0.0, 0)
        self._wake: List[Tuple[int, int]] = []
        for _ in range(NUM_LINES):
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._wake.append((r, w))

    # ---- raw line record ---------------------------------------------------
    def _get(self, line: int) -> Tuple[int, int, int, int, float, float, int]:
        return _LINE.unpack_from(self._mem, _line_at(line))

    def _put(self, line: int, function: int, pull: int, drive: int, group: int,
             value: float, frequency: float, head: int) -> None:
        _LINE.pack_into(self._mem, _line_at(line), function, pull, drive, group, value, frequency, head)

    # ---- observing ---------------------------------------------------------
    def function(self, line: int) -> str:
        return FUNCTION_NAMES[self._get(line)[0]]

    def pull(self, line: int) -> str:
        return PULL_NAMES[self._get(line)[1]]

    def value(self, line: int) -> float:
        """What the line's worker drives (0..1), whatever its function."""
        return self._get(line)[4]

    def frequency(self, line: int) -> Optional[float]:
        return self._get(line)[5] or None

    def level(self, line: int) -> int:
        """The digital level on the line: what a voltmeter (or a read) sees."""
        function, pull, drive, group, value = self._get(line)[:5]
        if function == OUTPUT:
            return 1 if value >= 0.5 else 0
        # an input, or a released line: whatever the outside makes of it
        if drive != NO_DRIVE:
            return drive
        if group >= 0:
            for other in self.wired_to(line):
                o_function, _, _, _, o_value = self._get(other)[:5]
                if o_function == OUTPUT:
                    return 1 if o_value >= 0.5 else 0
        return 1 if pull == PULL_UP else 0

    def history(self, line: int, since_ns: int = 0) -> List[Tuple[int, float]]:
        """Changes of the line's output as ``(t_ns, value)``, oldest first."""
        head = self._get(line)[6]
        first = max(0, head - HISTORY)
        base = _HISTORY_OFFSET + line * HISTORY * _ENTRY.size
        entries = [
            _ENTRY.unpack_from(self._mem, base + (n % HISTORY) * _ENTRY.size)
            for n in range(first, head)
        ]
        if self._get(line)[6] - HISTORY > first:
            # the writer lapped us while we read: drop what may be overwritten
            entries = entries[self._get(line)[6] - HISTORY - first:]
        return [e for e in entries if e[0] >= since_ns]

    def wired_to(self, line: int) -> List[int]:
        group = self._get(line)[3]
        if group < 0:
            return []
        return [o for o in range(NUM_LINES) if o != line and self._get(o)[3] == group]

    # ---- driving from outside ----------------------------------------------
    def drive(self, line: int, level: Optional[int]) -> None:
        """Apply *level* (0/1) to the line from outside, or None to let go."""
        rec = list(self._get(line))
        rec[2] = NO_DRIVE if level is None else (1 if level else 0)
        self._put(line, *rec)
        self.notify(line)

    def wire(self, lines: Sequence[int]) -> None:
        """Join *lines* with a jumper wire (an output then drives the others)."""
        lines = sorted(set(lines))
        if len(lines) < 2:
            raise BadArgument("a wire joins at least two different pins")
        for line in lines:
            self._leave_group(line)
        used = {self._get(other)[3] for other in range(NUM_LINES)}
        group = min(g for g in range(NUM_LINES) if g not in used)
        for line in lines:
            rec = list(self._get(line))
            rec[3] = group
            self._put(line, *rec)
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
            rec = list(self._get(member))
            rec[3] = -1
            self._put(member, *rec)

    def notify(self, line: int, t_ns: Optional[int] = None) -> None:
        """Tell the line's worker its input level may have changed."""
        if not self._wake:
            return  # closed: no worker is left to tell
        if t_ns is None:
            t_ns = time.monotonic_ns()
        record = _EDGE.pack(self.level(line), t_ns)
        try:
            os.write(self._wake[line][1], record)
        except BlockingIOError:
            pass  # the reader is far behind; it re-reads the level when it wakes

    # ---- used by the line's own worker -------------------------------------
    def set_function(self, line: int, function: int) -> None:
        rec = list(self._get(line))
        rec[0] = function
        if function != OUTPUT:
            rec[5] = 0.0
        self._put(line, *rec)
        self._notify_wire(line)

    def set_pull(self, line: int, pull: int) -> None:
        rec = list(self._get(line))
        rec[1] = pull
        self._put(line, *rec)
        self.notify(line)

    def set_frequency(self, line: int, frequency: Optional[float]) -> None:
        rec = list(self._get(line))
        rec[5] = frequency or 0.0
        self._put(line, *rec)

    def set_output(self, line: int, value: float) -> None:
        """Drive *value* on an output line and record it in the history."""
        function, pull, drive, group, old, frequency, head = self._get(line)
        if value == old and head:
            return
        t_ns = time.monotonic_ns()
        base = _HISTORY_OFFSET + line * HISTORY * _ENTRY.size
        _ENTRY.pack_into(self._mem, base + (head % HISTORY) * _ENTRY.size, t_ns, value)
        self._put(line, function, pull, drive, group, value, frequency, head + 1)
        if group >= 0:
            self._notify_wire(line, t_ns)

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
        """The digital level on the pin now."""
        return self.board.level(self._line(pin))

    def value(self, pin) -> float:
        """What the pin's output drives (0..1)."""
        return self.board.value(self._line(pin))

    def function(self, pin) -> str:
        """``released``, ``input`` or ``output``."""
        return self.board.function(self._line(pin))

    def pull(self, pin) -> str:
        return self.board.pull(self._line(pin))

    def history(self, pin, since_ns: int = 0) -> List[Tuple[int, float]]:
        """Every change of the pin's output: ``[(t_ns, value), ...]``."""
        return self.board.history(self._line(pin), since_ns)

    def drive(self, pin, level: Optional[int]) -> None:
        """Apply a level from outside (None: let go)."""
        self.board.drive(self._line(pin), level)

    def wire(self, *pins) -> None:
        """Join pins with a jumper wire."""
        self.board.wire([self._line(p) for p in pins])

    def unwire(self, pin) -> None:
        self.board.unwire(self._line(pin))

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
