"""The benchmark code runs (tiny counts): it must never rot. Speeds are not
asserted here; they belong in docs/performance.md."""
import json
import subprocess
import sys

from conftest import ROOT


def test_bench_smoke_run_writes_results(tmp_path):
    before = (ROOT / "docs" / "performance.md").read_text()
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["floors"]) == {"bare", "relayed"}
    assert [row["name"] for row in results["acked_writes"]] == [
        "acked write, 1 pin open", "acked write, 8 pins open", "acked write, 26 pins open"]
    assert all(row["n"] == 50 for row in results["acked_writes"])
    assert "idle CPU" in result.stdout
    assert (ROOT / "docs" / "performance.md").read_text() == before  # smoke leaves docs alone
