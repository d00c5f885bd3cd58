"""What the pin driver makes of gpiozero's and the backends' exceptions (server/driver.py)."""
from __future__ import annotations

import pytest
from gpiozero.exc import (GPIOPinInUse, PinFixedPull, PinInvalidEdges, PinPWMUnsupported, PinSetInput)

from remoteio.errors import GPIOZERO_DETAILS, BadArgument
from remoteio.server.driver import translate


@pytest.mark.parametrize("exc, code", [
    (PinFixedPull("fixed"), "bad_argument"), (PinInvalidEdges("edges"), "bad_argument"),
    (PinSetInput("input"), "wrong_mode"), (PinPWMUnsupported("pwm"), "not_supported"),
    (GPIOPinInUse("in use"), "pin_busy"), (OSError("GPIO busy"), "pin_busy"),
])
def test_a_gpiozero_exception_becomes_the_remoteio_error_of_its_kind(exc, code):
    error = translate(exc)
    assert error.code == code
    assert error.detail == (type(exc).__name__ if type(exc).__name__ in GPIOZERO_DETAILS else None)


def test_a_remoteio_error_passes_through_unchanged():
    error = BadArgument("no")
    assert translate(error) is error


def test_an_unexpected_backend_failure_says_what_it_was():
    error = translate(RuntimeError("chip gone"))
    assert error.code == "internal_error" and "RuntimeError: chip gone" in error.message
