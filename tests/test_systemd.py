"""`remoteio serve` under systemd: READY=1 once it listens, the watchdog fed
from the I/O loop, STOPPING=1 on the way out, and SIGHUP re-reading the pin
rules and the token without dropping clients. A datagram socket of the test
stands in for systemd's $NOTIFY_SOCKET."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest

from remoteio import RemoteServer
from remoteio.errors import AuthFailed, Forbidden
from remoteio.server.systemd import Notifier

from remoteio.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd is Linux")

TOKEN, NEW_TOKEN = "the first token of the daemon", "the token after a reload"


class FakeSystemd:
    """The notification socket systemd would hold, and what came in on it."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: List[str] = []

    def expect(self, field: str, timeout: float = 20.0) -> str:
        """The next notification with *field* (e.g. ``READY=1``), read within *timeout*."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {field} within {timeout} s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                message = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            self.messages.append(message)
            if field in message.splitlines():
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path):
    fake = FakeSystemd(tmp_path / "notify")
    yield fake
    fake.close()


class Daemon:
    """``python -m remoteio serve ...`` with $NOTIFY_SOCKET pointing at *systemd*."""

    def __init__(self, tmp_path: Path, systemd: FakeSystemd, *args: str, watchdog_s: float = 0):
        env = dict(os.environ, NOTIFY_SOCKET=str(systemd.path), PYTHONUNBUFFERED="1")
        env.pop("REMOTEIO_TOKEN", None)
        if watchdog_s:
            env["WATCHDOG_USEC"] = str(int(watchdog_s * 1e6))
        self.log_path = tmp_path / "serve.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "remoteio", "serve", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.systemd = systemd
        self.port: Optional[int] = None

    def ready(self) -> int:
        status = self.systemd.expect("READY=1")
        found = re.search(r"STATUS=serving on \S+ port (\d+)", status)
        assert found, status
        self.port = int(found.group(1))
        return self.port

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def daemon(tmp_path, systemd):
    started: List[Daemon] = []

    def start(*args: str, watchdog_s: float = 0) -> Daemon:
        d = Daemon(tmp_path, systemd, *args, watchdog_s=watchdog_s)
        started.append(d)
        return d
    yield start
    for d in started:
        d.stop()


def test_ready_is_sent_once_the_server_listens_and_the_watchdog_is_fed(daemon, systemd):
    d = daemon("--sim", "--host", "127.0.0.1", "--port", "0", watchdog_s=2.0)
    port = d.ready()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass                                   # listening when READY=1 came
    systemd.expect("WATCHDOG=1", timeout=5)    # from the I/O loop, every WatchdogSec / 4
    started = time.monotonic()
    systemd.expect("WATCHDOG=1", timeout=5)
    assert time.monotonic() - started < 2.0, "fed well within the watchdog's timeout"
    assert d.stop() == 0
    systemd.expect("STOPPING=1", timeout=5)


def test_without_a_watchdog_nothing_but_ready_and_stopping_is_sent(daemon, systemd):
    d = daemon("--sim", "--host", "127.0.0.1", "--port", "0")
    d.ready()
    assert d.stop() == 0
    systemd.expect("STOPPING=1", timeout=5)
    assert not any("WATCHDOG=1" in m for m in systemd.messages), systemd.messages


def test_a_notifier_reaches_an_abstract_socket():
    name = f"remoteio-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier(environ={"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=up"
        notifier.close()


def test_a_notifier_outside_systemd_does_nothing():
    notifier = Notifier(environ={"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled and notifier.watchdog_s is None
    assert not notifier.ready() and not notifier.stopping()
    notifier.housekeeping(time.monotonic())


def test_a_watchdog_meant_for_another_process_is_left_alone():
    notifier = Notifier(environ={"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000",
                                 "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_s is None


def write_config(path: Path, token_file: Path, rules: str = "") -> None:
    path.write_text(f'[server]\nhost = "127.0.0.1"\nport = 0\nbackend = "sim"\n'
                    f'token_file = "{token_file}"\n{rules}')


def write_token(path: Path, token: str) -> None:
    path.write_text(token + "\n")
    path.chmod(0o600)


def test_sighup_reloads_pin_rules_and_token_without_dropping_clients(tmp_path, daemon, systemd):
    config, token_file = tmp_path / "remoteio.toml", tmp_path / "token"
    write_token(token_file, TOKEN)
    write_config(config, token_file)
    d = daemon("--config", str(config))
    port = d.ready()
    with RemoteServer("127.0.0.1", port, token=TOKEN, reconnect=False) as remote:
        led = remote.pin(7)
        led.on()
        # pin 7 becomes read-only, pin 11 forbidden; the token changes
        write_config(config, token_file, '[pins.7]\naccess = "read"\n[pins.11]\naccess = "none"\n')
        write_token(token_file, NEW_TOKEN)
        d.proc.send_signal(signal.SIGHUP)
        assert "MONOTONIC_USEC=" in systemd.expect("RELOADING=1")
        systemd.expect("READY=1")
        with pytest.raises(Forbidden):
            led.off()                          # the same connection, judged by the new rules
        with pytest.raises(Forbidden):
            remote.read_pins([11])
        assert remote.read_pins([7]) == {7: 1}  # read access still reads
        assert remote.ping() > 0                # never dropped
        with pytest.raises(AuthFailed):
            RemoteServer("127.0.0.1", port, token=TOKEN, reconnect=False)

        def with_new_token():  # once the old token's failure penalty (1 s) is over
            try:
                return RemoteServer("127.0.0.1", port, token=NEW_TOKEN, reconnect=False)
            except AuthFailed as exc:
                assert "try again" in exc.message, exc
                return None
        again = wait_until(with_new_token, timeout=5, interval=0.2)
        assert again is not None
        with again:
            assert again.read_pins([7]) == {7: 1}
    assert d.stop() == 0
    assert "reloaded: 2 pin rules" in d.output()


def test_a_configuration_that_no_longer_reads_keeps_the_server_as_it_was(tmp_path, daemon, systemd):
    config, token_file = tmp_path / "remoteio.toml", tmp_path / "token"
    write_token(token_file, TOKEN)
    write_config(config, token_file)
    d = daemon("--config", str(config))
    port = d.ready()
    config.write_text(config.read_text() + "[pins.7]\naccess = 'everything'\n")
    d.proc.send_signal(signal.SIGHUP)
    systemd.expect("RELOADING=1")
    systemd.expect("READY=1")
    with RemoteServer("127.0.0.1", port, token=TOKEN, reconnect=False) as remote:
        remote.pin(7).on()                     # still allowed: the old rules stand
    assert d.stop() == 0
    assert "reload failed, the server goes on as it was" in d.output()


def test_a_reload_whose_token_file_holds_a_short_token_keeps_the_server_and_its_token(
        tmp_path, daemon, systemd):
    config, token_file = tmp_path / "remoteio.toml", tmp_path / "token"
    write_token(token_file, TOKEN)
    write_config(config, token_file)
    d = daemon("--config", str(config))
    port = d.ready()
    with RemoteServer("127.0.0.1", port, token=TOKEN, reconnect=False) as remote:
        remote.pin(7).on()
        write_token(token_file, "fifteen_chars_x")  # a truncated paste: too short to use
        d.proc.send_signal(signal.SIGHUP)
        systemd.expect("RELOADING=1")
        systemd.expect("READY=1")
        assert remote.read_pins([7]) == {7: 1}  # the client was not dropped
        with RemoteServer("127.0.0.1", port, token=TOKEN, reconnect=False) as again:
            assert again.ping() > 0             # the token it had still stands
    assert d.stop() == 0
    assert "reload failed, the server goes on as it was" in d.output()
    assert "15 characters" in d.output()


def test_a_reload_names_every_changed_setting_it_cannot_apply(tmp_path, daemon, systemd):
    config, token_file = tmp_path / "remoteio.toml", tmp_path / "token"
    write_token(token_file, TOKEN)
    write_config(config, token_file)
    d = daemon("--config", str(config))
    d.ready()
    write_config(config, token_file, 'advertise = false\nrealtime_priority = 10\n'
                 '[buses.i2c1]\naccess = "none"\n')
    d.proc.send_signal(signal.SIGHUP)
    systemd.expect("RELOADING=1")
    systemd.expect("READY=1")
    assert d.stop() == 0
    said = [line for line in d.output().splitlines() if "takes a restart" in line]
    assert len(said) == 1 and all(name in said[0] for name in (
        "realtime_priority", "advertise", "[buses]")), d.output()
