import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from remoteio.errors import ERROR_CODES
from remoteio.protocol.ops import OPS, REQUIRED
from remoteio.protocol.reading import Rejected, parse_request


def rejected(frame):
    with pytest.raises(Rejected) as info:
        parse_request(frame if isinstance(frame, bytes) else json.dumps(frame).encode())
    return info.value


def test_a_valid_task():
    req = parse_request(b'{"id": 5, "op": "blink", "pin": "GPIO4", "on_time": 0.5}')
    assert (req.id_json, req.op, req.pin) == ("5", "blink", 7)
    assert req.args == {"on_time": 0.5, "off_time": 1.0, "time_ms": 0.0,
                        "lease_ms": 0.0, "revert": "safe"}


def test_string_ids_are_echoed_as_json():
    assert parse_request(b'{"id": "a\\"b", "op": "ping"}').id_json == '"a\\"b"'


@pytest.mark.parametrize("frame,code", [
    (b"\xff\xfe not utf-8\n", "bad_frame"),
    (b"not json", "bad_frame"),
    (b"[1, 2, 3]", "bad_frame"),
    (b'"a string"', "bad_frame"),
    (b"42", "bad_frame"),
    (b"null", "bad_frame"),
    (b"[" * 100000 + b"]" * 100000, "bad_frame"),
    (b'{"op": "ping"}', "bad_frame"),
    (b'{"id": true, "op": "ping"}', "bad_frame"),
    (b'{"id": 1.5, "op": "ping"}', "bad_frame"),
    (b'{"id": [1], "op": "ping"}', "bad_frame"),
    (b'{"id": 9007199254740993, "op": "ping"}', "bad_frame"),
    (b'{"id": "' + b"x" * 65 + b'", "op": "ping"}', "bad_frame"),
])
def test_frames_that_are_not_requests(frame, code):
    error = rejected(frame)
    assert error.error.code == code
    assert error.id_json == "null"


@pytest.mark.parametrize("message,code,words", [
    ({"id": 1}, "unknown_op", "no op"),
    ({"id": 1, "op": 3}, "unknown_op", "no op"),
    ({"id": 1, "op": "__init__", "pin": 7}, "unknown_op", "unknown op"),
    ({"id": 1, "op": "toggle", "pin": 7}, "unknown_op", "unknown op"),
    ({"id": 1, "op": "on"}, "bad_pin", "needs a pin"),
    ({"id": 1, "op": "on", "pin": 1}, "bad_pin", "3V3"),
    ({"id": 1, "op": "on", "pin": 6}, "bad_pin", "ground"),
    ({"id": 1, "op": "on", "pin": 99}, "bad_pin", "header"),
    ({"id": 1, "op": "on", "pin": None}, "bad_pin", "pin"),
    ({"id": 1, "op": "on", "pin": 7, "time_ms": -1}, "bad_argument", "time_ms"),
    ({"id": 1, "op": "on", "pin": 7, "time_ms": "1000"}, "bad_argument", "number"),
    ({"id": 1, "op": "on", "pin": 7, "time_ms": True}, "bad_argument", "number"),
    ({"id": 1, "op": "on", "pin": 7, "time_ms": 1e12}, "bad_argument", "time_ms"),
    ({"id": 1, "op": "on", "pin": 7, "time_ms": float("nan")}, "bad_argument", "finite"),
    ({"id": 1, "op": "on", "pin": 7, "time_ms": float("inf")}, "bad_argument", "finite"),
    ({"id": 1, "op": "on", "pin": 7, "time": 5}, "bad_argument", "no field 'time'"),
    ({"id": 1, "op": "value", "pin": 7, "level": 1.5}, "bad_argument", "level"),
    ({"id": 1, "op": "value", "pin": 7, "level": -0.1}, "bad_argument", "level"),
    ({"id": 1, "op": "blink", "pin": 7, "on_time": 0}, "bad_argument", "on_time"),
    ({"id": 1, "op": "blink", "pin": 7, "off_time": 1e9}, "bad_argument", "off_time"),
    ({"id": 1, "op": "pulse", "pin": 7, "fade_in_time": 0, "fade_out_time": 0}, "bad_argument", "both be 0"),
    ({"id": 1, "op": "input", "pin": 11, "pull": "sideways"}, "bad_argument", "pull"),
    ({"id": 1, "op": "input", "pin": 11, "bounce_ms": -5}, "bad_argument", "bounce_ms"),
    ({"id": 1, "op": "ping", "pin": 7}, "bad_argument", "no pin"),
    ({"id": 1, "op": "hello", "protocol": "one"}, "bad_argument", "integer"),
    ({"id": 1, "op": "write", "pins": {}}, "bad_argument", "pins"),
    ({"id": 1, "op": "write", "pins": {"7": 2}}, "bad_argument", "pins"),
    ({"id": 1, "op": "write", "pins": {"1": 1}}, "bad_pin", "3V3"),
    ({"id": 1, "op": "write", "pins": {"7": 1, "GPIO4": 0}}, "bad_argument", "twice"),
    ({"id": 1, "op": "read_many", "pins": [7, 7]}, "bad_argument", "twice"),
    ({"id": 1, "op": "read_many", "pins": "7"}, "bad_argument", "list"),
    ({"id": 1, "op": "sim"}, "bad_argument", "action"),
])
def test_bad_requests_get_a_stable_code_and_a_message_that_says_why(message, code, words):
    error = rejected(message)
    assert error.error.code == code
    assert words in error.error.message
    assert error.id_json == "1"


def test_an_unknown_op_is_refused_without_listing_the_operations():
    # anyone may send it before auth; the list is what a token server's hello keeps back
    with pytest.raises(Rejected) as refused:
        parse_request(b'{"id":2,"op":"nope"}')
    message = refused.value.error.message
    assert "nope" in message
    assert not [op for op in ("ping", "info", "i2c_read_byte_data") if op in message], message


def test_every_op_accepts_its_documented_defaults():
    needs = {"pin": 7}
    extra = {"sim": {"action": "levels"}, "write": {"pins": {"7": 1}}, "read_many": {"pins": [7]},
             "auth": {"nonce": "ab" * 16, "mac": "cd" * 32}, "set": {"state": 1},
             "expander_declare": {"expander": "mcp7", "chip": "mcp23017"}}
    for name, spec in OPS.items():
        message = {"id": 1, "op": name, **extra.get(name, {})}
        if spec.scope == "pin":
            message.update(needs)
        if spec.scope == "bus":  # a sample of each required field
            samples = {"addr": 0x20, "register": 0, "value": 0, "length": 1, "data": [0],
                       "msgs": [{"addr": 0x20, "read": 1}],
                       "calls": [{"call": "read_byte", "addr": 0x20}]}
            if name.startswith("spi_"):   # SPI bytes travel as hex text
                samples.update(data="00", count=1, action="voltages")
            if name.startswith("serial_"):  # a serial port's fields (protocol/serial.py)
                samples.update(port="serial0", data="aGk=", baudrate=9600, timeout=1.0,
                               input=True, output=False)
            message.update({k: samples[k] for k, (_, default) in spec.fields.items()
                            if default is REQUIRED})
        assert parse_request(json.dumps(message).encode()).op == name


def test_error_codes_are_unique_and_stable():
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
    for code in ("bad_frame", "frame_too_large", "unknown_op", "bad_pin", "pin_busy",
                 "bad_argument", "pin_closed", "worker_failed", "server_busy"):
        assert code in ERROR_CODES


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_never_fails_with_anything_but_a_rejection(data):
    try:
        parse_request(data)
    except Rejected as exc:
        assert exc.error.code in ERROR_CODES
        json.loads(exc.id_json)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({"id": st.integers(-10, 10) | st.text(max_size=5),
                              "op": st.sampled_from(sorted(OPS) + ["nope"])},
                             optional={"pin": json_values | st.integers(0, 41),
                                       "time_ms": json_values, "level": json_values,
                                       "on_time": json_values, "pull": json_values,
                                       "pins": json_values, "action": json_values}))
def test_decoder_on_near_valid_requests(message):
    """Requests close to valid are either accepted with clean values or
    refused with a code, and the refusal echoes the request's id."""
    try:
        req = parse_request(json.dumps(message).encode())
    except Rejected as exc:
        assert exc.error.code in ERROR_CODES
        assert json.loads(exc.id_json) == message["id"]
        return
    for value in req.args.values():
        if isinstance(value, float):
            assert math.isfinite(value)
