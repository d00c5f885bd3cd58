"""The server's side of a connection as an object (protocol/server_connection.py): no sockets."""
from __future__ import annotations

import json

from remoteio.protocol.auth import Penalties
from remoteio.protocol.server_connection import (PRE_READY_REFUSALS, Answer, Greeted, PinRequest,
                                                 ServerConnection)
from remoteio.protocol.session import Session


def frames(*messages) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def steps(conn: ServerConnection):
    out = []
    while conn.waiting:
        out.append(conn.next_step())
    return out


def reply(step) -> dict:
    return json.loads(step.frame)


def test_a_frame_split_over_reads_comes_out_whole_once_its_newline_arrives():
    conn = ServerConnection(Session({"server": "t"}))
    data = frames({"id": 1, "op": "hello"})
    assert conn.receive_data(data[:5]) == 0
    assert conn.receive_data(data[5:]) == 1
    (step,) = steps(conn)
    assert isinstance(step, Greeted) and reply(step)["ok"] and step.take_over is False


def test_ping_answers_with_the_injected_clock_and_echoes_its_data():
    conn = ServerConnection(Session({"server": "t"}), clock_ns=lambda: 123)
    conn.receive_data(frames({"id": 1, "op": "hello"}, {"id": 2, "op": "ping", "data": "x"}))
    _, ping = steps(conn)
    assert isinstance(ping, Answer) and reply(ping) == {"id": 2, "ok": True, "time_ns": 123, "data": "x"}


def test_pin_requests_go_out_for_the_router_only_after_hello():
    conn = ServerConnection(Session({"server": "t"}))
    conn.receive_data(frames({"id": 1, "op": "on", "pin": 7}, {"id": 2, "op": "hello"},
                             {"id": 3, "op": "on", "pin": 7}, {"id": 4, "op": "info"}))
    refused, _, pin, info = steps(conn)
    assert reply(refused)["error"]["code"] == "hello_required"
    assert isinstance(pin, PinRequest) and pin.request.pin == 7 and not pin.server_scope
    assert isinstance(info, PinRequest) and info.server_scope


def test_a_frame_over_the_limit_is_refused_and_the_stream_stays_in_step():
    conn = ServerConnection(Session({"server": "t"}), max_frame=64)
    conn.receive_data(frames({"id": 1, "op": "hello"}) + b"x" * 100 + b"\n" + frames({"id": 2, "op": "ping"}))
    _, big, ping = steps(conn)
    assert reply(big)["error"]["code"] == "frame_too_large"
    assert reply(ping)["ok"]


def test_a_peer_that_has_proved_nothing_gets_a_few_refusals_then_a_close_reason():
    conn = ServerConnection(Session({"server": "t"}))
    conn.receive_data(b"junk\n" * 10)
    answered = [s for s in steps(conn) if s is not None]
    assert len(answered) == PRE_READY_REFUSALS
    assert conn.close_reason == f"{PRE_READY_REFUSALS} refused frames before hello/auth"
    assert conn.receive_data(b"more\n") == 0 and conn.next_step() is None  # reads no further


def test_refusals_after_hello_do_not_close_the_connection():
    conn = ServerConnection(Session({"server": "t"}))
    conn.receive_data(frames({"id": 1, "op": "hello"}) + b"junk\n" * 10)
    assert all(isinstance(s, (Answer, Greeted)) for s in steps(conn))
    assert conn.close_reason is None


class _Authenticator:
    def challenge(self):
        return _Challenge()


class _Challenge:
    def offer(self):
        return {"method": "test"}

    def verify(self, args):
        from remoteio.errors import AuthFailed
        raise AuthFailed("wrong proof")


def test_a_failed_authentication_is_counted_against_the_source_and_ends_the_connection():
    penalties = Penalties()
    conn = ServerConnection(Session({"server": "t"}, _Authenticator()), penalties=penalties, ip="10.0.0.9")
    conn.receive_data(frames({"id": 1, "op": "hello"}, {"id": 2, "op": "ping"},
                             {"id": 3, "op": "auth", "nonce": "ab" * 16, "mac": "cd" * 32},
                             {"id": 4, "op": "on", "pin": 7}))
    hello, ping, auth, rest = steps(conn)
    assert "auth" in reply(hello) and "board" not in reply(hello)  # nothing told before the proof
    assert reply(ping)["error"]["code"] == "auth_required"
    assert reply(auth)["error"]["code"] == "auth_failed"
    assert conn.close_reason == "authentication failed" and rest is None
    assert penalties.refused("10.0.0.9") is not None
