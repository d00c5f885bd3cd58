"""The worker's sleep (timer.py): a long wait ends before its deadline by
more than the kernel's slack, the rest is short, and workers inherit a
tight timer slack; the worker loop's early wake-up runs nothing."""
from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

from hypothesis import given, strategies as st

from remoteio.server.channel import channel_pair
from remoteio.server.messages import Stop, encode
from remoteio.server.timer import TIMER_SLACK_NS, WHOLE_UP_TO, sleep_for, tighten_timer_slack
from remoteio.server.worker import Worker
from remoteio.testing import wait_until, worker_pid


#: what Linux may add to a select of t seconds (fs/select.c), with the default thread slack
def _kernel_slack(wait: float) -> float:
    return max(min(wait / 1000, 0.1), 50e-6)


@given(left=st.floats(min_value=WHOLE_UP_TO * 1.0001, max_value=3600.0))
def test_a_long_wait_ends_before_its_deadline_even_with_the_kernels_slack(left):
    wait = sleep_for(100.0 + left, 100.0)
    assert 0 < wait < left
    assert wait + _kernel_slack(wait) < left


@given(left=st.floats(min_value=0.0, max_value=3600.0))
def test_the_waits_reach_the_deadline_in_a_few_steps_and_never_pass_it(left):
    now, deadline, steps = 0.0, left, 0
    while True:
        wait = sleep_for(deadline, now)
        assert 0 <= wait <= deadline - now + 1e-12
        steps += 1
        if deadline - now <= WHOLE_UP_TO:
            break  # the last one, slept whole
        now += wait  # woken on time: the rest is slept next
    assert steps <= 4


def test_a_short_wait_or_none_is_slept_whole():
    assert sleep_for(None, 1.0) is None
    assert abs(sleep_for(1.0005, 1.0) - 0.0005) < 1e-12
    assert abs(sleep_for(1.019, 1.0) - 0.019) < 1e-12  # up to 20 ms: its slack is at most 20 µs
    assert sleep_for(0.5, 1.0) == 0.0


def _timerslack(pid: int) -> int:
    with open(f"/proc/{pid}/timerslack_ns") as f:
        return int(f.read())


def test_tightening_the_timer_slack_sets_it_for_the_thread_and_its_forks():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child, so that this process keeps its slack
        try:
            ok = tighten_timer_slack()
            child = os.fork()
            if child == 0:
                os.write(write, str(_timerslack(os.getpid())).encode())
                os._exit(0)
            os.waitpid(child, 0)
            os._exit(0 if ok else 3)
        finally:
            os._exit(4)
    os.close(write)
    assert os.waitpid(pid, 0)[1] == 0
    assert int(os.read(read, 100)) == TIMER_SLACK_NS
    os.close(read)


def test_a_pin_worker_forked_by_the_server_has_the_tight_timer_slack(server, raw):
    raw.request("open", pin=7)
    assert _timerslack(worker_pid(server, 7)) == TIMER_SLACK_NS


class Deadline(Worker):
    """One deadline; notes every advance and when it ran."""

    def __init__(self, tasks, replies, deadline):
        super().__init__(tasks, replies)
        self.deadline, self.advances = deadline, []

    def next_wake(self):
        return self.deadline

    def advance(self):
        self.advances.append(time.monotonic())
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.deadline = None

    def handle(self, message):
        self.running = False


def test_the_worker_loop_runs_nothing_at_the_early_end_of_a_long_wait():
    tasks_r, tasks_w = channel_pair()
    _, replies_w = channel_pair()
    deadline = time.monotonic() + 0.2
    worker = Deadline(tasks_r, replies_w, deadline)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert wait_until(lambda: worker.deadline is None, timeout=5)
    tasks_w.send([encode(Stop())])
    thread.join(5)
    assert worker.advances and worker.advances[0] >= deadline  # the early wake ran nothing
    assert worker.advances[0] - deadline < 0.1  # on time, generously


class FakeClock:
    """time.monotonic and select.select for the worker loop: code takes 1 µs a
    call to the clock; a wait that ends early (timer.py) ends 0.5 µs before
    the deadline, the worst moment: just before it, with the next look at the
    clock just after it; any other wait 50 µs late."""

    def __init__(self):
        self.now, self.deadline = 1000.0, None

    def monotonic(self):
        self.now += 1e-6
        return self.now - 1e-6

    def select(self, readers, writers, errors, timeout):
        assert timeout is not None, "the test's worker always has a deadline"
        if self.deadline is not None and timeout < self.deadline - self.now - 1e-6:
            self.now = self.deadline - 0.5e-6
        else:
            self.now += timeout + 50e-6
        return [], [], []


class Blinking(Worker):
    """A level that changes every 50 ms from its start (a wait long enough to
    be split), asked like a blink: the next change is the one after *now*
    (jobs.Blink)."""

    PERIOD = 0.05

    def __init__(self, tasks, replies, clock, changes):
        super().__init__(tasks, replies)
        self.clock, self.start, self.changes, self.seen = clock, clock.now, changes, []

    def _index(self, now):
        return int((now - self.start) // self.PERIOD)

    def next_wake(self):
        self.clock.deadline = self.start + (self._index(self.clock.monotonic()) + 1) * self.PERIOD
        return self.clock.deadline

    def advance(self):
        index = self._index(self.clock.monotonic())
        if index >= 1 and (not self.seen or self.seen[-1] != index):
            self.seen.append(index)
        if len(self.seen) >= self.changes:
            self.running = False


def test_no_change_of_a_blink_is_skipped_when_a_long_wait_ends_just_before_it(monkeypatch):
    import remoteio.server.worker as worker_module
    clock = FakeClock()
    monkeypatch.setattr(worker_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(worker_module, "select", SimpleNamespace(select=clock.select))
    tasks_r, _ = channel_pair()
    _, replies_w = channel_pair()
    worker = Blinking(tasks_r, replies_w, clock, changes=20)
    worker.run()  # in this thread, on the fake clock: it ends after 20 changes
    assert worker.seen == list(range(1, 21))  # each change at its own wake-up, none stepped over


def _voluntary_switches(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/<pid>/status")


def test_a_100_hz_blink_wakes_its_worker_once_per_change_not_twice(server, raw):
    raw.request("open", pin=7)
    pid = worker_pid(server, 7)
    raw.request("blink", pin=7, on_time=0.005, off_time=0.005)  # 200 changes a second
    before, since = _voluntary_switches(pid), time.monotonic()
    deadline = since + 1.0
    while time.monotonic() < deadline:
        time.sleep(0.05)
    switches = _voluntary_switches(pid) - before
    elapsed = time.monotonic() - since
    raw.request("off", pin=7)
    # one sleep per change is ~200 a second; a split 5 ms wait would be ~400
    assert switches < 300 * elapsed, switches
