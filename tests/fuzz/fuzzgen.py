"""The model and the frame generator behind tests/test_fuzz_live.py.

An independent model of the framing rules (newline framing, 16384-byte
limit, blank lines dropped, ``\\r\\n`` accepted) and of the ``id`` rule tells
whether the server can read a frame's id; :class:`FrameGen` makes random and
malformed frames, each with a *label* saying what its reply must be;
tests/fuzzconn.py sends a stream over one connection, collects the replies
and holds them against the labels.
"""
from __future__ import annotations

import json
import os
import random
import time
from typing import Any, Dict, List, Optional, Tuple

from remoteio.pins import BOARD_TO_BCM, POWER_AND_GROUND
from remoteio.protocol.ops import OPS  # only so that "unknown" ops and fields never name real ones

SEED = int(os.environ.get("REMOTEIO_FUZZ_SEED", "4242"))
MAX_FRAME = 16384            # docs/protocol.md, "Frames"
MAX_INT_ID = 2 ** 53
BOARDS = sorted(BOARD_TO_BCM)
FIXED_PULL_UP = (3, 5)       # GPIO2/GPIO3 have physical pull-ups (also on the simulated board)
TOTAL_DEADLINE = 45.0        # seconds for the whole battery (sending + every reply)

#: codes a *valid* request may still get, depending on what other frames did
#: before it (pin held by another connection, closed, made an input, queue full)
STATE_CODES = {"pin_busy", "pin_closed", "wrong_mode", "server_busy"}


def _fail(message: str) -> str:
    return f"{message} [seed {SEED}; replay with REMOTEIO_FUZZ_SEED={SEED}]"


# ---- the model: what the server can read of a frame ---------------------------------------

def split_frames(stream: bytes) -> List[bytes]:
    """The frames of a byte stream per docs/protocol.md (oversized ones included)."""
    lines = stream.split(b"\n")
    assert lines[-1] == b"", "a stream must end with a newline"
    return [line for line in lines[:-1] if line and not line.isspace()]


def readable_id(line: bytes) -> Optional[str]:
    """The canonical JSON text of the frame's id if the server can read it, else None."""
    if len(line) > MAX_FRAME:
        return None
    try:
        message = json.loads(line.rstrip(b"\r").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or "id" not in message:
        return None
    value = message["id"]
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -MAX_INT_ID <= value <= MAX_INT_ID:
        return json.dumps(value)
    if isinstance(value, str) and len(value) <= 64:
        return json.dumps(value)
    return None


# ---- frame generation -----------------------------------------------------------------------

class Lit:
    """A raw JSON literal put in a frame as is (``1e999``, ``-0``, a 5000-digit int)."""

    def __init__(self, text: str):
        self.text = text


def dumps(obj: Any, rng: random.Random) -> bytes:
    """JSON text of *obj* with NaN/Infinity allowed and :class:`Lit` values spliced in."""
    literals: Dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Lit):
            key = f"@@lit{len(literals)}@@"
            literals[key] = value.text
            return key
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    separators = rng.choice([(",", ":"), (", ", ": "), (",", ": ")])
    obj = swap(obj)
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5, separators=separators)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates can only be sent \u-escaped
        data = json.dumps(obj, separators=separators).encode()
    for key, literal in literals.items():
        data = data.replace(json.dumps(key).encode(), literal.encode())
    return data


PYTHON_NAMES = ["__init__", "__class__", "__dict__", "__globals__", "__del__", "__reduce__", "mro",
                "_set_state", "_route", "_spawn", "_stop", "_safe_now", "_close", "_dispatch",
                "toggle", "eval", "exec", "__import__", "os.system", "self", "handlers",
                "stop", "shutdown", "kill", "run", "auth"]
UNKNOWN_OPS = PYTHON_NAMES + ["ON", "On", " on", "on ", "", "hello\u0000", "sim.drive", "pins",
                              "read_all", "write_many", "blink2", "\u00f6n", "\U0001F4A1", "x" * 300]
UNKNOWN_FIELDS = PYTHON_NAMES + ["time", "colour", "Time_ms", "ID", "Op", "PIN", "pins", "level",
                                 "on", "", " ", "\u00e9", "\u0000", "id ", " pin", "x" * 200]
BAD_ID_VALUES: List[Any] = [1.5, 1.0, -0.5, True, False, None, [], [1], {}, {"a": 1}, 2 ** 53 + 1,
                            -(2 ** 53) - 1, 10 ** 30, "i" * 65, "\u00e9" * 65, float("nan"),
                            float("inf"), float("-inf"), Lit("1e999"), Lit("1E2"), Lit("-0.0")]
NON_OBJECTS = [b"[]", b"[1,2,3]", b'"hello"', b"42", b"-1.5", b"null", b"true", b"false", b"NaN",
               b"Infinity", b"-Infinity", b'"{\\"id\\":1,\\"op\\":\\"ping\\"}"', b'[{"id":1,"op":"ping"}]',
               b"1e999", b'""', b"0"]
GARBAGE = [b"{", b"}", b"{id:1}", b"{'id':1,'op':'ping'}", b'{"id":1,}', b'{"id":1 "op":"ping"}',
           b'{"id":1}{"id":2}', b'{"id":1,"op":"ping"}}', b"{{}}", b"nul", b"tru", b"<xml/>",
           b"GET / HTTP/1.1", b"\x00\x00\x00", b"\xef\xbb\xbf{}", b"{\"id\":\"unterminated}",
           b"SSH-2.0-OpenSSH_9.6", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]
INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80",
                b"\xc3\x28", b"\xf4\x90\x80\x80"]

#: pins that are not GPIOs of the header: every one must get bad_pin
BAD_PIN_INTS: List[Any] = sorted(POWER_AND_GROUND) + [0, 41, 42, 100, -1, -7, 10 ** 6, 2 ** 63, 10 ** 30]
BAD_PIN_STRINGS = ["GPIO28", "GPIO99", "g40", "BCM-1", "b1", "BOARD2", "J8:6", "J8:41", "seven", "",
                   " ", "7.0", "b", "GPIO", "0x7", "0007", "b 7", "7b", "GP IO4", "GPIO4x", "pin7",
                   "\u0000", "null", "-7", "+7", "1e1", "__init__", "toggle", "GPIO4 GPIO5", "7\u0000",
                   # digits that are not ASCII (str.isdigit() takes them, int() may not)
                   "GPIO\u00b2", "b\u2460", "\u00b2", "BOARD\u00b3", "J8:\u00b9", "\u0667", "\uff17",
                   "GPIO\u0664", "1\u00b9"]
BAD_PIN_OTHER: List[Any] = [7.0, 7.5, -0.0, 1e308, float("nan"), float("inf"), True, False, None,
                            [7], [], {"pin": 7}, Lit("7e0"), Lit("1e999")]

ANY_VALUES: List[Any] = ["", "x", "1", "on", True, False, None, 0, 1, -1, 0.5, 2 ** 64, [], [1], {},
                         {"x": {"y": [1, 2, {"z": None}]}}, float("nan"), float("inf"), Lit("1e999"),
                         "\u00e9\u4e2d\U0001F600", "\ud800", Lit("-0")]


def tidy(line: bytes) -> bytes:
    """Random bytes made a line: not blank, not ending in \\r (the server strips it)."""
    if line.isspace():
        line = b"x" + line[1:]
    while line.endswith(b"\r"):
        line = line[:-1] + b"x"
    return line


def spell(rng: random.Random, board: int) -> Any:
    """A valid spelling of a board pin: int, "7", "b7", "BOARD7", "J8:7", "g4", "GPIO4", ..."""
    bcm = BOARD_TO_BCM[board]
    return rng.choice([
        board, board, str(board), f"b{board}", f"B{board}", f"BOARD{board}", f"board{board}",
        f"Board{board}", f"J8:{board}", f"j8:{board}", f"g{bcm}", f"G{bcm}", f"GPIO{bcm}",
        f"gpio{bcm}", f"Gpio{bcm}", f"BCM{bcm}", f"bcm{bcm}", f" {board} ", f"\t{board}",
        f"0{board}", f"GPIO0{bcm}", f" GPIO{bcm} "])


def spell_str(rng: random.Random, board: int) -> str:
    while True:
        spelled = spell(rng, board)
        if isinstance(spelled, str):
            return spelled


#: fields of each op with values that must be refused with bad_argument
BAD_FIELD_VALUES: Dict[str, List[Any]] = {
    "time_ms": ["100", "", True, False, [], [100], {}, float("nan"), float("inf"), float("-inf"), -1,
                -0.001, 86_400_001, 1e308, -1e308, Lit("1e999"), Lit("-1e999"), 10 ** 30, -10 ** 30,
                Lit("1" + "0" * 400)],
    "level": [-0.1, 1.0001, 2, -1, "0.5", True, False, float("nan"), float("inf"), [], {}, 10 ** 30],
    "on_time": [0, 0.0, -1, 3600.1, 1e6, "1", True, float("nan"), float("inf"), [], Lit("-0.0")],
    "off_time": [0, -0.5, 3601, "0.1", False, float("-inf"), {}, 10 ** 20],
    "fade_in_time": [-1, 3601, "x", float("nan"), True, [], -1e-300],
    "fade_out_time": [-0.001, 1e9, "1", float("inf"), False, {}],
    "pull": ["sideways", "UP", "Down", "", 1, True, [], {}, "pull_up", "\u0000"],
    "bounce_ms": [-1, 60_001, "5", float("nan"), True, [], 1e300],
    "protocol": [0, -1, 1001, 1.5, 1.0, "1", True, float("nan"), [], 10 ** 30],
    "client": ["c" * 201, 5, [], True, {}],
    "data": ["d" * 1001, 5, [], {}, True, 1.5],
    "action": ["explode", "", "DRIVE", 1, None, True, [], "__init__", "history "],
    "since_ns": [-1, 2 ** 63, "0", 1.5, True, [], float("nan")],
}


class IdPool:
    """Fresh, unique request ids (by their JSON value) for one connection."""

    SPECIAL: List[Any] = [0, 2 ** 53, -(2 ** 53), -1, "", "i" * 64, "\u00e9\u4e2d\U0001F600", "null",
                          "None", "1", "0", " ", "\u0000", "\ud83d\ude00"]

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set = set()
        self.special = list(self.SPECIAL)
        rng.shuffle(self.special)

    def fresh(self) -> Any:
        rng = self.rng
        while True:
            roll = rng.random()
            if self.special and roll < 0.01:
                value = self.special.pop()
            elif roll < 0.45:
                value = rng.randrange(1, 1_000_000)
            elif roll < 0.55:
                value = rng.randrange(-MAX_INT_ID, MAX_INT_ID + 1)
            elif roll < 0.85:
                value = "r%x" % rng.getrandbits(40)
            else:
                alphabet = "abcXYZ019 _-\u00e9\u4e2d\U0001F600\"\\/\t"
                value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30)))
            key = json.dumps(value)
            if key not in self.used:
                self.used.add(key)
                return value


# label kinds: what the reply to a frame must be
VALID = "valid"      # a well-formed request; ok, or a state-dependent refusal
CODE = "code"        # exactly this error code
ONE_OF = "one_of"    # one of these error codes
ANY = "any"          # any well-formed reply (e.g. a null field: default or refusal)
NULL = "null"        # unreadable id: a null-id reply with this code
ROUTED = "routed"    # this code, found by the router (sim): hello_required before hello


class FrameGen:
    """Frames for one connection: ``(line, terminator, label)`` triples."""

    def __init__(self, rng: random.Random, own_pins: List[int], greeted: bool):
        self.rng = rng
        self.own = own_pins
        self.greeted = greeted
        self.ids = IdPool(rng)

    # -- pieces --------------------------------------------------------------------------
    def pin(self, claims: bool = False) -> int:
        """Mostly a pin of this connection's own; now and then (claiming ops: rarely, so
        that pins are not stolen for good) anyone's, to exercise pin_busy."""
        mine = self.rng.random() < (0.97 if claims else 0.8)
        return self.rng.choice(self.own) if mine else self.rng.choice(BOARDS)

    def time_ms(self, args: Dict[str, Any]) -> None:
        """Mostly untimed; timed tasks stay short (<= 30 ms) so that ``sync`` never waits long."""
        roll = self.rng.random()
        if roll < 0.1:
            args["time_ms"] = self.rng.choice([self.rng.randint(1, 30), round(self.rng.uniform(0.5, 30), 3)])
        elif roll < 0.5:
            # 5e-324 ms is a timed task too: it holds the queue for the rest of its batch
            args["time_ms"] = self.rng.choice([0, 0.0, Lit("0e0"), Lit("-0"), 5e-324])

    def phase(self) -> Any:
        # valid blink phases stay >= 10 ms here: phases of microseconds are tried by
        # _tiny_phase, rarely (accepted, they make a worker wake a million times a second)
        return self.rng.choice([0.01, 0.02, 0.05, 0.1, 0.5, 1, round(self.rng.uniform(0.01, 2), 4)])

    def valid(self) -> Tuple[Dict[str, Any], str]:
        rng = self.rng
        ops = ["on", "off", "value", "blink", "pulse", "open", "close", "read", "state", "input",
               "output", "watch", "unwatch", "write", "read_many", "ping", "info", "sim", "sync", "hello"]
        weights = [10, 9, 8, 4, 3, 3, 3, 9, 7, 3, 3, 2, 2, 4, 4, 6, 0.6, 4, 1.2, 1]
        op = rng.choices(ops, weights)[0]
        if not self.greeted and op == "hello":
            op = "ping"
        msg: Dict[str, Any] = {"id": self.ids.fresh(), "op": op}
        if op in ("on", "off", "value", "blink", "pulse", "open", "close", "read", "state", "input",
                  "output", "watch", "unwatch", "sync"):
            board = self.pin(claims=op not in ("read", "state", "watch", "unwatch", "sync"))
            msg["pin"] = spell(rng, board)
            if op in ("on", "off", "value", "blink", "pulse"):
                self.time_ms(msg)
            if op == "value" and rng.random() < 0.9:
                msg["level"] = rng.choice([0, 1, 0.5, 0.0, 1.0, 5e-324, 0.999999, rng.random(),
                                           round(rng.random(), 2)])
            elif op == "blink":
                for key in ("on_time", "off_time"):
                    if rng.random() < 0.8:
                        msg[key] = self.phase()
            elif op == "pulse":
                fade_in = rng.choice([0, 0.05, 0.2, 1, round(rng.uniform(0.02, 2), 3)])
                fade_out = rng.choice([0.05, 0.3, 1, round(rng.uniform(0.02, 2), 3)])
                if rng.random() < 0.5:
                    fade_in, fade_out = fade_out, fade_in
                msg["fade_in_time"], msg["fade_out_time"] = fade_in, fade_out
            elif op == "input":
                if board in FIXED_PULL_UP:
                    msg["pull"] = "up"  # the only pull a fixed pull-up pin takes
                else:
                    choice = rng.choice(["up", "down", "floating", "none", None, "omit"])
                    if choice != "omit":
                        msg["pull"] = choice
                if rng.random() < 0.5:
                    msg["bounce_ms"] = rng.choice([0, 1, 5, 20.5, 60_000])
        elif op == "write":
            boards = rng.sample(self.own if rng.random() < 0.97 else BOARDS, rng.randint(1, 5))
            msg["pins"] = {spell_str(rng, b): rng.choice([0, 1, True, False, 0.3, 0.0, 1.0, rng.random()])
                           for b in boards}
        elif op == "read_many":
            msg["pins"] = [spell(rng, b) for b in rng.sample(BOARDS, rng.randint(1, 28))]
        elif op == "ping":
            roll = rng.random()
            if roll < 0.3:
                alphabet = "ab\u00e9\u4e2d\U0001F600\n\t\"\\"
                msg["data"] = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
            elif roll < 0.4:
                msg["data"] = rng.choice([None, "", "d" * 1000])
        elif op == "hello":
            if rng.random() < 0.5:
                msg["protocol"] = rng.choice([1, 2, 1000])
            if rng.random() < 0.5:
                msg["client"] = rng.choice(["fuzz", "", "c" * 200, "\u00e9\u4e2d", "x"])
        elif op == "sim":
            action = rng.choice(["drive", "release", "wire", "unwire", "levels", "history", "history"])
            msg["action"] = action
            board = self.pin()
            if action != "levels":
                msg["pin"] = spell(rng, board)
            if action == "drive":
                msg["level"] = rng.choice([0, 1])
            elif action == "wire":  # (a pin wired to itself: _wire_self)
                msg["to"] = spell(rng, rng.choice([b for b in BOARDS if b != board]))
            elif action == "history":
                msg["since_ns"] = 0 if rng.random() < 0.15 else time.monotonic_ns() - 50_000_000
        return msg, op

    # -- whole frames --------------------------------------------------------------------
    def frame(self) -> Tuple[bytes, Tuple[Any, ...]]:
        """One frame (no terminator) and its label."""
        rng = self.rng
        kind = rng.choices(
            ["valid", "unknown_op", "bad_pin", "bad_field", "unknown_field", "null_field", "no_pin",
             "missing_required", "bad_id", "no_id", "non_object", "garbage", "truncated",
             "bad_utf8", "control", "deep", "chaos", "too_large", "at_limit", "huge_number",
             "wire_self", "tiny_phase"],
            [40, 4, 6, 8, 4, 2, 1.5, 1, 4, 1, 3, 3, 3, 3, 2, 0.6, 3, 0.7, 0.4, 0.5, 0.4, 0.3])[0]
        return getattr(self, "_" + kind)()

    def _valid(self):
        msg, op = self.valid()
        return dumps(msg, self.rng), (VALID, op)

    def _unknown_op(self):
        msg, _ = self.valid()
        unknown = [op for op in UNKNOWN_OPS if op not in OPS]   # the whitelist grows ("auth")
        msg["op"] = self.rng.choice(unknown + [1, None, True, [], {}, 1.5, "__init__", "toggle"])
        if self.rng.random() < 0.1:
            del msg["op"]
        return dumps(msg, self.rng), (CODE, "unknown_op")

    def _pin_op(self) -> Tuple[Dict[str, Any], str]:
        while True:
            msg, op = self.valid()
            if "pin" in msg and op != "sim":
                return msg, op

    def _bad_pin(self):
        rng = self.rng
        roll = rng.random()
        bad = rng.choice(BAD_PIN_INTS if roll < 0.35 else BAD_PIN_STRINGS if roll < 0.75 else BAD_PIN_OTHER)
        which = rng.random()
        if which < 0.6:
            msg, _ = self._pin_op()
            msg["pin"] = bad
        elif which < 0.75:
            msg, _ = self.valid()
            msg.update(op="read_many", pins=[spell(rng, 7), bad] if rng.random() < 0.5 else [bad])
            msg.pop("pin", None)
            for key in list(msg):
                if key not in ("id", "op", "pins"):
                    del msg[key]
        elif which < 0.9:
            if not isinstance(bad, str):
                bad = rng.choice(BAD_PIN_STRINGS)
            msg = {"id": self.ids.fresh(), "op": "write", "pins": {bad: 1}}
            if rng.random() < 0.5:
                msg["pins"] = {spell_str(rng, 11): 0, bad: 0.5}
        else:  # sim checks its pins in the router, after the hello gate
            if bad is None:
                bad = 0
            msg = {"id": self.ids.fresh(), "op": "sim",
                   "action": rng.choice(["drive", "release", "unwire", "history", "wire"]), "pin": bad}
            if msg["action"] == "drive":
                msg["level"] = 1
            elif msg["action"] == "wire":
                msg["to"] = 11
                if rng.random() < 0.5:
                    msg["pin"], msg["to"] = 11, bad
            return dumps(msg, rng), (ROUTED, "bad_pin")
        return dumps(msg, rng), (CODE, "bad_pin")

    def _bad_field(self):
        rng = self.rng
        candidates = {
            "on": ["time_ms"], "off": ["time_ms"], "value": ["time_ms", "level"],
            "blink": ["time_ms", "on_time", "off_time"],
            "pulse": ["time_ms", "fade_in_time", "fade_out_time"],
            "input": ["pull", "bounce_ms"], "hello": ["protocol", "client"], "ping": ["data"],
            "sim": ["action", "since_ns", "level"],
        }
        while True:
            msg, op = self.valid()
            if op in candidates:
                break
        name = rng.choice(candidates[op])
        values = BAD_FIELD_VALUES[name]
        if op == "sim" and name == "level":
            values = [2, -1, "1", True, 0.5, [], float("nan")]
        value = rng.choice(values)
        if op == "input" and name == "pull" and value is None:
            value = "sideways"  # null is an alias of floating
        if name == "data" and value is None:
            value = 5
        msg[name] = value
        if op == "pulse" and rng.random() < 0.2:
            msg["fade_in_time"], msg["fade_out_time"] = 0, rng.choice([0, 0.0, Lit("-0.0")])
        if op == "sim" and name == "since_ns":
            msg["action"] = "history"
            msg.setdefault("pin", 7)
        return dumps(msg, rng), (CODE, "bad_argument")

    def _unknown_field(self):
        rng = self.rng
        msg, op = self.valid()
        own = set(OPS[op].fields) | {"id", "op", "pin"}
        name = rng.choice([n for n in UNKNOWN_FIELDS if n not in own])
        msg[name] = rng.choice(ANY_VALUES)
        return dumps(msg, rng), (CODE, "bad_argument")

    def _null_field(self):
        """A field given as null takes its default (docs/protocol.md): still a valid request."""
        rng = self.rng
        while True:
            msg, op = self.valid()
            names = [k for k in msg if k not in ("id", "op")]
            if names:
                break
        name = rng.choice(names)
        msg[name] = None
        if name == "pin" and op != "sim":
            return dumps(msg, rng), (CODE, "bad_pin")
        if name in ("time_ms", "level", "on_time", "off_time", "fade_in_time", "fade_out_time",
                    "bounce_ms", "protocol", "client", "data") and op != "sim":
            return dumps(msg, rng), (VALID, op)
        if name == "pins":   # required
            return dumps(msg, rng), (CODE, "bad_argument")
        return dumps(msg, rng), (ANY,)   # pull (fixed pull-ups), sim pin/to/level/since_ns

    def _wire_self(self):
        """A jumper wire from a pin to itself (two spellings of one pin): refused."""
        board = self.pin()
        msg = {"id": self.ids.fresh(), "op": "sim", "action": "wire",
               "pin": spell(self.rng, board), "to": spell(self.rng, board)}
        return dumps(msg, self.rng), (ROUTED, "bad_argument")

    def _tiny_phase(self):
        """Blink/pulse phases of microseconds or subnormal: the docs take any t > 0, the
        server may refuse what it cannot time; either way no worker may die over it."""
        rng = self.rng
        tiny = [5e-324, 1e-310, 1e-300, 1e-9, 1e-7, 0.0005, Lit("4.9e-324")]
        board = self.pin(claims=True)
        if rng.random() < 0.6:
            msg = {"id": self.ids.fresh(), "op": "blink", "pin": spell(rng, board),
                   "on_time": rng.choice(tiny), "off_time": rng.choice(tiny + [0.01])}
        else:
            msg = {"id": self.ids.fresh(), "op": "pulse", "pin": spell(rng, board),
                   "fade_in_time": rng.choice(tiny + [0]), "fade_out_time": rng.choice(tiny + [0.05])}
        msg["time_ms"] = rng.choice([1, 5])   # if accepted, over at once
        return dumps(msg, rng), (ANY,)

    def _no_pin(self):
        msg, _ = self._pin_op()
        del msg["pin"]
        return dumps(msg, self.rng), (CODE, "bad_pin")

    def _missing_required(self):
        rng = self.rng
        op = rng.choice(["write", "read_many", "sim"])
        msg = {"id": self.ids.fresh(), "op": op}
        roll = rng.random()
        if op == "write" and roll < 0.6:
            msg["pins"] = rng.choice([{}, [], [7], "7", 7, None, {"7": 2}, {"7": -1}, {"7": "on"},
                                      {"7": float("nan")}, {"7": None}, {"7": [1]},
                                      {"7": 1, "GPIO4": 0}, {"11": 1, "b11": 1}])
        elif op == "read_many" and roll < 0.6:
            msg["pins"] = rng.choice([[], {}, "7", 7, None, [7, "GPIO4"], [7, 7], {"7": 1},
                                      [spell(rng, b) for b in BOARDS] + [7]])
        elif op == "sim" and roll < 0.6:
            msg["action"] = rng.choice(["drive", "wire"])
            msg["pin"] = 7
            if msg["action"] == "drive" and rng.random() < 0.5:
                msg["level"] = None
            return dumps(msg, rng), (ROUTED, "bad_argument")
        return dumps(msg, rng), (CODE, "bad_argument")

    def _bad_id(self):
        msg, _ = self.valid()
        msg["id"] = self.rng.choice(BAD_ID_VALUES)
        return dumps(msg, self.rng), (NULL, "bad_frame")

    def _no_id(self):
        msg, _ = self.valid()
        del msg["id"]
        return dumps(msg, self.rng), (NULL, "bad_frame")

    def _non_object(self):
        line = self.rng.choice(NON_OBJECTS)
        if self.rng.random() < 0.3:
            line = b"  " + line + b"\t"
        return line, (NULL, "bad_frame")

    def _garbage(self):
        rng = self.rng
        if rng.random() < 0.5:
            return rng.choice(GARBAGE), (NULL, "bad_frame")
        data = bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randrange(1, 200)))
        return tidy(data), (NULL, "bad_frame")

    def _truncated(self):
        line, _ = self._valid()
        cut = self.rng.randrange(1, len(line))
        return line[:cut], (NULL, "bad_frame")

    def _bad_utf8(self):
        rng = self.rng
        msg, _ = self.valid()
        marker = "@@utf8@@"
        msg[rng.choice(["op", "id"]) if rng.random() < 0.5 else "client"] = "ab" + marker
        line = dumps(msg, rng).replace(marker.encode(), rng.choice(INVALID_UTF8))
        return line, (NULL, "bad_frame")

    def _control(self):
        """Raw control characters: inside strings (JSON forbids them) or between tokens."""
        rng = self.rng
        msg, _ = self.valid()
        control = bytes([rng.choice([c for c in range(32) if c not in (9, 10, 13, 32)])])
        marker = "@@ctl@@"
        if rng.random() < 0.5:
            msg["op"] = str(msg["op"]) + marker
            line = dumps(msg, rng).replace(marker.encode(), control)
        else:
            line = dumps(msg, rng)
            at = rng.randrange(0, len(line) + 1)
            line = line[:at] + control + line[at:]
        return line, (NULL, "bad_frame")

    def _deep(self):
        depth = self.rng.choice([2000, 5000, 8000])
        nested = b"[" * depth + b"]" * depth
        line = b'{"id":%d,"op":"ping","data":%s}' % (self.rng.randrange(10 ** 9, 10 ** 10), nested)
        return line, (NULL, "bad_frame")   # RecursionError: not JSON the server can read

    def _chaos(self):
        """Random keys and values; an unknown field keeps it from ever being carried out."""
        rng = self.rng
        msg: Dict[str, Any] = {"id": self.ids.fresh()}
        pool = ["op", "pin", "time_ms", "level", "on_time", "pins", "action", "to", "data", "client",
                "pull"] + PYTHON_NAMES
        for _ in range(rng.randrange(0, 6)):
            msg[rng.choice(pool)] = rng.choice(ANY_VALUES + [rng.choice(BOARDS), "on", "sim", "blink"])
        msg["__fuzz__"] = rng.choice(ANY_VALUES)
        keys = list(msg)
        rng.shuffle(keys)
        return dumps({k: msg[k] for k in keys}, rng), (ONE_OF, {"unknown_op", "bad_pin", "bad_argument"})

    def _too_large(self):
        rng = self.rng
        size = rng.choice([MAX_FRAME + 1, MAX_FRAME + 2, 17_000, 20_000, 65_536, 100_000, 300_000])
        style = rng.random()
        if style < 0.4:
            head = b'{"id":%d,"op":"ping","data":"' % rng.randrange(10 ** 9)
            line = head + b"x" * (size - len(head) - 2) + b'"}'
        elif style < 0.7:
            head = b'{"id":"big","op":"on","pin":7' + b" " * (size - 30)
            line = head[:size - 1] + b"}"
        else:
            pattern = bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(64))
            line = pattern * (size // 64 + 1)
            line = tidy(line[:size])
        assert len(line) == size
        return line, (NULL, "frame_too_large")

    def _at_limit(self):
        """Exactly 16384 bytes: still a frame (padded with JSON whitespace)."""
        msg = {"id": self.ids.fresh(), "op": "ping"}
        body = json.dumps(msg).encode()
        line = body[:-1] + b" " * (MAX_FRAME - len(body)) + b"}"
        assert len(line) == MAX_FRAME
        return line, (VALID, "ping")

    def _huge_number(self):
        """Integers of more digits than Python's int parser takes: the frame is not readable."""
        digits = self.rng.choice([4301, 5000, 8000])
        line = b'{"id":%d,"op":"on","pin":7,"time_ms":%s}' % (self.rng.randrange(10 ** 9), b"9" * digits)
        return line, (NULL, "bad_frame")


Sent = List[Tuple[bytes, Optional[str], Tuple]]   # (line, id key or None, label) per frame


def build_stream(gen: FrameGen, count: int, hello: bool) -> Tuple[bytes, Sent]:
    """The connection's bytes and its frames as ``(line, id key or None, label)``."""
    rng = gen.rng
    parts: List[bytes] = []
    frames: Sent = []
    keys: set = set()

    def add(line: bytes, label: Tuple) -> None:
        assert b"\n" not in line and not line.endswith(b"\r"), _fail(f"generator bug: {line[:80]!r}")
        key = readable_id(line)
        if key is not None and label[0] != NULL:
            assert key not in keys, _fail(f"generator bug: id {key} used twice")
            keys.add(key)
            gen.ids.used.add(key)
        elif key is not None:
            raise AssertionError(_fail(f"generator bug: {line[:200]!r} has a readable id {key}"))
        if label[0] in (VALID, CODE, ROUTED) and key is None:
            raise AssertionError(_fail(f"generator bug: {line[:200]!r} has no readable id"))
        terminator = b"\r\n" if rng.random() < 0.2 else b"\n"
        if len(line) + len(terminator) - 1 > MAX_FRAME and label[0] != NULL:
            terminator = b"\n"  # a frame of exactly the limit keeps a bare newline
        parts.append(line + terminator)
        frames.append((line, key, label))

    if hello:
        add(b'{"id":"hello","op":"hello","client":"fuzz"}', (VALID, "hello"))
    while len(frames) < count:
        roll = rng.random()
        if roll < 0.03:
            parts.append(rng.choice([b"\n", b"\r\n", b"   \n", b"\t\r\n", b" \t \n"]))  # blank: no reply
            continue
        line, label = gen.frame()
        add(line, label)
    stream = b"".join(parts)
    # the model of the framing must see exactly the frames we meant
    assert [f[0] for f in frames] == [line.rstrip(b"\r") for line in split_frames(stream)], \
        _fail("generator bug: framing")
    return stream, frames


def chunks(rng: random.Random, stream: bytes) -> List[bytes]:
    """The stream cut at random byte boundaries: single bytes to tens of kilobytes per send."""
    out, at = [], 0
    while at < len(stream):
        roll = rng.random()
        size = (rng.randint(1, 16) if roll < 0.2 else rng.randint(17, 4096) if roll < 0.9
                else rng.randint(4097, 65536))
        out.append(stream[at:at + size])
        at += size
    return out
