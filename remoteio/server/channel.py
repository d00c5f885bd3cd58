"""A one-way message pipe between the server's own processes.

Messages are plain data the server built itself (tuples, numbers, strings,
bytes, dicts of them; see messages.py) and are encoded with :mod:`marshal`,
behind a 4-byte length. Nothing from the network crosses a channel
undecoded: requests are validated into plain values first.

Both ends are non-blocking, so neither side ever waits on the other (the
other may be waiting on it). :meth:`Channel.send` keeps what the pipe cannot
take yet in the channel's own buffer; the owner watches the descriptor for
writing while :attr:`Channel.pending` is non-zero and calls
:meth:`Channel.flush`, and bounds that buffer itself (back-pressure).
:meth:`Channel.receive` returns the complete messages available, up to a
byte budget, which is what lets batches stay batches across processes.

>>> r, w = channel_pair()
>>> w.send([1, "two"]); w.pending
0
>>> r.receive()
[[1, 'two']]
"""
from __future__ import annotations

import marshal
import os
import struct
from typing import Any, List, Tuple
from ..errors import ChannelClosed  # noqa: F401 (defined in errors.py)

_LENGTH = struct.Struct("=I")
_dumps = marshal.dumps
_loads = marshal.loads


class Channel:
    """One end of a pipe: a reader (``fd`` readable) or a writer."""

    __slots__ = ("fd", "_buffer", "_out")

    def __init__(self, fd: int, reader: bool):
        self.fd = fd
        self._buffer = b""
        self._out = bytearray()
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self.fd

    def send(self, message: Any) -> None:
        """Write one message now, or keep the rest of it for :meth:`flush`.

        Raises OSError (EPIPE) once the reader is gone."""
        body = _dumps(message)
        if self._out:
            self._out += _LENGTH.pack(len(body))
            self._out += body
            self.flush()
            return
        data = _LENGTH.pack(len(body)) + body
        try:
            written = os.write(self.fd, data)
        except BlockingIOError:
            written = 0
        if written < len(data):
            self._out += data[written:]

    def flush(self) -> int:
        """Write what the pipe takes of the kept bytes; the bytes still kept."""
        out = self._out
        while out:
            try:
                written = os.write(self.fd, out)
            except BlockingIOError:
                break
            del out[:written]
        return len(out)

    @property
    def pending(self) -> int:
        """Bytes sent but not yet taken by the pipe."""
        return len(self._out)

    def receive(self, budget: int = 1 << 20) -> List[Any]:
        """The complete messages available now ([] if none yet), reading at
        most about *budget* bytes (the rest waits for the next call).

        Raises :exc:`ChannelClosed` at end of file."""
        chunks: List[bytes] = []
        taken = 0
        while taken < budget:
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
            taken += len(chunk)
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
        self._out = bytearray()

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
