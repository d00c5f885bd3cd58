"""Board and GPIO numbering name the same pins; every call is acknowledged
by the Pi once its worker has the task, and errors say what is wrong.

    REMOTEIO_HOST=127.0.0.1 REMOTEIO_PORT=1234 python examples/gpio_numbering.py
"""
import os

from remoteio import RemoteServer
from remoteio.errors import BadPin

if __name__ == "__main__":
    with RemoteServer(os.environ.get("REMOTEIO_HOST", "localhost"),
                      int(os.environ.get("REMOTEIO_PORT", 8509))) as server:
        by_board = server.pin(7, "b")       # physical pin 7
        by_gpio = server.pin(4, "g")        # GPIO4: the same pin
        assert by_board is by_gpio
        by_board.on(time_ms=500, wait=True)  # returns once the pin is off again
        print("BOARD7 state:", by_board.state())
        try:
            server.pin(1)                   # 3V3 power, not a GPIO
        except BadPin as exc:
            print("refused:", exc)
