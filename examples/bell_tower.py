"""The seed's bell tower: bits 0, 1, 2, 3, 2, 1 of an MCP23017 rung in turn, each pulse timed on the Pi.

    REMOTEIO_HOST=pi.local python3 examples/bell_tower.py [rounds]

The server declares the chip (docs/expanders.md)::

    [expanders.mcp0]
    chip = "mcp23017"
    bus = 1
    address = 0x20

Each bell is one pin of the expander's port A (``mcp0:A0`` .. ``mcp0:A3``,
or another expander's: ``REMOTEIO_EXPANDER``): ``on(time_ms=500)`` is sent
and the Pi switches the bell off 500 ms later, whatever the network does;
the client only keeps the 450 ms step of the chase. Against ``remoteio serve
--sim --config FILE``, FILE holding the section above, it prints each pulse as
the simulated chip recorded it.
"""
import os
import sys
import time

from remoteio import RemoteServer
from remoteio.testing import pulses

CHASE = (0, 1, 2, 3, 2, 1)
PULSE_MS, STEP_S = 500, 0.450
EXPANDER = os.environ.get("REMOTEIO_EXPANDER", "mcp0")
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3

with RemoteServer(os.environ.get("REMOTEIO_HOST", "localhost"),
                  int(os.environ.get("REMOTEIO_PORT", 8509))) as server:
    bells = [server.pin(f"{EXPANDER}:A{bit}") for bit in range(4)]
    for _ in range(rounds):
        for bit in CHASE:
            bells[bit].on(time_ms=PULSE_MS)    # timed on the Pi
            time.sleep(STEP_S)
    for bell in bells:
        bell.sync()                            # the last pulses have ended
    if server.board["backend"] == "sim":       # what the simulated chip saw
        rung = sorted((start, bit, width) for bit in range(4)
                      for start, width in pulses(server.sim.history(f"{EXPANDER}:A{bit}")))
        for start, bit, width in rung:
            print(f"bell {bit}: {width:.1f} ms")
