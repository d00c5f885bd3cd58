"""The simulated SPI devices: an MCP3008 ADC per its datasheet, behind a simulated spidev.

:class:`SimSpiDev` has the calls and attributes of spidev's ``SpiDev`` and
takes settings as a Pi's SPI0 controller does (its kernel driver,
spi-bcm2835: modes 0-3, ``cshigh``, ``no_cs``; 8 bits per word; ``lsbfirst``,
``threewire`` and ``loop`` are refused with EINVAL), so the SPI worker runs
the same code over it as over ``/dev/spidevB.C``, and tests run the same
calls locally to compare with what a server answers.

:class:`MCP3008` answers the chip's own protocol bit by bit (Microchip
DS21295, section 5 and figure 6-1): after CS falls, leading zeros, a start
bit, SGL/DIFF and D2..D0; then one clock of sampling, a null bit, the 10-bit
result MSB first, the result again LSB first (B1..B9) while CS stays low,
then zeros. Bits it does not drive read 0 (MISO floats; GPIO9 pulls down).

>>> spi = SimSpiDev(MCP3008())
>>> spi.chip.volts[0] = 1.65
>>> spi.open(0, 0)
>>> rx = spi.xfer2([0x01, 0x80, 0x00])          # single-ended, channel 0
>>> (rx[1] & 0x03) << 8 | rx[2]                 # 1024 * 1.65 / 3.3
512
"""
from __future__ import annotations

import errno
import os
import time
from typing import Any, List, Optional, Sequence, Tuple

from ..protocol.spi import (CPHA, CPOL, CS_HIGH, LSB_FIRST, LOOP, MAX_TRANSFER, NO_CS, THREE_WIRE,
                            checked_setting, with_mode_attribute)

#: the mode bits a Pi's SPI0 controller takes (spi-bcm2835's BCM2835_SPI_MODE_BITS)
CONTROLLER_MODE_BITS = CPOL | CPHA | CS_HIGH | NO_CS
#: what a freshly opened device says (a Pi's spidev nodes: spi-max-frequency 125 MHz)
DEFAULT_SPEED_HZ = 125_000_000
#: transfers a simulated device remembers for ``sim history``
HISTORY = 1000


def _einval(what: str) -> OSError:
    return OSError(errno.EINVAL, f"{os.strerror(errno.EINVAL)} ({what})")


class MCP3008:
    """8-channel 10-bit ADC. ``volts`` are the inputs CH0..CH7 (tests set them);
    the result is ``1024 * Vin / Vref`` (datasheet equation 4-1), clamped to
    0..1023; differential pairs per table 5-2 (IN+ minus IN-)."""

    def __init__(self, vref: float = 3.3):
        self.vref = vref
        self.volts = [0.0] * 8

    def code(self, single: bool, channel: int) -> int:
        """The conversion result for a request (SGL/DIFF, D2..D0)."""
        if single:
            vin = self.volts[channel]
        else:
            low = channel & 6
            plus, minus = (low + 1, low) if channel & 1 else (low, low + 1)
            vin = self.volts[plus] - self.volts[minus]
        return max(0, min(1023, int(1024 * vin / self.vref)))

    def exchange(self, mosi: Sequence[int]) -> List[int]:
        """One chip-select period, bit by bit as on the wire: MOSI bits in, MISO bits out."""
        out: List[int] = []
        after_start = -1          # clocks since the start bit (-1: none yet)
        command: List[int] = []
        result = 0
        for bit in mosi:
            if after_start < 0:
                out.append(0)     # DOUT high-impedance until the null bit
                if bit:
                    after_start = 0
                continue
            after_start += 1
            if after_start <= 4:  # SGL/DIFF, D2, D1, D0 (sampled on the rising edge)
                command.append(bit)
                out.append(0)
                if after_start == 4:
                    result = self.code(bool(command[0]),
                                       command[1] << 2 | command[2] << 1 | command[3])
            elif after_start <= 6:   # the sample clock, then the null bit
                out.append(0)
            elif after_start <= 16:  # B9 .. B0
                out.append(result >> (16 - after_start) & 1)
            elif after_start <= 25:  # CS still low: B1 .. B9 again, LSB first
                out.append(result >> (after_start - 16) & 1)
            else:
                out.append(0)
        return out

    def transfer(self, data: bytes, mode: int) -> bytes:
        """Bytes clocked MSB first in SPI mode *mode*: the chip works in modes 0
        and 3 (datasheet 6.1); in modes 1 and 2 it is not read (zeros). The
        same bits as :meth:`exchange`, with integers instead of a loop a bit."""
        total = len(data) * 8
        value = int.from_bytes(data, "big")
        start = total - value.bit_length()      # the start bit: the first 1 on MOSI
        if mode not in (0, 3) or not value or start + 4 >= total:
            return bytes(len(data))             # no complete command: DOUT stays high-Z
        command = value >> (total - start - 5) & 0xF
        result = self.code(bool(command >> 3), command & 7)
        lsb_first = sum((result >> bit & 1) << (9 - bit) for bit in range(1, 10))
        pattern = result << 9 | lsb_first        # B9..B0, then B1..B9: 19 bits from k = 7
        shift = total - (start + 7) - 19
        out = pattern << shift if shift >= 0 else pattern >> -shift
        return (out & ((1 << total) - 1)).to_bytes(len(data), "big")


class Loopback:
    """MISO wired to MOSI: every transfer reads back what it sent."""

    def transfer(self, data: bytes, mode: int) -> bytes:
        return bytes(data)


#: device kind (as a configuration names it) -> its model; "none": nothing on the chip select
SPI_DEVICE_KINDS = {"mcp3008": MCP3008, "loopback": Loopback}


def default_spi_device(bus: int, device: int) -> str:
    """What a simulated server has on a chip select when its configuration says nothing."""
    return "mcp3008" if (bus, device) == (0, 0) else "none"


class SimSpiDev:
    """spidev's ``SpiDev`` over a simulated *chip* (None: nothing answers; MISO reads 0)."""

    def __init__(self, chip: Any = None):
        self.chip = chip
        self.is_open = False
        self._mode = 0
        self._bits = 8
        self._speed = DEFAULT_SPEED_HZ
        self.read0 = False
        #: (time_ns, bytes sent, bytes read) of recent transfers, oldest first
        self.history: List[Tuple[int, bytes, bytes]] = []

    # ---- spidev's life cycle ----------------------------------------------------------
    def open(self, bus: int, device: int) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def __enter__(self) -> "SimSpiDev":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ---- settings, validated as spidev and the controller do ------------------------
    def _set_mode(self, bits: int) -> None:
        if bits & ~CONTROLLER_MODE_BITS:
            raise _einval(f"mode bits 0x{bits:02x}: the controller takes 0x{CONTROLLER_MODE_BITS:02x}")
        self._mode = bits

    def _attribute(self, name: str, value: Any) -> None:
        self._set_mode(with_mode_attribute(self._mode, name, value))

    @property
    def mode(self) -> int:
        return self._mode & (CPOL | CPHA)

    @mode.setter
    def mode(self, value: int) -> None:
        self._attribute("mode", value)

    cshigh = property(lambda self: bool(self._mode & CS_HIGH),
                      lambda self, v: self._attribute("cshigh", v))
    lsbfirst = property(lambda self: bool(self._mode & LSB_FIRST),
                        lambda self, v: self._attribute("lsbfirst", v))
    threewire = property(lambda self: bool(self._mode & THREE_WIRE),
                         lambda self, v: self._attribute("threewire", v))
    loop = property(lambda self: bool(self._mode & LOOP),
                    lambda self, v: self._attribute("loop", v))
    no_cs = property(lambda self: bool(self._mode & NO_CS),
                     lambda self, v: self._attribute("no_cs", v))

    @property
    def bits_per_word(self) -> int:
        return self._bits

    @bits_per_word.setter
    def bits_per_word(self, value: int) -> None:
        if checked_setting("bits_per_word", value) != 8:
            raise _einval(f"{value} bits per word: the controller does 8")
        self._bits = value

    @property
    def max_speed_hz(self) -> int:
        return self._speed

    @max_speed_hz.setter
    def max_speed_hz(self, value: int) -> None:
        self._speed = checked_setting("max_speed_hz", value)

    # ---- transfers ---------------------------------------------------------------------
    def _bytes(self, values: Any, limit: Optional[int] = MAX_TRANSFER) -> bytes:
        if isinstance(values, (bytes, bytearray)):
            data = bytes(values)
        else:
            values = list(values)
            for value in values:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TypeError(f"Non-Int/Long value in arguments: {value!r}")
            data = bytes(value & 0xFF for value in values)   # spidev keeps the low byte
        if not data:
            raise TypeError("Empty argument list.")
        if limit is not None and len(data) > limit:
            raise OverflowError(f"Argument list size exceeds {limit} bytes.")
        return data

    def _transfer(self, data: bytes, bits_per_word: int = 0) -> bytes:
        """One chip-select period (one SPI_IOC_MESSAGE of one transfer)."""
        if not self.is_open:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        if bits_per_word not in (0, 8):
            raise _einval(f"{bits_per_word} bits per word: the controller does 8")
        selected = not self._mode & (CS_HIGH | NO_CS)   # the chip's CS is active low, wired to CE
        rx = self.chip.transfer(data, self.mode) if self.chip is not None and selected \
            else bytes(len(data))
        self.history.append((time.monotonic_ns(), data, rx))
        del self.history[:-HISTORY]
        return rx

    def xfer(self, values: Any, speed_hz: int = 0, delay_usecs: int = 0,
             bits_per_word: int = 0) -> List[int]:
        # spidev's usual build (no SPIDEV_SINGLE) sends xfer as one transfer, like xfer2
        return list(self._transfer(self._bytes(values), bits_per_word))

    def xfer2(self, values: Any, speed_hz: int = 0, delay_usecs: int = 0,
              bits_per_word: int = 0) -> List[int]:
        return list(self._transfer(self._bytes(values), bits_per_word))

    def xfer3(self, values: Any, speed_hz: int = 0, delay_usecs: int = 0,
              bits_per_word: int = 0) -> Tuple[int, ...]:
        """Any length, in blocks of the kernel's buffer (CS released between them)."""
        data = self._bytes(values, None)
        return tuple(b for i in range(0, len(data), MAX_TRANSFER)
                     for b in self._transfer(data[i:i + MAX_TRANSFER], bits_per_word))

    def readbytes(self, length: int) -> List[int]:
        length = max(1, min(MAX_TRANSFER, length))     # spidev clamps
        return list(self._transfer(bytes(length)))

    def writebytes(self, values: Any) -> None:
        self._transfer(self._bytes(values))

    def writebytes2(self, values: Any) -> None:
        data = self._bytes(values, None)
        for i in range(0, len(data), MAX_TRANSFER):
            self._transfer(data[i:i + MAX_TRANSFER])
