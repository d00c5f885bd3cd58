"""The listener: one thread that does all of the server's socket I/O.

It accepts connections, splits their bytes into frames, validates frames
into requests, answers the per-connection operations itself (``hello``,
``ping``, ``auth``) and hands everything else to the router's inbound queue,
one item per read. It also reads the workers' reply pipes and writes replies
and events to the connections. Nothing here touches a pin.

Every socket is non-blocking and every wait is bounded: the loop wakes at
least once a second for housekeeping (half-closed connections, idle
timeouts), and the router wakes it through a pipe when it has output.

Slow readers: replies are never dropped, but once a connection has more than
``event_buffer`` bytes waiting, new *events* for it are dropped (its client
sees the gap in the per-pin ``seq`` numbers); past ``max_buffer`` bytes the
connection is closed with a log line saying why.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import selectors
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Set

from ..errors import FrameTooLarge, ServerBusy, ServerError
from ..protocol import writing
from ..protocol.framing import TOO_LARGE, FrameBuffer
from ..protocol.ops import CONNECTION
from ..protocol.reading import Rejected, Request, parse_request
from ..protocol.session import Session
from .gather import GatherPart

log = logging.getLogger(__name__)

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Connection:
    __slots__ = ("id", "sock", "peer", "frames", "session", "out", "pending",
                 "eof", "eof_at", "events", "events_dropped", "last_seen")

    def __init__(self, conn_id: int, sock: socket.socket, peer: str, session: Session,
                 max_frame: int):
        self.id = conn_id
        self.sock = sock
        self.peer = peer
        self.frames = FrameBuffer(max_frame)
        self.session = session
        self.out = bytearray()
        self.pending = 0  # requests handed to the router, not yet answered
        self.eof = False
        self.eof_at = 0.0
        self.events = 0  # what the selector watches for (0: not registered)
        self.events_dropped = 0
        self.last_seen = time.monotonic()


class Listener:
    def __init__(self, sock: socket.socket, *, router: Any,
                 new_session: Callable[[], Session], max_frame: int,
                 max_connections: int = 256, event_buffer: int = 1 << 20,
                 max_buffer: int = 16 << 20, eof_grace: float = 30.0):
        self.sock = sock
        self.router = router
        self.new_session = new_session
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.event_buffer = event_buffer
        self.max_buffer = max_buffer
        self.eof_grace = eof_grace
        self.connections: Dict[int, Connection] = {}
        self.running = True
        self._ids = itertools.count(1)
        self._selector = selectors.DefaultSelector()
        self._outbound: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._dirty: Set[Connection] = set()
        self._next_housekeeping = 0.0

    # ---- called from other threads ---------------------------------------------
    def send(self, items: List[tuple]) -> None:
        """Queue ``(conn id or ids, frame)`` items for sending (thread-safe)."""
        self._outbound.put(("send", items))
        self._wake()

    def attach_worker(self, handle: Any) -> None:
        """Start reading a new worker's reply pipe (thread-safe)."""
        self._outbound.put(("worker", handle))
        self._wake()

    def stop(self) -> None:
        self._outbound.put(("stop", None))
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # already woken

    # ---- the loop ------------------------------------------------------------------
    def run(self) -> None:
        self.sock.setblocking(False)
        self._selector.register(self.sock, _READ, ("accept", None))
        self._selector.register(self._wake_r, _READ, ("wake", None))
        try:
            while self.running:
                for key, mask in self._selector.select(timeout=1.0):
                    kind, obj = key.data
                    try:
                        if kind == "conn":
                            if mask & _READ:
                                self._read(obj)
                            if mask & _WRITE and obj.id in self.connections:
                                self._dirty.add(obj)
                        elif kind == "worker":
                            self._read_worker(obj)
                        elif kind == "wake":
                            self._drain_outbound()
                        elif kind == "accept":
                            self._accept()
                    except Exception:  # a bug must cost one connection at most
                        log.exception("listener: handling %s failed", kind)
                        if kind == "conn":
                            self._close(obj, "internal error (see the log above)")
                self._flush()
                now = time.monotonic()
                if now >= self._next_housekeeping:
                    self._next_housekeeping = now + 1.0
                    self._housekeeping()
        finally:
            self._close_all()

    def _drain_outbound(self) -> None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                kind, payload = self._outbound.get_nowait()
            except queue.Empty:
                return
            if kind == "send":
                for target, frame in payload:
                    self._deliver(target, frame)
            elif kind == "worker":
                self._selector.register(payload.replies.fd, _READ, ("worker", payload))
            elif kind == "stop_accepting":
                self._stop_accepting()
            elif kind == "stop":
                self.running = False

    def _stop_accepting(self) -> None:
        if self.sock.fileno() >= 0:
            self._selector.unregister(self.sock)
            self.sock.close()

    def stop_accepting(self) -> None:
        """Close the listening socket, freeing the port (thread-safe)."""
        self._outbound.put(("stop_accepting", None))
        self._wake()

    # ---- connections ---------------------------------------------------------------
    def _set_events(self, conn: Connection, events: int) -> None:
        if events == conn.events:
            return
        if not events:
            self._selector.unregister(conn.sock)
        elif not conn.events:
            self._selector.register(conn.sock, events, ("conn", conn))
        else:
            self._selector.modify(conn.sock, events, ("conn", conn))
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
            peer = _format_peer(addr)
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if len(self.connections) >= self.max_connections:
                log.warning("refusing %s: %d connections already", peer, len(self.connections))
                busy = ServerBusy(f"the server has {self.max_connections} connections already")
                try:
                    sock.send(writing.error_from(busy))
                except OSError:
                    pass
                sock.close()
                continue
            conn = Connection(next(self._ids), sock, peer, self.new_session(), self.max_frame)
            self.connections[conn.id] = conn
            self._set_events(conn, _READ)
            self.router.opened(conn.id, peer)
            log.debug("connection %d from %s", conn.id, peer)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(conn, f"receive failed: {exc}")
            return
        if not data:
            self._half_close(conn)
            return
        conn.last_seen = time.monotonic()
        batch: List[Request] = []
        for frame in conn.frames.feed(data):
            if frame is TOO_LARGE:
                self._queue(conn, writing.error_from(FrameTooLarge(
                    f"a frame may be at most {self.max_frame} bytes")))
                continue
            try:
                req = parse_request(frame)
                refusal = conn.session.gate(req.op)
                if refusal is not None:
                    raise Rejected(refusal, req.id_json)
                if req.spec.scope == CONNECTION:
                    self._queue(conn, writing.ok(req.id_json, self._connection_op(conn, req)))
                else:
                    batch.append(req)
            except Rejected as rejected:
                self._queue(conn, writing.error_from(rejected.error, rejected.id_json))
            except ServerError as exc:
                self._queue(conn, writing.error_from(exc, req.id_json))
        if batch:
            conn.pending += len(batch)
            for target, frame in self.router.route(conn.id, batch):
                self._deliver(target, frame)

    def _connection_op(self, conn: Connection, req: Request) -> Optional[Dict[str, Any]]:
        if req.op == "hello":
            return conn.session.hello(req.args)
        if req.op == "ping":
            result = {"time_ns": time.monotonic_ns()}
            if req.args["data"] is not None:
                result["data"] = req.args["data"]
            return result
        if req.op == "auth":
            return conn.session.auth(req.args)
        raise ServerError(f"{req.op} is not a connection operation")  # pragma: no cover

    def _half_close(self, conn: Connection) -> None:
        """The peer sent end of file: answer what it asked, then close."""
        conn.eof = True
        conn.eof_at = time.monotonic()
        self._set_events(conn, conn.events & _WRITE)
        self._maybe_finish(conn)

    def _maybe_finish(self, conn: Connection) -> None:
        if conn.eof and conn.pending <= 0 and not conn.out:
            self._close(conn, None)

    def _close(self, conn: Connection, reason: Optional[str]) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        if reason:
            log.info("closing connection %d (%s): %s", conn.id, conn.peer, reason)
        self._set_events(conn, 0)
        conn.sock.close()
        self._dirty.discard(conn)
        self.router.inbound.put(("closed", conn.id))

    def _close_all(self) -> None:
        workers = [key.data[1] for key in list(self._selector.get_map().values())
                   if key.data[0] == "worker"]
        for handle in workers:
            if not handle.replies.closed:
                self._read_worker(handle)  # the last replies of stopped workers
            handle.replies.close()
        for conn in list(self.connections.values()):
            self._send_now(conn)
            self._close(conn, None)
        self._selector.close()
        self.sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections.values()):
            if conn.eof and now - conn.eof_at > self.eof_grace:
                self._close(conn, "peer closed and replies did not come in time")

    # ---- output --------------------------------------------------------------------
    def _read_worker(self, handle: Any) -> None:
        replies = handle.replies
        inflight = handle.inflight
        try:
            messages = replies.receive()
        except (EOFError, OSError):
            try:
                self._selector.unregister(replies.fd)
            except (KeyError, ValueError):
                pass
            replies.close()
            self.router.inbound.put(("worker_eof", handle.board, handle.generation))
            return
        for items in messages:
            for seq, target, frame in items:
                if seq is not None:
                    entry = inflight.pop(seq, None)
                    if entry is not None and entry[2] is not None:
                        target = entry[2]  # a part of a batch request
                self._deliver(target, frame)

    def _deliver(self, target: Any, frame: bytes) -> None:
        if type(target) is GatherPart:
            frame = target.gather.add(target.board, frame)
            if frame is None:
                return
            target = target.gather.conn
        if type(target) is int:
            conn = self.connections.get(target)
            if conn is not None:
                conn.pending -= 1
                self._queue(conn, frame)
                if conn.eof:
                    self._maybe_finish(conn)
            return
        for conn_id in target:  # an event for every watcher
            conn = self.connections.get(conn_id)
            if conn is None:
                continue
            if len(conn.out) > self.event_buffer:
                conn.events_dropped += 1
                continue
            self._queue(conn, frame)

    def _queue(self, conn: Connection, frame: bytes) -> None:
        conn.out += frame
        self._dirty.add(conn)

    def _flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for conn in dirty:
            if conn.id in self.connections:
                self._send_now(conn)

    def _send_now(self, conn: Connection) -> None:
        if conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._close(conn, f"send failed: {exc}")
                return
            del conn.out[:sent]
        if len(conn.out) > self.max_buffer:
            self._close(conn, f"not reading: {len(conn.out)} bytes waiting")
            return
        self._set_events(conn, (0 if conn.eof else _READ) | (_WRITE if conn.out else 0))
        if conn.eof:
            self._maybe_finish(conn)


def _format_peer(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr) or "local"
