"""Keeping a client connected: heartbeats, and reconnects with backoff.

One thread per :class:`~remoteio.RemoteServer`. It sleeps on an event (it
never spins) and pings the server whenever the client has sent nothing, or
received nothing, for ``heartbeat`` seconds: the server drops a connection
from which it received nothing for 3 heartbeats + 1 s (and a client that only
listens to events receives plenty while sending nothing), and a client that
only writes into a partition hears nothing back. It declares the link lost
(and resets it) if the ping goes unanswered within the call timeout. When the link is lost it reconnects,
waiting 0.1 s, then twice as long after every failure, up to 5 s (with a
little jitter so a room full of clients does not reconnect in step), and the
client re-applies its pin setup (see ``RemoteServer.reconnect``).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING

from ..errors import LinkError, RemoteIOError

if TYPE_CHECKING:  # the client that owns this thread
    from .client import RemoteServer

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0


class Keeper(threading.Thread):
    def __init__(self, server: "RemoteServer", heartbeat: float, reconnect: bool):
        super().__init__(name="remoteio-keeper", daemon=True)
        self.server = server
        self.heartbeat = heartbeat
        self.reconnect = reconnect
        self.wake = threading.Event()
        self.attempts = 0  # failed reconnection attempts in a row
        self._jitter = random.Random()  # its own: the program's random state is not ours to move

    def run(self) -> None:
        backoff = FIRST_BACKOFF
        server = self.server
        while not server.closed:
            link = server.link
            if link.lost is not None:
                if not self.reconnect:
                    return
                try:
                    server.reconnect()
                except (RemoteIOError, OSError) as exc:
                    self.attempts += 1
                    log.info("reconnecting to %s:%d failed (%s); next try in %.1f s",
                             server.host, server.port, exc, backoff)
                    self.wake.wait(backoff * self._jitter.uniform(0.8, 1.2))
                    self.wake.clear()
                    backoff = min(MAX_BACKOFF, backoff * 2)
                else:
                    self.attempts = 0
                    backoff = FIRST_BACKOFF
                continue
            if not self.heartbeat:  # no heartbeat: wake only for a lost link or close()
                self.wake.wait()
                self.wake.clear()
                continue
            # the older of the last send and the last receipt: the server needs
            # to hear from us, and we need to hear from it (a client that only
            # writes into a partition gets no reply and must notice it too)
            quiet = time.monotonic() - min(link.last_sent, link.last_received)
            if quiet < self.heartbeat:
                # sleep until a heartbeat after that moment, then look again:
                # traffic meanwhile moves it on
                if self.wake.wait(self.heartbeat - quiet):
                    self.wake.clear()
                continue
            try:
                link.call("ping", {}).result(server.timeout)
            except LinkError as exc:
                link.abort(exc)
            except RemoteIOError as exc:  # refused, yet answered: the link is alive
                log.debug("heartbeat ping refused: %s", exc)
