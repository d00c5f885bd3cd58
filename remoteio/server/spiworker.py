"""The SPI worker: one process owns one SPI device (a bus and chip select) and runs its calls in order.

A worker kind beside the pin and I2C workers (see :mod:`.worker`), key
``("spi", bus, device)``: started by the pool on the device's first use,
probed like the others (a transfer stuck in the kernel is a hung worker: the
pool kills it, its requests get ``worker_failed``, and nothing else waits).
"""
from __future__ import annotations

import logging
from typing import Any, Dict

from ..errors import ServerError
from ..protocol import writing
from .channel import Channel
from .messages import Pong, Probe, Stop, Task
from .spibus import SpiDevice, open_spi
from .worker import Worker

log = logging.getLogger(__name__)


class SPIWorker(Worker):
    def __init__(self, device: SpiDevice, tasks: Channel, replies: Channel):
        super().__init__(tasks, replies)
        self.device = device

    def handle(self, message: Any) -> None:
        if isinstance(message, Task):
            try:
                frame = writing.ok(message.id_json, self.device.perform(message.op, message.args))
            except ServerError as exc:
                frame = writing.error_from(exc, message.id_json)
            except Exception:
                log.exception("%s: %s failed", self.device.name, message.op)
                frame = writing.error_from(ServerError(
                    f"{self.device.name}: {message.op} failed; see the server log"),
                    message.id_json)
            self.reply(message.seq, frame)
        elif isinstance(message, Probe):
            self.message(Pong())
        elif isinstance(message, Stop):
            self.running = False
        # Gone, MakeSafe, Settings: who has the device open is the router's to know

    def make_safe(self) -> None:
        self.device.close()

    def __str__(self) -> str:
        return self.device.name


def run_spi_worker(key: Any, task_fd: int, reply_fd: int, settings: Dict[str, Any]) -> None:
    """An SPI worker's process, from the zygote's fork to its end."""
    from .spawn import worker_signals
    worker_signals()
    tasks, replies = Channel(task_fd, reader=True), Channel(reply_fd, reader=False)
    # the device file opens on the first call: a failure to open is that call's bus_error
    SPIWorker(open_spi(key[1], key[2], settings), tasks, replies).run()
