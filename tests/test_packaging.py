"""What a newcomer gets from a built package: an sdist that runs its own
tests when unpacked in an empty folder, and a wheel that, in a fresh
virtual environment, has every page the programs point to (`remoteio docs
TOPIC`: the project has no web address, so the documentation comes with
the package), the systemd unit, and the metadata PyPI shows.

The package is built once (``python -m build``: an sdist, then a wheel from
it) from a copy of this checkout, so the checkout is left as it is.
"""
from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path
from typing import Dict

import pytest


ROOT = Path(__file__).resolve().parent.parent

JUNK = {"__pycache__", ".git", ".venv", "build", "dist", ".hypothesis", ".pytest_cache",
        "results", "_docs"}


def _ignore(directory: str, names: list) -> list:
    return [n for n in names if n in JUNK or n.endswith((".pyc", ".egg-info"))
            or n.startswith(".lgd-nfy") or Path(directory, n).is_symlink()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Dict[str, Path]:
    pytest.importorskip("build", reason="python -m build (the test extra installs it)")
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_ignore)
    out = work / "dist"
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"sdist": next(out.glob("remoteio-*.tar.gz")),
            "wheel": next(out.glob("remoteio-*-py3-none-any.whl")), "work": work}


def test_the_sdist_carries_what_its_own_tests_need(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in ("tests/conftest.py", "tests/fuzz/fuzzgen.py", "tests/fuzz/fuzzconn.py",
                   "tests/gpiozero_conformance/run.py", "tests/install/real_mode_sandbox.sh",
                   "docs/cli.md", "docs/install.md", "examples/button_led.py", "install.sh",
                   "bench/__main__.py", "MANIFEST.in", "setup.cfg", "LICENSE",
                   "remoteio/data/remoteio.service"):
        assert needed in names, needed


def test_an_unpacked_sdist_collects_every_test_and_runs_them(dist, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with tarfile.open(dist["sdist"]) as tar:
        tar.extractall(empty)
    (folder,) = empty.iterdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-2000:]
    assert re.search(r"^\d{3,} tests collected", collected.stdout, re.M), collected.stdout[-500:]
    assert "error" not in collected.stdout.splitlines()[-1]
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_pins.py",
         "tests/test_config.py", "tests/test_examples.py", "tests/test_cli_everyday.py::"
         "test_docs_lists_and_prints_the_pages"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    imported = subprocess.run([sys.executable, "-c", "import remoteio; print(remoteio.__file__)"],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert imported.stdout.startswith(str(folder)), "the tests ran the unpacked tree"


@pytest.fixture(scope="module")
def wheel_venv(dist) -> Path:
    """A fresh virtual environment (no system packages) with only the wheel."""
    where = dist["work"] / "venv"
    venv.create(where, with_pip=True)
    proc = subprocess.run([str(where / "bin/python"), "-m", "pip", "install", "--quiet",
                           "--no-deps", "--no-index", str(dist["wheel"])],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return where


def remoteio(wheel_venv: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(wheel_venv / "bin/remoteio"), *args], cwd="/",
                          capture_output=True, text=True, timeout=60)


def test_from_a_wheel_every_page_the_programs_point_to_exists(wheel_venv, dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        sources = "\n".join(wheel.read(name).decode() for name in wheel.namelist()
                            if name.startswith("remoteio/") and name.endswith(".py")
                            and "/_docs/" not in name)
    topics = set(re.findall(r"remoteio docs ([a-z][\w./-]*\w)(?=[)`'\"]|$)", sources, re.M))
    assert {"cli", "security", "install"} <= topics, topics
    for topic in sorted(topics - {"TOPIC"}):
        shown = remoteio(wheel_venv, "docs", topic)
        assert shown.returncode == 0 and len(shown.stdout) > 200, (topic, shown.stderr)
    listing = remoteio(wheel_venv, "docs")
    assert "site-packages" in listing.stdout and "examples/gpiozero_remote.py" in listing.stdout
    installer = remoteio(wheel_venv, "docs", "install.sh")
    assert installer.stdout.startswith("#!/usr/bin/env bash")
    # help texts and messages point at `remoteio docs`, never at a docs/ folder a wheel lacks
    helps = [remoteio(wheel_venv, *verb.split(), "--help").stdout for verb in (
        "", "on", "read", "watch", "pins", "serve", "check-config", "sim drive")]
    assert not [h for h in helps if re.search(r"\bdocs/\w+\.md", h)]


def test_the_wheel_carries_the_unit_and_the_daemon_prints_it(wheel_venv):
    unit = remoteio(wheel_venv, "systemd-unit")
    assert unit.returncode == 0 and "Type=notify" in unit.stdout


def test_the_metadata_has_an_spdx_licence_and_python_versions(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(wheel.read(name))
    assert metadata["License-Expression"] == "MIT"
    classifiers = metadata.get_all("Classifier")
    assert not [c for c in classifiers if c.startswith("License ::")]
    for minor in range(9, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert metadata["Requires-Python"] == ">=3.9"
    entry_points = next(n for n in zipfile.ZipFile(dist["wheel"]).namelist()
                        if n.endswith("entry_points.txt"))
    assert "gpiozero_pin_factories" in zipfile.ZipFile(dist["wheel"]).read(entry_points).decode()
