"""The client's liveness thread (client/liveness.py) against a stand-in client: no sockets."""
from __future__ import annotations

import threading
import time

from remoteio.client.liveness import Keeper
from remoteio.errors import ConnectFailed, ConnectionLost
from remoteio.testing import wait_until


class _Call:
    def __init__(self, link):
        self.link = link

    def result(self, timeout):
        if not self.link.answers:
            raise ConnectionLost("no answer")
        self.link.last_received = time.monotonic()  # the pong
        return {}


class _Link:
    def __init__(self, answers=True):
        self.lost = None
        self.last_sent = self.last_received = time.monotonic()
        self.answers = answers
        self.pings = 0

    def call(self, op, fields):
        self.pings += 1
        self.last_sent = time.monotonic()
        return _Call(self)

    def abort(self, exc):
        self.lost = exc


class _Client:
    host, port, timeout = "127.0.0.1", 1, 0.5

    def __init__(self, link, fail_reconnects=0):
        self.closed = False
        self.link = link
        self.fail_reconnects = fail_reconnects
        self.reconnects = 0
        self.reconnected = threading.Event()

    def reconnect(self):
        self.reconnects += 1
        if self.reconnects <= self.fail_reconnects:
            raise ConnectFailed("not yet")
        self.link = _Link()
        self.reconnected.set()


def run(client, heartbeat=0.05, reconnect=True):
    keeper = Keeper(client, heartbeat, reconnect)
    keeper.start()
    return keeper


def stop(client, keeper):
    client.closed = True
    keeper.wake.set()
    keeper.join(5)
    assert not keeper.is_alive()


def test_a_quiet_link_is_pinged_once_per_heartbeat():
    client = _Client(_Link())
    keeper = run(client)
    try:
        assert wait_until(lambda: client.link.pings >= 3, timeout=5)
    finally:
        stop(client, keeper)


def test_an_unanswered_ping_loses_the_link_and_a_reconnect_follows():
    client = _Client(_Link(answers=False))
    keeper = run(client)
    try:
        assert client.reconnected.wait(5)
        assert keeper.attempts == 0
    finally:
        stop(client, keeper)


def test_failed_reconnects_are_counted_and_retried_with_backoff():
    link = _Link()
    link.lost = ConnectionLost("gone")
    client = _Client(link, fail_reconnects=2)
    keeper = run(client, heartbeat=0)
    try:
        assert client.reconnected.wait(5)  # 0.1 s, then 0.2 s of backoff
        assert client.reconnects == 3 and keeper.attempts == 0
    finally:
        stop(client, keeper)


def test_without_reconnect_a_lost_link_ends_the_thread():
    link = _Link()
    link.lost = ConnectionLost("gone")
    client = _Client(link)
    keeper = run(client, reconnect=False)
    keeper.join(5)
    assert not keeper.is_alive() and client.reconnects == 0
