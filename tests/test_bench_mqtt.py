"""The MQTT bench runs (tiny counts): it must never rot. Its figures belong
in docs/performance.md, not here."""
import json
from pathlib import Path
import subprocess
import sys

import pytest

from brokers import needs_mosquitto

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install -e '.[test]')")


@needs_mosquitto
def test_the_mqtt_bench_measures_every_row_beside_the_brokers_own_round_trip(tmp_path):
    out = tmp_path / "mqtt.json"
    result = subprocess.run([sys.executable, "-m", "bench.mqtt", "--smoke", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    for config in ("default", "nodelay"):
        for key in ("broker_round_trip", "set_to_pin", "set_to_state", "edge_to_state",
                    "broker_round_trip_after"):
            assert results[config][key]["n"] >= 15, (config, key)
        assert results[config]["changes"] == results[config]["publishes"]
    assert "set_tcp_nodelay" in result.stdout
