"""The zygote and the worker pool (zygote.py, pool.py), with a trivial worker kind."""
from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess
import sys
import time

import psutil
import pytest

from remoteio.server.channel import Channel
from remoteio.server.messages import Pong, encode
from remoteio.server.pool import WorkerEnded, WorkerPool
from remoteio.server.zygote import Zygote, ZygoteGone

from remoteio.testing import wait_until


def echo_worker(key, task_fd: int, reply_fd: int, settings) -> None:
    """Answers each batch with a Pong, until its task pipe ends."""
    tasks, replies = Channel(task_fd, reader=True), Channel(reply_fd, reader=False)
    while True:
        select.select([task_fd], [], [], None)
        try:
            batches = tasks.receive()
        except EOFError:
            return
        for _ in batches:
            replies.send([encode(Pong())])


def read_all(pool: WorkerPool, handle, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key, _ in pool.selector.select(0.05):
            if key.data[0] == "zygote":
                pool.zygote_ready()
            elif key.data == ("replies", handle):
                return pool.read(handle)
    raise AssertionError("no reply")


def _gone_or_zombie(pid: int) -> bool:
    try:  # (reaped between a pid_exists and a Process() is gone too)
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_worker_forked_by_the_zygote_answers_and_the_zygote_reaps_it():
    zygote = Zygote({"echo": echo_worker}).start()
    selector = selectors.DefaultSelector()
    pool = WorkerPool(zygote, selector)
    try:
        handle = pool.start("echo", 7, {})
        pool.send(handle, [])  # the first batch goes before the process even runs
        assert read_all(pool, handle) == [Pong()]
        assert wait_until(lambda: pool.zygote_ready() or handle.pid, timeout=5)
        worker = psutil.Process(handle.pid)
        assert worker.ppid() == zygote.pid  # the zygote's child, not ours
        pool.kill(handle)
        with pytest.raises(WorkerEnded):  # its pipe ends: the router's sign of a death
            read_all(pool, handle)
        assert wait_until(lambda: _gone_or_zombie(handle.pid), timeout=5)
    finally:
        pool.stop(2.0, lambda handle, messages: None)
    assert zygote.pid is None


def test_the_zygote_leaves_when_the_server_is_gone():
    zygote = Zygote({"echo": echo_worker}).start()
    pid = zygote.pid
    zygote.sock.close()  # as if the server died
    zygote.sock = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the zygote did not exit")


def test_a_worker_holds_no_socket_so_the_zygotes_death_reaches_the_server_while_it_lives():
    zygote = Zygote({"echo": echo_worker}).start()
    zygote_pid, worker_pid = zygote.pid, 0
    selector = selectors.DefaultSelector()
    pool = WorkerPool(zygote, selector)
    try:
        handle = pool.start("echo", 7, {})
        pool.send(handle, [])
        assert read_all(pool, handle) == [Pong()]
        assert wait_until(lambda: pool.zygote_ready() or handle.pid, timeout=5)
        worker_pid = handle.pid
        links = [os.readlink(f"/proc/{handle.pid}/fd/{fd}")
                 for fd in os.listdir(f"/proc/{handle.pid}/fd")]
        assert not [link for link in links if link.startswith("socket:")], links
        os.kill(zygote_pid, signal.SIGKILL)
        gone = []

        def zygote_gone() -> bool:
            try:
                zygote.receive()
            except ZygoteGone:
                gone.append(True)
            return bool(gone)
        assert wait_until(zygote_gone, timeout=5)
        assert psutil.Process(handle.pid).status() != psutil.STATUS_ZOMBIE  # the worker lives on
    finally:
        for pid in (worker_pid, zygote_pid):  # the worker is the zygote's child, not ours
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        os.waitpid(zygote_pid, 0)
        zygote.pid = None
        pool.stop(2.0, lambda handle, messages: None)


_FORKED_WITH_HOOKS = []


def report_fork_worker(key, task_fd: int, reply_fd: int, settings) -> None:
    """Writes whether CPython's at-fork hooks ran for its own fork."""
    hooks_ran = os.getpid() in _FORKED_WITH_HOOKS
    os.write(settings["report_fd"], b"hooks\n" if hooks_ran else b"bare\n")


def test_the_zygote_forks_its_workers_without_the_at_fork_hooks():
    read_fd, write_fd = os.pipe()
    os.register_at_fork(after_in_child=lambda: _FORKED_WITH_HOOKS.append(os.getpid()))
    zygote = Zygote({"report": report_fork_worker}).start()
    pool = WorkerPool(zygote, selectors.DefaultSelector())
    try:
        pool.start("report", 7, {"report_fd": write_fd})
        ready, _, _ = select.select([read_fd], [], [], 5.0)
        assert ready, "the worker did not report"
        assert os.read(read_fd, 64) == b"bare\n"
    finally:
        pool.stop(2.0, lambda handle, messages: None)
        os.close(read_fd)
        os.close(write_fd)


# In a process of its own: the loop reaps with waitpid(-1), which must not take
# the exit of a child of pytest's.
_REHEARSAL = """
import os, sys
from remoteio.server import zygote
started = []
before = sorted(os.listdir("/proc/self/fd"))
replies = zygote.rehearse_loop({"pin": lambda *args: started.append(args)}, None, turns=12)
after = sorted(os.listdir("/proc/self/fd"))
try:
    os.waitpid(-1, os.WNOHANG)
    forked = True
except ChildProcessError:
    forked = False
print(replies, started == [], before == after, forked)
"""


def test_the_zygotes_rehearsal_runs_its_loop_to_the_end_without_forking_or_keeping_a_descriptor():
    out = subprocess.run([sys.executable, "-c", _REHEARSAL], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["12", "True", "True", "False"]
