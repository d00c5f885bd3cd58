"""Dump an I2C chip's registers on a remote Pi: the classic smbus loop, run over the network.

    REMOTEIO_HOST=pi.local python3 examples/i2c_register_dump.py [address] [count]

The loop is what it was on the Pi with ``smbus``; only the line that opens
the bus changed (``bus = smbus.SMBus(1)`` -> ``bus = server.i2c(1)``).
Against ``remoteio serve --sim`` it dumps the simulated MCP23017 at 0x20.
"""
import os
import sys

from remoteio import RemoteServer

server = RemoteServer(os.environ.get("REMOTEIO_HOST", "localhost"),
                      int(os.environ.get("REMOTEIO_PORT", 8509)))

address = int(sys.argv[1], 0) if len(sys.argv) > 1 else 0x20
count = int(sys.argv[2], 0) if len(sys.argv) > 2 else 0x16   # an MCP23017 has 22

bus = server.i2c(1)   # the only remote-specific line: was  bus = smbus.SMBus(1)


def dumpio(addr, count):
    for reg in range(count):
        value = bus.read_byte_data(addr, reg)
        print("0x%02x: 0x%02x  %s" % (reg, value, format(value, "08b")))


dumpio(address, count)
server.close()
