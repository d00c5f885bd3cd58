"""The benchmark code runs (tiny counts): it must never rot. Speeds are not
asserted here; they belong in docs/performance.md."""
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest


ROOT = Path(__file__).resolve().parent.parent


def _realtime_allowed() -> bool:
    """Can this machine run the bench's real-time rows (SCHED_FIFO)?"""
    try:
        before = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        os.sched_setscheduler(0, *before)
        return True
    except (AttributeError, OSError):
        return False


#: every row `python -m bench` must produce, by section
EXPECTED = {
    "acked_write": [
        "acked_write.raw.1", "acked_write.raw.8", "acked_write.raw.8.busy", "acked_write.raw.26",
        "acked_write.raw.26.busy", "acked_write.flatness", "acked_write.library.1",
        "acked_write.library.26.busy", "acked_write.gpiozero"],
    "client_cost": ["client_cost.raw", "client_cost.library", "client_cost.gpiozero"],
    "pipelined": ["pipelined.1conn.1pin", "pipelined.1conn.8pins", "pipelined.4conn.8pins"],
    "timing": ["timing.floor.plain.idle", "timing.floor.idle", "timing.on100.idle",
               "timing.blink.idle", "timing.on100.floor.idle", "timing.floor.plain.busy",
               "timing.floor.busy", "timing.on100.busy", "timing.blink.busy",
               "timing.on100.floor.busy"] + (
                   ["timing.on100.rt.idle", "timing.on100.rt.busy"] if _realtime_allowed()
                   else ["timing.on100.rt"]),
    "edge": ["edge.raw", "edge.callback"],
    "leases": ["leases.idle", "leases.loaded"],
    "resources": ["resources.ready", "resources.pss.1", "resources.pss.26",
                  "resources.worker_private", "resources.idle_cpu"],
    "crowd": ["crowd.connect", "crowd.lost"],
    "batch_write": ["batch_write.round_trip", "batch_write.skew"],
    "asyncio": ["asyncio.write.sync", "asyncio.write.async", "asyncio.concurrent"],
    "scale": ["scale.i2c.idle", "scale.i2c.busy", "scale.expander.idle", "scale.expander.busy"],
    "buses": ["buses.pin_write", "buses.i2c.read_byte_data", "buses.i2c.transaction32",
              "buses.spi.xfer2"],
    "serial": ["serial.115200.rate", "serial.115200.lost"],
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    before = (ROOT / "docs" / "performance.md").read_text()
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    after = (ROOT / "docs" / "performance.md").read_text()
    return result, json.loads((out / "results.json").read_text()), before, after


def test_smoke_run_succeeds_and_leaves_docs_alone(smoke):
    result, results, before, after = smoke
    assert result.returncode == 0, result.stderr[-3000:]
    assert results["errors"] == {}
    assert after == before  # --smoke never touches docs/
    assert "floor: echo relayed via a 2nd process" in result.stdout
    assert "targets met" in result.stdout


def test_floors_measured_first_and_last(smoke):
    _, results, _, _ = smoke
    for key in ("floors", "floors_end"):
        assert set(results[key]) == {"bare", "relayed"}
        assert all(results[key][kind]["n"] == 50 for kind in ("bare", "relayed"))
    assert set(results["section_floors"]) == set(EXPECTED)


def test_every_measurement_has_results(smoke):
    _, results, _, _ = smoke
    assert set(results["sections"]) == set(EXPECTED)
    for section, keys in EXPECTED.items():
        rows = results["sections"][section]
        assert [r["key"] for r in rows] == keys
        for r in rows:
            assert r["name"] and "met" in r
            if r["target"]:
                assert isinstance(r["met"], bool), r["key"]
            if r["figure"]:
                continue
            assert r["n"] > 0 and r["p50_us"] is not None and r["p99_us"] is not None, r["key"]
            if r["floor_multiple"]:
                assert r["x_floor_p50"] > 0


def test_measurements_checked_what_they_claim(smoke):
    """Not speeds: that every ack was verified on the board, nothing was lost."""
    _, results, _, _ = smoke
    rows = {r["key"]: r for rows in results["sections"].values() for r in rows}
    for key, r in rows.items():
        if key.startswith("acked_write.") and "check" in r:
            assert r["check"]["verified"] == r["n"], r["check"]
    for key in ("pipelined.1conn.1pin", "pipelined.1conn.8pins", "pipelined.4conn.8pins"):
        assert rows[key]["acked"] == rows[key]["sent"] == rows[key]["ok"] > 0
    assert rows["crowd.lost"]["lost"] == 0
    assert rows["batch_write.skew"]["complete"]
    assert rows["edge.callback"]["missing"] == 0
    assert rows["asyncio.concurrent"]["acked"] == rows["asyncio.concurrent"]["sent"] > 0
    for key in ("leases.idle", "leases.loaded"):   # every lease seen to revert
        assert rows[key]["n"] == 3, rows[key]["notes"]


def test_markdown_block_replaces_only_the_generated_part(smoke, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # bench/ is not an installed package
    from bench.report import BEGIN, END, render_markdown, update_performance_doc
    _, results, _, _ = smoke
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nprose before\n\n{BEGIN}\nold\n{END}\n\nprose after\n")
    update_performance_doc(doc, render_markdown(results))
    text = doc.read_text()
    assert "prose before" in text and "prose after" in text and "old" not in text
    block = text.split(BEGIN)[1].split(END)[0]
    assert "`python -m bench --smoke" in block and "| acked write, 26 pins open |" in block
    assert block.count("| acked write") == 8


def test_the_fork_floor_forks_each_child_and_reaps_them_all():
    sys.path.insert(0, str(ROOT))
    from bench.floors import fork_floor_s
    import psutil
    before = {c.pid for c in psutil.Process().children()}
    seconds = fork_floor_s(3)
    assert 0 < seconds < 30
    assert {c.pid for c in psutil.Process().children()} - before == set()   # none left behind


def test_the_memory_floor_is_a_child_forked_as_the_zygote_forks_and_it_is_reaped():
    sys.path.insert(0, str(ROOT))
    from bench.resources import fork_floor_mib
    import psutil
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    mib, how = fork_floor_mib()
    assert how in ("bare_fork", "fork")   # the zygote's own choice (spawn.fork_function)
    assert 0 < mib < psutil.Process().memory_full_info().uss / 2**20   # a fork owns less than a whole process
    assert {c.pid for c in psutil.Process().children(recursive=True)} - before == set()
