"""The client's sans-I/O protocol object: bytes in, replies and events out, no sockets."""
from __future__ import annotations

import math

import pytest

from remoteio.errors import AuthFailed, AuthRequired, BadArgument, PinBusy, ProtocolViolation
from remoteio.protocol import auth
from remoteio.protocol.client_conn import ClientConnection, Event, Greeting, Reply, result


def _greeting(token):
    return Greeting(where="pi:8509", client="t/1", heartbeat=5.0, session="s", take_over=False,
                    token=token)


def test_replies_split_over_reads_reach_their_waiters_and_events_pass_through():
    conn = ClientConnection(clock=lambda: 1.0)
    data = conn.send([("read", {"pin": 7}, "a"), ("read", {"pin": 11}, "b")])
    assert data.count(b"\n") == 2 and conn.outstanding == 2
    stream = b'{"id":2,"ok":true,"value":0}\n{"event":"change","pin":7}\n{"id":1,"ok":true,"value":1}\n'
    got = [item for i in range(len(stream)) for item in conn.receive(stream[i:i + 1])]
    assert got == [Reply("b", {"id": 2, "ok": True, "value": 0}),
                   Event({"event": "change", "pin": 7}),
                   Reply("a", {"id": 1, "ok": True, "value": 1})]
    assert conn.outstanding == 0


def test_a_reply_nobody_waits_for_is_dropped():
    conn = ClientConnection()
    assert conn.receive(b'{"id":99,"ok":true}\n') == []


def test_bare_acknowledgements_reach_their_waiters_alone_together_or_after_a_split_frame():
    conn = ClientConnection()
    conn.send([("on", {"pin": 7}, "a"), ("on", {"pin": 11}, "b"), ("read", {"pin": 7}, "c"),
               ("on", {"pin": 13}, "d")])
    assert conn.receive(b'{"id":2,"ok":true}\n') == [Reply("b", {"id": 2, "ok": True})]
    assert conn.receive(b'{"id":1,"ok":true}\n{"id":4,"ok":true}\n') == [
        Reply("a", {"id": 1, "ok": True}), Reply("d", {"id": 4, "ok": True})]
    # the end of a frame begun in the last read, ending like an acknowledgement
    conn.send([("on", {"pin": 15}, "e")])
    assert conn.receive(b'{"id":3,"ok":true,"val') == []
    assert conn.receive(b'ue":1,"ok":true}\n') == [Reply("c", {"id": 3, "ok": True, "value": 1})]
    assert conn.outstanding == 1
    with pytest.raises(ValueError):  # not JSON (a leading zero): never taken for id 5
        conn.receive(b'{"id":05,"ok":true}\n')


def test_a_request_that_cannot_be_encoded_registers_nothing():
    conn = ClientConnection()
    with pytest.raises(BadArgument):
        conn.send([("read", {"pin": 7}, "a"), ("value", {"pin": 7, "level": math.nan}, "b")])
    assert conn.outstanding == 0


def test_an_oversized_frame_is_a_protocol_violation():
    conn = ClientConnection(max_frame=64)
    with pytest.raises(ProtocolViolation):
        conn.receive(b"x" * 100 + b"\n")


def test_failing_the_connection_hands_back_every_waiter():
    conn = ClientConnection()
    conn.send([("ping", {}, "a"), ("ping", {}, "b")])
    assert sorted(conn.fail()) == ["a", "b"] and conn.outstanding == 0


def test_errors_map_to_their_classes_and_the_clock_is_injected():
    with pytest.raises(PinBusy) as caught:
        result({"id": 1, "ok": False, "error": {"code": "pin_busy", "message": "held by x"}})
    assert caught.value.code == "pin_busy"
    now = [10.0]
    conn = ClientConnection(clock=lambda: now[0])
    conn.send([("ping", {}, "a")])
    conn.sent()
    now[0] = 12.5
    assert conn.quiet() == 2.5


def test_the_greeting_proves_the_token_and_checks_the_servers_proof():
    challenge = auth.Authenticator("tok-123456789").challenge()
    greeting = _greeting("tok-123456789")
    assert greeting.hello()[0] == "hello"
    op, fields = greeting.on_hello({"auth": challenge.offer()})
    assert op == "auth"
    answer = challenge.verify(fields)
    assert greeting.on_auth(dict(answer, board={"model": "5B"})) == {"board": {"model": "5B"}}
    with pytest.raises(AuthFailed):
        impostor = _greeting("tok-123456789")
        impostor.on_hello({"auth": auth.Authenticator("tok-123456789").challenge().offer()})
        impostor.on_auth({"mac": "00" * 32})


def test_the_greeting_refuses_what_does_not_add_up():
    with pytest.raises(AuthFailed, match="asks for no authentication"):
        _greeting("tok-123456789").on_hello({"auth": None})
    with pytest.raises(AuthRequired):
        _greeting(None).on_hello({"auth": {"method": auth.METHOD, "nonce": "n"}})
    with pytest.raises(AuthFailed, match="binding"):
        _greeting("tok-123456789").on_hello({"auth": {"method": auth.METHOD, "nonce": "n"}},
                                            binding="tls-server-end-point:ab")
    assert _greeting(None).on_hello({"auth": None}) is None


def test_a_request_over_the_frame_size_is_refused_before_it_is_sent():
    # the server could not read the id of a frame over 16384 bytes: its refusal
    # would reach nobody, and the caller would wait out its timeout
    conn = ClientConnection(clock=lambda: 0.0)
    big = {"bus": 1, "msgs": [{"addr": 0x50, "write": [255] * 4096}]}
    with pytest.raises(BadArgument, match="a frame may be at most 16384"):
        conn.send_one("i2c_rdwr", big, "w1")
    with pytest.raises(BadArgument, match="a frame may be at most 16384"):
        conn.send([("ping", {}, "w2"), ("i2c_rdwr", big, "w3")])
    assert conn.outstanding == 0
    assert conn.send_one("i2c_rdwr", {"bus": 1, "msgs": [{"addr": 0x50, "write": [255] * 1000}]},
                         "w4").endswith(b"\n")
