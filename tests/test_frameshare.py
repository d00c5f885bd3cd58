"""The listener's share of frames (frameshare.py): when requests go on to the workers."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Dict, List, Optional, Set

from remoteio.protocol.ops import PIN
from remoteio.protocol.server_connection import PinRequest
from remoteio.server.frameshare import CHUNK, FrameSharing


class _Protocol:
    """Pin requests waiting on one connection, as a ServerConnection holds them."""

    def __init__(self, count: int):
        self.steps = [PinRequest(SimpleNamespace(spec=SimpleNamespace(scope=PIN), n=n))
                      for n in range(count)]
        self.close_reason: Optional[str] = None

    @property
    def waiting(self) -> int:
        return len(self.steps)

    def next_step(self):
        return self.steps.pop(0) if self.steps else None


class _Router:
    def __init__(self):
        self.calls: List[tuple] = []

    def route(self, conn_id: int, batch) -> None:
        self.calls.append(("route", conn_id, len(batch)))

    def flush(self) -> None:
        self.calls.append(("flush",))

    def congested(self, conn_id: int) -> bool:
        return False


class _Conn(SimpleNamespace):
    __hash__ = object.__hash__  # a Connection is hashed by identity too


class _Sharing(FrameSharing):
    def __init__(self, waiting: List[int]):
        self.router = _Router()
        self.connections: Dict[int, _Conn] = {}
        self._backlog = {}
        self._paused: Set[_Conn] = set()
        for n, count in enumerate(waiting):
            conn = _Conn(id=n, protocol=_Protocol(count), pending=0, eof=False)
            self.connections[n] = conn
            self._backlog[conn] = None

    def _update_events(self, conn) -> None:
        pass

    def _queue(self, conn, frame: bytes) -> None:
        raise AssertionError("only pin requests here")

    def _end(self, conn, reason) -> None:
        raise AssertionError("no connection ends here")


def test_a_crowd_of_short_batches_is_left_for_the_turns_one_flush():
    sharing = _Sharing([1, 2, 1, 3])
    sharing._work_backlog()
    assert ("flush",) not in sharing.router.calls  # the listener's turn flushes once, after
    assert sorted(c[1:] for c in sharing.router.calls) == [(0, 1), (1, 2), (2, 1), (3, 3)]
    assert not sharing._backlog


def test_a_full_chunk_goes_on_to_its_workers_before_the_next_is_read():
    sharing = _Sharing([CHUNK + 5])
    sharing._work_backlog()
    assert sharing.router.calls == [("route", 0, CHUNK), ("flush",), ("route", 0, 5)]
    assert sharing.connections[0].pending == CHUNK + 5
