"""Real-time priority for pin workers: the setting, its checks, and what a
worker's scheduler is with and without it (where this machine allows it)."""
import os

import pytest

from remoteio import RemoteServer
from remoteio.errors import ConfigError
from remoteio.server.config import parse_config
from remoteio.server import Server

from remoteio.testing import wait_until


def _realtime_allowed() -> bool:
    """Can a process here switch itself to SCHED_FIFO? (tried in a child)"""
    if not hasattr(os, "sched_setscheduler"):
        return False
    pid = os.fork()
    if pid == 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def test_realtime_priority_is_read_from_the_server_section():
    assert parse_config("[server]\nrealtime_priority = 20\n").realtime_priority == 20
    assert parse_config("").realtime_priority == 0


@pytest.mark.parametrize("value", ["100", "-1", '"high"'])
def test_a_realtime_priority_out_of_range_names_its_line(value):
    with pytest.raises(ConfigError, match=r"<config>:2: \[server\] realtime_priority"):
        parse_config(f"[server]\nrealtime_priority = {value}\n")


def test_a_server_refuses_a_priority_out_of_range():
    with pytest.raises(ValueError, match="realtime_priority"):
        Server(host="127.0.0.1", port=0, backend="sim", realtime_priority=120)


@pytest.mark.skipif(not _realtime_allowed(), reason="this machine refuses SCHED_FIFO")
def test_with_a_realtime_priority_pin_workers_run_sched_fifo_and_the_server_does_not():
    with Server(host="127.0.0.1", port=0, backend="sim", realtime_priority=10) as server:
        with RemoteServer(*server.address) as remote:
            remote.pin(7).on()
            # (the zygote's word of the pid may come just after the pin's reply)
            worker = wait_until(lambda: server.worker_pids().get(7))
            assert os.sched_getscheduler(worker) == os.SCHED_FIFO
            assert os.sched_getparam(worker).sched_priority == 10
            assert os.sched_getscheduler(os.getpid()) == os.SCHED_OTHER
            remote.pin(7).off()
            assert server.sim.value(7) == 0.0


def test_without_it_pin_workers_keep_the_normal_scheduler():
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        with RemoteServer(*server.address) as remote:
            remote.pin(7).on()
            worker = wait_until(lambda: server.worker_pids().get(7))
            assert os.sched_getscheduler(worker) == os.SCHED_OTHER
