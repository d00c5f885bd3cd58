"""``info`` answers, computed off the I/O thread and shared for a moment.

What the server is doing is cheap to gather (the router's tables and the
workers' status table) and is taken fresh for every answer; its memory is
not: the proportional set size of every process comes from
``/proc/*/smaps_rollup``, milliseconds each. So a helper thread reads /proc,
at most once per :data:`MEMORY_FRESH_S`, while the ``info`` requests asked
meanwhile wait; and one encoded answer serves every request of the same
moment (one chunk of a read, and at most :data:`ANSWER_FRESH_S`), so a burst
of ``info`` costs one snapshot and one reading of /proc, while an ``info``
sent after a reply came sees what that reply did.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import ServerBusy
from ..protocol import writing
from .wakeup import WakePipe

log = logging.getLogger(__name__)

#: how long one reading of /proc serves later answers (s)
MEMORY_FRESH_S = 1.0
#: how long one encoded answer serves later requests (s): a burst, not a later look
ANSWER_FRESH_S = 0.005
#: ``info`` requests that may wait for one answer
MAX_WAITING = 100_000

Snapshot = Callable[[], Tuple[Dict[str, Any], List[int]]]  # (fields, pids to measure)
Answer = Callable[[int, bytes], None]


class InfoService:
    def __init__(self, snapshot: Snapshot, answer: Answer):
        self.snapshot = snapshot
        self.answer = answer
        self._waiting: List[Tuple[int, str]] = []
        self._memory: Optional[Dict[str, Any]] = None
        self._measured = -1e9
        self._body: Optional[str] = None
        self._made = -1e9
        self._busy = False
        self._jobs: "queue.SimpleQueue[Optional[List[int]]]" = queue.SimpleQueue()
        self._done: "queue.SimpleQueue[Dict[str, Any]]" = queue.SimpleQueue()
        self._wake = WakePipe()
        self._thread: Optional[threading.Thread] = None

    def fileno(self) -> int:
        """Readable when a reading of /proc is done (call :meth:`ready`)."""
        return self._wake.fileno()

    def ask(self, conn: int, id_json: str) -> None:
        """Answer now, or once the memory figure is measured."""
        now = time.monotonic()
        if now - self._measured < MEMORY_FRESH_S:
            self.answer(conn, writing.ok_body(id_json, self._answer(now)))
            return
        if len(self._waiting) >= MAX_WAITING:
            raise ServerBusy(f"{MAX_WAITING} info requests are waiting already")
        self._waiting.append((conn, id_json))
        if not self._busy:
            self._busy = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._measure, name="remoteio-info",
                                                daemon=True)
                self._thread.start()
            self._jobs.put(self.snapshot()[1])

    def _answer(self, now: float) -> str:
        if self._body is None or now - self._made >= ANSWER_FRESH_S:
            fields, _ = self.snapshot()
            fields["memory"] = self._memory
            fields["load"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
            self._body, self._made = writing.body(fields), now
        return self._body

    def moment_ended(self) -> None:
        """The requests read together are routed: the next ``info`` takes a
        fresh snapshot (a change acknowledged meanwhile shows)."""
        self._body = None

    def ready(self) -> None:
        self._wake.drain()
        while True:
            try:
                memory = self._done.get_nowait()
            except queue.Empty:
                return
            self._busy = False
            self._memory, self._measured = memory, time.monotonic()
            self._body = None
            waiting, self._waiting = self._waiting, []
            body = self._answer(self._measured)  # one snapshot for all who waited for it
            for conn, id_json in waiting:
                self.answer(conn, writing.ok_body(id_json, body))

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(2.0)
        self._wake.close()

    # ---- the helper thread ---------------------------------------------------------------
    def _measure(self) -> None:
        while True:
            pids = self._jobs.get()
            if pids is None:
                return
            try:
                memory: Any = {"pss_kib": sum(pss_kib(pid) for pid in pids),
                               "processes": len(pids)}
            except Exception:  # an answer all the same: the waiting requests must end
                log.exception("info: measuring memory failed")
                memory = None
            self._done.put(memory)
            self._wake.wake()


def pss_kib(pid: int) -> int:
    """Proportional set size of a process (shared pages divided among their
    sharers), so the sum over the server's processes is its real footprint."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
