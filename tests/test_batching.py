"""A run of one pin's requests, routed in one pass (server/batching.py): each
request still checked and answered on its own, in order.

Every run is sent in one write, so the server reads it in one pass (on
127.0.0.1 a few KiB arrive together); the same answers must hold if it did
not. Every wait bounded; a stopped worker is continued by its pid."""
from __future__ import annotations

import os
import signal

import pytest

from remoteio.server import Server
from remoteio.testing import RawClient, frame, wait_until, worker_pid


def sim_server(**options) -> Server:
    return Server(host="127.0.0.1", port=0, backend="sim", **options)


def run(conn: RawClient, requests) -> tuple:
    """Send the requests (id 1, 2, ...) in one write: the replies by id, and
    the ids in the order the replies came."""
    conn.sock.sendall(b"".join(frame(n + 1, op, **fields) for n, (op, fields) in enumerate(requests)))
    replies = [conn.recv() for _ in requests]
    return {reply["id"]: reply for reply in replies}, [reply["id"] for reply in replies]


def codes(replies: dict) -> list:
    return [None if replies[n]["ok"] else replies[n]["error"]["code"] for n in sorted(replies)]


def test_a_bad_command_mid_run_gets_its_own_error_and_the_others_run_in_order():
    with sim_server(mode="nowait") as server, RawClient(server.address) as conn:
        conn.hello()
        conn.request("open", pin=7)
        since = server.sim.history(7)[-1][0] if server.sim.history(7) else 0
        replies, _ = run(conn, [("on", {"pin": 7}), ("off", {"pin": 7}), ("on", {"pin": 7, "time_ms": -5}),
                                ("on", {"pin": 7}), ("read", {"pin": 7}), ("bogus", {"pin": 7}),
                                ("off", {"pin": 7})])
        assert codes(replies) == [None, None, "bad_argument", None, None, "unknown_op", None]
        assert replies[5]["value"] == 1.0  # read ran after the on before it, before the off

        def changes():
            return [level for t, level in server.sim.history(7) if t > since]
        assert wait_until(lambda: len(changes()) >= 4, timeout=3)
        assert changes() == [1.0, 0.0, 1.0, 0.0]


def test_the_sharing_rule_is_applied_to_each_command_of_a_run():
    with sim_server(mode="nowait") as server, RawClient(server.address) as conn, \
            RawClient(server.address) as other:
        conn.hello()
        other.hello()
        conn.request("open", pin=11)
        replies, _ = run(other, [("on", {"pin": 11})] * 3)
        assert codes(replies) == ["pin_busy"] * 3
        replies, _ = run(conn, [("on", {"pin": 11}), ("close", {"pin": 11}), ("on", {"pin": 11}),
                                ("open", {"pin": 11}), ("off", {"pin": 11})])
        assert codes(replies) == [None, None, "pin_closed", None, None]
        replies, _ = run(other, [("off", {"pin": 11})] * 2)
        assert codes(replies) == ["pin_busy"] * 2   # conn opened it again mid-run


def test_the_pin_rules_are_applied_to_each_command_of_a_run():
    with sim_server(mode="nowait", pins={7: {"max_hold_ms": 1000}, 11: {"access": "read"}}) as server, \
            RawClient(server.address) as conn:
        conn.hello()
        replies, _ = run(conn, [("on", {"pin": 7, "time_ms": 100}), ("on", {"pin": 7}),
                                ("off", {"pin": 7}), ("on", {"pin": 7, "time_ms": 5000}),
                                ("on", {"pin": 7, "time_ms": 50})])
        assert codes(replies) == [None, "forbidden", None, "forbidden", None]
        replies, _ = run(conn, [("read", {"pin": 11}), ("on", {"pin": 11}), ("state", {"pin": 11})])
        assert codes(replies) == [None, "forbidden", None]


def test_a_run_holds_the_in_flight_bound_at_every_request(monkeypatch):
    from remoteio.server import batching, router
    monkeypatch.setattr(batching, "MAX_INFLIGHT", 3)
    monkeypatch.setattr(router, "MAX_INFLIGHT", 3)
    with sim_server(mode="nowait") as server, RawClient(server.address) as conn:
        conn.hello()
        conn.request("open", pin=7)
        pid = worker_pid(server, 7)
        os.kill(pid, signal.SIGSTOP)
        try:
            conn.sock.sendall(b"".join(frame(n + 1, "on" if n % 2 == 0 else "off", pin=7)
                                       for n in range(6)))
            early = [conn.recv() for _ in range(3)]   # refused at once: the worker answers nothing
        finally:
            os.kill(pid, signal.SIGCONT)
        assert [(r["id"], r["error"]["code"]) for r in early] == [
            (4, "server_busy"), (5, "server_busy"), (6, "server_busy")]
        late = [conn.recv() for _ in range(3)]
        assert [(r["id"], r["ok"]) for r in late] == [(1, True), (2, True), (3, True)]
        assert wait_until(lambda: server.sim.value(7) == 1.0, timeout=3)


@pytest.mark.parametrize("count", [2, 300, 1000])
def test_a_long_run_is_answered_in_order_and_leaves_the_pin_where_the_last_command_put_it(count):
    with sim_server(mode="nowait") as server, RawClient(server.address) as conn:
        conn.hello()
        conn.request("open", pin=7)
        requests = [("on" if n % 2 == 0 else "off", {"pin": 7}) for n in range(count)]
        requests.append(("value", {"pin": 7, "level": 0.25}))
        replies, order = run(conn, requests)
        assert order == list(range(1, count + 2))
        assert all(reply["ok"] for reply in replies.values())
        assert wait_until(lambda: server.sim.value(7) == 0.25, timeout=3)


def test_interleaved_pins_each_run_their_own_commands_in_order_and_one_pins_errors_stay_its_own():
    with sim_server(mode="nowait", pins={11: {"access": "read"}}) as server, \
            RawClient(server.address) as conn:
        conn.hello()
        for pin in (7, 8):
            conn.request("open", pin=pin)
        since = {pin: len(server.sim.history(pin)) for pin in (7, 8)}
        requests = []
        for n in range(300):   # 7, 8, 11 in turn, one write
            requests += [("on" if n % 2 == 0 else "off", {"pin": 7}),
                         ("value", {"pin": 8, "level": (n % 4) / 4}),
                         ("on", {"pin": 11})]
        requests += [("read", {"pin": 7}), ("read", {"pin": 8})]
        replies, order = run(conn, requests)
        assert sorted(order) == list(range(1, len(requests) + 1))
        got = codes(replies)
        assert got[0::3][:300] == [None] * 300 and got[1::3][:300] == [None] * 300
        assert got[2::3] == ["forbidden"] * 300
        for pin in (7, 8):   # each pin's replies came in its own order
            ids = [n + 1 for n, (_, fields) in enumerate(requests) if fields["pin"] == pin]
            assert [i for i in order if i in set(ids)] == ids
        assert replies[len(requests) - 1]["value"] == 0.0   # read after pin 7's last off
        assert replies[len(requests)]["value"] == 0.75      # read after pin 8's last value
        assert wait_until(lambda: len(server.sim.history(7)) - since[7] >= 300, timeout=5)
        assert [level for _, level in server.sim.history(7)[since[7]:]] == [1.0, 0.0] * 150


def test_a_workers_replies_go_out_in_order_together_per_connection_and_before_a_later_event():
    from types import SimpleNamespace

    from remoteio.server.batching import Inflight, PinBatching
    from remoteio.server.messages import Event, Replies, Reply

    calls = []
    outlet = SimpleNamespace(replies=lambda conn, frames: calls.append(("replies", conn, list(frames))),
                             event=lambda targets, frame: calls.append(("event", targets, frame)))
    router = PinBatching()
    router.outlet = outlet
    handle = SimpleNamespace(inflight={seq: Inflight(conn, str(seq), None)
                                       for seq, conn in ((1, 1), (2, 1), (3, 2), (4, 1), (5, 1),
                                                         (6, 2), (7, 2))}, waiting={4, 6},
                             held_waiting={6})
    router._deliver(handle, [Reply(1, b"a\n"), Reply(2, b"b\n"), Reply(99, b"gone\n"),
                             Reply(3, b"c\n"), Event((1,), b"e\n"), Reply(4, b"d\n"),
                             Replies([5, 98, 6, 7], [b"f\n", b"gone\n", b"g\n", b"h\n"])])
    assert calls == [("replies", 1, [b"a\n", b"b\n"]), ("replies", 2, [b"c\n"]),
                     ("event", (1,), b"e\n"), ("replies", 1, [b"d\n", b"f\n"]),
                     ("replies", 2, [b"g\n", b"h\n"])]
    assert handle.inflight == {} and handle.waiting == set() == handle.held_waiting  # syncs too
