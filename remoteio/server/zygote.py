"""The zygote: a small process, forked before the server starts any thread,
that forks every worker.

A fork copies only the thread that called it; locks held by the others stay
locked for ever in the child (a thread of an embedding program sitting in
``sys.stdin.readline()`` holds stdin's lock, and ``multiprocessing`` closes
stdin in every child it starts). So the server forks once, early, into this
zygote, and the zygote (one thread, our code only) forks the workers: a bare fork
(the C library's, without CPython's at-fork hooks: spawn.fork_function), nothing
re-imported, nothing of ``__main__`` run again.

The server sends :class:`~.messages.Spawn` with the worker's two pipe ends
attached (``SCM_RIGHTS``), and learns the pid from :class:`~.messages.Spawned`.
The zygote kills only its own live children, on request or when it quits,
and exits when the server is gone (end of file on its socket). Workers are
its children, so the server never waits on them; they notice the server's
death by the end of file on their task pipe.
"""
from __future__ import annotations

import array
import gc
import logging
import marshal
import os
import select
import signal
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .messages import (KILL, QUIT, SPAWN, Exited, Kill, Quit, Spawn, Spawned, decode, encode,
                       encoded_spawned)
from .spawn import SERVERS_SIGNALS, drop_inherited, fork_function, set_handler
from .timer import tighten_timer_slack
from .wakeup import WakePipe
from ..errors import ZygoteGone  # noqa: F401 (defined in errors.py)

log = logging.getLogger(__name__)

#: what a worker of each kind runs in its process: (key, task fd, reply fd, settings)
WorkerMain = Callable[[Any, int, int, Dict[str, Any]], None]

_MAX_MESSAGE = 4096
_INT = array.array("i").itemsize
#: room for the two descriptors a Spawn carries (more are cut off, and closed by the kernel)
_FDS_SPACE = socket.CMSG_SPACE(2 * _INT)


class Zygote:
    """The server's handle on its zygote process."""

    def __init__(self, kinds: Dict[str, WorkerMain]):
        self.kinds = kinds
        self.pid: Optional[int] = None
        self.sock: Optional[socket.socket] = None

    def start(self) -> "Zygote":
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the zygote
            code = 0
            try:
                ours.close()
                _serve(theirs, self.kinds)
            except BaseException:  # its own log line; never back into the caller's code
                log.exception("remoteio zygote failed")
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        ours.setblocking(False)
        self.pid, self.sock = pid, ours
        return self

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock else -1

    def spawn(self, kind: str, key: Any, generation: int, fds: List[int],
              settings: Dict[str, Any]) -> None:
        """Ask for a worker; its pid comes back later as Spawned."""
        self._send(Spawn(kind, key, generation, settings), fds)

    def kill(self, pid: int) -> None:
        self._send(Kill(pid))

    def _send(self, message: Any, fds: List[int] = ()) -> None:
        if self.sock is None:
            raise ZygoteGone("the zygote is not running")
        data = marshal.dumps(encode(message))
        try:
            socket.send_fds(self.sock, [data], list(fds)) if fds else self.sock.send(data)
        except BlockingIOError:
            # a few dozen bytes per message: a full socket means the zygote
            # is stuck, and waiting for it would stall the server
            raise ZygoteGone("the zygote is not taking requests") from None
        except OSError as exc:
            raise ZygoteGone(f"the zygote is gone: {exc}") from None

    def receive(self) -> List[Any]:
        """Spawned/Exited messages available now; ZygoteGone at its end."""
        messages = []
        while self.sock is not None:
            try:
                data = self.sock.recv(_MAX_MESSAGE)
            except BlockingIOError:
                break
            except OSError as exc:
                raise ZygoteGone(f"the zygote is gone: {exc}") from None
            if not data:
                raise ZygoteGone("the zygote exited")
            messages.append(decode(marshal.loads(data)))
        return messages

    def stop(self, timeout: float = 5.0) -> None:
        """Ask it to kill what is left and exit; reap it (bounded)."""
        if self.pid is None:
            return
        try:
            self._send(Quit())
        except ZygoteGone:
            pass
        if not _wait_pid(self.pid, timeout):
            log.warning("the zygote did not exit; killing it")
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _wait_pid(self.pid, 1.0)
        if self.sock is not None:
            self.sock.close()
        self.pid, self.sock = None, None


def _wait_pid(pid: int, timeout: float) -> bool:
    """Reap child *pid*, waiting at most *timeout* s; False if it is still alive."""
    deadline = time.monotonic() + timeout
    try:
        fd: Optional[int] = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None  # an old kernel: poll, 20 ms apart
    try:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(0.02, left))
    except ChildProcessError:
        return True
    finally:
        if fd is not None:
            os.close(fd)


# ---- inside the zygote ------------------------------------------------------------------
def _serve(sock: socket.socket, kinds: Dict[str, WorkerMain]) -> None:
    for signum in SERVERS_SIGNALS:  # the server's to handle: it tells this process Quit
        signal.signal(signum, signal.SIG_IGN)
    drop_inherited([], keep=sock.fileno())         # no listening socket, no client's
    sock.settimeout(5.0)  # a reply to a server that stopped reading is dropped, not waited on
    exits = _exit_pipe()
    tighten_timer_slack()  # every worker inherits it: its deadlines within ~1 µs (timer.py)
    rehearse_loop(kinds, exits)
    gc.freeze()  # what is here now is shared with every worker: keep the GC off its pages
    _loop(sock, kinds, exits, fork_function())  # one thread: no at-fork hooks needed (spawn.py)


def _loop(sock: socket.socket, kinds: Dict[str, WorkerMain], exits: Optional[WakePipe],
          fork: Callable[[], int]) -> None:
    """Fork a worker for each Spawn on *sock*, report exits, until the server
    is gone (end of file) or says Quit.

    Each page this loop writes after a fork stays, as the original, with the
    worker forked before it; so a turn touches as few shared objects as it
    can: descriptors rather than objects to select on, the requests read as
    the plain tuples they travel as (no named type made), the reply made the
    same way (docs/performance.md)."""
    children: Dict[int, None] = {}
    sock_fd = sock.fileno()
    exits_fd = -1 if exits is None else exits.fileno()
    watched = [sock_fd] if exits is None else [sock_fd, exits_fd]
    while True:
        # a child's exit wakes the loop (SIGCHLD through the wakeup pipe): no polling
        poll = 1.0 if children and exits is None else None
        readable, _, _ = select.select(watched, [], [], poll)
        if exits_fd in readable:
            exits.drain()
        _reap(sock, children)
        if sock_fd not in readable:
            continue
        try:
            data, ancillary, _, _ = sock.recvmsg(_MAX_MESSAGE, _FDS_SPACE)
        except OSError:
            data, ancillary = b"", []
        fds = _fds(ancillary)
        if not data:
            break  # the server is gone; its workers see it too and make their pins safe
        request = marshal.loads(data)  # encode's tuple: the tag, then the fields in order
        tag = request[0]
        if tag == SPAWN:
            _, kind, key, generation, settings = request
            pid = _fork_worker(sock, kinds[kind], key, fds, settings, exits, fork)
            children[pid] = None
            _tell_encoded(sock, encoded_spawned(key, generation, pid))
            continue
        for fd in fds:
            os.close(fd)
        if tag == KILL:
            if request[1] in children:
                os.kill(request[1], signal.SIGKILL)
        elif tag == QUIT:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            for pid in list(children):
                os.waitpid(pid, 0)
            return


def _fds(ancillary: List[Tuple[int, int, bytes]]) -> List[int]:
    """The descriptors that came with a message (SCM_RIGHTS), as socket.recv_fds gives them."""
    fds: List[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += memoryview(data[:len(data) - len(data) % _INT]).cast("i")
    return fds


#: turns of the loop rehearsed (CPython 3.11 specialises code after ~8 runs)
REHEARSED_TURNS = 10
#: the rehearsal's stand-in pids: above Linux's largest (2**22), so no signal could reach a process
_NO_PID = 1 << 30


def rehearse_loop(kinds: Dict[str, WorkerMain], exits: Optional[WakePipe] = None,
                  turns: int = REHEARSED_TURNS) -> int:
    """Run the loop over *turns* Spawns on a throwaway socket pair, with a
    fork that forks nothing, and return how many Spawned replies came back.

    Its first runs write into the code they run (CPython's warm-up counters,
    then its specialisation), and each page the zygote writes after a fork
    stays, as the original, with the worker forked before it (0.03-0.08 MiB
    for each of the first workers). Written here, before the first fork,
    those pages are shared by every worker. The stand-in pids are above any
    pid Linux gives, and the loop signals only on Kill and Quit, which the
    rehearsal does not send."""
    if not kinds:
        return 0
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    theirs.settimeout(5.0)  # as the zygote's own socket
    pids = iter(range(_NO_PID, _NO_PID + turns))
    kind = next(iter(kinds))
    replies = 0
    try:
        for generation in range(turns):
            read_end, write_end = os.pipe()
            try:
                socket.send_fds(ours, [marshal.dumps(encode(Spawn(kind, 0, generation, {})))],
                                [read_end, write_end])
            finally:
                os.close(read_end)
                os.close(write_end)
        ours.shutdown(socket.SHUT_WR)  # the loop's end of file after the last Spawn
        _loop(theirs, kinds, exits, lambda: next(pids))
        ours.setblocking(False)
        while replies < turns:
            reply = decode(marshal.loads(ours.recv(_MAX_MESSAGE)))
            replies += isinstance(reply, Spawned) and reply.pid >= _NO_PID
    except Exception as exc:  # noqa: BLE001 (a failed rehearsal is only a colder start)
        log.warning("the zygote's rehearsal stopped after %d turns: %s", replies, exc)
    finally:
        ours.close()
        theirs.close()
    return replies


def _on_child_exit(signum: int, frame: Any) -> None:
    """SIGCHLD's handler: the pipe's write is all it is for. A module-level
    function, so that a worker setting SIGCHLD back does not free it (a freed
    lambda writes into ~0.02 MiB of pages the worker shares with the zygote)."""


def _exit_pipe() -> Optional[WakePipe]:
    """A pipe that SIGCHLD writes to (signal.set_wakeup_fd); None where that
    cannot be set up (then the loop looks for exits once a second)."""
    pipe = WakePipe()
    try:
        signal.signal(signal.SIGCHLD, _on_child_exit)  # a handler, so that the pipe is written
        signal.set_wakeup_fd(pipe.write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        pipe.close()
        return None
    return pipe


def _fork_worker(sock: socket.socket, main: WorkerMain, key: Any, fds: List[int],
                 settings: Dict[str, Any], exits: Optional[WakePipe] = None,
                 fork: Callable[[], int] = os.fork) -> int:
    pid = fork()
    if pid == 0:
        code = 0
        try:
            if exits is not None:  # the zygote's exit pipe is not the worker's
                signal.set_wakeup_fd(-1)
                set_handler(signal.SIGCHLD, signal.SIG_DFL)
                exits.close()
            # the zygote's socket is the only one it kept (drop_inherited at its start):
            # pointing just it at /dev/null spares the worker a walk of /proc/self/fd,
            # whose first run here copies ~0.07 MiB of shared pages (docs/performance.md)
            _detach(sock.fileno())
            main(key, fds[0], fds[1], settings)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException:
            log.exception("worker %r failed", key)
            code = 1
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    return pid


def _detach(fd: int) -> None:
    """Point *fd* at /dev/null (a stale object closing it later closes nothing of ours)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _reap(sock: socket.socket, children: Dict[int, None]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.pop(pid, None)
        _tell(sock, Exited(pid, os.waitstatus_to_exitcode(status)))


def _tell(sock: socket.socket, message: Any) -> None:
    _tell_encoded(sock, encode(message))


def _tell_encoded(sock: socket.socket, message: tuple) -> None:
    try:
        sock.send(marshal.dumps(message))
    except OSError:
        pass  # the server is gone or not reading: it learns of exits from the pipes too
