"""``remoteio serve`` as a service: serve until SIGTERM or Ctrl-C, tell
systemd when the server listens and keep its watchdog fed
(:mod:`.systemd`), and re-read the configuration on SIGHUP.

A reload (``systemctl reload remoteio``, i.e. SIGHUP) applies the pin rules
and the token without dropping anyone: the rules judge the next request of
every connection (and every running worker's next change); the token is
asked of connections made from then on. A configuration that no longer
reads keeps the server as it was (the mistake is logged). Every other
setting (host, port, mode, backend, TLS, limits, buses, expanders, MQTT,
advertising, real-time priority) is only taken at the next restart, and
the log names each one that changed.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import signal
import threading
from typing import Any, Callable, Dict, Optional

from .config import ServerConfig
from ..tokens import check_token, read_token_file
from .app import Server
from .systemd import Notifier

log = logging.getLogger("remoteio.server")

#: what a reload applies; every other setting takes a restart (and a reload says so)
RELOADED = ("pins", "default_access", "token", "token_file")
#: settings a reload cannot change while serving: all the others
RESTART_ONLY = tuple(f.name for f in dataclasses.fields(ServerConfig) if f.name not in RELOADED)
#: how the log names a setting that is a section of the file
_SECTION = {"buses": "[buses]", "bus_default_access": "[buses] default_access",
            "expanders": "[expanders]", "mqtt": "[mqtt]"}


def restart_only_changes(old: ServerConfig, new: ServerConfig) -> list:
    """The settings that differ between *old* and *new* which a reload does not apply.

    >>> restart_only_changes(ServerConfig(), ServerConfig(port=1, advertise=False, pins={7: None}))
    ['port', 'advertise']
    """
    return [_SECTION.get(key, key) for key in RESTART_ONLY
            if getattr(new, key) != getattr(old, key)]


def config_token(config: ServerConfig) -> Optional[str]:
    """The token a configuration asks for (its file read now), or None;
    ValueError for one too weak to use (as the server refuses it at start)."""
    if config.token_file:
        return check_token(read_token_file(config.token_file), f"the token in {config.token_file}")
    return config.token


class Daemon:
    """Runs *server* in the foreground; *load* gives the configuration again
    (for SIGHUP), *notifier* talks to systemd."""

    def __init__(self, server: Server, *, config: Optional[ServerConfig] = None,
                 load: Optional[Callable[[], ServerConfig]] = None,
                 notifier: Optional[Notifier] = None):
        self.server = server
        self.config = config
        self.load = load
        self.notifier = notifier or Notifier()
        self.reloads = 0  # reloads applied (tests look at it)
        self._actions: "queue.SimpleQueue[str]" = queue.SimpleQueue()

    def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop (every pin made safe)."""
        self.server.start()
        previous: Dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum, action in ((signal.SIGTERM, "stop"), (signal.SIGINT, "stop"),
                                   (signal.SIGHUP, "reload")):
                # SimpleQueue.put may be called from a signal handler
                previous[signum] = signal.signal(
                    signum, lambda *_, action=action: self._actions.put(action))
        try:
            self.notifier.ready(f"serving on {self.server.host} port {self.server.port}")
            while True:
                action = self._actions.get()
                if action == "stop":
                    break
                self.reload()
        finally:
            self.notifier.stopping()
            self.server.stop()
            self.notifier.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def ask(self, action: str) -> None:
        """``"stop"`` or ``"reload"``, from any thread (what the signals do)."""
        self._actions.put(action)

    def reload(self) -> bool:
        """Re-read the configuration; apply pin rules and token. True if applied."""
        if self.load is None:
            log.warning("SIGHUP: no configuration file to re-read (serve --config FILE)")
            return False
        self.notifier.reloading()
        try:
            try:
                config = self.load()
                token = config_token(config)
            except (OSError, ValueError) as exc:
                log.error("reload failed, the server goes on as it was: %s", exc)
                return False
            try:
                self.server.reload_rules(pins=dict(config.pins), default_access=config.default_access)
                self.server.reload_token(token)
            except Exception:  # a fault of ours in applying it: never a reason to stop serving
                log.exception("reload failed part way (the server goes on)")
                return False
            if self.config is not None:
                changed = restart_only_changes(self.config, config)
                if changed:
                    log.warning("reload: %s changed; that takes a restart "
                                "(systemctl restart remoteio)", ", ".join(changed))
            self.reloads += 1
            log.info("reloaded: %d pin rule%s (default access %s), %s", len(config.pins),
                     "" if len(config.pins) == 1 else "s", config.default_access,
                     "token required" if token else "no authentication")
            return True
        finally:
            self.notifier.ready(f"serving on {self.server.host} port {self.server.port}")
