"""The base of every bus kind's worker (I2C, SPI, serial): one process owns
one bus device and answers its calls in order.

A worker kind beside the pin worker (see :mod:`.worker`): started by the
pool on a bus's first use, probed like the others (a call stuck in the
kernel is a hung worker: the pool kills it, its requests get
``worker_failed``, and no other bus or pin waits for it).

A bus kind subclasses :class:`BusWorker` and must provide :meth:`perform`
(one validated request: the reply's fields) and ``__str__`` (the bus's name,
as its messages say it). It may override :meth:`failure` (an exception it
can name for the wire), :meth:`other` (messages other than a task, a probe
or a stop), and any of :class:`~.worker.Worker`'s (``make_safe``,
``event_fds``...). Every task gets exactly one reply: its fields, the wire
error it raised, or, for a bug, an ``error`` naming the call and the bus
(the traceback goes to the server log) while the worker keeps serving.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from ..errors import ServerError
from ..protocol import writing
from .messages import Pong, Probe, Stop, Task
from .worker import Worker

log = logging.getLogger(__name__)


class BusWorker(Worker):
    """A worker that answers each :class:`~.messages.Task` with :meth:`perform`."""

    # ---- what a bus kind provides ----------------------------------------------------
    def perform(self, task: Task) -> Optional[Dict[str, Any]]:
        """The reply's fields for *task* (raise a :class:`~remoteio.errors.ServerError`
        for a wire error); None: the kind answers it itself (at once or later)."""
        raise NotImplementedError

    def failure(self, exc: Exception) -> Optional[ServerError]:
        """The wire error for an exception :meth:`perform` let out that is not a
        ServerError; None (the default): a bug, logged and answered as ``error``."""
        return None

    def other(self, message: Any) -> None:
        """A message that is not a task, a probe or a stop (Gone, MakeSafe,
        Settings); by default ignored: a bus keeps no per-connection state."""

    # ---- the Worker contract -----------------------------------------------------------
    def handle(self, message: Any) -> None:
        if isinstance(message, Task):
            self.answer(message)
        elif isinstance(message, Probe):
            self.message(Pong())
        elif isinstance(message, Stop):
            self.running = False
        else:
            self.other(message)

    def answer(self, task: Task) -> None:
        """Run *task*; reply with its fields or its error."""
        try:
            result = self.perform(task)
        except ServerError as exc:
            self.reply(task.seq, writing.error_from(exc, task.id_json))
            return
        except Exception as exc:
            named = self.failure(exc)
            if named is None:   # a bug: answer it, log it, and keep the bus
                log.exception("%s: %s failed", self, task.op)
                named = ServerError(f"{self}: {task.op} failed; see the server log")
            self.reply(task.seq, writing.error_from(named, task.id_json))
            return
        if result is not None:
            self.reply(task.seq, writing.ok(task.id_json, result))
