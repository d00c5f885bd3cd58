"""The reading end of a client's socket, plain or TLS, as one interface.

:class:`Wire` never waits on its own: :meth:`Wire.buffered` gives what
already arrived (a TLS layer may hold whole records that select cannot
see), :meth:`Wire.wait` waits for the socket with a timeout, and
:meth:`Wire.read` reads once after :meth:`Wire.wait` said it is readable.
Each waiting thread has its own Wire (a poll object is one thread's).

>>> import socket
>>> a, b = socket.socketpair()
>>> wire = Wire(a)
>>> wire.buffered(), wire.wait(0.0)
(None, False)
>>> b.sendall(b"hi")
>>> wire.wait(1.0), wire.read()
(True, b'hi')
>>> a.close(); b.close()
"""
from __future__ import annotations

import os
import select
import socket
from typing import Optional, Union

from ..tls import SecureSocket

#: under glibc's mmap threshold: no map per read
CHUNK = 65536
#: a plain socket is read and written on its descriptor where that works: a
#: socket with a timeout polls before every recv/send (one system call more)
FD_IO = os.name == "posix"
_IN = select.POLLIN | select.POLLPRI if hasattr(select, "poll") else 0


class Wire:
    """One thread's view of reading *sock* (see the module docstring).

    A *pausable* wire can be told, from another thread, to stop reporting the
    socket (:meth:`pause`) and to report it again (:meth:`resume`) while its
    thread waits: the background reader's, so that replies a caller reads
    itself do not wake it too (epoll on Linux; elsewhere it wakes, and looks
    whose turn it is)."""

    __slots__ = ("sock", "tls", "_fd", "_poll", "_epoll", "_tls")

    def __init__(self, sock: Union[socket.socket, SecureSocket], pausable: bool = False):
        self.sock = sock
        self._tls = sock if isinstance(sock, SecureSocket) else None
        #: TLS: look at buffered() before waiting for the socket
        self.tls = self._tls is not None
        self._fd = sock.fileno()
        self._poll = self._epoll = None
        if pausable and hasattr(select, "epoll"):
            self._epoll = select.epoll(1)
            self._epoll.register(self._fd, select.EPOLLIN)
        elif hasattr(select, "poll"):
            # poll, not select: a program with many files open has descriptors over 1024
            self._poll = select.poll()
            self._poll.register(self._fd, _IN)

    def buffered(self) -> Optional[bytes]:
        """Bytes that arrived already and wait above the socket (TLS), b"" at
        the end of the stream, or None: wait for the socket."""
        return None if self._tls is None else self._tls.recv_buffered(CHUNK)

    def wait(self, timeout: Optional[float]) -> bool:
        """Is the socket readable within *timeout* seconds (None: no bound)?"""
        if timeout is not None:
            timeout = max(0.0, timeout)
        if self._epoll is not None:
            return bool(self._epoll.poll(-1 if timeout is None else timeout))
        if self._poll is not None:
            return bool(self._poll.poll(None if timeout is None else timeout * 1000.0))
        return bool(select.select([self._fd], [], [], timeout)[0])

    def writable(self) -> bool:
        """Would a small write go out at once (the socket has room now)?"""
        if hasattr(select, "poll"):
            poll = select.poll()
            poll.register(self._fd, select.POLLOUT)
            return bool(poll.poll(0))
        return bool(select.select([], [self._fd], [], 0)[1])

    @property
    def pausable(self) -> bool:
        """Does :meth:`pause` stop the socket being reported (epoll)?"""
        return self._epoll is not None

    def pause(self) -> None:
        """Stop reporting the socket as readable (a pausable wire, on Linux)."""
        self._arm(0)

    def resume(self) -> None:
        """Report the socket again (at once if something waits in it)."""
        self._arm(select.EPOLLIN)

    def _arm(self, events: int) -> None:
        if self._epoll is not None:
            try:
                self._epoll.modify(self._fd, events)
            except (OSError, ValueError):
                pass  # closed: whoever reads hears of it

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()

    def send(self, data: bytes) -> None:
        """``sendall(data)``; a plain socket tries one write first, without the
        poll its timeout would add (a request that fits goes out in it)."""
        if self._tls is None and FD_IO:
            try:
                sent = os.write(self.sock.fileno(), data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]  # the rest as sendall: within the timeout
        self.sock.sendall(data)

    def read(self) -> Optional[bytes]:
        """One read after :meth:`wait` said readable: bytes, b"" at the end,
        or None (woken for nothing, or a TLS record is not whole yet: wait again)."""
        if self._tls is None:
            if not FD_IO:
                return self.sock.recv(CHUNK)
            try:  # fileno() each time: -1 (EBADF) once closed, never a reused number
                return os.read(self.sock.fileno(), CHUNK)
            except BlockingIOError:
                return None  # woken for nothing: wait again
        if not self._tls.fill():
            return b""
        return self._tls.recv_buffered(CHUNK)
