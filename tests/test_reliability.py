"""Safety and reliability: leases, losing a client, reconnects, hung workers,
limits. Everything bounded; timing asserted with generous margins."""
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from remoteio import RemoteServer
from remoteio.errors import BadArgument, PinClosed, ServerBusy, WorkerFailed
from remoteio.server import Server

from remoteio.testing import free_port, levels, pulses, RawClient, wait_until, worker_pid

ROOT = Path(__file__).resolve().parent.parent


def connect(server, **options):
    return RemoteServer(*server.address, timeout=5.0, **options)


# ---- leases ------------------------------------------------------------------------

def test_a_lease_not_renewed_reverts_to_the_safe_value(any_server):
    with connect(any_server) as remote:
        pump = remote.pin(7)
        pump.on(lease_ms=300)
        lease = pump.state()["lease"]
        assert lease["revert_to"] == 0.0 and 0 < lease["in_ms"] <= 300
        assert wait_until(lambda: any_server.sim.value(7) == 0.0, timeout=3)
        (start, width), = pulses(any_server.sim.history(7))
        assert 299 <= width <= 600
        assert pump.state()["lease"] is None


def test_the_holder_hears_that_its_lease_ran_out_by_a_callback_and_a_warning(server, caplog):
    heard = []
    with connect(server) as remote, caplog.at_level("WARNING", logger="remoteio"):
        pump = remote.pin(7)
        pump.when_lease_expired = heard.append
        pump.on(lease_ms=100)
        assert wait_until(lambda: heard, timeout=5)
        assert heard == [0.0] and pump.leases_expired == 1
        assert "the lease on BOARD7 (GPIO4) ran out before it was renewed: the Pi set the pin to 0" \
            in caplog.text
        pump.on(lease_ms=5000)   # a lease renewed in time tells nothing
        pump.on(lease_ms=5000)
        pump.off()
        assert pump.state()["lease"] is None and pump.leases_expired == 1


def test_sending_the_write_again_renews_the_lease(server):
    with connect(server) as remote:
        pump = remote.pin(7)
        started = time.monotonic()
        while time.monotonic() - started < 1.0:      # a heartbeat every 100 ms
            pump.on(lease_ms=300)
            time.sleep(0.1)
        assert server.sim.value(7) == 1.0
        assert levels(server.sim.history(7)).count(1.0) == 1   # renewals make no new edge
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=3)
        (start, width), = pulses(server.sim.history(7))
        assert width >= 1000


def test_a_renewed_blink_keeps_its_phase(server):
    with connect(server) as remote:
        led = remote.pin(7)
        for _ in range(5):
            led.blink(on_time=0.02, off_time=0.02, lease_ms=500)
            time.sleep(0.05)
        widths = [w for _, w in pulses(server.sim.history(7))]
        assert widths and all(8 <= w <= 100 for w in widths), widths


def test_revert_to_the_previous_level(server):
    with connect(server) as remote:
        lamp = remote.pin(12)
        lamp.value(level=0.4)
        lamp.on(lease_ms=200, revert="previous")
        assert server.sim.value(12) == 1.0
        assert wait_until(lambda: server.sim.value(12) == pytest.approx(0.4), timeout=3)


def test_a_renewal_that_asks_for_another_revert_gets_it(server):
    """The same write again renews the lease; what it reverts to is the
    renewal's: a program that now says "if I vanish, go safe" must get safe."""
    with connect(server) as remote:
        lamp = remote.pin(12)
        lamp.value(level=0.4)
        lamp.on(lease_ms=300, revert="previous")
        assert lamp.state()["lease"]["revert_to"] == pytest.approx(0.4)
        lamp.on(lease_ms=300, revert="safe")
        assert lamp.state()["lease"]["revert_to"] == 0.0
        assert wait_until(lambda: lamp.state()["lease"] is None, timeout=5)
        assert server.sim.value(12) == 0.0
        lamp.value(level=0.4)
        lamp.on(lease_ms=300)
        lamp.on(lease_ms=300, revert="previous")              # and back: the chain's start
        assert wait_until(lambda: lamp.state()["lease"] is None, timeout=5)
        assert server.sim.value(12) == pytest.approx(0.4)
        assert levels(server.sim.history(12)).count(1.0) == 2   # each pair one edge: renewals


def test_a_later_lease_replaces_the_earlier_one_and_never_flips_the_pin(server):
    """piconetcontrol's bug: write 1 (1 s), then write 0 (1.5 s): the pin ended ON."""
    with connect(server) as remote:
        pin = remote.pin(7)
        pin.on(lease_ms=300, revert="previous")
        pin.off(lease_ms=450, revert="previous")
        assert wait_until(lambda: pin.state()["lease"] is None, timeout=5)  # the last one ran out
        assert server.sim.value(7) == 0.0
        assert levels(server.sim.history(7)) == [1.0, 0.0]


def test_a_write_without_a_lease_cancels_it(server):
    with connect(server) as remote:
        pin = remote.pin(7)
        pin.on(lease_ms=200)
        pin.on()
        assert pin.state()["lease"] is None
        pin.on(time_ms=400)                           # queued: ends 400 ms on, after the lease's 200
        pin.sync(timeout=5)
        (_, width), = pulses(server.sim.history(7))
        assert width >= 350                           # the lease did not revert the pin at 200 ms


def test_a_timed_on_then_an_early_timed_off_ends_off(any_server):
    with connect(any_server) as remote:
        pin = remote.pin(7)
        pin.on(time_ms=400)
        pin.off(time_ms=100)
        pin.sync(timeout=5)
        assert any_server.sim.value(7) == 0.0
        assert levels(any_server.sim.history(7)) == [1.0, 0.0]


def test_a_lease_running_out_preempts_queued_work(server):
    with connect(server) as remote:
        pin = remote.pin(7)
        pin.on(time_ms=3000, lease_ms=200)
        pin.blink(on_time=0.01, off_time=0.01)        # queued behind the timed on
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=3)
        state = pin.state()
        assert state["queue"] == 0 and state["task"] is None
        pin.sync(timeout=5)                           # through the worker: nothing left to start
        assert levels(server.sim.history(7)) == [1.0, 0.0]   # the blink never ran


@pytest.mark.parametrize("lease_ms", [-1, 1e12, float("nan"), "1000", True])
def test_absurd_leases_are_refused(client, lease_ms):
    with pytest.raises(BadArgument):
        client.request("on", pin=7, lease_ms=lease_ms)
    with pytest.raises(BadArgument):
        client.request("on", pin=7, lease_ms=100, revert="sideways")


# ---- losing a client ---------------------------------------------------------------

CLIENT = """
import sys, time
from remoteio import RemoteServer
server = RemoteServer("127.0.0.1", int(sys.argv[1]), heartbeat=0, reconnect=False)
server.pin(7).blink(time_ms=int(sys.argv[2]), on_time=0.02, off_time=0.02)
print("ready", flush=True)
time.sleep(60)
"""


def kill_client_mid_blink(server, blink_ms):
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(server.port), str(blink_ms)],
                              cwd=ROOT, stdout=subprocess.PIPE)
    assert client.stdout.readline() == b"ready\n"
    killed = time.monotonic_ns()
    client.kill()
    client.wait(10)
    return killed


@pytest.mark.parametrize("policy", ["finish", "safe"])
def test_a_client_killed_mid_blink(policy):
    with Server(host="127.0.0.1", port=0, backend="sim", disconnect_policy=policy) as server:
        killed = kill_client_mid_blink(server, 1000)
        assert wait_until(lambda: server.sim.function(7) == "released", timeout=5)
        released_after_ms = (server.sim.history(7)[-1][0] - killed) / 1e6
        assert server.sim.value(7) == 0.0
        if policy == "finish":
            assert released_after_ms > 600     # the timed blink ran to its end first
        else:
            assert released_after_ms < 500     # made safe at once


def test_a_per_pin_policy_overrides_the_servers():
    with Server(host="127.0.0.1", port=0, backend="sim", disconnect_policy="finish",
                pins={7: {"on_disconnect": "safe"}}) as server:
        killed = kill_client_mid_blink(server, 2000)
        assert wait_until(lambda: server.sim.function(7) == "released", timeout=5)
        assert (time.monotonic_ns() - killed) / 1e6 < 1500


def test_a_half_open_connection_is_noticed_by_its_heartbeat(server):
    """The peer vanished without a FIN: it promised a heartbeat and went silent."""
    conn = RawClient(server.address)
    assert conn.call({"id": 1, "op": "hello", "heartbeat": 0.3})["ok"]
    assert conn.call({"id": 2, "op": "on", "pin": 7, "time_ms": 0})["ok"]
    started = time.monotonic()
    assert wait_until(lambda: server.sim.function(7) == "released", timeout=10)
    assert time.monotonic() - started < 4            # 3 heartbeats + 1 s, and the 1 s tick
    conn.close()


# ---- client resilience ---------------------------------------------------------------

# the client reconnects and re-applies its setup: tests/test_scenarios.py (both clients)


def test_waiting_for_a_reconnect_when_asked():
    port = free_port()
    first = Server(host="127.0.0.1", port=port, backend="sim").start()
    servers = [first]
    later = threading.Timer(0.5, lambda: servers.append(
        Server(host="127.0.0.1", port=port, backend="sim").start()))
    remote = None
    try:
        remote = RemoteServer("127.0.0.1", port, heartbeat=0.5, wait_for_reconnect=True, timeout=8)
        remote.pin(7)
        first.stop()
        assert wait_until(lambda: not remote.connected, timeout=5)
        later.start()
        remote.pin(7).on()                               # waits for the reconnect, then runs
        assert servers[1].sim.value(7) == 1.0
    finally:
        if remote is not None:
            remote.close()
        later.cancel()
        if later.is_alive():
            later.join(5)
        for server in servers:
            server.stop()


def test_a_lost_server_costs_no_cpu_while_reconnecting():
    port = free_port()
    with Server(host="127.0.0.1", port=port, backend="sim") as server:
        remote = RemoteServer("127.0.0.1", port, heartbeat=0.5)
        server.stop()
    try:
        assert wait_until(lambda: not remote.connected, timeout=5)
        me = psutil.Process()
        before = sum(me.cpu_times()[:2])
        time.sleep(3)  # the span measured, not a wait for something to happen
        used = sum(me.cpu_times()[:2]) - before
        assert used < 0.3, f"{used:.2f} s of CPU in 3 s of reconnecting"
        assert remote.reconnect_attempts >= 3        # it kept trying, with backoff
    finally:
        remote.close()


def test_the_heartbeat_notices_a_server_that_stops_answering(server_process):
    proc = server_process()
    remote = RemoteServer(*proc.address, heartbeat=0.3, timeout=1.0)
    remote.pin(7).on()
    os.kill(proc.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert wait_until(lambda: not remote.connected, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)
    assert remote.wait_connected(timeout=15)
    remote.close()


# ---- server robustness -----------------------------------------------------------------

def test_a_hung_worker_is_detected_killed_and_replaced():
    with Server(host="127.0.0.1", port=0, backend="sim", hang_timeout=1.0) as server:
        with connect(server) as remote:
            remote.pin(7).on()
            hung = worker_pid(server, 7)
            os.kill(hung, signal.SIGSTOP)
            pending = remote._link.call("state", {"pin": 7})
            with pytest.raises(WorkerFailed):
                pending.result(10)
            assert wait_until(lambda: server.worker_pids().get(7) not in (None, hung), timeout=5)
            assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=5)
            remote.pin(7).on()
            assert server.sim.value(7) == 1.0


def test_a_hung_worker_of_an_idle_pin_is_found_when_its_holder_vanishes_and_the_pin_made_safe():
    # a steady pin's worker is not probed while idle; its holder's disconnect
    # is work it must do (the pin made safe), so it is probed from then on
    with Server(host="127.0.0.1", port=0, backend="sim", hang_timeout=1.0) as server:
        remote = connect(server)
        remote.pin(7).on()
        hung = worker_pid(server, 7)
        os.kill(hung, signal.SIGSTOP)
        try:
            remote.close()
            assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=10)
            assert server.worker_pids().get(7) != hung
        finally:
            try:
                os.kill(hung, signal.SIGCONT)
            except ProcessLookupError:
                pass  # killed, as it should be


def test_a_client_refused_by_a_full_server_gets_server_busy_sync_and_asyncio():
    import asyncio
    from remoteio.aio import AsyncRemoteServer
    with Server(host="127.0.0.1", port=0, backend="sim", max_connections=2) as full:
        with connect(full) as one, connect(full) as two:
            with pytest.raises(ServerBusy, match="2 connections already"):
                connect(full, reconnect=False)

            async def third() -> None:
                async with AsyncRemoteServer(*full.address, reconnect=False):
                    pass
            with pytest.raises(ServerBusy, match="2 connections already"):
                asyncio.run(third())
            assert one.ping() < 5 and two.ping() < 5


def test_the_queue_of_a_pin_is_bounded(server, client):
    pin = client.pin(7)
    pin.on(time_ms=10_000)
    calls = client._link.pipeline([("off", {"pin": 7})] * 1001)
    outcomes = []
    for call in calls:
        try:
            call.result(10)
            outcomes.append("ok")
        except ServerBusy:
            outcomes.append("busy")
    assert outcomes.count("ok") == 1000 and outcomes[-1] == "busy"
    assert client.ping() < 5


def test_a_holder_may_close_its_pin_behind_a_full_queue_and_the_close_runs_after_it(server, client):
    pin = client.pin(7)
    pin.on(time_ms=300)
    calls = client._link.pipeline([("on", {"pin": 7, "time_ms": 1})] * 1000)
    assert all(call.result(10) is not None for call in calls)      # the queue is full
    with pytest.raises(ServerBusy):
        client._link.call("off", {"pin": 7}).result(10)
    closing = client._link.call("close", {"pin": 7})
    assert closing.result(10)["queued"] == 1001                     # one close beyond the bound
    with pytest.raises(PinClosed):                                   # and only one
        client._link.call("close", {"pin": 7}).result(10)
    assert pin.state()["queue"] == 1001
    assert wait_until(lambda: pin.state()["mode"] == "released", timeout=30)   # after the queue
    assert server.sim.value(7) == 0.0
    other = connect(server)
    try:
        other.pin(7).on()                                            # let go: anyone may take it
        assert server.sim.value(7) == 1.0
    finally:
        other.close()


def test_events_missed_while_the_connection_was_down_show_in_missed_after_the_reconnect():
    """seq numbers a pin's events per server run, and only while someone
    watches; after a reconnect the re-watch's reply (the pin's seq and level
    now) tells what was missed: here a restarted server whose pin reads 0
    where the last event said 1. The next event carries it in ``missed``."""
    port = free_port()
    first = Server(host="127.0.0.1", port=port, backend="sim").start()
    servers = [first]
    remote = None
    try:
        remote = RemoteServer("127.0.0.1", port, heartbeat=0.5, timeout=3)
        button = remote.pin(13)
        button.as_input(pull="down")
        events = []
        button.when_changed = events.append
        first.sim.drive(13, 1)
        assert wait_until(lambda: len(events) == 1)
        first.stop()
        assert wait_until(lambda: not remote.connected, timeout=5)
        servers.append(Server(host="127.0.0.1", port=port, backend="sim").start())
        assert remote.wait_connected(15)
        assert button.missed_events == 1      # the level fell while nobody watched
        servers[1].sim.drive(13, 1)
        assert wait_until(lambda: len(events) == 2)
        assert [(e.value, e.seq, e.missed) for e in events] == [(1, 1, 0), (1, 1, 1)]
        assert button.missed_events == 1
    finally:
        if remote is not None:
            remote.close()
        for server in servers:
            server.stop()
