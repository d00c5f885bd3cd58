"""The known-shape fast path (protocol/known.py) reads a frame exactly as the full path does."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remoteio.errors import Rejected
from remoteio.protocol.framing import TOO_LARGE, FrameBuffer
from remoteio.protocol.known import parse, parse_known
from remoteio.protocol.ops import OPS
from remoteio.protocol.reading import parse_request


def outcome(read, frame):
    """What a reader makes of a frame, comparable across readers."""
    try:
        req = read(frame)
    except Rejected as rejected:
        return ("rejected", rejected.id_json, rejected.error.code, rejected.error.message)
    if req is None:
        return None
    return ("ok", req.id_json, req.op, req.spec is OPS[req.op], req.pin,
            list(req.args.items()), [type(v) for v in req.args.values()])


def same_as_full(frame: bytes):
    full = outcome(parse_request, frame)
    assert outcome(parse, frame) == full
    fast = outcome(parse_known, frame)
    assert fast is None or fast == full
    return fast


@pytest.mark.parametrize("frame", [
    b'{"id":5,"op":"on","pin":7}',
    b'{"id":5,"op":"off","pin":40}',
    b'{"id":-3,"op":"read","pin":11}',
    b'{"id":0,"op":"value","pin":12,"level":0.25}',
    b'{"id":1,"op":"on","pin":7,"time_ms":100}',
    b'{"id":1,"op":"blink","pin":7,"on_time":0.5}',
    b'{"id":1,"op":"set","pin":7,"state":1}',
    b'{"id":999999999999999,"op":"state","pin":7}',
])
def test_the_common_frames_take_the_fast_path_and_read_as_the_full_path_does(frame):
    assert same_as_full(frame) is not None


@pytest.mark.parametrize("frame", [
    b'{"id":1,"op":"on","pin":7,"id":2}',                 # duplicate keys
    b'{"id":1,"op":"on","pin":7,"pin":8}',
    b'{"id":1,"id":2,"op":"on","pin":7}',
    b'{"id":1,"op":"value","pin":7,"level":0.5,"level":1}',
    b'{"id":1,"op":"o\\u006e","pin":7}',                  # escapes in strings
    b'{"id":1,"op":"on\\n","pin":7}',
    b'{"id":01,"op":"on","pin":7}',                        # leading zeros
    b'{"id":1,"op":"on","pin":07}',
    b'{"id":1,"op":"on","pin":7,"time_ms":010}',
    b'{"id":1,"op":"on","pin":7,"time_ms":1e2}',           # exponents
    b'{"id":1,"op":"on","pin":7,"time_ms":1E+2}',
    b'{"id":1,"op":"on","pin":7,"time_ms":1e999}',
    b'{"id":1,"op":"on","pin":7,"time_ms":-1e-2}',
    b'{"id":1,"op":"on","pin":7,"time_ms":-0}',            # negative zero
    b'{"id":1,"op":"on","pin":7,"time_ms":-0.0}',
    b'{"id":-0,"op":"on","pin":7}',
    b'{"id":1, "op":"on","pin":7}',                        # whitespace
    b' {"id":1,"op":"on","pin":7}',
    b'{"id":1,"op":"on","pin":7} ',
    b'{"id" :1,"op":"on","pin":7}',
    b'{"id":1,"op":"on","pin":7,"bogus":1}',               # unknown fields
    b'{"id":1,"op":"read","pin":7,"time_ms":1}',
    b'{"id":1,"op":"nope","pin":7}',
    b'{"id":1,"op":"on","pin":"7"}',                       # wrong types
    b'{"id":1,"op":"on","pin":7,"time_ms":true}',
    b'{"id":1,"op":"on","pin":7,"time_ms":"1"}',
    b'{"id":1,"op":"on","pin":7,"time_ms":null}',
    b'{"id":1,"op":"on","pin":7.0}',
    b'{"id":1.5,"op":"on","pin":7}',
    b'{"id":1,"op":"on","pin":1}',                         # a pin that is no GPIO
    b'{"id":1,"op":"on","pin":99}',
    b'{"id":1,"op":"on","pin":7,"time_ms":-1}',            # out of range
    b'{"id":1,"op":"value","pin":7,"level":1.5}',
    b'{"id":1,"op":"pulse","pin":7,"fade_in_time":0}',     # the op's own check
    b'{"id":9007199254740993,"op":"on","pin":7}',          # an id beyond 2**53
    b'{"id":1,"op":"set","pin":7}',                        # a required field missing
    b'{"id":1,"op":"on","pin":7',                          # not JSON
    b'{"id":1,"op":"on","pin":7}x',
    b'{"id":1,"op":"i2c_read_byte","pin":7}',              # not a pin op
    b'{"id":1,"op":"info","pin":7}',
])
def test_every_other_frame_is_read_as_the_full_path_reads_it(frame):
    same_as_full(frame)


def test_a_frame_over_the_limit_never_reaches_the_fast_path():
    buf = FrameBuffer(max_frame=32)
    frames = buf.feed(b'{"id":1,"op":"on","pin":7,"time_ms":100000}\n{"id":2,"op":"on","pin":7}\n')
    assert frames == [TOO_LARGE, b'{"id":2,"op":"on","pin":7}']


def test_a_known_frame_as_text_takes_the_full_path_with_the_same_result():
    assert outcome(parse, '{"id":5,"op":"on","pin":7}') == outcome(parse, b'{"id":5,"op":"on","pin":7}')


_NAMES = sorted({name for spec in OPS.values() for name in spec.fields} | {"id", "op", "pin", "bogus"})
_NUMBERS = st.one_of(
    st.integers(-10**17, 10**17).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "-0.0", "01", "1e2", "1E-2", "2.5e+1", "1e999", "-1e999", "0.0000001",
                     "true", "false", "null", '"1"', '"GPIO4"', "[]", "{}", "1.", ".5", "+1",
                     "1e", "0x10", "NaN", "Infinity"]))
_KEY = st.one_of(st.sampled_from(_NAMES), st.sampled_from(['o\\u0070', 'i\\u0064', 'pi\\u006e']))
_OP = st.one_of(st.sampled_from(sorted(OPS) + ["nope", "ON", "o\\u006e"]), st.text(max_size=4))
_SEP = st.sampled_from([",", ",", ",", ", ", " ,", ",\t"])


@st.composite
def frames(draw):
    pairs = [("id", draw(_NUMBERS)), ("op", '"%s"' % draw(_OP)), ("pin", draw(_NUMBERS))]
    if draw(st.booleans()):
        pairs.append((draw(_KEY), draw(_NUMBERS)))
    if draw(st.integers(0, 9)) == 0:
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(_KEY), draw(_NUMBERS)))
    if draw(st.integers(0, 9)) == 0:
        pairs = draw(st.permutations(pairs))
    body = "{" + "".join(("" if n == 0 else draw(_SEP)) + '"%s":%s' % pair
                         for n, pair in enumerate(pairs)) + "}"
    return (draw(st.sampled_from(["", "", "", " "])) + body
            + draw(st.sampled_from(["", "", "", " ", "\t"]))).encode("utf-8", "surrogatepass")


@st.composite
def likely_frames(draw):
    """Frames near the known shapes: valid pins and ops, numbers of every spelling."""
    op = draw(st.sampled_from(["on", "off", "value", "blink", "pulse", "set", "read", "open"]))
    pin = draw(st.sampled_from(["7", "11", "1", "0", "41", "-7", "07"]))
    text = '{"id":%s,"op":"%s","pin":%s' % (draw(_NUMBERS), op, pin)
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(OPS[op].fields) + ["id", "pin", "bogus"]))
        text += ',"%s":%s' % (field, draw(_NUMBERS))
    return (text + "}").encode()


@settings(max_examples=1500, deadline=None)
@given(frames())
def test_the_fast_path_reads_generated_frames_as_the_full_path_does(frame):
    same_as_full(frame)


@settings(max_examples=1500, deadline=None)
@given(likely_frames())
def test_the_fast_path_reads_near_miss_frames_as_the_full_path_does(frame):
    same_as_full(frame)


def test_a_repeated_tail_reads_as_the_full_path_with_its_own_id_and_its_own_args():
    first = parse_known(b'{"id":41,"op":"value","pin":12,"level":0.75}')
    first.args["level"] = 0.0   # a reader downstream changing its copy
    for frame in (b'{"id":42,"op":"value","pin":12,"level":0.75}',
                  b'{"id":-0,"op":"value","pin":12,"level":0.75}',
                  b'{"id":-9,"op":"value","pin":12,"level":0.75}'):
        again = same_as_full(frame)
        assert again is not None and again[1] == str(parse_request(frame).id_json)
        assert parse_known(frame).args["level"] == 0.75


def test_a_refused_tail_is_refused_every_time_and_a_near_miss_never_hits_the_cache():
    for n in range(3):
        assert same_as_full(b'{"id":%d,"op":"on","pin":7,"time_ms":-5}' % n)[0] == "rejected"
    same_as_full(b'{"id":1,"op":"on","pin":7}')
    assert parse_known(b'{"id":01,"op":"on","pin":7}') is None   # the id still judged
    assert parse_known(b'{"id":1 ,"op":"on","pin":7}') is None


def test_the_tail_cache_stays_within_its_bound():
    from remoteio.protocol import known
    for n in range(known.MAX_TAILS + 500):
        parse_known(b'{"id":1,"op":"value","pin":12,"level":0.%d}' % (n + 1))
    assert len(known._TAILS) <= known.MAX_TAILS
    assert same_as_full(b'{"id":7,"op":"value","pin":12,"level":0.123456789}') is not None
