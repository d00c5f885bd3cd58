"""Any gpiozero script, on a remote Pi: a button toggles an LED.

Unchanged gpiozero code; only the pin factory differs. Either select it from
the environment (no code change at all):

    GPIOZERO_PIN_FACTORY=remoteio REMOTEIO_HOST=pi.local python3 my_script.py

or pass it explicitly, as here:

    REMOTEIO_HOST=pi.local python3 examples/gpiozero_remote.py

Against a simulated board (`remoteio serve --sim`) the script presses the
button itself and exits.
"""
import os
import time
from signal import pause

from gpiozero import LED, Button

from remoteio.gpiozero_factory import RemoteIOFactory

if __name__ == "__main__":
    factory = RemoteIOFactory(os.environ.get("REMOTEIO_HOST", "localhost"),
                              int(os.environ.get("REMOTEIO_PORT", 8509)))
    led = LED(17, pin_factory=factory)
    button = Button(27, pin_factory=factory)
    button.when_pressed = led.toggle      # a callback that drives another remote pin
    print(f"connected to a {factory.board_info.description}")
    if factory.server.board.get("backend") == "sim":
        for _ in range(2):
            factory.server.sim.drive("GPIO27", 0)   # press...
            time.sleep(0.1)
            factory.server.sim.release("GPIO27")    # ...release
            time.sleep(0.1)
            print("LED is", "on" if led.is_lit else "off")
    else:
        print("press the button on GPIO27; Ctrl-C to stop")
        try:
            pause()
        except KeyboardInterrupt:
            pass
    factory.close()
