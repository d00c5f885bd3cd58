"""The simulated board of a server, driven and watched through the protocol."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Tuple, Union

from ..pins import PinSpec
from .pinlogic import binary

if TYPE_CHECKING:  # the client whose server is simulated
    from .client import RemoteServer


class SimControl:
    """The server's simulated board, driven through the protocol (``sim`` op)."""

    def __init__(self, server: "RemoteServer"):
        self._server = server

    def _sim(self, action: str, **fields: Any) -> Dict[str, Any]:
        return self._server.request("sim", action=action, **fields)

    def drive(self, pin: PinSpec, level: Union[int, bool, None]) -> None:
        """Apply a level (0 or 1) to an input from outside (a finger on a
        button); None lets go, as :meth:`release`."""
        if level is None:
            self.release(pin)
            return
        self._sim("drive", pin=pin, level=binary("level", level))

    def release(self, pin: PinSpec) -> None:
        """Stop driving the pin from outside (its pull decides again)."""
        self._sim("release", pin=pin)

    def wire(self, pin: PinSpec, to: PinSpec) -> None:
        """Join two pins with a jumper wire: an output drives the other."""
        self._sim("wire", pin=pin, to=to)

    def echo(self, trigger: PinSpec, echo: PinSpec, width_us: float) -> None:
        """An ultrasonic sensor: when *trigger* falls after a pulse, *echo* goes
        high for *width_us* microseconds (gpiozero's DistanceSensor)."""
        self._sim("echo", pin=trigger, to=echo, width_us=width_us)

    def unwire(self, pin: PinSpec) -> None:
        self._sim("unwire", pin=pin)

    def levels(self) -> Dict[int, int]:
        """The digital level of every header pin, by board number."""
        return {int(b): v for b, v in self._sim("levels")["levels"].items()}

    def history(self, pin: PinSpec, since_ns: int = 0) -> List[Tuple[int, float]]:
        """What the pin's output did: ``[(t_ns, value), ...]``."""
        return [tuple(entry) for entry in self._sim("history", pin=pin, since_ns=since_ns)["history"]]

    # ---- the simulated SPI devices (an MCP3008 on SPI0 CE0 by default) -----------------
    def _spi(self, bus: int, device: int, action: str, **fields: Any) -> Dict[str, Any]:
        return self._server.request("spi_sim", bus=bus, device=device, action=action, **fields)

    def set_adc_voltage(self, channel: int, volts: float, bus: int = 0, device: int = 0) -> None:
        """Apply *volts* to input CH<channel> of the simulated MCP3008 on SPI
        *bus*/*device* (Vref is 3.3 V: 1.65 V reads 512)."""
        self._spi(bus, device, "set_voltage", channel=channel, volts=volts)

    def adc_voltages(self, bus: int = 0, device: int = 0) -> List[float]:
        """The simulated MCP3008's eight input voltages, CH0..CH7."""
        return self._spi(bus, device, "voltages")["volts"]

    def spi_history(self, bus: int = 0, device: int = 0) -> List[Tuple[int, bytes, bytes]]:
        """What the simulated device saw, oldest first: ``(t_ns, sent, read)`` per
        chip-select period (the last 1,000)."""
        return [(t, bytes.fromhex(tx), bytes.fromhex(rx))
                for t, tx, rx in self._spi(bus, device, "history")["history"]]
