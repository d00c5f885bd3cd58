"""The remoteio server: listener thread -> router -> one process per pin.

See docs/architecture.md for the path of a frame through these modules.
"""
from ..settings import DEFAULT_PORT
from .app import Server, run_server

__all__ = ["DEFAULT_PORT", "Server", "run_server"]
