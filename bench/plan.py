"""How much each measurement does, per mode (``--smoke``, ``--quick``, full)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict


@dataclass(frozen=True)
class Plan:
    name: str
    floor: int              # round trips per floor
    latency: int            # acknowledged writes per raw-socket row
    lib_latency: int        # acknowledged writes per client-library row
    pipeline_commands: int  # commands per throughput row (all connections together)
    pipeline_seconds: float  # ... or stop after this long
    timed_reps: int         # on(time_ms=100) repetitions (and blink periods) per scenario
    edges: int              # input edges per edge -> callback row
    idle_seconds: float     # idle CPU window
    ready_rounds: int       # fresh servers timed for "26 pins ready"
    crowd_rounds: int       # rounds of 100 clients connecting at once
    skew_writes: int        # 8-pin batch writes (at most 4000: the board keeps 4096 changes)
    pipeline_runs: int = 3  # runs of every pipelined case (the target holds in each)
    crowd_clients: int = 100
    crowd_commands: int = 10

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


SMOKE = Plan("smoke", floor=50, latency=50, lib_latency=50, pipeline_commands=2048,
             pipeline_seconds=2.0, timed_reps=3, edges=20, idle_seconds=0.5, ready_rounds=1,
             crowd_rounds=1, skew_writes=20, pipeline_runs=1)
QUICK = Plan("quick", floor=2000, latency=2000, lib_latency=1000, pipeline_commands=60_000,
             pipeline_seconds=4.0, timed_reps=30, edges=300, idle_seconds=3.0, ready_rounds=2,
             crowd_rounds=3, skew_writes=400)
FULL = Plan("full", floor=20000, latency=20000, lib_latency=10000, pipeline_commands=600_000,
            pipeline_seconds=12.0, timed_reps=200, edges=5000, idle_seconds=10.0, ready_rounds=3,
            crowd_rounds=20, skew_writes=4000)
