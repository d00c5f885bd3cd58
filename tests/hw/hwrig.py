"""The hardware rig: a remoteio server process and the board it drives,
seen from outside.

A test talks to the server through the normal client (``RemoteServer`` on
127.0.0.1) and checks what happened on the board through a *board view*
that does not go through remoteio:

* :class:`GpioSimBoard` (backend ``lgpio``, inside the VM): a gpio-sim chip
  of 28 lines, line offset N = BCM GPIO N. Levels are read from sysfs
  (``sim_gpioN/value``), buttons are pressed by writing the sysfs pull, and
  who holds a line (and with which bias, edge detection, debounce, event
  clock) comes from the kernel's GPIO_V2_GET_LINEINFO ioctl.
* :class:`SimBoardView` (backend ``sim``, anywhere): the simulated board,
  through the protocol's ``sim`` operation. The same tests run on it, which
  keeps the scenarios honest about what is backend-specific.

Both offer ``level``, ``drive``, ``release``, ``record`` (every change of a
line, with CLOCK_MONOTONIC nanosecond timestamps), ``held`` and ``info``.
"""
from __future__ import annotations

import fcntl
import os
import struct
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vm"))
import gpiosim  # noqa: E402,F401 (re-exported: conftest.py, test_hw_edgefloor.py)
from gpiosim import GpioSimChip  # noqa: E402

from remoteio import RemoteServer, testing  # noqa: E402
from remoteio.pins import BCM_TO_BOARD  # noqa: E402
from remoteio.testing import ServerProcess  # noqa: E402

#: run.sh sets it: a kernel device the suite needs (gpio-sim, i2c-stub) missing is a failure, not a skip
REQUIRE_KERNEL = os.environ.get("REMOTEIO_HW_REQUIRE_LGPIO") == "1"
#: the backends that drive a gpio-sim chip through the kernel (inside the VM)
KERNEL_BACKENDS = ("gpiod", "lgpio")
#: the board revision a kernel backend's server is told (a Raspberry Pi 5 Model B)
REVISION = "d04170"
#: every wait in here is bounded; the guest is ~20x slower than a host
START_TIMEOUT = float(os.environ.get("REMOTEIO_HW_START_TIMEOUT", "90"))
CLIENT_TIMEOUT = 20.0


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005) -> Any:
    """remoteio.testing.wait_until with the guest's longer defaults."""
    return testing.wait_until(predicate, timeout, interval)


# ---- the kernel's view of a line (GPIO character device, uAPI v2) ----------------

GPIO_V2_GET_LINEINFO_IOCTL = 0xC100B405   # _IOWR(0xB4, 0x05, struct gpio_v2_line_info)
LINE_INFO_SIZE = 256
FLAG_NAMES = {
    1 << 0: "used", 1 << 1: "active_low", 1 << 2: "input", 1 << 3: "output",
    1 << 4: "edge_rising", 1 << 5: "edge_falling", 1 << 6: "open_drain",
    1 << 7: "open_source", 1 << 8: "bias_pull_up", 1 << 9: "bias_pull_down",
    1 << 10: "bias_disabled", 1 << 11: "event_clock_realtime", 1 << 12: "event_clock_hte",
}
ATTR_ID_DEBOUNCE = 3


def line_info(chip_path: str, offset: int) -> Dict[str, Any]:
    """What the kernel says about one line: ``flags`` (a set of names),
    ``consumer`` and ``debounce_us``."""
    buf = bytearray(LINE_INFO_SIZE)
    struct.pack_into("I", buf, 64, offset)
    with open(chip_path, "rb") as chip:
        fcntl.ioctl(chip, GPIO_V2_GET_LINEINFO_IOCTL, buf)
    _, num_attrs, flags = struct.unpack_from("IIQ", buf, 64)
    debounce_us = 0
    for i in range(min(num_attrs, 10)):
        attr_id, _, value = struct.unpack_from("IIQ", buf, 80 + 16 * i)
        if attr_id == ATTR_ID_DEBOUNCE:
            debounce_us = value & 0xFFFFFFFF
    return {"flags": {name for bit, name in FLAG_NAMES.items() if flags & bit},
            "consumer": bytes(buf[32:64]).split(b"\0", 1)[0].decode(errors="replace"),
            "debounce_us": debounce_us}


# ---- recordings: every change of a line over a stretch of time ---------------------

class Recording:
    """``changes``: ``[(t_ns, level), ...]`` with CLOCK_MONOTONIC timestamps,
    starting with the level when the recording began."""

    def __init__(self, changes: List[Tuple[int, float]], started_ns: int, stopped_ns: int):
        self.changes = changes
        self.started_ns = started_ns
        self.stopped_ns = stopped_ns

    def levels(self) -> List[float]:
        return testing.levels(self.changes)

    def pulses(self) -> List[Tuple[int, float]]:
        """High periods as ``(start_ns, width_ms)`` (a period still high at the end is left out)."""
        return testing.pulses(self.changes)

    def duty(self, since_ns: int = 0) -> float:
        """Fraction of the time (after *since_ns*) the line was high."""
        high = total = 0
        points = self.changes + [(self.stopped_ns, None)]
        for (t0, v), (t1, _) in zip(points, points[1:]):
            t0 = max(t0, since_ns)
            if t1 <= t0:
                continue
            total += t1 - t0
            if v is not None and v >= 0.5:
                high += t1 - t0
        return high / total if total else 0.0


class SysfsRecorder:
    """Polls a gpio-sim line's sysfs value from a thread (~1 kHz in the VM).

    gpio-sim has no way to wire an output to another line, and the kernel
    does not report value changes of an output to anyone but its holder, so
    polling is how an outside observer sees a blink. Edges closer than the
    poll period can be missed: keep recorded periods >= 20 ms."""

    def __init__(self, path: str, interval: float = 0.0005):
        self.path = path
        self.interval = interval
        self.changes: List[Tuple[int, float]] = []
        self._stop = threading.Event()
        self._fd = os.open(path, os.O_RDONLY)
        self.started_ns = time.monotonic_ns()
        self.changes.append((self.started_ns, self._read()))
        self._thread = threading.Thread(target=self._run, name="sysfs-recorder", daemon=True)
        self._thread.start()

    def _read(self) -> float:
        return float(int(os.pread(self._fd, 8, 0)))

    def _run(self) -> None:
        last = self.changes[-1][1]
        while not self._stop.is_set():
            try:
                value = self._read()
            except OSError:   # the chip went away (end of the test): stop quietly
                return
            if value != last:
                self.changes.append((time.monotonic_ns(), value))
                last = value
            time.sleep(self.interval)

    def stop(self) -> Recording:
        if not self._stop.is_set():
            time.sleep(0.01)  # a few more polls: a change made just before stop() is seen
            self._stop.set()
            self._thread.join(5)
            try:
                value = self._read()
                if value != self.changes[-1][1]:
                    self.changes.append((time.monotonic_ns(), value))
            except OSError:
                pass
            os.close(self._fd)
        return Recording(list(self.changes), self.started_ns, time.monotonic_ns())


# ---- board views ----------------------------------------------------------------------

class GpioSimBoard:
    """A gpio-sim chip seen from outside (sysfs and the line-info ioctl)."""

    kernel = True
    PULL = {1: "pull-up", 0: "pull-down"}

    def __init__(self, chip: GpioSimChip, backend: str = "lgpio"):
        self.chip = chip
        self.backend = backend
        self.recorders: List[SysfsRecorder] = []

    def level(self, gpio: int) -> int:
        """What the line carries: the driven value of an output, else the pull."""
        return self.chip.value(gpio)

    def wait_level(self, gpio: int, level: int, timeout: float = 10.0) -> bool:
        return self.chip.wait_value(gpio, level, timeout=timeout)

    def drive(self, gpio: int, level: int) -> None:
        """Apply a level from outside (a button): the sysfs pull."""
        self.chip.pull(gpio, self.PULL[int(bool(level))])

    def release(self, gpio: int) -> None:
        """Stop driving: gpio-sim always has a pull, so go back to the one the
        line's holder asked for (pull-up if its bias says so, else pull-down)."""
        up = "bias_pull_up" in self.info(gpio)["flags"]
        self.chip.pull(gpio, "pull-up" if up else "pull-down")

    def info(self, gpio: int) -> Dict[str, Any]:
        return line_info(self.chip.chip_path, gpio)

    def held(self, gpio: int) -> bool:
        return "used" in self.info(gpio)["flags"]

    def held_lines(self) -> List[int]:
        return [n for n in range(self.chip.num_lines) if self.held(n)]

    def record(self, gpio: int) -> SysfsRecorder:
        recorder = SysfsRecorder(str(self.chip._line_attr(gpio, "value")))
        self.recorders.append(recorder)
        return recorder

    def stop_recorders(self) -> None:
        """Stop what a test left recording (it failed before stop())."""
        recorders, self.recorders = self.recorders, []
        for recorder in recorders:
            recorder.stop()

    def reset(self) -> None:
        for n in range(self.chip.num_lines):
            self.chip.pull(n, "pull-down")


class _HistoryRecorder:
    def __init__(self, view: "SimBoardView", gpio: int):
        self.view, self.gpio = view, gpio
        self.started_ns = time.monotonic_ns()
        self.first = float(view.level(gpio))

    def stop(self) -> Recording:
        stopped = time.monotonic_ns()
        history = self.view.sim.history(f"GPIO{self.gpio}", since_ns=self.started_ns)
        return Recording([(self.started_ns, self.first)] + [(t, v) for t, v in history],
                         self.started_ns, stopped)


class SimBoardView:
    """The simulated board of a ``--sim`` server, through the ``sim`` operation."""

    backend = "sim"
    kernel = False

    def __init__(self, address: Tuple[str, int]):
        self._conn = RemoteServer(*address, timeout=CLIENT_TIMEOUT)
        self.sim = self._conn.sim
        self.driven: set = set()

    def level(self, gpio: int) -> int:
        return self.sim.levels()[BCM_TO_BOARD[gpio]]

    def wait_level(self, gpio: int, level: int, timeout: float = 10.0) -> bool:
        return bool(wait_until(lambda: self.level(gpio) == level, timeout))

    def drive(self, gpio: int, level: int) -> None:
        self.driven.add(gpio)
        self.sim.drive(f"GPIO{gpio}", int(bool(level)))

    def release(self, gpio: int) -> None:
        self.driven.discard(gpio)
        self.sim.release(f"GPIO{gpio}")

    def info(self, gpio: int) -> Optional[Dict[str, Any]]:
        return None  # no kernel here: tests skip their line-info checks

    @staticmethod
    def _holds(pin: Dict[str, Any]) -> bool:
        # a worker that has not posted its status yet (just forked) counts as holding
        return pin.get("mode", "unknown") != "released"

    def held(self, gpio: int) -> bool:
        """Does the server's worker hold the line (from ``info``: no kernel here)?"""
        return any(self._holds(p) for p in self._conn.info()["pins"] if p["gpio"] == gpio)

    def held_lines(self) -> List[int]:
        return [p["gpio"] for p in self._conn.info()["pins"] if self._holds(p)]

    def record(self, gpio: int) -> _HistoryRecorder:
        return _HistoryRecorder(self, gpio)

    def reset(self) -> None:
        for gpio in list(self.driven):
            self.release(gpio)

    def close(self) -> None:
        self._conn.close()


# ---- the server process -------------------------------------------------------------------

def start_server(args: List[str], workdir: Path, *, mode: str = "wait") -> ServerProcess:
    """``remoteio serve`` for the rig: debug log, the guest's start timeout."""
    return ServerProcess(*args, "--mode", mode, "--log-level", "debug", workdir=workdir,
                         start_timeout=START_TIMEOUT)


# ---- a rig: board + server --------------------------------------------------------------------

LINE_NAMES = [f"GPIO{n}" for n in range(28)]


class Rig:
    """A board and a remoteio server driving it (``backend``: gpiod, lgpio or sim)."""

    def __init__(self, backend: str, workdir: Path, *, mode: str = "wait"):
        self.backend = backend
        self.workdir = workdir
        self.mode = mode
        self.chip: Optional[GpioSimChip] = None
        self.server: Optional[ServerProcess] = None
        self.board: Any = None
        self.clients: List[RemoteServer] = []
        try:
            if self.kernel:
                self._new_chip()
            self._start_server()
        except BaseException:
            self.close()
            raise

    def _new_chip(self) -> None:
        self.chip = GpioSimChip(num_lines=28, label="pinctrl-rp1", line_names=LINE_NAMES).open()
        self.board = GpioSimBoard(self.chip, self.backend)

    def _start_server(self) -> None:
        if self.kernel:
            args = ["--backend", self.backend, "--chip", str(self.chip.chip_number),
                    "--revision", REVISION]
        else:
            args = ["--sim"]
        self.server = start_server(args, self.workdir, mode=self.mode)
        if self.backend == "sim":
            self.board = SimBoardView(self.server.address)

    @property
    def kernel(self) -> bool:
        """Does this rig drive a gpio-sim chip through the kernel?"""
        return self.backend in KERNEL_BACKENDS

    @property
    def address(self) -> Tuple[str, int]:
        return self.server.address

    def client(self, timeout: float = CLIENT_TIMEOUT) -> RemoteServer:
        remote = RemoteServer(*self.server.address, timeout=timeout)
        self.clients.append(remote)
        return remote

    def close_clients(self) -> None:
        clients, self.clients = self.clients, []
        for remote in clients:
            try:
                remote.close()
            except Exception:  # noqa: BLE001 - a dead connection is closed enough
                pass

    def settle(self, timeout: float = 20.0) -> List[int]:
        """Close the test's clients and wait until the server let go of every
        line; the lines still held after *timeout* (empty: clean)."""
        self.close_clients()
        if self.server.proc.poll() is not None:
            return []
        if wait_until(lambda: not self.board.held_lines(), timeout, 0.05):
            return []
        return self.board.held_lines()

    def next_test(self) -> None:
        """A fresh board for the next test, keeping the server when possible:
        a new gpio-sim chip (the kernel gives it the lowest free number, so
        normally the same /dev/gpiochipN; else the server is restarted)."""
        if not self.kernel:
            self.board.reset()
            return
        self.board.stop_recorders()
        number = self.chip.chip_number
        self.chip.close()
        self._new_chip()
        if self.chip.chip_number != number:
            self.server.kill()
            self._start_server()

    def restart(self) -> None:
        """Start again from scratch (after a test left the rig dirty)."""
        self.close_clients()
        if self.server is not None:
            self.server.kill()
        if isinstance(self.board, SimBoardView):
            self.board.close()
        if self.chip is not None:
            self.board.stop_recorders()
            self.chip.close()
            self._new_chip()
        self._start_server()

    def close(self) -> None:
        self.close_clients()
        if isinstance(self.board, SimBoardView):
            self.board.close()
        if self.server is not None:
            self.server.kill()
        if self.chip is not None:
            if isinstance(self.board, GpioSimBoard):
                self.board.stop_recorders()
            self.chip.close()


def timing_retry(scenario: Callable[[int], None], attempts: int = 3) -> None:
    """Run a timing-sensitive *scenario* (it asserts) up to *attempts* times.

    The VM emulates its CPU and shares the host: a stall of the guest (or of
    this process's polling thread) now and then stretches one edge by tens of
    milliseconds. A real timing bug fails every attempt; a stall does not
    come back three times in a row. Failed attempts are printed (the test's
    warnings summary shows them)."""
    for attempt in range(1, attempts + 1):
        try:
            scenario(attempt)
            return
        except AssertionError as exc:
            if attempt == attempts:
                raise
            warnings.warn(f"timing attempt {attempt} of {attempts} failed, trying again: "
                          f"{str(exc)[:300]}", stacklevel=2)


def pin_pid(remote: RemoteServer, gpio: int) -> Optional[int]:
    """The pid of the worker process of BCM *gpio*, from the server's ``info``."""
    for pin in remote.info()["pins"]:
        if pin["gpio"] == gpio:
            return pin.get("pid")
    return None


def board_of(gpio: int) -> int:
    return BCM_TO_BOARD[gpio]
