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


def test_a_second_watcher_is_told_the_level_the_events_go_on_from():
    driver = EdgeDriver(0)
    machine = Machine(driver)
    machine.watch(1)
    driver.level = 1             # an edge on its way to the first watcher...
    reply = machine.watch(2)     # ...when a second one watches
    assert (reply["value"], reply["seq"]) == (0, 0)
    driver.deliver(1)            # both hear of it, numbered once
    assert [(t, e["value"], e["seq"]) for t, e in machine.events] == [((1, 2), 1, 1)]


def test_every_event_changes_the_level_its_watchers_were_told():
    driver = EdgeDriver(0)
    machine = Machine(driver)
    machine.watch(1)
    for level in (1, 1, 0, 0, 1):
        driver.level = level
        driver.deliver(level)
    values = [e["value"] for _, e in machine.events]
    assert values == [1, 0, 1]
    assert [e["seq"] for _, e in machine.events] == [1, 2, 3]
