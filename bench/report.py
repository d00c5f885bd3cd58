"""Turning results into a terminal table and the Markdown of docs/performance.md."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
HEADER = ["measurement", "p50 (or figure)", "p99", "× relayed floor (p50 / p99)", "target",
          "verdict", "notes"]


def add_floor_multiples(results: Dict[str, Any]) -> None:
    """Every latency row gets its multiples of the relayed floor (same run)."""
    relayed = results["floors"]["relayed"]
    for section, rows in results["sections"].items():
        near = results.get("section_floors", {}).get(section, {}).get("p50_us")
        for r in rows:
            if r.get("floor_multiple") and r.get("p50_us") is not None and relayed["p50_us"]:
                r["x_floor_p50"] = round(r["p50_us"] / relayed["p50_us"], 2)
                r["x_floor_p99"] = round(r["p99_us"] / relayed["p99_us"], 2)
                if near:
                    r["x_section_floor_p50"] = round(r["p50_us"] / near, 2)
                    extra = (f"relayed floor just before this section {near} µs: "
                             f"{r['x_section_floor_p50']:.1f}× that")
                    r["notes"] = f"{r['notes']}; {extra}" if r["notes"] else extra


def verdict(r: Dict[str, Any]) -> str:
    met: Optional[bool] = r.get("met")
    if met is None:
        return ""
    if met:
        return "met"
    return "NOT met" + (f" ({r['missed']})" if r.get("missed") else "")


def _us(value: Optional[float]) -> str:
    return "" if value is None else f"{value:,.1f} µs"


def _rows(results: Dict[str, Any]) -> List[List[str]]:
    floors = results["floors"]
    rows = [
        ["floor: bare TCP echo", _us(floors["bare"]["p50_us"]), _us(floors["bare"]["p99_us"]),
         "", "", "", "measured first"],
        ["floor: echo relayed via a 2nd process", _us(floors["relayed"]["p50_us"]),
         _us(floors["relayed"]["p99_us"]), "1.0× / 1.0×", "", "", "measured first"],
    ]
    for section, section_rows in results["sections"].items():
        if section in results.get("errors", {}):
            rows.append([f"{section}: FAILED", "", "", "", "", "NOT measured",
                         results["errors"][section].strip().splitlines()[-1][:120]])
        for r in section_rows:
            multiple = (f"{r['x_floor_p50']:.1f}× / {r['x_floor_p99']:.1f}×"
                        if "x_floor_p50" in r else "")
            first = r["figure"] or _us(r.get("p50_us"))
            second = "" if r["figure"] else _us(r.get("p99_us"))
            rows.append([r["name"], first, second, multiple, r["target"], verdict(r), r["notes"]])
    end = results.get("floors_end")
    if end:
        rows.append(["floor again, at the end: relayed echo", _us(end["relayed"]["p50_us"]),
                     _us(end["relayed"]["p99_us"]), "", "", "",
                     f"bare {_us(end['bare']['p50_us'])} / {_us(end['bare']['p99_us'])}; "
                     "shows how the machine's load moved"])
    return rows


def render_table(results: Dict[str, Any]) -> str:
    """The terminal's table: the notes go on a line of their own under each row."""
    rows = [HEADER[:-1]] + [r[:-1] for r in _rows(results)]
    notes = [""] + [r[-1] for r in _rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r, note in zip(rows, notes):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
        if note:
            lines.append(f"    ({note})")
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results: Dict[str, Any]) -> str:
    judged = [r for rows in results["sections"].values() for r in rows if r.get("met") is not None]
    missed = [r["name"] for r in judged if not r["met"]]
    text = f"{len(judged) - len(missed)} of {len(judged)} targets met"
    return text + (f"; NOT met: {'; '.join(missed)}" if missed else "")


def render_markdown(results: Dict[str, Any]) -> str:
    machine = results["machine"]
    load = machine.get("load_start"), machine.get("load_end")
    lines = [
        f"Measured {results['date']} with `{results['command']}` on {machine['cpu']}, "
        f"{machine['cores']} cores, Python {machine['python']}, {machine['system']}; "
        f"{results['elapsed_s']} s in all. Load average (1 min) {load[0]} at the start, "
        f"{load[1]} at the end; with the bench idle, the machine was "
        f"{machine.get('busy_before_percent')} % busy just before and "
        f"{machine.get('busy_after_percent')} % just after (other work, % of all cores).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |"
              for r in _rows(results)]
    lines += ["", summary(results) + "."]
    return "\n".join(lines)


def update_performance_doc(path: Path, block: str) -> None:
    """Replace the generated block of the document (or create it)."""
    text = path.read_text() if path.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")
