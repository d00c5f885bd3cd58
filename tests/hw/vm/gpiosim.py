"""gpio-sim chips for tests running inside the VM (stdlib only).

A chip is made through configfs and driven from "outside" through sysfs,
while the code under test talks to its real /dev/gpiochipN (lgpio, gpiod):

    with GpioSimChip(num_lines=28) as chip:
        h = lgpio.gpiochip_open(chip.chip_number)
        lgpio.gpio_claim_output(h, 4, 1)
        assert chip.wait_value(4, 1)
        chip.pull(17, "pull-up")        # an input sees 1; raises an edge event

Kernel documentation: Documentation/admin-guide/gpio/gpio-sim.rst.
"""

import itertools
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

CONFIGFS = Path("/sys/kernel/config/gpio-sim")
PLATFORM = Path("/sys/devices/platform")
PULLS = ("pull-up", "pull-down")
_counter = itertools.count()


class GpioSimError(RuntimeError):
    pass


def available():
    """True when gpio-sim can be used here (inside the VM, as root)."""
    return CONFIGFS.is_dir() and os.access(CONFIGFS, os.W_OK)


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))


def _read(path):
    with open(path) as f:
        return f.read().strip()


class GpioSimChip:
    """One simulated chip with one bank of `num_lines` lines.

    Attributes once live: chip_path ("/dev/gpiochipN"), chip_number (N),
    dev_name ("gpio-sim.K", the platform device), chip_name ("gpiochipN").
    """

    def __init__(self, num_lines=28, name=None, label=None, line_names=None):
        if not 1 <= int(num_lines) <= 1024:
            raise ValueError(f"num_lines must be 1..1024, got {num_lines}")
        self.num_lines = int(num_lines)
        # configfs names must be unique system-wide; pid + counter keeps
        # parallel test processes apart.
        self.name = name or f"remoteio-{os.getpid()}-{next(_counter)}"
        self.label = label
        self.line_names = list(line_names or [])
        if len(self.line_names) > self.num_lines:
            raise ValueError("more line names than lines")
        self.config_dir = CONFIGFS / self.name
        self.bank_dir = self.config_dir / "bank0"
        self.dev_name = self.chip_name = self.chip_path = self.chip_number = None
        self._sim_dir = None
        self._made = []  # configfs dirs we created, for teardown in reverse

    # -- lifecycle ---------------------------------------------------------

    def open(self):
        if not CONFIGFS.is_dir():
            raise GpioSimError(f"{CONFIGFS} missing: not in the gpio-sim VM, or configfs not mounted")
        try:
            self._mkdir(self.config_dir)
            self._mkdir(self.bank_dir)
            _write(self.bank_dir / "num_lines", self.num_lines)
            if self.label:
                _write(self.bank_dir / "label", self.label)
            for offset, line_name in enumerate(self.line_names):
                if line_name:
                    line_dir = self.bank_dir / f"line{offset}"
                    self._mkdir(line_dir)
                    _write(line_dir / "name", line_name)
            _write(self.config_dir / "live", 1)
            self.dev_name = _read(self.config_dir / "dev_name")
            self.chip_name = _read(self.bank_dir / "chip_name")
            self.chip_number = int(self.chip_name.replace("gpiochip", ""))
            self.chip_path = f"/dev/{self.chip_name}"
            self._sim_dir = self._find_sim_dir()
            self._wait_for(lambda: os.path.exists(self.chip_path), 5.0, f"{self.chip_path} to appear")
        except BaseException:
            self.close()
            raise
        log.debug("gpio-sim %s live: %s (%s)", self.name, self.chip_path, self.dev_name)
        return self

    def close(self):
        """Take the chip down; every step is tried even if an earlier one fails."""
        errors = []
        if self._made:
            live = self.config_dir / "live"
            try:
                if live.exists() and _read(live) == "1":
                    _write(live, 0)
            except OSError as e:
                errors.append(f"live=0: {e}")
        for d in reversed(self._made):
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"rmdir {d}: {e}")
        self._made = []
        self._sim_dir = None
        if errors:
            log.warning("gpio-sim %s teardown: %s", self.name, "; ".join(errors))
        return errors

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        errors = self.close()
        if errors and exc_type is None:
            raise GpioSimError(f"teardown of {self.name} failed: {'; '.join(errors)}")

    def _mkdir(self, path):
        path.mkdir()
        self._made.append(path)

    # -- driving and observing lines ----------------------------------------

    def value(self, offset):
        """What the line carries now: what software drives on an output, or
        the pull on an input."""
        return int(_read(self._line_attr(offset, "value")))

    def pull(self, offset, pull):
        """Drive an input from outside ('pull-up' / 'pull-down'); a change
        raises an edge event for whoever watches the line."""
        if pull not in PULLS:
            raise ValueError(f"pull must be one of {PULLS}, got {pull!r}")
        _write(self._line_attr(offset, "pull"), pull)

    def get_pull(self, offset):
        return _read(self._line_attr(offset, "pull"))

    def wait_value(self, offset, value, timeout=1.0, interval=0.001):
        """Poll until the line shows `value`; False if it did not in time."""
        path = self._line_attr(offset, "value")
        want = str(int(value))
        deadline = time.monotonic() + timeout
        while True:
            if _read(path) == want:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    # -- helpers ---------------------------------------------------------------

    def _line_attr(self, offset, attr):
        if self._sim_dir is None:
            raise GpioSimError(f"chip {self.name} is not live")
        if not 0 <= offset < self.num_lines:
            raise ValueError(f"offset {offset} out of range 0..{self.num_lines - 1}")
        return self._sim_dir / f"sim_gpio{offset}" / attr

    def _find_sim_dir(self):
        # Normally /sys/devices/platform/<dev_name>/<chip_name>; search the
        # device's tree in case a kernel nests it differently.
        base = PLATFORM / self.dev_name
        direct = base / self.chip_name
        if (direct / "sim_gpio0").is_dir():
            return direct
        for cand in base.rglob("sim_gpio0"):
            if cand.parent.name == self.chip_name:
                return cand.parent
        raise GpioSimError(f"no sim_gpio attributes for {self.chip_name} under {base}")

    @staticmethod
    def _wait_for(cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() >= deadline:
                raise GpioSimError(f"timed out waiting for {what}")
            time.sleep(0.005)


def cleanup_stale(prefix="remoteio-"):
    """Remove chips left by killed test processes (name prefix match)."""
    removed = []
    if not CONFIGFS.is_dir():
        return removed
    for chip_dir in CONFIGFS.iterdir():
        if not chip_dir.name.startswith(prefix):
            continue
        chip = GpioSimChip(name=chip_dir.name)
        # close() removes in reverse order of this list: lines, banks, chip.
        banks = [p for p in chip_dir.glob("bank*") if p.is_dir()]
        lines = [p for p in chip_dir.glob("bank*/line*") if p.is_dir()]
        chip._made = [chip_dir] + banks + lines
        if not chip.close():
            removed.append(chip_dir.name)
    return removed


__all__ = ["GpioSimChip", "GpioSimError", "available", "cleanup_stale"]
