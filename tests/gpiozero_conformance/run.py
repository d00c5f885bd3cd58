"""gpiozero's own conformance suite against the remoteio pin factory.

gpiozero's sdist ships ``tests/test_real_pins.py``, which runs once for every
installed ``gpiozero_pin_factories`` entry point and needs two pins wired
together (GPIO22 -> GPIO27). This fetches that sdist (the installed gpiozero's
version) with pip, starts ``remoteio serve --sim`` with BOARD15 (GPIO22) and
BOARD13 (GPIO27) wired, and runs the suite for the ``remoteio`` factory only.
Then it runs gpiozero's MockFactory-based test files (test_outputs,
test_inputs, test_boards, ...) against the remoteio factory on a simulated
Pi 3B, with MockPin's helpers mapped onto the board (mock_suite.py,
mock_conftest.py).

    python tests/gpiozero_conformance/run.py [pytest options]

Exit code: non-zero if any test fails, and also if any of the tests that
pass against a remote factory (:data:`MUST_PASS`) did not pass: gpiozero's
fixture skips every test of a factory it cannot reach, and a run of nothing
but skips must not look green. CI runs it as a step of .ci/run;
docs/gpiozero.md lists which tests pass and why others skip.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

#: the tests of test_real_pins.py that must pass for the remoteio factory
MUST_PASS = (
    "test_pin_names", "test_function_bad", "test_output", "test_output_with_state", "test_pull",
    "test_pull_bad", "test_pull_down_warning", "test_input_with_pull", "test_pulls_are_weak",
    "test_bad_duty_cycle", "test_duty_cycles", "test_explicit_factory", "test_envvar_factory",
    "test_spi_init", "test_spi_hardware_conflict", "test_spi_hardware_shared_bus",
)


def passed_tests(junit: Path, full: bool = False) -> set:
    """Names (without parameters, unless *full*) of the tests that passed,
    from pytest's JUnit XML."""
    passed = set()
    for case in ElementTree.parse(junit).iter("testcase"):
        if not any(child.tag in ("failure", "error", "skipped") for child in case):
            name = case.get("classname", "") + "::" + case.get("name", "")
            passed.add(name if full else case.get("name", "").split("[", 1)[0])
    return passed


def missing(junit: Path) -> list:
    """The tests of :data:`MUST_PASS` that did not pass (all of them if none ran)."""
    if not junit.exists():
        return list(MUST_PASS)
    got = passed_tests(junit)
    return [name for name in MUST_PASS if name not in got]


def fetch_suite(workdir: Path) -> Path:
    wanted = version("gpiozero")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "--dest", str(workdir), f"gpiozero=={wanted}"],
                   check=True, timeout=300)
    sdist = next(workdir.glob("gpiozero-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("tests/test_real_pins.py"))
        member.name = "test_real_pins.py"
        tar.extract(member, workdir)
    shutil.copy(HERE / "real_pins_conftest.py", workdir / "conftest.py")
    return workdir / "test_real_pins.py"


def start_server(workdir: Path, *args: str):
    log_path = workdir / f"server{'-'.join(args)}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "remoteio", "serve", "--sim", "--host", "127.0.0.1",
                             "--port", "0", *args], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(rb"serving on \S+ port (\d+)", log_path.read_bytes())
        if found:
            return proc, int(found.group(1)), log_path
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start:\n" + log_path.read_text())


def main(argv) -> int:
    sys.path.insert(0, str(ROOT))
    from remoteio import RemoteServer

    workdir = Path(tempfile.mkdtemp(prefix="gpiozero-real-pins-"))
    try:
        suite = fetch_suite(workdir)
        proc, port, log_path = start_server(workdir)
        try:
            with RemoteServer("127.0.0.1", port) as setup:
                setup.sim.wire("GPIO22", "GPIO27")  # the jumper the suite needs
            env = dict(os.environ, REMOTEIO_HOST="127.0.0.1", REMOTEIO_PORT=str(port),
                       GPIOZERO_TEST_LOCK=str(workdir / "lock"))
            junit = workdir / "results.xml"
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q",
                 "-o", "addopts=", "-c", os.devnull, "--rootdir", str(workdir),
                 "--junitxml", str(junit),
                 "-k", "remoteio or test_bad_factory or test_compatibility_names",
                 str(suite), *argv], cwd=workdir, env=env, timeout=1200)
            if result.returncode:
                return result.returncode
            absent = missing(junit)
            if absent and not argv:   # (a run narrowed with pytest options may skip some)
                print(f"gpiozero conformance: {len(absent)} test(s) that must pass did not: "
                      f"{', '.join(absent)} (was the server reachable?)", file=sys.stderr)
                return 1
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        return run_mock_suite(workdir, argv)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_mock_suite(workdir: Path, argv) -> int:
    """gpiozero's MockFactory-based tests on a simulated Pi 3B (mock_suite.py)."""
    import mock_suite
    dest = mock_suite.extract(next(workdir.glob("gpiozero-*.tar.gz")), workdir)
    proc, port, _ = start_server(workdir, "--revision", mock_suite.REVISION)
    try:
        result = mock_suite.run(dest, port, argv)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    if result.returncode:
        return result.returncode
    passed = len(passed_tests(dest / "results.xml", full=True))
    if passed < mock_suite.MIN_PASSED and not argv:
        print(f"gpiozero mock suite: only {passed} tests passed (at least "
              f"{mock_suite.MIN_PASSED} must; was the server reachable?)", file=sys.stderr)
        return 1
    print(f"gpiozero mock suite: {passed} passed; {len(mock_suite.CANNOT_APPLY)} cannot apply "
          "to a remote factory (mock_suite.CANNOT_APPLY)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
