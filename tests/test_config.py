"""The server configuration file: what it accepts, and where a mistake is."""
from pathlib import Path
import subprocess
import sys

import pytest

from remoteio import RemoteServer
from remoteio.server.config import ConfigError, PinRule, load_config, parse_config
from remoteio.errors import Forbidden
from remoteio.server import Server


ROOT = Path(__file__).resolve().parent.parent

GOOD = """
# a comment
[server]
host = "127.0.0.1"
port = 9000
mode = "nowait"
backend = "sim"
token_file = "/etc/remoteio/token"
on_disconnect = "safe"

[pins]
default_access = "read"

[pins.7]
access = "write"
max_hold_ms = 60000
safe_value = 1

[pins."GPIO17"]
lease_only = true
"""


def test_a_good_file():
    config = parse_config(GOOD, "remoteio.toml")
    assert (config.host, config.port, config.mode, config.backend) == ("127.0.0.1", 9000, "nowait", "sim")
    assert config.on_disconnect == "safe" and config.token_file == "/etc/remoteio/token"
    assert config.rule(7) == PinRule(access="write", max_hold_ms=60000, safe_value=1)
    assert config.rule(11).lease_only and config.rule(11).access == "write"
    assert config.rule(13).access == "read"          # the default for pins not listed


@pytest.mark.parametrize("text,where,words", [
    ("[server]\nport = 80a\n", ":2:", "Expected newline"),
    ("[server]\nhost = '0.0.0.0'\nport = '8509'\n", ":3:", "port must be an integer"),
    ("[server]\n\nmode = 'fast'\n", ":3:", "mode must be one of"),
    ("[server]\ncolour = 'red'\n", ":2:", "unknown setting 'colour'"),
    ("[server]\nport = 70000\n", ":2:", "port must be 0..65535"),
    ("[server]\nport = 9000\nhost = ' '\n", ":3:", "host is blank"),
    ("[servre]\nport = 1\n", ":1:", "not a section"),
    ("[pins.1]\naccess = 'write'\n", ":1:", "3V3 power"),
    ("[pins.7]\n\naccess = 'all'\n", ":3:", "access must be one of"),
    ("[pins.7]\nsafe_value = 2\n", ":2:", "safe_value must be 0 or 1"),
    ("[pins.7]\nmax_hold_ms = -5\n", ":2:", "more than 0"),
    ("[pins.7]\nlease_only = 'yes'\n", ":2:", "true or false"),
    ("[pins]\nseven = 1\n", ":2:", "not a pin table"),
    ("[server]\ntoken = 'a'\ntoken_file = '/x'\n", ":2:", "not both"),
])
def test_mistakes_say_file_and_line(text, where, words):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "remoteio.toml")
    message = str(info.value)
    assert message.startswith("remoteio.toml" + where), message
    assert words in message


def test_check_config_command(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text("[server]\nport = 'x'\n")
    ok = subprocess.run([sys.executable, "-m", "remoteio", "check-config", str(good)],
                        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "ok" in ok.stdout
    wrong = subprocess.run([sys.executable, "-m", "remoteio", "check-config", str(bad)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "bad.toml:2:" in wrong.stderr


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[server]\nport = 9000\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.toml:3: the file is not UTF-8 text \(byte 0xe9\)"):
        load_config(str(latin))


def test_serve_with_a_config_file(tmp_path, server_process, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("t0ken-of-sixteen-chars\n")
    token_file.chmod(0o600)
    config = tmp_path / "remoteio.toml"
    config.write_text(f'[server]\ntoken_file = "{token_file}"\nmode = "nowait"\n\n'
                      '[pins.7]\naccess = "read"\n')
    proc = server_process("--config", str(config))
    monkeypatch.delenv("REMOTEIO_TOKEN", raising=False)
    with RemoteServer(*proc.address, token="t0ken-of-sixteen-chars") as remote:
        assert remote.mode == "nowait"
        with pytest.raises(Forbidden):
            remote.pin(7).on()  # a read-only pin: held for reading, never driven
        remote.pin(11).on()
    assert "token required" in proc.output()


def test_a_server_takes_a_server_config(tmp_path):
    config = parse_config('[server]\nhost = "127.0.0.1"\nport = 0\nmode = "nowait"\n'
                          'backend = "sim"\n[pins.7]\naccess = "read"\n')
    with Server(config) as server:
        assert server.mode == "nowait" and server.host == "127.0.0.1"
        with RemoteServer(*server.address) as remote:
            with pytest.raises(Forbidden):
                remote.pin(7).on()


def test_bus_rules_a_program_gives_are_read_by_their_kind_whatever_the_key():
    from remoteio.server.busconfig import BusRule, bus_rules
    from remoteio.server.serialconfig import SerialRule
    rules = bus_rules({"i2c1": {"access": "read"}, ("spi", 0, 1): {"devices": ["loopback"]},
                       ("serial", "serial0"): {"device": "sim:echo"}})
    assert rules[("i2c", 1)] == BusRule("read")
    assert rules[("spi", 0, 1)] == BusRule("write", None, (("loopback", 0),))
    assert rules[("serial", "serial0")] == SerialRule("sim:echo")
    with pytest.raises(ValueError, match="unknown setting 'colour' for an SPI device"):
        bus_rules({"spi0.0": {"colour": "red"}})
    with pytest.raises(ValueError, match="'uart0' is not a bus"):
        bus_rules({"uart0": {}})


def test_a_setting_outside_any_section_is_named_with_its_line():
    with pytest.raises(ConfigError, match=r"^c\.toml:2: port is outside any section"):
        parse_config('# a comment\nport = 1234\n[pins.7]\naccess = "read"\n', "c.toml")
