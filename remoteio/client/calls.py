"""A request in flight (:class:`Call`) and waiting for several at once.

A Call's caller waits in :meth:`Call.result`; a Call of a Link waits through
:meth:`Link.wait <remoteio.client.link.Link.wait>` (which may read the
socket for it). A call whose caller stopped waiting is *abandoned*.

>>> call = Call("ping")
>>> call.done
False
>>> call.settle({"id": 1, "ok": True, "time_ns": 5})
>>> call.result(0.1)["time_ns"], call.done
(5, True)
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional

from ..errors import CallTimeout
from ..protocol.client_conn import result

log = logging.getLogger(__name__)

_SETTLING = threading.Lock()  # held for two assignments: one for all calls

if TYPE_CHECKING:  # the link a call was sent on waits for it
    from .link import Link

__all__ = ["Call", "abandon", "wait_all"]


class Call:
    """One request in flight; :meth:`result` waits for its reply (reading the
    socket itself when nobody else does: see :meth:`Link.wait`)."""

    __slots__ = ("op", "link", "_wake", "reply", "error", "abandoned", "on_reply")

    def __init__(self, op: str, link: Optional["Link"] = None,
                 on_reply: Optional[Callable[[Dict[str, Any]], None]] = None):
        self.op = op
        self.link = link
        #: run by whoever hands out the reply, as it does, before anything read
        #: after it (a watch's seq and level are in place before its first event)
        self.on_reply = on_reply
        #: released when the reply is in, or when this call's caller is
        #: handed the socket to read (a hint: the waiter looks again)
        self._wake = threading.Lock()
        self._wake.acquire()
        self.reply: Optional[Dict[str, Any]] = None
        self.error: Optional[BaseException] = None
        #: nobody waits for the reply any more (see the module docstring)
        self.abandoned = False

    def settle(self, reply: Optional[Dict[str, Any]], error: Optional[BaseException] = None) -> None:
        """Give the call its outcome; the first one stands. The reader (a reply,
        or its end) and the keeper (giving up on the link) can both settle one
        call, at the same moment (found by the chaos run of tests/net)."""
        with _SETTLING:
            took = self.reply is None and self.error is None
            if took:
                self.reply, self.error = reply, error
        if took and self.on_reply is not None and reply is not None and reply.get("ok") \
                and not self.abandoned:
            try:
                self.on_reply(reply)
            except Exception:  # whoever reads must go on
                log.exception("handling the reply to %s failed", self.op)
        self.signal()

    def signal(self) -> None:
        """Wake this call's waiter (at most one wake is kept)."""
        try:
            self._wake.release()
        except RuntimeError:
            pass  # woken already and not yet awake: one wake will do

    def sleep(self, timeout: Optional[float]) -> bool:
        """Wait until :meth:`signal`; False after *timeout* seconds."""
        return self._wake.acquire(timeout=-1 if timeout is None else max(0.0, timeout))

    @property
    def done(self) -> bool:
        return self.reply is not None or self.error is not None

    def result(self, timeout: Optional[float]) -> Dict[str, Any]:
        """The reply's fields; raises the server's error, or CallTimeout."""
        if self.link is not None or not self.done:
            try:
                got = (self.link.wait(self, timeout) if self.link is not None
                       else self.sleep(timeout) and self.done)
            except BaseException:
                # Ctrl-C (or a signal handler's exception) while waiting: the
                # caller is gone, so nobody may wait for this reply again
                self.abandoned = True
                raise
            if not got:
                self.abandoned = True  # the caller was told there is no answer
                raise CallTimeout(f"no reply to {self.op} within {timeout:g} s")
        if self.error is not None:
            raise self.error
        reply = self.reply
        if not reply.get("ok"):
            result(reply)  # raises the server's error as its class
        return reply


def abandon(calls: Iterable[Call]) -> None:
    """Mark the calls nobody will wait for (the rest of a pipeline whose
    caller gave up), so that closing does not wait for their replies."""
    for call in calls:
        call.abandoned = True


def wait_all(calls: List[Call], timeout: Optional[float]) -> List[Dict[str, Any]]:
    """The replies of *calls*, in order, all within one *timeout*; if waiting
    for one fails, the later ones are abandoned too (their caller is gone)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        return [call.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
                for call in calls]
    except BaseException:
        abandon(calls)
        raise
