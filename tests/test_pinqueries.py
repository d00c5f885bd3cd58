"""A pin's watch and its events (pinqueries.py), on a stand-in driver whose
edges come when the test says: the races of an edge thread, made in order."""
from __future__ import annotations

import json
from typing import Any, List, Tuple

from remoteio.server.config import PinRule
from remoteio.server.messages import Task
from remoteio.server.pinmachine import PinMachine


class EdgeDriver:
    """An input whose level the test sets; *pending* edges are delivered
    only when the test calls :meth:`deliver` (an edge thread's turn)."""

    mode = "input"

    def __init__(self, level: int = 0):
        self.level = level
        self.watching = False
        self.on_edge = None

    def open(self) -> None:
        pass

    def watch(self, on: bool) -> None:
        self.watching = on

    def read(self) -> int:
        return self.level

    def deliver(self, level: int) -> None:
        self.on_edge(level, 0)

    def check_input(self, pull: str) -> None:
        pass

    def make_input(self, pull: str, bounce_ms: float, pwm_stops_at=None) -> None:
        self.level = 1 if pull == "up" else 0   # the line re-claimed: edges off meanwhile


class Machine(PinMachine):
    def __init__(self, driver: EdgeDriver):
        self.replies: List[Tuple[int, dict]] = []
        self.events: List[Tuple[Tuple[int, ...], dict]] = []
        super().__init__(7, driver, "wait", None, PinRule())
        driver.on_edge = self._on_edge

    def reply(self, seq: int, frame: bytes) -> None:
        self.replies.append((seq, json.loads(frame)))

    def part_reply(self, *args: Any) -> None:
        raise AssertionError("no batch here")

    def event(self, targets: Tuple[int, ...], frame: bytes, now: bool = False) -> None:
        self.events.append((targets, json.loads(frame)))

    def message(self, message: Any) -> None:
        pass

    def watch(self, conn: int) -> dict:
        self.handle(Task(conn, conn, str(conn), "watch", {}, False))
        seq, frame = self.replies[-1]
        assert seq == conn and frame["ok"], frame
        return frame


def test_an_edge_that_a_watchs_read_already_saw_is_not_told_again():
    driver = EdgeDriver(0)
    machine = Machine(driver)
    driver.level = 1             # the button goes high just after the watch turns edges on
    reply = machine.watch(1)
    assert (reply["value"], reply["seq"]) == (1, 0)
    driver.deliver(1)            # that edge, late: the reply told it already
    assert machine.events == []
    driver.level = 0
    driver.deliver(0)
    assert [(t, e["value"], e["seq"]) for t, e in machine.events] == [((1,), 0, 1)]


def test_a_second_watcher_is_told_the_level_now_and_numbered_with_the_first():
    driver = EdgeDriver(0)
    machine = Machine(driver)
    machine.watch(1)
    driver.level = 1             # an edge on its way to the first watcher...
    reply = machine.watch(2)     # ...when a second one watches
    assert (reply["value"], reply["seq"]) == (1, 0)
    driver.deliver(1)            # the first watcher must hear of it: both do, numbered once
    assert [(t, e["value"], e["seq"]) for t, e in machine.events] == [((1, 2), 1, 1)]


def test_a_change_made_by_an_operation_after_the_watch_lets_its_first_event_through():
    driver = EdgeDriver(0)
    machine = Machine(driver)
    machine.watch(1)                                  # told 0 (pull down)
    machine.handle(Task(2, 1, "2", "input", {"pull": "up", "bounce_ms": 0.0}, False))
    assert driver.level == 1                          # the new pull moved it, no edge seen
    driver.level = 0
    driver.deliver(0)                                 # a press: an edge to tell
    assert [(e["value"], e["seq"]) for _, e in machine.events] == [(0, 1)]
