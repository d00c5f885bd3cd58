"""A one-way message pipe between the server's own processes.

Messages are plain data the server built itself (tuples, numbers, strings,
bytes, dicts of them) and are encoded with :mod:`marshal`, behind a 4-byte
length. Nothing from the network crosses a channel undecoded: requests are
validated into plain values first. The reading end is non-blocking and
:meth:`Channel.receive` returns every complete message available in one
system call, which is what lets batches stay batches across processes.
"""
from __future__ import annotations

import marshal
import os
import struct
from typing import Any, List, Tuple

_LENGTH = struct.Struct("=I")
_dumps = marshal.dumps
_loads = marshal.loads


class ChannelClosed(EOFError):
    """The other end is gone."""


class Channel:
    """One end of a pipe: a reader (``fd`` readable) or a writer."""

    __slots__ = ("fd", "_buffer")

    def __init__(self, fd: int, reader: bool):
        self.fd = fd
        self._buffer = b""
        if reader:
            os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self.fd

    def send(self, message: Any) -> None:
        """Write one message (blocks only while the pipe is full)."""
        body = _dumps(message)
        data = memoryview(_LENGTH.pack(len(body)) + body)
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def receive(self) -> List[Any]:
        """Every complete message available now ([] if none yet).

        Raises :exc:`ChannelClosed` at end of file."""
        chunks = []
        while True:
            try:
                # 64 KiB: under glibc's mmap threshold, so no buffer is mapped
                # and unmapped per read; loop while more is waiting
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                if chunks:
                    break  # deliver what came before the end; the next call reports it
                raise ChannelClosed("the other end closed the channel")
            chunks.append(chunk)
            if len(chunk) < 65536:
                break
        if not chunks:
            return []
        chunk = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        data = self._buffer + chunk if self._buffer else chunk
        messages, pos, end = [], 0, len(data)
        while end - pos >= 4:
            (size,) = _LENGTH.unpack_from(data, pos)
            if end - pos - 4 < size:
                break
            messages.append(_loads(data[pos + 4:pos + 4 + size]))
            pos += 4 + size
        self._buffer = data[pos:]
        return messages

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0


def channel_pair(size: int = 1 << 20) -> Tuple[Channel, Channel]:
    """(reader, writer) over a new pipe of *size* bytes where the system
    allows it (Linux), so that a burst of requests does not fill it."""
    r, w = os.pipe()
    try:
        import fcntl
        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
    except (ImportError, OSError):
        pass  # the default size (64 KiB) still works, with less slack
    return Channel(r, reader=True), Channel(w, reader=False)

