"""Talk to a serial device on a remote Pi: pyserial's calls, the device's answers pushed.

    REMOTEIO_HOST=pi.local python3 examples/serial_echo.py [port] [message ...]

On the Pi this was ``port = serial.Serial("/dev/serial0", 115200, timeout=2)``;
only that line changed. Against ``remoteio serve --sim`` the port ``serial0``
is a simulated echo device: every line written comes back. ``when_data``
reports each arrival on the client's callback thread.
"""
import os
import sys
import threading

from remoteio import RemoteServer

server = RemoteServer(os.environ.get("REMOTEIO_HOST", "localhost"),
                      int(os.environ.get("REMOTEIO_PORT", 8509)))
name = sys.argv[1] if len(sys.argv) > 1 else "serial0"
messages = sys.argv[2:] or ["hello", "remote serial"]

port = server.serial(name, 115200, timeout=2)   # was: serial.Serial("/dev/serial0", 115200, timeout=2)
arrived = threading.Event()
port.when_data = lambda p: arrived.set()

for text in messages:
    port.write(text.encode() + b"\n")
    answer = port.readline()
    print("sent %r, got back %r" % (text, answer.decode().rstrip("\n")))

print("data pushed:", arrived.wait(2), "| bytes lost:", port.bytes_lost)
port.close()
server.close()
