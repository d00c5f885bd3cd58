"""remoteio: drive a Raspberry Pi's GPIO pins over the network.

On the Pi (or anywhere, on a simulated board)::

    from remoteio import run_server

    if __name__ == "__main__":
        run_server(port=8509)

Anywhere else::

    from remoteio import RemoteServer

    with RemoteServer("pi.local", 8509) as server:
        led = server.pin(7, "b")      # physical pin 7 = GPIO4
        led.on(time_ms=2000)          # on for 2 s, timed on the Pi
"""
from typing import Any

from . import errors
from ._version import __version__
from .errors import RemoteIOError
from .settings import DEFAULT_PORT

#: the client's names, imported on first use: a server never loads the
#: client (asyncio and all), which would cost every process it forks memory
_CLIENT_NAMES = ("PinEvent", "RemotePin", "RemoteServer")


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'remoteio' has no attribute {name!r}")


def run_server(port: int = DEFAULT_PORT, mode: str = "wait", host: str = "0.0.0.0",
               backend: str = "auto", **options) -> None:
    """Serve the pins of this machine until SIGTERM/Ctrl-C (see remoteio.server)."""
    from .server import run_server as _run_server
    _run_server(port=port, mode=mode, host=host, backend=backend, **options)


__all__ = ["RemoteServer", "RemotePin", "PinEvent", "run_server", "errors",
           "RemoteIOError", "__version__"]
