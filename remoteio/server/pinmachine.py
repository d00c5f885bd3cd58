"""One pin's state machine: its queue, jobs, lease and gate (a pin worker's, or an expander pin's).

Messages from the router come in batches; every request gets exactly one
reply. Modes (shared/DESIGN.md, "Task semantics"):

* ``wait``: a *timed* task holds the pin's queue until it ends; later tasks,
  config changes and ``close`` wait their turn. An untimed task is done once
  applied (a blink keeps going until the next task replaces it).
* ``nowait``: every task starts at once and cuts short what is running.

Reads and state queries are answered at once in both modes. Server shutdown,
the loss of the server (end of file on the task pipe) and safety actions (a
lease running out) preempt everything; the pin then goes to its safe value.
Every change the worker makes passes the pin's rules (rules.py) against its
hold clock; queued work that cannot run when its turn comes is reported to
its sender (a ``task_failed`` event, and its next ``sync``): never "ok" and
then nothing.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .config import PinRule
from ..errors import Forbidden, ServerBusy, ServerError, ShuttingDown, WrongMode
from ..pins import describe
from ..protocol import writing
from .driver import translate
from .jobs import Job, Steady, make_job
from .lease import Lease, renew, start_lease
from .messages import Gone, MakeSafe, Pong, Probe, Settings, Stop, Task
from .pinqueries import DEFERRED, NOTHING, PinQueries, Queued
from .status import StatusTable
from .rules import REST_S, HoldClock, bounded, check_hold, steady_level, task_bound

log = logging.getLogger(__name__)

TASK_OPS = ("on", "off", "value", "blink", "pulse", "set")
QUEUED_OPS = TASK_OPS + ("close", "input", "output", "setup")
#: at most one "lease ran out" warning per pin this often (s); the rest are counted
LEASE_LOG_S = 10.0


class PinMachine(PinQueries):
    """One pin's queue, jobs, lease and gate: the state machine of a pin worker,
    which a worker owning several pins (an expander's) runs once per pin.

    The worker it runs in provides :meth:`~.worker.Worker.reply`,
    ``part_reply``, ``event`` and ``message`` (a :class:`~.pinworker.PinWorker` is its own;
    an expander's pins are given their worker's); *pin* is a board number or
    an expander pin's name, *driver* a :class:`~.driver.PinDriver` or
    anything with its methods. The operations answered at once (reads, state,
    sync, watch) and its events are :class:`~.pinqueries.PinQueries`."""

    reply: Callable[[int, bytes], None]
    part_reply: Callable[..., None]
    event: Callable[..., None]
    message: Callable[[Any], None]

    def __init__(self, pin: Any, driver: Any, mode: str, status: Optional[StatusTable],
                 rule: PinRule = PinRule(), max_queue: int = 1000):
        self.board = pin
        self.where = describe(pin)
        self.mode = mode
        self.status = status
        self.hold = HoldClock()
        self._set_rule(rule)
        self.max_queue = max_queue
        self.driver = driver
        self.job: Optional[Job] = None
        self.lease: Optional[Lease] = None
        self.pending: Deque[Queued] = deque()
        # leases that ran out since the last one logged (a client may make a 1 ms lease
        # run out a thousand times a second: one warning per LEASE_LOG_S, with the count)
        self._lease_logged, self._leases_unlogged = -LEASE_LOG_S, 0
        self.syncs: List[Tuple[int, int, str]] = []
        self.failures: Dict[int, ServerError] = {}   # conn -> its queued work that could not run
        self.watchers: Dict[int, None] = {}
        self.event_seq = 0
        self._reflected: Any = NOTHING
        self._last_value: Any = 0.0
        self._events_lock = threading.RLock()
        self.pid = os.getpid()
        self.running = True
        self._current: Tuple[int, int, str] = (0, 0, "null")
        self.handlers: Dict[str, Callable[[str, Dict[str, Any]], Any]] = {
            "open": self._open, "read": self._read, "state": self._state,
            "sync": self._sync, "watch": self._watch, "unwatch": self._unwatch,
            **{op: self._queued for op in QUEUED_OPS},
        }

    def __str__(self) -> str:
        return self.where

    def _set_rule(self, rule: PinRule) -> None:
        self.rule = rule
        self.safe_value = float(rule.safe_value)
        self.bounded = bounded(rule)
        self.hold.rest = min(REST_S, rule.max_hold_ms / 1000.0) if rule.max_hold_ms else REST_S

    # ---- what its worker calls ---------------------------------------------------
    def next_wake(self) -> Optional[float]:
        wake = self.lease.deadline if self.lease else None
        if self.job is not None:
            job_wake = self.job.wake_at(time.monotonic())
            if job_wake is not None and (wake is None or job_wake < wake):
                wake = job_wake
        return wake

    def handle(self, message: Any) -> None:
        if self.lease is not None and time.monotonic() >= self.lease.deadline:
            self._lease_ran_out()  # it fires before anything that came after its deadline
        kind = type(message)
        if kind is Task:
            self._request(message)
        elif kind is Gone:  # a connection closed: its watch ends; its pin closes
            self.watchers.pop(message.conn, None)
            self.driver.watch(bool(self.watchers))
            self.failures.pop(message.conn, None)
            if message.owned:
                if message.policy == "finish":
                    self._enqueue("close", {}, message.conn, bound=False)
                else:
                    self._safe_now()
        elif kind is MakeSafe:  # after a worker died: its pin may still be driven
            if message.was_output:
                self.driver.drive(self.safe_value, False)
            self._safe_now()
        elif kind is Probe:
            self.message(Pong())
        elif kind is Settings:  # the rules were reloaded: from the next change on
            self._set_rule(PinRule(**message.settings["rule"]))
            if self.rule.access != "write":
                self._undriven()
        elif kind is Stop:
            self._stop()

    def event_fds(self) -> Tuple[int, ...]:
        return self.driver.event_fds()

    def service(self, fd: int) -> None:
        self.driver.read_events()

    def catch_up(self) -> None:
        self.driver.catch_up()

    def make_safe(self) -> None:
        """The pin's safe state: its safe value, then the line let go (a pin a reload
        made read-only or unserved is never driven, to its safe value neither)."""
        if self.driver.mode == "output" and self._may_drive:
            try:
                self._apply(self.safe_value, False)
            except Exception:
                log.exception("pin %s: could not drive the safe value", self.board)
        self.driver.release()

    def _request(self, task: Task) -> None:
        self._current = (task.seq, task.conn, task.id_json)
        try:
            result = self.handlers[task.op](task.op, task.args)
        except Exception as exc:
            error = exc if isinstance(exc, ServerError) else translate(exc)
            if not isinstance(exc, ServerError):
                log.exception("pin %s: %s failed", self.board, task.op)
            if task.part:
                self.part_reply(task.seq, (error.code, error.message or error.code,
                                           getattr(error, "detail", None)))
            else:
                self.reply(task.seq, writing.error_from(error, task.id_json))
            return
        if result is DEFERRED:
            return
        if task.part:
            self.part_reply(task.seq, None, (result or {}).get("value"))
        else:
            self.reply(task.seq, writing.ok(task.id_json, result))

    # ---- queue semantics -----------------------------------------------------
    def _holding(self) -> bool:
        """Does the running job hold back queued work (a timed task, wait mode)?"""
        return self.mode == "wait" and self.job is not None and self.job.timed

    def _busy(self) -> bool:
        """Is work still to be done on this pin (what ``sync`` waits for)?"""
        return bool(self.pending) or (self.job is not None and self.job.timed)

    def _busy_s(self, now: float) -> float:
        """Seconds until the running timed task and the queued ones have ended."""
        total = max(0.0, self.job.until - now) if self.job is not None and self.job.until else 0.0
        for op, args, _ in self.pending:
            total += (args.get("time_ms") or 0.0) / 1000.0
        return total

    def _queued(self, op: str, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        conn = self._current[1]
        if op == "setup":
            return self._enqueue(op, args, conn) or self._pin_attributes()
        if op in TASK_OPS:
            self.driver.check_output()
            if self.lease is not None:
                now = time.monotonic()
                renewed = renew(self.lease, op, args, now, safe_value=self.safe_value)
                if renewed is not None:  # the same leased write again: a heartbeat
                    self._gate(op, args, now, back_in=renewed.deadline - now)
                    self.lease = renewed
                    return {"renewed": True}
        elif op == "input":
            self.driver.check_input(self._pull_for(args["pull"]))
        elif op == "close":
            # how a holder lets go and leaves its pin safe: a full queue never
            # refuses it (one close at most beyond the bound)
            return self._enqueue(op, args, conn, bound=self._closing())
        return self._enqueue(op, args, conn)

    def _closing(self) -> bool:
        """Is a close queued (the holder's, or a disconnect's under "finish")?"""
        return any(op == "close" for op, _, _ in self.pending)

    def _enqueue(self, op: str, args: Dict[str, Any], conn: int,
                 bound: bool = True) -> Optional[Dict[str, Any]]:
        if self._holding() or self.pending:
            if bound and len(self.pending) >= self.max_queue:
                raise ServerBusy(f"pin {self.board} has {len(self.pending)} tasks queued")
            if op in TASK_OPS and self._mode_after_queue() == "input":
                raise WrongMode(f"{self.driver.label} will be an input when this {op} runs "
                                "(an input is queued before it); queue 'output' first",
                                detail="PinSetInput")
            self.pending.append((op, args, conn))
            return {"queued": len(self.pending)}
        self._start(op, args, conn, time.monotonic())
        return None

    def _mode_after_queue(self) -> str:
        mode = self.driver.mode
        for op, args, _ in self.pending:
            if op == "input" or (op == "setup" and args["function"] == "input"):
                mode = "input"
            elif op == "close":
                mode = "released"
            elif op in ("output", "setup") or mode != "input":
                mode = "output" if op != "setup" or args["function"] == "output" else mode
        return mode

    def _gate(self, op: str, args: Dict[str, Any], now: float,
              back_in: Optional[float] = None, level: Any = "task") -> None:
        """The pin's rules, judged on where this change leaves the pin."""
        if not self.bounded:
            return
        if level == "task":
            level = steady_level(op, args)
            back_in = task_bound(args) if back_in is None else back_in
        away = level is None or float(level) != self.safe_value
        check_hold(self.rule, self.where, op, away=away, back_in=back_in,
                   leased=bool(args.get("lease_ms")), away_for=self.hold.away_for(now))

    def _start(self, op: str, args: Dict[str, Any], conn: int, now: float) -> None:
        self._reflected = NOTHING  # what it does to the pin, its events tell
        if op in TASK_OPS:
            if op == "set" and not self.driver.pwm_configured:
                args = dict(args, state=1.0 if args["state"] else 0.0)  # a digital pin
            if self.bounded:
                self._gate(op, args, now)
                if args.get("revert") == "previous":
                    args = dict(args, revert="safe")  # on a ruled pin every revert is to safety
            job = make_job(op, args, now)
            level_before = self.driver.level
            self._apply(job.level_at(now), job.pwm)
            edge = time.monotonic()  # durations count from the edge, never before it
            self.job = job.moved_to(edge)  # only once it runs: a refused task leaves nothing
            self.lease = start_lease(self.lease, op, args, now=edge, level_before=level_before,
                                     safe_value=self.safe_value, conn=conn) \
                if args.get("lease_ms") else None   # (what start_lease answers without one)
            return
        if op == "setup" and args["state"] is not None:
            state = args["state"] if self.driver.pwm_configured or args["frequency"] else \
                float(bool(args["state"]))
            self._gate(op, args, now, back_in=None, level=state)
        self.job, self.lease = None, None
        if op == "close":
            self._close()
        elif op == "input":
            self.driver.make_input(self._pull_for(args["pull"]), args["bounce_ms"], self._pwm_stops_at)
        elif op == "output":
            self.driver.make_output(self.safe_value)
            self.hold.drove(away=False, now=now)
        elif op == "setup":
            self._setup(args)

    @property
    def _may_drive(self) -> bool:
        return self.rule.access == "write"

    @property
    def _pwm_stops_at(self) -> Optional[float]:
        """Where a PWM output let go as an input stops: its safe value, if it may be driven."""
        return float(self.safe_value) if self._may_drive else None

    def _pull_for(self, pull: Optional[str]) -> str:
        """An input's pull: the one asked for; none asked, the line's fixed
        resistor's (GPIO2/3: "up"), else floating."""
        return pull or self.driver.fixed_pull or "floating"

    def _setup(self, args: Dict[str, Any]) -> None:
        """gpiozero-level configuration, each part only if given, in order."""
        driver = self.driver
        function, pull = args["function"], args["pull"]
        if function == "output" and (args["state"] is None or args["frequency"]):
            driver.make_output(self.safe_value)  # PWM needs an output before its frequency
        elif function == "output" and driver.mode == "input":
            driver.mode = "unset"  # output_with_state: straight to the new level below
        elif function == "input":   # no pull given: the one it has, or its fixed resistor's
            driver.make_input(pull or driver.fixed_pull or driver.pull, driver.bounce_ms, self._pwm_stops_at)
        elif pull is not None:
            driver.set_pull(pull)
        if args["frequency"] is not None:
            driver.set_frequency(args["frequency"])
        if args["state"] is not None:
            state = args["state"] if driver.pwm_configured else float(bool(args["state"]))
            self._apply(state, driver.pwm_configured)
        if args["bounce_ms"] is not None or args["edges"] is not None:
            driver.set_edge_options(args["bounce_ms"], args["edges"])

    def advance(self) -> None:
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
                        self._apply(self.safe_value, False)  # a timed task ends safe
                    else:
                        self._apply(job.level_at(now), job.pwm)
                except Exception as exc:  # the pin refused: drop the job, keep serving
                    log.warning("pin %s: %s stopped: %s", self.board, job.name, exc)
                    self.job = None
            if self._holding() or not self.pending:
                break
            op, args, conn = self.pending.popleft()
            try:
                self._start(op, args, conn, now)
            except Exception as exc:
                self._queued_failed(op, conn, exc)
        if self.syncs and not self._busy():
            for seq, conn, id_json in self.syncs:
                failure = self.failures.pop(conn, None)
                self.reply(seq, writing.error_from(failure, id_json) if failure else
                           writing.ok(id_json))
            self.syncs = []

    def _undriven(self) -> None:
        """A reload made the pin read-only (or not served): nothing of its own
        drives it from now on. A running task stops where it is, a timed one
        still ending safe when its time is up, and a lease still reverts it (both
        safety actions); queued work that would drive it fails."""
        job = self.job
        if job is not None:
            log.warning("pin %s: the reloaded rules make it %s: its %s stops where it is",
                        self.board, self.rule.access, job.name)
            self.job = None if job.until is None else Steady(
                time.monotonic(), job.until, self.driver.level, job.name)
        kept: Deque[Queued] = deque()
        for op, args, conn in self.pending:
            if op in ("close", "input") or (op == "setup" and args["function"] == "input"):
                kept.append((op, args, conn))
            else:
                self._queued_failed(op, conn, Forbidden(
                    f"{self.where} is {self.rule.access}-only after a reload"
                    if self.rule.access == "read" else f"{self.where} is not served after a reload"))
        self.pending = kept

    def _queued_failed(self, op: str, conn: int, exc: Exception) -> None:
        """Queued work that cannot run: its sender hears of it twice (an event
        now, and its next sync)."""
        error = exc if isinstance(exc, ServerError) else translate(exc)
        log.warning("pin %s: queued %s could not run: %s", self.board, op, error.message)
        failure = type(error)(f"a queued {op} on {self.where} could not run: {error.message}",
                              detail=getattr(error, "detail", None))
        self.failures[conn] = failure
        self.event((conn,), writing.event("task_failed", {
            "pin": self.board, "op": op,
            "error": {"code": failure.code, "message": failure.message}}))

    def _lease_ran_out(self) -> None:
        """A safety action: it preempts everything, in both modes."""
        lease, self.lease = self.lease, None
        # a queued close is not work to drop: it is how the pin ends safe and let go
        closing = self._closing()
        self.pending.clear()
        self.job = None
        level = self.safe_value if self.bounded else lease.revert_to
        now = time.monotonic()
        if now - self._lease_logged >= LEASE_LOG_S:
            log.warning("pin %s: lease ran out; reverting to %g%s", self.board, level,
                        f" ({self._leases_unlogged} more since the last warning)"
                        if self._leases_unlogged else "")
            self._lease_logged, self._leases_unlogged = now, 0
        else:
            self._leases_unlogged += 1
        try:
            self._apply(level, 0.0 < level < 1.0)
        except Exception as exc:
            log.warning("pin %s: revert failed (%s); releasing it", self.board, exc)
            self._close()
        targets = tuple(set(self.watchers) | {lease.conn})
        self.event(targets, writing.event("lease_expired", {"pin": self.board, "value": level}))
        if closing and self.driver.mode != "released":
            self._close()

    def _apply(self, level: float, pwm: bool) -> None:
        changed = self.driver.drive(level, pwm)
        if self.bounded:  # only a ruled pin needs its hold clock
            self.hold.drove(away=float(level) != self.safe_value, now=time.monotonic())
        if changed and self.watchers:
            self._emit(int(level >= 0.5) if not pwm else level, time.monotonic_ns())

    def _close(self, tell_watchers: bool = True) -> None:
        self.job, self.lease = None, None
        self.make_safe()
        if self.watchers and tell_watchers:
            self.event(tuple(self.watchers), writing.event("closed", {"pin": self.board}))
            self.watchers.clear()
            self.driver.watch(False)

    def _safe_now(self, tell_watchers: bool = True) -> None:
        self.pending.clear()
        self._close(tell_watchers)

    def stop(self) -> None:
        """The server is stopping: answer what waits, make the pin safe."""
        self._stop()

    def _stop(self) -> None:
        for seq, conn, id_json in self.syncs:
            self.reply(seq, writing.error_from(ShuttingDown("server stopping"), id_json))
        self.syncs = []
        self._safe_now(tell_watchers=False)  # the server is going: their connections end too
        self.running = False
