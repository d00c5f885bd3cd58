"""Fixtures of the hardware suite (run inside the gpio-sim VM: bash tests/hw/run.sh).

* ``backend`` (module scope): ``gpiod`` or ``lgpio`` (a gpio-sim chip, inside
  the VM) or ``sim`` (the simulated board; anywhere). Default: gpiod and lgpio
  where gpio-sim is usable, else sim; ``REMOTEIO_HW_BACKENDS=gpiod,sim`` picks.
  ``REMOTEIO_HW_REQUIRE_LGPIO=1`` (run.sh sets it) makes a missing gpio-sim
  a failure instead of a skip.
* ``rig``: a server on a board, shared by the tests of a module (a server
  start costs ~3 s in the VM). Before each test the board is fresh: a new
  gpio-sim chip (same /dev/gpiochipN, so the server carries on) or, on the
  simulated board, every outside drive released. After each test the
  test's clients are closed and every line must be let go within 20 s,
  else the test errors and the rig is rebuilt.
* ``make_rig``: a rig of the test's own (for tests that stop or kill the
  server, or need a special one), stopped at the end of the test.

A failing test's report carries the tail of every server log it used.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from hwrig import KERNEL_BACKENDS, REQUIRE_KERNEL, Rig, gpiosim

REQUIRE_LGPIO = REQUIRE_KERNEL


def _backends() -> List[str]:
    names = [b.strip() for b in os.environ.get("REMOTEIO_HW_BACKENDS", "").split(",") if b.strip()]
    return names or (list(KERNEL_BACKENDS) if gpiosim.available() or REQUIRE_LGPIO else ["sim"])


BACKENDS = _backends()
ACTIVE: List[Rig] = []


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    name = request.param
    if name in KERNEL_BACKENDS and not gpiosim.available():
        message = "gpio-sim is not available here (run inside the VM: bash tests/hw/run.sh)"
        if REQUIRE_LGPIO:
            pytest.fail(message)
        pytest.skip(message)
    return name


@pytest.fixture(scope="module")
def module_rig(backend, tmp_path_factory) -> Iterator[Rig]:
    rig = Rig(backend, tmp_path_factory.mktemp(f"rig-{backend}"))
    ACTIVE.append(rig)
    yield rig
    ACTIVE.remove(rig)
    rig.close()


@pytest.fixture
def rig(module_rig) -> Iterator[Rig]:
    yield module_rig
    if module_rig.server.proc.poll() is not None:
        tail = module_rig.server.tail()
        module_rig.restart()
        pytest.fail(f"the server died during the test (exit {module_rig.server.proc.returncode}):\n{tail}")
    held = module_rig.settle()
    if held:
        tail = module_rig.server.tail()
        module_rig.restart()
        pytest.fail(f"lines still held 20 s after the test's clients closed: GPIO {held}\n{tail}")
    module_rig.next_test()


@pytest.fixture
def make_rig(backend, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: List[Rig] = []

    def make(**options) -> Rig:
        rig = Rig(backend, tmp_path / f"rig{len(made)}", **options)
        made.append(rig)
        ACTIVE.append(rig)
        return rig

    yield make
    for rig in made:
        ACTIVE.remove(rig)
        rig.close()


@pytest.fixture
def board(rig):
    return rig.board


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for rig in ACTIVE:
            if rig.server is not None:
                report.sections.append(
                    (f"server log ({rig.backend}, port {getattr(rig.server, 'port', '?')}), last lines",
                     rig.server.tail(80)))
