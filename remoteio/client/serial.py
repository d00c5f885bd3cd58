"""Client: a serial port of a remote Pi with pyserial's ``Serial`` methods, its data pushed as it arrives.

``ser = serial.Serial("/dev/ttyAMA0", 115200, timeout=1)`` becomes
``ser = server.serial("serial0", 115200, timeout=1)``. The server pushes
what the port receives (``serial_data`` events); this object keeps it in a
bounded local buffer that ``read``/``read_until``/``readline`` take from,
honouring ``timeout`` as pyserial does (None: wait for ever; 0: what is
there; otherwise at most that many seconds). ``when_data`` runs on the
client's callback thread when bytes arrive. Bytes that were lost on the way
(a slow connection, a full buffer, a reconnect) are counted in
:attr:`RemoteSerial.bytes_lost`, never hidden.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Union

from ..errors import LinkError, RemoteIOError
from ..protocol.serial import MAX_WRITE, decode_data, encode_data

if TYPE_CHECKING:
    from .client import RemoteServer
    from .link import Call, Link

log = logging.getLogger(__name__)

#: bytes a port keeps for its reader by default (past it, arriving bytes are lost, counted)
BUFFER_SIZE = 1 << 20
#: events kept for a port opened by its device path until its name is known
_PENDING = 64
Bytes = Union[bytes, bytearray, memoryview]


class RemoteSerial:
    """Serial port *port* of a remote Pi (``RemoteServer.serial``): pyserial's
    ``read``, ``read_until``, ``readline``, ``write``, ``in_waiting``,
    ``reset_input_buffer``, ``flush``, ``close``, ``baudrate``, ``timeout``.
    *baudrate* None keeps the port's (its configuration's, or the last one set).
    Failures raise :exc:`~remoteio.errors.BusError` (``detail``: the errno
    name), :exc:`~remoteio.errors.BadArgument` or :exc:`~remoteio.errors.Forbidden`."""

    def __init__(self, server: "RemoteServer", port: str = "serial0",
                 baudrate: Optional[int] = None, timeout: Optional[float] = None, *,
                 write_timeout: Optional[float] = None, buffer_size: int = BUFFER_SIZE):
        self.server = server
        self.port = port               # as asked; .name is what the server calls it
        self.name = port
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.buffer_size = int(buffer_size)
        self._baudrate = baudrate
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._next_offset: Optional[int] = None
        self._last_seq: Optional[int] = None
        self._when_data: Optional[Callable[..., Any]] = None
        self.bytes_received = 0
        #: bytes that never reached this buffer: gaps in the server's offsets
        #: (a slow connection's dropped events, a reconnect) and a full buffer
        self.bytes_lost = 0
        #: serial_data events missing (gaps in their seq)
        self.events_lost = 0
        #: bytes the port received while no connection had it open (the server's count)
        self.unheard = 0
        #: times the port's worker was replaced and the port opened again
        self.reopened = 0
        self.is_open = False
        self.open()

    # ---- opening --------------------------------------------------------------------
    def open(self) -> None:
        """Start receiving the port's data (done by the constructor)."""
        if self.is_open:
            return
        ports = self.server.serial_ports
        ports.add(self)
        try:
            reply = self.server.request("serial_open", **self._open_fields())
        except BaseException:
            ports.remove(self)
            raise
        self.apply_open_reply(reply)
        ports.named(self, reply["port"])
        self.is_open = True

    def _open_fields(self) -> Dict[str, Any]:
        return {"port": self.name, "baudrate": self._baudrate}

    def apply_open_reply(self, reply: Dict[str, Any]) -> None:
        """What ``serial_open`` answered (the first open, or one after a reconnect:
        bytes between what this port had and where the server starts again are lost)."""
        self._baudrate = reply["baudrate"]
        self.unheard = reply.get("unheard", 0)
        start = reply.get("from")
        with self._cond:
            if self._next_offset is not None and start is not None and start > self._next_offset:
                self.bytes_lost += start - self._next_offset
                self._next_offset = start

    def close(self) -> None:
        """Stop receiving; what the buffer holds can still be read."""
        if not self.is_open:
            return
        self.is_open = False
        last = self.server.serial_ports.remove(self)
        with self._cond:
            self._cond.notify_all()
        if not last:
            return   # another port object of this client still receives its data
        try:
            self.server.request("serial_close", port=self.name)
        except Exception as exc:  # the connection is gone: so is the server's side
            log.debug("serial_close of %s: %s", self.name, exc)

    def __enter__(self) -> "RemoteSerial":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---- the line ---------------------------------------------------------------------
    @property
    def baudrate(self) -> Optional[int]:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._baudrate = self.server.request("serial_configure", port=self.name,
                                             baudrate=value)["baudrate"]

    # ---- reading (from the local buffer) -----------------------------------------------
    @property
    def in_waiting(self) -> int:
        """Bytes received and not read yet."""
        return len(self._buffer)

    def read(self, size: int = 1) -> bytes:
        """*size* bytes, or fewer if ``timeout`` passes first."""
        deadline = self._deadline()
        with self._cond:
            while len(self._buffer) < size and self._wait(deadline):
                pass
            return self._take(min(size, len(self._buffer)))

    def read_until(self, expected: bytes = b"\n", size: Optional[int] = None) -> bytes:
        """Up to and including *expected*, or *size* bytes, or what came before ``timeout``."""
        deadline, start = self._deadline(), 0
        with self._cond:
            while True:
                found = self._buffer.find(expected, start)
                if found >= 0:
                    end = found + len(expected)
                    return self._take(end if size is None else min(end, size))
                if size is not None and len(self._buffer) >= size:
                    return self._take(size)
                start = max(0, len(self._buffer) - len(expected) + 1)
                if not self._wait(deadline):
                    return self._take(len(self._buffer) if size is None
                                      else min(size, len(self._buffer)))

    def readline(self, size: int = -1) -> bytes:
        return self.read_until(b"\n", None if size is None or size < 0 else size)

    def readlines(self) -> List[bytes]:
        """Lines until ``timeout`` passes with no newline (pyserial's: needs a timeout)."""
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            if not line.endswith(b"\n"):
                return lines

    def read_all(self) -> bytes:
        with self._cond:
            return self._take(len(self._buffer))

    def _deadline(self) -> Optional[float]:
        return None if self.timeout is None else time.monotonic() + self.timeout

    def _wait(self, deadline: Optional[float]) -> bool:
        """Wait for more bytes (under the lock); False when the time is up or the port closed."""
        if not self.is_open:
            return False
        if deadline is None:
            self._cond.wait()
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self._cond.wait(left)
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def reset_input_buffer(self) -> None:
        """Drop what the port received and nobody read: on the Pi and here."""
        self.server.request("serial_reset", port=self.name, input=True, output=False)
        with self._cond:
            self._buffer.clear()

    def reset_output_buffer(self) -> None:
        """Drop what was written and not sent yet (on the Pi)."""
        self.server.request("serial_reset", port=self.name, input=False, output=True)

    # ---- writing (acknowledged) ---------------------------------------------------------
    def write(self, data: Bytes) -> int:
        """Send *data*; returns once the Pi's tty has taken every byte (its byte count)."""
        if isinstance(data, str):
            raise TypeError("unicode strings are not supported, please encode to bytes")
        data = bytes(data)
        if not data:
            return 0
        timeout = 10.0 if self.write_timeout is None else float(self.write_timeout)
        requests = [("serial_write", {"port": self.name, "timeout": timeout,
                                      "data": encode_data(data[n:n + MAX_WRITE])})
                    for n in range(0, len(data), MAX_WRITE)]
        replies = self.server.request_pipeline(requests, timeout + self.server.timeout)
        return sum(reply["written"] for reply in replies)

    def flush(self) -> None:
        """Wait until everything written has left the Pi's tty."""
        timeout = 10.0 if self.write_timeout is None else float(self.write_timeout)
        self.server.live_link().call("serial_flush", {"port": self.name, "timeout": timeout}) \
            .result(timeout + self.server.timeout)

    # ---- pushed data (the client's reader thread) ---------------------------------------
    when_data = property(
        lambda self: self._when_data,
        lambda self, callback: setattr(self, "_when_data", callback),
        doc="Called with this port on the client's callback thread when bytes arrive.")

    def handle_event(self, message: Dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "serial_data":
            self._data(message)
        elif kind == "worker_failed":
            # a fresh worker starts from offset 0; open it again (nobody waits for the reply)
            log.warning("server: %s; opening %s again", message.get("message"), self.name)
            self._next_offset = self._last_seq = None
            if self.is_open:
                self.reopened += 1
                call = self.server.live_link().call("serial_open", self._open_fields())
                self.server.dispatch(self._reopened, call)   # not on the reader thread
        elif kind == "serial_error":
            log.warning("server: %s", message.get("message"))

    def _reopened(self, call: "Call") -> None:
        """The answer to opening the port again (on the callback thread)."""
        try:
            self.apply_open_reply(call.result(self.server.timeout))
        except RemoteIOError as exc:
            log.warning("opening %s again failed: %s", self.name, exc)

    def _data(self, message: Dict[str, Any]) -> None:
        data, offset, seq = decode_data(message["data"]), message["offset"], message["seq"]
        with self._cond:
            if self._next_offset is not None and offset > self._next_offset:
                self.bytes_lost += offset - self._next_offset
            if self._last_seq is not None and seq > self._last_seq + 1:
                self.events_lost += seq - self._last_seq - 1
            self._next_offset, self._last_seq = offset + len(data), seq
            room = self.buffer_size - len(self._buffer)
            if room < len(data):
                self.bytes_lost += len(data) - room
                data = data[:max(0, room)]
            self._buffer += data
            self.bytes_received += len(data)
            self._cond.notify_all()
        callback = self._when_data
        if callback is not None and data:
            self.server.dispatch(callback, self)

    def reopen(self, link: "Link", timeout: float) -> None:
        """Open the port again on a new connection (a reconnect): the bytes
        between are counted as lost, from the server's answer."""
        if self.is_open:
            self.apply_open_reply(link.call("serial_open", self._open_fields()).result(timeout))
            self.reopened += 1

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<RemoteSerial {self.name} {state} {self._baudrate} baud of {self.server!r}>"


class SerialPorts:
    """A client's open ports, by the server's name for them: where events go."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: Dict[str, List[RemoteSerial]] = defaultdict(list)
        self._pending: Dict[str, Deque[Dict[str, Any]]] = {}   # events for names not known yet

    def add(self, port: RemoteSerial) -> None:
        with self._lock:
            self._by_name[port.name].append(port)
            self._pending.pop(port.name, None)   # for an earlier port of that name: stale

    def named(self, port: RemoteSerial, name: str) -> None:
        """The server calls *port* *name* (it was opened by its device path)."""
        with self._lock:
            if name == port.name:
                return
            self._by_name[port.name].remove(port)
            port.name = name
            self._by_name[name].append(port)
            early = self._pending.pop(name, ())
        for message in early:
            port.handle_event(message)

    def remove(self, port: RemoteSerial) -> bool:
        """Forget *port*; True if no other port of this client receives its data."""
        with self._lock:
            if port in self._by_name.get(port.name, ()):
                self._by_name[port.name].remove(port)
            return not self._by_name.get(port.name)

    def handle(self, message: Dict[str, Any]) -> None:
        name = message.get("port")
        with self._lock:
            ports = list(self._by_name.get(name, ()))
            if not ports:
                self._pending.setdefault(name, deque(maxlen=_PENDING)).append(message)
                return
        for port in ports:
            port.handle_event(message)

    def reopen(self, link: "Link", timeout: float) -> None:
        """A reconnect: every open port opens again on *link* (refusals logged;
        a LinkError, no answer, raised)."""
        with self._lock:
            ports = [p for group in self._by_name.values() for p in group]
        for port in ports:
            try:
                port.reopen(link, timeout)
            except LinkError:
                raise   # no answer: the caller drops this link and tries again
            except RemoteIOError as exc:
                log.warning("after reconnecting, opening %s failed: %s", port.name, exc)
