"""A lease fires at its deadline even when its renewal is already waiting in the
worker's pipe: the worker is frozen (SIGSTOP) across the deadline while the
renewal is delivered, then thawed; it must revert first. And a reconnecting
client never drives a pin past the lease its program last asked for: a lease
that ran out while the link was down is not re-armed; one still running is
re-sent with only the time it has left. Every wait bounded."""
import contextlib
import os
import signal
import time
from typing import Any, Iterator, List, Tuple

from remoteio import RemoteServer
from remoteio.server import Server

from remoteio.testing import Relay, free_port, levels, RawClient, wait_until, worker_pid


def _deadline_passed(deadline: float) -> bool:
    return time.monotonic() >= deadline


def test_a_renewal_read_after_the_deadline_does_not_revive_the_lease():
    with Server(host="127.0.0.1", port=0, backend="sim", hang_timeout=30.0) as server:
        conn = RawClient(server.address, timeout=10.0)
        try:
            conn.hello()
            assert conn.call({"id": 1, "op": "on", "pin": 7, "lease_ms": 300})["ok"]
            deadline = time.monotonic() + 0.3
            worker = worker_pid(server, 7)
            os.kill(worker, signal.SIGSTOP)
            try:
                assert wait_until(lambda: _deadline_passed(deadline + 0.1), timeout=5)
                # the renewal, then two pings: after the second pong the router has
                # handed the renewal to the (frozen) worker's pipe
                conn.send({"id": 2, "op": "on", "pin": 7, "lease_ms": 300})
                for n in (3, 4):
                    assert conn.call({"id": n, "op": "ping"})["ok"]
                assert server.sim.value(7) == 1.0  # frozen: nothing has reverted it yet
            finally:
                os.kill(worker, signal.SIGCONT)
            renewal = conn.recv()
            assert renewal["id"] == 2 and renewal["ok"], renewal
            # the lease fired before the late write was read: 1, then 0, then the
            # late write's own 1 (which starts a lease of its own)
            seen = levels(server.sim.history(7))
            assert seen[seen.index(1.0):][:3] == [1.0, 0.0, 1.0], server.sim.history(7)
            assert wait_until(lambda: conn.call({"id": "p", "op": "ping"}) and any(
                e["event"] == "lease_expired" for e in conn.events), timeout=5), conn.events
            assert not (renewal.get("result") or {}).get("renewed"), renewal
        finally:
            conn.close()


def _restarted(lease_ms: float, down_s: float, time_ms: float = 0):
    """A client holds ``on(lease_ms=...)`` on BOARD7; its server stops (the
    pin made safe) and another starts on the port *down_s* later; the client
    reconnects to it. (the new server, the client, its pin, when the leased on was sent)"""
    port = free_port()
    first = Server(host="127.0.0.1", port=port, backend="sim").start()
    remote = RemoteServer("127.0.0.1", port, heartbeat=0.5, timeout=3)
    try:
        pump = remote.pin(7)
        sent = time.monotonic()
        pump.on(lease_ms=lease_ms, time_ms=time_ms)
    finally:
        first.stop()
    assert wait_until(lambda: not remote.connected, timeout=5)
    time.sleep(down_s)  # the outage itself (nothing to wait for: the server is down)
    second = Server(host="127.0.0.1", port=port, backend="sim").start()
    return second, remote, pump, sent


def test_a_lease_that_ran_out_while_the_link_was_down_is_not_re_armed_by_the_reconnect():
    """The program's last leased write ran out during the outage: the Pi's
    dead-man switch fired; the library must not drive the pin again for it."""
    second, remote, pump, sent = _restarted(lease_ms=300, down_s=0.5)
    try:
        assert remote.wait_connected(15)
        assert time.monotonic() > sent + 0.3
        # the reconnect's setup is done when it says connected; one more round trip
        assert pump.state()["lease"] is None
        assert 1.0 not in levels(second.sim.history(7)), second.sim.history(7)
    finally:
        remote.close()
        second.stop()


def test_a_reconnect_re_sends_a_running_lease_with_only_the_time_it_has_left():
    """Re-armed after a restart, the lease still ends when the program's last
    renewal said (as the client can tell: its send + lease_ms), not a full
    lease_ms after the reconnect."""
    second, remote, pump, sent = _restarted(lease_ms=6000, down_s=1.0)
    try:
        assert remote.wait_connected(15)
        asked = time.monotonic()
        lease = pump.state()["lease"]
        assert lease is not None and second.sim.value(7) == 1.0  # armed again
        assert lease["in_ms"] <= (sent + 6.0 - asked) * 1000 + 20, (lease, asked - sent)
        pump.on(lease_ms=6000)  # the program's own renewal: a full lease again, no new edge
        assert pump.state()["lease"]["in_ms"] > 5000
        assert levels(second.sim.history(7)).count(1.0) == 1
    finally:
        remote.close()
        second.stop()


def test_a_leased_timed_task_that_ended_before_the_reconnect_is_not_run_again():
    """on(time_ms=300, lease_ms=6000): the pulse ended on the first server; the
    lease still had time, but re-sending the write would be a second pulse."""
    second, remote, pump, sent = _restarted(lease_ms=6000, down_s=0.5, time_ms=300)
    try:
        assert remote.wait_connected(15)
        assert pump.state()["lease"] is None       # one round trip after the reconnect's setup
        assert 1.0 not in levels(second.sim.history(7)), second.sim.history(7)
    finally:
        remote.close()
        second.stop()


def test_a_leased_timed_task_still_running_is_re_sent_for_the_time_it_has_left():
    second, remote, pump, sent = _restarted(lease_ms=8000, down_s=0.5, time_ms=5000)
    try:
        assert remote.wait_connected(15)
        asked = time.monotonic()
        state = pump.state()
        assert second.sim.value(7) == 1.0 and state["task"] == "on", state
        assert state["remaining_ms"] <= (sent + 5.0 - asked) * 1000 + 20, (state, asked - sent)
    finally:
        remote.close()
        second.stop()


def test_a_pin_whose_holder_left_is_made_safe_even_when_its_lease_runs_out_first():
    """Policy finish, wait mode: the holder disconnects during a timed leased
    task, so the pin's close waits behind it; the lease (revert "previous":
    the pin was on before) runs out first and drops queued work. The close
    must not go with it: the pin ends safe and released, not left on with
    nobody holding it."""
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        conn = RawClient(server.address, timeout=10.0)
        try:
            conn.hello()
            assert conn.call({"id": 1, "op": "on", "pin": 7})["ok"]
            assert conn.call({"id": 2, "op": "on", "pin": 7, "time_ms": 3000,
                              "lease_ms": 300, "revert": "previous"})["ok"]
        finally:
            conn.close()  # the close waits behind the timed task (policy finish)
        observer = RawClient(server.address, timeout=10.0)
        try:
            observer.hello()
            # the lease ran out (at 300 ms; the timed task would end at 3 s)
            assert wait_until(lambda: observer.call({"id": "s", "op": "state", "pin": 7})
                              ["lease"] is None, timeout=2.5)
            state = observer.call({"id": "t", "op": "state", "pin": 7})
            assert state["mode"] == "released" and server.sim.value(7) == 0.0, state
        finally:
            observer.close()


@contextlib.contextmanager
def _through_a_relay(**client: Any) -> Iterator[Tuple[Server, Relay, RemoteServer]]:
    """A sim server, a :class:`~remoteio.testing.Relay` in front of it, and a
    client connected through the relay (heartbeat 1 s)."""
    with Server(host="127.0.0.1", port=0, backend="sim", heartbeat_timeout=60.0) as server, \
            Relay(server.address) as relay:
        remote = RemoteServer(*relay.address, heartbeat=1.0, **client)
        try:
            yield server, relay, remote
        finally:
            remote.close()


def _cut_and_reconnect(relay: Relay, remote: RemoteServer) -> None:
    """The link goes half-open; the client notices and reconnects."""
    changes: List[bool] = []
    remote.when_connection_changed = changes.append
    relay.cut()
    assert wait_until(lambda: changes == [False, True], timeout=10), changes


def test_a_reconnect_that_takes_over_a_lease_the_pi_still_holds_leaves_its_deadline_alone():
    """Half-open: the Pi still holds the old connection and its lease when the
    client reconnects and takes its pin over; the lease keeps the deadline
    the program's last write gave it (the reconnect neither renews nor
    shortens it) and fires there."""
    with _through_a_relay(timeout=2) as (server, relay, remote):
        pump = remote.pin(7)
        pump.on(lease_ms=2500)
        before = pump.state()["lease"]["in_ms"]
        asked = time.monotonic()
        _cut_and_reconnect(relay, remote)
        lease = pump.state()["lease"]
        left = before - (time.monotonic() - asked) * 1000
        assert lease is not None and lease["in_ms"] <= left + 20, (lease, left)
        assert server.sim.value(7) == 1.0
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=5)  # fired
        assert levels(server.sim.history(7)).count(1.0) == 1  # never driven again


def test_a_reconnect_never_shortens_a_lease_whose_write_came_late_to_the_pi():
    """The leased write took 0.8 s to reach the Pi, so the Pi's deadline is
    0.8 s past the client's own reckoning; a reconnect that takes the pin
    over must not re-send it with the client's shorter time left."""
    with _through_a_relay(timeout=3, wait_for_reconnect=True) as (server, relay, remote):
        pump = remote.pin(7)
        relay.delay = 0.8
        pump.on(lease_ms=4000)
        relay.delay = 0.0
        before = pump.state()["lease"]["in_ms"]
        asked = time.monotonic()
        _cut_and_reconnect(relay, remote)
        lease = pump.state()["lease"]
        left = before - (time.monotonic() - asked) * 1000
        assert lease is not None and lease["in_ms"] >= left - 100, (lease, left)


def test_leases_that_run_out_again_and_again_log_one_warning_not_a_flood():
    """A client may let a 5 ms lease run out many times a second; the
    server's log gets one warning per pin per 10 s (the rest counted)."""
    from remoteio.testing import ServerProcess
    with ServerProcess("--sim") as server:
        with RemoteServer(*server.address, heartbeat=0) as remote:
            pin = remote.pin(7)
            for _ in range(20):
                pin.on(lease_ms=5)
                assert wait_until(lambda: pin.read() == 0, timeout=5)   # it ran out
            assert wait_until(lambda: "lease ran out" in server.output(), timeout=5)
        assert server.output().count("lease ran out") == 1, server.tail()
