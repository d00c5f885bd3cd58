"""A bell-tower chaser on an MCP23017 of a remote Pi: bits 0-3 of port A pulsed in turn.

    REMOTEIO_HOST=pi.local python3 examples/mcp23017_chaser.py [rounds]

The chip is at 0x20 on I2C bus 1 (A0-A2 to ground). Against ``remoteio
serve --sim`` it drives the simulated MCP23017 and prints what GPIOA reads
back after each step.
"""
import os
import sys
import time

from remoteio import RemoteServer

IODIRA, GPIOA = 0x00, 0x12
ADDRESS = 0x20
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3

with RemoteServer(os.environ.get("REMOTEIO_HOST", "localhost"),
                  int(os.environ.get("REMOTEIO_PORT", 8509))) as server:
    bus = server.i2c(1)
    bus.write_byte_data(ADDRESS, IODIRA, 0xF0)       # GPA0-3 outputs, GPA4-7 inputs
    try:
        for _ in range(rounds):
            for bell in range(4):
                bus.write_byte_data(ADDRESS, GPIOA, 1 << bell)
                print("bell %d: GPIOA = %s" % (
                    bell, format(bus.read_byte_data(ADDRESS, GPIOA) & 0x0F, "04b")))
                time.sleep(0.1)
    finally:
        bus.write_byte_data(ADDRESS, GPIOA, 0x00)    # all bells quiet
