"""The asyncio client beside the sync one, in the same run, on the same server.

* acked write round trip (``on``/``off`` alternating, one pin), the sync
  client's ``RemotePin.on/off`` and the async client's ``await pin.on/off``
  taking turns, a chunk each, so both see the same machine;
* throughput: 1,000 writes at once on one connection, awaited together
  (``asyncio.gather``), against the sync client's pipelined writes
  (``request_pipeline`` of 1,000); every reply counted and checked ``ok``.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List

from remoteio import RemoteServer
from remoteio.aio import AsyncRemoteServer

from .harness import ServerProcess, no_gc, percentiles, row
from .plan import Plan

CONCURRENT = 1000
RATIO_TARGET = 1.2      # async p50 ≤ 1.2 × sync p50
THROUGHPUT_SHARE = 0.5  # async concurrent ≥ half the sync pipelined throughput


class _Loop:
    """The async client's loop, on a thread of its own (the sync client runs here)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(300)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _async_writes(pin: Any, count: int) -> List[int]:
    samples = []
    clock = time.monotonic_ns
    with no_gc():
        for n in range(count):
            start = clock()
            await (pin.off() if n & 1 else pin.on())
            samples.append(clock() - start)
    return samples


def _sync_writes(pin: Any, count: int) -> List[int]:
    samples = []
    clock = time.monotonic_ns
    with no_gc():
        for n in range(count):
            start = clock()
            pin.off() if n & 1 else pin.on()
            samples.append(clock() - start)
    return samples


async def _async_burst(server: AsyncRemoteServer, board: int) -> int:
    replies = await asyncio.gather(*[server.request("off" if n & 1 else "on", pin=board)
                                     for n in range(CONCURRENT)])
    return len(replies)  # request() raised for any refusal


def _sync_burst(server: RemoteServer, board: int) -> int:
    return len(server.request_pipeline(
        [("off" if n & 1 else "on", {"pin": board}) for n in range(CONCURRENT)], timeout=60))


def asyncio_client(plan: Plan) -> List[Dict[str, Any]]:
    rounds = max(1, min(10, plan.lib_latency // 200))
    chunk = plan.lib_latency // rounds + plan.lib_latency // rounds % 2
    bursts = max(2, plan.pipeline_commands // CONCURRENT // 4)
    server = ServerProcess()
    loop = _Loop()
    sync = RemoteServer(*server.address, heartbeat=0, reconnect=False, timeout=30)
    remote = AsyncRemoteServer(*server.address, heartbeat=0, reconnect=False, timeout=30)
    sync_samples: List[int] = []
    async_samples: List[int] = []
    timings = {"sync": 0.0, "async": 0.0}
    done = {"sync": 0, "async": 0}
    try:
        loop.run(remote.connect())
        sync_pin, async_pin = sync.pin(7), loop.run(remote.pin(11))
        _sync_writes(sync_pin, 100)
        loop.run(_async_writes(async_pin, 100))
        for _ in range(rounds):  # taking turns: the same machine for both
            sync_samples += _sync_writes(sync_pin, chunk)
            async_samples += loop.run(_async_writes(async_pin, chunk))
        for _ in range(bursts):
            started = time.perf_counter()
            done["sync"] += _sync_burst(sync, 7)
            timings["sync"] += time.perf_counter() - started
            started = time.perf_counter()
            done["async"] += loop.run(_async_burst(remote, 11))
            timings["async"] += time.perf_counter() - started
    finally:
        loop.run(remote.close())
        loop.stop()
        sync.close()
        server.stop()
    sync_stats, async_stats = percentiles(sync_samples), percentiles(async_samples)
    ratio = async_stats["p50_us"] / sync_stats["p50_us"] if sync_stats["p50_us"] else 0.0
    sync_rate = done["sync"] / timings["sync"] if timings["sync"] else 0.0
    async_rate = done["async"] / timings["async"] if timings["async"] else 0.0
    expected = bursts * CONCURRENT
    share = async_rate / sync_rate if sync_rate else 0.0
    return [
        row("asyncio.write.sync", "sync client beside the asyncio one: acked write",
            stats=sync_stats),
        row("asyncio.write.async", "asyncio client: acked write", stats=async_stats,
            target=f"≤ {RATIO_TARGET}× the sync client's p50", met=ratio <= RATIO_TARGET,
            notes=f"{ratio:.2f}× the sync client's p50", ratio=round(ratio, 3)),
        row("asyncio.concurrent",
            f"asyncio client: {CONCURRENT:,} concurrent awaited writes, one connection",
            figure=f"{async_rate:,.0f}/s vs sync pipelined {sync_rate:,.0f}/s ({share:.2f}×)",
            target=f"none lost, ≥ {THROUGHPUT_SHARE}× sync pipelined",
            met=done["async"] == expected and share >= THROUGHPUT_SHARE,
            notes=f"{done['async']}/{expected} replies", sent=expected, acked=done["async"],
            sync_acked=done["sync"], async_per_s=round(async_rate), sync_per_s=round(sync_rate)),
    ]
