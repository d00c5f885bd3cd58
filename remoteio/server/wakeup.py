"""A wake pipe: a thread (or a signal) makes a ``select`` loop look again.

>>> pipe = WakePipe()
>>> pipe.wake(); pipe.wake()
>>> pipe.drain()   # both wake-ups read at once; the next select waits again
2
>>> pipe.close(); pipe.wake()   # a late wake after close is ignored
"""
from __future__ import annotations

import os


class WakePipe:
    """Both ends non-blocking; :meth:`wake` never blocks nor raises."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def fileno(self) -> int:
        return self.read_fd

    def wake(self) -> None:
        write_fd = self.write_fd
        if write_fd >= 0:
            try:
                os.write(write_fd, b"\0")
            except OSError:
                pass  # already woken (the pipe is full), or closed

    def drain(self) -> int:
        """Read every wake-up waiting; how many bytes that was."""
        read = 0
        try:
            while True:
                chunk = os.read(self.read_fd, 4096)
                if not chunk:
                    break
                read += len(chunk)
        except (BlockingIOError, OSError):
            pass
        return read

    def close(self) -> None:
        # a late wake() must not write to a number the system has reused
        read_fd, write_fd, self.read_fd, self.write_fd = self.read_fd, self.write_fd, -1, -1
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
