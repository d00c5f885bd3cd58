"""The asyncio link (aio/link.py): how requests made in one turn of the loop go out."""
from __future__ import annotations

import asyncio
import json
from typing import List

from remoteio.aio.link import WRITE_BATCH, AsyncLink


class _Transport:
    """What an asyncio transport is to the link: writes recorded, never full."""

    def __init__(self) -> None:
        self.writes: List[bytes] = []

    def set_write_buffer_limits(self, high: int) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        pass


def _link() -> AsyncLink:
    link = AsyncLink(on_event=lambda message: None, on_lost=lambda reason: None)
    link.connection_made(_Transport())
    return link


def _ids(writes: List[bytes]) -> List[int]:
    return [json.loads(line)["id"] for data in writes for line in data.splitlines()]


def _answer(link: AsyncLink, ids: List[int]) -> None:
    replies = b"".join(json.dumps({"id": i, "ok": True}).encode() + b"\n" for i in ids)
    link._view[:len(replies)] = replies  # as the event loop fills get_buffer()'s view
    link.buffer_updated(len(replies))


def test_the_calls_of_one_turn_go_out_together_in_the_order_they_were_made():
    async def scenario():
        link = _link()
        calls = [asyncio.ensure_future(link.call("on" if n % 2 else "off", {"pin": 7}, 5.0))
                 for n in range(WRITE_BATCH * 2 + 3)]
        await asyncio.sleep(0)  # the calls run, each queues its request
        await asyncio.sleep(0)  # the turn's end: the rest is written
        writes = link.transport.writes
        assert len(writes) == 3  # two full batches as they filled, then the rest
        ids = _ids(writes)
        assert ids == sorted(ids) and len(ids) == len(calls)
        _answer(link, ids)
        assert await asyncio.gather(*calls) == [{}] * len(calls)
    asyncio.run(scenario())


def test_a_lone_call_is_written_within_its_turn_and_its_reply_returns():
    async def scenario():
        link = _link()
        call = asyncio.ensure_future(link.call("on", {"pin": 7}, 5.0))
        for _ in range(2):
            await asyncio.sleep(0)
        assert len(link.transport.writes) == 1
        _answer(link, _ids(link.transport.writes))
        assert await asyncio.wait_for(call, 5.0) == {}
    asyncio.run(scenario())


def test_a_pipeline_after_calls_of_the_same_turn_keeps_its_place():
    async def scenario():
        link = _link()
        first = asyncio.ensure_future(link.call("on", {"pin": 7}, 5.0))
        await asyncio.sleep(0)
        futures = link.pipeline([("off", {"pin": 7}), ("on", {"pin": 7})])
        await asyncio.sleep(0)
        ids = _ids(link.transport.writes)
        assert len(ids) == 3 and ids == sorted(ids)
        _answer(link, ids)
        await asyncio.wait_for(first, 5.0)
        assert [f.result()["ok"] for f in futures] == [True, True]
    asyncio.run(scenario())


def test_requests_waiting_for_the_turns_end_go_out_before_a_close():
    async def scenario():
        link = _link()
        link.pipeline([("on", {"pin": 7})])
        closing = asyncio.ensure_future(link.close(5.0))
        await asyncio.sleep(0)
        assert len(_ids(link.transport.writes)) == 1
        _answer(link, _ids(link.transport.writes))
        await asyncio.wait_for(closing, 5.0)
    asyncio.run(scenario())
