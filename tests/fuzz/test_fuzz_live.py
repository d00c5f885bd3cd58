"""End-to-end fuzz: more than 10,000 random and malformed frames against a
live server (docs/protocol.md), after which the server still answers, every
frame got exactly one reply, and no process was lost or added.

The frames come from a seeded ``random.Random`` (set ``REMOTEIO_FUZZ_SEED`` to
replay a run; the seed is in every failure message), made by tests/fuzzgen.py
with a *label* saying what the reply must be; its model of the framing and id
rules tells whether the server can read a frame's id: readable ids are
matched to their reply, the others must come back with ``"id": null``
(``bad_frame`` / ``frame_too_large``), counted.

The battery found five server bugs and one mismatch with docs/protocol.md
in commit ca9f5bb (fixed in d915da3); each has its own minimal reproduction
at the end of this module, as a regression test.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
from collections import defaultdict
from typing import Dict, List

import psutil
import pytest

from remoteio.server import Server

from remoteio.testing import RawClient, wait_until, worker_pid
from fuzzconn import FuzzConn, check_replies
from fuzzgen import BOARDS, SEED, TOTAL_DEADLINE, VALID, FrameGen, _fail, build_stream


# ---- the battery ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ten_thousand_random_and_malformed_frames():
    started = time.monotonic()
    rng = random.Random(SEED)
    print(f"fuzz seed {SEED} (replay with REMOTEIO_FUZZ_SEED={SEED})")
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}

    # (a connection that skips hello gets a few refusals and is closed since
    # issue 13: test_frames_before_hello_get_a_few_refusals_then_the_connection_ends)
    plan = [("a", True, 4000), ("b", True, 4000), ("c", True, 4000), ("d", True, 4000)]
    shuffled = list(BOARDS)
    rng.shuffle(shuffled)
    streams = []
    for n, (name, greeted, count) in enumerate(plan):
        gen = FrameGen(random.Random(rng.getrandbits(64)), shuffled[n * 7:(n + 1) * 7] or BOARDS, greeted)
        streams.append((name, greeted, *build_stream(gen, count, greeted)))
    total = sum(len(frames) for _, _, _, frames in streams)
    assert total >= 10_000

    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        conns = [FuzzConn(server.address, name, stream, frames, random.Random(rng.getrandbits(64)))
                 for name, _, stream, frames in streams]
        greeted = {name: g for name, g, _, _ in streams}

        # watch for worker replacements while the battery runs
        seen_pids: Dict[int, set] = defaultdict(set)
        watching = threading.Event()

        def watch_workers() -> None:
            while not watching.is_set():
                for board, pid in server.worker_pids().items():
                    seen_pids[board].add(pid)
                watching.wait(0.02)

        watcher = threading.Thread(target=watch_workers, name="fuzz-worker-watch", daemon=True)
        watcher.start()
        try:
            for conn in conns:
                conn.start()
            deadline = started + TOTAL_DEADLINE
            done = wait_until(lambda: all(c.count >= c.expected() for c in conns)
                              or any(c.send_error or c.closed_by_server for c in conns),
                              timeout=max(1.0, deadline - time.monotonic()), interval=0.05)
            failed = {c.name: (c.send_error, c.closed_by_server) for c in conns
                      if c.send_error or c.closed_by_server}
            assert not failed, _fail(f"sending failed or the server closed a connection: {failed}")
            elapsed = time.monotonic() - started
            if not done:
                missing = {c.name: c.expected() - c.count for c in conns}
                first = {c.name: [(line[:120], label[:2]) for line, key, label in c.frames
                                  if key is not None and key not in c.replies][:5] for c in conns}
                pytest.fail(_fail(f"replies missing after {elapsed:.1f} s: {missing}; "
                                  f"server threads alive: {[t.is_alive() for t in server._threads]}; "
                                  f"first unanswered: {first}"))
            time.sleep(0.2)  # anything extra (a duplicate reply) would have come by now
            for conn in conns:
                conn.close()
        finally:
            watching.set()
            watcher.join(2)
            for conn in conns:
                conn.close()

        summary = {}
        for conn in conns:
            summary[conn.name] = check_replies(conn, greeted[conn.name])
        oks = sum(s.get("ok", 0) for s in summary.values())
        valid = sum(1 for conn in conns if greeted[conn.name]
                    for _, _, label in conn.frames if label[0] == VALID)
        assert oks > 0.4 * valid, _fail(f"too few of {valid} valid requests carried out: {summary}")
        assert not any(s.get("worker_failed") for s in summary.values())
        assert not any(s.get("internal_error") for s in summary.values())

        # no worker died or was replaced during the battery
        replaced = {board: pids for board, pids in seen_pids.items() if len(pids) > 1}
        assert not replaced, _fail(f"workers replaced during the battery: {replaced}")
        assert all(t.is_alive() for t in server._threads), "a server thread died"

        # the server still answers correctly, on a fresh connection
        check = RawClient(server.address, timeout=5)
        try:
            reply = check.hello()
            assert reply["protocol"] == 1 and reply["mode"] == "wait"
            assert check.call({"id": 1, "op": "ping", "data": "after"})["data"] == "after"
            # every fuzz connection is gone (its pins soft-closed) before we drive a pin
            assert wait_until(lambda: check.call({"id": "n", "op": "info"})["connections"] == 1,
                              timeout=10, interval=0.05), "fuzz connections still open on the server"
            assert check.call({"id": 2, "op": "sim", "action": "unwire", "pin": 7})["ok"]
            assert check.call({"id": 3, "op": "sim", "action": "release", "pin": 7})["ok"]
            reply = check.call({"id": 4, "op": "on", "pin": "GPIO4"})
            assert reply["ok"], reply
            assert check.call({"id": 5, "op": "sync", "pin": 7}) == {"id": 5, "ok": True}
            assert check.call({"id": 6, "op": "read", "pin": "b7"}) == {"id": 6, "ok": True, "value": 1}
            assert server.sim.value(7) == 1.0 and server.sim.level(7) == 1
            history = check.call({"id": 7, "op": "sim", "action": "history", "pin": 7})["history"]
            assert history[-1][1] == 1.0
            state = check.call({"id": 8, "op": "state", "pin": 7})
            assert state["mode"] == "output" and state["task"] == "on" and state["value"] == 1
            assert check.call({"id": 9, "op": "off", "pin": 7}) == {"id": 9, "ok": True}
            assert server.sim.value(7) == 0.0
        finally:
            check.close()

        # processes: this test's children are exactly the server's workers, all alive,
        # and none was replaced (checked above)
        workers = server.worker_pids()
        children = {p.pid: p for p in me.children(recursive=True) if p.pid not in children_before}
        assert set(children) == set(workers.values()) | {server.zygote_pid}, (children, workers)
        assert all(p.status() != psutil.STATUS_ZOMBIE for p in children.values())
        assert set(workers) <= set(BOARDS) and len(workers) <= 28
        for board, pids in seen_pids.items():
            assert workers.get(board) in pids, (board, pids, workers.get(board))

    elapsed = time.monotonic() - started
    gone = [pid for pid in workers.values() if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not gone, f"workers left after stop: {gone}"
    print(f"{total} frames over {len(conns)} connections in {elapsed:.1f} s; "
          f"{len(workers)} workers; replies: {summary}")
    assert elapsed < 60, f"the battery took {elapsed:.1f} s"


# ---- the bugs the battery found, one minimal reproduction each ------------------------------

def _bounded_server_check(server_process, frames: List[bytes]) -> None:
    """Send *frames* (each with id 1) to a fresh server; each must get a proper refusal and
    the server must then still answer pins (subprocess server: a crash stays contained)."""
    proc = server_process()
    conn = RawClient(proc.address, timeout=1.5)
    try:
        conn.hello()
        for n, frame in enumerate(frames):
            conn.send(frame)
            reply = conn.recv()
            assert reply["id"] == 1 and reply["ok"] is False, (frame, reply)
            assert reply["error"]["code"] in ("bad_pin", "bad_argument"), (frame, reply)
        assert conn.call({"id": 2, "op": "on", "pin": 7}) == {"id": 2, "ok": True}
        assert conn.call({"id": 3, "op": "read", "pin": 7})["value"] == 1
    finally:
        conn.close()
    fresh = RawClient(proc.address, timeout=1.5)
    try:
        fresh.hello()
        assert fresh.call({"id": 4, "op": "read", "pin": 11})["ok"]
    finally:
        fresh.close()


@pytest.mark.parametrize("frame", [
    '{"id":1,"op":"read","pin":"\u00b2"}',
    '{"id":1,"op":"on","pin":"GPIO\u00b2"}',
    '{"id":1,"op":"write","pins":{"b\u2460":1}}',
    '{"id":1,"op":"read_many","pins":[7,"BOARD\u00b3"]}',
    '{"id":1,"op":"sim","action":"history","pin":"\u00b9"}',
    '{"id":1,"op":"sim","action":"wire","pin":7,"to":"g\u00b2"}',
], ids=["read", "on", "write", "read_many", "sim-pin", "sim-to"])
def test_pin_spec_with_non_ascii_digits_is_bad_pin(server_process, frame):
    """Bug 1 (ca9f5bb): a pin string whose digits are not ASCII but pass str.isdigit()
    (superscripts, circled digits) raised ValueError in pins.board_pin (int() refuses them):
    in a request the listener thread died (every connection dropped, no more accepts), in a
    sim request the router thread died (no pin request answered any more)."""
    _bounded_server_check(server_process, [frame.encode() + b"\n"])


def test_sim_wire_of_a_pin_to_itself_is_refused(server_process):
    """Bug 2 (ca9f5bb): sim wire with 'to' naming the same line raised ValueError ('a wire
    joins at least two lines') in the router thread, which died: this request and every later
    pin request were never answered."""
    _bounded_server_check(server_process, [b'{"id":1,"op":"sim","action":"wire","pin":7,"to":"GPIO4"}\n'])


def test_blink_with_a_subnormal_phase_does_not_kill_the_worker():
    """Bug 3 (ca9f5bb): a blink phase of 5e-324 s passed the (0, 3600] check, then
    Blink._phase overflowed (OverflowError: float infinity to int) and the pin's worker died
    (worker_failed, pin made safe). Refusing it is as good as carrying it out."""
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        conn = RawClient(server.address, timeout=3)
        try:
            conn.hello()
            assert conn.call({"id": 0, "op": "read", "pin": 7})["ok"]
            before = worker_pid(server, 7)
            reply = conn.call({"id": 1, "op": "blink", "pin": 7, "on_time": 5e-324, "off_time": 5e-324})
            time.sleep(0.2)
            after = conn.call({"id": 2, "op": "state", "pin": 7})
            assert reply["ok"] or reply["error"]["code"] == "bad_argument", reply
            assert not any(e.get("event") == "worker_failed" for e in conn.events), conn.events
            assert server.worker_pids()[7] == before
            assert after["ok"]
        finally:
            conn.close()


@pytest.mark.parametrize("request_", [
    {"op": "on", "pin": 7, "time_ms": None},
    {"op": "value", "pin": 7, "level": None},
    {"op": "blink", "pin": 7, "on_time": None, "off_time": None},
    {"op": "input", "pin": 7, "bounce_ms": None},
    {"op": "hello", "protocol": None},
], ids=["on", "value", "blink", "input", "hello"])
def test_null_takes_the_default(server, request_):
    """Mismatch with docs/protocol.md (ca9f5bb): 'A field given as null takes its default
    where it has one', but only fields whose default is None did; time_ms, level, on_time,
    bounce_ms, protocol = null got bad_argument."""
    conn = RawClient(server.address, timeout=3)
    try:
        conn.hello()
        reply = conn.call(dict(request_, id=1))
        assert reply["ok"], reply
    finally:
        conn.close()


def test_frames_before_hello_get_a_few_refusals_then_the_connection_ends():
    rng = random.Random(SEED)
    gen = FrameGen(random.Random(rng.getrandbits(64)), BOARDS, False)
    stream, frames = build_stream(gen, 1200, False)
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        sock = socket.create_connection(server.address, timeout=5)
        try:
            sock.sendall(stream)
        except OSError:
            pass  # closed while we were still sending: what is asserted below
        received = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        else:
            pytest.fail("the server kept a connection that never said hello")
        sock.close()
        refusals = [json.loads(line) for line in received.splitlines() if b'"ok":false' in line]
        assert 0 < len(refusals) <= 4, refusals
        assert all(r["error"]["code"] in ("hello_required", "bad_frame", "frame_too_large",
                                          "bad_argument", "unknown_op", "bad_pin")
                   for r in refusals), refusals
        check = RawClient(server.address, timeout=5)
        assert check.hello()["ok"] and check.call({"id": 1, "op": "ping"})["ok"]
        check.close()


def test_task_queued_behind_a_timed_task_on_a_pin_made_input_does_not_kill_the_worker():
    """Bug 4 (ca9f5bb, wait mode): a task queued behind a timed task passed check_output on
    arrival; when an 'input' queued before it ran first, PinWorker._start set self.job before
    _apply raised WrongMode ('queued blink failed' in the log), the job stayed, and the next
    _advance called _apply outside any try: the worker died (worker_failed, pin made safe).
    Since issue 12 such a task is refused when it is queued (never "ok" and then nothing)."""
    with Server(host="127.0.0.1", port=0, backend="sim") as server:
        conn = RawClient(server.address, timeout=3)
        try:
            conn.hello()
            assert conn.call({"id": 1, "op": "on", "pin": 7, "time_ms": 50}) == {"id": 1, "ok": True}
            assert conn.call({"id": 2, "op": "input", "pin": 7})["ok"]
            refused = conn.call({"id": 3, "op": "blink", "pin": 7, "on_time": 0.01, "off_time": 0.01})
            assert refused["error"]["code"] == "wrong_mode", refused
            before = worker_pid(server, 7)
            assert wait_until(lambda: conn.call({"id": 5, "op": "state", "pin": 7})["mode"] == "input",
                              timeout=5)
            state = conn.call({"id": 4, "op": "state", "pin": 7})
            assert not any(e.get("event") == "worker_failed" for e in conn.events), conn.events
            assert server.worker_pids()[7] == before
            assert state["mode"] == "input", state
        finally:
            conn.close()


def test_two_workers_dying_together_leave_the_router_running():
    """Bug 5 (ca9f5bb, found through the worker deaths of bug 4 in the battery): when two
    workers died at about the same time, the listener closed the second one's reply pipe while
    the router handled the first; Router._spawn then called fileno() on that closed handle
    (OSError 'handle is closed') and the router thread died: no pin request answered any more."""
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    server = Server(host="127.0.0.1", port=0, backend="sim").start()
    conn = RawClient(server.address, timeout=2)
    try:
        conn.hello()
        pins = (7, 11, 13, 15)
        for pin in pins:
            assert conn.call({"id": pin, "op": "on", "pin": pin})["ok"]
        pids = server.worker_pids()
        for pin in pins:
            os.kill(pids[pin], signal.SIGKILL)
        assert wait_until(lambda: all(server.worker_pids().get(p) not in (None, pids[p]) for p in pins),
                          timeout=3)
        for n, pin in enumerate(pins):
            reply = conn.call({"id": 100 + n, "op": "read", "pin": pin})
            assert reply == {"id": 100 + n, "ok": True, "value": 0}
    finally:
        conn.close()
        server.stop()
        # should its router have died, nobody stops the workers this server started: stop them
        for child in psutil.Process().children(recursive=True):
            if child.pid not in children_before:
                try:
                    os.kill(child.pid, signal.SIGKILL)
                    os.waitpid(child.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
