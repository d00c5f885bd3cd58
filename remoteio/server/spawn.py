"""Starting a pin worker process: what it inherits, signals, how it waits.

Workers are forked (``multiprocessing`` "fork" context) so that they share
the simulated board's memory and pipes and start in about a millisecond
without importing anything. Right after the fork the child lets go of what
is not its own (see :func:`drop_inherited`).
"""
from __future__ import annotations

import logging
import os
import select
import signal
import stat
from typing import Any, Callable, List, Optional

from ..config import PinRule
from .worker import PinWorker

log = logging.getLogger(__name__)


def worker_main(board: int, bcm: int, mode: str, backend, status, tasks, replies,
                rule: PinRule, foreign_fds: List[int]) -> None:
    """Entry point of a pin worker process (forked by the router)."""
    drop_inherited(foreign_fds)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    signal.signal(signal.SIGTERM, _exit_on_signal)
    backend.prepare_worker(board)
    try:
        PinWorker(board, bcm, mode, backend, status, tasks, replies, rule).run(
            waiter(tasks.fileno()))
    finally:
        backend.cleanup_worker()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # unwinds through run(), which makes the pin safe


def waiter(fd: int) -> Callable[[Optional[float]], bool]:
    """A function that waits until *fd* is readable or *timeout* seconds pass.

    ``select`` takes microsecond timeouts (``poll`` and ``epoll`` round to
    milliseconds, which would make timed tasks late) but only file numbers
    below FD_SETSIZE; a worker of a server with very many open files falls
    back to ``poll``."""
    if fd >= 1024:
        low = os.dup(fd)  # the lowest free number
        if low < 1024:
            fd = low
        else:
            os.close(low)
            log.warning("file number %d too high for select; timing falls back to 1 ms", fd)
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return lambda timeout: bool(poller.poll(None if timeout is None else timeout * 1000))
    return lambda timeout: bool(select.select([fd], [], [], timeout)[0])


def drop_inherited(foreign_fds: List[int]) -> None:
    """Let go of what the fork copied from the server: its sockets (the
    listening one above all) and the pipes of the other workers (whose end of
    file must mean "the server is gone"). The numbers are pointed at
    /dev/null rather than closed, so a stale object closing its old number
    later cannot close something of ours."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
            fd = int(name)
            try:
                if fd > 2 and fd != devnull and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd)
            except OSError:
                pass
        for fd in foreign_fds:
            if fd >= 0:
                try:
                    os.dup2(devnull, fd)
                except OSError:
                    pass
    finally:
        os.close(devnull)
