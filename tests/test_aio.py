"""What only the asyncio client has: cancellation, many calls at once, events(), coroutine callbacks."""
from __future__ import annotations

import asyncio
import time

import pytest

from remoteio.aio import AsyncRemoteServer
from remoteio.errors import CallTimeout


def _run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def test_cancelling_an_awaited_call_leaves_the_connection_usable(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            led = await remote.pin(7)
            task = asyncio.create_task(led.on(time_ms=400, wait=True))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # the task already sent still runs on the Pi; the connection is in step
            assert await led.read() == 1
            await led.sync()
            assert await led.read() == 0
            assert [await remote.ping() < 5 for _ in range(3)] == [True] * 3
            assert remote._link.conn.outstanding == 0
    _run(scenario())


def test_a_thousand_concurrent_requests_on_one_connection_all_come_back(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address, timeout=30) as remote:
            await remote.pin(7)
            replies = await asyncio.gather(*[remote.request("read", pin=7) for _ in range(1000)])
            assert len(replies) == 1000 and all(r["value"] == 0 for r in replies)
    _run(scenario())


def test_events_iterate_and_coroutine_callbacks_are_awaited_in_order(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            button = await remote.pin(11)
            await button.as_input(pull="down")
            seen = []

            async def callback(event):
                await asyncio.sleep(0.01)  # a slow one: the next still comes after it
                seen.append(event.edge)
            button.when_changed = callback

            async def first_two():
                got = []
                async for event in button.events():
                    got.append(event.edge)
                    if len(got) == 2:
                        return got
            reader = asyncio.create_task(first_two())
            await button.watch()
            await asyncio.sleep(0)  # the reader subscribes
            await remote.sim.drive(11, 1)
            assert await button.wait_for_value(1, timeout=5)
            await remote.sim.drive(11, 0)
            assert await asyncio.wait_for(reader, 5) == ["rising", "falling"]
            for _ in range(500):
                if len(seen) == 2:
                    break
                await asyncio.sleep(0.01)
            assert seen == ["rising", "falling"]
    _run(scenario())


def test_the_holder_hears_that_its_lease_ran_out(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            pump = await remote.pin(7)
            heard = asyncio.get_running_loop().create_future()
            pump.when_lease_expired = heard.set_result
            await pump.on(lease_ms=100)
            assert await asyncio.wait_for(heard, 5) == 0.0
            assert pump.leases_expired == 1 and server.sim.value(7) == 0.0
    _run(scenario())


def test_events_dropped_from_a_full_queue_count_in_the_next_events_missed(server, monkeypatch):
    from remoteio.aio import pin as aio_pin
    monkeypatch.setattr(aio_pin, "EVENT_QUEUE", 8)

    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            button = await remote.pin(11)
            await button.as_input(pull="down")
            events = button.events().__aiter__()
            first = asyncio.ensure_future(events.__anext__())
            for _ in range(500):          # the reader is subscribed once the watch stands
                if button.watching:
                    break
                await asyncio.sleep(0.01)
            server.sim.drive(11, 1)
            assert (await asyncio.wait_for(first, 5)).seq == 1
            for _ in range(20):           # 40 edges, nobody reading: 32 dropped from the head
                server.sim.drive(11, 0)
                server.sim.drive(11, 1)
            for _ in range(500):
                if button.missed_events >= 32:
                    break
                await asyncio.sleep(0.01)
            got = [await asyncio.wait_for(events.__anext__(), 5) for _ in range(8)]
            assert [e.seq for e in got] == list(range(34, 42))
            assert got[0].missed == 32 and all(e.missed == 0 for e in got[1:])
            assert button.missed_events == 32
    _run(scenario())


def test_a_call_timeout_is_a_call_timeout_and_the_call_is_forgotten(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address, timeout=0.2) as remote:
            led = await remote.pin(7)
            await led.on(time_ms=600)
            await led.off()  # wait mode: queued behind the on
            start = time.monotonic()
            with pytest.raises(CallTimeout):
                await led.sync(timeout=0.1)
            assert time.monotonic() - start < 2
            assert await led.read() in (0, 1)
    _run(scenario())


def test_an_event_missed_while_the_connection_was_down_shows_in_missed_after_the_reconnect():
    from remoteio.server import Server
    from remoteio.testing import free_port
    port = free_port()
    servers = [Server(host="127.0.0.1", port=port, backend="sim").start()]

    async def scenario():
        async with AsyncRemoteServer("127.0.0.1", port, heartbeat=0.5, timeout=3) as remote:
            button = await remote.pin(13)
            await button.as_input(pull="down")
            await button.watch()
            servers[0].sim.drive(13, 1)
            assert await button.wait_for_value(1, timeout=5)
            servers[0].stop()
            for _ in range(500):
                if not remote.connected:
                    break
                await asyncio.sleep(0.01)
            servers.append(Server(host="127.0.0.1", port=port, backend="sim").start())
            assert await remote.wait_connected(15)
            assert button.missed_events == 1  # the level fell while nobody watched
    try:
        _run(scenario())
    finally:
        for server in servers:
            server.stop()


def test_a_reconnect_whose_watch_goes_unanswered_is_dropped_and_retried_until_the_watch_stands():
    """The sync client's rule (tests/test_client_liveness.py) in the asyncio
    client: a reconnect's setup that gets no answer is not called connected."""
    from fakeservers import ScriptedServer

    def script(message):
        if message["op"] == "watch":
            if fake.connection == 2:
                return []  # the reconnect's watch: never answered
            reply = [(0.0, {"id": message["id"], "ok": True, "pin": 7, "seq": 0, "value": 0})]
            if fake.connection == 3:
                reply.append((0.05, {"event": "change", "pin": 7, "value": 1, "edge": "rising",
                                     "seq": 1, "ts": 123}))
            return reply
        return [(0.0, {"id": message["id"], "ok": True, "pin": 7, "value": 0})]
    fake = ScriptedServer(script, connections=3)

    async def scenario():
        async with AsyncRemoteServer(*fake.address, timeout=0.5, heartbeat=0) as remote:
            ups = []
            remote.when_connection_changed = ups.append
            button = await remote.pin(7, claim=False)
            await button.watch()
            fake.drop()
            assert await button.wait_for_value(1, timeout=10), f"connection {fake.connection}, {ups}"
            assert fake.connection == 3
            assert [m["op"] for m in fake.requests if m["op"] == "watch"] == ["watch"] * 3
            for _ in range(500):
                if ups == [False, True]:
                    break
                await asyncio.sleep(0.01)
            assert ups == [False, True] and remote.connected
    try:
        _run(scenario())
    finally:
        fake.close()


def test_an_event_read_together_with_its_watchs_reply_is_numbered_from_that_reply():
    """The sync client's rule (tests/test_client_liveness.py): each watch's
    reply, the first and a reconnect's, is taken as it is read, before the
    event that came in the same read; a callback's watch and an awaited
    watch() at once send one request."""
    from fakeservers import ScriptedServer

    def change(seq, value):
        return {"event": "change", "pin": 7, "value": value,
                "edge": "rising" if value else "falling", "seq": seq, "ts": seq}

    def script(message):
        if message["op"] != "watch":
            return [(0.0, {"id": message["id"], "ok": True, "pin": 7, "value": 0})]
        if fake.connection == 1:
            return [(0.0, {"id": message["id"], "ok": True, "pin": 7, "seq": 3, "value": 1}),
                    (0.0, change(4, 0)), (0.05, change(5, 1))]
        return [(0.0, {"id": message["id"], "ok": True, "pin": 7, "seq": 0, "value": 0}),
                (0.0, change(1, 1))]
    fake = ScriptedServer(script, connections=2)

    async def scenario():
        async with AsyncRemoteServer(*fake.address, timeout=2.0, heartbeat=0) as remote:
            seen = []
            button = await remote.pin(7, claim=False)
            button.when_changed = lambda event: seen.append((event.seq, event.value, event.missed))
            await button.watch()
            for _ in range(1000):
                if len(seen) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert seen == [(4, 0, 0), (5, 1, 0)] and button.missed_events == 0
            # the callback's watch and the awaited one made one request
            assert [m["op"] for m in fake.requests] == ["watch"]
            fake.drop()
            for _ in range(1000):
                if len(seen) >= 3:
                    break
                await asyncio.sleep(0.01)
            assert seen[2:] == [(1, 1, 1)] and button.missed_events == 1, seen
    try:
        _run(scenario())
    finally:
        fake.close()
