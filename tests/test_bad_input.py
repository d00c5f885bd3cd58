"""Every bad input gets a clear, structured error; the connection, the other
clients, the other pins and the server go on untouched."""
import json
import time

import pytest

from remoteio import RemoteServer

from remoteio.testing import RawClient

BAD = [
    (b"[1,2,3]\n", "bad_frame", None),
    (b'"hello"\n', "bad_frame", None),
    (b"3.14\n", "bad_frame", None),
    (b"null\n", "bad_frame", None),
    (b"{not json}\n", "bad_frame", None),
    (b"\xc3\x28\xa0\xa1\n", "bad_frame", None),
    (b'{"op":"ping"}\n', "bad_frame", None),
    (b'{"id":{"a":1},"op":"ping"}\n', "bad_frame", None),
    (b'{"id":1}\n', "unknown_op", 1),
    (b'{"id":2,"op":"__class__","pin":7}\n', "unknown_op", 2),
    (b'{"id":3,"op":"toggle","pin":7}\n', "unknown_op", 3),
    (b'{"id":4,"op":"_set_state","pin":7}\n', "unknown_op", 4),
    (b'{"id":5,"op":"on","pin":1}\n', "bad_pin", 5),
    (b'{"id":6,"op":"on","pin":"GPIO99"}\n', "bad_pin", 6),
    (b'{"id":7,"op":"on","pin":"seven"}\n', "bad_pin", 7),
    (b'{"id":8,"op":"on","pin":7,"time_ms":"2000"}\n', "bad_argument", 8),
    (b'{"id":9,"op":"on","pin":7,"time_ms":NaN}\n', "bad_argument", 9),
    (b'{"id":10,"op":"on","pin":7,"time_ms":Infinity}\n', "bad_argument", 10),
    (b'{"id":11,"op":"on","pin":7,"time_ms":1e999}\n', "bad_argument", 11),
    (b'{"id":12,"op":"on","pin":7,"time_ms":-5}\n', "bad_argument", 12),
    (b'{"id":13,"op":"on","pin":7,"time_ms":1e12}\n', "bad_argument", 13),
    (b'{"id":14,"op":"blink","pin":7,"on_time":-1}\n', "bad_argument", 14),
    (b'{"id":15,"op":"value","pin":7,"level":"max"}\n', "bad_argument", 15),
    (b'{"id":16,"op":"on","pin":7,"colour":"red"}\n', "bad_argument", 16),
    (b'{"id":17,"op":"write","pins":[7]}\n', "bad_argument", 17),
    (b'{"id":18,"op":"hello","protocol":0}\n', "bad_argument", 18),
    (b'{"id":"' + b"i" * 100 + b'","op":"ping"}\n', "bad_frame", None),
    (b'{"id":19,"op":"ping","data":"' + b"x" * 20000 + b'"}\n', "frame_too_large", None),
]


@pytest.mark.parametrize("frame,code,request_id", BAD)
def test_each_bad_frame_gets_its_code_and_the_connection_lives_on(server, frame, code, request_id):
    conn = RawClient(server.address)
    conn.hello()
    with RemoteServer(*server.address) as bystander:
        bystander.pin(11).blink(on_time=0.005, off_time=0.005)
        reply = conn.call(frame)
        assert reply["ok"] is False
        assert reply["error"]["code"] == code
        assert reply["error"]["message"]
        assert reply["id"] == request_id
        assert conn.call({"id": "after", "op": "ping"})["ok"]
        assert conn.call({"id": "pin", "op": "on", "pin": 7})["ok"]
        assert server.sim.value(7) == 1.0
        assert bystander.pin(11).state()["task"] == "blink"
    conn.close()


def test_a_whole_battery_on_one_connection_in_one_segment(server, raw):
    """All the bad frames at once, in one write: one reply each, in order of
    the frames (they are all answered without a worker)."""
    before = set(server.worker_pids())
    raw.send(b"".join(frame for frame, _, _ in BAD))
    codes = [raw.recv()["error"]["code"] for _ in BAD]
    assert codes == [code for _, code, _ in BAD]
    assert raw.call({"id": 1, "op": "ping"})["ok"]
    assert set(server.worker_pids()) == before


def test_a_frame_split_over_many_segments(server, raw):
    frame = json.dumps({"id": 77, "op": "on", "pin": 7, "time_ms": 0}).encode() + b"\n"
    for byte in frame:
        raw.sock.sendall(bytes([byte]))
        time.sleep(0.0005)
    assert raw.recv() == {"id": 77, "ok": True}
    assert server.sim.value(7) == 1.0


def test_requests_before_hello_are_refused(server):
    conn = RawClient(server.address)
    reply = conn.call({"id": 1, "op": "on", "pin": 7})
    assert reply["error"]["code"] == "hello_required"
    assert server.sim.function(7) == "released"
    conn.hello()
    assert conn.call({"id": 2, "op": "on", "pin": 7})["ok"]
    conn.close()


def test_many_frames_in_one_segment_are_all_answered(raw, server):
    raw.send(b"".join(json.dumps({"id": n, "op": "on" if n % 2 else "off", "pin": 7}).encode() + b"\n"
                      for n in range(500)))
    ids = sorted(raw.recv()["id"] for _ in range(500))
    assert ids == list(range(500))
    values = [v for _, v in server.sim.history(7)]
    assert values.count(1.0) == 250 and values[-1] == 1.0  # every one applied, in order
