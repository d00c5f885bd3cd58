"""``python -m bench``: measure remoteio on this machine, beside the floors.

Measures the two floors first (a bare Python TCP echo, and the same echo
relayed through a second process), then, each on a fresh server (``remoteio
serve --sim`` in its own process, 127.0.0.1, a free port):

  acked_write  acknowledged writes, 1/8/26 pins, others idle or blinking;
               raw socket and client library
  client_cost  raw socket, client library and gpiozero writes in turns: the library's cost
  pipelined    pipelined throughput, 1 and 4 connections
  timing       on(time_ms=100) length and blink periods, idle and busy
  edge         input edge -> event / callback latency
  resources    26 pins ready, memory (PSS) with 1 and 26 pins, idle CPU
  crowd        100 clients connecting at once, commands lost
  batch_write  8-pin batch write: round trip and skew of the changes
  kernel       in the VM of tests/hw (root, QEMU): the gpiod and lgpio
               backends on a gpio-sim chip beside rgpiod, same boot
  asyncio      the asyncio client beside the sync one: acked write, 1,000 concurrent writes
  scale        an I2C call's round trip, idle and with 26 pins blinking at 100 Hz
  buses        I2C calls, a 32-call transaction and an SPI xfer2 (MCP3008) beside an
               acked pin write (bench/buses.py)
  serial       115,200 baud sustained from the Pi to a client over a pty: bytes/s, bytes lost

then the floors again (to show how the machine's load moved). Prints a
table, writes results.json (everything, with raw statistics) and the table
into docs/performance.md between its bench:begin/end markers.

``--quick`` takes under a minute; ``--smoke`` uses tiny counts and leaves
docs/ alone (the test suite runs it so this code never rots); ``--only``
leaves docs/ alone too unless ``--doc`` names the file.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import (aio, buses, client_cost, crowd, events, kernel, latency, leases, resources,
               scale, serialbench, throughput, timing)
from .floors import Floor
from .harness import ROOT
from .plan import FULL, QUICK, SMOKE, Plan
from .report import add_floor_multiples, render_markdown, render_table, summary, update_performance_doc

Section = Callable[[Plan, float], List[Dict[str, Any]]]
SECTIONS: Dict[str, Section] = {
    "acked_write": lambda plan, floor: (latency.acked_writes(plan, floor)
                                        + latency.library_writes(plan, floor)
                                        + latency.gpiozero_writes(plan, floor)),
    "client_cost": client_cost.client_cost,
    "pipelined": lambda plan, floor: throughput.pipelined(plan),
    "timing": lambda plan, floor: timing.timing(plan),
    "leases": lambda plan, floor: leases.leases(plan),
    "edge": lambda plan, floor: events.edge_latency(plan),
    "resources": lambda plan, floor: resources.resources(plan),
    "crowd": lambda plan, floor: crowd.connect_storm(plan),
    "batch_write": latency.batch_skew,
    "kernel": lambda plan, floor: kernel.kernel(plan),
    "asyncio": lambda plan, floor: aio.asyncio_client(plan),
    "scale": lambda plan, floor: scale.scale(plan),
    "buses": lambda plan, floor: buses.section(plan.lib_latency),
    "serial": lambda plan, floor: serialbench.serial(plan),
}
#: sections a --smoke run leaves out (the kernel section boots a VM)
NOT_IN_SMOKE = ("kernel",)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples (a few minutes, most of them the VM section)")
    parser.add_argument("--smoke", action="store_true", help="tiny counts; do not touch docs/")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"),
                        help="folder for results.json (default bench/results)")
    parser.add_argument("--doc", default=None,
                        help="the Markdown file whose bench:begin/end block is rewritten "
                             "(default docs/performance.md after a run of every section; "
                             "after --only, only when given; never with --smoke)")
    parser.add_argument("--only", default="", metavar="SECTION,...",
                        help=f"measure only these (the floors always): {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    # stopped by SIGTERM (kill, timeout(1)), the bench stops the servers it started, as for
    # Ctrl-C: their with-blocks run (a SIGTERM's default left a server serving, orphaned)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or [
        s for s in SECTIONS if not (args.smoke and s in NOT_IN_SMOKE)]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")

    started = time.monotonic()
    busy_before = _machine_busy(0.2 if args.smoke else 1.0)
    argv_text = " ".join(argv if argv is not None else sys.argv[1:])
    results: Dict[str, Any] = {
        "machine": _machine(), "command": f"python -m bench {argv_text}".strip(),
        "date": time.strftime("%Y-%m-%d %H:%M"), "plan": plan.as_dict(),
        "sections": {}, "errors": {}}
    _progress(f"floors ({plan.name})", started)
    floors = {kind: Floor(kind) for kind in ("bare", "relayed")}
    try:
        results["floors"] = {kind: floor.measure(plan.floor) for kind, floor in floors.items()}
        floor_p50 = results["floors"]["relayed"]["p50_us"]
        results["section_floors"] = {}
        for name in chosen:
            _progress(name, started)
            # this machine's speed moves (shared cores): the relayed floor just before
            results["section_floors"][name] = floors["relayed"].measure(min(plan.floor, 1000))
            try:
                results["sections"][name] = SECTIONS[name](plan, floor_p50)
            except Exception:  # report it, go on with the others, fail at the end
                results["sections"][name] = []
                results["errors"][name] = traceback.format_exc()
                print(results["errors"][name], file=sys.stderr)
        _progress("floors again", started)
        results["floors_end"] = {kind: floor.measure(plan.floor) for kind, floor in floors.items()}
    finally:
        for floor in floors.values():
            floor.close()
    results["machine"]["load_end"] = round(os.getloadavg()[0], 2)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["machine"]["busy_before_percent"] = busy_before
    results["machine"]["busy_after_percent"] = _machine_busy(0.2 if args.smoke else 1.0)
    add_floor_multiples(results)
    results["summary"] = summary(results)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(render_table(results))
    print(f"\n{results['summary']}\n{results['elapsed_s']} s; results in {out / 'results.json'}")
    # a run of a few sections must not replace the whole run's table unless asked to
    doc = args.doc or (None if args.only else str(ROOT / "docs" / "performance.md"))
    if doc and not args.smoke:
        update_performance_doc(Path(doc), render_markdown(results))
    return 1 if results["errors"] else 0


def _progress(what: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {what}", file=sys.stderr, flush=True)


def _machine_busy(seconds: float) -> Optional[float]:
    """How busy the machine is while the bench itself does nothing: % of all
    its cores, over *seconds* (other people's work on a shared machine)."""
    def sample() -> List[int]:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:8]]
    try:
        before = sample()
        time.sleep(seconds)
        delta = [b - a for a, b in zip(before, sample())]
    except (OSError, ValueError):
        return None
    total = sum(delta)
    idle = delta[3] + delta[4]  # idle, iowait
    return round(100 * (total - idle) / total, 1) if total else None


def _machine() -> Dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "load_start": round(os.getloadavg()[0], 2)}


if __name__ == "__main__":
    sys.exit(main())
