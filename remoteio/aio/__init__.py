"""remoteio for asyncio: :class:`AsyncRemoteServer` and its pins, on the sync client's protocol code.

>>> import asyncio                                                  # doctest: +SKIP
>>> from remoteio.aio import AsyncRemoteServer                      # doctest: +SKIP
>>> async def main():                                               # doctest: +SKIP
...     async with AsyncRemoteServer("pi.local") as server:
...         led = await server.pin(7)
...         await led.on(time_ms=500, wait=True)
>>> asyncio.run(main())                                             # doctest: +SKIP
"""
from ..client.pinlogic import PinEvent
from .pin import AsyncRemotePin, AsyncSimControl
from .server import AsyncRemoteServer

__all__ = ["AsyncRemoteServer", "AsyncRemotePin", "AsyncSimControl", "PinEvent"]
