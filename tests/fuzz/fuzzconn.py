"""One fuzz connection: sends its stream, collects every reply, and checks
the replies against the labels the generator gave the frames."""
from __future__ import annotations

import json
import random
import select
import socket
import threading
import time
from collections import Counter, defaultdict
from typing import Any, Dict, List, Optional, Tuple

from remoteio.errors import ERROR_CODES

from fuzzgen import (ANY, CODE, MAX_FRAME, ONE_OF, ROUTED, STATE_CODES, VALID, _fail,
                     chunks)


# ---- a connection that sends its stream and collects every reply -------------------------------

def _no_constants(name: str) -> Any:
    raise ValueError(f"the server sent {name}")


class FuzzConn:
    def __init__(self, address: Tuple[str, int], name: str, stream: bytes,
                 frames: List[Tuple[bytes, Optional[str], Tuple]], rng: random.Random):
        self.name = name
        self.stream = stream
        self.frames = frames
        self.rng = rng
        self.sock = socket.create_connection(address, timeout=30)   # bounds every send
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.replies: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        self.null_replies: List[Dict[str, Any]] = []
        self.events: List[Dict[str, Any]] = []
        self.problems: List[str] = []
        self.count = 0
        self.closed_by_server = False
        self.send_error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"fuzz-read-{name}", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"fuzz-write-{name}", daemon=True)

    def start(self) -> None:
        self._reader.start()
        self._writer.start()

    def _write(self) -> None:
        try:
            for n, piece in enumerate(chunks(self.rng, self.stream)):
                self.sock.sendall(piece)
                if n % 25 == 0:
                    time.sleep(self.rng.choice([0, 0.0005, 0.002]))  # let some pieces land alone
        except OSError as exc:
            self.send_error = exc

    def _read(self) -> None:
        # select() for the wake-ups: the socket's own timeout also bounds the writer's sendall
        buffer = b""
        while not self._stop.is_set():
            try:
                if not select.select([self.sock], [], [], 0.2)[0]:
                    continue
                data = self.sock.recv(1 << 20)
            except (OSError, ValueError) as exc:
                if self._stop.is_set():
                    return
                self.problems.append(f"receive failed: {exc}")
                return
            if not data:
                self.closed_by_server = True
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._take(line)

    def _take(self, line: bytes) -> None:
        if any(b > 127 for b in line):
            self.problems.append(f"non-ASCII frame from the server: {line[:200]!r}")
        try:
            message = json.loads(line, parse_constant=_no_constants)
        except ValueError as exc:
            self.problems.append(f"unreadable frame from the server ({exc}): {line[:200]!r}")
            return
        if not isinstance(message, dict):
            self.problems.append(f"not an object: {line[:200]!r}")
            return
        if "event" in message and "id" not in message:
            self.events.append(message)
            return
        if "id" not in message or not isinstance(message.get("ok"), bool):
            self.problems.append(f"a reply without id or ok: {line[:200]!r}")
            return
        if not message["ok"]:
            error = message.get("error")
            if (not isinstance(error, dict) or error.get("code") not in ERROR_CODES
                    or not isinstance(error.get("message"), str) or not error["message"]):
                self.problems.append(f"a malformed error: {line[:300]!r}")
        self.count += 1
        if message["id"] is None:
            self.null_replies.append(message)
        else:
            self.replies[json.dumps(message["id"])].append(message)

    def expected(self) -> int:
        return len(self.frames)

    def close(self) -> None:
        self._stop.set()
        self._writer.join(5)
        self._reader.join(5)
        self.sock.close()


def check_replies(conn: FuzzConn, greeted: bool) -> Dict[str, int]:
    """Every frame of the connection against its reply; returns counts for the summary."""
    problems = list(conn.problems)
    stats: Counter = Counter()
    expected_null: Counter = Counter()
    for line, key, label in conn.frames:
        shown = line[:160]
        if key is None:
            expected_null["frame_too_large" if len(line) > MAX_FRAME else "bad_frame"] += 1
            continue
        got = conn.replies.get(key, [])
        if len(got) != 1:
            problems.append(f"{len(got)} replies to {shown!r} (id {key}): {got[:3]}")
            continue
        reply = got[0]
        code = None if reply["ok"] else reply["error"]["code"]
        stats["ok" if code is None else code] += 1
        kind = label[0]
        if kind == VALID:
            op = label[1]
            if not greeted and op not in ("ping", "hello"):
                if code != "hello_required":
                    problems.append(f"before hello, {shown!r} got {reply}")
            elif op in ("ping", "hello", "info", "read_many", "sim", "read", "state", "sync", "watch",
                        "unwatch"):
                if code is not None:
                    problems.append(f"valid {op} {shown!r} was refused: {reply}")
            elif code is not None and code not in STATE_CODES:
                problems.append(f"valid {shown!r} got {reply}")
            if op == "ping" and code is None and not isinstance(reply.get("time_ns"), int):
                problems.append(f"ping reply without time_ns: {reply}")
        elif kind == ROUTED:
            want = label[1] if greeted else "hello_required"
            if code != want:
                problems.append(f"{shown!r} should get {want}, got {reply}")
        elif kind == CODE:
            if code != label[1]:
                problems.append(f"{shown!r} should get {label[1]}, got {reply}")
        elif kind == ONE_OF:
            if code not in label[1]:
                problems.append(f"{shown!r} should get one of {sorted(label[1])}, got {reply}")
        elif kind == ANY:
            if code in ("internal_error", "worker_failed", "timeout"):
                problems.append(f"{shown!r} got {reply}")
    got_null = Counter(r["error"]["code"] if not r["ok"] else "ok" for r in conn.null_replies)
    if got_null != expected_null:
        problems.append(f"null-id replies {dict(got_null)}, expected {dict(expected_null)}")
    wanted = {key for _, key, _ in conn.frames if key is not None}
    extra = [k for k in conn.replies if k not in wanted]
    if extra:
        problems.append(f"replies to ids never sent: {extra[:5]}")
    for event in conn.events:
        if event.get("event") not in ("change", "closed"):
            problems.append(f"unexpected event {event}")
    if conn.closed_by_server:
        problems.append("the server closed the connection")
    if conn.send_error is not None:
        problems.append(f"sending failed: {conn.send_error!r}")
    assert not problems, _fail(f"connection {conn.name}: {len(problems)} problems:\n  "
                               + "\n  ".join(problems[:25]))
    stats["null"] = sum(expected_null.values())
    return dict(stats)
