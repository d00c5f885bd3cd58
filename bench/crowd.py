"""100 clients connecting at once.

One selector loop plays all the clients (non-blocking sockets), so the
clients cost little CPU and all connect within a millisecond or two: 100
``connect()`` calls in a row, then each client, as soon as it is connected,
sends ``hello``, and once greeted sends its commands one after the other,
checking every reply (id and ``ok``). Clients 0-25 each hold one pin and
switch it on and off; the others ask ``state`` of those pins (through the
workers too). Connect latency = from the client's ``connect()`` to the
``hello`` reply. Lost = commands that did not get their ``ok`` reply.
"""
from __future__ import annotations

import errno
import json
import selectors
import socket
import time
from typing import Any, Dict, List, Optional

from .floors import Greeter
from .harness import PINS_26, RawClient, ServerProcess, frame, hello, percentiles, row
from .plan import Plan

ROUND_SECONDS = 20.0


class _Client:
    def __init__(self, index: int, commands: int):
        self.index = index
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pin = PINS_26[index % len(PINS_26)]
        owner = index < len(PINS_26)
        self.frames = [frame(0, "hello", client=f"crowd-{index}")] + [
            frame(n + 1, ("off" if n % 2 else "on") if owner else "state", pin=pin)
            for n in range(commands)]
        self.next = 0  # index of the frame whose reply we wait for
        self.buffer = b""
        self.start = self.connected = self.greeted = 0
        self.ok = self.refused = 0
        self.error: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.error is not None or self.next >= len(self.frames)

    def connect(self, address) -> None:
        self.start = time.perf_counter_ns()
        code = self.sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            self.error = f"connect: {errno.errorcode.get(code, code)}"

    def writable(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.error = f"connect: {errno.errorcode.get(code, code)}"
            return
        self.connected = time.perf_counter_ns()
        self.sock.send(self.frames[0])

    def readable(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            self.error = "closed by the server"
            return
        self.buffer += data
        while b"\n" in self.buffer and not self.done:
            line, self.buffer = self.buffer.split(b"\n", 1)
            reply = json.loads(line)
            if "event" in reply:
                continue
            if reply.get("id") != self.next:
                self.error = f"reply to {reply.get('id')} while waiting for {self.next}"
                return
            if self.next == 0:
                self.greeted = time.perf_counter_ns()
            elif reply.get("ok"):
                self.ok += 1
            else:
                self.refused += 1
            self.next += 1
            if self.next < len(self.frames):
                self.sock.send(self.frames[self.next])


def _round(address, clients: int, commands: int) -> List[_Client]:
    crowd = [_Client(i, commands) for i in range(clients)]
    selector = selectors.DefaultSelector()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        for client in crowd:  # all at once
            client.connect(address)
        for client in crowd:
            if client.error is None:
                selector.register(client.sock, selectors.EVENT_WRITE, client)
        deadline = time.monotonic() + ROUND_SECONDS
        waiting = sum(1 for c in crowd if not c.done)
        while waiting and time.monotonic() < deadline:
            for key, events in selector.select(0.5):
                client = key.data
                try:
                    if events & selectors.EVENT_WRITE:
                        client.writable()
                        if client.error is None:
                            selector.modify(client.sock, selectors.EVENT_READ, client)
                    else:
                        client.readable()
                except OSError as exc:
                    client.error = str(exc)
                if client.done:
                    selector.unregister(client.sock)
                    waiting -= 1
        for client in crowd:
            if not client.done:
                client.error = f"no reply within {ROUND_SECONDS:.0f} s"
    finally:
        selector.close()
        for client in crowd:
            client.sock.close()
    return crowd, (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def _wait_released(control: RawClient, seconds: float = 5.0) -> None:
    """Until the server has seen every crowd connection go (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = control.request("info")
        if info["connections"] <= 1 and not any(p.get("owner") for p in info["pins"]):
            return
        time.sleep(0.02)


def connect_storm(plan: Plan) -> List[Dict[str, Any]]:
    connect_ns, greet_ns, failures, per_round, client_cpu = [], [], [], [], []
    expected = ok = refused = 0
    floor_ns: List[int] = []
    greeter = Greeter()
    with ServerProcess() as server:
        control = hello(server.address)
        for _ in range(plan.crowd_rounds):
            # the floor's round first, the same clients against a bare Python server
            bare, _ = _round(greeter.address, plan.crowd_clients, plan.crowd_commands)
            floor_ns += [c.greeted - c.start for c in bare if c.greeted]
            crowd, cpu = _round(server.address, plan.crowd_clients, plan.crowd_commands)
            client_cpu.append(round(100 * cpu, 1))
            per_round.append(percentiles([c.greeted - c.start for c in crowd if c.greeted]))
            for client in crowd:
                expected += plan.crowd_commands
                ok += client.ok
                refused += client.refused
                if client.greeted:
                    connect_ns.append(client.connected - client.start)
                    greet_ns.append(client.greeted - client.start)
                if client.error:
                    failures.append(client.error)
            _wait_released(control)
        control.close()
    greeter.close()
    floor = percentiles(floor_ns)
    lost = expected - ok
    stats = percentiles(greet_ns)
    tcp = percentiles(connect_ns)
    clients = plan.crowd_rounds * plan.crowd_clients
    rounds = f"{plan.crowd_rounds} round{'s' if plan.crowd_rounds > 1 else ''}"
    if plan.crowd_rounds > 1:
        later = max(r["p99_us"] or 0 for r in per_round[1:])
        rounds += (f" (the first, which also forks the 26 pins' workers: p99 "
                   f"{per_round[0]['p99_us']:,.0f} µs; the others' worst p99 {later:,.0f} µs)")
    return [
        row("crowd.connect", f"{plan.crowd_clients} clients at once: connect + hello", stats=stats,
            floor=True, target="p99 ≤ 10 ms", met=len(greet_ns) == clients and stats["p99_us"] <= 10_000,
            notes=f"{rounds}; the clients' loop used {max(client_cpu)} % of a core at most; "
                  f"TCP connect alone p50 {tcp['p50_us']:,} / p99 {tcp['p99_us']:,} µs; "
                  f"floor (the same clients, one round before each, against a bare Python "
                  f"selector server answering each line): p50 {floor['p50_us']:,} / p99 "
                  f"{floor['p99_us']:,} µs"
                  + (f"; {clients - len(greet_ns)} never greeted" if clients > len(greet_ns) else ""),
            tcp_connect=tcp, crowd_floor=floor, rounds=plan.crowd_rounds, per_round=per_round,
            client_cpu_percent=client_cpu),
        row("crowd.lost", f"{plan.crowd_clients} clients at once: commands lost",
            figure=f"{lost} of {expected}", target="none lost", met=lost == 0,
            notes=f"{refused} refused" + (f"; first failure: {failures[0]}" if failures else ""),
            lost=lost, expected=expected, refused=refused, failures=failures[:10]),
    ]
