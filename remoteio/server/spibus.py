"""An SPI worker's calls: the whitelist's spi_* operations on a spidev-shaped device.

The device is spidev's ``SpiDev`` on ``/dev/spidevB.C`` (imported in the
SPI worker only) or a :class:`~.spidevices.SimSpiDev`; both take the same
calls and attributes. :class:`SpiDevice` opens it on first use and again
after a close, applies the settings each request carries (only those that
differ: each is an ioctl on a Pi), and turns an ``OSError`` into a
:exc:`~remoteio.errors.BusError` naming the device and the errno.
"""
from __future__ import annotations

import errno
from typing import Any, Callable, Dict, Optional

from ..errors import BadArgument, BusError, NotSupported
from ..protocol.buses import bus_name
from ..protocol.spi import CPHA, CPOL, MODE_FLAGS
from .spidevices import MCP3008, SPI_DEVICE_KINDS, SimSpiDev


def kernel_spidev() -> Any:
    try:
        import spidev  # the SPI worker's import only: the server needs none of it
    except ImportError:
        raise NotSupported("SPI needs spidev on the Pi: pip install 'remoteio[pi]'") from None
    return spidev.SpiDev()


class SpiDevice:
    """``/dev/spidev<bus>.<device>`` (or the simulated one), opened while in use."""

    def __init__(self, bus: int, device: int, make: Callable[[], Any] = kernel_spidev,
                 sim: Optional[SimSpiDev] = None):
        self.bus, self.device = bus, device
        self.name = bus_name(("spi", bus, device))
        self.make = make
        self.sim = sim
        self.dev: Any = None
        self._applied: Any = None   # the settings last applied (each change is an ioctl)

    def opened(self) -> Any:
        if self.dev is None:
            dev = self.sim if self.sim is not None else self.make()
            try:
                dev.open(self.bus, self.device)
            except OSError as exc:
                raise self.failed(exc) from None
            self.dev = dev
        return self.dev

    def close(self) -> None:
        if self.dev is not None:
            dev, self.dev, self._applied = self.dev, None, None
            try:
                dev.close()
            except OSError:
                pass

    def failed(self, exc: OSError) -> BusError:
        name = errno.errorcode.get(exc.errno or 0, "EIO")
        return BusError(f"{self.name}: {exc.strerror or exc} ({name})", detail=name)

    # ---- settings ------------------------------------------------------------------------
    def settings(self) -> Dict[str, int]:
        dev = self.opened()
        bits = dev.mode
        for flag, bit in MODE_FLAGS.items():
            if getattr(dev, flag):   # flag: a name of MODE_FLAGS, never from a request
                bits |= bit
        return {"mode_bits": bits, "bits_per_word": dev.bits_per_word,
                "max_speed_hz": dev.max_speed_hz}

    def apply(self, args: Dict[str, Any]) -> None:
        """The settings a request carries (None: as they are), changing only what differs."""
        dev = self.opened()
        wanted = (args.get("mode_bits"), args.get("bits_per_word"), args.get("max_speed_hz"))
        if wanted == self._applied:
            return
        self._applied = None   # a setting that fails leaves the device as it then is
        bits = wanted[0]
        if bits is not None:
            if dev.mode != bits & (CPOL | CPHA):
                dev.mode = bits & (CPOL | CPHA)
            for flag, bit in MODE_FLAGS.items():
                if getattr(dev, flag) != bool(bits & bit):
                    setattr(dev, flag, bool(bits & bit))
        for field in ("bits_per_word", "max_speed_hz"):
            value = args.get(field)
            if value is not None and getattr(dev, field) != value:
                setattr(dev, field, value)
        self._applied = wanted if None not in wanted else None

    # ---- the operations ------------------------------------------------------------------
    def perform(self, op: str, args: Dict[str, Any]) -> Dict[str, Any]:
        """The reply's fields for a validated ``spi_*`` request."""
        if op == "spi_close":
            self.close()
            return {}
        if op == "spi_sim":
            return self.sim_action(args)
        try:
            self.apply(args)
            dev = self.dev
            if op == "spi_configure":
                return {"settings": self.settings()}
            if op in ("spi_xfer", "spi_xfer2"):
                call = dev.xfer if op == "spi_xfer" else dev.xfer2
                rx = call(list(args["data"]), args["speed_hz"], args["delay_usecs"],
                          args["transfer_bits"])
                return {"data": bytes(rx).hex()}
            if op == "spi_readbytes":
                return {"data": bytes(dev.readbytes(args["count"])).hex()}
            if op == "spi_writebytes":
                dev.writebytes(list(args["data"]))
                return {}
        except OSError as exc:
            raise self.failed(exc) from None
        except (TypeError, OverflowError) as exc:   # validation should have caught it
            raise BadArgument(f"{self.name}: {exc}") from None
        raise BadArgument(f"{self.name}: no operation {op!r}")

    def sim_action(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """``spi_sim``: set and read a simulated MCP3008's inputs; what the device saw."""
        sim = self.sim
        if sim is None:
            raise NotSupported(f"spi_sim needs the simulated board; {self.name} is a real device")
        action = args["action"]
        if action == "history":
            return {"history": [[t, tx.hex(), rx.hex()] for t, tx, rx in sim.history]}
        chip = sim.chip
        if not isinstance(chip, MCP3008):
            raise NotSupported(f"{self.name} has no simulated MCP3008 (it has "
                               f"{type(chip).__name__ if chip is not None else 'nothing'})")
        if action == "set_voltage":
            if args["channel"] is None or args["volts"] is None:
                raise BadArgument("spi_sim set_voltage needs a channel (0..7) and volts")
            chip.volts[args["channel"]] = float(args["volts"])
        return {"volts": list(chip.volts), "vref": chip.vref}


def open_spi(bus: int, device: int, settings: Dict[str, Any]) -> SpiDevice:
    """The device a worker runs on: the simulated board's model, or the kernel's spidev."""
    if settings.get("sim"):
        kind = settings.get("device_kind", "none")
        chip = SPI_DEVICE_KINDS[kind]() if kind in SPI_DEVICE_KINDS else None
        return SpiDevice(bus, device, sim=SimSpiDev(chip))
    return SpiDevice(bus, device)
