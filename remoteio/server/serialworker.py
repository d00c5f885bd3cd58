"""The serial worker: one process owns one serial port, pushes what arrives, writes what it is sent.

A :class:`~.busworker.BusWorker` beside the I2C and SPI ones: started by
the pool on the port's first use, probed and replaced like the others. Its
``select`` waits on the tty's descriptor (:meth:`SerialWorker.event_fds`):
no helper thread, nothing spins. What the tty gives is pushed at once as a
``serial_data`` event (at most :data:`~remoteio.protocol.serial.CHUNK`
bytes each, a per-port ``seq`` and the byte ``offset`` of its first byte)
to every connection that opened the port; with none, the last
:data:`BACKLOG` bytes are kept for the next to open it and older ones are
dropped and counted (``unheard``). While the server is slow to take the worker's
output the worker stops reading, so the tty's own buffer (and its flow
control, if any) holds the rest: the worker never drops data it read.
"""
from __future__ import annotations

import errno
import logging
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from ..errors import BadArgument, BusError, NotSupported, ServerError
from ..protocol import writing
from ..protocol.serial import CHUNK, encode_data
from .busworker import BusWorker
from .channel import Channel
from .messages import Gone, Task
from .serialport import SimDevice, TtyPort, open_port

log = logging.getLogger(__name__)

#: bytes of output waiting for the server before the worker stops reading the tty
READ_PAUSE = 256 << 10
#: bytes kept while no connection has the port open, for the next to open it
#: (as a tty's buffer keeps what came before a program opened it); past it the
#: oldest are dropped and counted (``unheard``)
BACKLOG = 64 << 10
#: how often a waiting ``serial_flush`` looks at the tty's output queue (the
#: kernel tells no descriptor when a tty's output has drained)
FLUSH_POLL = 0.002


class _Write:
    __slots__ = ("seq", "id_json", "data", "done", "deadline")

    def __init__(self, seq: int, id_json: str, data: bytes, deadline: float):
        self.seq, self.id_json, self.data = seq, id_json, memoryview(data)
        self.done, self.deadline = 0, deadline


class SerialWorker(BusWorker):
    def __init__(self, name: str, port: TtyPort, device: Optional[SimDevice],
                 tasks: Channel, replies: Channel):
        super().__init__(tasks, replies)
        self.name = name
        self.port = port
        self.device = device
        self.receivers: Set[int] = set()
        self.seq = 0                 # serial_data events sent
        self.offset = 0              # bytes read from the port
        self.unheard = 0             # bytes dropped while no connection had the port open
        self.backlog = bytearray()   # what came while nobody listened, from backlog_offset
        self.backlog_offset = 0
        self.hung_up = False
        self.writes: Deque[_Write] = deque()
        self.flushes: List[Tuple[int, str, float]] = []
        self._ops: Dict[str, Callable[[Task], Optional[Dict[str, Any]]]] = {
            "serial_open": self._open, "serial_close": self._close,
            "serial_write": self._write, "serial_configure": self._configure,
            "serial_reset": self._reset, "serial_flush": self._flush_request}

    # ---- messages ------------------------------------------------------------------
    def perform(self, task: Task) -> Optional[Dict[str, Any]]:
        method = self._ops.get(task.op)
        if method is None:   # validation lets only the whitelist through
            raise BadArgument(f"serial port {self.name}: no operation {task.op!r}")
        return method(task)

    def failure(self, exc: Exception) -> Optional[ServerError]:
        return self._fail(exc) if isinstance(exc, OSError) else None

    def other(self, message: Any) -> None:
        if isinstance(message, Gone):
            self.receivers.discard(message.conn)

    def _open(self, task: Task) -> None:
        if task.args.get("baudrate") is not None:
            self._set_baudrate(task.args["baudrate"])
        self.receivers.add(task.conn)
        self.reply(task.seq, writing.ok(task.id_json, {
            "port": self.name, "baudrate": self.port.baudrate, "seq": self.seq,
            "offset": self.offset, "unheard": self.unheard,
            # where what this connection receives starts (a gap from what it had: lost)
            "from": self.backlog_offset if self.backlog else self.offset}))
        backlog, self.backlog = self.backlog, bytearray()
        for start in range(0, len(backlog), CHUNK):   # the first to open gets what came before
            self._push(self.backlog_offset + start, bytes(backlog[start:start + CHUNK]))
        return None

    def _close(self, task: Task) -> Dict[str, Any]:
        self.receivers.discard(task.conn)
        return {}

    def _configure(self, task: Task) -> Dict[str, Any]:
        self._set_baudrate(task.args["baudrate"])
        return {"baudrate": self.port.baudrate}

    def _set_baudrate(self, baudrate: int) -> None:
        try:
            self.port.set_baudrate(baudrate)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise BadArgument(f"serial port {self.name}: baudrate {baudrate} is refused "
                                  f"by its driver ({exc.strerror or exc})") from None
            raise

    def _write(self, task: Task) -> None:
        self.writes.append(_Write(task.seq, task.id_json, task.args["data"],
                                  time.monotonic() + task.args["timeout"]))
        self.service_writable(self.port.fileno())
        return None   # answered when the tty has taken every byte

    def _reset(self, task: Task) -> Dict[str, Any]:
        self.port.reset(task.args["input"], task.args["output"])
        if task.args["output"]:   # what had not reached the tty is dropped with it
            while self.writes:
                self._answer_write(self.writes.popleft())
        return {}

    def _flush_request(self, task: Task) -> None:
        self.flushes.append((task.seq, task.id_json, time.monotonic() + task.args["timeout"]))
        self._check_flushes()
        return None

    # ---- the tty -----------------------------------------------------------------------
    def event_fds(self) -> Tuple[int, ...]:
        device = self.device.fds() if self.device is not None else ()
        if self.hung_up or self.replies.pending > READ_PAUSE:
            return device
        return (self.port.fileno(),) + device

    def write_fds(self) -> Tuple[int, ...]:
        return (self.port.fileno(),) if self.writes and not self.hung_up else ()

    def service(self, fd: int) -> None:
        if fd != self.port.fileno():
            self.device.service(fd)   # type: ignore[union-attr]  (only a device's fds else)
            return
        try:
            data = self.port.read(CHUNK)
        except OSError as exc:
            self._hang_up(exc)
            return
        if not data:
            return
        offset, self.offset = self.offset, self.offset + len(data)
        if self.receivers:
            self._push(offset, data)
            return
        if not self.backlog:
            self.backlog_offset = offset
        self.backlog += data
        over = len(self.backlog) - BACKLOG
        if over > 0:
            del self.backlog[:over]
            self.backlog_offset += over
            self.unheard += over

    def _push(self, offset: int, data: bytes) -> None:
        self.seq += 1
        self.event(tuple(self.receivers), writing.event("serial_data", {
            "port": self.name, "seq": self.seq, "offset": offset, "data": encode_data(data)}))

    def service_writable(self, fd: int) -> None:
        writes = self.writes
        while writes:
            head = writes[0]
            try:
                sent = self.port.write(head.data[head.done:])
            except OSError as exc:
                writes.popleft()
                self.reply(head.seq, writing.error_from(self._fail(exc), head.id_json))
                continue
            head.done += sent
            if head.done < len(head.data):
                return   # the tty is full: select says when it has room
            self._answer_write(writes.popleft())
        self._check_flushes()

    def _answer_write(self, write: _Write) -> None:
        self.reply(write.seq, writing.ok(write.id_json, {"written": write.done}))

    def _hang_up(self, exc: OSError) -> None:
        self.hung_up = True
        failure = self._fail(exc)
        log.warning("%s", failure.message)
        self.event(tuple(self.receivers), writing.event("serial_error", {
            "port": self.name, "message": failure.message, "detail": failure.detail}))

    def _fail(self, exc: OSError) -> BusError:
        name = errno.errorcode.get(exc.errno or 0, "EIO")
        return BusError(f"serial port {self.name}: {exc.strerror or exc} ({name})", detail=name)

    # ---- the clock: writes and flushes that wait ---------------------------------------
    def next_wake(self) -> Optional[float]:
        times = [w.deadline for w in self.writes]
        if self.flushes:
            times.append(time.monotonic() + FLUSH_POLL)
        if self.device is not None:
            wake = self.device.next_wake()
            if wake is not None:
                times.append(wake)
        return min(times) if times else None

    def advance(self) -> None:
        if self.device is not None:
            self.device.advance()
        now = time.monotonic()
        while self.writes and self.writes[0].deadline <= now:
            late = self.writes.popleft()
            self.reply(late.seq, writing.error(
                late.id_json, "bus_error", f"serial port {self.name}: wrote {late.done} of "
                f"{len(late.data)} bytes before the write timeout (ETIMEDOUT)", "ETIMEDOUT"))
        self._check_flushes()

    def _check_flushes(self) -> None:
        if not self.flushes:
            return
        try:
            drained = not self.writes and self.port.out_waiting() == 0
        except OSError:
            drained = True   # a port that hung up has nothing left to send
        now, waiting = time.monotonic(), []
        for seq, id_json, deadline in self.flushes:
            if drained:
                self.reply(seq, writing.ok(id_json))
            elif now >= deadline:
                self.reply(seq, writing.error(id_json, "bus_error", f"serial port {self.name}: "
                                              "output not sent before the timeout (ETIMEDOUT)",
                                              "ETIMEDOUT"))
            else:
                waiting.append((seq, id_json, deadline))
        self.flushes = waiting

    def make_safe(self) -> None:
        for close in (self.port.close, self.device.close if self.device else None):
            if close is not None:
                try:
                    close()
                except OSError:
                    pass

    def __str__(self) -> str:
        return f"serial port {self.name}"


def run_serial_worker(key: Any, task_fd: int, reply_fd: int, settings: Dict[str, Any]) -> None:
    """A serial port's worker process, from the zygote's fork to its end."""
    from .spawn import worker_signals
    worker_signals()
    tasks, replies = Channel(task_fd, reader=True), Channel(reply_fd, reader=False)
    name = settings["name"]
    try:
        port, device = open_port(settings)
    except (OSError, ImportError) as exc:
        # answer what comes with the reason, until the server lets go of us
        log.error("serial port %s (%s) cannot be opened: %s", name, settings["device"], exc)
        _Unopened(name, exc, tasks, replies).run()
        return
    SerialWorker(name, port, device, tasks, replies).run()


class _Unopened(BusWorker):
    """A port whose device would not open: every request fails with why."""

    def __init__(self, name: str, exc: BaseException, tasks: Channel, replies: Channel):
        super().__init__(tasks, replies)
        self.name = name
        if isinstance(exc, ImportError):
            self.reason: ServerError = NotSupported(
                f"serial port {name}: pyserial is not installed on the server "
                "(pip install 'remoteio[pi]')")
        else:
            code = errno.errorcode.get(getattr(exc, "errno", 0) or 0, "EIO")
            self.reason = BusError(f"serial port {name} cannot be opened: "
                                   f"{getattr(exc, 'strerror', None) or exc} ({code})",
                                   detail=code)

    def perform(self, task: Task) -> Optional[Dict[str, Any]]:
        raise self.reason

    def __str__(self) -> str:
        return f"serial port {self.name}"
