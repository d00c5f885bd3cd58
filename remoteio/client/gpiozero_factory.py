"""A gpiozero pin factory: any gpiozero device, on a remote Pi (a Pi 5 too).

::

    GPIOZERO_PIN_FACTORY=remoteio REMOTEIO_HOST=pi.local python3 my_script.py

or explicitly::

    from gpiozero import LED, Button
    from remoteio.gpiozero_factory import RemoteIOFactory

    factory = RemoteIOFactory("pi.local")
    led = LED(17, pin_factory=factory)
    button = Button(27, pin_factory=factory)
    button.when_pressed = led.toggle        # runs here, on the client's dispatcher

Host, port, token and TLS come from the arguments or from ``REMOTEIO_HOST``,
``REMOTEIO_PORT``, ``REMOTEIO_TOKEN``/``REMOTEIO_TOKEN_FILE`` and
``REMOTEIO_FINGERPRINT``/``REMOTEIO_CAFILE``. Every pin operation is one
round trip (``LED.on()``: one; a PWM write: one; ``output_with_state``: one);
an output's state is remembered here rather than asked for again. Board
names (``GPIO17``, ``BOARD11``, ``J8:11``, ``WPI0``) come from the remote
Pi's own revision, and ticks are the Pi's clock, so a DistanceSensor times
its echoes with the Pi's timestamps.
"""
from __future__ import annotations

import os
from threading import RLock
import time
from typing import Any, Callable, Dict, Optional

from gpiozero import exc as gpiozero_exc
from gpiozero.exc import (
    GPIOPinInUse, PinFixedPull, PinInvalidBounce, PinInvalidEdges, PinInvalidFunction, PinInvalidPin,
    PinInvalidPull, PinInvalidState, PinPWMFixedValue, PinPWMUnsupported, PinSetInput,
)
from gpiozero.mixins import SharedMixin
from gpiozero.pins import SPI, Pin, PinInfo
from gpiozero.pins.pi import PiFactory, PiPin, spi_port_device
from gpiozero.pins.spi import SPISoftware

from . import display
from .client import RemoteServer
from ..errors import GPIOZERO_DETAILS, LinkError, PinClosed, ServerError
from ..pins import BCM_TO_BOARD, is_expander_spec, pin_key
from ..settings import DEFAULT_PORT, port_from_text

#: a server error's detail -> the gpiozero exception to raise (a fixed table)
#: (the names are remoteio's constant list, never a name from the wire)
_GPIOZERO_ERRORS = {name: getattr(gpiozero_exc, name) for name in GPIOZERO_DETAILS}
_BY_CODE = {"wrong_mode": PinSetInput, "pin_busy": GPIOPinInUse,
            "not_supported": PinPWMUnsupported,
            "bad_pin": PinInvalidPin}   # an expander pin the server does not have ("mcp9:A3")


def _port_from_environment() -> int:
    text = os.environ.get("REMOTEIO_PORT", "").strip()
    try:
        return port_from_text(text) if text else DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"REMOTEIO_PORT={text!r}: {exc}") from None


def _gpiozero_error(exc: ServerError) -> Exception:
    cls = _GPIOZERO_ERRORS.get(exc.detail or "") or _BY_CODE.get(exc.code)
    return cls(exc.message) if cls else exc


class RemoteIOFactory(PiFactory):
    """gpiozero pins on a remoteio server (see the module docstring)."""

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None, *,
                 timeout: float = 5.0, **options: Any):
        super().__init__()
        self.server = RemoteServer(host or os.environ.get("REMOTEIO_HOST", "localhost"),
                                   port or _port_from_environment(),
                                   timeout=timeout, **options)
        self.pin_class = RemoteIOPin
        self._clock_offset_ns = self._estimate_clock_offset()

    def _estimate_clock_offset(self, samples: int = 5) -> int:
        """The server's monotonic clock minus ours, from the closest of a few
        pings (the server answers with its clock; take the round trip's middle)."""
        best = None
        for _ in range(samples):
            sent = time.monotonic_ns()
            server_ns = self.server.request("ping")["time_ns"]
            received = time.monotonic_ns()
            if best is None or received - sent < best[0]:
                best = (received - sent, server_ns - (sent + received) // 2)
        return best[1]

    def _get_revision(self) -> int:
        return int(self.server.board["revision"], 16)

    def ticks(self) -> float:
        """The Pi's clock (seconds), without a round trip."""
        return (time.monotonic_ns() + self._clock_offset_ns) / 1e9

    @staticmethod
    def ticks_diff(later: float, earlier: float) -> float:
        return later - earlier

    def pin(self, name: Any) -> "RemoteIOPin":
        """gpiozero's pin lookup, plus the server's expander pins (``LED("mcp0:A3")``)."""
        if not is_expander_spec(name):
            return super().pin(name)
        key = pin_key(name)
        info = PinInfo(number=0, name=key, names=frozenset((key,)), pull="", row=0, col=0,
                       interfaces=frozenset(("gpio",)))
        pin = self.pins.get(info)
        if pin is None:
            pin = self.pins[info] = RemoteIOPin(self, info)
        return pin

    def close(self) -> None:
        """Close every pin and the connection; never hangs or raises, even
        when the link is already dead (gpiozero calls it at exit)."""
        try:
            super().close()
        finally:
            try:
                self.server.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        return f"<RemoteIOFactory {self.server.host}:{self.server.port}>"

    def _repr_html_(self) -> str:  # the server's header and pins, under the factory's name
        return display.server_html(dict(self.server.view(), title="RemoteIOFactory (gpiozero)"))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(display.server_text(dict(self.server.view(), title="RemoteIOFactory")))

    def _get_spi_class(self, shared: bool, hardware: bool):
        # the hardware SPI pins: the Pi's own /dev/spidevB.C over the network
        # (one round trip a transfer); other pins: software SPI over remote pins
        if hardware:
            return RemoteIOHardwareSPIShared if shared else RemoteIOHardwareSPI
        return RemoteIOSoftwareSPIShared if shared else RemoteIOSoftwareSPI


class RemoteIOHardwareSPI(SPI):
    """gpiozero's hardware SPI interface on the remote Pi's spidev (``server.spi``):
    ``transfer`` is one ``xfer2`` round trip. Pins are reserved here (gpiozero's
    rule within this factory) and held on the Pi (``pin_busy`` across clients)."""

    def __init__(self, clock_pin, mosi_pin, miso_pin, select_pin, pin_factory):
        self._port, self._device = spi_port_device(clock_pin, mosi_pin, miso_pin, select_pin)
        self._bus = None
        super().__init__(pin_factory=pin_factory)
        to_reserve = {clock_pin, select_pin} | {p for p in (mosi_pin, miso_pin) if p is not None}
        self.pin_factory.reserve_pins(self, *to_reserve)
        try:
            self._bus = pin_factory.server.spi(self._port, self._device, max_speed_hz=500000)
        except ServerError as exc:
            self.pin_factory.release_all(self)
            raise _gpiozero_error(exc) from None

    def _conflicts_with(self, other) -> bool:
        if isinstance(other, RemoteIOHardwareSPI):
            return (self._port, self._device) == (other._port, other._device)
        return True

    def close(self) -> None:
        """Close the remote device (its pins are free once its last user closes it)."""
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.close()
            except Exception:
                pass  # the link may be dead already: closing must not raise
        self.pin_factory.release_all(self)
        super().close()

    @property
    def closed(self) -> bool:
        """Is it closed?"""
        return self._bus is None

    def __repr__(self) -> str:
        if self._bus is None:
            return "SPI(closed)"
        return f"SPI(port={self._port}, device={self._device})"

    def _call(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except ServerError as exc:
            raise _gpiozero_error(exc) from None

    def transfer(self, data):
        """Write *data*, read as many words: one xfer2 on the Pi."""
        return self._call(lambda: self._bus.xfer2(list(data)))

    def _get_clock_mode(self) -> int:
        return self._bus.mode

    def _set_clock_mode(self, value: int) -> None:
        self._call(lambda: setattr(self._bus, "mode", value))

    def _get_lsb_first(self) -> bool:
        return self._bus.lsbfirst

    def _set_lsb_first(self, value) -> None:
        self._call(lambda: setattr(self._bus, "lsbfirst", bool(value)))

    def _get_select_high(self) -> bool:
        return self._bus.cshigh

    def _set_select_high(self, value) -> None:
        self._call(lambda: setattr(self._bus, "cshigh", bool(value)))

    def _get_bits_per_word(self) -> int:
        return self._bus.bits_per_word

    def _set_bits_per_word(self, value: int) -> None:
        self._call(lambda: setattr(self._bus, "bits_per_word", value))

    def _get_rate(self) -> int:
        return self._bus.max_speed_hz

    def _set_rate(self, value) -> None:
        self._call(lambda: setattr(self._bus, "max_speed_hz", int(value)))


class RemoteIOHardwareSPIShared(SharedMixin, RemoteIOHardwareSPI):
    @classmethod
    def _shared_key(cls, clock_pin, mosi_pin, miso_pin, select_pin, pin_factory):
        return (clock_pin, select_pin)


class RemoteIOSoftwareSPI(SPISoftware):
    pass


class RemoteIOSoftwareSPIShared(SharedMixin, SPISoftware):
    @classmethod
    def _shared_key(cls, clock_pin, mosi_pin, miso_pin, select_pin, pin_factory):
        return (clock_pin, select_pin)


class RemoteIOPin(PiPin):
    """One pin of the remote Pi, as gpiozero sees it."""

    def __init__(self, factory: RemoteIOFactory, info):
        if is_expander_spec(info.name):  # an expander's pin: no GPIO number to read
            Pin.__init__(self)
            self._factory, self._info, self._number = factory, info, None
            self._when_changed_lock, self._when_changed = RLock(), None
            self._remote = factory.server.pin(info.name, claim=False)
        else:
            super().__init__(factory, info)
            self._remote = factory.server.pin(BCM_TO_BOARD[self._number], claim=False)
        # what we set, remembered: only the holder changes an output
        self._function = "input"
        self._pull = info.pull or "floating"
        self._state: Any = 0
        self._frequency: Optional[float] = None
        self._bounce: Optional[float] = None
        self._edges = "both"
        self._listener: Optional[Callable[[Any], None]] = None

    def _call(self, op: str, **fields: Any) -> Dict[str, Any]:
        server = self.factory.server
        if server.closed and op != "read":
            return {}  # cleaning up after the factory closed (gpiozero's __del__, atexit)
        request = {"pin": self._remote.board, **fields}
        try:
            try:  # straight to the link: a write is one call through fewer layers
                return server.live_link().request(op, request, server.timeout)
            except PinClosed:
                # gpiozero reuses a pin object after close(): take the pin again
                server.request("open", pin=self._remote.board)
                return server.live_link().request(op, request, server.timeout)
        except ServerError as exc:
            raise _gpiozero_error(exc) from None

    def _setup(self, **fields: Any) -> None:
        reply = self._call("setup", **fields)
        if "function" in reply:
            self._function, self._pull = reply["function"], reply["pull"]
            self._frequency, self._state = reply["frequency"], reply["state"]
        self._remember()

    def _remember(self) -> None:
        """What a reconnect must replay to give the pin back its setup."""
        output = self._function == "output"
        self._remote.restore_setup = {
            "function": self._function, "pull": None if output else self._pull,
            "frequency": self._frequency or 0, "state": float(self._state) if output else None,
            "bounce_ms": (self._bounce or 0) * 1000.0, "edges": self._edges}

    def close(self) -> None:
        self._remote.restore_setup = {}
        try:
            self.when_changed = None
            if self.factory.server.connected:
                self._call("close")
        except Exception:
            pass  # the link may be dead already: closing must not raise

    # function -----------------------------------------------------------------
    def _get_function(self) -> str:
        return self._function

    def _set_function(self, value: str) -> None:
        if value not in ("input", "output"):
            raise PinInvalidFunction(f'invalid function "{value}" for pin {self!r}')
        self._setup(function=value)

    def output_with_state(self, state) -> None:
        self._check_state(state, digital=True)
        self._setup(function="output", state=float(bool(state)))

    def input_with_pull(self, pull: str) -> None:
        self._check_pull(pull)
        self._setup(function="input", pull=pull)

    # state ---------------------------------------------------------------------
    def _get_state(self):
        if self._function == "output":
            return self._state
        return self._call("read")["value"]

    def _check_state(self, value, digital: bool = False) -> None:
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise PinInvalidState(f'invalid state "{value}" for pin {self!r}')

    def _set_state(self, value) -> None:
        self._check_state(value)
        if self._function != "output":
            raise PinSetInput(f"cannot set state of pin {self!r}")
        self._call("set", state=float(value))
        self._state = value if self._frequency else bool(value)
        restore = self._remote.restore_setup
        if restore.get("function") == "output":  # the same setup, a new state: no new dict per write
            restore["state"] = float(self._state)
        else:
            self._remember()

    # pull ------------------------------------------------------------------------
    def _check_pull(self, value: str) -> None:
        if value not in ("up", "down", "floating"):
            raise PinInvalidPull(f'invalid pull "{value}" for pin {self!r}')
        if self.info.pull not in (value, ""):
            raise PinFixedPull(f"{self!r} has a physical pull-{self.info.pull} resistor")

    def _get_pull(self) -> str:
        return self._pull

    def _set_pull(self, value: str) -> None:
        if self._function != "input":
            raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
        self._check_pull(value)
        self._setup(pull=value)

    # PWM -------------------------------------------------------------------------
    def _get_frequency(self) -> Optional[float]:
        return self._frequency

    def _set_frequency(self, value: Optional[float]) -> None:
        if value is not None and value > 0 and self._function != "output":
            raise PinPWMFixedValue(f"cannot start PWM on pin {self!r}")
        if value:
            self._setup(frequency=value)
        else:
            self._quietly(lambda: self._setup(frequency=0))  # part of closing a device
        self._frequency = value or None
        if not value:
            self._state = False
        self._remember()

    # edges -------------------------------------------------------------------------
    def _get_bounce(self) -> Optional[float]:
        return self._bounce

    def _set_bounce(self, value: Optional[float]) -> None:
        if value is not None:
            try:  # gpiozero's own pins raise PinInvalidBounce (a ValueError) for 'foo'
                value = float(value)
            except (TypeError, ValueError):
                raise PinInvalidBounce(f"bounce must be a number of seconds, not {value!r}") \
                    from None
            if not value >= 0 or value == float("inf"):
                raise PinInvalidBounce("bounce must be 0 or greater")
        self._bounce = value or None
        self._setup(bounce_ms=(value or 0) * 1000.0)

    def _get_edges(self) -> str:
        return self._edges

    def _set_edges(self, value: str) -> None:
        if value not in ("both", "rising", "falling", "none"):
            raise PinInvalidEdges(f'invalid edges "{value}" for pin {self!r}')
        self._edges = value
        self._setup(edges=value)

    def _enable_event_detect(self) -> None:
        def changed(event) -> None:  # on the client's dispatcher thread
            self._call_when_changed(event.ts_ns / 1e9, event.value)
        self._listener = changed
        self._remote.when_changed = changed

    def _disable_event_detect(self) -> None:
        self._listener = None
        self._remote.when_changed = None
        self._quietly(self._remote.unwatch)

    @staticmethod
    def _quietly(action: Callable[[], Any]) -> None:
        """What gpiozero does while closing a device must not raise when the
        link is already dead."""
        try:
            action()
        except LinkError:
            pass
