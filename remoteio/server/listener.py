"""The listener: the server's one I/O thread, and the loop the router runs in.

It accepts connections (TLS handshakes included), feeds their bytes to
each one's :class:`~remoteio.protocol.server_connection.ServerConnection`
(which frames and validates them, keeps the session gate and answers
``hello``, ``auth`` and ``ping``), sends what that gives back and hands the
pin requests to the router, which it calls on this same thread, as it does when a worker's pipe
or the zygote's socket is ready (the router's descriptors share this
selector). It writes replies and events to the connections: it is the
router's :class:`~.router.Outlet`. Nothing here touches a pin.

Nothing here waits on anything but the selector, and that wait is bounded
by the next housekeeping (greeting and heartbeat timeouts, half-closed
connections) and the router's next deadline (worker probes).

Fairness and back-pressure (:mod:`.frameshare`, a part of this class): a
turn of the loop shares its frames and time among the connections with
frames waiting, so a flood on one connection delays the others by one short
turn; a connection is not read again until its frames are handled, nor
while a worker it feeds is congested.

Slow readers: replies are never dropped, but once a connection has more than
``event_buffer`` bytes waiting, new *events* for it are dropped (its client
sees the gap in the per-pin ``seq`` numbers); a frame that would take it
past ``max_buffer`` bytes closes it at once, with a log line saying why. All
connections together hold at most ``max_output`` bytes waiting: a frame that
would pass it closes the connection with the most waiting first.
"""
from __future__ import annotations

import itertools
import logging
import queue
import selectors
import socket
import ssl
import time
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Set

from ..errors import ServerBusy
from ..protocol import writing
from ..protocol.auth import Penalties
from ..protocol.server_connection import ServerConnection
from ..protocol.session import Session
from ..tcp import tune
from . import memory
from .connection import Connection, format_peer, peer_ip
from .frameshare import FrameSharing
from .transport import WOULD_BLOCK, Transport
from .wakeup import WakePipe

if TYPE_CHECKING:  # the router is handed in at serve(): it writes to us
    from .router import Router

log = logging.getLogger(__name__)

#: bytes asked for per read: below glibc's mmap threshold (128 KiB), so a read
#: does not map and unmap a fresh buffer every time (that cost ~9 µs a read)
READ_SIZE = 65536
#: before hello (and auth) succeeds: the output a connection may have waiting,
#: the seconds it has to say hello (the refusals it may earn: server_connection)
PRE_READY_BUFFER, HELLO_TIMEOUT_S = 16 << 10, 10.0
#: the longest the loop sleeps with nothing to do (s)
MAX_SLEEP = 1.0

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Listener(FrameSharing):
    def __init__(self, sock: socket.socket, *, selector: selectors.BaseSelector,
                 new_session: Callable[[], Session], max_frame: int,
                 max_connections: int = 256, event_buffer: int = 1 << 20,
                 max_buffer: int = 16 << 20, max_output: int = 64 << 20, eof_grace: float = 30.0,
                 tls: Optional[ssl.SSLContext] = None, greeting_timeout: float = 30.0,
                 heartbeat_timeout: float = 0.0,
                 on_housekeeping: Optional[Callable[[float], None]] = None):
        self.sock = sock
        self.router: Optional["Router"] = None  # serve() sets it: it needs us as its outlet
        self.new_session = new_session
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.event_buffer = event_buffer
        self.max_buffer = max_buffer
        self.max_output = max_output  # every connection's output waiting, together
        self.output_waiting = 0
        self.eof_grace = eof_grace
        self.tls = tls
        self.greeting_timeout = greeting_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.on_housekeeping = on_housekeeping  # once a second, on this thread (a watchdog)
        self.penalties = Penalties()
        self.connections: Dict[int, Connection] = {}
        self.running = True
        self._ids = itertools.count(1)
        self._selector = selector
        self._wake_pipe = WakePipe()
        self._stop_asked = False
        self._calls: "queue.SimpleQueue[Callable[[], None]]" = queue.SimpleQueue()
        self._dirty: Set[Connection] = set()
        self._backlog: Dict[Connection, None] = {}   # connections with frames to handle
        self._paused: Set[Connection] = set()        # not read: a worker they feed is full
        self._next_housekeeping = 0.0

    # ---- called from other threads ---------------------------------------------
    def call_soon(self, function: Callable[[], None]) -> None:
        """Run *function* on the loop's thread, at its next turn (thread-safe)."""
        self._calls.put(function)
        self._wake()

    def stop(self) -> None:
        """Stop the loop: no new connections, every worker stopped (thread-safe)."""
        self._stop_asked = True
        self._wake()

    def _wake(self) -> None:
        self._wake_pipe.wake()  # after the loop has ended: nothing

    # ---- the router's outlet ---------------------------------------------------
    def reply(self, conn_id: int, frame: bytes) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None:
            conn.pending -= 1
            self._queue(conn, frame)
            if conn.eof and conn.id in self.connections:
                self._maybe_finish(conn)

    def replies(self, conn_id: int, frames: List[bytes]) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None:
            conn.pending -= len(frames)
            self._queue(conn, frames[0] if len(frames) == 1 else b"".join(frames))
            if conn.eof and conn.id in self.connections:
                self._maybe_finish(conn)

    def event(self, targets: Iterable[int], frame: bytes) -> None:
        for conn_id in targets:
            conn = self.connections.get(conn_id)
            if conn is None:
                continue
            if len(conn.out) > self.event_buffer:
                conn.events_dropped += 1
                continue
            self._queue(conn, frame)

    def is_open(self, conn_id: int) -> bool:
        return conn_id in self.connections

    # ---- the loop ------------------------------------------------------------------
    def serve(self, router: "Router") -> None:
        """Run the loop (on this thread) with *router*, until stopped."""
        self.router = router
        self.sock.setblocking(False)
        self._selector.register(self.sock, _READ, ("accept", None))
        self._selector.register(self._wake_pipe.fileno(), _READ, ("wake", None))
        try:
            while self.running:
                try:
                    self._turn()
                except Exception:  # the loop must outlive any bug
                    log.exception("listener: a turn of the loop failed")
        finally:
            self._close_all()

    def _turn(self) -> None:
        if self._backlog:
            timeout = 0.0
        else:
            wake = min(self._next_housekeeping, self.router.next_deadline())
            timeout = min(MAX_SLEEP, max(0.0, wake - time.monotonic()))
        for key, mask in self._selector.select(timeout):
            kind, obj = key.data
            try:
                if kind == "conn":
                    self._ready(obj, mask)
                elif kind == "accept":
                    self._accept()
                elif kind == "wake":
                    self._woken()
                else:
                    self.router.ready(kind, obj)
            except Exception:  # a bug must cost one connection at most
                log.exception("listener: handling %s failed", kind)
                if kind == "conn":
                    self._close(obj, "internal error (see the log above)")
        if self._backlog:
            self._work_backlog()
        if self._paused:
            for conn in list(self._paused):
                if conn.id not in self.connections or not self.router.congested(conn.id):
                    self._paused.discard(conn)
                    self._update_events(conn)
        self.router.flush()
        self._flush()
        now = time.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + 1.0
            self._housekeeping(now)
            if self.on_housekeeping is not None:
                self.on_housekeeping(now)
        self.router.tick(now)

    def _woken(self) -> None:
        self._wake_pipe.drain()
        while True:
            try:
                function = self._calls.get_nowait()
            except queue.Empty:
                break
            try:
                function()
            except Exception:
                log.exception("listener: a call from another thread failed")
        if self._stop_asked and self.running:
            self._shutdown()

    def _shutdown(self) -> None:
        """Free the port, stop every worker (each pin goes safe), send the last
        replies, close the connections."""
        if self.sock.fileno() >= 0:
            self._selector.unregister(self.sock)
            self.sock.close()
        self.router.shutdown()
        self.running = False

    # ---- connections ---------------------------------------------------------------
    def _update_events(self, conn: Connection) -> None:
        """Read while nothing holds the connection back; write while output waits."""
        if conn.id not in self.connections:
            return
        if conn.transport.handshaking:
            return  # the handshake chooses
        reading = not (conn.eof or conn.protocol.waiting or conn in self._paused)
        self._set_events(conn, (_READ if reading else 0) | (_WRITE if conn.out else 0))

    def _set_events(self, conn: Connection, events: int) -> None:
        if events == conn.events:
            return
        if not events:
            self._selector.unregister(conn.transport)
        elif not conn.events:
            self._selector.register(conn.transport, events, ("conn", conn))
        else:
            self._selector.modify(conn.transport, events, ("conn", conn))
        conn.events = events

    def _accept(self) -> None:
        while True:
            try:
                sock, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, and the like
                log.warning("accept failed: %s", exc)
                return
            peer = format_peer(addr)
            tune(sock)
            if len(self.connections) >= self.max_connections:
                log.warning("refusing %s: %d connections already", peer, len(self.connections))
                busy = ServerBusy(f"the server has {self.max_connections} connections already")
                try:
                    sock.setblocking(False)
                    sock.send(writing.error_from(busy))
                except OSError:
                    pass
                sock.close()
                continue
            try:
                transport = Transport(sock, self.tls)
            except (OSError, ValueError) as exc:
                log.warning("refusing %s: %s", peer, exc)
                sock.close()
                continue
            ip = peer_ip(addr)
            conn = Connection(next(self._ids), transport, peer, ip, ServerConnection(
                self.new_session(), max_frame=self.max_frame, penalties=self.penalties,
                ip=ip, peer=peer))
            self.connections[conn.id] = conn
            self._set_events(conn, _READ)
            self.router.opened(conn.id, peer)
            log.debug("connection %d from %s", conn.id, peer)

    def _ready(self, conn: Connection, mask: int) -> None:
        if conn.transport.handshaking:
            self._handshake(conn)
            return
        if mask & _READ:
            self._read(conn)
        if mask & _WRITE and conn.id in self.connections:
            self._dirty.add(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            step = conn.transport.handshake()
        except (OSError, ValueError) as exc:
            self._close(conn, f"TLS handshake failed: {exc}")
            return
        if step == "done":
            log.debug("connection %d: TLS %s", conn.id, conn.sock.version())
            self._update_events(conn)
        else:
            self._set_events(conn, _READ if step == "read" else _WRITE)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.transport.recv(READ_SIZE)
        except OSError as exc:
            self._close(conn, f"receive failed: {exc}")
            return
        if data is WOULD_BLOCK:
            return
        if not data:
            self._end(conn, None)
            return
        conn.last_seen = time.monotonic()
        if conn.protocol.receive_data(data):
            self._backlog[conn] = None  # handled at the end of this turn, with the others

    def _end(self, conn: Connection, reason: Optional[str]) -> None:
        """Read no more; answer what was asked, then close (peer EOF, or us)."""
        conn.eof = True
        conn.eof_at = time.monotonic()
        conn.closing_reason = reason
        conn.protocol.discard()
        self._backlog.pop(conn, None)
        self._update_events(conn)
        # it can ask nothing more: its pins follow their disconnect policy now, not once
        # what it asked is answered (a sync waiting for a 10-minute task would keep them
        # held by nobody until then)
        self._leave(conn)
        self._maybe_finish(conn)

    def _maybe_finish(self, conn: Connection) -> None:
        if conn.eof and conn.pending <= 0 and not conn.out:
            self._close(conn, conn.closing_reason)

    def _leave(self, conn: Connection) -> None:
        if not conn.left:
            conn.left = True
            self.router.closed(conn.id)

    def _close(self, conn: Connection, reason: Optional[str]) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        if reason:
            log.info("closing connection %d (%s): %s", conn.id, conn.peer, reason)
        self._set_events(conn, 0)
        conn.transport.close()
        big = len(conn.out) > memory.MMAP_THRESHOLD
        self.output_waiting -= len(conn.out)
        conn.out = bytearray()  # an abusive connection's memory goes back at once
        conn.protocol.discard()
        self._dirty.discard(conn)
        self._backlog.pop(conn, None)
        self._paused.discard(conn)
        self._leave(conn)
        if big:
            memory.give_back()

    def _close_all(self) -> None:
        if self.running:  # the loop failed for good: the workers still go safe
            self.running = False
            try:
                self.router.shutdown()
            except Exception:
                log.exception("listener: stopping the workers failed")
        for conn in list(self.connections.values()):
            self._send_now(conn)
            self._close(conn, None)
        self._selector.close()
        self.sock.close()
        self._wake_pipe.close()

    def _housekeeping(self, now: float) -> None:
        for conn in list(self.connections.values()):
            silent = conn.silent_for(now)
            if conn.eof:
                if now - conn.eof_at > self.eof_grace:
                    self._close(conn, "the peer left and its replies did not come in time")
            elif not conn.session.greeted and now - conn.opened_at > HELLO_TIMEOUT_S:
                self._close(conn, f"no hello within {HELLO_TIMEOUT_S:g} s")
            elif not conn.session.ready and self.greeting_timeout and \
                    now - conn.opened_at > self.greeting_timeout and \
                    (self.tls or conn.session.authenticator):
                self._close(conn, f"no TLS handshake or authentication within {self.greeting_timeout:g} s")
            elif conn.session.heartbeat and silent > 3 * conn.session.heartbeat + 1:
                self._close(conn, f"silent for {silent:.0f} s "
                                  f"(its heartbeat is {conn.session.heartbeat:g} s)")
            elif self.heartbeat_timeout and silent > self.heartbeat_timeout:
                self._close(conn, f"silent for {silent:.0f} s")

    # ---- output --------------------------------------------------------------------
    def _queue(self, conn: Connection, frame: bytes) -> None:
        """Add a frame to the connection's output; the bound holds at every append."""
        limit = self.max_buffer if conn.session.ready else min(self.max_buffer, PRE_READY_BUFFER)
        if len(conn.out) + len(frame) > limit:
            self._close(conn, f"not reading: {len(conn.out) + len(frame)} bytes would be "
                              f"waiting (the limit is {limit})")
            return
        while self.output_waiting + len(frame) > self.max_output:
            # the server's memory, not one connection's: the worst reader goes first
            worst = max(self.connections.values(), key=lambda c: len(c.out))
            if not worst.out:
                break
            self._close(worst, f"not reading: {len(worst.out)} bytes waiting, the most of any "
                               f"connection, while all of them would hold more than {self.max_output}")
            if worst is conn:
                return
        conn.out += frame
        self.output_waiting += len(frame)
        self._dirty.add(conn)

    def _flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            if conn.id in self.connections:
                self._send_now(conn)

    def _send_now(self, conn: Connection) -> None:
        if conn.out and not conn.transport.handshaking:
            try:
                sent = conn.transport.send(conn.out)
            except OSError as exc:
                self._close(conn, f"send failed: {exc}")
                return
            del conn.out[:sent]
            self.output_waiting -= sent
        self._update_events(conn)
        if conn.eof:
            self._maybe_finish(conn)
