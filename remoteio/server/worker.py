"""A pin worker: the process that owns one pin and runs its tasks.

The worker blocks in ``select`` on its task pipe, with a timeout that is the
next moment it is needed (a blink edge, the end of a timed task, a lease
running out): it never spins, and its timing has microsecond resolution.
Messages from the router come in batches; every request gets exactly one
reply, and all replies of a batch go back in one message.

Modes (shared/DESIGN.md, "Task semantics"):

* ``wait``: a *timed* task holds the pin's queue until it ends; later tasks,
  config changes and ``close`` wait their turn. An untimed task is done once
  applied (a blink keeps going until the next task replaces it).
* ``nowait``: every task starts at once and cuts short what is running.

Reads and state queries are answered at once in both modes. Server shutdown,
the loss of the server (end of file on the task pipe) and safety actions (a
lease running out) preempt everything; the pin then goes to its safe value.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..config import PinRule
from ..errors import ServerBusy, ServerError, ShuttingDown
from ..protocol import writing
from .driver import PinDriver, translate
from .jobs import Job, make_job
from .lease import Lease, renew, start_lease

log = logging.getLogger(__name__)

DEFERRED = object()  # a handler that replies later (sync)
TASK_OPS = ("on", "off", "value", "blink", "pulse", "set")
QUEUED_OPS = TASK_OPS + ("close", "input", "output", "setup")

Reply = Tuple[Optional[int], Any, bytes]  # (seq, conn id or ids, frame)


class PinWorker:
    def __init__(self, board: int, bcm: int, mode: str, backend, status, tasks, replies,
                 rule: PinRule = PinRule(), max_queue: int = 1000):
        self.board = board
        self.mode = mode
        self.status = status
        self.tasks = tasks
        self.replies = replies
        self.safe_value = float(rule.safe_value)
        self.max_queue = max_queue
        self.driver = PinDriver(backend, bcm, self._on_edge)
        self.job: Optional[Job] = None
        self.lease: Optional[Lease] = None
        self.pending: Deque[Tuple[str, Dict[str, Any], int]] = deque()
        self.syncs: List[Tuple[int, int, str]] = []
        self.watchers: Dict[int, None] = {}
        self.event_seq = 0
        self.outbox: List[Reply] = []
        self.send_lock = threading.Lock()
        self.running = True
        self.pid = os.getpid()
        self._current: Tuple[int, int, str] = (0, 0, "null")
        self.handlers: Dict[str, Callable[[str, Dict[str, Any]], Any]] = {
            "open": self._open, "read": self._read, "state": self._state,
            "sync": self._sync, "watch": self._watch, "unwatch": self._unwatch,
            **{op: self._queued for op in QUEUED_OPS},
        }

    # ---- main loop -----------------------------------------------------------
    def run(self, wait: Callable[[Optional[float]], bool]) -> None:
        """Serve until stopped; *wait(timeout)* blocks until the task pipe is
        readable (True) or the timeout passes (False)."""
        try:
            while self.running:
                if wait(self._timeout()):
                    self._receive()
                self._advance()
                self._flush()
        finally:
            self._make_safe()
            self._post_status()

    def _timeout(self) -> Optional[float]:
        now = time.monotonic()
        wakes = [self.lease.deadline] if self.lease else []
        if self.job is not None:
            wake = self.job.wake_at(now)
            if wake is not None:
                wakes.append(wake)
        return max(0.0, min(wakes) - time.monotonic()) if wakes else None

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
        elif kind == "gone":  # a connection closed: its watch ends; its pin closes
            _, conn, owned, policy = message
            self.watchers.pop(conn, None)
            self.driver.watch(bool(self.watchers))
            if owned:
                self._enqueue("close", {}, conn) if policy == "finish" else self._safe_now()
        elif kind == "safe":  # after a worker died: its pin may still be driven
            if message[1]:
                self.driver.drive(self.safe_value, False)
            self._safe_now()
        elif kind == "probe":  # the router checks that we are alive
            self.outbox.append((None, "pong", b""))
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
        if op == "setup":
            result = self._enqueue(op, args, self._current[1])
            return result or self._pin_attributes()
        if op in TASK_OPS:
            self.driver.check_output()
            renewed = renew(self.lease, op, args, time.monotonic())
            if renewed is not None:  # the same leased write again: a heartbeat
                self.lease = renewed
                return {"renewed": True}
        elif op == "input":
            self.driver.check_input(args["pull"])
        return self._enqueue(op, args, self._current[1])

    def _enqueue(self, op: str, args: Dict[str, Any], conn: int) -> Optional[Dict[str, Any]]:
        if self._holding() or self.pending:
            if len(self.pending) >= self.max_queue:
                raise ServerBusy(f"pin {self.board} has {len(self.pending)} tasks queued")
            self.pending.append((op, args, conn))
            return {"queued": len(self.pending)}
        self._start(op, args, conn)
        return None

    def _start(self, op: str, args: Dict[str, Any], conn: int) -> None:
        now = time.monotonic()
        if op in TASK_OPS:
            if op == "set" and not self.driver.pwm_configured:
                args = dict(args, state=1.0 if args["state"] else 0.0)  # a digital pin
            job = make_job(op, args, now)
            level_before = self.driver.level
            self._apply(job.level_at(now), job.pwm)
            self.job = job  # only once it runs: a refused task leaves nothing behind
            self.lease = start_lease(self.lease, op, args, now=now, level_before=level_before,
                                     safe_value=self.safe_value, conn=conn)
            return
        self.job, self.lease = None, None
        if op == "close":
            self._close()
        elif op == "input":
            self.driver.make_input(args["pull"], args["bounce_ms"])
        elif op == "output":
            self.driver.make_output()
        elif op == "setup":
            self._setup(args)

    def _setup(self, args: Dict[str, Any]) -> None:
        """gpiozero-level configuration, each part only if given, in order."""
        driver = self.driver
        function, pull = args["function"], args["pull"]
        if function == "output" and (args["state"] is None or args["frequency"]):
            driver.make_output()  # PWM needs an output before its frequency
        elif function == "output" and driver.mode == "input":
            driver.mode = "unset"  # output_with_state: straight to the new level below
        elif function == "input":
            driver.make_input(pull or driver.pull, driver.bounce_ms)
        elif pull is not None:
            driver.set_pull(pull)
        if args["frequency"] is not None:
            driver.set_frequency(args["frequency"])
        if args["state"] is not None:
            state = args["state"] if driver.pwm_configured else float(bool(args["state"]))
            self._apply(state, driver.pwm_configured)
        if args["bounce_ms"] is not None or args["edges"] is not None:
            driver.set_edge_options(args["bounce_ms"], args["edges"])

    def _advance(self) -> None:
        """Step the running job; start queued work the job no longer holds up."""
        if self.lease is not None and time.monotonic() >= self.lease.deadline:
            self._lease_ran_out()
        while True:
            now = time.monotonic()
            job = self.job
            if job is not None:
                try:
                    if job.until is not None and now >= job.until:
                        self.job = None
                        self._apply(0.0, False)
                    else:
                        self._apply(job.level_at(now), job.pwm)
                except Exception as exc:  # the pin refused: drop the job, keep serving
                    log.warning("pin %d: %s stopped: %s", self.board, job.name, exc)
                    self.job = None
            if self._holding() or not self.pending:
                break
            op, args, conn = self.pending.popleft()
            try:
                self._start(op, args, conn)
            except Exception as exc:
                log.warning("pin %d: queued %s failed: %s", self.board, op, exc)
        if self.syncs and not self._busy():
            for seq, conn, id_json in self.syncs:
                self.outbox.append((seq, conn, writing.ok(id_json)))
            self.syncs = []

    def _lease_ran_out(self) -> None:
        """A safety action: it preempts everything, in both modes."""
        lease, self.lease = self.lease, None
        self.pending.clear()
        self.job = None
        level = lease.revert_to
        log.warning("pin %d: lease ran out; reverting to %g", self.board, level)
        try:
            self._apply(level, 0.0 < level < 1.0)
        except Exception as exc:
            log.warning("pin %d: revert failed (%s); releasing it", self.board, exc)
            self._close()
        targets = tuple(set(self.watchers) | {lease.conn})
        frame = writing.event("lease_expired", {"pin": self.board, "value": level})
        self.outbox.append((None, targets, frame))

    def _apply(self, level: float, pwm: bool) -> None:
        if self.driver.drive(level, pwm) and self.watchers:
            self._emit(int(level >= 0.5) if not pwm else level, time.monotonic_ns())

    def _make_safe(self) -> None:
        """The pin's safe state: its safe value, then the line let go."""
        if self.driver.mode == "output":
            try:
                self._apply(self.safe_value, False)
            except Exception:
                log.exception("pin %d: could not drive the safe value", self.board)
        self.driver.release()

    def _close(self, tell_watchers: bool = True) -> None:
        self.job, self.lease = None, None
        self._make_safe()
        if self.watchers and tell_watchers:
            frame = writing.event("closed", {"pin": self.board})
            self.outbox.append((None, tuple(self.watchers), frame))
            self.watchers.clear()
            self.driver.watch(False)

    def _safe_now(self, tell_watchers: bool = True) -> None:
        self.pending.clear()
        self._close(tell_watchers)

    def _stop(self) -> None:
        for seq, conn, id_json in self.syncs:
            self.outbox.append((seq, conn, writing.error_from(ShuttingDown("server stopping"), id_json)))
        self.syncs = []
        self._safe_now(tell_watchers=False)  # the server is going: their connections end too
        self.running = False

    # ---- immediate operations ------------------------------------------------
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
            "queue": len(self.pending), "watchers": len(self.watchers),
            "pull": self.driver.pull if is_input else None,
            "bounce_ms": self.driver.bounce_ms if is_input else None,
            "frequency": self.driver.frequency, "safe_value": self.safe_value,
            "lease": {"revert_to": lease.revert_to,
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
        return None

    def _watch(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        self.driver.open()
        self.watchers[self._current[1]] = None
        self.driver.watch(True)
        return {"value": self.driver.read(), "seq": self.event_seq}

    def _unwatch(self, op: str, args: Dict[str, Any]) -> None:
        self.watchers.pop(self._current[1], None)
        self.driver.watch(bool(self.watchers))
        return None

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
        job, lease, mode = self.job, self.lease, self.driver.mode
        if mode in ("input", "unset"):
            try:
                value = float(self.driver.read())  # what an input reads, not a driven level
            except ServerError:
                value = 0.0
        else:
            value = self.driver.level
        self.status.post(
            self.board, pid=self.pid,
            function=mode if mode in ("input", "output", "released") else "input",
            task=job.name if job else "", watchers=len(self.watchers),
            queue=len(self.pending), value=value,
            ends_ns=int(job.until * 1e9) if job and job.until else 0,
            lease_ns=int(lease.deadline * 1e9) if lease else 0)
