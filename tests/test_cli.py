"""The `remoteio` command: serve and demo (client verbs: test_cli_verbs.py)."""
from pathlib import Path
import socket
import subprocess
import sys

from remoteio.cli import main


ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "remoteio", *args], cwd=ROOT,
                          capture_output=True, timeout=timeout, text=True)


def test_demo_runs_and_shows_what_the_pins_did():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "on for 30" in result.stdout          # the 300 ms pulse, measured on the board
    assert "4 blinks" in result.stdout
    assert "{11: 1, 13: 1, 15: 1, 16: 0.5}" in result.stdout


def test_help_everywhere():
    for args in ((), ("serve",), ("demo",)):
        result = run(*args, "--help")
        assert result.returncode == 0
        assert "example" in result.stdout


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2


def test_serve_on_a_taken_port_fails_clearly():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run("serve", "--sim", "--host", "127.0.0.1", "--port", str(port), timeout=30)
    assert result.returncode == 3
    assert "cannot serve" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_an_unavailable_backend_fails_clearly():
    result = run("serve", "--backend", "lgpio", "--chip", "99", "--port", "0", timeout=30)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    try:
        import lgpio  # noqa: F401  (an extra: .[lgpio])
    except ImportError:
        assert "the lgpio module is not installed" in result.stderr
    else:
        assert "gpiochip99" in result.stderr


def test_version():
    result = run("--version", timeout=30)
    assert result.returncode == 0
    assert result.stdout.startswith("remoteio ")


def test_main_in_process_keeps_the_callers_settings(capsys, monkeypatch):
    """main() may be called from a longer-lived process: it returns its exit
    code and leaves signal handlers and logging as they were."""
    import logging
    import signal
    for name in list(__import__("os").environ):
        if name.startswith("REMOTEIO_"):
            monkeypatch.delenv(name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = signal.getsignal(signal.SIGTERM)
    level = logging.getLogger("remoteio.client").level
    assert main(["ping", "--host", "127.0.0.1", "--port", str(port)]) == 3
    assert f"cannot connect to 127.0.0.1:{port}" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is handler
    assert logging.getLogger("remoteio.client").level == level
