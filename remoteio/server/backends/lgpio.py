"""The lgpio backend: Linux gpiochip character devices (Pi 5, current Pi OS).

Works on any Linux board with a gpiochip: give the chip number and a Pi
board revision explicitly where the board is not a Raspberry Pi (a VM with
``gpio-sim``, another single-board computer), e.g.
``remoteio serve --backend lgpio --chip 1 --revision d04170``.

lgpio is imported only inside each pin worker, never in the server: its
import starts the thread that delivers edge alerts through a FIFO
(``.lgd-nfy<N>`` in lgpio's work directory), and that thread would not
survive the fork. Each worker gets a private work directory, because every
worker's FIFO would otherwise have the same name.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from typing import Any, Dict, Optional

from . import Backend, BackendUnavailable, check_gpiochip


class LGPIOBackend(Backend):
    name = "lgpio"

    def __init__(self, revision: Optional[int] = None, chip: Optional[int] = None):
        super().__init__(revision)
        if importlib.util.find_spec("lgpio") is None:
            raise BackendUnavailable("the lgpio module is not installed: pip install lgpio "
                                     "(or pip install 'remoteio[lgpio]'; the [pi] extra "
                                     "brings it on ARM Linux only)")
        check_gpiochip(chip)
        self.chip = chip
        self._workdir: Optional[str] = None

    def prepare_worker(self, board: int) -> None:
        self._workdir = tempfile.mkdtemp(prefix=f"remoteio-lgpio-pin{board}-")
        os.environ["LG_WD"] = self._workdir
        os.chdir(self._workdir)  # lgpio's Python side opens its FIFO relative to the cwd

    def cleanup_worker(self) -> None:
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def factory_class(self) -> type:
        from gpiozero.pins.lgpio import LGPIOFactory
        return LGPIOFactory

    def factory_options(self) -> Dict[str, Any]:
        return {"chip": self.chip}
