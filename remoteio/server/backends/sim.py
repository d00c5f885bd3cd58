"""The simulated backend: a gpiozero pin factory over :class:`SimBoard`.

Pin workers drive simulated pins through the same gpiozero ``Pin`` API as
real ones (function, state, pull, frequency, bounce, edges, when_changed),
so everything above the backend is identical on a laptop and on a Pi.

Edge detection follows gpiozero's documented bounce rule: an edge is
reported at once, further edges within ``bounce`` seconds are absorbed, and
if the level at the end of that window differs from the last one reported,
that change is reported too (so the reported state never stays wrong).
"""
from __future__ import annotations

import logging
import select
import threading
import time
from typing import List, Optional, Tuple

from gpiozero.exc import (
    PinFixedPull, PinInvalidBounce, PinInvalidEdges, PinInvalidFunction,
    PinInvalidPull, PinInvalidState, PinPWMFixedValue, PinSetInput,
)
from gpiozero.pins.pi import PiFactory, PiPin

from .simboard import INPUT, OUTPUT, PULL_CODES, PULL_NAMES, RELEASED, SimBoard
from . import SIM_REVISION, Backend, KnownPins

log = logging.getLogger(__name__)

_EDGES = ("both", "rising", "falling", "none")


class SimFactory(KnownPins, PiFactory):
    """gpiozero pin factory for the simulated board (one per worker process)."""

    def __init__(self, board: SimBoard, revision: int):
        super().__init__()
        self.board = board
        self._revision = revision
        self.pin_class = SimPin

    def _get_revision(self) -> int:
        return self._revision

    @staticmethod
    def ticks() -> float:
        return time.monotonic()

    @staticmethod
    def ticks_diff(later: float, earlier: float) -> float:
        return later - earlier


class SimPin(PiPin):
    """One simulated line, as gpiozero sees it."""

    def __init__(self, factory: SimFactory, info):
        super().__init__(factory, info)
        self.board = factory.board
        self.line = self._number
        self._bounce: Optional[float] = None
        self._edges = "both"
        self._watcher: Optional[_EdgeWatcher] = None
        self.board.set_function(self.line, INPUT)
        self.board.set_pull(self.line, PULL_CODES[info.pull or "floating"])

    def close(self) -> None:
        # a released line floats like an input; its last output value stays
        # in the history (the worker drove the pin's safe value before this)
        self.when_changed = None
        self.board.set_function(self.line, RELEASED)

    # function ---------------------------------------------------------------
    def _get_function(self) -> str:
        return "output" if self.board.function(self.line) == "output" else "input"

    def _set_function(self, value: str) -> None:
        if value not in ("input", "output"):
            raise PinInvalidFunction(f'invalid function "{value}" for pin {self!r}')
        self.board.set_function(self.line, OUTPUT if value == "output" else INPUT)

    # state ------------------------------------------------------------------
    def _get_state(self):
        if self._get_function() == "output":
            value = self.board.value(self.line)
            return value if self.board.frequency(self.line) else bool(value >= 0.5)
        return bool(self.board.level(self.line))

    def _set_state(self, value) -> None:
        frequency = self.board.output_frequency(self.line)  # one read of the line's record
        if frequency is None:
            raise PinSetInput(f"cannot set state of input pin {self!r}")
        if frequency:
            if not 0 <= value <= 1:
                raise PinInvalidState(f'invalid state "{value}" for pin {self!r}')
            self.board.set_output(self.line, float(value))
        else:
            self.board.set_output(self.line, 1.0 if value else 0.0)

    # pull -------------------------------------------------------------------
    def _get_pull(self) -> str:
        return PULL_NAMES[PULL_CODES.get(self.board.pull(self.line), 0)]

    def _set_pull(self, value: str) -> None:
        if self._get_function() != "input":
            raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
        if self.info.pull not in (value, ""):
            raise PinFixedPull(f"{self!r} has a physical pull-{self.info.pull} resistor")
        if value not in PULL_CODES:
            raise PinInvalidPull(f'invalid pull "{value}" for pin {self!r}')
        self.board.set_pull(self.line, PULL_CODES[value])

    # PWM ----------------------------------------------------------------------
    def _get_frequency(self) -> Optional[float]:
        return self.board.frequency(self.line)

    def _set_frequency(self, value: Optional[float]) -> None:
        if value is not None and value > 0:
            if self._get_function() != "output":
                raise PinPWMFixedValue(f"cannot start PWM on input pin {self!r}")
            self.board.set_frequency(self.line, float(value))
        elif self.board.frequency(self.line):
            self.board.set_frequency(self.line, None)
            self.board.set_output(self.line, 0.0)

    # edges --------------------------------------------------------------------
    def _get_bounce(self) -> Optional[float]:
        return self._bounce

    def _set_bounce(self, value: Optional[float]) -> None:
        if value is not None and value < 0:
            raise PinInvalidBounce("bounce must be 0 or greater")
        self._bounce = value or None

    def _get_edges(self) -> str:
        return self._edges

    def _set_edges(self, value: str) -> None:
        if value not in _EDGES:
            raise PinInvalidEdges(f'invalid edges "{value}" for pin {self!r}')
        self._edges = value

    def _enable_event_detect(self) -> None:
        self._watcher = _EdgeWatcher(self)
        self._watcher.start()

    def _disable_event_detect(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def catch_up(self) -> None:
        """Tell now the edges that the watcher thread has yet to read (see
        :meth:`_EdgeWatcher.catch_up`); nothing while unwatched."""
        watcher = self._watcher
        if watcher is not None:
            watcher.catch_up()

    def fire(self, level: int, t_ns: int) -> None:
        edges = self._edges
        if edges == "both" or edges == ("rising" if level else "falling"):
            self._call_when_changed(t_ns / 1e9, bool(level))


class _EdgeWatcher(threading.Thread):
    """Reads a line's edge records and fires the pin's ``when_changed``."""

    def __init__(self, pin: SimPin):
        super().__init__(name=f"sim-edges-{pin.line}", daemon=True)
        self.pin = pin
        self.board = pin.board
        self.fd = self.board.wake_fd(pin.line)
        self._stopping = False
        # the records are taken by this thread or by the worker's own (catch_up), one at a time
        self._lock = threading.Lock()
        self._window_end: Optional[int] = None  # bounce window: absorb edges until then
        SimBoard.read_edges(self.fd)  # stale records from before we watched
        self.reported = self.board.level(pin.line)

    def stop(self) -> None:
        self._stopping = True
        self.board.notify(self.pin.line)
        if threading.current_thread() is not self:
            self.join(timeout=2.0)

    def catch_up(self) -> None:
        """Tell the edges waiting in the pipe now, on the caller's thread: a
        worker does before its tasks, so that an edge made before a task (a
        ``sim drive``) is told before that task's reply (a read of the new level)."""
        with self._lock:
            if self._stopping:
                return
            opened = self._window_end is None
            self._take(SimBoard.read_edges(self.fd))
            if opened and self._window_end is not None:
                # a bounce window opened here: the edge thread may be asleep with no timeout
                # (its wake-up for these records found them gone); a record of the level now,
                # absorbed by the window, wakes it to time the window's end
                self.board.notify(self.pin.line)

    def run(self) -> None:
        poller = select.poll()  # millisecond timeouts are plenty for bounce windows
        poller.register(self.fd, select.POLLIN)
        while not self._stopping:
            window_end, timeout = self._window_end, None
            if window_end is not None:
                timeout = max(0.0, (window_end - time.monotonic_ns()) / 1e6)
            readable = poller.poll(timeout)
            with self._lock:
                if self._stopping:
                    break
                self._take(SimBoard.read_edges(self.fd) if readable else [])

    def _take(self, edges: List[Tuple[int, int]]) -> None:
        bounce_ns = int((self.pin.bounce or 0) * 1e9)
        for level, t_ns in edges:
            if self._window_end is not None and t_ns < self._window_end:
                continue  # a bounce: absorbed
            self._window_end = None
            if level != self.reported:
                self._report(level, t_ns)
                if bounce_ns:
                    self._window_end = t_ns + bounce_ns
        now = time.monotonic_ns()
        if self._window_end is not None and now >= self._window_end:
            # end of a bounce window: make sure the settled level was told
            self._window_end = None
            level = self.board.level(self.pin.line)
            if level != self.reported:
                self._report(level, now)
                self._window_end = now + bounce_ns if bounce_ns else None
        elif self._window_end is None and edges and edges[-1][1] <= now:
            # records dropped by a full pipe: catch up with the real level
            # (not after records of the future: an echo already scheduled)
            level = self.board.level(self.pin.line)
            if level != self.reported:
                self._report(level, now)

    def _report(self, level: int, t_ns: int) -> None:
        self.reported = level
        try:
            self.pin.fire(level, t_ns)
        except Exception:  # a broken callback must not end edge detection
            log.exception("edge callback failed on GPIO%d", self.pin.line)


class SimBackend(Backend):
    """The simulated board: every machine has one (see :class:`SimBoard`)."""

    name = "sim"

    def __init__(self, revision: Optional[int] = None):
        super().__init__(SIM_REVISION if revision is None else revision)
        self.sim = SimBoard()

    def detect_revision(self) -> int:
        return SIM_REVISION

    def make_factory(self) -> SimFactory:
        factory = SimFactory(self.sim, self.revision)
        factory.shared_board_info = self.pi_board_info()  # built before the fork
        factory.known_pins = self.known_pins()
        return factory
