"""A worker process's loop: messages in, replies out, a clock, never a wait on I/O.

The base of every worker kind (a pin now; a bus or an expander later). It
blocks in ``select`` on its task pipe, on its reply pipe while replies wait
to be written, and on a wake pipe for its edge thread, with a timeout that
is the next moment its resource needs it (:meth:`Worker.next_wake`), so it
never spins and its timing has microsecond resolution (a long wait is slept
in two parts, so that the kernel's timer slack does not make it late:
timer.py). Both pipes are
non-blocking: a server that is slow to read can delay replies but never the
clock (a lease fires at its deadline whatever the clients do); the clock is
checked between the messages of a long batch too.

A subclass owns a resource and must provide :meth:`handle` (one message),
:meth:`next_wake`, :meth:`advance` (what is due on the clock) and
:meth:`make_safe` (at the end, whatever ended it). It may override
:meth:`idle` (after each turn: post its status).
"""
from __future__ import annotations

import logging
import select
import threading
import time
from typing import Any, List, Optional, Tuple

from .channel import Channel, ChannelClosed
from .messages import Event, PartReply, Replies, decode, encode
from .timer import sleep_for
from .wakeup import WakePipe

log = logging.getLogger(__name__)

#: bytes of replies and events a worker keeps while the server is slow to
#: read; past it new events are dropped (replies are bounded by the
#: router's in-flight limit and always kept)
MAX_KEPT = 4 << 20
#: messages of a batch handled between two looks at the clock (each takes
#: microseconds: the clock is never more than a fraction of a ms behind)
CLOCK_EVERY = 16
_REPLIES = encode(Replies([], []))[0]


class Worker:
    def __init__(self, tasks: Channel, replies: Channel):
        self.tasks = tasks
        self.replies = replies
        self.running = True
        self.events_dropped = 0
        self._outbox: List[tuple] = []
        self._lock = threading.Lock()  # outbox and reply pipe: the loop and an edge thread
        self._wake = WakePipe()  # an edge thread's events: the loop looks at the pipe again

    # ---- what a worker kind provides ----------------------------------------------
    def handle(self, message: Any) -> None:
        raise NotImplementedError

    def next_wake(self) -> Optional[float]:
        """When (time.monotonic()) the resource next needs the worker; None: never."""
        return None

    def advance(self) -> None:
        """Do what is due on the clock."""

    def make_safe(self) -> None:
        """Put the resource in its safe state (the worker is ending)."""

    def idle(self) -> None:
        """After every turn of the loop, before its replies go out."""

    def event_fds(self) -> Tuple[int, ...]:
        """Descriptors of the resource the loop also waits on (a watched line's
        edge events), so that no thread of a backend has to."""
        return ()

    def service(self, fd: int) -> None:
        """One of :meth:`event_fds` is readable."""

    def catch_up(self) -> None:
        """Tasks have come: first tell what a backend's own edge thread has yet to
        (an edge made before a task is told before that task's reply)."""

    def write_fds(self) -> Tuple[int, ...]:
        """Descriptors of the resource the loop waits on for writing (a tty's
        output waiting for room), so that no write of the resource blocks."""
        return ()

    def service_writable(self, fd: int) -> None:
        """One of :meth:`write_fds` is writable."""

    def close(self) -> None:
        """Let go of the worker's own descriptors (a worker that ends with its
        process never needs this; one run inside another process does)."""
        self._wake.close()

    # ---- the loop ----------------------------------------------------------------
    def run(self) -> None:
        tasks, replies, wake = self.tasks.fileno(), self.replies.fileno(), self._wake.fileno()
        try:
            while self.running:
                wake_at = self.next_wake()
                sources, sinks = self.event_fds(), self.write_fds()
                readers = (tasks, wake) + sources
                writers = ((replies,) if self.replies.pending else ()) + sinks
                while True:
                    readable, writable, _ = select.select(
                        readers, writers, (), sleep_for(wake_at, time.monotonic()))
                    # the early end of a long wait (timer.py) sleeps the rest, for the same
                    # wake_at: asked again, a blink's next change would be the one after
                    if readable or writable or wake_at is None or time.monotonic() >= wake_at:
                        break
                for fd in sources:
                    if fd in readable:
                        self.service(fd)
                for fd in sinks:
                    if fd in writable:
                        self.service_writable(fd)
                if wake in readable:
                    self._wake.drain()
                if writable:
                    self._flush()
                if tasks in readable:
                    # what fell due while we slept comes before what just arrived: a
                    # renewal read after its lease's deadline must not revive the lease
                    self._advance_if_due()
                    self.catch_up()
                    self._receive()
                self.advance()
                self.idle()  # before the replies: who saw a reply sees the status too
                self._flush()
        finally:
            try:
                self.make_safe()
            finally:
                self.idle()
                self._flush()

    def _receive(self) -> None:
        try:
            batches = self.tasks.receive()
        except (ChannelClosed, OSError):
            log.warning("%s: the server is gone; made safe", self)
            self.running = False
            return
        handled = 0
        for batch in batches:
            for raw in batch:
                self.handle(decode(raw))
                if not self.running:
                    return
                handled += 1
                if not handled % CLOCK_EVERY:  # the clock before the rest of a long batch
                    self._advance_if_due()

    def _advance_if_due(self) -> None:
        wake_at = self.next_wake()
        if wake_at is not None and time.monotonic() >= wake_at:
            self.advance()

    # ---- replies and events ----------------------------------------------------------
    # every append under the lock: an edge thread may be swapping the outbox
    def reply(self, seq: int, frame: bytes) -> None:
        with self._lock:   # consecutive replies are one Replies: one message for the router
            outbox = self._outbox
            last = outbox[-1] if outbox else None
            if last is not None and last[0] == _REPLIES:
                last[1].append(seq)
                last[2].append(frame)
            else:
                outbox.append((_REPLIES, [seq], [frame]))  # encode(Replies(...)), the hot path

    def part_reply(self, seq: int, error: Optional[Tuple[str, str, Optional[str]]],
                   value: Any = None) -> None:
        with self._lock:
            self._outbox.append(encode(PartReply(seq, error, value)))

    def message(self, message: Any) -> None:
        """Any other message for the server (a Pong)."""
        with self._lock:
            self._outbox.append(encode(message))

    def event(self, targets: Tuple[int, ...], frame: bytes, now: bool = False) -> None:
        """Push *frame* to connections; *now*: from another thread (an edge),
        sent at once instead of at the end of the loop's turn."""
        if not targets:
            return
        with self._lock:
            if self.replies.pending > MAX_KEPT:
                self.events_dropped += 1  # the watchers see the gap in seq
                return
            self._outbox.append(encode(Event(targets, frame)))
            if now:
                self._send()
                if self.replies.pending:
                    self._wake.wake()  # the loop watches the pipe for writing

    def _flush(self) -> None:
        with self._lock:
            self._send()

    def _send(self) -> None:
        try:
            if self._outbox:
                outbox, self._outbox = self._outbox, []
                self.replies.send(outbox)
            elif self.replies.pending:
                self.replies.flush()
        except OSError:
            self.running = False  # the server is gone; the loop ends safely

    def __str__(self) -> str:
        return type(self).__name__
