"""The listener's share of frames: each turn's frames and time divided among
the connections that have frames waiting.

A mixin of :class:`~.listener.Listener` (the same object and state, split
off by job). A turn handles at most :data:`FRAMES_PER_TURN` frames and
spends at most about :data:`TURN_BUDGET_S` on them, shared by the
connections with frames waiting (a hello or a ping of a quiet connection
first), so a flood on one connection delays the others by one short turn.
Pin requests go to the router in chunks of :data:`CHUNK`, and each full
chunk on to its workers at once (a worker applies one chunk while the next
is read; shorter ones go at the turn's end, together); a connection is not
read again until its frames are handled, nor while a worker it feeds is
congested.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, List, Optional, Set

from ..protocol.ops import SERVER
from ..protocol.reading import Request
from ..protocol.server_connection import Greeted, PinRequest
from .connection import Connection

if TYPE_CHECKING:  # the attributes a Listener has
    from .router import Router

#: frames handled per turn of the loop, shared by the connections that have
#: frames waiting (so one connection alone gets big batches, and a crowd
#: gets fair turns that stay short: a fresh connection waits one turn)...
FRAMES_PER_TURN = 2048
#: ... but never fewer than this each
MIN_SHARE = 32
#: the time a turn spends on frames, shared the same way (s), and its floor
TURN_BUDGET_S, MIN_SLICE_S = 0.010, 0.001
#: requests handed to the router at once (the clock is looked at after every frame)
#: (each chunk is sent on to its workers before the next is read)
CHUNK = 256


class FrameSharing:
    router: Optional["Router"]
    connections: Dict[int, Connection]
    _backlog: Dict[Connection, None]
    _paused: Set[Connection]

    if TYPE_CHECKING:  # the Listener's
        def _update_events(self, conn: Connection) -> None: ...
        def _queue(self, conn: Connection, frame: bytes) -> None: ...
        def _end(self, conn: Connection, reason: Optional[str]) -> None: ...

    def _work_backlog(self) -> None:
        """This turn's share of every waiting connection's frames: the turn's
        frames and time divided among them, each its part of what is left."""
        # the few frames of quiet connections (a hello, a ping) before the floods' slices
        conns = sorted(self._backlog, key=lambda c: c.protocol.waiting > MIN_SHARE)
        share = max(MIN_SHARE, FRAMES_PER_TURN // len(conns))
        deadline = time.monotonic() + TURN_BUDGET_S
        for n, conn in enumerate(conns):
            if conn.id not in self.connections:
                self._backlog.pop(conn, None)
                continue
            left = max(0.0, deadline - time.monotonic()) / (len(conns) - n)
            self._work(conn, share, max(MIN_SLICE_S, left))
        for conn in conns:
            if conn in self._backlog:  # frames left: not read again until they are handled,
                del self._backlog[conn]  # and last in the next turn's order
                self._backlog[conn] = None
                self._update_events(conn)

    def _work(self, conn: Connection, share: int, budget: float) -> None:
        """Handle up to *share* of the connection's frames, stopping once
        *budget* seconds are spent (frames differ: a ``sim history`` costs
        a thousand ``on``); pin requests go to the router in chunks."""
        protocol = conn.protocol
        deadline = time.monotonic() + budget
        batch: List[Request] = []
        for _ in range(min(share, protocol.waiting)):
            step = protocol.next_step()
            if step is None:
                break  # ending (after a failed authentication): read no further
            if isinstance(step, PinRequest):
                batch.append(step.request)
            else:
                if isinstance(step, Greeted):
                    self.router.identify(conn.id, step.session, step.take_over)
                self._queue(conn, step.frame)
            if conn.id not in self.connections:
                return  # closed on the way (its output ran over)
            late = time.monotonic() >= deadline
            if batch and (late or len(batch) >= CHUNK or batch[-1].spec.scope == SERVER):
                if not self._route(conn, batch):
                    return
                batch = []
                if conn in self._paused:
                    break
            if late:
                break
        if batch and not self._route(conn, batch):
            return
        if protocol.close_reason:
            protocol.discard()
        if not protocol.waiting and conn in self._backlog:
            del self._backlog[conn]
            self._update_events(conn)
        if protocol.close_reason and not conn.eof:
            self._end(conn, protocol.close_reason)  # once its last reply is queued

    def _route(self, conn: Connection, batch: List[Request]) -> bool:
        """Hand requests to the router; False if the connection closed meanwhile."""
        conn.pending += len(batch)
        self.router.route(conn.id, batch)
        if len(batch) >= CHUNK:
            # a full chunk: the worker starts on it while the next is read. A
            # short one waits for the turn's end, where the requests of every
            # connection to one worker go in one write: a crowd of
            # connections sending one command each costs a write per turn per
            # worker, not one per command
            self.router.flush()
        if conn.id not in self.connections:
            return False
        if self.router.congested(conn.id):
            self._paused.add(conn)
            self._update_events(conn)
        return True
