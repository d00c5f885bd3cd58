"""The RPi.GPIO backend: older Raspberry Pis (up to the Pi 4) and older OSes."""
from __future__ import annotations

from typing import Any, Optional

from gpiozero.exc import PinUnknownPi

from . import Backend, BackendUnavailable


class RPiGPIOBackend(Backend):
    name = "rpigpio"

    def __init__(self, revision: Optional[int] = None):
        super().__init__(revision)
        try:
            import RPi.GPIO  # noqa: F401
        except (ImportError, RuntimeError) as exc:
            raise BackendUnavailable(f"RPi.GPIO cannot be used here ({exc})") from None
        self.preload()

    def detect_revision(self) -> int:
        from gpiozero.pins.local import get_pi_revision
        try:
            return get_pi_revision()
        except (PinUnknownPi, OSError):
            raise BackendUnavailable("not a Raspberry Pi") from None

    def preload(self) -> None:
        import gpiozero.pins.rpigpio  # noqa: F401

    def make_factory(self) -> Any:
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        revision = self.revision

        class Factory(RPiGPIOFactory):
            def _get_revision(self) -> int:
                return revision if revision is not None else super()._get_revision()

        info = self._pi_board_info  # built before the fork: shared, not rebuilt per worker

        factory = Factory()
        if info is not None:
            factory._info = info
        return factory
