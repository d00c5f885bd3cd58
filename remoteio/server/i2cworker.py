"""The I2C bus worker: one process owns one /dev/i2c-N (or the simulated
chips) and runs its calls in order (a :class:`~.busworker.BusWorker`)."""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from .busworker import BusWorker
from .channel import Channel
from .i2cbus import KernelI2CBus, perform
from .messages import Task
from .simdevices import SimI2CBus

log = logging.getLogger(__name__)


class I2CWorker(BusWorker):
    def __init__(self, number: int, bus: Any, tasks: Channel, replies: Channel):
        super().__init__(tasks, replies)
        self.number = number
        self.bus = bus

    def perform(self, task: Task) -> Optional[Dict[str, Any]]:
        return perform(self.bus, self.number, task.op, task.args)

    def make_safe(self) -> None:
        try:
            self.bus.close()
        except OSError:
            pass

    def __str__(self) -> str:
        return f"I2C bus {self.number}"


def open_i2c(number: int, settings: Dict[str, Any], chips: Any = None) -> Any:
    """The bus a worker runs on: simulated chips (the MCP230xx ones, its own
    and expanders', in the board's shared *chips*: the slots the server gave
    in ``settings["shared"]``), or the kernel's /dev/i2c-N."""
    if settings.get("sim"):
        shared = None
        if chips is not None:
            shared = ({address: chips.attach(index, kind)
                       for address, kind, index in settings["shared"]}
                      if "shared" in settings else chips.models(number))
        return SimI2CBus(tuple(tuple(d) for d in settings["devices"]), shared=shared)
    return KernelI2CBus(number)


def run_i2c_worker(key: Any, task_fd: int, reply_fd: int, settings: Dict[str, Any],
                   chips: Any = None) -> None:
    """An I2C bus worker's process, from the zygote's fork to its end."""
    from .spawn import worker_signals
    worker_signals()
    tasks, replies = Channel(task_fd, reader=True), Channel(reply_fd, reader=False)
    number = key[1]
    try:
        bus = open_i2c(number, settings, chips)
    except OSError as exc:
        # answer what comes with the reason, until the server lets go of us
        log.error("I2C bus %d cannot be opened: %s", number, exc)
        bus = _Unopened(number, exc)
    I2CWorker(number, bus, tasks, replies).run()


class _Unopened:
    """A bus whose device file would not open: every call fails with why."""

    def __init__(self, number: int, exc: OSError):
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any) -> Any:
            raise self.exc
        return fail

    def close(self) -> None:
        pass
