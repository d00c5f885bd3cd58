"""A remote button toggles a remote LED.

Wire a button between BOARD11 (GPIO17) and ground, and an LED (with its
resistor) on BOARD7 (GPIO4). The button's pull-up is on the Pi; debouncing
happens on the Pi; the callback runs here, on the client's dispatcher thread,
and calls the server itself.

    REMOTEIO_HOST=pi.local python examples/button_led.py

Against a simulated board (`remoteio serve --sim`) the example presses the
button itself, three times, and exits.
"""
import os
import signal
import threading
import time

from remoteio import RemoteServer

if __name__ == "__main__":
    server = RemoteServer(os.environ.get("REMOTEIO_HOST", "localhost"),
                          int(os.environ.get("REMOTEIO_PORT", 8509)))
    led = server.pin(7, "b")
    button = server.pin(11, "b").as_input(pull="up", bounce_ms=20)
    presses = threading.Semaphore(0)

    def toggle(event):
        if led.read():
            led.off()
        else:
            led.on()
        print(f"button pressed (event {event.seq}): LED {'on' if led.read() else 'off'}", flush=True)
        presses.release()

    button.when_low = toggle

    if server.board.get("backend") == "sim":
        for _ in range(3):
            server.sim.drive(11, 0)      # press for a tenth of a second...
            presses.acquire(timeout=5)
            time.sleep(0.1)
            server.sim.release(11)       # ...and let go: the pull-up wins
            time.sleep(0.1)
    else:
        print("press the button on BOARD11; Ctrl-C to stop")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    server.close()
