"""A pin worker: the process that owns one header pin and runs its tasks
(a :class:`~.pinmachine.PinMachine` in a :class:`~.worker.Worker`)."""
from __future__ import annotations

from .backends import Backend
from .channel import Channel
from .config import PinRule
from .driver import PinDriver
from .pinmachine import PinMachine
from .status import StatusTable
from .worker import Worker

__all__ = ["PinMachine", "PinWorker"]


class PinWorker(PinMachine, Worker):
    """The worker process of one header pin: a :class:`PinMachine` in a :class:`Worker`."""

    def __init__(self, board: int, bcm: int, mode: str, backend: Backend, status: StatusTable,
                 tasks: Channel, replies: Channel, rule: PinRule = PinRule(),
                 max_queue: int = 1000):
        Worker.__init__(self, tasks, replies)
        PinMachine.__init__(self, board, PinDriver(backend, bcm, self._on_edge), mode, status,
                            rule, max_queue)

    def __str__(self) -> str:
        return f"pin {self.board}"
