"""Choosing a backend, and the parts of the kernel backends that run anywhere
(the gpiod backend itself is tried against gpio-sim in tests/hw)."""
import importlib.util
import threading

import pytest

from remoteio.server.backends import BackendUnavailable, select_backend
from remoteio.server.backends.gpiod import SoftPWM

from remoteio.testing import wait_until

HAS_GPIOD = importlib.util.find_spec("gpiod") is not None


@pytest.mark.parametrize("name", ["gpiod", "lgpio"])
def test_a_kernel_backend_on_a_missing_chip_says_why(name):
    with pytest.raises(BackendUnavailable) as raised:
        select_backend(name, chip=99)
    message = str(raised.value)
    assert "gpiochip99" in message or "not installed" in message, message


@pytest.mark.skipif(HAS_GPIOD, reason="gpiod is installed here")
def test_the_gpiod_backend_without_gpiod_names_the_package():
    with pytest.raises(BackendUnavailable, match="gpiod>=2.1"):
        select_backend("gpiod")


def test_auto_on_a_machine_without_gpio_falls_back_to_the_simulated_board():
    assert select_backend("auto").name == "sim"


def test_software_pwm_toggles_at_its_duty_and_its_thread_ends_when_stopped():
    levels = []
    lock = threading.Lock()

    def drive(level):
        with lock:
            levels.append(level)

    pwm = SoftPWM(drive, frequency=200.0)
    pwm.duty = 0.5
    assert wait_until(lambda: levels.count(1) >= 10 and levels.count(0) >= 10, timeout=10)
    pwm.stop()
    assert not pwm.alive
    with lock:
        after_stop = len(levels)
    with lock:
        ones = levels.index(1)
        assert levels[ones:ones + 4] == [1, 0, 1, 0]  # high, low, high, low: no repeats
    assert len(levels) == after_stop  # nothing drives once stopped


def test_software_pwm_at_full_duty_stays_high():
    levels = []
    pwm = SoftPWM(levels.append, frequency=500.0)
    pwm.duty = 1.0
    assert wait_until(lambda: len(levels) >= 5, timeout=10)
    pwm.stop()
    first_high = levels.index(1)
    assert set(levels[first_high:]) == {1}
