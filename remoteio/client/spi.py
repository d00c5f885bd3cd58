"""Client: an SPI device of a remote Pi with spidev's ``SpiDev`` calls and attributes.

A script moves from a local device to a remote one by changing the lines
that open it: ``spi = SpiDev(); spi.open(0, 0)`` becomes
``spi = server.spi(0, 0)``. Every call is one round trip; the object's
settings (``mode``, ``max_speed_hz``...) travel with each of its transfers,
so another client of the same device keeps its own.
"""
from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import BadArgument
from ..protocol.spi import CPHA, CPOL, MAX_TRANSFER, MODE_FLAGS, checked_setting, with_mode_attribute

if TYPE_CHECKING:
    from .client import RemoteServer

Data = Union[bytes, bytearray, Sequence[int]]


def _hex(values: Data, limit: Optional[int] = MAX_TRANSFER) -> str:
    """Bytes as the wire carries them; values must be 0..255 (spidev would keep
    only the low byte: a remote call says so instead)."""
    if isinstance(values, (bytes, bytearray)):
        data = bytes(values)
    else:
        values = list(values)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise BadArgument(f"SPI data must be integers 0..255, not {value!r}")
        data = bytes(values)
    if limit is not None and len(data) > limit:
        # the server bounds it too; saying so here spares a frame it would refuse
        raise BadArgument(f"data must hold 1 to {limit} bytes, not {len(data)} "
                          "(xfer3 and writebytes2 take any length)")
    return data.hex()


def _overrides(speed_hz: int, delay_usecs: int, bits_per_word: int) -> Dict[str, int]:
    """xfer's per-transfer arguments, as the wire names them; 0 (the device's own) left out."""
    fields = {"speed_hz": speed_hz, "delay_usecs": delay_usecs, "transfer_bits": bits_per_word}
    return {name: value for name, value in fields.items() if value}


def _flag(name: str) -> property:
    bit = MODE_FLAGS[name]

    def get(self: "RemoteSPI") -> bool:
        return bool(self._mode_bits & bit)

    def set_(self: "RemoteSPI", value: bool) -> None:
        self._configure(mode_bits=with_mode_attribute(self._mode_bits, name, value))
    return property(get, set_, doc=f"spidev's {name} (a mode bit); set on the Pi at once")


class RemoteSPI:
    """SPI device *device* (chip select) of bus *bus* of a remote Pi
    (``RemoteServer.spi``): spidev's calls, arguments and results. Failures raise
    :exc:`~remoteio.errors.BusError` (``detail`` the errno name: ``EINVAL`` for a
    setting the Pi's controller does not do), :exc:`~remoteio.errors.BadArgument`
    (a length outside 1..4096, a value outside its range),
    :exc:`~remoteio.errors.Forbidden` or :exc:`~remoteio.errors.PinBusy` (a
    connection holds one of the device's header pins)."""

    def __init__(self, server: "RemoteServer", bus: int = 0, device: int = 0, *,
                 mode: Optional[int] = None, max_speed_hz: Optional[int] = None,
                 bits_per_word: Optional[int] = None):
        self.server = server
        self.bus, self.device = bus, device
        self.closed = True
        self._mode_bits = 0
        self._bits_per_word = 8
        self._max_speed_hz = 0
        self.open(bus, device)
        if mode is not None:
            self.mode = mode
        if max_speed_hz is not None:
            self.max_speed_hz = max_speed_hz
        if bits_per_word is not None:
            self.bits_per_word = bits_per_word

    # ---- the wire ------------------------------------------------------------------------
    def _settings(self) -> Dict[str, int]:
        return {"mode_bits": self._mode_bits, "bits_per_word": self._bits_per_word,
                "max_speed_hz": self._max_speed_hz}

    def _request(self, op: str, **fields: Any) -> Dict[str, Any]:
        if self.closed:   # as spidev's calls on a closed device (its fd is -1)
            raise OSError(errno.EBADF, f"{os.strerror(errno.EBADF)}: {self!r} is closed")
        return self.server.request("spi_" + op, bus=self.bus, device=self.device,
                                   **self._settings(), **fields)

    def _configure(self, **settings: int) -> None:
        """Apply settings on the Pi now (as spidev's ioctl does); keep them if it took them."""
        fields = dict(self._settings(), **settings)
        reply = self.server.request("spi_configure", bus=self.bus, device=self.device, **fields)
        self._take(reply["settings"])

    def _take(self, settings: Dict[str, int]) -> None:
        self._mode_bits = settings["mode_bits"]
        self._bits_per_word = settings["bits_per_word"]
        self._max_speed_hz = settings["max_speed_hz"]

    # ---- spidev's life cycle ---------------------------------------------------------------
    def open(self, bus: int, device: int) -> None:
        """Open ``/dev/spidev<bus>.<device>`` on the Pi (its pins are held while open);
        the object takes the device's current settings."""
        if not self.closed:
            self.close()
        self.bus, self.device = bus, device
        reply = self.server.request("spi_configure", bus=bus, device=device)
        self._take(reply["settings"])
        self.closed = False

    def close(self) -> None:
        """Let go of the device (the last connection's close frees its pins); idempotent."""
        if not self.closed:
            self.closed = True
            self.server.request("spi_close", bus=self.bus, device=self.device)

    def __enter__(self) -> "RemoteSPI":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---- settings --------------------------------------------------------------------------
    @property
    def mode(self) -> int:
        """SPI mode 0..3 (CPOL << 1 | CPHA)."""
        return self._mode_bits & (CPOL | CPHA)

    @mode.setter
    def mode(self, value: int) -> None:
        self._configure(mode_bits=with_mode_attribute(self._mode_bits, "mode", value))

    cshigh = _flag("cshigh")
    lsbfirst = _flag("lsbfirst")
    threewire = _flag("threewire")
    loop = _flag("loop")
    no_cs = _flag("no_cs")

    @property
    def bits_per_word(self) -> int:
        return self._bits_per_word

    @bits_per_word.setter
    def bits_per_word(self, value: int) -> None:
        self._configure(bits_per_word=checked_setting("bits_per_word", value))

    @property
    def max_speed_hz(self) -> int:
        return self._max_speed_hz

    @max_speed_hz.setter
    def max_speed_hz(self, value: int) -> None:
        self._configure(max_speed_hz=checked_setting("max_speed_hz", value))

    # ---- transfers ---------------------------------------------------------------------------
    def _xfer(self, op: str, values: Data, speed_hz: int, delay_usecs: int,
              bits_per_word: int) -> List[int]:
        reply = self._request(op, data=_hex(values), **_overrides(speed_hz, delay_usecs,
                                                                  bits_per_word))
        return list(bytes.fromhex(reply["data"]))

    def xfer(self, values: Data, speed_hz: int = 0, delay_usecs: int = 0,
             bits_per_word: int = 0) -> Union[List[int], Tuple[int, ...]]:
        """One transfer of 1..4096 bytes (full duplex): the bytes read (a tuple
        if *values* was one, as spidev)."""
        rx = self._xfer("xfer", values, speed_hz, delay_usecs, bits_per_word)
        return tuple(rx) if isinstance(values, tuple) else rx

    def xfer2(self, values: Data, speed_hz: int = 0, delay_usecs: int = 0,
              bits_per_word: int = 0) -> Union[List[int], Tuple[int, ...]]:
        """One transfer with CS held active throughout (the one gpiozero uses)."""
        rx = self._xfer("xfer2", values, speed_hz, delay_usecs, bits_per_word)
        return tuple(rx) if isinstance(values, tuple) else rx

    def xfer3(self, values: Data, speed_hz: int = 0, delay_usecs: int = 0,
              bits_per_word: int = 0) -> Tuple[int, ...]:
        """Any length, as spidev's xfer3: blocks of 4096 bytes (CS released between
        them), sent in one pipelined write; a tuple of the bytes read."""
        blocks = self._blocks(values)
        fields = dict(bus=self.bus, device=self.device, **self._settings(),
                      **_overrides(speed_hz, delay_usecs, bits_per_word))
        replies = self._pipeline([("spi_xfer2", dict(fields, data=b)) for b in blocks])
        return tuple(b for reply in replies for b in bytes.fromhex(reply["data"]))

    def readbytes(self, length: int) -> List[int]:
        """Read *length* (1..4096) bytes (clocking out zeros)."""
        return list(bytes.fromhex(self._request("readbytes", count=length)["data"]))

    def writebytes(self, values: Data) -> None:
        """Write 1..4096 bytes (what comes back is dropped)."""
        self._request("writebytes", data=_hex(values))

    def writebytes2(self, values: Data) -> None:
        """Write any number of bytes, in blocks of 4096 (spidev's writebytes2)."""
        fields = dict(bus=self.bus, device=self.device, **self._settings())
        self._pipeline([("spi_writebytes", dict(fields, data=b)) for b in self._blocks(values)])

    def _blocks(self, values: Data) -> List[str]:
        data = bytes.fromhex(_hex(values, None))
        if not data:
            raise BadArgument("data must hold at least 1 byte")
        return [data[i:i + MAX_TRANSFER].hex() for i in range(0, len(data), MAX_TRANSFER)]

    def _pipeline(self, requests: List[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
        if self.closed:
            raise OSError(errno.EBADF, f"{os.strerror(errno.EBADF)}: {self!r} is closed")
        return self.server.request_pipeline(requests)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"mode {self.mode}, {self._max_speed_hz} Hz"
        return f"<RemoteSPI /dev/spidev{self.bus}.{self.device} of {self.server!r} ({state})>"
