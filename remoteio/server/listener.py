"""The listener: one thread that does all of the server's socket I/O.

It accepts connections (TLS handshakes included), splits their bytes into
frames, validates frames into requests, answers the per-connection
operations itself (``hello``, ``auth``, ``ping``) and hands pin requests to
the router, one call per read. It also reads the workers' reply pipes and
writes replies and events to the connections. Nothing here touches a pin.

Every socket is non-blocking and every wait is bounded: the loop wakes at
least once a second for housekeeping (greeting and heartbeat timeouts,
half-closed connections), and the router wakes it through a pipe when it has
output.

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
import ssl
import time
from typing import Any, Callable, Dict, List, Optional, Set

from ..errors import AuthFailed, FrameTooLarge, ServerBusy, ServerError
from ..protocol import writing
from ..protocol.auth import FailureLimiter
from ..protocol.framing import TOO_LARGE
from ..protocol.ops import CONNECTION
from ..protocol.reading import Rejected, Request, parse_request
from ..protocol.session import Session
from .connection import Connection, format_peer, peer_ip
from .gather import GatherPart
from .transport import WOULD_BLOCK, Transport, tune

log = logging.getLogger(__name__)

#: bytes asked for per read: below glibc's mmap threshold (128 KiB), so a read
#: does not map and unmap a fresh buffer every time (that cost ~9 µs a read)
READ_SIZE = 65536

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Listener:
    def __init__(self, sock: socket.socket, *, router: Any,
                 new_session: Callable[[], Session], max_frame: int,
                 max_connections: int = 256, event_buffer: int = 1 << 20,
                 max_buffer: int = 16 << 20, eof_grace: float = 30.0,
                 tls: Optional[ssl.SSLContext] = None, greeting_timeout: float = 30.0,
                 heartbeat_timeout: float = 0.0):
        self.sock = sock
        self.router = router
        self.new_session = new_session
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.event_buffer = event_buffer
        self.max_buffer = max_buffer
        self.eof_grace = eof_grace
        self.tls = tls
        self.greeting_timeout = greeting_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.limiter = FailureLimiter()
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
        self._post("send", items)

    def attach_worker(self, handle: Any) -> None:
        """Start reading a new worker's reply pipe (thread-safe)."""
        self._post("worker", handle)

    def stop_accepting(self) -> None:
        """Close the listening socket, freeing the port (thread-safe)."""
        self._post("stop_accepting", None)

    def stop(self) -> None:
        self._post("stop", None)

    def _post(self, kind: str, payload: Any) -> None:
        self._outbound.put((kind, payload))
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # already woken
        except OSError:
            pass  # the loop has ended: nothing left to wake

    # ---- the loop ------------------------------------------------------------------
    def run(self) -> None:
        self.sock.setblocking(False)
        self._selector.register(self.sock, _READ, ("accept", None))
        self._selector.register(self._wake_r, _READ, ("wake", None))
        try:
            while self.running:
                try:
                    self._turn()
                except Exception:  # the listener must outlive any bug
                    log.exception("listener: a turn of the loop failed")
        finally:
            self._close_all()

    def _turn(self) -> None:
        for key, mask in self._selector.select(timeout=1.0):
            kind, obj = key.data
            try:
                if kind == "conn":
                    self._ready(obj, mask)
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
            self._housekeeping(now)

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
                if self.sock.fileno() >= 0:
                    self._selector.unregister(self.sock)
                    self.sock.close()
            elif kind == "stop":
                self.running = False

    # ---- connections ---------------------------------------------------------------
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
            conn = Connection(next(self._ids), transport, peer, peer_ip(addr),
                              self.new_session(), self.max_frame)
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
            self._set_events(conn, _READ | (_WRITE if conn.out else 0))
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
        batch: List[Request] = []
        for frame in conn.frames.feed(data):
            if conn.closing_reason:
                break  # ending (after a failed authentication): read no further
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
            except Exception:  # a bug: answer this frame, keep the connection
                log.exception("listener: a frame from %s failed", conn.peer)
                self._queue(conn, writing.error_from(ServerError(
                    "internal error; see the server log"), req.id_json))
        if batch:
            conn.pending += len(batch)
            for target, frame in self.router.route(conn.id, batch):
                self._deliver(target, frame)
        if conn.closing_reason and not conn.eof:
            self._end(conn, conn.closing_reason)  # once its last reply is queued

    def _connection_op(self, conn: Connection, req: Request) -> Optional[Dict[str, Any]]:
        if req.op == "hello":
            welcome = conn.session.hello(req.args)
            self.router.identify(conn.id, req.args["session"], req.args["take_over"])
            return welcome
        if req.op == "ping":
            result = {"time_ns": time.monotonic_ns()}
            if req.args["data"] is not None:
                result["data"] = req.args["data"]
            return result
        if req.op == "auth":
            return self._authenticate(conn, req)
        raise ServerError(f"{req.op} is not a connection operation")  # pragma: no cover

    def _authenticate(self, conn: Connection, req: Request) -> Dict[str, Any]:
        try:
            if self.limiter.blocked(conn.ip):
                raise AuthFailed(f"too many failed attempts from {conn.ip}; try again in a minute")
            return conn.session.auth(req.args)
        except AuthFailed as exc:
            self.limiter.failed(conn.ip)
            log.warning("authentication failed for %s: %s", conn.peer, exc.message)
            conn.closing_reason = "authentication failed"
            raise

    def _end(self, conn: Connection, reason: Optional[str]) -> None:
        """Read no more; answer what was asked, then close (peer EOF, or us)."""
        conn.eof = True
        conn.eof_at = time.monotonic()
        conn.closing_reason = reason
        self._set_events(conn, conn.events & _WRITE)
        self._maybe_finish(conn)

    def _maybe_finish(self, conn: Connection) -> None:
        if conn.eof and conn.pending <= 0 and not conn.out:
            self._close(conn, conn.closing_reason)

    def _close(self, conn: Connection, reason: Optional[str]) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        if reason:
            log.info("closing connection %d (%s): %s", conn.id, conn.peer, reason)
        self._set_events(conn, 0)
        conn.transport.close()
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

    def _housekeeping(self, now: float) -> None:
        for conn in list(self.connections.values()):
            silent = conn.silent_for(now)
            if conn.eof:
                if now - conn.eof_at > self.eof_grace:
                    self._close(conn, "the peer left and its replies did not come in time")
            elif not conn.session.ready and self.greeting_timeout and \
                    now - conn.opened_at > self.greeting_timeout and (self.tls or conn.session.authenticator):
                self._close(conn, f"no TLS handshake or authentication within {self.greeting_timeout:g} s")
            elif conn.session.heartbeat and silent > 3 * conn.session.heartbeat + 1:
                self._close(conn, f"silent for {silent:.0f} s (its heartbeat is {conn.session.heartbeat:g} s)")
            elif self.heartbeat_timeout and silent > self.heartbeat_timeout:
                self._close(conn, f"silent for {silent:.0f} s")

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
                elif target == "pong":
                    handle.probe_sent = None  # the worker is alive
                    continue
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
        if conn.out and not conn.transport.handshaking:
            try:
                sent = conn.transport.send(conn.out)
            except OSError as exc:
                self._close(conn, f"send failed: {exc}")
                return
            del conn.out[:sent]
        if len(conn.out) > self.max_buffer:
            self._close(conn, f"not reading: {len(conn.out)} bytes waiting")
            return
        if not conn.transport.handshaking:
            self._set_events(conn, (0 if conn.eof else _READ) | (_WRITE if conn.out else 0))
        if conn.eof:
            self._maybe_finish(conn)
