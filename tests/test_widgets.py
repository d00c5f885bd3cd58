"""Live widgets (ipywidgets, the jupyter extra): outputs drive their pin, all follow change events."""
from __future__ import annotations

import asyncio
import sys

import pytest

from remoteio.testing import wait_until
from remoteio.aio import AsyncRemoteServer

# ipywidgets imports IPython, whose jedi raises the recursion limit for the whole
# process (to 3000); the fuzz tests' deep JSON relies on the default: put it back
_LIMIT = sys.getrecursionlimit()
try:
    pytest.importorskip("ipywidgets")
finally:
    sys.setrecursionlimit(_LIMIT)


def test_an_output_toggle_drives_the_pin_and_follows_other_clients(server, client):
    led = client.pin(7)
    toggle = led.widget()
    assert type(toggle).__name__ == "ToggleButton" and toggle.value is False
    toggle.value = True                        # a click
    assert server.sim.value(7) == 1.0
    led.off()                                  # changed elsewhere: the event moves the widget
    assert wait_until(lambda: toggle.value is False, timeout=5)
    assert server.sim.value(7) == 0.0          # and the echo was not sent back as an "on"


def test_a_pwm_output_is_a_slider(server, client):
    dim = client.pin(12)
    dim.value(level=0.25)
    slider = dim.widget()
    assert type(slider).__name__ == "FloatSlider" and slider.value == 0.25
    slider.value = 0.75
    assert server.sim.value(12) == pytest.approx(0.75)


def test_an_input_indicator_follows_change_events(server, client):
    button = client.pin(11)
    button.as_input(pull="down")
    light = button.widget()
    assert type(light).__name__ == "Valid" and light.value is False
    client.sim.drive(11, 1)
    assert wait_until(lambda: light.value is True, timeout=5)


def test_the_dashboard_shows_the_pins_in_use_with_live_levels(server, client):
    client.pin(11).as_input(pull="down")
    client.pin(7).on()
    board = client.dashboard()
    assert set(board.levels) == {7, 11} and board.levels[7].value is True
    client.sim.drive(11, 1)
    assert wait_until(lambda: board.levels[11].value is True, timeout=5)


def test_an_async_pins_widget_drives_it_from_the_loop(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            led = await remote.pin(7)
            toggle = await led.widget()
            toggle.value = True
            for _ in range(500):
                if server.sim.value(7) == 1.0:
                    break
                await asyncio.sleep(0.01)
            assert server.sim.value(7) == 1.0
            await led.off()
            for _ in range(500):
                if toggle.value is False:
                    break
                await asyncio.sleep(0.01)
            assert toggle.value is False
    asyncio.run(scenario())
