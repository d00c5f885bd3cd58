"""A worker's start (spawn.py): how the zygote forks, what a worker inherits."""
from __future__ import annotations

import os
import random
import select
import threading
from typing import Callable, List

import psutil

from remoteio.server.spawn import fork_function


def _in_a_single_threaded_child(body: Callable[[int], None], timeout: float = 10.0) -> List[str]:
    """Run *body(write_fd)* in a forked child of this (threaded) test process,
    where only one thread exists, as in the zygote; the lines it wrote."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            body(write_fd)
        except BaseException as exc:  # the test sees it in the output
            os.write(write_fd, f"error {exc!r}\n".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], timeout)
            assert ready, "the child did not finish"
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if psutil.pid_exists(pid):
            os.waitpid(pid, 0)
    return b"".join(chunks).decode().split()


def _bare_children(write_fd: int, child: Callable[[], str], count: int = 2) -> None:
    fork = fork_function()
    os.write(write_fd, f"{'bare' if fork is not os.fork else 'os.fork'}\n".encode())
    for _ in range(count):
        pid = fork()
        if pid == 0:
            try:
                os.write(write_fd, f"{child()}\n".encode())
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def test_a_single_threaded_process_forks_without_the_hooks_and_its_child_runs_threads():
    def child() -> str:
        seen = []
        thread = threading.Thread(target=lambda: seen.append(threading.get_ident()))
        thread.start()
        thread.join(5.0)
        ok = (seen and seen[0] != threading.get_ident() and threading.active_count() == 1
              and threading.current_thread() is threading.main_thread())
        return "thread-ok" if ok else "thread-broken"

    lines = _in_a_single_threaded_child(lambda fd: _bare_children(fd, child))
    assert lines == ["bare", "thread-ok", "thread-ok"]


def test_two_workers_of_one_zygote_draw_different_random_numbers():
    lines = _in_a_single_threaded_child(
        lambda fd: _bare_children(fd, lambda: repr(random.random()), count=2))
    assert lines[0] == "bare"
    assert len(set(lines[1:])) == 2


def test_a_process_with_a_second_thread_forks_with_os_fork():
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(10.0,))
    thread.start()
    try:
        assert fork_function() is os.fork
    finally:
        release.set()
        thread.join(5.0)


def test_set_handler_sets_what_signal_signal_would():
    import signal

    from remoteio.server.spawn import set_handler

    before = signal.getsignal(signal.SIGUSR1)
    caught = []
    try:
        set_handler(signal.SIGUSR1, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
        set_handler(signal.SIGUSR1, lambda signum, frame: caught.append(signum))
        signal.raise_signal(signal.SIGUSR1)
        assert caught == [signal.SIGUSR1]
        set_handler(signal.SIGUSR1, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR1, before)
