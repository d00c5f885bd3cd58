"""The gpiod backend: Linux gpiochip character devices through libgpiod v2,
with edge events read by the pin worker's own loop (no helper thread).

lgpio starts two threads in every process that opens a chip (lgGpio.c:
``lgPthTxStart`` wakes 50 times a second for ever; ``lgPthAlert`` polls every
0.5 ms while a line is watched), so 26 idle lgpio workers keep a small CPU
busy. Here a worker that has nothing to do sleeps in ``select``: an output is
one line request; a watched input adds the request's file descriptor to the
worker's ``select`` (:meth:`GpiodPin.event_fd`, :meth:`GpiodPin.read_events`);
debouncing is the kernel's; software PWM runs a thread only while it is on.

Works on any Linux board with a gpiochip, as the lgpio backend does
(``remoteio serve --backend gpiod --chip 1 --revision d04170`` in a VM with
``gpio-sim``). gpiod's classes and the header's chip are found once, in the
server before the zygote's fork (:meth:`GpiodBackend.before_fork`), and
shared by the workers; each worker makes its own line requests.
"""
from __future__ import annotations

import functools
import glob
import importlib.util
import threading
from datetime import timedelta
from typing import Any, Dict, Optional

from gpiozero.exc import (
    PinFixedPull, PinInvalidBounce, PinInvalidEdges, PinInvalidFunction, PinInvalidPull,
    PinInvalidState, PinPWMFixedValue, PinSetInput,
)

from . import Backend, BackendUnavailable, check_gpiochip

#: the labels of the Raspberry Pis' header chips (Pi 5: RP1; Pi 4; older Pis)
HEADER_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")


def header_chip() -> int:
    """The number of the gpiochip that carries the 40-pin header (0 if none says so)."""
    import gpiod
    for path in sorted(glob.glob("/dev/gpiochip*"), key=lambda p: int(p[13:] or 0)):
        try:
            with gpiod.Chip(path) as chip:
                if chip.get_info().label in HEADER_LABELS:
                    return int(path[len("/dev/gpiochip"):])
        except (OSError, ValueError):
            continue
    return 0


class GpiodBackend(Backend):
    name = "gpiod"

    def __init__(self, revision: Optional[int] = None, chip: Optional[int] = None):
        super().__init__(revision)
        if importlib.util.find_spec("gpiod") is None:
            raise BackendUnavailable("the gpiod module (libgpiod v2) is not installed: "
                                     "pip install 'gpiod>=2.1' (or 'remoteio[gpiod]')")
        import gpiod
        if not hasattr(gpiod, "request_lines"):
            raise BackendUnavailable("the gpiod module installed is v1; remoteio needs gpiod>=2.1")
        check_gpiochip(chip)
        self.chip = chip
        self._path: Optional[str] = None

    def factory_class(self) -> type:
        return _gpiozero_classes()[0]

    def factory_options(self) -> Dict[str, Any]:
        if self._path is None:
            chip = self.chip if self.chip is not None else header_chip()
            self._path = f"/dev/gpiochip{chip}"
        return {"path": self._path}

    def before_fork(self) -> None:
        # 26 workers would each build the classes and look for the chip
        self.made_factory_class()
        self.factory_options()


@functools.lru_cache(maxsize=None)
def _gpiozero_classes():
    """GpiodFactory and GpiodPin, built on first use (before the fork, in the server)."""
    import gpiod
    from gpiod.line import Bias, Direction, Edge, Value
    from gpiozero.pins.local import LocalPiFactory, LocalPiPin

    biases = {"up": Bias.PULL_UP, "down": Bias.PULL_DOWN, "floating": Bias.DISABLED}
    edges = {"both": Edge.BOTH, "rising": Edge.RISING, "falling": Edge.FALLING}

    class Factory(LocalPiFactory):
        def __init__(self, path: str):
            super().__init__()
            self.path = path
            self.pin_class = Pin

    class Pin(LocalPiPin):
        def __init__(self, factory, info):
            super().__init__(factory, info)
            self._function, self._pull, self._bounce, self._edges = "input", "floating", 0.0, "both"
            self._level = 0  # the last level driven
            self._watching = False
            self._pwm: Optional[SoftPWM] = None
            self._request = gpiod.request_lines(
                factory.path, consumer="remoteio", config={self._number: self._settings()})

        # what the line is asked to be, from what this pin was told
        def _settings(self, output_value: Optional[int] = None) -> Any:
            if self._function == "output":
                level = self._level if output_value is None else output_value
                return gpiod.LineSettings(direction=Direction.OUTPUT,
                                          output_value=Value(int(bool(level))))
            return gpiod.LineSettings(
                direction=Direction.INPUT, bias=biases[self._pull],
                edge_detection=edges[self._edges] if self._watching else Edge.NONE,
                debounce_period=timedelta(seconds=self._bounce))

        def _reconfigure(self) -> None:
            self._request.reconfigure_lines({self._number: self._settings()})

        def close(self) -> None:
            self._stop_pwm()
            request, self._request = self._request, None
            if request is not None:
                request.release()

        def output_with_state(self, state) -> None:
            """Straight to an output at *state*: no blip through another level."""
            self._stop_pwm()
            self._function, self._level = "output", int(bool(state))
            self._reconfigure()

        def input_with_pull(self, pull) -> None:
            if pull not in biases:
                raise PinInvalidPull(f'invalid pull "{pull}" for pin {self!r}')
            if self.info.pull not in (pull, ""):
                raise PinFixedPull(f"{self!r} has a physical pull-{self.info.pull} resistor")
            self._stop_pwm()
            self._function, self._pull = "input", pull
            self._reconfigure()

        def _get_function(self) -> str:
            return self._function

        def _set_function(self, value) -> None:
            if value not in ("input", "output"):
                raise PinInvalidFunction(f'invalid function "{value}" for pin {self!r}')
            if value == "output":
                self.output_with_state(0)
            else:
                self.input_with_pull(self._pull if self._pull in biases else "floating")

        def _get_state(self):
            if self._pwm is not None:
                return self._pwm.duty
            if self._function == "output":
                return self._level
            return int(self._request.get_value(self._number) == Value.ACTIVE)

        def _set_state(self, value) -> None:
            if self._pwm is not None:
                if not 0.0 <= value <= 1.0:
                    raise PinInvalidState(f'invalid state "{value}" for pin {self!r}')
                self._pwm.duty = float(value)
            elif self._function != "output":
                raise PinSetInput(f"cannot set state of pin {self!r}")
            else:
                self._drive(int(bool(value)))

        def _drive(self, level: int) -> None:
            self._level = level
            self._request.set_value(self._number, Value(level))

        def _get_pull(self) -> str:
            return self._pull

        def _set_pull(self, value) -> None:
            if self._function != "input":
                raise PinFixedPull(f"cannot set pull on non-input pin {self!r}")
            self.input_with_pull(value)

        def _get_frequency(self):
            return self._pwm.frequency if self._pwm is not None else None

        def _set_frequency(self, value) -> None:
            if value:
                if self._function != "output":
                    raise PinPWMFixedValue(f"cannot start PWM on pin {self!r}")
                if self._pwm is None:
                    self._pwm = SoftPWM(self._drive, float(value))
                else:
                    self._pwm.frequency = float(value)
            else:
                self._stop_pwm()

        def _stop_pwm(self) -> None:
            pwm, self._pwm = self._pwm, None
            if pwm is not None:
                pwm.stop()

        def _get_bounce(self):
            return self._bounce or None

        def _set_bounce(self, value) -> None:
            value = 0.0 if value is None else float(value)
            if value < 0:
                raise PinInvalidBounce("bounce must be 0 or greater")
            self._bounce = value
            if self._function == "input":
                self._reconfigure()

        def _get_edges(self) -> str:
            return self._edges

        def _set_edges(self, value) -> None:
            if value not in edges:
                raise PinInvalidEdges(f'invalid edges "{value}" for pin {self!r}')
            self._edges = value
            if self._function == "input" and self._watching:
                self._reconfigure()

        def _enable_event_detect(self) -> None:
            self._watching = True
            if self._function == "input":
                self._reconfigure()

        def _disable_event_detect(self) -> None:
            self._watching = False
            if self._function == "input" and self._request is not None:
                self._reconfigure()

        # ---- read by the worker's loop ----------------------------------
        def event_fd(self) -> Optional[int]:
            """The descriptor to wait on for edges, while they are watched."""
            if self._watching and self._function == "input" and self._request is not None:
                return self._request.fd
            return None

        def read_events(self) -> None:
            """Deliver the edges waiting on :meth:`event_fd` to ``when_changed``."""
            for event in self._request.read_edge_events():
                rising = event.event_type == event.Type.RISING_EDGE
                self._call_when_changed(event.timestamp_ns / 1e9, int(rising))

    return Factory, Pin


class SoftPWM:
    """A software PWM on one line: a thread that exists only while PWM is on."""

    def __init__(self, drive, frequency: float):
        self._drive, self.frequency, self.duty = drive, frequency, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="remoteio-pwm", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            period, duty = 1.0 / self.frequency, self.duty
            if duty > 0.0:
                self._drive(1)
                if self._stop.wait(period * duty):
                    break
            if duty < 1.0:
                self._drive(0)
                if self._stop.wait(period * (1.0 - duty)):
                    break

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
