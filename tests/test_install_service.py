"""install.sh the way a Pi runs it (no --root: systemctl, the service
started), in tests/install/real_mode_sandbox.sh: a private mount namespace
with a copy of /etc, an overlay on /opt, empty /var and /run, and a
systemctl stand-in that really runs remoteio.service as systemd runs a
``Type=notify`` unit (tests/install/notify_systemctl.py: start returns once
the server said READY=1, fails if it exits first).

It installs this checkout, then `--update`s to a version whose server
cannot start: the update must put the previous version back, running.
The service listens on 127.0.0.1 only; every process the stand-in starts is
stopped by the script, and by pid here should the script fail.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess

import pytest

from test_install import REPO, broken_source, needs_root, python_args, staging_source
from remoteio.testing import free_port

SANDBOX = REPO / "tests/install/real_mode_sandbox.sh"
STAND_IN = REPO / "tests/install/notify_systemctl.py"

SCRIPT = r"""
set -euo pipefail
trap 'systemctl stop remoteio || true; cp "$SANDBOX_LOG" "$OUT/calls" || true' EXIT
client() {
    /opt/remoteio/venv/bin/remoteio --host 127.0.0.1 --port "$PORT" --token-file /etc/remoteio/token "$@"
}
status=0
bash "$INSTALL" --from "$SRC" $PYARGS --host 127.0.0.1 --port "$PORT" >"$OUT/install.log" 2>&1 || status=$?
echo "$status" >"$OUT/install.status"
[[ $status == 0 ]] || exit 1
client info --json >"$OUT/before.json"
status=0
bash "$INSTALL" --update --from "$BROKEN" $PYARGS >"$OUT/update.log" 2>&1 || status=$?
echo "$status" >"$OUT/update.status"
systemctl is-active remoteio && echo active >"$OUT/after.active"
client info --json >"$OUT/after.json"
/opt/remoteio/venv/bin/remoteio --version >"$OUT/version.txt"
ls /opt/remoteio >"$OUT/opt.txt"
"""


@needs_root
def test_a_failed_update_leaves_the_previous_version_running(tmp_path):
    for tool in ("unshare", "useradd"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    source = staging_source(tmp_path / "src")
    broken = broken_source(source, tmp_path / "broken", "3.0.1",
                           "remoteio/server/daemon.py:"
                           "def _broken(self):\n    raise OSError('broken on purpose')\n"
                           "Daemon.run = _broken")
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "script.sh"
    script.write_text(SCRIPT)
    pids = tmp_path / "pids"
    env = dict(os.environ, OUT=str(out), SRC=str(source), BROKEN=str(broken),
               INSTALL=str(REPO / "install.sh"), PORT=str(free_port()),
               PYARGS=" ".join(python_args()), SANDBOX_SYSTEMCTL=str(STAND_IN),
               SANDBOX_PYTHON=shutil.which("python3") or "python3", SANDBOX_PIDS=str(pids))
    try:
        proc = subprocess.run(["bash", str(SANDBOX), "--script", str(script)], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=900)
    finally:
        for line in (pids.read_text().split() if pids.exists() else []):
            try:
                os.kill(int(line), signal.SIGKILL)   # only what the stand-in started
            except ProcessLookupError:
                pass

    def read(name: str) -> str:
        path = out / name
        return path.read_text() if path.exists() else f"<no {name}>"
    report = (f"sandbox: exit {proc.returncode}\n{proc.stderr[-2000:]}\n--- install\n"
              f"{read('install.log')[-3000:]}\n--- update\n{read('update.log')[-3000:]}\n"
              f"--- calls\n{read('calls')}")
    assert read("install.status").strip() == "0", report
    assert json.loads(read("before.json"))["server"] == "3.0.0", report
    assert "it said READY=1" in read("install.log"), report
    assert read("update.status").strip() == "1", report
    update = read("update.log")
    assert "remoteio 3.0.1 failed to start" in update, report
    assert "remoteio 3.0.0 is back and running" in update, report
    assert read("after.active").strip() == "active", report
    assert json.loads(read("after.json"))["server"] == "3.0.0", report   # the old one serves
    assert read("version.txt").strip() == "remoteio 3.0.0"
    assert "venv.previous" not in read("opt.txt")
    assert proc.returncode == 0, report
