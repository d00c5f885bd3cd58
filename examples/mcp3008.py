"""gpiozero's MCP3008 on a remote Pi: read an ADC's channels over the network.

    GPIOZERO_PIN_FACTORY=remoteio REMOTEIO_HOST=pi.local python3 examples/mcp3008.py [--sim]

The MCP3008 sits on SPI0 with its CS on CE0 (GPIO8), as in gpiozero's own
recipes; the remoteio factory gives gpiozero the Pi's hardware SPI
(/dev/spidev0.0), one round trip per reading. With ``--sim`` (against
``remoteio serve --sim``, whose SPI0 CE0 has a simulated MCP3008) it first
sets the chip's input voltages through the simulated board's controls.
"""
import os
import sys

from gpiozero import MCP3008

from remoteio.gpiozero_factory import RemoteIOFactory

factory = RemoteIOFactory(os.environ.get("REMOTEIO_HOST", "localhost"),
                          int(os.environ.get("REMOTEIO_PORT", 8509)))
try:
    if "--sim" in sys.argv:
        for channel in range(8):                      # 0 V, 0.4 V, ... 2.8 V
            factory.server.sim.set_adc_voltage(channel, channel * 0.4)
    for channel in range(8):
        with MCP3008(channel=channel, pin_factory=factory) as adc:
            print("CH%d: %4d  %.2f V" % (channel, adc.raw_value, adc.voltage))
finally:
    factory.close()
