"""The client verbs of the `remoteio` command, end to end: the command runs as
a subprocess (`python -m remoteio ...`) against a server on the simulated
board, and the board shows what the pins really did (docs/cli.md)."""
from __future__ import annotations

import json
import os
from pathlib import Path
import re
import selectors
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

import pytest

from remoteio import RemoteServer
from remoteio.server import Server

from remoteio.testing import free_port, levels, pulses, wait_until

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "a token for the command line"
VERBS = ("on", "off", "value", "blink", "pulse", "read", "input", "watch", "info", "state",
         "ping", "pins", "sim", "serve", "demo", "token", "tls-cert", "check-config", "docs",
         "systemd-unit", "mqtt", "discover")
SIM_ACTIONS = ("drive", "release", "wire", "unwire", "levels", "history")


@pytest.fixture(autouse=True)
def interruptible():
    """Children get Ctrl-C (SIGINT) even when pytest runs where it is ignored
    (a background job of a script): an ignored signal stays ignored across exec."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def home(tmp_path):
    """A HOME with no token in it, so nothing from this machine leaks in."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def environment(home, address=None, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMOTEIO_")}
    env["HOME"] = str(home)
    if address is not None:
        env["REMOTEIO_HOST"], env["REMOTEIO_PORT"] = address[0], str(address[1])
    env.update(extra)
    return env


def command(*args: str) -> List[str]:
    return [sys.executable, "-m", "remoteio", *args]


def cli(home, address, *args: str, timeout: float = 20,
        **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=ROOT, env=environment(home, address, **extra),
                          capture_output=True, text=True, timeout=timeout)


def start(home, address, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(command(*args), cwd=ROOT, env=environment(home, address, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_line(proc: subprocess.Popen, text: str, timeout: float = 15) -> str:
    """The first line of *proc*'s stderr that contains *text* (what it said
    before it, too), waiting at most *timeout* s; AssertionError otherwise."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"no {text!r} on stderr within {timeout} s: {seen!r}")


def finish(proc: subprocess.Popen, sig: Optional[int] = None, timeout: float = 15):
    """Signal *proc* (if asked), then its exit code, stdout and stderr."""
    try:
        if sig is not None:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    return proc.returncode, out, err


def one_line_error(result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def readline(stream, timeout: float = 10) -> str:
    """The next line of a child's stdout or stderr, or "" after *timeout* seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return stream.readline()


def watchers(server: Server, pin: int) -> int:
    with RemoteServer(*server.address, heartbeat=0, reconnect=False) as remote:
        return remote.pin(pin, claim=False).state()["watchers"]


# ---- help --------------------------------------------------------------------------

def test_help_lists_every_verb(home):
    result = cli(home, None, "--help")
    assert result.returncode == 0
    for verb in VERBS:
        assert re.search(rf"^\s+{re.escape(verb)}\b", result.stdout, re.M), verb
    assert "exit codes" in result.stdout and "REMOTEIO_HOST" in result.stdout


@pytest.mark.parametrize("verb", VERBS + tuple(f"sim {a}" for a in SIM_ACTIONS))
def test_every_verb_has_help_with_examples(home, verb):
    result = cli(home, None, *verb.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "example" in result.stdout


# ---- outputs: what stays, what goes --------------------------------------------------

@pytest.mark.parametrize("fixture", ["server", "nowait_server"])
def test_a_timed_on_runs_to_its_end_then_the_command_exits(home, request, fixture):
    server = request.getfixturevalue(fixture)
    started = time.monotonic()
    result = cli(home, server.address, "on", "7", "--time-ms", "300")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert elapsed >= 0.3
    (_, width), = pulses(server.sim.history(7))      # in both modes: not cut short
    assert 290 <= width <= 600
    assert wait_until(lambda: server.sim.function(7) == "released")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_untimed_on_holds_the_pin_until_ctrl_c(home, server, sig):
    proc = start(home, server.address, "on", "GPIO4")
    try:
        said = wait_line(proc, "holding it until Ctrl-C")
        assert server.sim.value(7) == 1.0 and proc.poll() is None
    finally:
        code, out, err = finish(proc, sig)
    assert code == 0, err
    assert "Traceback" not in said + err
    assert wait_until(lambda: server.sim.function(7) == "released")
    assert levels(server.sim.history(7)) == [1.0, 0.0]    # on, and off only after the signal


def test_pins_may_be_given_as_several_arguments_as_read_takes_them(home, server):
    proc = start(home, server.address, "on", "7", "11,13")
    try:
        said = wait_line(proc, "holding them until Ctrl-C (the pins are made safe")
        assert [server.sim.value(b) for b in (7, 11, 13)] == [1.0, 1.0, 1.0]
    finally:
        code, out, err = finish(proc, signal.SIGINT)
    assert code == 0 and "Traceback" not in said + err
    assert wait_until(lambda: all(server.sim.function(b) == "released" for b in (7, 11, 13)))
    result = cli(home, server.address, "value", "7", "11", "0.5", "--time-ms", "3000", "--detach")
    assert result.returncode == 0, result.stderr
    assert server.sim.value(7) == server.sim.value(11) == 0.5


def test_ctrl_c_twice_in_a_row_still_ends_a_held_command_quietly(home, server):
    """A second Ctrl-C while the first unwinds is ignored (raised inside
    threading's lock handling it once gave "release unlocked lock")."""
    for attempt in range(5):
        proc = start(home, server.address, "blink", "GPIO4", "--on-time", "0.02",
                     "--off-time", "0.02")
        try:
            wait_line(proc, "holding it until Ctrl-C")
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGINT)
        finally:
            code, out, err = finish(proc)
        assert code == 0 and "Traceback" not in err and err.count("\n") <= 1, (attempt, err)
        assert wait_until(lambda: server.sim.function(7) == "released")


def test_detach_leaves_the_task_to_the_server(home, server):
    started = time.monotonic()
    # long enough that a slow interpreter start still returns well inside it
    result = cli(home, server.address, "on", "7", "--time-ms", "2000", "--detach")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 2.0
    assert server.sim.value(7) == 1.0          # a wait-mode server finishes it...
    assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=5)
    (_, width), = pulses(server.sim.history(7))
    assert width >= 1990                       # ...to its end
    untimed = cli(home, server.address, "on", "11", "--detach")
    assert untimed.returncode == 0
    assert "only for a moment" in untimed.stderr
    assert cli(home, server.address, "on", "7", "--detach", "--hold").returncode == 2


def test_hold_keeps_an_off_pin_driven(home, server):
    proc = start(home, server.address, "off", "7", "--hold")
    try:
        assert wait_until(lambda: server.sim.function(7) == "output", timeout=10)
        assert server.sim.value(7) == 0.0
    finally:
        code, _, err = finish(proc, signal.SIGTERM)
    assert code == 0, err
    assert wait_until(lambda: server.sim.function(7) == "released")


def test_timed_then_hold(home, server):
    proc = start(home, server.address, "on", "7", "--time-ms", "200", "--hold")
    try:
        said = wait_line(proc, "done: holding it until Ctrl-C")  # after the timed part
        assert levels(server.sim.history(7)) == [1.0, 0.0]
        assert proc.poll() is None and server.sim.function(7) == "output"
    finally:
        code, _, err = finish(proc, signal.SIGINT)
    assert code == 0 and "Traceback" not in said + err
    assert wait_until(lambda: server.sim.function(7) == "released")


def lease_renewals(observer, board, history):
    """How often the lease on *board* was seen to move on (``info``'s lease_ms going up;
    *history* keeps what was seen between calls)."""
    lease = next((p.get("lease_ms") for p in observer.info()["pins"] if p["pin"] == board), None)
    if lease is not None:
        history.append(lease)
    return sum(1 for a, b in zip(history, history[1:]) if b > a + 20)


def test_a_lease_is_renewed_while_holding_and_reverts_when_the_command_freezes(home, server):
    proc = start(home, server.address, "on", "7", "--lease-ms", "300")
    try:
        assert wait_until(lambda: server.sim.value(7) == 1.0, timeout=10)
        with RemoteServer(*server.address) as observer:
            seen = []
            assert wait_until(lambda: lease_renewals(observer, 7, seen) >= 3, timeout=10, interval=0.02)
        assert levels(server.sim.history(7)) == [1.0]  # renewed three times, never off
        proc.send_signal(signal.SIGSTOP)          # a frozen client: the socket stays open
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=2)
    finally:
        proc.send_signal(signal.SIGCONT)
        finish(proc, signal.SIGKILL)


def test_value_blink_pulse_off(home, server):
    assert cli(home, server.address, "value", "12", "0.25", "--time-ms", "150").returncode == 0
    assert levels(server.sim.history(12))[-2:] == [0.25, 0.0]
    result = cli(home, server.address, "blink", "b7", "--on-time", "0.05", "--off-time", "0.05",
                 "--time-ms", "320")
    assert result.returncode == 0, result.stderr
    assert len(pulses(server.sim.history(7))) in (3, 4)      # 4, unless a late wake-up
    assert cli(home, server.address, "pulse", "GPIO18", "--fade-in", "0.1", "--fade-out", "0.1",
               "--time-ms", "250").returncode == 0
    faded = levels(server.sim.history(12))
    assert len([v for v in faded if 0.0 < v < 1.0 and v != 0.25]) >= 3 and faded[-1] == 0.0
    assert cli(home, server.address, "off", "7", "--time-ms", "50", "--wait").returncode == 0


# ---- reading ------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["7", "b7", "g4", "BOARD7", "GPIO4"])
def test_pins_in_every_spelling(home, server, spec):
    server.sim.drive(7, 1)
    result = cli(home, server.address, "read", spec, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"7": 1}


def test_read_one_line_per_pin(home, server):
    server.sim.drive(11, 1)
    result = cli(home, server.address, "read", "11", "13")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["BOARD11 (GPIO17): 1", "BOARD13 (GPIO27): 0"]


def test_input_sets_the_pull_and_reads(home, server):
    result = cli(home, server.address, "input", "11", "--pull", "up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "BOARD11 (GPIO17): 1 (input, pull up)"
    result = cli(home, server.address, "input", "GPIO17", "--pull", "down", "--bounce-ms", "5",
                 "--json")
    assert json.loads(result.stdout) == {"pin": 11, "gpio": 17, "pull": "down",
                                         "bounce_ms": 5.0, "value": 0}
    refused = cli(home, server.address, "input", "3", "--pull", "down")  # a fixed pull-up
    one_line_error(refused, 1, "remoteio: ", "pull-up")


# ---- watch --------------------------------------------------------------------------

def test_watch_json_lines(home, server):
    proc = start(home, server.address, "watch", "11", "--pull", "up", "--json", "--count", "3")
    try:
        assert wait_until(lambda: watchers(server, 11) == 1, timeout=10)
        for level in (0, 1, 0):
            server.sim.drive(11, level)
            time.sleep(0.05)
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            finish(proc, signal.SIGKILL)
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["edge"] for e in events] == ["falling", "rising", "falling"]
    assert [e["value"] for e in events] == [0, 1, 0]
    assert all(e["pin"] == 11 and e["gpio"] == 17 and e["missed"] == 0 for e in events)
    assert [e["seq"] - events[0]["seq"] for e in events] == [0, 1, 2]
    assert all(set(e) == {"time", "pin", "gpio", "value", "edge", "ts_ns", "seq", "missed"}
               for e in events)
    assert events[0]["ts_ns"] < events[1]["ts_ns"] < events[2]["ts_ns"]


def test_watch_human_lines_and_ctrl_c(home, server, client):
    led = client.pin(7)
    proc = start(home, server.address, "watch", "7", "13")
    try:
        assert wait_until(lambda: watchers(server, 7) == 1, timeout=10)
        led.on()
        line = readline(proc.stdout)
    finally:
        code, out, err = finish(proc, signal.SIGINT)
    assert code == 0, err
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}  BOARD7 \(GPIO4\)  1  rising   seq \d+  "
                        r"missed 0\n", line), line
    assert "watching BOARD7 (GPIO4) = 0, BOARD13 (GPIO27) = 0" in err
    assert "Traceback" not in err


def test_watch_for_some_seconds_and_again_after_the_holder_closes(home, server, client):
    started = time.monotonic()
    quiet = cli(home, server.address, "watch", "11", "--seconds", "0.3")
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert time.monotonic() - started >= 0.3
    led = client.pin(7)
    led.on()
    proc = start(home, server.address, "watch", "7", "--json", "--count", "2")
    try:
        assert wait_until(lambda: watchers(server, 7) == 1, timeout=10)
        led.close()                                   # off (an event), and the watch ends
        assert "watching it again" in readline(proc.stderr)
        assert wait_until(lambda: watchers(server, 7) == 1, timeout=5)
        client.pin(7).on()
        code, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            finish(proc, signal.SIGKILL)
    assert code == 0, err
    assert [json.loads(line)["edge"] for line in out.splitlines()] == ["falling", "rising"]


# ---- info, state, ping --------------------------------------------------------------

def test_state_and_info_tables(home, server, client):
    assert cli(home, server.address, "state").stdout.strip() == "no pins in use"
    client.pin(7).on(lease_ms=30000)
    client.pin(12).blink(time_ms=30000, on_time=0.5, off_time=0.5)
    client.pin(11).as_input(pull="up")
    me = "%s:%d" % client._link.sock.getsockname()[:2]
    result = cli(home, server.address, "state", "7", "GPIO18", "11")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["PIN", "GPIO", "MODE", "VALUE", "TASK", "LEFT", "QUEUE", "REVERT",
                              "OWNER"]
    assert re.match(r"7 +4 +output +1 +on +- +0 +to 0 in (29\.\d|30) s +" + re.escape(me), rows[0])
    assert re.match(r"12 +18 +output +[01] +blink +(29\.\d|30) s +0 +- +" + re.escape(me), rows[1])
    assert re.match(r"11 +17 +input +1 +- +- +0 +- +" + re.escape(me), rows[2])
    info = cli(home, server.address, "info")
    assert info.returncode == 0, info.stderr
    assert re.match(r"remoteio \S+ at 127\.0\.0\.1:\d+: .*backend sim, mode wait\n"
                    r"up .*, 1 other connection,", info.stdout)   # not counting itself
    assert [line.split()[0] for line in info.stdout.splitlines()[3:]] == ["PIN", "7", "11", "12"]
    raw = json.loads(cli(home, server.address, "info", "--json").stdout)
    assert [p["pin"] for p in raw["pins"]] == [7, 11, 12] and raw["mode"] == "wait"
    states = json.loads(cli(home, server.address, "state", "--json").stdout)
    assert [s["pin"] for s in states] == [7, 11, 12]
    assert states[0]["lease"]["revert_to"] == 0.0 and states[0]["owner"] == me


def test_ping_statistics(home, server):
    result = cli(home, server.address, "ping", "--count", "5")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"5 round trips to 127\.0\.0\.1:\d+ \(remoteio \S+\): min \d+ (µs|us), "
                        r"median \d+ (µs|us), p99 \d+ (µs|us), max \d+ (µs|us)\n", result.stdout)
    stats = json.loads(cli(home, server.address, "ping", "--count", "20", "--json").stdout)
    assert stats["count"] == 20 and len(stats["samples_us"]) == 20
    assert 0 < stats["min_us"] <= stats["median_us"] <= stats["p99_us"] <= stats["max_us"]


# ---- the simulated board --------------------------------------------------------------

def test_sim_verbs(home, server, client):
    def sim(*args):
        result = cli(home, server.address, "sim", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert sim("drive", "11", "1") == "" and server.sim.level(11) == 1
    assert cli(home, server.address, "read", "11").stdout.strip() == "BOARD11 (GPIO17): 1"
    sim("release", "GPIO17")
    assert server.sim.level(11) == 0
    sim("wire", "15", "16")
    client.pin(15).on()
    assert wait_until(lambda: server.sim.level(16) == 1)
    assert re.search(r"^16 +23 +1 +0$", sim("levels"), re.M)
    assert json.loads(sim("levels", "--json"))["levels"]["15"] == 1
    sim("unwire", "15")
    assert server.sim.level(16) == 0
    assert cli(home, server.address, "on", "7", "--time-ms", "100").returncode == 0
    lines = sim("history", "7").splitlines()
    assert [line.split()[1:] for line in lines][0] == ["+0.000000", "s", "1"]
    assert lines[1].split()[-1] == "0" and 0.09 < float(lines[1].split()[1]) < 0.2
    assert [v for _, v in json.loads(sim("history", "7", "--json"))] == [1.0, 0.0]
    assert sim("history", "13").strip() == "BOARD13 (GPIO27) has not changed"
    assert cli(home, server.address, "sim", "drive", "11", "2").returncode == 2


def test_sim_on_real_hardware_is_refused(home, server, monkeypatch):
    monkeypatch.setattr(server.backend, "sim", None)   # what a server on a Pi has
    one_line_error(cli(home, server.address, "sim", "levels"), 1, "simulated board")


def test_against_a_server_process(home, server_process):
    proc = server_process()
    assert cli(home, proc.address, "on", "7", "--time-ms", "100").returncode == 0
    history = cli(home, proc.address, "sim", "history", "7", "--json")
    assert [v for _, v in json.loads(history.stdout)] == [1.0, 0.0]


# ---- errors and exit codes ------------------------------------------------------------

def test_refusals_exit_1(home, server, client):
    client.pin(7).on()
    one_line_error(cli(home, server.address, "on", "7", "--time-ms", "10"), 1,
                   "remoteio: BOARD7 (GPIO4) is held by another connection")
    one_line_error(cli(home, server.address, "value", "7", "0.5", "--time-ms", "10"), 1, "held")


def test_forbidden_exits_1(home):
    with Server(host="127.0.0.1", port=0, backend="sim", pins={11: {"access": "read"}}) as server:
        result = cli(home, server.address, "on", "11", "--time-ms", "10")
        one_line_error(result, 1, "remoteio: ", "read-only")
        assert cli(home, server.address, "read", "11").returncode == 0


def test_a_pin_the_rules_refuse_after_others_were_driven_says_which_were(home):
    with Server(host="127.0.0.1", port=0, backend="sim", pins={15: {"lease_only": True}}) as server:
        result = cli(home, server.address, "on", "7", "11", "15", "--time-ms", "200")
        one_line_error(result, 1, "with a lease", "BOARD7 (GPIO4), BOARD11 (GPIO17) were driven already",
                       "a timed task runs to its end")
        first = cli(home, server.address, "on", "15", "7", "--time-ms", "200")
        one_line_error(first, 1, "with a lease")
        assert "driven already" not in first.stderr


@pytest.mark.parametrize("args, fragment", [
    (("on", "1"), "board pin 1 is 3V3 power, not a GPIO"),
    (("on", "GPIO99"), "GPIO99 is not on the 40-pin header"),
    (("read", "7", "b7"), "BOARD7 is named twice"),
    (("on", "7", "--time-ms", "-5"), "time_ms must be between 0"),
    (("value", "7", "2"), "level must be between 0 and 1"),
    (("blink", "7", "--on-time", "nan"), "on_time must be"),
    (("pulse", "7", "--fade-in", "0", "--fade-out", "0"), "cannot both be 0"),
    (("watch", "7", "--count", "0"), "count must be more than 0"),
    (("input", "11"), "--pull"),
    (("on",), "PIN"),
    (("frobnicate",), "invalid choice"),
    (("sim",), "ACTION"),
])
def test_usage_errors_exit_2(home, args, fragment):
    one_line_error(cli(home, ("127.0.0.1", free_port()), *args), 2, fragment)


def test_bad_settings_exit_2(home, server, tmp_path):
    one_line_error(cli(home, ("127.0.0.1", "http"), "ping"), 2, "REMOTEIO_PORT")
    one_line_error(cli(home, server.address, "ping", "--token-file", str(tmp_path / "nope")), 2,
                   "cannot read the token")
    one_line_error(cli(home, server.address, "ping", "--fingerprint", "sha256:12"), 2,
                   "fingerprint")


def test_cannot_connect_exits_3(home):
    port = free_port()
    one_line_error(cli(home, ("127.0.0.1", port), "on", "7", "--time-ms", "10"), 3,
                   f"remoteio: cannot connect to 127.0.0.1:{port}")
    with socket.create_server(("127.0.0.1", 0)) as silent:      # accepts, never answers
        result = cli(home, silent.getsockname(), "read", "7", "--timeout", "0.3")
    one_line_error(result, 3, "did not greet as a remoteio server")


def test_a_lost_connection_exits_3(home):
    server = Server(host="127.0.0.1", port=0, backend="sim").start()
    try:
        proc = start(home, server.address, "blink", "7")
        assert wait_until(lambda: server.sim.value(7) == 1.0, timeout=10)
    finally:
        server.stop()
    code, _, err = finish(proc)
    assert code == 3, err
    assert "lost the connection" in err.strip().splitlines()[-1] and "Traceback" not in err


# ---- authentication and TLS -------------------------------------------------------------

@pytest.fixture
def secured():
    with Server(host="127.0.0.1", port=0, backend="sim", token=TOKEN) as server:
        yield server


def test_a_token_from_the_environment_or_a_file(home, secured, tmp_path):
    ok = cli(home, secured.address, "on", "7", "--time-ms", "50", REMOTEIO_TOKEN=TOKEN)
    assert ok.returncode == 0, ok.stderr
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    assert cli(home, secured.address, "read", "7", "--token-file", str(token_file)).returncode == 0
    assert cli(home, secured.address, "ping", REMOTEIO_TOKEN_FILE=str(token_file)).returncode == 0
    (home / ".config" / "remoteio").mkdir(parents=True)
    (home / ".config" / "remoteio" / "token").write_text(TOKEN)
    (home / ".config" / "remoteio" / "token").chmod(0o600)
    assert cli(home, secured.address, "state").returncode == 0


def test_no_token_talks_to_a_server_without_authentication_despite_a_token_file(home, server):
    (home / ".config" / "remoteio").mkdir(parents=True)
    (home / ".config" / "remoteio" / "token").write_text(TOKEN)
    (home / ".config" / "remoteio" / "token").chmod(0o600)
    refused = cli(home, server.address, "ping")
    one_line_error(refused, 1, "asks for no authentication", "--no-token")
    assert cli(home, server.address, "ping", "--no-token").returncode == 0
    assert cli(home, server.address, "--no-token", "read", "7").returncode == 0
    both = cli(home, server.address, "ping", "--no-token", "--token-file", "x")
    one_line_error(both, 2, "--no-token and --token-file")


def test_no_token_or_a_wrong_one_is_refused(home, secured):
    one_line_error(cli(home, secured.address, "read", "7"), 1, "needs a token", "--token-file")
    one_line_error(cli(home, secured.address, "read", "7", REMOTEIO_TOKEN="wrong"), 1)
    assert secured.sim.function(7) == "released"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    pytest.importorskip("cryptography")
    from remoteio.tls import generate_self_signed
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    return cert, key, generate_self_signed(cert, key, ["localhost", "127.0.0.1"])


def test_tls_with_a_fingerprint_or_a_ca_file(home, certificate):
    cert, key, fingerprint = certificate
    with Server(host="127.0.0.1", port=0, backend="sim", token=TOKEN, tls_cert=cert,
                tls_key=key) as server:
        pinned = cli(home, server.address, "ping", "--count", "1", "--fingerprint", fingerprint,
                     REMOTEIO_TOKEN=TOKEN)
        assert pinned.returncode == 0, pinned.stderr
        assert cli(home, server.address, "read", "7", REMOTEIO_TOKEN=TOKEN,
                   REMOTEIO_FINGERPRINT=fingerprint).returncode == 0
        assert cli(home, server.address, "read", "7", "--cafile", cert,
                   REMOTEIO_TOKEN=TOKEN).returncode == 0
        wrong = cli(home, server.address, "read", "7", "--fingerprint", "sha256:" + "00" * 32,
                    REMOTEIO_TOKEN=TOKEN)
        one_line_error(wrong, 3)
