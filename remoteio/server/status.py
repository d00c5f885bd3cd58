"""A shared table where each pin worker posts what its pin is doing.

The router answers ``info`` from it without a round trip to every worker.
Slots are the header's board pins, then the declared expanders' pins (by
name, ``"mcp0:A3"``: posted by the expander's worker for each of its pins).
Each slot has exactly one writer (the pin's worker), so no lock is needed; a
reader may see a slot mid-update, which only matters for a human reading
``info`` and is corrected at the next update.
"""
from __future__ import annotations

import mmap
import struct
import time
from typing import Any, Dict, Iterable, Optional, Union

from ..pins import ALL_BOARD_PINS

#: what a slot says a pin is (a driver's mode: "unset" is a pin read but never set up)
FUNCTIONS = ("unused", "input", "output", "released", "unset")
TASKS = ("", "on", "off", "value", "blink", "pulse", "set")

# pid, function, task, watchers, queue, value, ends_ns (0: untimed),
# lease_ns (0: no lease), updated_ns
_SLOT = struct.Struct("=ibbhidqqq")
_INDEX = {board: n for n, board in enumerate(ALL_BOARD_PINS)}


#: slots kept for the pins of expanders declared at run time (4 MCP23017s)
SPARE = 64


class StatusTable:
    def __init__(self, expander_pins: Iterable[str] = (), spare: int = SPARE) -> None:
        self._index: Dict[Union[int, str], int] = dict(_INDEX)
        for pin in expander_pins:
            self._index.setdefault(pin, len(self._index))
        self._size = len(self._index) + spare
        self._mem = mmap.mmap(-1, _SLOT.size * self._size)

    def slots(self, pins: Iterable[str]) -> Dict[str, int]:
        """The slots of *pins*, given spare ones if new (in the server, for a
        worker forked before they existed: it :meth:`adopt` s them); KeyError if full."""
        out = {}
        for pin in pins:
            if pin not in self._index:
                if len(self._index) >= self._size:
                    raise KeyError(f"no status slot left for {pin}")
                self._index[pin] = len(self._index)
            out[pin] = self._index[pin]
        return out

    def adopt(self, slots: Dict[str, int]) -> None:
        """Slots the server gave (see :meth:`slots`)."""
        self._index.update(slots)

    def has(self, pin: Union[int, str]) -> bool:
        return pin in self._index

    def post(self, board: Union[int, str], *, pid: int, function: str, task: str, watchers: int,
             queue: int, value: float, ends_ns: int, lease_ns: int) -> None:
        _SLOT.pack_into(
            self._mem, self._index[board] * _SLOT.size, pid, FUNCTIONS.index(function),
            TASKS.index(task), watchers, queue, value, ends_ns, lease_ns, time.monotonic_ns())

    def read(self, board: Union[int, str]) -> Optional[Dict[str, Any]]:
        pid, function, task, watchers, queue, value, ends_ns, lease_ns, updated = _SLOT.unpack_from(
            self._mem, self._index[board] * _SLOT.size)
        if not updated:
            return None
        now = time.monotonic_ns()
        return {
            "pid": pid, "mode": FUNCTIONS[function], "task": TASKS[task] or None,
            "watchers": watchers, "queue": queue, "value": value,
            "remaining_ms": round(max(0, ends_ns - now) / 1e6, 3) if ends_ns else None,
            "lease_ms": round(max(0, lease_ns - now) / 1e6, 3) if lease_ns else None,
        }

    def clear(self, board: Union[int, str]) -> None:
        _SLOT.pack_into(self._mem, self._index[board] * _SLOT.size, 0, 0, 0, 0, 0, 0.0, 0, 0, 0)
