"""A stand-in for systemctl inside tests/install/real_mode_sandbox.sh that
really runs remoteio.service, the way systemd runs a ``Type=notify`` unit:
``start`` returns 0 once the service sends READY=1 on $NOTIFY_SOCKET, and 1
if it exits first (or stays silent for 60 s); ``stop`` sends SIGTERM and
waits. State (pid, enabled) lives in $SANDBOX_STATE; every call is logged
to $SANDBOX_LOG; every pid it starts is added to $SANDBOX_PIDS (if set), so
the test can make sure none outlives it.

    SANDBOX_SYSTEMCTL=tests/install/notify_systemctl.py \\
        sudo -E bash tests/install/real_mode_sandbox.sh --script FILE
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

UNIT = Path("/etc/systemd/system/remoteio.service")
STATE = Path(os.environ.get("SANDBOX_STATE", "/tmp"))
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def directives() -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def running_pid() -> Optional[int]:
    try:
        pid = int((STATE / "pid").read_text())
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else pid


def start() -> int:
    unit = directives()
    env = dict(os.environ)
    for assignment in " ".join(unit.get("Environment", [])).split():
        key, value = assignment.split("=", 1)
        env[key] = value
    notify = STATE / "notify"
    if notify.exists():
        notify.unlink()
    env["NOTIFY_SOCKET"] = str(notify)
    workdir = unit.get("WorkingDirectory", ["/"])[0]
    os.makedirs(workdir, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        log = open(STATE / "service.log", "ab")
        proc = subprocess.Popen(shlex.split(unit["ExecStart"][0]), cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        if os.environ.get("SANDBOX_PIDS"):
            with open(os.environ["SANDBOX_PIDS"], "a") as pids:
                pids.write(f"{proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            sock.settimeout(0.2)
            try:
                message = sock.recv(4096).decode()
            except socket.timeout:
                message = ""
            if "READY=1" in message.splitlines():
                (STATE / "pid").write_text(str(proc.pid))
                return 0
            if proc.poll() is not None:
                print(f"remoteio.service: exited with {proc.returncode} before READY=1",
                      file=sys.stderr)
                return 1
        proc.kill()
        proc.wait(10)
        print("remoteio.service: no READY=1 within the start timeout", file=sys.stderr)
        return 1


def stop() -> int:
    pid = running_pid()
    if pid is None:
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while running_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if running_pid() is not None:
        os.kill(pid, signal.SIGKILL)
    (STATE / "pid").unlink()
    return 0


def main(argv: List[str]) -> int:
    with open(os.environ.get("SANDBOX_LOG", os.devnull), "a") as log:
        log.write("systemctl " + " ".join(argv) + "\n")
    words = [a for a in argv if not a.startswith("-")]
    verb = words[0] if words else ""
    if verb == "is-active":
        return 0 if running_pid() is not None else 3
    if verb == "is-enabled":
        return 0 if (STATE / "enabled").exists() else 1
    if verb == "enable":
        (STATE / "enabled").touch()
        return start() if "--now" in argv and running_pid() is None else 0
    if verb == "disable":
        (STATE / "enabled").unlink(missing_ok=True)
        return stop() if "--now" in argv else 0
    if verb == "start":
        return 0 if running_pid() is not None else start()
    if verb == "restart":
        stop()
        return start()
    if verb == "stop":
        return stop()
    if verb == "show":
        print(0)   # NRestarts: this stand-in never restarts by itself
        return 0
    if verb == "list-unit-files":
        if UNIT.exists():
            print("remoteio.service enabled")
        return 0
    return 0       # daemon-reload, reset-failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
