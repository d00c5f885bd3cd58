"""Traces: pins' changes over a while, with the Pi's timestamps, as rows, a DataFrame or a timing diagram.

>>> from remoteio.client.pinlogic import PinEvent
>>> t = Trace({7: 0}, [PinEvent(7, 1, "rising", 1_500_000_000, 1, 0)], 1_000_000_000, 3_000_000_000)
>>> t.to_rows()
[{'pin': 7, 't_s': 0.5, 'ts_ns': 1500000000, 'value': 1, 'edge': 'rising'}]
>>> t.edges(7)
[(0.5, 'rising')]
>>> t.duration_s
2.0
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import RemoteIOError
from .pinlogic import PinEvent

if TYPE_CHECKING:
    from ..aio import AsyncRemoteServer
    from .client import RemoteServer


class Trace:
    """What some pins did between two moments of the Pi's clock.

    *initial* is each pin's level when recording began (board -> level),
    *events* the changes in the order the Pi made them."""

    def __init__(self, initial: Dict[int, Any], events: Sequence[PinEvent],
                 start_ns: int, end_ns: int):
        self.initial = dict(initial)
        self.events = sorted(events, key=lambda e: (e.ts_ns, e.pin, e.seq))
        self.start_ns, self.end_ns = start_ns, end_ns
        self.missed = sum(e.missed for e in self.events)

    @property
    def pins(self) -> List[int]:
        return sorted(self.initial)

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def to_rows(self) -> List[Dict[str, Any]]:
        """One dict per change: pin, t_s (since the start), ts_ns (the Pi's clock), value, edge."""
        return [{"pin": e.pin, "t_s": round((e.ts_ns - self.start_ns) / 1e9, 9), "ts_ns": e.ts_ns,
                 "value": e.value, "edge": e.edge} for e in self.events]

    def edges(self, pin: int) -> List[Tuple[float, str]]:
        """(t_s, edge) of one pin's changes."""
        return [(row["t_s"], row["edge"]) for row in self.to_rows() if row["pin"] == pin]

    def steps(self, pin: int) -> Tuple[List[float], List[float]]:
        """The pin's level as a step function: times (s) and the level from each on."""
        times, levels = [0.0], [float(self.initial.get(pin) or 0)]
        for t, value in ((row["t_s"], row["value"]) for row in self.to_rows() if row["pin"] == pin):
            times.append(t)
            levels.append(float(value))
        times.append(self.duration_s)
        levels.append(levels[-1])
        return times, levels

    def to_dataframe(self) -> Any:
        """The rows as a pandas DataFrame (needs pandas: ``pip install pandas``)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("Trace.to_dataframe() needs pandas: pip install pandas") from None
        return pandas.DataFrame(self.to_rows(), columns=["pin", "t_s", "ts_ns", "value", "edge"])

    def plot(self, ax: Any = None) -> Any:
        """A timing diagram, one lane per pin, like a logic analyser (needs
        matplotlib: ``pip install 'remoteio[jupyter]'``); returns the axes."""
        if ax is None:
            try:
                import matplotlib.pyplot as plt
            except ImportError:
                raise ImportError("Trace.plot() needs matplotlib: pip install 'remoteio[jupyter]'") from None
            _, ax = plt.subplots(figsize=(8, 0.8 + 0.6 * max(1, len(self.pins))))
        for lane, pin in enumerate(reversed(self.pins)):
            times, levels = self.steps(pin)
            ax.step(times, [lane * 1.5 + 0.9 * level for level in levels], where="post")
        ax.set_yticks([lane * 1.5 + 0.45 for lane in range(len(self.pins))])
        ax.set_yticklabels([f"BOARD{pin}" for pin in reversed(self.pins)])
        ax.set_xlabel("seconds (Pi clock)")
        ax.set_xlim(0, max(self.duration_s, 1e-3))
        return ax

    def __repr__(self) -> str:
        return (f"<Trace of {', '.join(f'BOARD{p}' for p in self.pins)}: {len(self.events)} "
                f"changes in {self.duration_s:.3f} s>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class Recorder:
    """Record changes of *pins* (RemotePins) of a sync client while the
    ``with`` block runs: ``with server.recording([7, 11]) as rec: ...``,
    then ``rec.trace``."""

    def __init__(self, server: Union["RemoteServer", "AsyncRemoteServer"], pins: Iterable[Any]):
        self._server = server
        self._pins = list(pins)
        self._events: List[PinEvent] = []
        self._lock = threading.Lock()
        self.trace: Optional[Trace] = None

    def _hear(self, event: PinEvent) -> None:  # on the reader thread
        with self._lock:
            self._events.append(event)

    def __enter__(self) -> "Recorder":
        for pin in self._pins:
            pin.subscribe(self._hear)
            pin.watch()
        self._initial = {pin.board: pin.read() for pin in self._pins}
        self._start = self._server.request("ping")["time_ns"]
        return self

    def __exit__(self, *exc_info: Any) -> None:
        end = self._server.request("ping")["time_ns"]
        try:
            for pin in self._pins:
                # through its worker, after the events it told of edges before
                # now: the ping's reply does not come that way and may pass them
                pin.read()
        except RemoteIOError:
            pass  # the trace holds what came (the link's loss is the caller's to hear)
        finally:
            for pin in self._pins:
                pin.unsubscribe(self._hear)
        with self._lock:
            self.trace = _trace(self._initial, self._events, self._start, end)


def _trace(initial: Dict[int, Any], events: List[PinEvent], start: int, end: int) -> Trace:
    # an edge between the subscription and the start is already in `initial`
    return Trace(initial, [e for e in events if start <= e.ts_ns <= end], start, end)


def record(server: Union["RemoteServer", "AsyncRemoteServer"], pins: Iterable[Any], seconds: float) -> Trace:
    """Record *pins* of a sync client for *seconds*."""
    with Recorder(server, pins) as recorder:
        time.sleep(seconds)  # the pins change on the Pi meanwhile; the reader records
    return recorder.trace


async def record_async(server: Union["RemoteServer", "AsyncRemoteServer"], pins: Iterable[Any],
                       seconds: float) -> Trace:
    """Record *pins* of an asyncio client for *seconds*."""
    pins = list(pins)
    events: List[PinEvent] = []
    hear = events.append  # one object, to unsubscribe by identity
    for pin in pins:
        pin.subscribe(hear)
        await pin.watch()
    try:
        initial = {pin.board: await pin.read() for pin in pins}
        start = (await server.request("ping"))["time_ns"]
        await asyncio.sleep(seconds)
        end = (await server.request("ping"))["time_ns"]
        for pin in pins:  # through its worker, after the events of the edges before (see Recorder)
            await pin.read()
    finally:
        for pin in pins:
            pin.unsubscribe(hear)
    return _trace(initial, events, start, end)
