"""Leader/follower reading in the sync client (issue 21): a caller reads its
own reply when nobody else reads; every reply still reaches its own caller,
events still arrive with or without calls in flight, and a leader that gives
up hands the reading over.

Some tests run against a stand-in server on 127.0.0.1 that answers as the
test says (late, in reverse order, never); the others against real servers."""
from __future__ import annotations

import select
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from remoteio import RemoteServer
from remoteio.errors import CallTimeout
from remoteio.server import Server
from remoteio.testing import wait_until

from fakeservers import Frame, ScriptedServer


class StandIn(ScriptedServer):
    """One connection: answers hello; every other request gets
    ``answer(request)``: None (never), or ``(delay_s, reply)``. The requests
    read together are answered in reverse order, so that replies cross."""

    def __init__(self, answer: Callable[[Frame], Optional[tuple]]):
        def script(message: Frame) -> List[Tuple[float, Frame]]:
            reply = answer(message)
            return [] if reply is None else [(reply[0], dict(reply[1], id=message["id"]))]
        super().__init__(script, reverse=True, hello={"ok": True, "protocol": 1,
                                                      "server": "stand-in"})
        self.received = self.requests


def echo(message: Frame) -> Optional[tuple]:
    return 0.0, {"ok": True, "tag": message.get("tag")}


@pytest.mark.parametrize("pausing", ["epoll", "without epoll"])
def test_many_threads_calling_at_once_each_get_their_own_replies(pausing, monkeypatch):
    if pausing != "epoll":  # as on macOS or Windows: the background reader wakes and parks
        monkeypatch.delattr(select, "epoll", raising=False)
    stand_in = StandIn(echo)
    remote = RemoteServer(*stand_in.address, timeout=10.0, heartbeat=0, reconnect=False)
    wrong: List[tuple] = []
    done: List[int] = []
    start = threading.Barrier(8)

    def caller(n: int) -> None:
        start.wait(10)
        for i in range(150):
            tag = f"{n}-{i}"
            got = remote.request("echo", tag=tag).get("tag")
            if got != tag:
                wrong.append((tag, got))
        done.append(n)

    try:
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(done) == list(range(8))  # nobody lost a reply (or hung)
        assert wrong == []                     # nobody got another's
        assert len(stand_in.received) == 8 * 150
        assert remote.link.outstanding == 0
    finally:
        remote.close()
        stand_in.close()


def test_pipelined_and_single_calls_from_many_threads_all_settle():
    stand_in = StandIn(echo)
    remote = RemoteServer(*stand_in.address, timeout=10.0, heartbeat=0, reconnect=False)
    wrong: List[Any] = []

    def pipeliner(n: int) -> None:
        for i in range(30):
            tags = [f"p{n}-{i}-{k}" for k in range(5)]
            replies = remote.request_pipeline([("echo", {"tag": t}) for t in tags])
            if [r.get("tag") for r in replies] != tags:
                wrong.append(tags)

    def single(n: int) -> None:
        for i in range(100):
            if remote.request("echo", tag=f"s{n}-{i}").get("tag") != f"s{n}-{i}":
                wrong.append((n, i))

    try:
        threads = ([threading.Thread(target=pipeliner, args=(n,)) for n in range(3)]
                   + [threading.Thread(target=single, args=(n,)) for n in range(3)])
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert wrong == []
        assert len(stand_in.received) == 3 * 30 * 5 + 3 * 100
    finally:
        remote.close()
        stand_in.close()


def _switches(thread: threading.Thread) -> int:
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches line")


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="the paused wire is epoll's")
def test_a_busy_caller_does_not_wake_the_background_reader_once_per_call():
    # the reader wakes every `timeout` s while idle; when that happened during a
    # call it parked, and each hand-over after it woke it again, while the next
    # call took the reading back at once: a thread wake-up for every call
    stand_in = StandIn(echo)
    others = set(threading.enumerate())
    remote = RemoteServer(*stand_in.address, timeout=0.2, heartbeat=0, reconnect=False)
    try:
        remote.request("echo")
        reader, = [thread for thread in set(threading.enumerate()) - others
                   if thread.name == "remoteio-reader"]
        before = _switches(reader)
        calls, deadline = 0, time.monotonic() + 1.5
        while calls < 50_000 and time.monotonic() < deadline:  # past several of its timeouts
            remote.request("echo")
            calls += 1
        woken = _switches(reader) - before
        assert calls >= 200
        # a few wake-ups per timeout (about 8 of them), none per call
        assert woken <= 40 + calls // 100, (woken, calls)
    finally:
        remote.close()
        stand_in.close()


def test_a_leader_that_times_out_hands_over_so_that_others_get_their_replies():
    # "never" is not answered; "late" is answered only after never's caller gave up
    def answer(message: Frame) -> Optional[tuple]:
        return None if message["op"] == "never" else (0.8, {"ok": True, "tag": "late"})

    stand_in = StandIn(answer)
    remote = RemoteServer(*stand_in.address, timeout=5.0, heartbeat=0, reconnect=False)
    outcome: Dict[str, Any] = {}

    def leader() -> None:
        started = time.monotonic()
        try:
            remote.link.request("never", {}, 0.3)
        except CallTimeout:
            outcome["leader"] = time.monotonic() - started

    def follower() -> None:
        started = time.monotonic()
        outcome["follower"] = remote.request("late").get("tag")
        outcome["follower_s"] = time.monotonic() - started

    try:
        first = threading.Thread(target=leader)
        first.start()
        # the leader's request is at the server: its caller reads the socket now
        assert wait_until(lambda: len(stand_in.received) == 1)
        second = threading.Thread(target=follower)
        second.start()
        first.join(10)
        second.join(10)
        assert 0.25 <= outcome["leader"] < 2.0
        assert outcome["follower"] == "late"
        assert outcome["follower_s"] < 3.0  # not its own 5 s timeout: someone read for it
        # and the link goes on
        assert remote.request("again").get("tag") == "late"
    finally:
        remote.close()
        stand_in.close()


def test_a_follower_that_times_out_leaves_the_leader_reading():
    def answer(message: Frame) -> Optional[tuple]:
        if message["op"] == "never":
            return None
        return 1.0, {"ok": True, "tag": message.get("tag")}

    stand_in = StandIn(answer)
    remote = RemoteServer(*stand_in.address, timeout=5.0, heartbeat=0, reconnect=False)
    outcome: Dict[str, Any] = {}

    def leader() -> None:
        outcome["leader"] = remote.request("slow", tag="mine").get("tag")

    try:
        first = threading.Thread(target=leader)
        first.start()
        assert wait_until(lambda: len(stand_in.received) == 1)
        with pytest.raises(CallTimeout):
            remote.link.request("never", {}, 0.2)
        first.join(10)
        assert outcome["leader"] == "mine"
    finally:
        remote.close()
        stand_in.close()


# ---- real servers: events, callbacks --------------------------------------------

def test_events_arrive_while_no_call_is_in_flight(server):
    with RemoteServer(*server.address, timeout=5.0) as remote:
        button = remote.pin(11).as_input(pull="down")
        seen: List[Any] = []
        threads: List[str] = []

        def changed(event: Any) -> None:
            seen.append(event.value)
            threads.append(threading.current_thread().name)

        button.when_changed = changed
        for n in range(20):
            server.sim.drive(11, (n + 1) % 2)
        assert wait_until(lambda: len(seen) == 20)
        assert seen == [(n + 1) % 2 for n in range(20)]
        assert set(threads) == {"remoteio-callbacks"}


def test_events_arrive_while_calls_are_in_flight_from_other_threads(server):
    with RemoteServer(*server.address, timeout=5.0) as remote:
        button = remote.pin(11).as_input(pull="down")
        led = remote.pin(7)
        seen: List[Any] = []
        threads: List[str] = []

        def changed(event: Any) -> None:
            seen.append(event.value)
            threads.append(threading.current_thread().name)

        button.when_changed = changed
        stop = threading.Event()
        calls = [0]

        def busy() -> None:
            while not stop.is_set():
                led.on()
                led.off()
                calls[0] += 2

        workers = [threading.Thread(target=busy) for _ in range(2)]
        for worker in workers:
            worker.start()
        try:
            assert wait_until(lambda: calls[0] > 20)
            for n in range(40):
                server.sim.drive(11, (n + 1) % 2)
            assert wait_until(lambda: len(seen) == 40)
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
        assert seen == [(n + 1) % 2 for n in range(40)]
        assert set(threads) == {"remoteio-callbacks"}  # never on a caller's thread
        assert calls[0] > 20


def test_a_callback_that_makes_a_call_does_not_deadlock(server):
    with RemoteServer(*server.address, timeout=5.0) as remote:
        button = remote.pin(11).as_input(pull="down")
        led = remote.pin(7)
        answers: List[Any] = []

        def changed(event: Any) -> None:
            led.on() if event.value else led.off()
            answers.append(led.read())

        button.when_changed = changed
        server.sim.drive(11, 1)
        assert wait_until(lambda: answers == [1])
        server.sim.drive(11, 0)
        assert wait_until(lambda: answers == [1, 0])
        assert remote.ping() < 1.0


def test_replies_and_events_over_tls_with_callers_reading(tmp_path):
    pytest.importorskip("cryptography")
    from remoteio.tls import generate_self_signed
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    fingerprint = generate_self_signed(cert, key, ["127.0.0.1"])
    with Server(host="127.0.0.1", port=0, backend="sim", tls_cert=cert, tls_key=key,
                token="a token for this test") as server:
        with RemoteServer(*server.address, token="a token for this test",
                          fingerprint=fingerprint, timeout=5.0) as remote:
            button = remote.pin(11).as_input(pull="down")
            seen: List[Any] = []
            button.when_changed = lambda event: seen.append(event.value)
            wrong: List[Any] = []

            def caller(n: int) -> None:
                pin = remote.pin((7, 13, 15)[n])
                for i in range(60):
                    level = (i + n) % 2
                    pin.on() if level else pin.off()
                    if pin.read() != level:
                        wrong.append((n, i))

            threads = [threading.Thread(target=caller, args=(n,)) for n in range(3)]
            for thread in threads:
                thread.start()
            for n in range(20):
                server.sim.drive(11, (n + 1) % 2)
            for thread in threads:
                thread.join(60)
            assert not any(thread.is_alive() for thread in threads)
            assert wrong == []
            assert wait_until(lambda: len(seen) == 20)
            # many replies in one read: TLS records wait above the socket
            replies = remote.request_pipeline([("ping", {})] * 200)
            assert len(replies) == 200
            # and an event right after, with no call in flight, still comes
            server.sim.drive(11, 1)
            assert wait_until(lambda: len(seen) == 21)
