"""systemd's service notifications, without a dependency: ``sd_notify`` is
one datagram to the Unix socket named by ``$NOTIFY_SOCKET``.

A unit with ``Type=notify`` is "started" once the service sends
``READY=1`` (here: once the server listens); with ``WatchdogSec=`` systemd
sets ``$WATCHDOG_USEC`` and restarts the service unless it sends
``WATCHDOG=1`` at least that often (here: from the server's I/O loop, so a
hung loop is a dead service). Outside systemd (no ``$NOTIFY_SOCKET``) every
call does nothing.

>>> notifier = Notifier(environ={})
>>> notifier.enabled, notifier.watchdog_s
(False, None)
>>> notifier.ready()
False
>>> Notifier(environ={"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "20000000"}).watchdog_s
20.0
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Mapping, Optional

log = logging.getLogger(__name__)


def _address(name: str) -> str:
    """A socket address from ``$NOTIFY_SOCKET``: a path, or ``@name`` for
    Linux's abstract namespace (a leading NUL byte)."""
    return "\0" + name[1:] if name.startswith("@") else name


class Notifier:
    """Talks to systemd (or to whatever ``$NOTIFY_SOCKET`` names)."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None):
        env = os.environ if environ is None else environ
        self.socket_name = env.get("NOTIFY_SOCKET", "") or None
        self.watchdog_s: Optional[float] = None
        usec = env.get("WATCHDOG_USEC", "").strip()
        pid = env.get("WATCHDOG_PID", "").strip()
        if self.socket_name and usec.isdigit() and int(usec) > 0 and pid in ("", str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._last_ping = -1e9
        self._sock: Optional[socket.socket] = None

    @property
    def enabled(self) -> bool:
        return self.socket_name is not None

    def notify(self, message: str) -> bool:
        """Send one notification (``"READY=1"``, ``"STATUS=..."``); True if sent."""
        if self.socket_name is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), _address(self.socket_name))
            return True
        except OSError as exc:
            log.warning("systemd notification %r not sent to %s: %s",
                        message.split("=", 1)[0], self.socket_name, exc)
            return False

    def ready(self, status: str = "") -> bool:
        """The service is up (``Type=notify``: systemctl start returns now)."""
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def reloading(self) -> bool:
        """A reload (SIGHUP) has begun; :meth:`ready` again when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def housekeeping(self, now: float) -> None:
        """Called once a second by the server's I/O loop: keep the watchdog
        fed (every quarter of its timeout). A loop that hangs stops calling,
        and systemd restarts the service."""
        if self.watchdog_s is None or now - self._last_ping < self.watchdog_s / 4:
            return
        self._last_ping = now
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
