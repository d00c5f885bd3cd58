"""The client side of remoteio: a connection to one server, its pins, its simulated board."""
from .client import RemoteServer
from .remotepin import PinEvent, RemotePin
from .simcontrol import SimControl

__all__ = ["RemoteServer", "RemotePin", "PinEvent", "SimControl"]
