"""An expander's interrupt line: the header pin its INT is wired to, watched in its worker's select.

The expander's worker owns the header pin (the router holds it for the
expander, as a bus holds its pins) and makes it an input with the Pi's
pull-up (the chip's INT is open-drain, active low). Its edges reach the
worker's ``select`` as a descriptor, never through a thread of ours:

* the simulated board: the line's own edge pipe (the records the chip model
  writes when it pulls the line low), read as a pin worker's sim pin reads it;
* gpiod: the line request's event descriptor (:meth:`.driver.PinDriver.event_fds`),
  read in the loop, with the kernel's timestamps;
* a backend that calls back from a thread of its own (lgpio, RPi.GPIO): the
  callback keeps ``(level, t_ns)`` and writes one byte to a pipe the loop waits on.
"""
from __future__ import annotations

import logging
import os
import select
import threading
from typing import List, Tuple

from ..pins import BOARD_TO_BCM
from .backends import Backend

log = logging.getLogger(__name__)


class InterruptLine:
    """Header pin *board* as an input with pull-up whose edges :meth:`edges` returns."""

    def __init__(self, backend: Backend, board: int):
        self.board, self.bcm = board, BOARD_TO_BCM[board]
        self._kept: List[Tuple[int, int]] = []
        self._lock = threading.Lock()
        self._pipe: Tuple[int, int] = (-1, -1)
        self.sim = backend.sim
        if self.sim is not None:
            from .backends.simboard import INPUT, PULL_UP, SimBoard
            self.sim.set_function(self.bcm, INPUT)
            self.sim.set_pull(self.bcm, PULL_UP)
            self._fds: Tuple[int, ...] = (self.sim.wake_fd(self.bcm),)
            SimBoard.read_edges(self._fds[0])   # what was written before we watched
            return
        from .driver import PinDriver
        self.driver = PinDriver(backend, self.bcm, self._edge)
        self.driver.make_input("up", 0.0)
        self.driver.watch(True)
        self._fds = self.driver.event_fds()
        if not self._fds:   # the backend calls back from its own thread
            self._pipe = os.pipe()
            for fd in self._pipe:
                os.set_blocking(fd, False)
            self._fds = (self._pipe[0],)

    def fds(self) -> Tuple[int, ...]:
        return self._fds

    def _edge(self, level: int, t_ns: int) -> None:
        with self._lock:
            self._kept.append((level, t_ns))
        if self._pipe[1] >= 0:
            try:
                os.write(self._pipe[1], b"!")
            except BlockingIOError:
                pass   # the loop has a byte to wake it already

    def edges(self) -> List[Tuple[int, int]]:
        """The ``(level, t_ns)`` edges since the last call (its descriptor was readable)."""
        if self.sim is not None:
            from .backends.simboard import SimBoard
            return SimBoard.read_edges(self._fds[0])
        if self._pipe[0] >= 0:
            try:
                os.read(self._pipe[0], 4096)
            except BlockingIOError:
                pass
        elif select.select(self._fds, (), (), 0)[0]:
            # gpiod: its callbacks run here, in the loop; only when an edge waits, since
            # reading the request's events blocks until one comes (edges() is also asked
            # outside the loop's select, when the worker reads the chip for a new watch)
            self.driver.read_events()
        with self._lock:
            kept, self._kept = self._kept, []
        return kept

    def level(self) -> int:
        """The line's level now (0: an interrupt is asserted)."""
        if self.sim is not None:
            return self.sim.level(self.bcm)
        return int(self.driver.read())

    def close(self) -> None:
        try:
            if self.sim is None:
                self.driver.release()
        except Exception:  # the worker is ending: the line goes with the process anyway
            log.exception("interrupt line pin %d: release failed", self.board)
        for fd in self._pipe:
            if fd >= 0:
                os.close(fd)
        self._pipe = (-1, -1)
