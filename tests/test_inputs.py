"""Inputs, change events and batches, end to end on the simulated board."""
import socket
import threading
import time

import pytest

from remoteio import RemoteServer
from remoteio.errors import WrongMode
from remoteio.server import Server

from remoteio.testing import RawClient, wait_until


def test_read_an_input_with_each_pull(server, client):
    button = client.pin(11).as_input(pull="up")
    assert button.read() == 1
    assert server.sim.pull(11) == "up"
    button.as_input(pull="down")
    assert button.read() == 0
    button.as_input()                    # floating reads low on the simulated board
    assert button.read() == 0
    server.sim.drive(11, 1)
    assert button.read() == 1
    state = button.state()
    assert state["mode"] == "input" and state["pull"] == "floating"


def test_reading_an_output_returns_its_level_without_reconfiguring(server, client):
    led = client.pin(7)
    led.on()
    assert led.read() == 1
    assert server.sim.function(7) == "output" and server.sim.value(7) == 1.0
    led.value(level=0.25)
    assert led.read() == pytest.approx(0.25)


def test_tasks_on_an_input_are_refused_and_output_switches_back(server, client):
    pin = client.pin(11).as_input(pull="up")
    with pytest.raises(WrongMode, match="input"):
        pin.on()
    assert server.sim.function(11) == "input"
    pin.as_output()
    pin.on()
    assert server.sim.value(11) == 1.0


def test_fixed_pull_up_pins_refuse_pull_down(client):
    with pytest.raises(ValueError, match="fixed pull-up"):
        client.pin(3).as_input(pull="down")   # BOARD3 = GPIO2: 1k8 pull-up on the board
    client.pin(3).as_input(pull="up")


def test_a_fixed_pull_up_pin_made_an_input_with_no_pull_gets_its_pull_up(server, client):
    assert client.pin(5).as_input().state()["pull"] == "up"    # BOARD5 = GPIO3, on a fresh pin
    assert server.sim.pull(5) == "up" and client.pin(5).read() == 1
    with pytest.raises(ValueError, match="fixed pull-up"):
        client.pin(5).as_input(pull="floating")                 # asked for, it cannot be had
    assert client.pin(11).as_input().state()["pull"] == "floating"   # a pin without one floats


def test_edges_in_both_directions_with_timestamps_and_sequence(server, client):
    button = client.pin(11).as_input(pull="down")
    events = []
    button.when_changed = events.append
    before = time.monotonic_ns()
    server.sim.drive(11, 1)
    server.sim.drive(11, 0)
    assert wait_until(lambda: len(events) == 2)
    rise, fall = events
    assert (rise.edge, rise.value, fall.edge, fall.value) == ("rising", 1, "falling", 0)
    assert before <= rise.ts_ns <= fall.ts_ns <= time.monotonic_ns()
    assert fall.seq == rise.seq + 1 and rise.missed == fall.missed == 0


def test_when_high_when_low_and_no_argument_callbacks(server, client):
    button = client.pin(11).as_input(pull="down")
    highs, lows = [], []
    button.when_high = lambda: highs.append(1)
    button.when_low = lambda event: lows.append(event.value)
    for level in (1, 0, 1, 0):
        server.sim.drive(11, level)
    assert wait_until(lambda: len(highs) == 2 and len(lows) == 2)
    assert lows == [0, 0]


def test_wait_for_edge_and_value(server, client):
    button = client.pin(11).as_input(pull="up")
    assert button.wait_for_value(1, timeout=1)
    assert button.wait_for_edge(timeout=0.05) is None
    timer = threading.Timer(0.05, server.sim.drive, args=(11, 0))
    timer.start()
    event = button.wait_for_edge("falling", timeout=5)
    assert event is not None and event.value == 0
    threading.Timer(0.05, server.sim.drive, args=(11, None)).start()
    assert button.wait_for_value(1, timeout=5)
    timer.join()


def test_a_callback_that_calls_the_server(server, client):
    """The callback toggles a remote LED: it runs on the dispatcher thread,
    so calling the server from it cannot deadlock the reader."""
    led = client.pin(7)
    led.off()
    button = client.pin(11).as_input(pull="up")
    presses = []

    def toggle():
        led.off() if led.read() else led.on()
        presses.append(led.state()["value"])
    button.when_low = toggle
    for _ in range(3):
        server.sim.drive(11, 0)
        server.sim.drive(11, None)
    assert wait_until(lambda: len(presses) == 3)
    assert presses == [1, 0, 1]
    assert server.sim.value(7) == 1.0


def test_a_slow_callback_does_not_stall_replies(server, client):
    button = client.pin(11).as_input(pull="up")
    release = threading.Event()
    button.when_changed = lambda: release.wait(10)
    server.sim.drive(11, 0)
    led = client.pin(7)
    started = time.monotonic()
    for _ in range(50):
        led.on()
        led.off()
    assert time.monotonic() - started < 5
    release.set()


def test_debounce_on_the_pi(server, client):
    button = client.pin(11).as_input(pull="down", bounce_ms=50)
    events = []
    button.when_changed = events.append
    for level in (1, 0, 1, 0, 1):        # a bouncy press that ends high
        server.sim.drive(11, level)
    assert wait_until(lambda: events, timeout=2)
    time.sleep(0.1)                       # past the bounce window: the next edge counts
    server.sim.drive(11, 0)               # ... and its event, in order, closes the record
    assert wait_until(lambda: len(events) >= 2, timeout=2)
    assert [e.value for e in events] == [1, 0]
    assert button.state()["bounce_ms"] == 50


def test_two_watchers_each_get_every_event(server):
    with RemoteServer(*server.address) as owner, RemoteServer(*server.address) as watcher:
        mine = owner.pin(11).as_input(pull="down")
        theirs = watcher.pin(11, claim=False)
        got_mine, got_theirs = [], []
        mine.when_changed = got_mine.append
        theirs.when_changed = got_theirs.append
        for level in (1, 0, 1, 0, 1):
            server.sim.drive(11, level)
        assert wait_until(lambda: len(got_mine) == 5 and len(got_theirs) == 5)
        assert [e.seq for e in got_mine] == [e.seq for e in got_theirs]


def test_watching_an_output_reports_what_its_worker_drives(server):
    with RemoteServer(*server.address) as owner, RemoteServer(*server.address) as watcher:
        led = owner.pin(7)
        seen = []
        watcher.pin(7, claim=False).when_changed = seen.append
        led.blink(time_ms=100, on_time=0.02, off_time=0.02, wait=True)
        assert wait_until(lambda: len(seen) >= 6)
        assert [e.value for e in seen[:4]] == [1, 0, 1, 0]


def test_a_watched_pwm_output_that_goes_down_is_a_falling_edge(server):
    with RemoteServer(*server.address) as owner, RemoteServer(*server.address) as watcher:
        lamp = owner.pin(12)
        seen, high = [], []
        watched = watcher.pin(12, claim=False)
        watched.when_changed = seen.append
        watched.when_high = lambda event: high.append(event.value)
        for level in (1, 0.3, 0.6, 1, 0):
            lamp.value(level=level)
        assert wait_until(lambda: len(seen) >= 5)
        assert [(e.value, e.edge) for e in seen] == [
            (1, "rising"), (0.3, "falling"), (0.6, "rising"), (1, "rising"), (0, "falling")]
        assert wait_until(lambda: len(high) >= 3) and high == [1, 0.6, 1]


def test_closing_a_watched_pin_ends_the_watch(server):
    with RemoteServer(*server.address) as owner, RemoteServer(*server.address) as watcher:
        pin = owner.pin(11).as_input(pull="up")
        view = watcher.pin(11, claim=False)
        view.watch()
        pin.close()
        assert wait_until(lambda: not view._watching)


def test_missed_events_show_as_sequence_gaps():
    """A client that stops reading loses events, not replies, and can tell."""
    with Server(host="127.0.0.1", port=0, backend="sim", event_buffer=4096) as server:
        slow = RawClient(server.address)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.hello()
        assert slow.call({"id": 1, "op": "input", "pin": 11, "pull": "down"})["ok"]
        assert slow.call({"id": 2, "op": "watch", "pin": 11})["ok"]
        with RemoteServer(*server.address) as fast:
            for n in range(30000):            # the slow client reads none of it meanwhile
                server.sim.drive(11, n % 2)
                if n % 5000 == 0:
                    fast.ping()                # the server keeps answering others
            conn = next(c for c in server.listener.connections.values() if c.session.client == "")
            assert wait_until(lambda: conn.events_dropped > 0, timeout=10)
            assert len(conn.out) < 4096 + 64 * 1024
        assert slow.call({"id": 3, "op": "ping"})["ok"]  # the reply was never dropped
        seqs = [e["seq"] for e in slow.events]
        gaps = sum(b - a - 1 for a, b in zip(seqs, seqs[1:]))
        assert gaps > 0 and seqs == sorted(seqs)
        slow.close()


def _storm(server, seconds, edges_per_second):
    """Toggle BOARD11 from a forked process (it shares the simulated board)."""
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for _ in range(edges_per_second // 1000):
            server.sim.drive(11, n % 2)
            n += 1
        time.sleep(max(0.0, n / edges_per_second - (time.perf_counter() - start)))


def _watch_storm(address, ready, counts):
    with RemoteServer(*address) as watcher:
        seen = []
        watcher.pin(11).as_input(pull="down").when_changed = lambda e: seen.append(e.seq)
        ready.set()
        time.sleep(4)
        counts.send((len(seen), seen[-1] if seen else 0))


def test_an_event_storm_does_not_starve_other_pins(server):
    """BOARD11 toggles at 10 kHz (20,000 edges a second) for 2 s, watched by
    another client; meanwhile round trips on BOARD7 keep being answered."""
    import multiprocessing
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    counts, counts_child = context.Pipe(duplex=False)
    watcher = context.Process(target=_watch_storm, args=(server.address, ready, counts_child))
    watcher.start()
    assert ready.wait(10)
    driver = context.Process(target=_storm, args=(server, 2.0, 20_000))
    with RemoteServer(*server.address) as other:
        led = other.pin(7)
        driver.start()
        worst, trips = 0.0, 0
        while driver.is_alive() and trips < 2000:
            started = time.monotonic()
            led.on()
            led.off()
            worst = max(worst, time.monotonic() - started)
            trips += 1
        driver.join(10)
    assert counts.poll(15)
    received, last_seq = counts.recv()
    watcher.join(10)
    assert trips > 20
    assert worst < 1.0, f"a round trip took {worst:.3f} s during the storm"
    assert received > 10_000 and last_seq >= received  # the watcher got (nearly) every edge


def test_batch_write_and_read(server, client):
    client.pin(11).as_input(pull="up")
    client.write({7: 1, 13: 0, 12: 0.5, "GPIO22": True})
    assert (server.sim.value(7), server.sim.value(13), server.sim.value(12), server.sim.value(15)) == \
        (1.0, 0.0, 0.5, 1.0)
    assert client.read_pins([7, 13, 12, 11, "GPIO22"]) == {7: 1, 13: 0, 12: 0.5, 11: 1, 15: 1}
    with pytest.raises(WrongMode) as info:
        client.write({7: 0, 11: 1})           # 11 is an input: refused, 7 still applied
    assert server.sim.value(7) == 0.0 and server.sim.function(11) == "input"
    assert "BOARD11" in info.value.message


def test_batch_parts_land_close_together(server, client):
    pins = [7, 11, 12, 13, 15, 16, 18, 22]
    for pin in pins:
        client.pin(pin).off()
    t0 = time.monotonic_ns()
    client.write({pin: 1 for pin in pins})
    times = [server.sim.history(pin, t0)[-1][0] for pin in pins]
    assert (max(times) - min(times)) / 1e6 < 100  # generous; bench/ measures the real skew
