"""A serial worker's port: a tty opened by pyserial, and the simulated devices behind a pty.

:class:`TtyPort` opens the tty with pyserial (imported in the serial worker
only) and is then read and written through its non-blocking descriptor, so
the worker's ``select`` waits on it and no call blocks. A simulated device
(``sim:echo``, ``sim:script``) is a model on the master side of a pty pair
whose slave the worker opens as it would a real tty: the same worker, the
same termios, the same event path.
"""
from __future__ import annotations

import logging
import os
import termios
import time
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)


class TtyPort:
    """*device* opened by pyserial (raw mode, 8N1, *baudrate*), used through its fd."""

    def __init__(self, device: str, baudrate: int):
        import serial  # the serial worker's import only: the server needs none of it
        self.device = device
        try:
            self.serial = serial.Serial(device, baudrate=baudrate, timeout=0, write_timeout=0)
        except ValueError as exc:       # pyserial's word for a setting the driver refuses
            raise OSError(22, str(exc)) from None   # EINVAL

    def fileno(self) -> int:
        return self.serial.fileno()

    def read(self, size: int) -> bytes:
        """What the tty has, up to *size* bytes (b"" for none yet); OSError when it hung up."""
        try:
            data = os.read(self.fileno(), size)
        except BlockingIOError:
            return b""
        if not data:
            raise OSError(5, "the device hung up")  # EIO: its other end is gone
        return data

    def write(self, data: memoryview) -> int:
        """Bytes the tty took now (0 when its buffer is full)."""
        try:
            return os.write(self.fileno(), data)
        except BlockingIOError:
            return 0

    def set_baudrate(self, baudrate: int) -> None:
        try:
            self.serial.baudrate = baudrate
        except ValueError as exc:
            raise OSError(22, str(exc)) from None

    @property
    def baudrate(self) -> int:
        return self.serial.baudrate

    def out_waiting(self) -> int:
        """Bytes written and not yet sent by the tty."""
        return self.serial.out_waiting

    def reset(self, input: bool, output: bool) -> None:
        try:
            if input:
                self.serial.reset_input_buffer()
            if output:
                self.serial.reset_output_buffer()
        except termios.error as exc:   # tcflush's own error type, not an OSError
            raise OSError(*exc.args) from None

    def close(self) -> None:
        self.serial.close()


class SimDevice:
    """A device on the master side of a pty pair; :attr:`path` is the tty to open."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)   # the worker opens it by its path, as a real tty
        os.set_blocking(self.master, False)
        self.pending = bytearray()   # what the device says and the tty has no room for yet

    def fds(self) -> Tuple[int, ...]:
        return (self.master,)

    def service(self, fd: int) -> None:
        """The port wrote to the device."""
        try:
            self.heard(os.read(self.master, 4096))
        except (BlockingIOError, OSError):
            pass

    def heard(self, data: bytes) -> None:
        """What the device does with bytes the port sent it."""

    def say(self, data: bytes) -> None:
        self.pending += data
        self.send()

    def send(self) -> None:
        while self.pending:
            try:
                sent = os.write(self.master, self.pending)
            except (BlockingIOError, OSError):
                return
            del self.pending[:sent]

    def next_wake(self) -> Optional[float]:
        # the pty had no room: look again soon (only while the port is behind)
        return time.monotonic() + 0.002 if self.pending else None

    def advance(self) -> None:
        self.send()

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class EchoDevice(SimDevice):
    """``sim:echo``: every byte the port sends comes back."""

    def heard(self, data: bytes) -> None:
        self.say(data)


class ScriptDevice(SimDevice):
    """``sim:script``: says its lines in turn, one every *interval_ms*, round and round
    (a GPS talking NMEA); what the port sends it is read and ignored."""

    def __init__(self, script: List[str], interval_ms: float):
        super().__init__()
        self.lines = [line.encode("utf-8") for line in script]
        self.interval = interval_ms / 1000.0
        self.next_line = 0
        self.due = time.monotonic() + self.interval

    def next_wake(self) -> Optional[float]:
        wake = super().next_wake()
        return self.due if wake is None else min(wake, self.due)

    def advance(self) -> None:
        now = time.monotonic()
        if now >= self.due:
            self.say(self.lines[self.next_line])
            self.next_line = (self.next_line + 1) % len(self.lines)
            self.due = max(self.due + self.interval, now)
        super().advance()


def open_port(settings: Dict[str, Any]) -> Tuple[TtyPort, Optional[SimDevice]]:
    """The worker's port (and its simulated device, if the configuration names one)."""
    device, model = settings["device"], None
    if device == "sim:echo":
        model = EchoDevice()
    elif device == "sim:script":
        model = ScriptDevice(settings["script"], settings["interval_ms"])
    try:
        return TtyPort(model.path if model else device, settings["baudrate"]), model
    except BaseException:
        if model is not None:
            model.close()
        raise
