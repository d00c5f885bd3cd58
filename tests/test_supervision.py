"""Worker supervision, shutdown and process hygiene."""
import os
import signal
import socket

import psutil
import pytest

from remoteio import RemoteServer
from remoteio.errors import WorkerFailed
from remoteio.server import Server

from remoteio.testing import wait_until, worker_pid


def test_killed_worker_is_noticed_made_safe_and_replaced(server):
    with RemoteServer(*server.address) as remote:
        led = remote.pin(7)
        led.on(time_ms=5000)
        led.off()                                   # queued behind the timed on
        pending = remote._link.call("sync", {"pin": 7})  # answered when the pin is idle
        assert led.state()["queue"] == 1            # a fence: the worker has the sync too
        old = worker_pid(server, 7)
        os.kill(old, signal.SIGKILL)
        with pytest.raises(WorkerFailed, match="made safe"):
            pending.result(5)
        assert wait_until(lambda: server.worker_pids().get(7) not in (None, old))
        assert wait_until(lambda: server.sim.function(7) == "released")
        assert server.sim.value(7) == 0.0
        led.on()                                    # the next use works, on a fresh worker
        assert server.sim.value(7) == 1.0
        assert server.worker_pids()[7] != old


def test_other_pins_and_clients_go_on_when_a_worker_dies(server):
    with RemoteServer(*server.address) as remote, RemoteServer(*server.address) as other:
        remote.pin(7).on()
        other.pin(11).blink(on_time=0.01, off_time=0.01)
        os.kill(worker_pid(server, 7), signal.SIGKILL)
        assert other.pin(11).state()["task"] == "blink"
        other.pin(13).on()
        assert server.sim.value(13) == 1.0


def test_stop_makes_every_pin_safe_and_joins_every_worker():
    with Server(host="127.0.0.1", port=0, backend="sim") as server, \
            RemoteServer(*server.address) as remote:
        for pin in (7, 11, 12):
            remote.pin(pin).on(time_ms=10_000)
        remote.pin(13).blink(on_time=0.01, off_time=0.01)
        pids = list(server.worker_pids().values())
        port = server.port
        server.stop()
        remote.close()
    for pin in (7, 11, 12, 13):
        assert server.sim.function(pin) == "released" and server.sim.value(pin) == 0.0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids)
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again


def test_sigterm_stops_the_server_cleanly(server_process):
    proc = server_process()
    with RemoteServer(*proc.address) as remote:
        for pin in (7, 11, 13):
            remote.pin(pin).blink(on_time=0.01, off_time=0.01)
        children = proc.children()
        assert len(children) == 1 + 3  # the zygote, and a worker per pin
        assert proc.terminate() == 0
    assert wait_until(lambda: not any(psutil.pid_exists(pid) for pid in children), timeout=5)
    assert "every pin safe" in proc.output()
    with socket.create_server(proc.address):
        pass


def test_workers_do_not_hold_sockets(server):
    with RemoteServer(*server.address) as remote:
        remote.pin(7).on()
        remote.pin(11).on()
        for pid in server.worker_pids().values():
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            assert not [link for link in links if link.startswith("socket:")], links


def test_sigkill_of_the_server_leaves_no_orphans(server_process):
    proc = server_process()
    with RemoteServer(*proc.address) as remote:
        remote.pin(7).on()
        remote.pin(11).blink(on_time=0.01, off_time=0.01)
        children = proc.children()
        assert len(children) == 1 + 2  # the zygote, and a worker per pin
        proc.proc.kill()
        proc.proc.wait(5)
    assert wait_until(lambda: not any(psutil.pid_exists(pid) and
                                      psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                                      for pid in children), timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(proc.address, timeout=1).close()


# ---- signals a terminal or a kill of the whole group sends to every process ----------
def _signal_every_process(proc, signum: int) -> list:
    """*signum* to the server's workers and zygote, then to the server (by pid,
    as a terminal's hang-up or ``pkill`` reaches each of them); their pids."""
    children = proc.children()
    for pid in children + [proc.pid]:
        os.kill(pid, signum)
    return children


def test_a_hang_up_sent_to_every_server_process_leaves_it_serving_its_pins(server_process):
    proc = server_process()
    with RemoteServer(*proc.address) as remote:
        remote.pin(7).on()
        children = _signal_every_process(proc, signal.SIGHUP)
        assert wait_until(lambda: "SIGHUP" in proc.output(), timeout=10)
        assert remote.pin(7).state()["value"] == 1     # its worker still holds it
        remote.pin(11).on()                             # the zygote still forks workers
        assert remote.pin(11).state()["value"] == 1
        assert all(psutil.pid_exists(pid) for pid in children)
    assert "ERROR" not in proc.output()


def test_a_sigterm_sent_to_every_server_process_stops_it_cleanly_with_every_pin_made_safe(
        server_process):
    proc = server_process()
    with RemoteServer(*proc.address) as remote:
        remote.pin(7).on()
        remote.pin(11).blink(on_time=0.01, off_time=0.01)
        children = _signal_every_process(proc, signal.SIGTERM)
        assert proc.proc.wait(15) == 0
    assert wait_until(lambda: not any(psutil.pid_exists(p) for p in children), timeout=5)
    log = proc.output()
    assert "every pin safe" in log
    assert "ERROR" not in log and "ended (exit status" not in log, log
