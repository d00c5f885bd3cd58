"""Traces: the changes the cells made, with the Pi's timestamps, as rows, DataFrames and plots."""
from __future__ import annotations

import asyncio

import pytest

from remoteio.aio import AsyncRemoteServer


def _alternate(edges):
    return all(a != b for a, b in zip(edges, edges[1:]))


def test_a_trace_of_a_blink_has_its_edges_at_the_pis_times(client):
    led = client.pin(7)
    led.blink(on_time=0.05, off_time=0.05)
    trace = led.trace(0.6)
    edges = [edge for _, edge in trace.edges(7)]
    assert 6 <= len(edges) <= 14 and _alternate(edges)  # 0.1 s periods over 0.6 s
    times = [t for t, _ in trace.edges(7)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.02 < gap < 0.2 for gap in gaps), gaps   # generous: timed on the Pi
    assert 0.55 < trace.duration_s < 5
    row = trace.to_rows()[0]
    assert set(row) == {"pin", "t_s", "ts_ns", "value", "edge"} and row["pin"] == 7


def test_a_recording_holds_the_edges_made_inside_it(client):
    button = client.pin(11)
    button.as_input(pull="down")
    with client.recording([11]) as recording:
        for level in (1, 0, 1):
            client.sim.drive(11, level)
            assert button.wait_for_value(level, timeout=5)
    trace = recording.trace
    assert trace.initial == {11: 0}
    assert [edge for _, edge in trace.edges(11)] == ["rising", "falling", "rising"]
    times, levels = trace.steps(11)
    assert levels == [0.0, 1.0, 0.0, 1.0, 1.0] and times == sorted(times)


def test_an_async_trace_records_the_same(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            led = await remote.pin(7)
            await led.blink(on_time=0.05, off_time=0.05)
            trace = await led.trace(0.6)
            return [edge for _, edge in trace.edges(7)]
    edges = asyncio.run(scenario())
    assert 6 <= len(edges) <= 14 and _alternate(edges)


def test_a_trace_becomes_a_dataframe_and_a_timing_diagram(client):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    led = client.pin(7)
    client.pin(13)  # claimed, never changed: an empty lane
    led.blink(on_time=0.05, off_time=0.05)
    trace = client.trace([7, 13], 0.3)
    frame = trace.to_dataframe()
    assert isinstance(frame, pandas.DataFrame) and set(frame["pin"]) == {7}
    ax = trace.plot()
    assert [label.get_text() for label in ax.get_yticklabels()] == ["BOARD13", "BOARD7"]
    assert len(ax.lines) == 2


def test_without_pandas_or_matplotlib_a_trace_says_what_to_install(client, monkeypatch):
    import sys
    for name in ("pandas", "matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)   # as if not installed: import raises
    trace = client.trace([7], 0.05)
    with pytest.raises(ImportError, match="needs pandas: pip install pandas"):
        trace.to_dataframe()
    with pytest.raises(ImportError, match=r"needs matplotlib: pip install 'remoteio\[jupyter\]'"):
        trace.plot()
