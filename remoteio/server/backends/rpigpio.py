"""The RPi.GPIO backend: older Raspberry Pis (up to the Pi 4) and older OSes."""
from __future__ import annotations

from typing import Optional

from . import Backend, BackendUnavailable


class RPiGPIOBackend(Backend):
    name = "rpigpio"

    def __init__(self, revision: Optional[int] = None):
        super().__init__(revision)
        try:
            import RPi.GPIO  # noqa: F401
        except (ImportError, RuntimeError) as exc:
            raise BackendUnavailable(f"RPi.GPIO cannot be used here ({exc})") from None
        # imported before the workers fork, so that none of them imports it
        import gpiozero.pins.rpigpio  # noqa: F401

    def factory_class(self) -> type:
        from gpiozero.pins.rpigpio import RPiGPIOFactory
        return RPiGPIOFactory
