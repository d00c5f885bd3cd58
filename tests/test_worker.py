"""The worker base loop (worker.py), in this process on real pipes: its clock
before newly read messages, the descriptors of a resource it waits on, and
replies kept (never a blocked write) while the server does not read."""
import os
import threading
import time

from remoteio.server.channel import channel_pair
from remoteio.server.messages import Probe, Pong, Stop, decode, encode
from remoteio.server.worker import Worker
from remoteio.testing import wait_until


class Clocked(Worker):
    """A worker kind with one deadline, an optional extra descriptor, and a log."""

    def __init__(self, tasks, replies, deadline=None, source=None):
        super().__init__(tasks, replies)
        self.deadline, self.source, self.log = deadline, source, []

    def next_wake(self):
        return self.deadline

    def advance(self):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.deadline = None
            self.log.append("deadline")

    def handle(self, message):
        self.log.append(type(message).__name__)
        if isinstance(message, Probe):
            self.message(Pong())
        elif isinstance(message, Stop):
            self.running = False

    def event_fds(self):
        return (self.source,) if self.source is not None else ()

    def service(self, fd):
        self.log.append(("readable", os.read(fd, 100)))

    def catch_up(self):
        self.log.append("catch_up")


def _pipes():
    tasks_r, tasks_w = channel_pair()
    replies_r, replies_w = channel_pair()
    return tasks_r, tasks_w, replies_r, replies_w


def _run(worker):
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_what_fell_due_runs_then_the_backend_catches_up_then_the_messages_that_wait_run():
    tasks_r, tasks_w, _, replies_w = _pipes()
    # the deadline has passed and a message is already waiting when the loop starts
    worker = Clocked(tasks_r, replies_w, deadline=time.monotonic() - 1.0)
    tasks_w.send([encode(Probe()), encode(Stop())])
    thread = _run(worker)
    thread.join(10)
    assert not thread.is_alive()
    # catch_up before the tasks: an edge made before a task is told before its reply
    assert worker.log == ["deadline", "catch_up", "Probe", "Stop"]


def test_a_deadline_wakes_the_loop_with_nothing_to_read():
    tasks_r, tasks_w, _, replies_w = _pipes()
    worker = Clocked(tasks_r, replies_w, deadline=time.monotonic() + 0.05)
    thread = _run(worker)
    try:
        assert wait_until(lambda: worker.log == ["deadline"], timeout=5)
    finally:
        tasks_w.send([encode(Stop())])
        thread.join(10)


def test_a_resource_descriptor_is_serviced_by_the_loop_itself():
    tasks_r, tasks_w, _, replies_w = _pipes()
    source_r, source_w = os.pipe()
    worker = Clocked(tasks_r, replies_w, source=source_r)
    thread = _run(worker)
    try:
        os.write(source_w, b"edge")
        assert wait_until(lambda: ("readable", b"edge") in worker.log, timeout=5)
        assert thread.is_alive()
    finally:
        tasks_w.send([encode(Stop())])
        thread.join(10)
        os.close(source_r)
        os.close(source_w)


def test_replies_wait_in_the_channel_while_the_server_does_not_read():
    tasks_r, tasks_w = channel_pair()
    replies_r, replies_w = channel_pair(size=65536)
    worker = Clocked(tasks_r, replies_w)
    thread = _run(worker)
    probes = 20000  # far more Pongs than a 64 KiB pipe holds
    for _ in range(probes // 1000):
        tasks_w.send([encode(Probe())] * 1000)
    assert wait_until(lambda: worker.log.count("Probe") == probes, timeout=20)
    assert thread.is_alive()                       # not stuck in a write
    got = []

    def read_all():
        for batch in replies_r.receive():
            got.extend(decode(m) for m in batch)
        return len(got) >= probes
    assert wait_until(read_all, timeout=20)
    assert set(map(type, got)) == {Pong}
    tasks_w.send([encode(Stop())])
    thread.join(10)
    assert not thread.is_alive()


def test_consecutive_replies_go_as_one_message_and_an_event_between_them_keeps_its_place():
    from remoteio.server.messages import Event, Replies
    tasks_r, tasks_w, replies_r, replies_w = _pipes()
    worker = Clocked(tasks_r, replies_w)
    worker.reply(1, b"a\n")
    worker.reply(2, b"b\n")
    worker.event((3,), b"e\n")
    worker.reply(4, b"c\n")
    worker.message(Pong())
    worker.reply(5, b"d\n")
    worker._flush()   # one write: all of it is in the pipe
    got = [decode(raw) for batch in replies_r.receive() for raw in batch]
    assert got == [Replies([1, 2], [b"a\n", b"b\n"]), Event((3,), b"e\n"),
                   Replies([4], [b"c\n"]), Pong(), Replies([5], [b"d\n"])]
    for channel in (tasks_r, tasks_w, replies_r, replies_w):
        channel.close()
