"""A pin worker's first steps rehearsed in the server before the zygote's fork.

A forked worker shares the zygote's memory until it writes to it. Running
code for the first time writes a lot that running it again does not
(CPython 3.11 specialises bytecode in place; gpiozero and our classes fill
caches and make attributes on first use), and every worker would write the
same pages again, each into its own copy. Rehearsed here, on a
throwaway simulated board (the real board is not touched), those writes are
in memory every worker then shares. A few rounds, because CPython 3.11
specialises a function's bytecode only after it ran about eight times.

>>> rehearse("wait")
True
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from .backends.sim import SimBackend
from .channel import Channel
from .config import PinRule
from .messages import Stop, Task, encode
from .pinworker import PinWorker
from .status import StatusTable

log = logging.getLogger(__name__)

#: what a client usually does first with a pin (board pin 7 = GPIO4 of the throwaway board)
STEPS: Tuple[Tuple[str, Dict[str, Any]], ...] = (
    ("open", {}), ("on", {}), ("off", {}), ("read", {}), ("state", {}), ("close", {}))
_BOARD, _BCM = 7, 4
#: rounds of the steps (CPython 3.11 quickens code after 8 runs)
ROUNDS = 8


def rehearse(mode: str, rounds: int = ROUNDS) -> bool:
    """Run a pin worker through :data:`STEPS` on a throwaway simulated board,
    *rounds* times; False (and a log line) if that failed: the workers then
    start cold."""
    return all([_rehearse_once(mode) for _ in range(rounds)])


def _rehearse_once(mode: str) -> bool:
    backend = SimBackend()
    fds: List[int] = []
    worker: Optional[PinWorker] = None
    try:
        task_r, task_w = os.pipe()
        reply_r, reply_w = os.pipe()
        fds += [task_r, task_w, reply_r, reply_w]
        sender = Channel(task_w, reader=False)
        worker = PinWorker(_BOARD, _BCM, mode, backend, StatusTable(),
                           Channel(task_r, reader=True), Channel(reply_w, reader=False), PinRule())
        sender.send([encode(Task(n, 1, str(n), op, dict(args), False))
                     for n, (op, args) in enumerate(STEPS)] + [encode(Stop())])
        worker.run()
        replies = Channel(reply_r, reader=True).receive()
        return bool(replies)
    except Exception:  # a cold start is slower and bigger, not wrong
        log.warning("the pin worker rehearsal failed; workers start cold", exc_info=True)
        return False
    finally:
        if worker is not None:
            worker.close()
        for fd in fds:
            os.close(fd)
        backend.close()
