"""Fixtures gpiozero's test_real_pins.py expects from gpiozero's own repository
conftest (which its sdist does not ship): only ``no_default_factory``."""
import pytest
from gpiozero import Device


@pytest.fixture()
def no_default_factory(request):
    saved = Device.pin_factory
    Device.pin_factory = None
    try:
        yield None
    finally:
        Device.pin_factory = saved
