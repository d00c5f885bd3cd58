"""GPIO backends: what actually drives the pins.

Every backend hands each pin worker a gpiozero pin factory, so the workers
speak one API (gpiozero's ``Pin``) whatever the hardware. A backend is
chosen once, in the server process, before any worker is forked.

What a backend must and may provide is listed on :class:`Backend`.

``auto`` picks gpiod (libgpiod v2 on a gpiochip: Pi 5 and current Raspberry
Pi OS; no thread wakes while a pin is idle), then lgpio (a gpiochip, where
gpiod is not installed), then RPi.GPIO (older Pis), then the simulated board,
and logs which and why:

>>> backend = select_backend("sim")
>>> backend.name, backend.board_info()["model"]
('sim', '5B')
"""
from __future__ import annotations

import glob
import logging
import os
from typing import Any, Dict, Optional

from gpiozero.exc import PinUnknownPi
from gpiozero.pins.pi import PiBoardInfo

from ...settings import BACKEND_NAMES
from ...errors import BackendUnavailable  # noqa: F401 (defined in errors.py)

log = logging.getLogger(__name__)

#: the board a simulated server pretends to be: a Raspberry Pi 5 Model B 8GB
SIM_REVISION = 0xD04170


class Backend:
    """Base of the backends.

    A backend *must* provide:

    * :attr:`name`: ``"sim"``, ``"gpiod"``, ``"lgpio"`` or ``"rpigpio"``
    * :meth:`make_factory`: a new gpiozero ``Factory``, called inside a pin
      worker process after the fork (hardware handles are per process); the
      base builds one from :meth:`factory_class` and :meth:`factory_options`,
      told this board's revision, sharing the board info built before the fork
    * :meth:`detect_revision`: the board's revision code when none was given
      (the base reads the Pi's own; called in the server process)

    and *may* provide:

    * :meth:`before_fork`: what every worker would otherwise make for itself,
      made once in the server before the zygote's fork and so shared (gpiod:
      its gpiozero classes and the header's chip)
    * :meth:`prepare_worker`, :meth:`cleanup_worker`: per-worker set-up and
      clean-up, in the worker process (lgpio: a private work folder)
    * :attr:`sim`: the :class:`~remoteio.server.backends.simboard.SimBoard`, on
      the simulated backend only
    * :meth:`close`: free what it holds in the server process

    :meth:`board_info` (for ``hello``; it claims no line) and
    :meth:`pi_board_info` come from the revision and are not overridden.
    """

    name = "?"
    sim: Optional[Any] = None

    def __init__(self, revision: Optional[int] = None):
        self.revision = revision
        self._pi_board_info: Optional[PiBoardInfo] = None
        self._factory_type: Optional[type] = None
        self._known_pins: Optional[Dict[int, Any]] = None

    def factory_class(self) -> type:
        """The gpiozero ``PiFactory`` subclass :meth:`make_factory` builds."""
        raise NotImplementedError

    def factory_options(self) -> Dict[str, Any]:
        """Keyword arguments for :meth:`factory_class` (lgpio: its chip)."""
        return {}

    def make_factory(self) -> Any:
        factory = self.made_factory_class()(**self.factory_options())
        if self._pi_board_info is not None:  # built before the fork: shared, not rebuilt per worker
            factory.shared_board_info = self._pi_board_info
            factory.known_pins = self.known_pins()
        return factory

    def made_factory_class(self) -> type:
        """:meth:`factory_class`, told this board's revision; made once (a
        class made before the fork is shared by the workers)."""
        if self._factory_type is None:
            base = self.factory_class()
            revision = self.revision

            class Factory(KnownPins, base):  # type: ignore[valid-type,misc]
                def _get_revision(self) -> int:
                    return revision if revision is not None else super()._get_revision()

            self._factory_type = Factory
        return self._factory_type

    def share_before_fork(self) -> None:
        """Called in the server before the zygote's fork: the board's
        description and its pin table (:meth:`known_pins`), then what the
        backend itself shares (:meth:`before_fork`)."""
        self.known_pins()
        self.before_fork()

    def before_fork(self) -> None:
        """Called by :meth:`share_before_fork`; the base does nothing."""

    def detect_revision(self) -> int:
        from gpiozero.pins.local import get_pi_revision
        try:
            return get_pi_revision()
        except (PinUnknownPi, OSError):
            raise BackendUnavailable(
                "not a Raspberry Pi (no revision in /proc/device-tree or "
                "/proc/cpuinfo); give the board revision explicitly") from None

    def prepare_worker(self, board: int) -> None:
        """Called in a pin worker right after the fork, before any factory."""

    def cleanup_worker(self) -> None:
        """Called in a pin worker as it exits."""

    def close(self) -> None:
        """Free what the backend holds in the server process (after the workers)."""
        if self.sim is not None:
            self.sim.close()

    def pi_board_info(self) -> PiBoardInfo:
        """gpiozero's description of the board, built once in the server so
        that forked workers share it instead of each building its own."""
        if self._pi_board_info is None:
            revision = self.revision if self.revision is not None else self.detect_revision()
            self._pi_board_info = PiBoardInfo.from_revision(revision)
        return self._pi_board_info

    def known_pins(self) -> Dict[int, Any]:
        """GPIO number -> gpiozero's ``PinInfo`` of the board, found once (see
        :class:`KnownPins`)."""
        if self._known_pins is None:
            self._known_pins = header_pins(self.pi_board_info())
        return self._known_pins

    def board_info(self) -> Dict[str, Any]:
        info = self.pi_board_info()
        return {"model": info.model, "revision": info.revision, "soc": info.soc,
                "backend": self.name, "description": info.description}


class KnownPins:
    """A gpiozero ``PiFactory`` whose :meth:`pin` looks a GPIO number up in
    :attr:`known_pins`, a table made before the fork, where gpiozero's own
    lookup (``find_pin``) walks every pin of every header: in a forked
    worker, each pin's description it reads gets a reference count written,
    and the pages they lie on become that worker's own."""

    known_pins: Dict[int, Any] = {}
    #: gpiozero's board description made before the fork (None: gpiozero builds its own)
    shared_board_info: Optional[PiBoardInfo] = None

    def _get_board_info(self) -> PiBoardInfo:
        # gpiozero's hook behind its board_info property
        if self.shared_board_info is not None:
            return self.shared_board_info
        return super()._get_board_info()  # type: ignore[misc]

    def pin(self, name: Any) -> Any:
        info = self.known_pins.get(name) if type(name) is int else None
        if info is None:
            return super().pin(name)  # type: ignore[misc]
        pin = self.pins.get(info)  # type: ignore[attr-defined]
        if pin is None:
            pin = self.pins[info] = self.pin_class(self, info)  # type: ignore[attr-defined]
        return pin


def header_pins(info: PiBoardInfo) -> Dict[int, Any]:
    """GPIO number -> the first ``PinInfo`` gpiozero's ``find_pin`` finds for it.

    >>> header_pins(PiBoardInfo.from_revision(SIM_REVISION))[4].name
    'GPIO4'
    """
    found: Dict[int, Any] = {}
    for header in info.headers.values():
        for pin in header.pins.values():
            for name in pin.names:
                if type(name) is int:
                    found.setdefault(name, pin)
    return found


def check_gpiochip(chip: Optional[int]) -> None:
    """Raise BackendUnavailable unless /dev/gpiochip<chip> (any chip, for None)
    is there and ours to use (the gpiod and lgpio backends)."""
    if chip is not None:
        path = f"/dev/gpiochip{chip}"
        if not os.path.exists(path):
            raise BackendUnavailable(f"{path} does not exist")
        if not os.access(path, os.R_OK | os.W_OK):
            raise BackendUnavailable(f"no read/write access to {path} (join the gpio group)")
    elif not glob.glob("/dev/gpiochip*"):
        raise BackendUnavailable("no /dev/gpiochip* on this machine")


def parse_revision(text: Optional[str]) -> Optional[int]:
    """A board revision code given by a user (``"d04170"``, ``"0xd04170"``)."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    try:
        return int(str(text), 16)
    except ValueError:
        raise BackendUnavailable(f"board revision {text!r} is not a hex revision code") from None


def select_backend(name: str = "auto", *, revision: Optional[int] = None,
                   chip: Optional[int] = None) -> Backend:
    """Resolve *name* to a ready :class:`Backend`, logging what was chosen."""
    from .sim import SimBackend

    if name == "sim":
        return SimBackend(revision)
    if name == "gpiod":
        from .gpiod import GpiodBackend
        return GpiodBackend(revision, chip)
    if name == "lgpio":
        from .lgpio import LGPIOBackend
        return LGPIOBackend(revision, chip)
    if name == "rpigpio":
        from .rpigpio import RPiGPIOBackend
        return RPiGPIOBackend(revision)
    if name != "auto":
        raise BackendUnavailable(
            f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    reasons = []
    for candidate in ("gpiod", "lgpio", "rpigpio"):
        try:
            backend = select_backend(candidate, revision=revision, chip=chip)
            backend.board_info()
        except Exception as exc:  # each failure is a reason to try the next
            reasons.append(f"{candidate}: {exc}")
            continue
        log.info("backend: %s (auto)", candidate)
        return backend
    if not glob.glob("/dev/gpiochip*"):
        reasons.append("no /dev/gpiochip* on this machine")
    log.info("backend: sim, the simulated board (auto; %s)", "; ".join(reasons))
    return SimBackend(revision)
