"""gpiozero's MockFactory-based tests, run against the remoteio factory.

gpiozero's own test files (test_outputs, test_inputs, test_boards, ...) use a
``mock_factory`` fixture from gpiozero's repository conftest (which its sdist
does not ship) and a few helpers of its MockPin: ``drive_high()``,
``drive_low()``, ``states``, ``assert_states()``,
``assert_states_and_times()``, ``clear_states()``. This conftest gives them a
:class:`SimulatedFactory`: a real :class:`RemoteIOFactory` on a remoteio
server's simulated board (``REMOTEIO_HOST``/``REMOTEIO_PORT``), whose pins
map those helpers onto the board: ``drive_high()`` is ``sim drive`` (a
finger on the pin), and it returns once the change event the Pi pushes has
been handed to gpiozero (MockPin calls callbacks at once; a remote factory
gets them over the network). ``states`` are recorded where MockPin records
them: when gpiozero sets a pin, and when a test drives one.

Pins of other mock classes (``MockChargingPin``, ``MockTriggerPin``,
``MockConnectedPin``...) model circuits the simulated board has no model
for: those tests are skipped, saying so.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, List

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockPin, MockPWMPin, PinState

from remoteio.gpiozero_factory import RemoteIOFactory, RemoteIOPin

#: how long drive_high()/drive_low() wait for the change to reach gpiozero (s)
EVENT_WAIT_S = 2.0


class SimulatedPin(RemoteIOPin):
    """A remote pin with MockPin's test helpers, on the simulated board."""

    def __init__(self, factory: "SimulatedFactory", info: Any):
        super().__init__(factory, info)
        self._changes = 0
        self._changed = threading.Condition()
        self._known = self._level()
        self.clear_states()

    # what MockPin records ---------------------------------------------------
    def _level(self) -> Any:
        try:
            return self._call("read")["value"]
        except Exception:
            return 0

    def _record(self, value: Any) -> None:
        value = float(value) if self.frequency else bool(value)
        if value != self._known:
            now = time.monotonic()
            self.states.append(PinState(now - self._last_change, value))
            self._last_change = now
            self._known = value

    def clear_states(self) -> None:
        self._last_change = time.monotonic()
        known = float(self._known) if self.frequency else bool(self._known)
        self.states: List[PinState] = [PinState(0.0, known)]

    def assert_states(self, expected_states: List[Any]) -> None:
        MockPin.assert_states(self, expected_states)

    def assert_states_and_times(self, expected_states: List[Any]) -> None:
        MockPin.assert_states_and_times(self, expected_states)

    def _set_state(self, value: Any) -> None:
        super()._set_state(value)
        self._record(value)

    def _setup(self, **fields: Any) -> None:
        super()._setup(**fields)
        if self._function == "output":
            self._record(self._state)
        elif "pull" in fields or "function" in fields:
            self._record(self._level())

    def _set_frequency(self, value: Any) -> None:
        super()._set_frequency(value)
        if not value:
            self._record(0.0)

    # driving it from outside ------------------------------------------------------
    def _call_when_changed(self, ticks: Any = None, state: Any = None) -> None:
        if ticks is None:  # MockPin's form: the tests call it to fake a change
            ticks, state = self._last_change, self._known
        try:
            super()._call_when_changed(ticks, state)
        finally:
            with self._changed:
                self._changes += 1
                self._changed.notify_all()

    def _drive(self, level: int) -> None:
        assert self._function == "input"
        edge = "rising" if level else "falling"
        before = self._changes
        changes = bool(level) != bool(self._known)
        self.factory.server.sim.drive(self._remote.board, level)
        self._record(level)
        if changes and self._listener is not None and self._edges in ("both", edge) \
                and not self._bounce:
            with self._changed:
                self._changed.wait_for(lambda: self._changes > before, EVENT_WAIT_S)

    def drive_high(self) -> None:
        self._drive(1)

    def drive_low(self) -> None:
        self._drive(0)


class SimulatedFactory(RemoteIOFactory):
    """The remoteio factory, answering MockFactory's ``pin(name, pin_class=...)``."""

    def __init__(self) -> None:
        super().__init__(os.environ.get("REMOTEIO_HOST", "127.0.0.1"),
                         int(os.environ.get("REMOTEIO_PORT", "8509")), reconnect=False)
        self.pin_class = SimulatedPin

    def pin(self, name: Any, pin_class: Any = None, **kwargs: Any) -> Any:
        if pin_class not in (None, MockPin, MockPWMPin, SimulatedPin):
            pytest.skip(f"{pin_class.__name__} models a circuit the simulated board does not")
        return super().pin(name)

    def reset(self) -> None:
        """Every pin closed, and nothing left driving the board."""
        for pin in list(self.pins.values()):
            try:
                pin.close()
                self.server.sim.release(pin._remote.board)
            except Exception:
                pass
        self.pins.clear()
        self._reservations.clear()


def pytest_collection_modifyitems(config, items):
    """Leave out the tests that cannot apply to a remote factory, by exact
    node id (``--deselect`` would also drop every test whose name they begin)."""
    left_out = set(os.environ.get("REMOTEIO_CANNOT_APPLY", "").split())
    keep = [item for item in items if item.nodeid not in left_out]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid in left_out])
        items[:] = keep


class ThreadedTest(threading.Thread):
    """What gpiozero's conftest offers its tests: a function run in a thread."""

    def __init__(self, test_fn: Any, *args: Any, **kwargs: Any):
        self._fn, self._args, self._kw = test_fn, args, kwargs
        self._result: Any = None
        self._error: Any = None
        super().__init__(daemon=True)
        self.start()

    def run(self) -> None:
        try:
            self._result = self._fn(*self._args, **self._kw)
        except BaseException as exc:  # re-raised in the test's own thread
            self._error = exc

    @property
    def result(self) -> Any:
        self.join(10)
        if self.is_alive():
            raise RuntimeError("test thread did not finish")
        if self._error is not None:
            raise self._error
        return self._result


@pytest.fixture()
def no_default_factory(request):
    saved = Device.pin_factory
    Device.pin_factory = None
    try:
        yield None
    finally:
        Device.pin_factory = saved


@pytest.fixture()
def mock_factory(request):
    saved = Device.pin_factory
    Device.pin_factory = SimulatedFactory()
    try:
        yield Device.pin_factory
    finally:
        if Device.pin_factory is not None:
            Device.pin_factory.reset()
            Device.pin_factory.close()
        Device.pin_factory = saved


@pytest.fixture()
def pwm(request, mock_factory):
    mock_factory.pin_class = SimulatedPin   # every remote pin does PWM
