"""The remoteio server: listener thread -> router -> one process per pin.

See docs/architecture.md for the path of a frame through these modules.
"""
from .app import DEFAULT_PORT, Server, run_server

__all__ = ["DEFAULT_PORT", "Server", "run_server"]
