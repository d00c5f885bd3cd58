"""Concurrency: 100 clients x 1,000 commands against a server in its own
process; nothing lost, per-pin order kept, connect latency recorded.

Clients are raw protocol connections (one thread each) that pipeline their
requests in batches of 50 frames per write. The server runs as a subprocess
(``server_process`` in conftest.py) so it does not share this process's GIL
with the 100 client threads; the simulated board is observed through the
protocol's ``sim`` operation.
"""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest

from remoteio.pins import BOARD_TO_BCM, ID_EEPROM_PINS

from remoteio.testing import RawClient, wait_until

CLIENTS = 100
COMMANDS = 1000
BATCH = 50
WRITER_PINS = [b for b in sorted(BOARD_TO_BCM) if b not in ID_EEPROM_PINS]   # 26 pins
LEVELS = [k / 1001 for k in range(1, COMMANDS + 1)]   # all in (0, 1): every one a PWM level
DEADLINE = 75.0          # seconds for the whole 100 x 1,000 run
SOCKET_TIMEOUT = 30.0


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered))) - 1))]


class Client(RawClient):
    """A raw connection that has said hello (used by one thread at a time)."""

    def __init__(self, address: Tuple[str, int]):
        started = time.perf_counter()
        super().__init__(address, timeout=SOCKET_TIMEOUT)
        try:
            self.send(b'{"id":"hello","op":"hello","client":"load"}\n')
            reply = self.recv()
            assert reply.get("id") == "hello" and reply.get("ok") is True, reply
        except BaseException:
            self.sock.close()
            raise
        self.connect_s = time.perf_counter() - started


def writer_frames(pin: int) -> List[bytes]:
    return [b'{"id":%d,"op":"value","pin":%d,"level":%s}\n' % (k, pin, repr(level).encode())
            for k, level in enumerate(LEVELS, 1)]


def reader_frames(rng: random.Random) -> List[Tuple[int, str, Any, bytes]]:
    """1,000 queries: read/state/ping/read_many, now and then info or sim levels."""
    out = []
    for n in range(1, COMMANDS + 1):
        roll = rng.random()
        pin = rng.choice(sorted(BOARD_TO_BCM))
        if roll < 0.40:
            msg: Dict[str, Any] = {"id": n, "op": "read", "pin": pin}
        elif roll < 0.65:
            msg = {"id": n, "op": "state", "pin": f"GPIO{BOARD_TO_BCM[pin]}"}
        elif roll < 0.85:
            msg = {"id": n, "op": "ping", "data": f"c{n}"}
        elif roll < 0.995:
            msg = {"id": n, "op": "read_many", "pins": rng.sample(WRITER_PINS, rng.randint(1, 8))}
        elif roll < 0.998:
            msg = {"id": n, "op": "info"}
        else:
            msg = {"id": n, "op": "sim", "action": "levels"}
        out.append((n, msg["op"], msg.get("pin", msg.get("pins")), (json.dumps(msg) + "\n").encode()))
    return out


def _level_ok(pin: int, value: Any) -> bool:
    """A writer pin reads its pull before its first write (1 on the pulled-up GPIO2/3,
    board 3 and 5; else 0), then one of the levels sent."""
    return value in LEVELS_SET or value == (1 if pin in (3, 5) else 0)


LEVELS_SET = set(LEVELS)


def run_writer(address, pin: int, start: threading.Barrier, result: Dict[str, Any]) -> None:
    start.wait(SOCKET_TIMEOUT)
    client = Client(address)
    result["connect_s"] = client.connect_s
    result["client"] = client   # kept open (the pin held) until the histories are checked
    frames = writer_frames(pin)
    order: List[int] = []
    problems: List[str] = []
    for first in range(0, COMMANDS, BATCH):
        client.sock.sendall(b"".join(frames[first:first + BATCH]))
        for _ in range(BATCH):
            reply = client.recv()
            order.append(reply.get("id"))
            if reply != {"id": reply.get("id"), "ok": True}:
                problems.append(f"pin {pin}: {reply}")
    result["order"] = order
    result["problems"] = problems


def run_reader(address, seed: int, start: threading.Barrier, result: Dict[str, Any]) -> None:
    start.wait(SOCKET_TIMEOUT)
    client = Client(address)
    result["connect_s"] = client.connect_s
    plan = reader_frames(random.Random(seed))
    sent = {n: (op, target) for n, op, target, _ in plan}
    replies: Dict[Any, Dict[str, Any]] = {}
    problems: List[str] = []
    try:
        for first in range(0, COMMANDS, BATCH):
            client.sock.sendall(b"".join(frame for _, _, _, frame in plan[first:first + BATCH]))
            for _ in range(BATCH):
                reply = client.recv()
                if reply.get("id") in replies:
                    problems.append(f"a second reply to {reply.get('id')}: {reply}")
                replies[reply.get("id")] = reply
    finally:
        client.close()
    for n, (op, target) in sent.items():
        reply = replies.get(n)
        if reply is None or reply.get("ok") is not True:
            problems.append(f"{op} {target}: {reply}")
            continue
        if op == "read" and target in WRITER_PINS and not _level_ok(target, reply.get("value")):
            problems.append(f"read {target} = {reply.get('value')}, never written")
        elif op == "read_many" and not all(_level_ok(int(p), v) for p, v in reply.get("values", {}).items()):
            problems.append(f"read_many {target}: {reply}")
        elif op == "read_many" and sorted(map(int, reply["values"])) != sorted(target):
            problems.append(f"read_many {target}: {reply}")
        elif op == "ping" and reply.get("data") != f"c{n}":
            problems.append(f"ping {n}: {reply}")
        elif op == "state" and reply.get("mode") not in ("released", "unset", "output"):
            problems.append(f"state: {reply}")
    extra = set(replies) - set(sent)
    if extra:
        problems.append(f"replies to ids never sent: {sorted(extra, key=str)[:5]}")
    result["problems"] = problems


def describe_difference(seen: List[float], sent: List[float]) -> str:
    """Where a pin's history departs from the levels sent (for the failure message)."""
    index = {level: k for k, level in enumerate(sent, 1)}
    named = [f"#{index[v]}" if v in index else repr(v) for v in seen]
    missing = [k for k, level in enumerate(sent, 1) if level not in set(seen)]
    return f"{len(seen)} entries, first {named[:8]}, last {named[-5:]}, missing {missing[:20]}"


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_100_clients_1000_commands_each(server_process, capsys):
    server = server_process()
    start = threading.Barrier(CLIENTS)
    results: List[Dict[str, Any]] = [{} for _ in range(CLIENTS)]
    threads = []
    for n in range(CLIENTS):
        if n < len(WRITER_PINS):
            target, args = run_writer, (server.address, WRITER_PINS[n], start, results[n])
        else:
            target, args = run_reader, (server.address, 1000 + n, start, results[n])

        def guarded(target=target, args=args, result=results[n]) -> None:
            try:
                target(*args)
            except BaseException as exc:  # noqa: B902 - reported below
                result["error"] = repr(exc)

        threads.append(threading.Thread(target=guarded, name=f"load-{n}", daemon=True))
    began = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.1, began + DEADLINE - time.monotonic()))
        elapsed = time.monotonic() - began
        summary = _check_load(server, threads, results, elapsed)
    finally:
        for result in results:
            if "client" in result:
                result["client"].close()

    # the writers are gone: their pins are soft-closed (off, released)
    check = RawClient(server.address, timeout=10)
    try:
        check.hello()
        assert wait_until(lambda: not any(
            check.call({"id": "lv", "op": "sim", "action": "levels"})["values"][str(pin)]
            for pin in WRITER_PINS), timeout=10, interval=0.05), "writer pins not off after disconnect"
    finally:
        check.close()
    assert server.proc.poll() is None, server.output()
    with capsys.disabled():
        print(f"\n[load] {summary}")


def _check_load(server, threads, results, elapsed) -> str:
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"clients still running after {elapsed:.1f} s: {stuck[:10]}"
    errors = [(n, r["error"]) for n, r in enumerate(results) if "error" in r]
    assert not errors, errors[:10]
    problems = [p for r in results for p in r["problems"]]
    assert not problems, f"{len(problems)} problems: {problems[:10]}"

    # every writer's replies came back in the order sent (one pin, one worker, one queue)
    for n, pin in enumerate(WRITER_PINS):
        assert results[n]["order"] == list(range(1, COMMANDS + 1)), f"pin {pin}: replies out of order"

    # every level reached its pin, in the order sent, none missing (sim history over the protocol)
    check = RawClient(server.address, timeout=10)
    try:
        check.hello()
        for n, pin in enumerate(WRITER_PINS):
            history = check.call({"id": n, "op": "sim", "action": "history", "pin": pin})["history"]
            assert len(history) <= 4096
            seen = [value for _, value in history]
            # the pin is made an output (off), then takes every level in order
            assert seen == [0.0] + LEVELS, \
                f"pin {pin}: levels lost or out of order: {describe_difference(seen, LEVELS)}"
            times = [t for t, _ in history]
            assert times == sorted(times)
            read = check.call({"id": f"r{n}", "op": "read", "pin": pin})
            assert read["value"] == LEVELS[-1], read
    finally:
        check.close()

    latencies = [r["connect_s"] for r in results]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    total = CLIENTS * COMMANDS
    assert p99 < 5.0, f"connect + hello p99 {p99:.2f} s"
    return (f"{CLIENTS} clients x {COMMANDS} commands = {total} in {elapsed:.1f} s "
            f"({total / elapsed:.0f}/s); connect + hello under load: p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")


def test_100_clients_connecting_at_once_all_get_their_hello(server_process, capsys):
    server = server_process()
    start = threading.Barrier(CLIENTS)
    latencies: List[Optional[float]] = [None] * CLIENTS
    clients: List[Optional[Client]] = [None] * CLIENTS
    errors: List[str] = []

    def connect(n: int) -> None:
        try:
            start.wait(SOCKET_TIMEOUT)
            clients[n] = Client(server.address)
            latencies[n] = clients[n].connect_s
        except BaseException as exc:  # noqa: B902 - reported below
            errors.append(f"client {n}: {exc!r}")

    threads = [threading.Thread(target=connect, args=(n,), daemon=True) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    try:
        assert not errors, errors[:10]
        assert all(latency is not None for latency in latencies)
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        with capsys.disabled():
            print(f"\n[load] {CLIENTS} simultaneous connects, connect + hello: p50 {p50 * 1000:.1f} ms, "
                  f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
        assert max(latencies) < 5.0
        # every one of them is a working session
        for n, client in enumerate(clients):
            client.sock.sendall(b'{"id":%d,"op":"ping"}\n' % n)
        for n, client in enumerate(clients):
            assert client.recv()["id"] == n
        probe = RawClient(server.address)
        probe.hello()
        assert probe.call({"id": 1, "op": "info"})["connections"] == CLIENTS + 1
        probe.close()
    finally:
        for client in clients:
            if client is not None:
                client.close()


def test_the_257th_connection_gets_server_busy_and_is_closed(server_process):
    server = server_process()
    held: List[Client] = []
    try:
        for _ in range(256):
            held.append(Client(server.address))   # hello answered: the server has accepted it
        extra = socket.create_connection(server.address, timeout=10)
        try:
            data = b""
            while True:
                chunk = extra.recv(4096)
                if not chunk:
                    break   # closed by the server
                data += chunk
        finally:
            extra.close()
        lines = data.split(b"\n")
        assert len(lines) == 2 and lines[1] == b"", data
        refusal = json.loads(lines[0])
        assert refusal["id"] is None and refusal["ok"] is False, refusal
        assert refusal["error"]["code"] == "server_busy" and refusal["error"]["message"], refusal
        # the 256 are untouched
        for n, client in enumerate(held):
            client.sock.sendall(b'{"id":%d,"op":"ping"}\n' % n)
        for n, client in enumerate(held):
            reply = client.recv()
            assert reply["id"] == n and reply["ok"] is True and isinstance(reply["time_ns"], int), reply
        # a freed place can be taken again
        held.pop().close()

        def connect() -> Optional[Client]:
            try:
                return Client(server.address)
            except (AssertionError, ConnectionError, OSError, ValueError):
                return None   # refused: the server has not noticed the close yet

        again = wait_until(connect, timeout=10, interval=0.05)
        assert again is not None, "no connection accepted after one of 256 closed"
        held.append(again)
        again.sock.sendall(b'{"id":1,"op":"read","pin":7}\n')
        assert again.recv() == {"id": 1, "ok": True, "value": 0}
    finally:
        for client in held:
            client.close()
    assert server.proc.poll() is None
