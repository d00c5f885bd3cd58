"""The server example of the original remoteio README, unchanged but for the
port, which the environment may override (REMOTEIO_PORT, default 1234).

On a Raspberry Pi it serves the real pins (gpiod, lgpio or RPi.GPIO); anywhere else
it serves a simulated board. Stop it with Ctrl-C: every pin is made safe.
"""
import os

from remoteio import run_server

if __name__ == "__main__":
    run_server(port=int(os.environ.get("REMOTEIO_PORT", 1234)))
