"""One connection to a server: send requests, match replies, pass on events.

A :class:`Link` owns a connected socket and a reader thread. Requests get
increasing integer ids; the reader matches each reply to its :class:`Call`
by id, so any number of calls may be in flight from any number of threads.
Events are handed to ``on_event`` on the reader thread, which must not block
(the client hands them on to its dispatcher thread). Nothing here sleeps or
waits without a timeout.

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
from typing import Any, Callable, Dict, Iterable, List, Optional

from ..errors import CallTimeout, ConnectionLost, RemoteIOError
from ..protocol.client_conn import CLIENT_MAX_FRAME, ClientConnection, Event, result
from ..tcp import reset, tune

log = logging.getLogger(__name__)

__all__ = ["Call", "Link", "abandon", "wait_all", "CLIENT_MAX_FRAME"]
_SETTLING = threading.Lock()  # short and rarely contended: one for all calls


class Call:
    """One request in flight; :meth:`result` waits for its reply."""

    __slots__ = ("op", "_lock", "reply", "error", "abandoned")

    def __init__(self, op: str):
        self.op = op
        self._lock = threading.Lock()
        self._lock.acquire()
        self.reply: Optional[Dict[str, Any]] = None
        self.error: Optional[BaseException] = None
        #: nobody waits for the reply any more (see the module docstring)
        self.abandoned = False

    def settle(self, reply: Optional[Dict[str, Any]], error: Optional[BaseException] = None) -> None:
        """Give the call its outcome; the first one counts. The reader thread
        (a reply, or its end) and the keeper (giving up on the link) can both
        settle one call: a second release would raise in, and kill, the keeper
        (found by the chaos run of tests/net)."""
        with _SETTLING:
            if self.reply is not None or self.error is not None:
                return
            self.reply, self.error = reply, error
            self._lock.release()

    @property
    def done(self) -> bool:
        return self.reply is not None or self.error is not None

    def result(self, timeout: Optional[float]) -> Dict[str, Any]:
        """The reply's fields; raises the server's error, or CallTimeout."""
        try:
            got = self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        except BaseException:
            # Ctrl-C (or a signal handler's exception) while waiting: the
            # caller is gone, so nobody may wait for this reply again
            self.abandoned = True
            raise
        if not got:
            self.abandoned = True  # the caller was told there is no answer
            raise CallTimeout(f"no reply to {self.op} within {timeout:g} s")
        self._lock.release()  # later result() calls return at once
        if self.error is not None:
            raise self.error
        reply = self.reply
        if not reply.get("ok"):
            result(reply)  # raises the server's error as its class
        return reply


def abandon(calls: Iterable[Call]) -> None:
    """Mark the calls nobody will wait for (the rest of a pipeline whose
    caller gave up), so that closing does not wait for their replies."""
    for call in calls:
        call.abandoned = True


def wait_all(calls: List[Call], timeout: Optional[float]) -> List[Dict[str, Any]]:
    """The replies of *calls*, in order, all within one *timeout*; if waiting
    for one fails, the later ones are abandoned too (their caller is gone)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        return [call.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                for call in calls]
    except BaseException:
        abandon(calls)
        raise


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
        sock.settimeout(send_timeout)
        tune(sock)
        self._reader = threading.Thread(target=self._read_loop, name="remoteio-reader", daemon=True)
        self._reader.start()

    # ---- sending --------------------------------------------------------------
    def call(self, op: str, fields: Dict[str, Any]) -> Call:
        """Send one request; return its :class:`Call` at once."""
        return self.pipeline([(op, fields)])[0]

    def pipeline(self, requests: list) -> list:
        """Send several ``(op, fields)`` requests in one write."""
        calls = [Call(op) for op, _ in requests]
        with self._send_lock:
            if self.lost is not None:
                raise ConnectionLost(f"not connected: {self.lost}")
            data = self.conn.send([(op, fields, call)
                                   for (op, fields), call in zip(requests, calls)])
            try:
                self.sock.sendall(data)
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
        return calls

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

    # ---- receiving --------------------------------------------------------------
    def _read_loop(self) -> None:
        receive = self.conn.receive
        sock = self.sock
        reason: BaseException = ConnectionLost("the server closed the connection")
        try:
            while True:
                try:
                    data = sock.recv(65536)  # under glibc's mmap threshold: no map per read
                except socket.timeout:
                    if self._closing:
                        return
                    continue
                if not data:
                    break
                for item in receive(data):
                    if item.__class__ is Event:
                        if self.lost is not None:
                            return  # a link given up on hands out nothing more
                        self.on_event(item.message)
                    else:
                        item.waiter.settle(item.message)
        except (OSError, ValueError, AttributeError, RemoteIOError) as exc:
            if not self._closing:
                reason = exc if isinstance(exc, RemoteIOError) else ConnectionLost(
                    f"connection failed: {exc}")
        self._fail(reason if not self._closing else ConnectionLost("closed"))

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
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)
        self.sock.close()
        self._fail(ConnectionLost("closed"))
