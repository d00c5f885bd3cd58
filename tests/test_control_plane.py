"""Regression tests of issue 12 (the server's control plane and pin rules):
clients that never read, info storms, the output cap, a disconnect with a
full queue, queued work that cannot run, embedding, and the one gate of the
pin rules (set/setup, safe_value = 1, max_hold over sequences, sim access).
Every wait bounded; every process started here stopped by its pid."""
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
from gpiozero import LED

from remoteio.errors import Forbidden
from remoteio.gpiozero_factory import RemoteIOFactory
from remoteio.server import Server

from remoteio.testing import levels, MuteClient, pulses, RawClient, wait_until, worker_pid

ROOT = Path(__file__).resolve().parent.parent

MS = 1_000_000  # ns
EMOJI_ID = "\U0001F600" * 64


def frames(count: int, **fields) -> bytes:
    return (json.dumps(fields, ensure_ascii=False) + "\n").encode() * count


def sim_server(**options) -> Server:
    return Server(host="127.0.0.1", port=0, backend="sim", **options)


def hello(address, timeout: float = 5.0) -> RawClient:
    conn = RawClient(address, timeout=timeout)
    conn.hello()
    return conn


def ping_latencies(address, until: float, timeout: float = 2.0):
    """Every 20 ms until *until* (monotonic s), on a fresh connection every 10
    pings: the latencies (s) of each hello and ping; one not answered within
    *timeout* counts as *timeout* and ends it."""
    latencies, conn = [], None
    try:
        for n in range(1000):
            sent = time.monotonic()
            if n % 10 == 0:
                if conn:
                    conn.close()
                conn = hello(address, timeout)
            else:
                conn.call({"id": n, "op": "ping"})
            latencies.append(time.monotonic() - sent)
            if time.monotonic() >= until:
                break
            time.sleep(0.02)  # pacing
    except OSError:
        latencies.append(timeout)
    finally:
        if conn:
            conn.close()
    return latencies


def lease(conn: RawClient, pin: int, lease_ms: float):
    """Open *pin*, then drive it on under a lease: (sent, answered) in ns,
    the window in which the server set the lease's deadline (minus lease_ms)."""
    assert conn.call({"id": "open", "op": "open", "pin": pin})["ok"]
    sent = time.monotonic_ns()
    assert conn.call({"id": "lease", "op": "on", "pin": pin, "lease_ms": lease_ms})["ok"]
    return sent, time.monotonic_ns()


def wait_event(conn: RawClient, name: str, timeout: float = 3.0):
    """The first *name* event on *conn* within *timeout* (pings collect events)."""
    conn.sock.settimeout(timeout + 0.5)
    try:
        return wait_until(lambda: conn.call({"id": "ping", "op": "ping"}) and next(
            (e for e in conn.events if e["event"] == name), None), timeout, interval=0.01)
    except OSError:
        return None


# ---- clients that never read, info storms, the output cap ----------------------------

def storm(address):
    state = frames(20_000, id=EMOJI_ID, op="state", pin=7)
    return [MuteClient(address, state) for _ in range(8)]


def control_plane_problems(proc, holder, window, lease_ms, latencies, event_within_s):
    """Everything that went wrong for the lease holder and the fresh connections."""
    problems = []
    # a ping queued behind the storm would wait for its 160,000 requests (a second or more); one fair
    # turn is about 10 ms of work, but with both cores flooded the scheduler alone has kept
    # a process off the CPU for 127 ms (a CI check, 2026-12-06): the bound sits between
    if max(latencies) >= 0.3:
        problems.append(f"hello/ping took up to {max(latencies) * 1000:.0f} ms")
    if not wait_event(holder, "lease_expired", timeout=event_within_s):
        problems.append(f"no lease_expired {event_within_s} s after its deadline and more")
    try:
        sent, answered = window
        conn = hello(proc.address, timeout=2)
        reply = conn.call({"id": 1, "op": "sim", "action": "history", "pin": 7})
        conn.close()
        fell = next(t for t, v in reply["history"] if t > sent and v < 0.5)
        early, late = (sent - fell) / MS + lease_ms, (fell - answered) / MS - lease_ms
        if early > 1 or late > 50:
            problems.append(f"the lease fired {late:.1f} ms late ({early:.1f} ms early)")
    except (OSError, StopIteration) as exc:
        problems.append(f"no fall in the pin's history: {exc!r}")
    return problems


def test_clients_that_never_read_delay_neither_a_lease_nor_another_connections_ping(server_process):
    proc = server_process()
    holder = hello(proc.address)
    window = lease(holder, 7, 1500)
    mutes = storm(proc.address)
    try:
        latencies = ping_latencies(proc.address, until=time.monotonic() + 2.0)
        # the event may wait behind the pin's replies to the storm: its arrival is bounded loosely
        assert not control_plane_problems(proc, holder, window, 1500, latencies, 2.0)
    finally:
        for mute in mutes:
            mute.close()


def test_sigterm_stops_a_server_flooded_by_clients_that_never_read_within_5_s(server_process):
    proc = server_process()
    holder = hello(proc.address)
    lease(holder, 7, 1500)
    mutes = storm(proc.address)
    try:
        ping_latencies(proc.address, until=time.monotonic() + 1.0)  # the storm is on
        children = proc.children()
        proc.proc.send_signal(signal.SIGTERM)
        try:
            proc.proc.wait(5)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the server within 5 s")
        assert wait_until(lambda: not any(psutil.pid_exists(p) for p in children), timeout=5)
    finally:
        holder.close()
        for mute in mutes:
            mute.close()


def test_a_burst_of_info_requests_freezes_neither_pings_nor_lease_events(server_process):
    proc = server_process()
    holder = hello(proc.address)
    window = lease(holder, 7, 1000)
    mute = MuteClient(proc.address, frames(3120, id=1, op="info"))
    try:
        latencies = ping_latencies(proc.address, until=time.monotonic() + 1.5)  # deadline + 0.5 s
        assert not control_plane_problems(proc, holder, window, 1000, latencies, 0.5)
    finally:
        mute.close()


def test_others_filling_a_pins_syncs_never_crowd_out_its_holders_own_sync():
    with sim_server() as server:
        owner = hello(server.address, timeout=10.0)
        owner.request("on", pin=26, time_ms=1500)
        squatter = hello(server.address, timeout=10.0)
        squatter.send(b"".join(b'{"id":%d,"op":"sync","pin":26}\n' % n for n in range(1001)))
        refused = squatter.recv()          # the others' 1,000 are held; the 1,001st is not
        assert refused["id"] == 1000 and refused["error"]["code"] == "server_busy", refused
        assert "other than its holder" in refused["error"]["message"]
        answer = owner.call({"id": 7, "op": "sync", "pin": 26})   # the end of the task, not busy
        assert answer["ok"], answer
        assert server.sim.value(26) == 0.0
        assert all(squatter.recv()["ok"] for _ in range(1000))
        for conn in (owner, squatter):
            conn.close()


def test_syncs_held_on_a_long_task_pause_no_other_client_of_that_pin():
    """A sync is answered when the pin's work ends (here in 10 s). 1,100 of them
    from one client must not count as a worker that is behind: then every
    connection that touched that pin was no longer read, its lease renewals
    on another pin held back until the lease had fired, and then run late."""
    with sim_server() as server:
        owner = hello(server.address)
        owner.request("on", pin=26, time_ms=10_000)
        flooder = hello(server.address, timeout=10.0)
        flooder.send(b"".join(b'{"id":%d,"op":"sync","pin":26}\n' % n for n in range(1100)))
        refusals = [flooder.recv() for _ in range(100)]   # a worker holds 1,000 syncs at most
        assert all(r["error"]["code"] == "server_busy" and r["id"] >= 1000 for r in refusals)
        victim = hello(server.address, timeout=2.0)
        victim.request("on", pin=18, lease_ms=1000)
        assert victim.request("read", pin=26)["value"] == 1   # it feeds the pin's worker now
        renewals = time.monotonic() + 2.0
        while time.monotonic() < renewals:   # each answered within the 2 s timeout, or it fails
            assert victim.request("on", pin=18, lease_ms=1000)["renewed"]
            assert victim.request("ping")
            time.sleep(0.2)
        assert server.sim.value(18) == 1.0 and levels(server.sim.history(18)) == [1.0]
        for conn in (owner, flooder, victim):
            conn.close()


def _vm_hwm() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_the_output_cap_holds_at_every_append_and_the_memory_comes_back():
    me = psutil.Process()
    with sim_server(max_buffer=1 << 20) as server:
        owner = hello(server.address)
        assert owner.call({"id": 1, "op": "blink", "pin": 7, "on_time": 0.001, "off_time": 0.001})["ok"]
        assert wait_until(lambda: len(server.sim.history(7)) >= 4096, timeout=20)
        assert owner.call({"id": 2, "op": "off", "pin": 7})["ok"]   # ~90 KB per history reply
        one = frames(1, id=1, op="sim", action="history", pin=7)
        baseline = me.memory_info().rss
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak (VmHWM) to the current RSS
        hwm_before = _vm_hwm()
        abuser = MuteClient(server.address, one * (65536 // len(one)))
        port = abuser.sock.getsockname()[1]
        try:
            assert wait_until(lambda: not any(c.raddr and c.raddr[1] == port
                                              for c in me.net_connections("tcp")), 30, 0.05), \
                "the server did not close a connection far past its output cap"
            grew = (_vm_hwm() - hwm_before) / 2**20
            assert grew < 40, f"the server's memory peaked {grew:.0f} MiB over its baseline"
        finally:
            abuser.close()
        assert wait_until(lambda: me.memory_info().rss < baseline + (20 << 20), timeout=10), \
            f"{(me.memory_info().rss - baseline) / 2**20:.0f} MiB were not given back"


def test_the_output_of_all_connections_together_is_bounded_and_the_worst_reader_goes_first(caplog):
    me = psutil.Process()
    caplog.set_level("INFO", logger="remoteio.server.listener")
    with sim_server(max_buffer=256 << 20, max_output=4 << 20) as server:  # each alone: 256 MiB
        owner = hello(server.address)
        assert owner.call({"id": 1, "op": "blink", "pin": 7, "on_time": 0.001, "off_time": 0.001})["ok"]
        assert wait_until(lambda: len(server.sim.history(7)) >= 4096, timeout=20)
        assert owner.call({"id": 2, "op": "off", "pin": 7})["ok"]   # ~90 KB per history reply
        one = frames(1, id=1, op="sim", action="history", pin=7)
        abusers = [MuteClient(server.address, one * 2048) for _ in range(3)]
        ports = {a.sock.getsockname()[1] for a in abusers}

        def open_abusers() -> int:
            return sum(1 for c in me.net_connections("tcp") if c.raddr and c.raddr[1] in ports
                       and c.laddr[1] == server.port)
        try:
            # 3 x 2,048 history requests of ~90 KB: far past 4 MiB together, none alone
            # near its own 256 MiB
            # (closed by the cap, not by TCP's user timeout, which would close them after 19 s)
            assert wait_until(lambda: "the most of any connection" in caplog.text, 30, 0.05), \
                "no connection was closed while all of them held far more than the cap"
            assert wait_until(lambda: open_abusers() < 3, 10, 0.05)
            assert owner.call({"id": 3, "op": "ping"})["ok"]   # a reader is served all along
        finally:
            for abuser in abusers:
                abuser.close()


# ---- queued work ------------------------------------------------------------------------

def test_a_disconnect_with_a_full_queue_keeps_the_worker_and_runs_the_queued_work(server):
    conn = hello(server.address)
    assert conn.call({"id": 0, "op": "on", "pin": 7, "time_ms": 3000})["ok"]
    rise = server.sim.history(7)[-1][0]
    worker = worker_pid(server, 7)
    conn.send(b"".join(frames(1, id=n, op="off", pin=7, time_ms=1) for n in range(1, 1001)))
    replies = [conn.recv() for _ in range(1000)]
    assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:3]
    conn.close()
    assert wait_until(lambda: server.sim.function(7) == "released", timeout=15)
    released_s = (time.monotonic_ns() - rise) / 1e9
    assert released_s >= 3.95, f"released {released_s:.2f} s after the on: queued work dropped"
    assert levels(server.sim.history(7)) == [1.0, 0.0] and server.sim.value(7) == 0.0
    (start, width), = pulses(server.sim.history(7))
    assert width >= 2999
    assert server.worker_pids().get(7) == worker and psutil.pid_exists(worker), "the worker died"


@pytest.mark.parametrize("then", [{"op": "input"}, {"op": "setup", "function": "input"}])
def test_a_task_queued_behind_an_input_is_refused_at_once_or_reported_and_never_dropped(server, raw, then):
    assert raw.call({"id": 1, "op": "on", "pin": 7, "time_ms": 300})["ok"]
    assert raw.call({"id": 2, "pin": 7, **then})["ok"]
    sent = time.monotonic()
    reply = raw.call({"id": 3, "op": "on", "pin": 7})
    answered_s = time.monotonic() - sent
    assert wait_until(lambda: server.sim.function(7) == "input", timeout=3)
    assert levels(server.sim.history(7)) == [1.0, 0.0]  # the second on never ran
    if then["op"] == "input" or not reply["ok"]:  # `input`: refused at once (the contract)
        assert not reply["ok"] and reply["error"]["code"] == "wrong_mode", reply
        assert answered_s < 0.2, f"refused after {answered_s:.2f} s, not at once"
        return
    failed = wait_event(raw, "task_failed", timeout=3)  # else: told by an event, then by sync
    assert failed, "a queued on that could not run was acknowledged and dropped silently"
    assert failed["pin"] == 7 and failed["op"] == "on" and failed["error"]["code"] == "wrong_mode"
    synced = raw.call({"id": 4, "op": "sync", "pin": 7})
    assert not synced["ok"] and synced["error"]["code"] == "wrong_mode", synced
    assert "could not run" in synced["error"]["message"]


def test_state_says_how_long_the_running_and_queued_timed_tasks_still_take(raw):
    assert raw.call({"id": 1, "op": "on", "pin": 7, "time_ms": 1000})["ok"]
    assert raw.call({"id": 2, "op": "off", "pin": 7, "time_ms": 500})["ok"]
    busy = raw.call({"id": 3, "op": "state", "pin": 7}).get("busy_ms")
    assert busy is not None and 1200 < busy <= 1500, busy
    assert raw.call({"id": 4, "op": "sync", "pin": 7})["ok"]
    assert raw.call({"id": 5, "op": "state", "pin": 7})["busy_ms"] == 0.0


# ---- embedding --------------------------------------------------------------------------

EMBEDDED = r"""
import json, sys, threading, time
from remoteio import RemoteServer
from remoteio.server import Server

tid = []
def read_stdin():
    tid.append(threading.get_native_id())
    sys.stdin.readline()
threading.Thread(target=read_stdin, daemon=True).start()
for _ in range(2500):  # until the thread sleeps in its read
    if tid and open(f"/proc/self/task/{tid[0]}/stat").read().rsplit(")", 1)[1].split()[0] == "S":
        break
    time.sleep(0.002)
server = Server(host="127.0.0.1", port=0, backend="sim").start()
result = {}
try:
    with RemoteServer(*server.address, timeout=3.0, reconnect=False) as remote:
        remote.pin(7).on()
        result["on"] = server.sim.value(7)
        remote.pin(7).off()
        result["off"] = server.sim.value(7)
except Exception as exc:
    result["error"] = repr(exc)
result["workers"] = list(server.worker_pids().values())
print("ran", json.dumps(result), flush=True)
server.stop()
print("stopped", flush=True)
time.sleep(30)  # the test looks at what is left, then kills us
"""


def _descendants(pid: int):
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def test_a_server_embedded_beside_a_thread_reading_stdin_serves_and_leaves_no_process(tmp_path):
    out = tmp_path / "embedded.log"
    with open(out, "wb") as log:  # a file, not a pipe: never blocks the program
        proc = subprocess.Popen([sys.executable, "-c", EMBEDDED], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        ran = wait_until(lambda: re.search(rb"^ran (.*)$", out.read_bytes(), re.M), timeout=30)
        assert ran, out.read_text()[-2000:]
        result = json.loads(ran.group(1))
        assert result.get("on") == 1.0 and result.get("off") == 0.0, result
        assert wait_until(lambda: b"stopped" in out.read_bytes(), timeout=20), out.read_text()[-2000:]
        assert wait_until(lambda: not _descendants(proc.pid), timeout=5), _descendants(proc.pid)
        assert not any(psutil.pid_exists(pid) for pid in result["workers"])
    finally:
        for pid in _descendants(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(10)
        proc.stdin.close()


# ---- pin rules: the one gate ------------------------------------------------------------

BOUNDS = pytest.mark.parametrize("rule", [{"max_hold_ms": 1000}, {"lease_only": True}],
                                 ids=["max_hold", "lease_only"])


@BOUNDS
def test_set_and_setup_and_gpiozero_led_on_pass_the_same_pin_rules_as_tasks(rule):
    with sim_server(pins={7: rule, 11: rule}) as server:
        conn = hello(server.address)
        for n, request in enumerate(({"op": "set", "pin": 7, "state": 1},
                                     {"op": "setup", "pin": 7, "function": "output", "state": 1})):
            reply = conn.call({"id": n, **request})
            assert not reply["ok"] and reply["error"]["code"] == "forbidden", (request, reply)
        assert conn.call({"id": 3, "op": "set", "pin": 7, "state": 0})["ok"]
        assert conn.call({"id": 4, "op": "setup", "pin": 7, "function": "output", "state": 0})["ok"]
        assert server.sim.value(7) == 0.0
        factory = RemoteIOFactory(*server.address)
        try:
            led = LED(17, pin_factory=factory)  # GPIO17 is board pin 11
            with pytest.raises(Forbidden):
                led.on()  # gpiozero's path: set
            assert server.sim.value(11) == 0.0
            led.off()
        finally:
            factory.close()


def test_on_a_max_hold_pin_a_lease_reverts_to_the_safe_value_even_when_asked_for_previous():
    with sim_server(mode="nowait", pins={7: {"max_hold_ms": 1000}}) as server:
        conn = hello(server.address)
        assert conn.call({"id": 1, "op": "on", "pin": 7, "time_ms": 1000})["ok"]
        sent = time.monotonic_ns()
        assert conn.call({"id": 2, "op": "on", "pin": 7, "lease_ms": 200, "revert": "previous"})["ok"]
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=3), "the pin stayed on"
        assert levels(server.sim.history(7))[-2:] == [1.0, 0.0]
        fell_ms = (server.sim.history(7)[-1][0] - sent) / MS
        assert 199 <= fell_ms <= 400, fell_ms
        expired = wait_event(conn, "lease_expired")
        assert expired and expired["value"] == 0.0, expired


SAFE_1_OPS = {"on_100ms": {"op": "on", "time_ms": 100}, "off_100ms": {"op": "off", "time_ms": 100},
              "output": {"op": "output"}, "setup_output": {"op": "setup", "function": "output"}}


@pytest.mark.parametrize("rule", [{}, {"max_hold_ms": 1000}, {"lease_only": True}],
                         ids=["plain", "max_hold", "lease_only"])
@pytest.mark.parametrize("op", list(SAFE_1_OPS))
def test_a_safe_value_1_pin_ends_every_operation_at_1(rule, op):
    with sim_server(pins={7: {"safe_value": 1, **rule}}) as server:
        conn = hello(server.address)
        sent = time.monotonic_ns()
        reply = conn.call({"id": 1, "pin": 7, **SAFE_1_OPS[op]})
        if not reply["ok"]:  # a rule may refuse it; never leave the pin away from 1
            assert rule and reply["error"]["code"] == "forbidden", reply
            assert server.sim.function(7) == "released" or server.sim.value(7) == 1.0
            return
        assert conn.call({"id": 2, "op": "sync", "pin": 7})["ok"]
        assert server.sim.function(7) == "output" and server.sim.value(7) == 1.0, \
            levels(server.sim.history(7))
        if op == "off_100ms":
            back = server.sim.history(7)[-1]
            assert back[1] == 1.0 and (back[0] - sent) / MS >= 99


def test_sim_honours_pin_access():
    with sim_server(pins={7: {"access": "none"}, 11: {"access": "read"}}) as server:
        conn = hello(server.address)
        refused = [{"action": "history", "pin": 7}] + [args for pin in (7, 11) for args in (
            {"action": "drive", "pin": pin, "level": 1}, {"action": "release", "pin": pin},
            {"action": "wire", "pin": pin, "to": 12}, {"action": "wire", "pin": 12, "to": pin},
            {"action": "unwire", "pin": pin}, {"action": "echo", "pin": pin, "to": 12, "width_us": 100},
            {"action": "echo", "pin": 12, "to": pin, "width_us": 100})]
        wrong = [(args, reply) for args in refused
                 for reply in [conn.call({"id": 1, "op": "sim", **args})]
                 if reply["ok"] or reply["error"]["code"] != "forbidden"]
        assert not wrong, f"{len(wrong)} of {len(refused)} not forbidden, e.g. {wrong[:3]}"
        assert conn.call({"id": 2, "op": "sim", "action": "history", "pin": 11})["ok"]
        board = conn.call({"id": 3, "op": "sim", "action": "levels"})
        assert "7" not in board["levels"] and "7" not in board["values"] and "11" in board["levels"]


def _until(t_ns: int) -> None:
    time.sleep(max(0.0, (t_ns - time.monotonic_ns()) / 1e9))  # a point in the scenario


def test_max_hold_bounds_a_sequence_of_timed_tasks_not_each_one():
    with sim_server(mode="nowait", pins={7: {"max_hold_ms": 1000}}) as server:
        conn = hello(server.address)
        assert conn.call({"id": 1, "op": "on", "pin": 7, "time_ms": 900})["ok"]
        rise = server.sim.history(7)[-1][0]
        _until(rise + 500 * MS)
        reply = conn.call({"id": 2, "op": "on", "pin": 7, "time_ms": 900})
        assert not reply["ok"] and reply["error"]["code"] == "forbidden", reply
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=3)
        (start, width), = pulses(server.sim.history(7))
        assert 899 <= width < 1300, width


def test_a_lease_renewal_past_max_hold_is_forbidden_and_the_lease_keeps_its_deadline():
    with sim_server(pins={7: {"max_hold_ms": 2000}}) as server:
        conn = hello(server.address)
        write = {"op": "on", "pin": 7, "lease_ms": 1000}
        assert conn.call({"id": 1, **write})["ok"]
        rise = server.sim.history(7)[-1][0]
        _until(rise + 400 * MS)
        renewed_sent = time.monotonic_ns()
        assert conn.call({"id": 2, **write}).get("renewed") is True
        renewed = time.monotonic_ns()
        _until(rise + 1200 * MS)
        reply = conn.call({"id": 3, **write})
        assert not reply["ok"] and reply["error"]["code"] == "forbidden", reply
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=3)
        fell = server.sim.history(7)[-1][0]
        assert renewed_sent + 999 * MS <= fell <= renewed + 1050 * MS, (fell - renewed) / MS
