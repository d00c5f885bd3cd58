"""The command as a newcomer types it: connection options before the verb,
pin lists and ranges, watch's --edge and --format, the whole header
(`pins`), "did you mean", info's board and connection count, `docs`,
`check-config --json` (docs/cli.md)."""
from __future__ import annotations

import json
import re
import signal
import time

import pytest

from remoteio.cli.pinlist import PinListError, pin_list
from remoteio.errors import BadPin

from test_cli_verbs import cli, finish, one_line_error, readline, start, watchers
from remoteio.testing import levels, pulses, wait_until


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def at(server, *args):
    """The arguments with the server's address given BEFORE the verb."""
    return ("--host", server.address[0], "--port", str(server.address[1]), *args)


# ---- connection options before the verb --------------------------------------------------

def test_connection_options_work_before_the_verb_too(home, server):
    server.sim.drive(11, 1)
    result = cli(home, None, *at(server, "read", "11"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "BOARD11 (GPIO17): 1\n"
    info = cli(home, None, *at(server, "--timeout", "3", "info"))
    assert info.returncode == 0 and info.stdout.startswith("remoteio ")
    nested = cli(home, None, *at(server, "sim", "levels", "--json"))
    assert json.loads(nested.stdout)["levels"]["11"] == 1


def test_an_option_after_the_verb_wins_over_one_before_it(home, server):
    result = cli(home, None, "--port", "1", "read", "7", "--host", server.address[0],
                 "--port", str(server.address[1]))
    assert result.returncode == 0, result.stderr


def test_connection_options_before_a_verb_that_does_not_connect_are_refused(home):
    one_line_error(cli(home, None, "--timeout", "3", "token"), 2,
                   "--timeout goes with the commands that talk to a server, not 'token'")


@pytest.mark.parametrize("args", [("read", "7", "--token", "s3cret-of-sixteen"),
                                  ("--token=s3cret-of-sixteen", "read", "7"),
                                  ("serve", "--sim", "--token", "s3cret-of-sixteen")])
def test_a_token_on_the_command_line_is_refused_and_never_echoed(home, args):
    result = cli(home, None, *args)
    one_line_error(result, 2, "there is deliberately no --token option")
    assert "s3cret-of-sixteen" not in result.stderr + result.stdout


# ---- pin lists ------------------------------------------------------------------------

@pytest.mark.parametrize("text, boards", [
    ("7", [7]), ("7,11,13", [7, 11, 13]), ("9-11", [10, 11]), ("b9-b11", [10, 11]),
    ("GPIO9-11", [21, 19, 23]), ("g9-GPIO11", [21, 19, 23]), ("11-9", [11, 10]),
    ("1-8", [3, 5, 7, 8]), ("7,GPIO17", [7, 11]),
])
def test_pin_lists_and_ranges_read_as_board_numbers(text, boards):
    assert pin_list(text) == boards


def test_all_is_every_gpio_of_the_header_in_board_order():
    boards = pin_list("all")
    assert len(boards) == 28 and boards == sorted(boards) and boards[0] == 3 and boards[-1] == 40


@pytest.mark.parametrize("text, fragment", [
    ("7,,11", "empty item"), ("41-45", "not on the 40-pin header"), ("GPIO20-30", "GPIO30"),
    ("b7-g9", "one numbering"), ("1-2", "no GPIO in it"), ("x-9", "cannot read"),
    ("GPIO99", "not on the 40-pin header"),
])
def test_a_pin_list_that_does_not_read_says_why(text, fragment):
    with pytest.raises((BadPin, PinListError), match=fragment):
        pin_list(text)


def test_read_takes_lists_ranges_and_all(home, server):
    server.sim.drive(11, 1)
    result = cli(home, server.address, "read", "7,11", "GPIO27", "--json")
    assert json.loads(result.stdout) == {"7": 0, "11": 1, "13": 0}
    ranged = cli(home, server.address, "read", "9-11")
    assert ranged.stdout.splitlines() == ["BOARD10 (GPIO15): 0", "BOARD11 (GPIO17): 1"]
    everything = json.loads(cli(home, server.address, "read", "all", "--json").stdout)
    assert len(everything) == 28 and everything["11"] == 1
    one_line_error(cli(home, server.address, "read", "9-11", "10"), 2, "BOARD10 is named twice")
    one_line_error(cli(home, server.address, "read", "7,,11"), 2, "empty item")


def test_outputs_take_lists_and_off_all_releases_every_pin(home, server):
    result = cli(home, server.address, "on", "7,11", "--time-ms", "200")
    assert result.returncode == 0, result.stderr
    for board in (7, 11):
        (_, width), = pulses(server.sim.history(board))
        assert 190 <= width <= 600
    proc = start(home, server.address, "on", "13-16")   # 13, 15 and 16 on, held
    try:
        said = readline(proc.stderr, 15)  # once it says so, not merely once the pins are on
        assert all(server.sim.value(b) == 1.0 for b in (13, 15, 16))
    finally:
        code, _, _ = finish(proc, signal.SIGTERM)
    assert code == 0 and "holding them until Ctrl-C" in said, said
    off = cli(home, server.address, "off", "all")
    assert off.returncode == 0, off.stderr
    assert wait_until(lambda: all(server.sim.function(b) == "released" for b in pin_list("all")))


def test_a_list_with_a_pin_someone_holds_drives_none_of_them(home, server, client):
    client.pin(11).on()
    one_line_error(cli(home, server.address, "on", "7,11", "--time-ms", "100"), 1, "held")
    assert levels(server.sim.history(7)) == []


# ---- watch: --edge, --count, --format ---------------------------------------------------

def drive_after_watching(server, board, values):
    assert wait_until(lambda: watchers(server, board) == 1, timeout=10)
    for value in values:
        server.sim.drive(board, value)
        time.sleep(0.05)


def test_watch_shows_only_the_edges_asked_for(home, server):
    proc = start(home, server.address, "watch", "11", "--pull", "up", "--edge", "falling",
                 "--count", "2", "--json")
    try:
        drive_after_watching(server, 11, (0, 1, 0, 1))
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            finish(proc, signal.SIGKILL)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["edge"] for e in events] == ["falling", "falling"]
    assert events[1]["seq"] - events[0]["seq"] == 2     # the rising one between was not shown


def test_watch_prints_lines_in_the_format_asked_for(home, server):
    proc = start(home, server.address, "watch", "11", "--pull", "up", "--count", "2",
                 "--format", r"{pin}\t{name}\t{edge}\t{value}")
    try:
        drive_after_watching(server, 11, (0, 1))
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            finish(proc, signal.SIGKILL)
    assert code == 0, err
    assert out.splitlines() == ["11\tBOARD11 (GPIO17)\tfalling\t0", "11\tBOARD11 (GPIO17)\trising\t1"]


@pytest.mark.parametrize("args, fragment", [
    (("--format", "{bogus}"), "no field 'bogus'"),
    (("--format", "{pin"), "--format"),
    (("--format", "{pin}", "--json"), "cannot be combined"),
    (("--edge", "up"), "invalid choice"),
])
def test_a_bad_watch_format_or_edge_is_a_usage_error(home, args, fragment):
    one_line_error(cli(home, ("127.0.0.1", 9), "watch", "7", *args), 2, fragment)


# ---- the whole header ---------------------------------------------------------------------

def test_pins_shows_the_header_in_its_two_columns(home, server, client):
    client.pin(7).on()
    me = "%s:%d" % client._link.sock.getsockname()[:2]
    result = cli(home, server.address, "pins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Raspberry Pi") and "40-pin header" in lines[0]
    table = lines[2:]
    assert table[0].split() == ["HOLDER", "FUNCTION", "LEVEL", "NAME", "PIN", "PIN", "NAME",
                                "LEVEL", "FUNCTION", "HOLDER"]
    assert len(table) == 21
    assert table[1].split() == ["3V3", "(1)", "(2)", "5V"]
    assert re.fullmatch(rf"\s*{re.escape(me)}\s+output\s+1\s+GPIO4\s+\(7\) \(8\)\s+GPIO14\s+0"
                        r"\s+unused\s+-", table[4]), table[4]
    assert table[20].split() == ["GND", "(39)", "(40)", "GPIO21", "0", "unused", "-"]
    assert cli(home, server.address, "info", "--pins").stdout == result.stdout


def test_pins_as_json_has_all_forty_positions(home, server, client):
    client.pin(11).as_input(pull="up")
    rows = json.loads(cli(home, server.address, "pins", "--json").stdout)
    assert [r["pin"] for r in rows] == list(range(1, 41))
    assert rows[0] == {"pin": 1, "name": "3V3", "gpio": None, "function": None, "level": None,
                       "holder": None}
    assert rows[10]["name"] == "GPIO17" and rows[10]["function"] == "input"
    assert rows[10]["level"] == 1 and rows[10]["holder"]


def test_pins_on_real_hardware_leaves_unused_pins_unread(home, server, monkeypatch):
    monkeypatch.setattr(server.backend, "sim", None)    # what a server on a Pi has
    result = cli(home, server.address, "pins")
    assert result.returncode == 0, result.stderr
    assert "levels of unused pins are not read" in result.stdout
    assert re.search(r"-\s+unused\s+-\s+GPIO4\s+\(7\)", result.stdout)
    assert server.worker_pids() == {}                   # nothing was opened
    read = json.loads(cli(home, server.address, "pins", "--read", "--json").stdout)
    assert all(r["level"] in (0, 1) for r in read if r["gpio"] is not None)


# ---- did you mean, info ---------------------------------------------------------------------

@pytest.mark.parametrize("args, hint", [
    (("raed", "7"), "did you mean 'read'?"),
    (("read", "7", "--jsn"), "did you mean --json?"),
    (("sim", "levles"), "did you mean 'levels'?"),
    (("watch", "7", "--egde", "rising"), "did you mean --edge?"),
])
def test_a_typo_gets_a_did_you_mean(home, args, hint):
    one_line_error(cli(home, ("127.0.0.1", 9), *args), 2, hint)


def test_an_extra_word_points_at_the_help_of_the_command_it_was_given_to(home):
    one_line_error(cli(home, ("127.0.0.1", 9), "sim", "drive", "7", "1", "extra"), 2,
                   "see 'remoteio sim drive --help'")
    one_line_error(cli(home, ("127.0.0.1", 9), "read", "7", "--bogus"), 2,
                   "see 'remoteio read --help'")


def test_info_json_has_the_board_and_counts_other_connections(home, server, client):
    info = json.loads(cli(home, server.address, "info", "--json").stdout)
    assert info["board"]["description"].startswith("Raspberry Pi")
    assert info["board"]["backend"] == "sim"
    assert info["connections"] == 1                     # the client, not the command itself
    text = cli(home, server.address, "info").stdout
    assert ", 1 other connection," in text.splitlines()[1]


# ---- docs and the configuration ---------------------------------------------------------------

def test_docs_lists_and_prints_the_pages(home):
    listing = cli(home, None, "docs")
    assert listing.returncode == 0
    for topic in ("readme", "cli", "install", "gpiozero", "security", "examples/button_led.py",
                  "install.sh"):
        assert re.search(rf"^  {re.escape(topic)}\s", listing.stdout, re.M), topic
    page = cli(home, None, "docs", "cli")
    assert page.stdout.startswith("# The `remoteio` command")
    assert cli(home, None, "docs", "docs/gpiozero.md").stdout.startswith("# gpiozero")
    one_line_error(cli(home, None, "docs", "clli"), 2, "did you mean 'cli'?")
    assert re.search(r"^  examples/notebook\.ipynb\s+remoteio in a notebook", listing.stdout, re.M)
    where = cli(home, None, "docs", "--path", "examples/notebook.ipynb").stdout.strip()
    assert where.endswith("notebook.ipynb") and json.loads(open(where).read())["cells"]


def test_systemd_unit_prints_the_service(home):
    unit = cli(home, None, "systemd-unit").stdout
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "ExecReload=" in unit


def test_check_config_json_gives_every_setting_but_the_token(home, tmp_path):
    config = tmp_path / "remoteio.toml"
    config.write_text('[server]\nport = 9000\nmode = "nowait"\ntoken = "a secret of sixteen+"\n'
                      '[pins.7]\naccess = "read"\n')
    result = cli(home, None, "check-config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert (settings["port"], settings["mode"], settings["host"]) == (9000, "nowait", "0.0.0.0")
    assert settings["pins"]["7"]["access"] == "read"
    assert settings["token"] is None and settings["token_set"] is True
    assert "a secret of sixteen+" not in result.stdout
    config.write_text('[server]\ntoken_file = "/etc/remoteio/token"\n')
    from_file = json.loads(cli(home, None, "check-config", str(config), "--json").stdout)
    assert from_file["token_set"] is True and from_file["token_file"] == "/etc/remoteio/token"


def test_check_config_refuses_a_token_file_whose_token_serve_would_refuse(home, tmp_path):
    config, token_file = tmp_path / "remoteio.toml", tmp_path / "token"
    config.write_text(f'[server]\ntoken_file = "{token_file}"\n')
    token_file.write_text("fifteen_chars_x\n")
    token_file.chmod(0o600)
    for extra in ((), ("--json",)):
        short = cli(home, None, "check-config", str(config), *extra)
        assert short.returncode == 2 and "15 characters" in short.stderr, short
    token_file.write_text("   \n")
    assert cli(home, None, "check-config", str(config)).returncode == 2
    token_file.write_text("a token of twenty chars\n")
    assert cli(home, None, "check-config", str(config)).returncode == 0
    token_file.unlink()  # not readable here: serve reads it at start (a staged root, another user)
    missing = cli(home, None, "check-config", str(config))
    assert missing.returncode == 0 and "cannot be read here" in missing.stderr, missing


def test_all_leaves_out_the_pins_a_bus_holds_and_the_header_shows_the_bus_holding_them(
        home, server, client):
    from remoteio.errors import ServerError
    try:
        client.i2c(1).read_byte(0x77)   # answered or not, bus 1's worker now holds BOARD3/5
    except ServerError:
        pass
    client.read_pins([37])              # read, never set up: "unset"
    note = "leaving out BOARD3 (GPIO2) (held by I2C bus 1), BOARD5 (GPIO3) (held by I2C bus 1)"
    off = cli(home, server.address, "off", "all")
    assert off.returncode == 0 and note in off.stderr, off.stderr
    assert wait_until(lambda: all(server.sim.function(b) == "released"
                                  for b in pin_list("all") if b not in (3, 5)))
    read = cli(home, server.address, "read", "all")
    assert read.returncode == 0 and note in read.stderr, read.stderr
    assert len(read.stdout.splitlines()) == 26 and "BOARD3 " not in read.stdout
    watch = cli(home, server.address, "watch", "all", "--seconds", "0.3")
    assert watch.returncode == 0 and note in watch.stderr, watch.stderr
    named = cli(home, server.address, "off", "3")   # named: refused, as any held pin
    one_line_error(named, 1, "BOARD3 (GPIO2) is held by I2C bus 1")
    rows = json.loads(cli(home, server.address, "pins", "--json").stdout)
    assert rows[2]["function"] == "bus" and rows[2]["holder"] == "I2C bus 1"
    assert rows[36]["function"] == "unset"
    info = json.loads(cli(home, server.address, "info", "--json").stdout)
    assert {(e["pin"], e["by"]) for e in info["held"]} == {(3, "I2C bus 1"), (5, "I2C bus 1")}
    state = cli(home, server.address, "state", "3")
    assert state.returncode == 0 and state.stdout.splitlines()[1].split()[-3:] == \
        ["I2C", "bus", "1"], state.stdout


@pytest.mark.parametrize("args, code, fragments", [
    (("serve", "--sim", "--host", "127.0.0.1", "--port", "70000"), 2,
     ("between 0 and 65535, not 70000",)),
    (("serve", "--sim", "--host", "127.0.0.1", "--port", "0", "--tls-cert", "/nonexistent/c.pem",
      "--tls-key", "/nonexistent/k.pem"), 2, ("cannot read tls_cert /nonexistent/c.pem",)),
    (("docs", "--path", "clli"), 2, ("no page 'clli'", "did you mean 'cli'?")),
    (("on", "7", "--lease-ms", "0"), 2, ("--lease-ms 0 is too short", "at least 100")),
    (("on", "7", "--revert", "previous"), 2, ("--revert goes with --lease-ms",)),
    (("watch", "11", "--bounce-ms", "20"), 2, ("--bounce-ms goes with --pull",)),
    (("watch", "11", "--edge", "up"), 2, ("invalid choice: 'up'",)),
    (("on", "7", "--tim-ms", "5"), 2, ("did you mean --time-ms?",)),
    (("mqtt", "--broker", "127.0.0.1", "--password", "SECRET", "--switch", "7"), 2,
     ("deliberately no --password option",)),
])
def test_usage_mistakes_get_one_line_and_exit_2_before_anything_is_done(home, args, code, fragments):
    result = cli(home, None, *args)
    one_line_error(result, code, *fragments)
    assert "did you mean 'up'" not in result.stderr and "did you mean --tofu" not in result.stderr
    assert "SECRET" not in result.stderr + result.stdout  # a secret is never echoed


def test_tls_cert_replaces_an_existing_certificate_only_when_forced(home, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    first = cli(home, None, "tls-cert", "--cert", str(cert), "--key", str(key), "--name", "localhost")
    assert first.returncode == 0, first.stderr
    pinned = cert.read_bytes()
    again = cli(home, None, "tls-cert", "--cert", str(cert), "--key", str(key))
    one_line_error(again, 2, "exist", "--force")
    assert cert.read_bytes() == pinned  # the fingerprint clients pinned still holds
    forced = cli(home, None, "tls-cert", "--cert", str(cert), "--key", str(key), "--force")
    assert forced.returncode == 0 and cert.read_bytes() != pinned


def test_a_wire_from_a_pin_to_itself_is_a_usage_error(home, server):
    one_line_error(cli(home, server.address, "sim", "wire", "15", "15"), 2, "two different pins")
