"""The client example of the original remoteio README, unchanged but for the
address, which the environment may override (REMOTEIO_HOST, REMOTEIO_PORT).

Start examples/server.py first (here or on a Pi), then:

    REMOTEIO_HOST=127.0.0.1 python examples/client.py
"""
import os

from remoteio import RemoteServer

if __name__ == "__main__":
    server_ip = os.environ.get("REMOTEIO_HOST", "192.168.1.38")
    server_port = int(os.environ.get("REMOTEIO_PORT", 1234))

    remote_server = RemoteServer(server_ip, server_port)
    remote_pin = remote_server.pin(7, 'b')
    remote_pin.on(time_ms=2000)  # (Optional) Time until switch off
    remote_pin.blink()  # Blink LED
    remote_pin.pulse()  # Pulse LED
    remote_pin.off()
    remote_server.close()
