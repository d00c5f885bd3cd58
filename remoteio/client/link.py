"""One connection to a server: send requests, match replies, pass on events.

A :class:`Link` owns a connected socket. Requests get increasing integer
ids; replies are matched to their :class:`Call` by id, so any number of
calls may be in flight from any number of threads. Whoever reads the socket
hands every reply to its Call and every event to ``on_event``, which must
not block (the client hands callbacks on to its dispatcher thread).

Who reads (leader/follower, :meth:`Link.wait`): a caller waiting for its
reply reads the socket itself when no other caller does, so its reply
reaches it without a thread hop; other callers wait on their Call until
their reply is in or the reading is handed to them. While no caller waits,
the background thread ``remoteio-reader`` reads (events, late replies).
Nothing here spins, or waits on the network without a timeout.

A call whose caller stopped waiting (Ctrl-C, or any exception while it
waited, a timeout included) is *abandoned*: its late reply is dropped
quietly, and :meth:`Link.close` does not wait for it, since nobody will ever
read it.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from ..errors import CallTimeout, ConnectionLost, RemoteIOError
from ..protocol.client_conn import CLIENT_MAX_FRAME, ClientConnection, Event
from ..tcp import reset, tune
from .calls import Call, abandon, wait_all
from .wire import Wire

log = logging.getLogger(__name__)

__all__ = ["Call", "Link", "abandon", "wait_all", "CLIENT_MAX_FRAME"]


#: the role of the background reader thread (no caller leads)
_BACKGROUND = "background"
#: a request this small goes out in one write when the socket has room
CLAIM_MAX = 4096


class Link:
    def __init__(self, sock: socket.socket, *, send_timeout: float,
                 on_event: Callable[[Dict[str, Any]], None],
                 on_lost: Callable[[BaseException], None]):
        self.sock = sock
        self.on_event = on_event
        self.on_lost = on_lost
        self.lost: Optional[BaseException] = None
        #: framing, ids and reply matching (the waiters are Calls)
        self.conn = ClientConnection(CLIENT_MAX_FRAME)
        self._send_lock = threading.Lock()
        self._closing = False
        self._idle_timeout = send_timeout
        sock.settimeout(send_timeout)
        tune(sock)
        # leader/follower (see wait()): who reads is decided under _mutex;
        # whoever reads holds _read_lock while it reads and hands out what came
        self._mutex = threading.Lock()
        self._background_turn = threading.Condition(self._mutex)
        self._read_lock = threading.Lock()
        self._role: object = _BACKGROUND
        self._followers: Dict[Call, None] = {}  # waiting callers, oldest first
        self._background_parked = False  # waiting for its turn (not on the socket)
        self._leader_wire = Wire(sock)  # used only under _read_lock
        self._background_wire = Wire(sock, pausable=True)  # the background reader's own
        self._send_wire = Wire(sock)  # used only under _send_lock
        self._reader = threading.Thread(target=self._read_loop, name="remoteio-reader", daemon=True)
        self._reader.start()

    # ---- sending --------------------------------------------------------------
    def call(self, op: str, fields: Dict[str, Any],
             on_reply: Optional[Callable[[Dict[str, Any]], None]] = None) -> Call:
        """Send one request; return its :class:`Call` at once. *on_reply* (an
        accepted reply's fields) runs on the reading thread, before anything
        that came after the reply is handed out; it must not block."""
        call = Call(op, self, on_reply)
        self._send([(op, fields)], [call])
        return call

    def request(self, op: str, fields: Dict[str, Any], timeout: Optional[float],
                on_reply: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Send one request and wait for its reply (``call(...).result(timeout)``),
        claiming the reading before sending when nobody reads for a caller:
        a quick reply then cannot reach the background reader first."""
        call = Call(op, self, on_reply)
        try:
            self._send_one(op, fields, call)
        except BaseException:
            with self._mutex:
                if self._role is call:
                    self._hand_over()
            raise
        return call.result(timeout)

    def pipeline(self, requests: list) -> list:
        """Send several ``(op, fields)`` requests in one write."""
        calls = [Call(op, self) for op, _ in requests]
        self._send(requests, calls)
        return calls

    def _send_one(self, op: str, fields: Dict[str, Any], call: Call) -> None:
        """Send one request, its caller taking the reading first when nobody
        reads for a caller and the request goes out at once (a send that may
        block must not keep the reading from anyone: others' replies may come)."""
        with self._send_lock:
            if self.lost is not None:
                raise ConnectionLost(f"not connected: {self.lost}")
            data = self.conn.send_one(op, fields, call)
            # nothing else outstanding: the server read all we sent, the socket has room
            if self._role is _BACKGROUND and len(data) <= CLAIM_MAX and (
                    self.conn.outstanding == 1 or self._send_wire.writable()):
                with self._mutex:
                    if self._role is _BACKGROUND:
                        self._background_wire.pause()
                        self._role = call
            self._write(data, [call])

    def _send(self, requests: list, calls: List[Call]) -> None:
        with self._send_lock:
            if self.lost is not None:
                raise ConnectionLost(f"not connected: {self.lost}")
            data = self.conn.send([(op, fields, call)
                                   for (op, fields), call in zip(requests, calls)])
            self._write(data, calls)

    def _write(self, data: bytes, calls: List[Call]) -> None:
        """Send *data* (under _send_lock)."""
        try:
            self._send_wire.send(data)
            self.conn.sent()
        except socket.timeout:
            error = CallTimeout("the server did not take the request in time")
            self._fail(error, give_up=True)
            raise error from None
        except OSError as exc:
            error = ConnectionLost(f"sending failed: {exc}")
            self._fail(error)
            raise error from None
        except BaseException:
            # Ctrl-C during sendall: the caller never gets these calls.
            # A small frame is sent by one send() and the interrupt is
            # raised after it, so the stream stays whole.
            abandon(calls)
            raise

    @property
    def outstanding(self) -> int:
        return self.conn.outstanding

    @property
    def last_sent(self) -> float:
        """When a request last went out (the keeper's heartbeat follows it)."""
        return self.conn.last_sent

    @property
    def last_received(self) -> float:
        return self.conn.last_received

    # ---- waiting: leader/follower ---------------------------------------------------
    def wait(self, call: Call, timeout: Optional[float]) -> bool:
        """Wait up to *timeout* s for *call*'s reply; False if it is not in.

        A caller whose reply is not in reads the socket itself when no other
        caller does (the leader: the background reader steps aside), handing
        out every reply that comes (other threads' too) and every event, so
        its own reply costs no thread hop. Other callers wait on their Call
        (followers). A leader that is done (its reply came, or its time ran
        out) hands the reading to the oldest follower, or back to the
        background reader when nobody waits."""
        deadline = None if timeout is None else time.monotonic() + timeout
        mutex = self._mutex
        try:
            while True:
                with mutex:
                    if call.done:
                        if self._role is call:  # claimed by request(); answered meanwhile
                            self._hand_over()
                        return True
                    leading = self._role is _BACKGROUND or self._role is call
                    if leading:
                        if self._role is _BACKGROUND:
                            self._background_wire.pause()  # our reply must not wake it
                        self._role = call
                    else:
                        self._followers[call] = None
                if leading:
                    try:
                        self._lead(call, deadline)
                    finally:
                        with mutex:
                            if self._role is call:
                                self._hand_over()
                    if call.done:
                        return True
                    if self.lost is not None:  # sent as the link failed: no reply will come
                        call.settle(None, ConnectionLost(str(self.lost)))
                        return True
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    continue
                woken = call.sleep(None if deadline is None else deadline - time.monotonic())
                with mutex:
                    self._followers.pop(call, None)
                    if not woken and not call.done:
                        if self._role is call:  # handed the reading as time ran out
                            self._hand_over()
                        return False
        except BaseException:
            with mutex:
                self._followers.pop(call, None)
                if self._role is call:
                    self._hand_over()
            raise

    def _hand_over(self) -> None:
        """The leader is done: the oldest follower still waiting reads next,
        or the background reader when none waits (under _mutex)."""
        followers = self._followers
        while followers:
            follower = next(iter(followers))
            del followers[follower]
            if not follower.done:
                self._role = follower
                follower.signal()
                return
        self._role = _BACKGROUND
        self._background_wire.resume()
        if self._background_parked:
            self._background_turn.notify()

    def _lead(self, call: Call, deadline: Optional[float]) -> None:
        """Read until *call*'s reply is in, the link fails or *deadline* passes."""
        read_lock = self._read_lock
        if not read_lock.acquire(False):  # the background reader is handing out a read
            left = None if deadline is None else deadline - time.monotonic()
            if not read_lock.acquire(timeout=-1 if left is None else max(0.0, left)):
                return
        wire = self._leader_wire
        tls = wire.tls
        clock = time.monotonic
        try:
            while call.reply is None and call.error is None and self.lost is None:
                data = self._buffered(wire) if tls else None
                if data is None:
                    left = None
                    if deadline is not None:
                        left = deadline - clock()
                        if left <= 0:
                            return
                    if not wire.wait(left) or not self._take(wire, None):
                        return
                elif not self._take(wire, data):
                    return
            if tls:
                self._drain(wire)
        finally:
            read_lock.release()

    # ---- receiving --------------------------------------------------------------
    def _buffered(self, wire: Wire) -> Optional[bytes]:
        try:
            return wire.buffered()
        except (OSError, ValueError) as exc:
            self._fail(ConnectionLost(f"connection failed: {exc}"))
            return b""

    def _drain(self, wire: Wire) -> None:
        """Hand out what waits above the socket (TLS records read together),
        so that whoever reads next, selecting on the socket, misses nothing."""
        while self.lost is None:
            data = self._buffered(wire)
            if not data or not self._take(wire, data):
                return

    def _take(self, wire: Wire, data: Optional[bytes]) -> bool:
        """Read once (unless *data* was read already) and hand out the replies
        and events in it (under _read_lock); False once the link failed."""
        reason: Optional[BaseException] = None
        try:
            if data is None:
                data = wire.read()
                if data is None:
                    return True  # half a TLS record: the rest is on its way
            if not data:
                reason = ConnectionLost("the server closed the connection")
            else:
                for item in self.conn.receive(data):
                    if item.__class__ is Event:
                        if self.lost is not None:
                            return False  # a link given up on hands out nothing more
                        self.on_event(item.message)
                    else:
                        item.waiter.settle(item.message)
                return True
        except (OSError, ValueError, AttributeError, RemoteIOError) as exc:
            reason = exc if isinstance(exc, RemoteIOError) else ConnectionLost(
                f"connection failed: {exc}")
        except Exception as exc:  # a bug in handing out: the stream is no longer ours
            log.exception("reading the connection failed")
            reason = ConnectionLost(f"reading failed: {exc!r}")
        except BaseException:
            # interrupted (Ctrl-C on a leading caller) between reading and handing
            # out: what was read is lost, so the stream cannot be trusted
            self._fail(ConnectionLost("interrupted while reading the connection"), give_up=True)
            raise
        self._fail(reason if not self._closing else ConnectionLost("closed"))
        return False

    def _read_loop(self) -> None:
        """The background reader: reads while no caller leads (events,
        heartbeat replies, replies nobody waits for yet)."""
        wire = self._background_wire
        mutex, turn = self._mutex, self._background_turn
        try:
            while True:
                with mutex:
                    parked = False
                    while self._role is not _BACKGROUND and self.lost is None:
                        if parked and wire.pausable:
                            # woken by a hand-over that the next caller took back at
                            # once: wait in the paused wire (it reports nothing until
                            # the reading is handed back), or every call of a busy
                            # caller would wake this thread once more
                            break
                        self._background_parked = parked = True
                        turn.wait(self._idle_timeout)
                        self._background_parked = False
                    if self.lost is not None:
                        return
                if not wire.wait(self._idle_timeout) or self._role is not _BACKGROUND:
                    continue  # idle, or a caller leads: it reads
                with self._read_lock:
                    if self._role is not _BACKGROUND:
                        continue
                    data = self._buffered(wire)
                    if data is None:
                        if not wire.wait(0):
                            continue  # a leader read it meanwhile
                    if not self._take(wire, data):
                        return
                    self._drain(wire)
        except (OSError, ValueError) as exc:  # the socket was closed under us
            if not self._closing:
                self._fail(ConnectionLost(f"connection failed: {exc}"))
        finally:
            wire.close()

    def abort(self, reason: BaseException) -> None:
        """Give up on this connection (e.g. a heartbeat went unanswered)."""
        self._fail(reason, give_up=True)

    def _fail(self, reason: BaseException, give_up: bool = False) -> None:
        """Fail every call in flight; *give_up* resets the connection: requests
        still in the kernel's buffers are dropped, never delivered later (their
        callers were told they failed, and may have sent them again)."""
        first = self.lost is None
        if first:
            self.lost = reason
            if give_up:  # before any caller hears of it and sends again elsewhere
                reset(self.sock)
        for call in self.conn.fail():
            call.settle(None, ConnectionLost(str(reason)))
        with self._mutex:
            self._background_turn.notify()
        if first:
            if not give_up:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if not self._closing:
                self.on_lost(reason)

    def close(self, timeout: float) -> None:
        """Close once outstanding replies are in (or *timeout* passes); calls
        nobody waits for any more (abandoned) are not waited for."""
        self._closing = True
        if self.conn.outstanding and self.lost is None:
            deadline = time.monotonic() + timeout
            for call in self.conn.waiting():
                if call.abandoned:
                    continue
                try:
                    call.result(max(0.0, deadline - time.monotonic()))
                except RemoteIOError:
                    pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._mutex:
            self._background_turn.notify()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)
        self.sock.close()
        self._fail(ConnectionLost("closed"))
