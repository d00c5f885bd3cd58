"""remoteio: remote control of Raspberry Pi GPIO pins over the network.

All metadata lives in setup.cfg; this file lets `pip install .` and older
tools work the same way.
"""
from setuptools import setup

setup()
