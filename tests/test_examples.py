"""The README's examples run unchanged against a server on this machine."""
import os
from pathlib import Path
import re
import subprocess
import sys
import time

from remoteio import RemoteServer
from remoteio.testing import free_port, pulses, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_readme_server_and_client_examples(tmp_path):
    port = free_port()
    env = dict(os.environ, REMOTEIO_PORT=str(port), REMOTEIO_HOST="127.0.0.1", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "examples/server.py"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_until(lambda: re.search(rb"serving on", log_path.read_bytes()), timeout=20), \
                log_path.read_text()
            client = subprocess.run([sys.executable, "examples/client.py"], cwd=ROOT, env=env,
                                    capture_output=True, timeout=60)
            assert client.returncode == 0, client.stderr.decode()
            numbering = subprocess.run([sys.executable, "examples/gpio_numbering.py"], cwd=ROOT,
                                       env=env, capture_output=True, timeout=60)
            assert numbering.returncode == 0, numbering.stderr.decode()
            assert b"refused: board pin 1 is 3V3 power" in numbering.stdout
            button = subprocess.run([sys.executable, "examples/button_led.py"], cwd=ROOT,
                                    env=env, capture_output=True, timeout=60)
            assert button.returncode == 0, button.stderr.decode()
            assert button.stdout.decode().splitlines() == [
                "button pressed (event 1): LED on", "button pressed (event 3): LED off",
                "button pressed (event 5): LED on"]
            zero = subprocess.run([sys.executable, "examples/gpiozero_remote.py"], cwd=ROOT,
                                  env=env, capture_output=True, timeout=60)
            assert zero.returncode == 0, zero.stderr.decode()
            assert zero.stdout.decode().splitlines()[1:] == ["LED is on", "LED is off"]
        finally:
            server.terminate()
            assert server.wait(20) == 0
    assert "every pin safe" in log_path.read_text()


def test_the_bus_examples_run_against_remoteio_serve_sim(tmp_path):
    port = free_port()
    # PYTHONPATH: this checkout's remoteio, whatever else is installed
    env = dict(os.environ, REMOTEIO_PORT=str(port), REMOTEIO_HOST="127.0.0.1", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT))
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "remoteio", "serve", "--sim", "--host",
                                   "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_until(lambda: re.search(rb"serving on", log_path.read_bytes()), timeout=20), \
                log_path.read_text()

            def example(*argv):
                done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env,
                                      capture_output=True, timeout=60)
                assert done.returncode == 0, done.stderr.decode()
                return done.stdout.decode().splitlines()
            dump = example("examples/i2c_register_dump.py")
            assert len(dump) == 22 and dump[0].startswith("0x00: 0xff")   # IODIRA after reset
            since = time.monotonic_ns()   # CLOCK_MONOTONIC: the server's clock too
            chase = example("examples/mcp23017_chaser.py", "2")
            assert chase == [f"bell {b}: GPIOA = {format(1 << b, '04b')}" for b in range(4)] * 2
            with RemoteServer("127.0.0.1", port) as remote:   # the bells in the board's history
                rung = sorted((start, bell, width) for bell in range(4) for start, width in
                              pulses(remote.sim.history(f"i2c1@0x20:A{bell}", since)))
            assert [bell for _, bell, _ in rung] == [0, 1, 2, 3] * 2
            assert all(80 <= width <= 2000 for _, _, width in rung), rung   # 100 ms sleeps
            adc = example("examples/mcp3008.py", "--sim")   # gpiozero over the network
            assert [line.split()[:2] for line in adc] == [
                [f"CH{c}:", str(int(1024 * c * 0.4 / 3.3))] for c in range(8)]
            echo = example("examples/serial_echo.py", "serial0", "one", "two")
            assert echo == ["sent 'one', got back 'one'", "sent 'two', got back 'two'",
                            "data pushed: True | bytes lost: 0"]
        finally:
            server.terminate()
            assert server.wait(20) == 0


def test_the_bell_tower_rings_an_expanders_pins_timed_on_the_pi(tmp_path):
    port = free_port()
    config = tmp_path / "remoteio.toml"
    config.write_text('[expanders.mcp0]\nchip = "mcp23017"\nbus = 1\naddress = 0x20\n')
    env = dict(os.environ, REMOTEIO_PORT=str(port), REMOTEIO_HOST="127.0.0.1", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT))
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "remoteio", "serve", "--sim", "--host",
                                   "127.0.0.1", "--port", str(port), "--config", str(config)],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_until(lambda: re.search(rb"serving on", log_path.read_bytes()), timeout=20), \
                log_path.read_text()
            done = subprocess.run([sys.executable, "examples/bell_tower.py", "1"], cwd=ROOT,
                                  env=env, capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr.decode()
            rung = [line.split() for line in done.stdout.decode().splitlines()]
            assert [int(bell.rstrip(":")) for _, bell, _, _ in rung] == [0, 1, 2, 3, 2, 1]
            assert all(499 <= float(width) <= 700 for _, _, width, _ in rung), rung
        finally:
            server.terminate()
            assert server.wait(20) == 0
