"""gpiozero devices on a remote pin factory: an LED and a Button through
``remoteio.gpiozero_factory.RemoteIOFactory`` (skipped until that module
exists)."""
import importlib.util
import threading

import pytest

if importlib.util.find_spec("remoteio.gpiozero_factory") is None:
    pytest.skip("remoteio.gpiozero_factory does not exist yet: the gpiozero LED + Button "
                "scenario is not tested", allow_module_level=True)

LED_GPIO = 17
BUTTON_GPIO = 27


def test_led_and_button_through_the_gpiozero_factory(rig, board):
    from gpiozero import LED, Button
    from remoteio.gpiozero_factory import RemoteIOFactory

    factory = RemoteIOFactory(*rig.address)
    try:
        led = LED(LED_GPIO, pin_factory=factory)
        led.on()
        assert board.wait_level(LED_GPIO, 1, timeout=10)
        assert led.is_lit
        led.off()
        assert board.wait_level(LED_GPIO, 0, timeout=10)
        assert not led.is_lit

        button = Button(BUTTON_GPIO, pull_up=True, pin_factory=factory)
        assert board.wait_level(BUTTON_GPIO, 1, timeout=10)     # the pull-up reached the line
        if board.info(BUTTON_GPIO) is not None:
            assert "bias_pull_up" in board.info(BUTTON_GPIO)["flags"]
        assert not button.is_pressed
        pressed, released = threading.Event(), threading.Event()
        button.when_pressed = pressed.set
        button.when_released = released.set
        board.drive(BUTTON_GPIO, 0)                              # press
        assert pressed.wait(10), "when_pressed did not fire"
        assert button.is_pressed
        board.release(BUTTON_GPIO)
        assert released.wait(10), "when_released did not fire"
        assert not button.is_pressed
        button.close()
        led.close()
    finally:
        factory.close()
