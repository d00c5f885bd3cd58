"""The one gpiozero pin a worker owns: opened lazily, driven, read, released.

Everything that touches the backend goes through :class:`PinDriver`, which
also turns gpiozero's exceptions into remoteio's wire errors.

Pin modes, as a user sees them:

* ``released``: the line is not held (not yet used, or closed)
* ``unset``: held, but never configured (gpiozero opens lines as inputs); a
  task makes it an output, ``input`` makes it an input
* ``output``: driven by tasks
* ``input``: configured by ``input``; tasks are refused with ``wrong_mode``
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional, Tuple

from gpiozero.exc import (
    GPIOPinInUse, GPIOZeroError, PinFixedPull, PinInvalidBounce, PinInvalidEdges,
    PinInvalidFunction, PinInvalidPull, PinInvalidState, PinPWMError, PinSetInput,
)

from ..errors import GPIOZERO_DETAILS, BadArgument, NotSupported, PinBusy, ServerError, WrongMode
from .jobs import PWM_FREQUENCY

log = logging.getLogger(__name__)

EdgeCallback = Callable[[int, int], None]  # (level, t_ns)


def translate(exc: Exception) -> ServerError:
    """A remoteio error for an exception raised by gpiozero or a backend."""
    if isinstance(exc, ServerError):
        return exc
    if isinstance(exc, (PinFixedPull, PinInvalidPull, PinInvalidBounce, PinInvalidEdges,
                        PinInvalidState, PinInvalidFunction)):
        error: ServerError = BadArgument(str(exc))
    elif isinstance(exc, PinSetInput):
        error = WrongMode(str(exc))
    elif isinstance(exc, PinPWMError):
        error = NotSupported(f"PWM is not available on this pin ({exc})")
    elif isinstance(exc, GPIOPinInUse) or "busy" in str(exc).lower():
        error = PinBusy(f"the line is held by another program ({exc})")
    elif isinstance(exc, GPIOZeroError):
        error = ServerError(f"{type(exc).__name__}: {exc}")
    else:
        error = ServerError(f"backend failure: {type(exc).__name__}: {exc}")
    name = type(exc).__name__
    if name in GPIOZERO_DETAILS:
        error.detail = name
    return error


def _retry_busy(action: Callable[[], None], attempts: int = 6) -> None:
    """Run *action*; retry it for a moment while the backend says the line is
    busy: our own line, just let go of (lgpio frees an alert claim before its
    alert thread is done with it), can take the kernel a few milliseconds."""
    for attempt in range(attempts):
        try:
            action()
            return
        except Exception as exc:
            error = translate(exc)
            if error.code != "pin_busy" or attempt == attempts - 1:
                raise error from None
            time.sleep(0.01 * (attempt + 1))


class PinDriver:
    def __init__(self, backend, bcm: int, on_edge: EdgeCallback):
        self.backend = backend
        self.bcm = bcm
        self.on_edge = on_edge
        self.mode = "released"
        self.level = 0.0  # last level driven on the output
        self.pull = "floating"
        self.bounce_ms = 0.0
        self._factory = None
        self._pin = None
        self._pwm = False
        self._frequency: Optional[float] = None  # PWM frequency asked for explicitly
        self._watching = False

    @property
    def label(self) -> str:
        """The line's name in messages."""
        return f"GPIO{self.bcm}"

    # ---- holding the line ------------------------------------------------
    def open(self):
        if self._pin is None:
            def claim() -> None:
                try:
                    self._factory = self.backend.make_factory()
                    self._pin = self._factory.pin(self.bcm)
                except Exception:
                    self._close_factory()
                    raise
            _retry_busy(claim)
            self.mode = "unset"
            self.pull = self._pin.pull
            self._pwm, self._frequency = False, None
            self.level = 0.0
            if self._watching:
                self._pin.when_changed = self._edge
        return self._pin

    def release(self) -> None:
        """Let go of the line (the worker drives its safe value first)."""
        if self._pin is None:
            return
        try:
            self._pin.when_changed = None
        except Exception:
            log.exception("GPIO%d: could not stop edge detection", self.bcm)
        self._close_factory()
        self.mode = "released"

    def _close_factory(self) -> None:
        factory, self._factory, self._pin = self._factory, None, None
        if factory is not None:
            try:
                factory.close()
            except Exception:
                log.exception("GPIO%d: closing the backend failed", self.bcm)

    # ---- outputs -----------------------------------------------------------
    def check_output(self) -> None:
        """Raise WrongMode if a task may not drive this pin now."""
        if self.mode == "input":
            raise WrongMode(
                f"GPIO{self.bcm} is configured as an input; send 'output' (or close it) first",
                detail="PinSetInput")

    def drive(self, level: float, pwm: bool) -> bool:
        """Drive *level*; True if the level on the pin changed."""
        pin = self.open()
        before = self.level if self.mode == "output" else 0.0
        try:
            if self.mode != "output":
                self.check_output()
                if self._watching:
                    _retry_busy(lambda: setattr(pin, "when_changed", None))  # edges are for inputs
                first = 0.0 if pwm or 0.0 < level < 1.0 else float(level >= 0.5)
                pin.output_with_state(int(first))  # no blip through another level
                self.mode, self._pwm, self.level = "output", False, first
            self._set_level(level, pwm)
            return level != before
        except ServerError:
            raise
        except Exception as exc:
            raise translate(exc) from None

    def _set_level(self, level: float, pwm: bool) -> bool:
        pin = self._pin
        pwm = pwm or 0.0 < level < 1.0 or bool(self._frequency)
        if pwm != self._pwm:
            pin.frequency = (self._frequency or PWM_FREQUENCY) if pwm else None
            self._pwm = pwm
        pin.state = level
        changed = level != self.level
        self.level = level
        return changed

    # ---- inputs ------------------------------------------------------------
    @property
    def fixed_pull(self) -> str:
        """The pull of the line's fixed resistor ("up" on GPIO2/3), or ""."""
        return self.open().info.pull or ""

    def check_input(self, pull: str) -> None:
        """Raise BadArgument if the pin cannot take *pull* (a fixed resistor)."""
        fixed = self.open().info.pull
        if fixed and pull != fixed:
            raise BadArgument(
                f"{self.label} has a fixed pull-{fixed} resistor; pull must be {fixed!r}")

    def make_input(self, pull: str, bounce_ms: float, pwm_stops_at: Optional[float] = None) -> None:
        """The line as an input with *pull*. An output is let go at the level it has, never
        driven through another on the way (a ``safe_value = 1`` relay is not switched on);
        a PWM output's PWM stops first: at *pwm_stops_at* (the worker's safe value, where
        it may drive the pin), else where the backend's stop leaves the line."""
        pin = self.open()
        try:
            if self.mode == "output" and self._pwm:
                if pwm_stops_at is not None:
                    self._set_level(float(pwm_stops_at), False)
                else:
                    pin.frequency = None
                    self._pwm = False
            # re-claiming the line drops its edge detection (lgpio): stop it
            # first, so that setting when_changed again below turns it back on
            _retry_busy(lambda: setattr(pin, "when_changed", None))
            pin.input_with_pull(pull)
            pin.bounce = bounce_ms / 1000.0 if bounce_ms else None
        except Exception as exc:
            raise translate(exc) from None
        self.mode, self.pull, self.bounce_ms, self.level = "input", pull, bounce_ms, 0.0
        if self._watching:
            pin.when_changed = self._edge

    def set_pull(self, pull: str) -> None:
        """Change the pull of an input (gpiozero: PinFixedPull otherwise)."""
        pin = self.open()
        try:
            pin.pull = pull
        except Exception as exc:
            raise translate(exc) from None
        self.pull = pull

    def set_frequency(self, frequency: Optional[float]) -> None:
        """Switch PWM on at *frequency* (Hz), or off (None or 0)."""
        pin = self.open()
        try:
            if frequency:
                pin.frequency = frequency  # gpiozero refuses it on an input (PinPWMFixedValue)
            elif self._pwm:
                pin.frequency = None
        except Exception as exc:
            raise translate(exc) from None
        self._frequency = frequency or None
        self._pwm = bool(frequency)
        if not frequency:
            self.level = 0.0

    def set_edge_options(self, bounce_ms: Optional[float], edges: Optional[str]) -> None:
        pin = self.open()
        try:
            if bounce_ms is not None:
                pin.bounce = bounce_ms / 1000.0 if bounce_ms else None
                self.bounce_ms = bounce_ms
            if edges is not None:
                pin.edges = edges
        except Exception as exc:
            raise translate(exc) from None

    def make_output(self, level: float = 0.0) -> None:
        """An output at *level* (the worker passes the pin's safe value)."""
        self.mode = "unset" if self.mode == "input" else self.mode
        self.drive(level, False)

    def read(self):
        """The level on the pin: driven level of an output, input level else."""
        pin = self.open()
        try:
            if self.mode == "output":
                return self.level if self._pwm else int(self.level >= 0.5)
            return int(bool(pin.state))
        except Exception as exc:
            raise translate(exc) from None

    # ---- change events -----------------------------------------------------
    def watch(self, on: bool) -> None:
        """Turn hardware edge detection on or off (inputs only)."""
        if on == self._watching:
            return
        self._watching = on
        if self._pin is not None and self.mode != "output":
            try:
                self._pin.when_changed = self._edge if on else None
            except Exception as exc:
                self._watching = False
                raise translate(exc) from None

    def event_fds(self) -> Tuple[int, ...]:
        """The descriptor of a backend whose edges the worker's loop reads
        (gpiod), while they are watched; () for backends with a thread of their own."""
        pin = self._pin
        if pin is None or not self._watching or not hasattr(pin, "event_fd"):
            return ()
        fd = pin.event_fd()
        return () if fd is None else (fd,)

    def catch_up(self) -> None:
        """Tell the edges a backend's own thread has yet to read (the sim's
        ``catch_up``), while watched; backends without it tell theirs in time."""
        pin = self._pin
        if self._watching and pin is not None and hasattr(pin, "catch_up"):
            try:
                pin.catch_up()
            except Exception:  # the edge thread reads them still; the task goes on
                log.exception("GPIO%d: catching up with edges failed", self.bcm)

    def read_events(self) -> None:
        try:
            self._pin.read_events()
        except Exception:  # the line went away under us: stop waiting on it (no spin)
            log.exception("GPIO%d: reading edge events failed; edges stop", self.bcm)
            self._watching = False

    def _edge(self, ticks: float, state) -> None:
        # ticks: the backend's monotonic seconds (lgpio: the kernel's timestamp)
        t_ns = int(ticks * 1e9) if ticks else time.monotonic_ns()
        self.on_edge(int(bool(state)), t_ns)

    @property
    def pwm_configured(self) -> bool:
        """Was a PWM frequency asked for explicitly (gpiozero's pin.frequency)?"""
        return bool(self._frequency)

    @property
    def frequency(self) -> Optional[float]:
        return (self._frequency or PWM_FREQUENCY) if self._pwm else None
