"""One asyncio connection to a server: the sans-I/O ClientConnection behind an asyncio.Protocol.

Each request's waiter is a future. A caller that stops awaiting (cancelled,
or timed out) cancels its future; the late reply then finds it done and is
dropped, so the connection goes on, in step. Events go to ``on_event`` on
the loop, which must not block.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import CallTimeout, ConnectionLost, ProtocolViolation, RemoteIOError
from ..protocol.client_conn import ClientConnection, Event, result

log = logging.getLogger(__name__)

#: bytes the transport may hold unsent before callers wait for it to drain
HIGH_WATER = 1 << 20
#: one read, at most (as the sync client's reader)
READ_SIZE = 65536
#: requests made in one turn of the loop are written together, this many at most
WRITE_BATCH = 64


class AsyncLink(asyncio.BufferedProtocol):
    def __init__(self, on_event: Callable[[Dict[str, Any]], None],
                 on_lost: Callable[[BaseException], None]):
        self.on_event = on_event
        self.on_lost = on_lost
        self.conn = ClientConnection()
        self.transport: Optional[asyncio.Transport] = None
        self.lost: Optional[BaseException] = None
        self._closing = False
        self._writable = asyncio.Event()
        self._writable.set()
        # reads go into this buffer: asyncio's plain Protocol recv()s 256 KiB
        # a time, over glibc's mmap threshold, a map and unmap per read
        self._buffer = bytearray(READ_SIZE)
        self._view = memoryview(self._buffer)
        # requests of one turn of the loop, written together at its end (None: nothing waits)
        self._out: Optional[List[bytes]] = None
        # what runs on an accepted reply as it is read, before what came after it
        self._on_reply: Dict["asyncio.Future[Dict[str, Any]]", Callable[[Dict[str, Any]], None]] = {}

    # ---- asyncio.BufferedProtocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=HIGH_WATER)  # type: ignore[attr-defined]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        try:
            items = self.conn.receive(bytes(self._view[:nbytes]))
        except (ValueError, RemoteIOError) as exc:
            reason = exc if isinstance(exc, RemoteIOError) else ProtocolViolation(
                f"the server sent a frame that is not JSON: {exc}")
            self.abort(reason)
            return
        for item in items:
            if item.__class__ is Event:
                self.on_event(item.message)
            else:
                future = item.waiter
                if not future.done():  # cancelled: nobody waits for it any more
                    future.set_result(item.message)
                    if self._on_reply:
                        self._replied(future, item.message)

    def _replied(self, future: "asyncio.Future[Dict[str, Any]]", message: Dict[str, Any]) -> None:
        hook = self._on_reply.pop(future, None)
        if hook is not None and message.get("ok"):
            try:
                hook(message)
            except Exception:  # the reading must go on
                log.exception("handling a reply failed")

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._fail(ConnectionLost("closed") if self._closing else ConnectionLost(
            f"connection failed: {exc}" if exc else "the server closed the connection"))

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ---- requests ----------------------------------------------------------------------------
    def pipeline(self, requests: Sequence[Tuple[str, Mapping[str, Any]]]
                 ) -> List["asyncio.Future[Dict[str, Any]]"]:
        """Send ``(op, fields)`` requests in one write; their futures (the
        whole reply messages), at once."""
        if self.lost is not None or self.transport is None:
            raise ConnectionLost(f"not connected: {self.lost}")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in requests]
        self._write(loop, self.conn.send(
            [(op, fields, future) for (op, fields), future in zip(requests, futures)]))
        return futures

    def _write(self, loop: asyncio.AbstractEventLoop, data: bytes) -> None:
        """Send *data* at the end of this turn of the loop, in one write with
        the other requests made in it (:data:`WRITE_BATCH` at most: a
        gather of 1,000 calls is 16 sends, not 1,000), in the order they
        were made."""
        out = self._out
        if out is None:
            self._out = [data]
            loop.call_soon(self._flush)
        else:
            out.append(data)
            if len(out) >= WRITE_BATCH:  # the server starts on these while more are made
                self._out = []
                self.transport.write(b"".join(out))
        self.conn.sent()

    def _flush(self) -> None:
        out, self._out = self._out, None
        if out and self.transport is not None and self.lost is None:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def writable(self, timeout: float) -> None:
        """Wait until the transport has room (the server reads what we send)."""
        if not self._writable.is_set():
            try:
                await asyncio.wait_for(self._writable.wait(), timeout)
            except asyncio.TimeoutError:
                raise CallTimeout("the server did not take the requests in time") from None

    async def call(self, op: str, fields: Mapping[str, Any], timeout: Optional[float],
                   on_reply: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """One request's reply fields (raises the server's error, CallTimeout,
        ConnectionLost); cancelling it leaves the connection usable. *on_reply*
        (an accepted reply's fields) runs as the reply is read, before any
        event read after it. (The path of every awaited call, so it is
        written out flat: settle()'s timer.)"""
        if timeout is not None and not self._writable.is_set():
            await self.writable(timeout)
        if self.lost is not None or self.transport is None:
            raise ConnectionLost(f"not connected: {self.lost}")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if on_reply is not None:
            self._on_reply[future] = on_reply
        self._write(loop, self.conn.send(((op, fields, future),)))
        if timeout is None and on_reply is None:
            return result(await future)
        timer = None if timeout is None else loop.call_later(
            max(0.0, timeout), _expire, future, op, timeout)
        try:
            message = await future
        finally:
            if timer is not None:
                timer.cancel()
            if on_reply is not None:
                self._on_reply.pop(future, None)
        return result(message)

    # ---- the end -----------------------------------------------------------------------------
    def abort(self, reason: BaseException) -> None:
        """Give up on this connection (e.g. a heartbeat went unanswered)."""
        self._fail(reason)
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, reason: BaseException) -> None:
        first = self.lost is None
        if first:
            self.lost = reason
        for future in self.conn.fail():
            if not future.done():
                future.set_exception(ConnectionLost(str(reason)))
        self._writable.set()
        if first and not self._closing:
            self.on_lost(reason)

    async def close(self, timeout: float) -> None:
        """Close once outstanding replies are in (or *timeout* passes);
        cancelled calls are not waited for."""
        self._closing = True
        self._flush()  # what was asked in this turn goes out before the close
        waiting = [f for f in self.conn.waiting() if not f.done()]
        if waiting and self.lost is None:
            await asyncio.wait(waiting, timeout=timeout)
        if self.transport is not None:
            self.transport.close()
        self._fail(ConnectionLost("closed"))


def _expire(future: "asyncio.Future[Any]", op: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(CallTimeout(f"no reply to {op} within {timeout:g} s"))


async def settle(future: "asyncio.Future[Dict[str, Any]]", op: str,
                 timeout: Optional[float]) -> Dict[str, Any]:
    """The reply fields of *future* within *timeout* (CallTimeout after).

    A timer that fails the future rather than asyncio.wait_for: no task and
    no second future per call (the round trip is what a user waits for).
    A caller cancelled while awaiting cancels the future (asyncio does)."""
    if timeout is None or future.done():
        return result(await future)
    timer = asyncio.get_running_loop().call_later(max(0.0, timeout), _expire, future, op, timeout)
    try:
        message = await future
    finally:
        timer.cancel()
    return result(message)


async def settle_all(futures: List["asyncio.Future[Dict[str, Any]]"], ops: Sequence[str],
                     timeout: Optional[float]) -> List[Dict[str, Any]]:
    """The replies of *futures*, in order, within one *timeout*; if one fails
    (or the caller is cancelled) the rest are cancelled: nobody waits for them."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    try:
        return [await settle(future, op, None if deadline is None
                             else max(0.0, deadline - loop.time()))
                for future, op in zip(futures, ops)]
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
