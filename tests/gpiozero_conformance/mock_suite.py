"""gpiozero's MockFactory-based test files against the remoteio factory.

gpiozero's sdist ships its unit tests, written against ``MockFactory``
(``mock_factory`` fixture, MockPin's ``drive_high()``, ``assert_states()``...).
mock_conftest.py maps that fixture and those helpers onto a remoteio server's
simulated board, so the same tests drive real remote pins. Run by run.py,
against a server on a simulated Pi 3B (MockFactory's default board, a02082).

:data:`CANNOT_APPLY` lists the tests that cannot hold for a remote factory,
and why (docs/gpiozero.md repeats it); the rest must pass.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent

FILES = ("test_outputs.py", "test_inputs.py", "test_boards.py", "test_devices.py",
         "test_mixins.py", "test_internal_devices.py", "test_tools.py", "test_tones.py")
#: MockFactory's default board, which the tests assume (its pins and pulls)
REVISION = "a02082"
#: fewer passes than this means the run did not really happen (a server missing)
MIN_PASSED = 286

_SAFE = ("a closed pin is made safe by the server (driven to its safe value and released), so "
         "a device with initial_value=None does not find the level the previous one left")
_PWM = "every remote pin does PWM: there is no non-PWM MockPin to refuse it"
_FADE = ("times gpiozero's own client-side fade of three pins (three round trips a step, "
         "every 0.04 s) to within 0.05 s: network writes on a loaded machine miss that")
_FADE1 = ("times gpiozero's own client-side fade of one pin (20 writes, each a round trip, "
          "every 0.04 s) to within 0.05 s: a CI run on a loaded machine took 0.853 s")
CANNOT_APPLY: Dict[str, str] = {
    "test_outputs.py::test_output_initial_values": _SAFE,
    "test_boards.py::test_led_char_display_init": _SAFE,
    "test_outputs.py::test_output_pwm_not_supported": _PWM,
    "test_outputs.py::test_servo_pins_nonpwm": _PWM,
    "test_outputs.py::test_output_pwm_fade_background": _FADE1,
    "test_outputs.py::test_output_pwm_fade_foreground": _FADE1,
    "test_outputs.py::test_output_pwm_pulse_background": _FADE1,
    "test_outputs.py::test_output_pwm_pulse_foreground": _FADE1,
    "test_outputs.py::test_rgbled_fade_background": _FADE,
    "test_outputs.py::test_rgbled_fade_foreground": _FADE,
    "test_outputs.py::test_rgbled_pulse_background": _FADE,
    "test_outputs.py::test_rgbled_pulse_foreground": _FADE,
}
# (MockChargingPin and MockTriggerPin tests skip themselves: mock_conftest.py)


def extract(sdist: Path, workdir: Path) -> Path:
    """The test files, gpiozero's fonts (a test opens gpiozero/fonts/7seg.txt
    relative to the working directory) and the mapping, in *workdir*/mock."""
    dest = workdir / "mock"
    (dest / "gpiozero" / "fonts").mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if parts[1:2] == ["tests"] and parts[-1] in FILES:
                member.name = parts[-1]
                tar.extract(member, dest)
            elif parts[1:3] == ["gpiozero", "fonts"] and parts[-1].endswith(".txt"):
                member.name = "gpiozero/fonts/" + parts[-1]
                tar.extract(member, dest)
    shutil.copy(HERE / "mock_conftest.py", dest / "conftest.py")
    return dest


def run(dest: Path, port: int, argv: List[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, REMOTEIO_HOST="127.0.0.1", REMOTEIO_PORT=str(port))
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent)] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["REMOTEIO_CANNOT_APPLY"] = "\n".join(CANNOT_APPLY)  # left out by mock_conftest.py
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs",
         "-o", "addopts=", "-c", os.devnull, "--rootdir", str(dest),
         "--junitxml", str(dest / "results.xml"), "--timeout", "120",
         *FILES, *argv], cwd=dest, env=env, timeout=1800)
