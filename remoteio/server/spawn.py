"""A worker process's start: what it inherits, its signals, its entry point.

Workers are forked by the zygote (zygote.py), so they share the simulated
board's memory and pipes and start in about a millisecond without importing
anything. Right after the fork the child lets go of what is not its own (see
:func:`drop_inherited`).
"""
from __future__ import annotations

import ctypes
import logging
import os
import random
import signal
import stat
import sys
import sysconfig
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

try:  # the C module under signal: no enum wrapping of handlers (spawn.worker_signals)
    import _signal
except ImportError:  # not CPython
    import signal as _signal  # type: ignore[no-redef]

from ..pins import BOARD_TO_BCM
from .channel import Channel
from .config import PinRule
from .pinworker import PinWorker

if TYPE_CHECKING:  # handed in by the zygote's fork
    from .backends import Backend
    from .status import StatusTable

log = logging.getLogger(__name__)


#: what a terminal (Ctrl-C, a hang-up) or a kill of the whole group (``pkill``)
#: sends to every process of the server: the server's to handle, not its workers'
SERVERS_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


def worker_signals() -> None:
    """A worker ignores :data:`SERVERS_SIGNALS`: the server stops on them
    (SIGHUP re-reads its configuration) and makes every pin safe itself;
    a worker that died with them would leave its pin as it was, and the
    zygote's death would leave the server unable to start another. A worker
    ends on ``Stop``, on its task pipe's end (the server gone), or on
    SIGKILL (then the server makes its pin safe with a fresh worker)."""
    for signum in SERVERS_SIGNALS:
        set_handler(signum, signal.SIG_IGN)


def set_handler(signum: int, handler: Any) -> None:
    """``signal.signal`` without its wrapping: that looks the previous
    handler up in an enum (for a function, a failed lookup and its
    exception), and each such first run in a worker writes reference counts
    into shared enum objects, ~0.06-0.08 MiB of copied pages per worker
    (docs/performance.md). *handler* may be ``signal.SIG_IGN``/``SIG_DFL``."""
    if handler is signal.SIG_IGN:
        handler = _signal.SIG_IGN
    elif handler is signal.SIG_DFL:
        handler = _signal.SIG_DFL
    _signal.signal(signum, handler)


def realtime(priority: int, what: str) -> bool:
    """Run this process under SCHED_FIFO at *priority*, if the system allows
    it (CAP_SYS_NICE, or RLIMIT_RTPRIO: the unit's LimitRTPRIO=); else say
    why once and go on at the normal priority. A worker never spins (it
    sleeps in select), so a real-time one only takes the CPU when its clock
    or a request needs it, and then first."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError, AttributeError) as exc:
        log.warning("%s: real-time priority %d refused (%s); running at normal priority "
                    "(docs/install.md, Real-time priority)", what, priority, exc)
        return False
    return True


def fork_function() -> Callable[[], int]:
    """How a single-threaded process (the zygote) forks its workers.

    ``os.fork()`` runs CPython's at-fork hooks in the child: threading's,
    logging's and random's, written in Python. A child's first run of
    them touches objects all over the heap it shares with its parent, and
    each page they write (reference counts, lock objects) becomes the
    child's own copy: ~0.25 MiB per worker (docs/performance.md). In a
    process with one thread those hooks have nothing to repair (no lock can
    be held by a thread the child lacks; the forking thread is the child's
    main thread, with the same ident), so the zygote calls the C library's
    ``fork()`` itself and keeps only the reseeding of ``random``, so that no
    two workers draw the same numbers. Checked when called: with a second
    thread, or without a C library to call, ``os.fork``."""
    if not _plain_cpython():
        return os.fork
    try:
        # PyDLL: the GIL stays held across the call, as os.fork holds it
        libc_fork = ctypes.PyDLL(None, use_errno=True).fork
        libc_fork.restype, libc_fork.argtypes = ctypes.c_int, []
    except (OSError, AttributeError):
        return os.fork
    if threading.active_count() != 1 or _os_threads() != 1:
        return os.fork

    def bare_fork() -> int:
        pid = libc_fork()
        if pid < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        if pid == 0:
            random.seed()  # os.fork's one hook a worker needs
        return pid
    return bare_fork


def _plain_cpython() -> bool:
    """CPython with its GIL, up to 3.13: the interpreters whose C after-fork
    work (the runtime's and the import lock's re-initialisation, dead thread
    states removed) has nothing to do in a process with one thread. A
    free-threaded build repairs per-thread state there too, so it keeps
    ``os.fork``."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 14):
        return False
    return not sysconfig.get_config_var("Py_GIL_DISABLED")


def _os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0  # cannot tell: not 1, so os.fork


def drop_inherited(foreign_fds: List[int], keep: Optional[int] = None) -> None:
    """Let go of what the fork copied: every socket but *keep* (the
    listening one above all) and the *foreign_fds* (pipes whose end of file
    must mean "the other side is gone"). The numbers are pointed at
    /dev/null rather than closed, so a stale object closing its old number
    later cannot close something of ours."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
            fd = int(name)
            try:
                if fd > 2 and fd not in (devnull, keep) and stat.S_ISSOCK(os.fstat(fd).st_mode):
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


def run_pin_worker(board: int, task_fd: int, reply_fd: int, settings: Dict[str, Any], *,
                   mode: str, backend: "Backend", status: "StatusTable",
                   realtime_priority: int = 0) -> None:
    """A pin worker's process, from the zygote's fork to its end; *settings*
    carries its pin's rule (see :func:`pin_settings`)."""
    worker_signals()
    if realtime_priority:
        realtime(realtime_priority, f"pin {board}")
    backend.prepare_worker(board)
    try:
        PinWorker(board, BOARD_TO_BCM[board], mode, backend, status, Channel(task_fd, reader=True),
                  Channel(reply_fd, reader=False), PinRule(**settings["rule"])).run()
    finally:
        backend.cleanup_worker()


def pin_settings(rule: PinRule) -> Dict[str, Any]:
    """What a pin worker is told when it starts (plain data, for marshal)."""
    return {"rule": asdict(rule)}
