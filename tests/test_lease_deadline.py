"""A lease fires at its deadline even when its renewal is already waiting in the
worker's pipe: the worker is frozen (SIGSTOP) across the deadline while the
renewal is delivered, then thawed; it must revert first. Every wait bounded."""
import os
import signal
import time

from remoteio.server import Server

from remoteio.testing import levels, RawClient, wait_until, worker_pid


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
