"""The pin worker rehearsal (server/rehearsal.py) and what backends make
once before the fork (Backend.before_fork)."""
from __future__ import annotations

import gc
import os
import threading

from remoteio.server import Server
from remoteio.server.backends.sim import SimBackend
from remoteio.server.backends.simboard import SimHeader
from remoteio.server.rehearsal import STEPS, rehearse
from remoteio.testing import RawClient


def _open_fds() -> int:
    gc.collect()   # what earlier tests left for the collector is closed now, not mid-test
    return len(os.listdir("/proc/self/fd"))


def test_a_rehearsal_runs_every_step_and_leaves_no_descriptor_or_thread_behind():
    fds, threads = _open_fds(), threading.active_count()
    assert rehearse("wait", rounds=2) is True
    assert rehearse("nowait", rounds=1) is True
    assert _open_fds() <= fds   # (another test's thread may close one of its own meanwhile)
    assert threading.active_count() <= threads


def test_a_rehearsal_does_not_touch_the_served_board():
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        # the rehearsal's pin is board pin 7; the served board never saw it
        fresh = SimBackend()
        try:
            untouched = SimHeader(fresh.sim)
            assert server.sim.history(7) == untouched.history(7)
            assert server.sim.function(7) == untouched.function(7)
        finally:
            fresh.close()
        assert server.status.read(7) is None
        with RawClient(server.address) as client:
            client.hello()
            assert client.request("open", pin=7)["mode"] == "unset"
            client.request("on", pin=7)
            assert server.sim.value(7) == 1


def test_the_factory_class_is_made_once_and_shared():
    backend = SimBackend()
    try:
        backend.before_fork()
        first, second = backend.make_factory(), backend.make_factory()
        assert type(first) is type(second)
        first.close()
        second.close()
    finally:
        backend.close()


def test_the_rehearsal_steps_are_operations_of_the_whitelist():
    from remoteio.protocol.ops import operation_names
    assert {op for op, _ in STEPS} <= set(operation_names())
