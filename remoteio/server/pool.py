"""The worker pool: start, feed, probe and stop worker processes (the router
replaces one that ended).

Generic over what a worker owns: a key (a board pin number, ``("i2c", 1)``,
``("spi", 0, 0)``, ``("serial", name)``, ``("expander", name)``) and a kind,
the name of the entry point the zygote runs (zygote.py). Starting is
asynchronous: the pipes exist at once and the router may send the first
tasks before the process runs (the pipe holds them); the pid arrives later.

Nothing here blocks. A worker's task pipe is non-blocking; what it cannot
take waits in the channel and is written when the pipe is writable (the
pool watches it in the listener's selector). Past :data:`HIGH_WATER` bytes
waiting, or :data:`HIGH_INFLIGHT` requests unanswered (syncs aside: :data:`MAX_WAITING`),
:meth:`WorkerPool.congested` says so, and the listener stops reading from
the connections that feed that worker until it drains below
:data:`LOW_WATER` and :data:`LOW_INFLIGHT` (back-pressure). A worker that does not answer a probe
within ``hang_timeout`` is killed (through the zygote) and its end of file
brings the failure replies and a fresh worker.
"""
from __future__ import annotations

import itertools
import logging
import selectors
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

from ..errors import ServerBusy, WorkerFailed
from .channel import Channel, ChannelClosed, channel_pair
from .messages import Exited, Probe, Spawned, Stop, decode, encode
from .zygote import Zygote, ZygoteGone
from ..errors import WorkerEnded  # noqa: F401 (defined in errors.py)

log = logging.getLogger(__name__)

#: bytes waiting for a worker's task pipe, or requests it has not answered,
#: before its feeders are paused...
HIGH_WATER, HIGH_INFLIGHT = 256 << 10, 1000
#: ... and below which they read again
LOW_WATER, LOW_INFLIGHT = 64 << 10, 250
#: syncs a worker may hold (each answered when its pin's work ends, which may be
#: hours away): counted apart from the rest, never as a sign that the worker is
#: behind (or one client's syncs would pause every client that feeds that pin)
MAX_WAITING = 1000
#: bytes of replies read from one worker per turn of the loop
READ_BUDGET = 1 << 20

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


def check_waiting(handle: "WorkerHandle", name: str, holder: bool = False) -> None:
    """ServerBusy if *handle*'s worker holds :data:`MAX_WAITING` syncs already: the pin
    holder's and everyone else's counted apart, so that others' syncs (anyone may ask)
    never crowd out the holder's own ``wait=True``."""
    held = len(handle.held_waiting)
    if (held if holder else len(handle.waiting) - held) >= MAX_WAITING:
        raise ServerBusy(f"{name} has {MAX_WAITING} syncs waiting already"
                         + ("" if holder else " from connections other than its holder"))


class WorkerHandle:
    """What the server keeps of one worker. ``inflight`` (requests sent and
    not answered: seq -> whatever the router needs to answer them) is the
    router's; the rest is the pool's."""

    __slots__ = ("key", "kind", "settings", "generation", "tasks", "replies", "pid", "inflight",
                 "waiting", "held_waiting", "probe_sent", "writing", "exit_status")

    def __init__(self, key: Any, kind: str, generation: int, tasks: Channel, replies: Channel,
                 settings: Dict[str, Any]):
        self.key = key
        self.kind = kind
        self.settings = settings
        self.generation = generation
        self.tasks = tasks
        self.replies = replies
        self.pid: Optional[int] = None
        self.inflight: Dict[int, Any] = {}
        self.waiting: Set[int] = set()   # the seqs in inflight of syncs (the router's too)
        self.held_waiting: Set[int] = set()   # those of them the pin's holder sent
        self.probe_sent: Optional[float] = None
        self.writing = False          # is the task pipe watched for writing?
        self.exit_status: Optional[int] = None

    def __repr__(self) -> str:
        return f"<worker {self.kind} {self.key!r} pid {self.pid}>"


class WorkerPool:
    def __init__(self, zygote: Zygote, selector: selectors.BaseSelector, *,
                 hang_timeout: float = 10.0):
        self.zygote = zygote
        self.selector = selector
        self.hang_timeout = hang_timeout
        self.handles: Dict[Any, WorkerHandle] = {}
        self._by_pid: Dict[int, WorkerHandle] = {}
        self._generation = itertools.count(1)
        self._next_probe = time.monotonic() + hang_timeout / 2
        selector.register(zygote.fileno(), _READ, ("zygote", None))

    def __contains__(self, key: Any) -> bool:
        return key in self.handles

    def __iter__(self) -> Iterator[WorkerHandle]:
        return iter(list(self.handles.values()))

    def get(self, key: Any) -> Optional[WorkerHandle]:
        return self.handles.get(key)

    # ---- starting ---------------------------------------------------------------------
    def start(self, kind: str, key: Any, settings: Dict[str, Any]) -> WorkerHandle:
        """A new worker of *kind* for *key*, told *settings* (plain data);
        raises WorkerFailed if none can be started."""
        tasks_r, tasks_w = channel_pair()
        replies_r, replies_w = channel_pair()
        generation = next(self._generation)
        try:
            self.zygote.spawn(kind, key, generation, [tasks_r.fd, replies_w.fd], settings)
        except ZygoteGone as exc:
            for channel in (tasks_r, tasks_w, replies_r, replies_w):
                channel.close()
            raise WorkerFailed(f"cannot start a worker for {key!r}: {exc}") from None
        finally:
            tasks_r.close()   # the zygote has its own copies now (or none at all)
            replies_w.close()
        handle = WorkerHandle(key, kind, generation, tasks_w, replies_r, settings)
        self.handles[key] = handle
        self.selector.register(replies_r.fd, _READ, ("replies", handle))
        return handle

    def zygote_ready(self) -> None:
        """Pids of started workers, exit codes of ended ones (for the log)."""
        try:
            messages = self.zygote.receive()
        except ZygoteGone as exc:
            log.error("the zygote is gone (%s): no new workers can start", exc)
            self.selector.unregister(self.zygote.fileno())
            return
        for message in messages:
            if isinstance(message, Spawned):
                handle = self.handles.get(message.key)
                if handle is not None and handle.generation == message.generation:
                    handle.pid = message.pid
                    self._by_pid[message.pid] = handle
            elif isinstance(message, Exited):
                handle = self._by_pid.pop(message.pid, None)
                if handle is not None:
                    handle.exit_status = message.status

    # ---- feeding ----------------------------------------------------------------------
    def send(self, handle: WorkerHandle, messages: List[Any]) -> None:
        """Send a batch of messages in one write (kept while the pipe is full);
        a plain tuple in it is one already encoded (:func:`~.messages.encoded_task`)."""
        try:
            handle.tasks.send([m if type(m) is tuple else encode(m) for m in messages])
        except OSError:
            return  # the worker is dying; its end of file brings the failure replies
        self._watch_writing(handle)

    def writable(self, handle: WorkerHandle) -> None:
        try:
            handle.tasks.flush()
        except OSError:
            handle.tasks.close()
        self._watch_writing(handle)

    def _watch_writing(self, handle: WorkerHandle) -> None:
        want = bool(handle.tasks.pending) and not handle.tasks.closed
        if want != handle.writing:
            if want:
                self.selector.register(handle.tasks.fd, _WRITE, ("tasks", handle))
            else:
                self.selector.unregister(handle.tasks.fd)
            handle.writing = want

    @staticmethod
    def congested(handle: WorkerHandle) -> bool:
        """Is the worker behind (its pipe full, or too much unanswered but syncs)?"""
        return (len(handle.inflight) - len(handle.waiting) > HIGH_INFLIGHT
                or handle.tasks.pending > HIGH_WATER)

    @staticmethod
    def drained(handle: WorkerHandle) -> bool:
        return (handle.tasks.pending <= LOW_WATER
                and len(handle.inflight) - len(handle.waiting) <= LOW_INFLIGHT)

    # ---- reading ----------------------------------------------------------------------
    def read(self, handle: WorkerHandle) -> List[Any]:
        """The messages the worker sent (a bounded amount); WorkerEnded at its end."""
        try:
            batches = handle.replies.receive(READ_BUDGET)
        except (ChannelClosed, OSError):
            raise WorkerEnded(handle.key) from None
        messages = []
        for batch in batches:
            messages.extend(decode(raw) for raw in batch)
        return messages

    def ended(self, handle: WorkerHandle) -> bool:
        """Forget a worker whose pipe ended; False if it was already replaced."""
        if self.handles.get(handle.key) is not handle:
            return False
        del self.handles[handle.key]
        self._close(handle)
        return True

    def _close(self, handle: WorkerHandle) -> None:
        for fd in (handle.replies.fd, handle.tasks.fd if handle.writing else -1):
            if fd >= 0:
                try:
                    self.selector.unregister(fd)
                except (KeyError, ValueError):
                    pass
        handle.writing = False
        handle.replies.close()
        handle.tasks.close()

    # ---- supervision ------------------------------------------------------------------
    def next_deadline(self) -> float:
        return self._next_probe

    def probe(self, now: float, needed: Callable[[WorkerHandle], bool] = lambda handle: True) -> None:
        """Probe the workers that have something to do (*needed*); kill one whose
        last probe went unanswered too long. An idle worker is left asleep: if it
        hung, the next request to it is in flight, and then it is probed."""
        if now < self._next_probe:
            return
        self._next_probe = now + self.hang_timeout / 2
        for handle in self:
            if handle.probe_sent is None:
                if handle.inflight or needed(handle):
                    handle.probe_sent = now
                    self.send(handle, [Probe()])
            elif now - handle.probe_sent > self.hang_timeout:
                log.error("%r did not answer for %.0f s; killing it", handle,
                          now - handle.probe_sent)
                self.kill(handle)

    def probe_now(self, handle: WorkerHandle, now: float) -> None:
        """Probe *handle* now, idle or not: it was given a change to make that
        must not wait on a hang nobody looks for (a disconnect's safe state)."""
        if handle.probe_sent is None:
            handle.probe_sent = now
            self.send(handle, [Probe()])

    @staticmethod
    def pong(handle: WorkerHandle) -> None:
        handle.probe_sent = None

    def kill(self, handle: WorkerHandle) -> None:
        if handle.pid is not None:
            try:
                self.zygote.kill(handle.pid)
            except ZygoteGone:
                pass

    # ---- stopping ---------------------------------------------------------------------
    def stop(self, timeout: float, last_words: Callable[[WorkerHandle, List[Any]], None]) -> None:
        """Stop every worker (each makes its resource safe), waiting at most
        *timeout* s for their pipes to end; *last_words(handle, messages)*
        takes what they still sent. Then the zygote kills what is left."""
        for handle in self:
            self.send(handle, [Stop()])
        deadline = time.monotonic() + timeout
        waiting = selectors.DefaultSelector()  # any number of descriptors, unlike select()
        try:
            for handle in self:
                if not handle.replies.closed:
                    waiting.register(handle.replies.fd, _READ, handle)
            while waiting.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("workers did not stop in time: %s",
                                [key.data for key in waiting.get_map().values()])
                    break
                for handle in self:
                    if handle.tasks.pending:
                        self.writable(handle)  # the Stop may still be waiting
                for key, _ in waiting.select(min(left, 0.05)):
                    try:
                        last_words(key.data, self.read(key.data))
                    except WorkerEnded:
                        waiting.unregister(key.fd)
        finally:
            waiting.close()
        for handle in self:
            self._close(handle)
        self.handles.clear()
        self.zygote.stop()
