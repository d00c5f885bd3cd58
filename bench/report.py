"""Turning results into a terminal table and the Markdown of docs/performance.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def _rows(results: Dict[str, Any]) -> List[List[str]]:
    floors = results["floors"]
    relayed = floors["relayed"]["p50_us"]
    rows = [
        ["floor: bare TCP echo", f"{floors['bare']['p50_us']}", f"{floors['bare']['p99_us']}", "", ""],
        ["floor: echo relayed via 2nd process", f"{relayed}", f"{floors['relayed']['p99_us']}", "1.0×", ""],
    ]
    for row in results.get("acked_writes", []):
        ratio = row["p50_us"] / relayed if relayed else 0
        met = row["p50_us"] <= 100 and row["p99_us"] <= 300
        rows.append([row["name"], f"{row['p50_us']}", f"{row['p99_us']}", f"{ratio:.1f}×",
                     f"p50 ≤ 100, p99 ≤ 300 µs: {'met' if met else 'NOT met'}"])
    idle = results.get("idle")
    if idle:
        met = idle["percent_of_one_core"] <= 0.5
        rows.append([idle["name"], f"{idle['percent_of_one_core']} % of a core", "", "",
                     f"≤ 0.5 %: {'met' if met else 'NOT met'} (PSS {idle['pss_mib']} MiB)"])
    return rows


HEADER = ["measurement", "p50 µs", "p99 µs", "× relayed floor", "target"]


def render_table(results: Dict[str, Any]) -> str:
    rows = [HEADER] + _rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(results: Dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Measured {results['date']} with `{results['command'].strip()}` on {machine['cpu']}, "
        f"{machine['cores']} cores, Python {machine['python']}, {machine['system']} "
        f"({results['elapsed_s']} s).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(results)]
    return "\n".join(lines)


def update_performance_doc(path: Path, table: str) -> None:
    """Replace the generated block of docs/performance.md (or create it)."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
