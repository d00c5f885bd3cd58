"""The remoteio wire protocol as pure code: bytes in, messages out, no sockets.

* :mod:`.framing`: newline framing with a frame-size limit
* :mod:`.fields`, :mod:`.ops`: the operation whitelist and field validators
* :mod:`.reading`: frame -> validated request (server side)
* :mod:`.writing`: replies, events (server side) and requests (client side)
* :mod:`.session`: per-connection state (hello, authentication)

docs/protocol.md describes every message.
"""
from .ops import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
