import json

from remoteio.errors import PinBusy
from remoteio.protocol import writing


def test_replies_are_one_json_object_per_line():
    for frame in (writing.ok("1"), writing.ok('"x"', {"value": 0.5}),
                  writing.error("2", "bad_pin", 'quote " and \u00e9'),
                  writing.error_from(PinBusy("held"), "null"),
                  writing.event("change", {"pin": 7, "value": 1}), writing.event("closed", {})):
        assert frame.endswith(b"\n") and frame.count(b"\n") == 1
        assert isinstance(json.loads(frame), dict)
        frame.decode("ascii")


def test_ok_and_error_shapes():
    assert json.loads(writing.ok("7", {"value": 1})) == {"id": 7, "ok": True, "value": 1}
    assert json.loads(writing.error_from(PinBusy("held"), "7")) == {
        "id": 7, "ok": False, "error": {"code": "pin_busy", "message": "held"}}


def test_request_encoding():
    assert json.loads(writing.request(3, "on", {"pin": 7, "time_ms": 10})) == {
        "id": 3, "op": "on", "pin": 7, "time_ms": 10}


def test_a_request_is_the_json_of_its_id_op_and_fields_whatever_they_hold():
    cases = [{}, {"pin": 7}, {"pin": "mcp0:A3", "level": 0.25, "note": "é\n\"", "data": [1, {"a": None}]}]
    for fields in cases:
        frame = writing.request(12, "on", fields)
        assert frame.endswith(b"\n") and frame.count(b"\n") == 1 and frame.isascii()
        assert json.loads(frame) == {"id": 12, "op": "on", **fields}
    assert json.loads(writing.request(1, 'we"ird', {})) == {"id": 1, "op": 'we"ird'}


def test_a_request_that_is_not_json_raises_a_value_or_type_error():
    import pytest
    for bad in ({"level": float("nan")}, {"level": float("inf")}, {"pin": object()}):
        with pytest.raises((ValueError, TypeError)):
            writing.request(1, "value", bad)
    looped: dict = {}
    looped["self"] = looped
    with pytest.raises(ValueError):
        writing.request(1, "on", {"x": looped})
