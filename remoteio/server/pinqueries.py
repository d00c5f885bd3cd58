"""A pin's operations answered at once in both modes (open, read, state,
sync, watch) and its events and status."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..errors import ServerError
from ..protocol import writing
from .config import PinRule
from .jobs import Job
from .lease import Lease
from .status import FUNCTIONS, StatusTable

DEFERRED = object()  # a handler that replies later (sync)
NOTHING = object()   # no level a watch's reply gave is waiting for its first event

Queued = Tuple[str, Dict[str, Any], int]  # (op, args, conn)


class PinQueries:
    """The immediate part of a :class:`~.pinmachine.PinMachine` (a mixin):
    what it reads of the machine's state is declared here, the machine sets it."""

    board: Any
    driver: Any
    status: Optional[StatusTable]   # None: its worker posts its status (an expander's pins)
    pid: int
    rule: PinRule
    safe_value: float
    bounded: bool
    job: Optional[Job]
    lease: Optional[Lease]
    pending: Deque[Queued]
    syncs: List[Tuple[int, int, str]]
    failures: Dict[int, ServerError]
    watchers: Dict[int, None]
    event_seq: int
    _reflected: Any                    # a first watch's level until the next event or change
    _last_value: Any                   # the level the last change event (or first watch) told
    _events_lock: "threading.RLock"    # watchers and numbering: the loop and an edge thread
    _current: Tuple[int, int, str]
    event: Callable[..., None]
    _busy: Callable[[], bool]
    _busy_s: Callable[[float], float]

    def _open(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        self.driver.open()
        return {"pin": self.board, "gpio": self.driver.bcm, "mode": self.driver.mode}

    def _read(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        return {"value": self.driver.read()}

    def _state(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        job, lease, now = self.job, self.lease, time.monotonic()
        is_input = self.driver.mode == "input"
        return {
            "pin": self.board, "gpio": self.driver.bcm, "mode": self.driver.mode,
            "value": self.driver.read() if self.driver.mode != "released" else None,
            "task": job.name if job else None,
            "remaining_ms": round((job.until - now) * 1000, 3) if job and job.until else None,
            "busy_ms": round(self._busy_s(now) * 1000, 3),
            "queue": len(self.pending), "watchers": len(self.watchers),
            "pull": self.driver.pull if is_input else None,
            "bounce_ms": self.driver.bounce_ms if is_input else None,
            "frequency": self.driver.frequency, "safe_value": self.safe_value,
            "access": self.rule.access,
            "lease": {"revert_to": self.safe_value if self.bounded else lease.revert_to,
                      "in_ms": round(max(0.0, lease.deadline - now) * 1000, 3)} if lease else None,
        }

    def _pin_attributes(self) -> Dict[str, Any]:
        """What a gpiozero pin factory caches after a setup."""
        driver = self.driver
        return {"function": "output" if driver.mode == "output" else "input",
                "pull": driver.pull, "frequency": driver.frequency,
                "state": driver.read() if driver.mode != "released" else 0}

    def _sync(self, op: str, args: Dict[str, Any]) -> Any:
        if self._busy():
            self.syncs.append(self._current)
            return DEFERRED
        failure = self.failures.pop(self._current[1], None)
        if failure is not None:
            raise failure
        return None

    def _watch(self, op: str, args: Dict[str, Any]) -> Any:
        """Its reply (the level now, the events' number so far) is sent from
        here, under the events' lock, so that an edge thread's next event
        comes after it. The first watch turns edge detection on, then reads:
        an edge between the two is in that read and may still come as an
        event, which would tell the reply's level again (:meth:`_emit`)."""
        seq, conn, id_json = self._current
        self.driver.open()
        with self._events_lock:
            first = not self.watchers
            self.driver.watch(True)
            value = self.driver.read()
            if first:
                self._reflected = self._last_value = value
            self.watchers[conn] = None
            self.reply(seq, writing.ok(id_json, {"value": value, "seq": self.event_seq}))
        return DEFERRED

    def _unwatch(self, op: str, args: Dict[str, Any]) -> None:
        self.watchers.pop(self._current[1], None)
        self.driver.watch(bool(self.watchers))
        return None

    # ---- events and status -----------------------------------------------------
    def _on_edge(self, level: int, t_ns: int) -> None:
        """Called by the backend's edge thread for an input change."""
        self._emit(level, t_ns, now=True)

    def _emit(self, value: Any, t_ns: int, now: bool = False) -> None:
        """A change to tell the watchers, numbered; but not the first one
        after a first watch's reply if it is of the level that reply gave:
        the edge its read already saw (until then nothing else moved the pin:
        each queued operation forgets the reply's level, :attr:`_reflected`)."""
        with self._events_lock:
            targets = tuple(self.watchers)
            reflected, self._reflected = self._reflected, NOTHING
            if not targets or value == reflected:
                return
            self.event_seq += 1  # edges of an input and drives of an output never mix
            # a PWM level is rising or falling against the level told before it (1 -> 0.3 falls)
            rising = value == 1 or (value != 0 and value > self._last_value)
            self._last_value = value
            self.event(targets, writing.event("change", {
                "pin": self.board, "value": value,
                "edge": "rising" if rising else "falling", "ts": t_ns, "seq": self.event_seq}),
                now=now)

    def idle(self) -> None:
        if self.driver.mode in ("input", "unset"):
            try:
                value = float(self.driver.read())  # what an input reads, not a driven level
            except ServerError:
                value = 0.0
        else:
            value = self.driver.level
        if self.status is not None:
            self.post_status(self.status, self.pid, value)

    def post_status(self, status: StatusTable, pid: int, value: float) -> None:
        """What ``info`` shows for this pin, its *value* as its worker reads it."""
        job, lease, mode = self.job, self.lease, self.driver.mode
        status.post(
            self.board, pid=pid,
            function=mode if mode in FUNCTIONS else "unset",
            task=job.name if job else "", watchers=len(self.watchers),
            queue=len(self.pending), value=value,
            ends_ns=int(job.until * 1e9) if job and job.until else 0,
            lease_ns=int(lease.deadline * 1e9) if lease else 0)
