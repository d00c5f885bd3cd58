"""The SPI worker: one process owns one SPI device (a bus and chip select) and runs its calls in order.

A :class:`~.busworker.BusWorker` (see there: started on first use, probed,
a hung transfer's worker replaced), key ``("spi", bus, device)``; who has
the device open is the router's to know (:mod:`.spiusers`).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .busworker import BusWorker
from .channel import Channel
from .messages import Task
from .spibus import SpiDevice, open_spi


class SPIWorker(BusWorker):
    def __init__(self, device: SpiDevice, tasks: Channel, replies: Channel):
        super().__init__(tasks, replies)
        self.device = device

    def perform(self, task: Task) -> Optional[Dict[str, Any]]:
        return self.device.perform(task.op, task.args)

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
