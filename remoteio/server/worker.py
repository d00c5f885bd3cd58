"""A pin worker: the process that owns one pin and runs its tasks.

The worker blocks in ``select`` on its task pipe, with a timeout that is the
next moment its running job needs it (a blink edge, the end of a timed task):
it never spins, and its timing has microsecond resolution. Messages from the
router come in batches; every request in a batch gets exactly one reply, all
sent back in one message.

Modes (shared/DESIGN.md, "Task semantics"):

* ``wait``: a *timed* task holds the pin's queue until it ends; later tasks,
  config changes and ``close`` wait their turn. An untimed task is done once
  applied (a blink keeps going until the next task replaces it).
* ``nowait``: every task starts at once and cuts short what is running.

Reads and state queries are answered at once in both modes. Server shutdown,
the loss of the server (end of file on the task pipe) and safety actions
preempt everything and leave the pin in its safe state (off, released).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..errors import ServerBusy, ServerError, ShuttingDown
from ..protocol import writing
from .driver import PinDriver, translate
from .jobs import Job, make_job

log = logging.getLogger(__name__)

DEFERRED = object()  # a handler that replies later (sync)
TASK_OPS = ("on", "off", "value", "blink", "pulse")
QUEUED_OPS = TASK_OPS + ("close", "input", "output")

Reply = Tuple[Optional[int], Any, bytes]  # (seq, conn id or ids, frame)


class PinWorker:
    def __init__(self, board: int, bcm: int, mode: str, backend, status, tasks, replies,
                 max_queue: int = 1000):
        self.board = board
        self.mode = mode
        self.status = status
        self.tasks = tasks
        self.replies = replies
        self.max_queue = max_queue
        self.driver = PinDriver(backend, bcm, self._on_edge)
        self.job: Optional[Job] = None
        self.pending: Deque[Tuple[str, Dict[str, Any]]] = deque()
        self.syncs: List[Tuple[int, int, str]] = []
        self.watchers: Dict[int, None] = {}
        self.event_seq = 0
        self.outbox: List[Reply] = []
        self.send_lock = threading.Lock()
        self.running = True
        self._current: Tuple[int, int, str] = (0, 0, "null")
        self.handlers: Dict[str, Callable[[str, Dict[str, Any]], Any]] = {
            "open": self._open, "read": self._read, "state": self._state,
            "sync": self._sync, "watch": self._watch, "unwatch": self._unwatch,
            **{op: self._queued for op in QUEUED_OPS},
        }

    # ---- main loop -----------------------------------------------------------
    def run(self) -> None:
        wait = _waiter(self.tasks.fileno())
        try:
            while self.running:
                timeout = None
                if self.job is not None:
                    wake = self.job.wake_at(time.monotonic())
                    if wake is not None:
                        timeout = max(0.0, wake - time.monotonic())
                if wait(timeout):
                    self._receive()
                self._advance()
                self._flush()
        finally:
            self.driver.release()
            self._post_status()

    def _receive(self) -> None:
        try:
            batches = self.tasks.receive()
        except (EOFError, OSError):
            log.warning("pin %d: the server is gone; pin made safe", self.board)
            self._stop()
            return
        for batch in batches:
            for message in batch:
                self._dispatch(message)
                if not self.running:
                    return

    def _dispatch(self, message: tuple) -> None:
        kind = message[0]
        if kind == "req":
            _, seq, conn, id_json, op, args = message
            self._request(seq, conn, id_json, op, args)
        elif kind == "gone":
            _, conn, owned, policy = message
            self.watchers.pop(conn, None)
            self._update_watching()
            if owned:
                self._enqueue("close", {"policy": policy}) if policy == "finish" else self._safe_now()
        elif kind == "safe":  # after a worker died: its pin may still be driven
            if message[1]:
                self.driver.drive(0.0, False)
            self._safe_now()
        elif kind == "stop":
            self._stop()

    def _request(self, seq: int, conn: int, id_json: str, op: str, args: Dict[str, Any]) -> None:
        self._current = (seq, conn, id_json)
        try:
            result = self.handlers[op](op, args)
        except ServerError as exc:
            self.outbox.append((seq, conn, writing.error_from(exc, id_json)))
            return
        except Exception as exc:
            log.exception("pin %d: %s failed", self.board, op)
            self.outbox.append((seq, conn, writing.error_from(translate(exc), id_json)))
            return
        if result is not DEFERRED:
            self.outbox.append((seq, conn, writing.ok(id_json, result)))

    # ---- queue semantics -----------------------------------------------------
    def _holding(self) -> bool:
        """Does the running job hold back queued work (a timed task, wait mode)?"""
        return self.mode == "wait" and self.job is not None and self.job.timed

    def _busy(self) -> bool:
        """Is work still to be done on this pin (what ``sync`` waits for)?"""
        return bool(self.pending) or (self.job is not None and self.job.timed)

    def _queued(self, op: str, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if op in TASK_OPS:
            self.driver.check_output()
        elif op == "input":
            self.driver.check_input(args["pull"])
        return self._enqueue(op, args)

    def _enqueue(self, op: str, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if self._holding() or self.pending:
            if len(self.pending) >= self.max_queue:
                raise ServerBusy(f"pin {self.board} has {len(self.pending)} tasks queued")
            self.pending.append((op, args))
            return {"queued": len(self.pending)}
        self._start(op, args)
        return None

    def _start(self, op: str, args: Dict[str, Any]) -> None:
        now = time.monotonic()
        if op in TASK_OPS:
            job = make_job(op, args, now)
            self._apply(job.level_at(now), job.pwm, now)
            self.job = job  # only once it runs: a refused task leaves nothing behind
        elif op == "close":
            self._close()
        elif op == "input":
            self.job = None
            self.driver.make_input(args["pull"], args["bounce_ms"])
        elif op == "output":
            self.job = None
            self.driver.make_output()

    def _advance(self) -> None:
        """Step the running job; start queued work the job no longer holds up."""
        while True:
            now = time.monotonic()
            job = self.job
            if job is not None:
                try:
                    if job.until is not None and now >= job.until:
                        self.job = None
                        self._apply(0.0, False, now)
                    else:
                        self._apply(job.level_at(now), job.pwm, now)
                except Exception as exc:  # the pin refused: drop the job, keep serving
                    log.warning("pin %d: %s stopped: %s", self.board, job.name, exc)
                    self.job = None
            if self._holding() or not self.pending:
                break
            op, args = self.pending.popleft()
            try:
                self._start(op, args)
            except Exception as exc:
                log.warning("pin %d: queued %s failed: %s", self.board, op, exc)
        if self.syncs and not self._busy():
            for seq, conn, id_json in self.syncs:
                self.outbox.append((seq, conn, writing.ok(id_json)))
            self.syncs = []

    def _apply(self, level: float, pwm: bool, now: float) -> None:
        if self.driver.drive(level, pwm) and self.watchers:
            self._emit(int(level >= 0.5) if not pwm else level, time.monotonic_ns())

    def _close(self) -> None:
        self.job = None
        self.driver.release()
        if self.watchers:
            frame = writing.event("closed", {"pin": self.board})
            self.outbox.append((None, tuple(self.watchers), frame))
            self.watchers.clear()
            self.driver.watch(False)

    def _safe_now(self) -> None:
        self.pending.clear()
        self._close()

    def _stop(self) -> None:
        for seq, conn, id_json in self.syncs:
            self.outbox.append((seq, conn, writing.error_from(ShuttingDown("server stopping"), id_json)))
        self.syncs = []
        self._safe_now()
        self.running = False

    # ---- immediate operations ------------------------------------------------
    def _open(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        self.driver.open()
        return {"pin": self.board, "gpio": self.driver.bcm, "mode": self.driver.mode}

    def _read(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        return {"value": self.driver.read()}

    def _state(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        job, now = self.job, time.monotonic()
        state = {
            "pin": self.board, "gpio": self.driver.bcm, "mode": self.driver.mode,
            "value": self.driver.read() if self.driver.mode != "released" else None,
            "task": job.name if job else None,
            "remaining_ms": round((job.until - now) * 1000, 3) if job and job.until else None,
            "queue": len(self.pending), "watchers": len(self.watchers),
            "pull": self.driver.pull if self.driver.mode == "input" else None,
            "bounce_ms": self.driver.bounce_ms if self.driver.mode == "input" else None,
            "frequency": self.driver.frequency,
        }
        return state

    def _sync(self, op: str, args: Dict[str, Any]) -> Any:
        if self._busy():
            self.syncs.append(self._current)
            return DEFERRED
        return None

    def _watch(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        conn = self._current[1]
        self.driver.open()
        self.watchers[conn] = None
        self._update_watching()
        return {"value": self.driver.read(), "seq": self.event_seq}

    def _unwatch(self, op: str, args: Dict[str, Any]) -> None:
        self.watchers.pop(self._current[1], None)
        self._update_watching()
        return None

    def _update_watching(self) -> None:
        self.driver.watch(bool(self.watchers))

    # ---- events and replies --------------------------------------------------
    def _on_edge(self, level: int, t_ns: int) -> None:
        """Called by the backend's edge thread for an input change."""
        self._emit(level, t_ns, send_now=True)

    def _emit(self, value: Any, t_ns: int, send_now: bool = False) -> None:
        targets = tuple(self.watchers)
        if not targets:
            return
        with self.send_lock:
            self.event_seq += 1
            frame = writing.event("change", {
                "pin": self.board, "value": value,
                "edge": "rising" if value else "falling", "ts": t_ns, "seq": self.event_seq})
            if send_now:
                self._send([(None, targets, frame)])
            else:
                self.outbox.append((None, targets, frame))

    def _flush(self) -> None:
        self._post_status()
        if self.outbox:
            outbox, self.outbox = self.outbox, []
            with self.send_lock:
                self._send(outbox)

    def _send(self, items: List[Reply]) -> None:
        try:
            self.replies.send(items)
        except OSError:
            self.running = False  # the server is gone; the loop ends safely

    def _post_status(self) -> None:
        job = self.job
        self.status.post(
            self.board, pid=os.getpid(),
            function=self.driver.mode if self.driver.mode in ("input", "output") else
            ("released" if self.driver.mode == "released" else "input"),
            task=job.name if job else "", watchers=len(self.watchers),
            queue=len(self.pending), value=self.driver.level,
            ends_ns=int(job.until * 1e9) if job and job.until else 0)


def _waiter(fd: int) -> Callable[[Optional[float]], bool]:
    """A function that waits until *fd* is readable or *timeout* seconds pass.

    ``select`` takes microsecond timeouts (``poll`` and ``epoll`` round to
    milliseconds, which would make timed tasks late) but only file numbers
    below FD_SETSIZE; a worker of a server with very many open files falls
    back to ``poll``."""
    if fd >= 1024:
        low = os.dup(fd)  # the lowest free number
        if low < 1024:
            fd = low
        else:
            os.close(low)
            log.warning("file number %d too high for select; timing falls back to 1 ms", fd)
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return lambda timeout: bool(poller.poll(None if timeout is None else timeout * 1000))
    return lambda timeout: bool(select.select([fd], [], [], timeout)[0])


def worker_main(board: int, bcm: int, mode: str, backend, status, tasks, replies,
                foreign_fds: List[int]) -> None:
    """Entry point of a pin worker process (forked by the router)."""
    _drop_inherited(foreign_fds)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    signal.signal(signal.SIGTERM, _exit_on_signal)
    PinWorker(board, bcm, mode, backend, status, tasks, replies).run()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # unwinds through run(), which makes the pin safe


def _drop_inherited(foreign_fds: List[int]) -> None:
    """Let go of what the fork copied from the server: its sockets (the
    listening one above all) and the pipes of the other workers (whose end of
    file must mean "the server is gone"). The numbers are pointed at
    /dev/null rather than closed, so a stale object closing its old number
    later cannot close something of ours."""
    import stat
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
            fd = int(name)
            try:
                if fd > 2 and fd != devnull and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd)
            except OSError:
                pass
        for fd in foreign_fds:
            try:
                os.dup2(devnull, fd)
            except OSError:
                pass
    finally:
        os.close(devnull)
