"""The two clients behind one face, so one scenario runs against both.

``sync`` is :class:`remoteio.RemoteServer` itself. ``async`` is
:class:`remoteio.aio.AsyncRemoteServer` on an event loop in a thread of its
own, seen through :class:`Blocking`: every method call runs on that loop
(a coroutine is awaited there) and blocks the test until it is done, every
attribute set happens there, and what comes back is wrapped the same way
when it is one of the async client's objects. Scenarios are written once,
in the sync client's words.
"""
from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any, Callable, Dict

from remoteio import RemoteServer
from remoteio.aio import AsyncRemotePin, AsyncRemoteServer, AsyncSimControl

_WRAPPED = (AsyncRemoteServer, AsyncRemotePin, AsyncSimControl)


class Loop:
    """An asyncio loop on its own thread; :meth:`run` waits for a call on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, function: Callable[[], Any], timeout: float = 60.0) -> Any:
        async def go() -> Any:
            outcome = function()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            return outcome
        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Blocking:
    """An async client object, used as if it were the sync client's."""

    def __init__(self, target: Any, loop: Loop):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, _WRAPPED):
            return Blocking(value, self._loop)
        if isinstance(value, dict) and value and all(isinstance(v, _WRAPPED) for v in value.values()):
            return {k: Blocking(v, self._loop) for k, v in value.items()}
        return value

    def __getattr__(self, name: str) -> Any:
        value = self._loop.run(lambda: getattr(self._target, name))
        if inspect.ismethod(value) or inspect.isfunction(value):
            return lambda *args, **kwargs: self._wrap(self._loop.run(lambda: value(*args, **kwargs)))
        return self._wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        self._loop.run(lambda: setattr(self._target, name, value))

    def __enter__(self) -> "Blocking":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __eq__(self, other: Any) -> bool:
        return self._target is (other._target if isinstance(other, Blocking) else other)

    __hash__ = object.__hash__


def connect_async(loop: Loop, host: str, port: int, **options: Any) -> Blocking:
    server = AsyncRemoteServer(host, port, **options)
    loop.run(server.connect)
    return Blocking(server, loop)


DRIVERS: Dict[str, Any] = {"sync": RemoteServer, "async": connect_async}
