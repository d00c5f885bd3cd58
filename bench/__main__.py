"""``python -m bench``: measure remoteio on this machine, beside the floors.

Starts its own server on the simulated board (127.0.0.1, a free port),
measures, prints a table, writes results.json and the table in
docs/performance.md. ``--quick`` takes under a minute; ``--smoke`` uses tiny
counts and leaves docs/ alone (the test suite runs it so this code never rots).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from . import measure
from .harness import ROOT, ServerProcess
from .report import render_markdown, render_table, update_performance_doc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    parser.add_argument("--smoke", action="store_true", help="tiny counts; do not touch docs/")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"),
                        help="folder for results.json (default bench/results)")
    args = parser.parse_args(argv)
    count = 50 if args.smoke else 2000 if args.quick else 20000
    idle_seconds = 0.5 if args.smoke else 3.0 if args.quick else 10.0

    started = time.monotonic()
    results = {"machine": _machine(), "command": "python -m bench" + " ".join(
        [""] + [a for a in (argv if argv is not None else sys.argv[1:])]), "date": time.strftime("%Y-%m-%d %H:%M")}
    results["floors"] = measure.floors(count)
    server = ServerProcess()
    try:
        results["acked_writes"] = measure.acked_writes(server, count)
    finally:
        server.stop()
    server = ServerProcess()
    try:
        results["idle"] = measure.idle_cpu(server, idle_seconds)
    finally:
        server.stop()
    results["elapsed_s"] = round(time.monotonic() - started, 1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(render_table(results))
    if not args.smoke:
        update_performance_doc(ROOT / "docs" / "performance.md", render_markdown(results))
    return 0


def _machine() -> dict:
    import os
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}"}


if __name__ == "__main__":
    sys.exit(main())
