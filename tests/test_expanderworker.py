"""The expander worker (expanderworker.py) in this process, its turns driven by the test:
what a watch guarantees from its reply on, on the interrupt line and polled.

Each test drives the worker's own steps in the order its loop runs them
(``handle`` each message, ``advance``, ``_flush``; ``service`` when the line's
descriptor is readable), so where an input changes relative to the worker's
register writes is chosen by the test, not by the machine's load: a chip
model pulses the pin at the very moment GPINTEN is written.
"""
from __future__ import annotations

import json
import select
import time
from typing import Any, Callable, List, Optional, Tuple

import pytest

from remoteio.server.backends.sim import SimBackend
from remoteio.server.channel import channel_pair
from remoteio.server.expanderworker import ExpanderWorker
from remoteio.server.messages import Event, ForPin, Replies, Task, decode, encode
from remoteio.server.simdevices import B_GPINTEN, SimI2CBus

LINE = 13       # the header pin (board) the chip's INT is wired to: GPIO27
LINE_BCM = 27


class PulsingBus(SimI2CBus):
    """The simulated bus, with a finger on a pin: *when(register, data)* is asked
    after every write transaction and may move the chip's inputs right then."""

    def __init__(self, chips: Any, bus: int = 1):
        super().__init__((), shared=chips.models(bus))
        self.when: Callable[[int, List[int]], None] = lambda register, data: None

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: Any = None) -> None:
        super().write_byte_data(i2c_addr, register, value)
        self.when(register, [value])

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Any,
                             force: Any = None) -> None:
        super().write_i2c_block_data(i2c_addr, register, data)
        self.when(register, list(data))


class Rig:
    """An expander worker over a simulated MCP23008 (or MCP23017) and its INT line,
    its replies and events read back off its real reply pipe."""

    def __init__(self, chip: str = "mcp23008", interrupt: Optional[int] = LINE):
        self.backend = SimBackend()
        sim = self.backend.sim
        self.model = sim.chips.declare("mcp3", 1, 0x23, chip,
                                       interrupt_line=LINE_BCM if interrupt else None)
        self.ports = self.model.ports
        self.bus = PulsingBus(sim.chips)
        self.tasks_r, self.tasks_w = channel_pair()
        self.replies_r, self.replies_w = channel_pair()
        settings = {"expander": {"name": "mcp3", "chip": chip, "bus": 1, "address": 0x23,
                                 "poll_ms": 60_000.0, "interrupt": interrupt},
                    "rules": {}}
        self.worker = ExpanderWorker(settings, self.bus, "wait", self.tasks_r, self.replies_w,
                                     self.backend if interrupt else None)
        self.seq = 0
        self.out: List[Any] = []

    def close(self) -> None:
        self.worker.make_safe()
        self.worker.close()
        for channel in (self.tasks_r, self.tasks_w, self.replies_r, self.replies_w):
            channel.close()
        self.backend.sim.close()

    def turn(self, pin: str, op: str, conn: int = 1, **args: Any) -> None:
        """One turn of the worker's loop with one request from connection *conn* in it."""
        self.seq += 1
        self.worker.handle(ForPin(pin, encode(Task(self.seq, conn, str(self.seq), op, args,
                                                   False))))
        self.worker.advance()
        self.worker.idle()
        self.worker._flush()
        self.out += [decode(raw) for batch in self.replies_r.receive() for raw in batch]

    def serve_line(self) -> None:
        """The loop's turn when the line's descriptor is readable (if it is)."""
        fds = self.worker.event_fds()
        readable, _, _ = select.select(fds, (), (), 0)
        for fd in readable:
            self.worker.service(fd)
        self.worker.advance()
        self.worker._flush()
        self.out += [decode(raw) for batch in self.replies_r.receive() for raw in batch]

    def changes(self) -> List[Tuple[int, str, int]]:
        """(value, edge, ts_ns) of every change event the worker sent, in order."""
        frames = [json.loads(m.frame) for m in self.out if isinstance(m, Event)]
        return [(f["value"], f["edge"], f["ts"]) for f in frames if f.get("event") == "change"]

    def pulse_at_gpinten(self, bit: int) -> List[int]:
        """Pulse pin *bit* (low, then let go to its pull-up) inside the write that
        enables its interrupt; the times (monotonic ns) around the pulse."""
        register = B_GPINTEN * self.ports + bit // 8
        around: List[int] = []

        def when(first: int, data: List[int]) -> None:   # a write of registers first..
            value = data[register - first] if 0 <= register - first < len(data) else 0
            if value >> bit % 8 & 1 and not around:
                around.append(_now())
                self.model.drive_input(bit // 8, bit % 8, 0)
                self.model.drive_input(bit // 8, bit % 8, None)
                around.append(_now())
        self.bus.when = when
        return around


def _now() -> int:
    return time.monotonic_ns()


@pytest.fixture
def rig():
    made: List[Rig] = []

    def make(*args: Any, **kwargs: Any) -> Rig:
        made.append(Rig(*args, **kwargs))
        return made[-1]
    yield make
    for one in made:
        one.close()


def _change_frames(rig: Rig) -> List[dict]:
    return [json.loads(m.frame) for m in rig.out if isinstance(m, Event)]


@pytest.mark.parametrize("chip, pin, bit", [("mcp23008", "mcp3:A6", 6),
                                            ("mcp23017", "mcp3:B1", 9)])
def test_a_pulse_while_the_interrupt_is_being_enabled_is_reported_as_a_fall_then_a_rise(
        rig, chip, pin, bit):
    r = rig(chip)
    r.turn(pin, "input", pull="up", bounce_ms=0.0)
    around = r.pulse_at_gpinten(bit)
    r.turn(pin, "watch")                       # GPINTEN is written in this turn: the pulse
    assert len(around) == 2, "the chip model was never enabled for the pin"
    r.serve_line()                             # the loop's next select (nothing more to report)
    assert [(value, edge) for value, edge, _ in r.changes()] == [(0, "falling"), (1, "rising")]
    (_, _, fell), (_, _, rose) = r.changes()
    # the fall stamped with the line's edge (inside the pulse), the rise when read
    assert around[0] <= fell <= around[1] <= rose <= _now()
    assert r.backend.sim.level(LINE_BCM) == 1   # and the interrupt was cleared


def _replies(rig: Rig) -> List[dict]:
    return [json.loads(frame) for m in rig.out if isinstance(m, Replies) for frame in m.frames]


def test_an_edge_after_a_watchs_reply_is_reported(rig):
    r = rig()
    r.turn("mcp3:A6", "input", pull="up", bounce_ms=0.0)
    r.turn("mcp3:A6", "watch")
    assert _replies(r)[-1]["value"] == 1 and r.changes() == []
    assert r.model.registers[B_GPINTEN] & 1 << 6    # enabled before the reply left
    r.model.drive_input(0, 6, 0)                    # a press right after the reply
    assert r.backend.sim.level(LINE_BCM) == 0       # the chip asserts INT
    r.serve_line()
    assert [(value, edge) for value, edge, _ in r.changes()] == [(0, "falling")]


def test_a_watchs_reply_leaves_after_its_interrupt_is_enabled_even_with_other_events_due(rig):
    r = rig()
    for pin in ("mcp3:A6", "mcp3:A7"):
        r.turn(pin, "input", pull="up", bounce_ms=0.0)
    r.turn("mcp3:A7", "watch")
    r.model.drive_input(0, 7, 0)   # A7's interrupt pending, its line's edge not yet served
    sent_before_enable: List[Any] = []

    def when(first: int, data: List[int]) -> None:
        if first == B_GPINTEN and data[0] >> 6 & 1:   # A6 enabled now: what had left?
            sent_before_enable.extend(decode(raw) for batch in r.replies_r.receive()
                                      for raw in batch)
    r.bus.when = when
    r.turn("mcp3:A6", "watch")     # its first read reports A7's fall (before A6's GPINTEN)
    assert not [m for m in sent_before_enable if isinstance(m, Replies)]
    r.out[:0] = sent_before_enable
    assert [(value, edge) for value, edge, _ in r.changes()] == [(0, "falling")]   # A7's
    assert r.changes()[0][2] <= _now()
    r.model.drive_input(0, 6, 0)   # and A6 is watched through the line from its reply on
    r.serve_line()
    assert [f["pin"] for f in _change_frames(r)] == ["mcp3:A7", "mcp3:A6"]


def test_without_an_interrupt_line_a_new_watch_reads_its_level_in_its_own_turn(rig):
    r = rig(interrupt=None)
    for pin in ("mcp3:A6", "mcp3:A7"):
        r.turn(pin, "input", pull="up", bounce_ms=0.0)
    r.turn("mcp3:A7", "watch")     # polled every 60 s from here
    r.turn("mcp3:A6", "watch")     # its first level now, not at A7's next poll
    assert r.worker.pins["mcp3:A6"].driver.seen == 1
    r.model.drive_input(0, 6, 0)   # held low after the reply: the next poll reports it
    r.worker.next_poll = 0.0       # (that poll's moment, without waiting 60 s for it)
    r.worker.advance()
    r.worker._flush()
    r.out += [decode(raw) for batch in r.replies_r.receive() for raw in batch]
    assert [(f["pin"], f["value"]) for f in _change_frames(r)] == [("mcp3:A6", 0)]


def _poll_now(rig: Rig) -> None:
    """The moment of the next poll, without waiting poll_ms (60 s) for it."""
    rig.worker.next_poll = 0.0
    rig.worker.advance()
    rig.worker._flush()
    rig.out += [decode(raw) for batch in rig.replies_r.receive() for raw in batch]


def _events_to(rig: Rig, conn: int) -> List[Tuple[str, int]]:
    return [(json.loads(m.frame)["pin"], json.loads(m.frame)["value"]) for m in rig.out
            if isinstance(m, Event) and conn in m.targets
            and json.loads(m.frame).get("event") == "change"]


def test_a_second_watcher_joining_keeps_the_first_watchers_change_seen_since_the_last_poll(rig):
    r = rig(interrupt=None)
    r.turn("mcp3:A6", "input", pull="up", bounce_ms=0.0)
    r.turn("mcp3:A6", "watch", conn=1)   # its first level (1) read in this turn
    r.model.drive_input(0, 6, 0)         # a press before the next poll
    r.turn("mcp3:A6", "watch", conn=2)   # another client watches too
    _poll_now(r)
    assert _events_to(r, 1) == [("mcp3:A6", 0)]   # the press: not taken for a fresh start


def test_a_watcher_leaving_keeps_the_others_change_seen_since_the_last_poll(rig):
    r = rig(interrupt=None)
    r.turn("mcp3:A6", "input", pull="up", bounce_ms=0.0)
    r.turn("mcp3:A6", "watch", conn=1)
    r.turn("mcp3:A6", "watch", conn=2)
    r.model.drive_input(0, 6, 0)
    r.turn("mcp3:A6", "unwatch", conn=2)
    _poll_now(r)
    assert _events_to(r, 1) == [("mcp3:A6", 0)]


def test_a_clients_read_of_one_input_does_not_clear_another_inputs_pending_interrupt(rig):
    r = rig()
    for pin in ("mcp3:A6", "mcp3:A7"):
        r.turn(pin, "input", pull="up", bounce_ms=0.0)
        r.turn(pin, "watch")
    r.model.drive_input(0, 7, 0)      # A7 pulses; INTCAP holds its low, INT asserted
    r.model.drive_input(0, 7, None)
    assert r.backend.sim.level(LINE_BCM) == 0
    r.turn("mcp3:A6", "read")         # handled before the loop serves the line
    assert _replies(r)[-1]["value"] == 1
    r.serve_line()
    assert [(f["pin"], f["edge"]) for f in _change_frames(r)] == [
        ("mcp3:A7", "falling"), ("mcp3:A7", "rising")]
    assert r.backend.sim.level(LINE_BCM) == 1
