"""The simulated board and its gpiozero pin factory, without any server."""
import os
import select
import threading

import pytest
from gpiozero.exc import PinFixedPull, PinInvalidFunction, PinInvalidState, PinSetInput

from remoteio.server.backends.sim import SimBackend
from remoteio.server.backends.simboard import SimBoard, SimHeader

from remoteio.testing import wait_until


@pytest.fixture
def backend():
    backend = SimBackend()
    yield backend
    backend.sim.close()


def test_output_changes_are_recorded_with_timestamps(backend):
    pin = backend.make_factory().pin(4)
    pin.output_with_state(0)
    pin.state = 1
    pin.state = 1
    pin.state = 0
    history = backend.sim.history(4)
    assert [v for _, v in history] == [0.0, 1.0, 0.0]
    assert history[0][0] <= history[1][0] <= history[2][0]
    assert backend.sim.function(4) == "output"


def test_history_is_a_bounded_ring(backend):
    board = backend.sim
    for n in range(5000):
        board.set_output(5, float(n % 2))
    history = board.history(5)
    assert len(history) == 4096
    assert history[-1][1] == float(4999 % 2)


def test_inputs_follow_drive_then_wire_then_pull(backend):
    factory = backend.make_factory()
    button = factory.pin(17)
    button.input_with_pull("up")
    assert button.state is True
    backend.sim.drive(17, 0)
    assert button.state is False
    backend.sim.drive(17, None)
    assert button.state is True
    out = factory.pin(22)
    inp = factory.pin(27)
    backend.sim.wire([22, 27])
    inp.input_with_pull("floating")
    out.output_with_state(1)
    assert inp.state is True
    out.state = 0
    assert inp.state is False
    backend.sim.unwire(27)
    assert backend.sim.wired_to(22) == []


def test_pin_errors_are_gpiozeros(backend):
    factory = backend.make_factory()
    pin = factory.pin(4)
    with pytest.raises(PinSetInput):
        pin.state = 1
    with pytest.raises(PinInvalidFunction):
        pin.function = "alt0"
    with pytest.raises(PinFixedPull):
        factory.pin(2).pull = "down"  # GPIO2 has a physical pull-up
    pin.function = "output"
    pin.frequency = 100
    with pytest.raises(PinInvalidState):
        pin.state = 2
    pin.state = 0.25
    assert pin.state == 0.25
    pin.frequency = None
    assert pin.state is False


def test_edges_fire_when_changed_with_board_timestamps(backend):
    pin = backend.make_factory().pin(17)
    pin.input_with_pull("down")
    seen = []

    def changed(ticks, state):  # gpiozero keeps only a weak reference
        seen.append((ticks, state))
    pin.when_changed = changed
    for level in (1, 0, 1):
        backend.sim.drive(17, level)
    assert wait_until(lambda: len(seen) == 3, timeout=5)
    assert [s for _, s in seen] == [True, False, True]
    assert seen[0][0] <= seen[1][0] <= seen[2][0]
    pin.when_changed = None


@pytest.fixture
def stalled_poll(monkeypatch):
    """The sim edge thread's poll runs, with the timeout it chose, only once the test
    sets the returned event; the timeouts it chose are listed on the event."""
    import remoteio.server.backends.sim as sim
    turn = threading.Event()
    turn.timeouts = []
    real_poll = select.poll  # sim.select is the select module: patched for everyone

    class StalledPoll:
        def __init__(self):
            self.poller = real_poll()

        def register(self, fd, events):
            self.poller.register(fd, events)

        def poll(self, timeout=None):
            turn.wait(10)
            turn.timeouts.append(timeout)
            return self.poller.poll(timeout)
    monkeypatch.setattr(sim.select, "poll", StalledPoll)
    return turn


def test_an_edge_waiting_for_a_stalled_edge_thread_is_told_once_by_catch_up(backend, stalled_poll):
    pin = backend.make_factory().pin(17)
    pin.input_with_pull("down")
    seen = []

    def changed(ticks, state):
        seen.append((state, threading.current_thread() is threading.main_thread()))
    pin.when_changed = changed
    backend.sim.drive(17, 1)  # a sim drive: the record waits in the pipe
    assert seen == []
    pin.catch_up()  # what a worker does before its tasks: told here, on this thread
    assert seen == [(True, True)]
    stalled_poll.set()  # the edge thread finds nothing left of that edge; the next is its own
    backend.sim.drive(17, 0)
    assert wait_until(lambda: len(seen) == 2, timeout=5)
    assert seen == [(True, True), (False, False)]
    pin.when_changed = None


def test_a_bounce_window_opened_by_catch_up_still_reports_the_settled_level(backend, stalled_poll):
    pin = backend.make_factory().pin(17)
    pin.input_with_pull("down")
    pin.bounce = 0.05
    seen = []

    def changed(ticks, state):
        seen.append(state)
    pin.when_changed = changed
    backend.sim.drive(17, 1)
    backend.sim.drive(17, 0)  # chatter inside the window: the level settles low
    pin.catch_up()
    assert seen == [True]
    stalled_poll.set()  # the thread's first poll has no timeout: only a nudge makes it time the window
    assert wait_until(lambda: seen == [True, False], timeout=5), (seen, stalled_poll.timeouts)
    pin.when_changed = None


def test_edges_filter(backend):
    pin = backend.make_factory().pin(17)
    pin.input_with_pull("down")
    pin.edges = "falling"
    seen = []

    def changed(ticks, state):
        seen.append(state)
    pin.when_changed = changed
    backend.sim.drive(17, 1)
    backend.sim.drive(17, 0)
    assert wait_until(lambda: seen == [False], timeout=5)
    pin.when_changed = None


def test_bounce_absorbs_chatter_and_reports_the_settled_level(backend):
    pin = backend.make_factory().pin(17)
    pin.input_with_pull("down")
    pin.bounce = 0.05
    seen = []
    done = threading.Event()

    def changed(ticks, state):
        seen.append(state)
        if len(seen) >= 2:
            done.set()
    pin.when_changed = changed
    for level in (1, 0, 1, 0, 1, 0, 1, 0):  # chatter, ends low
        backend.sim.drive(17, level)
    # reported at once (high), then after the window the settled low level
    assert done.wait(5)
    assert seen == [True, False]
    pin.when_changed = None


def test_close_releases_the_line(backend):
    factory = backend.make_factory()
    pin = factory.pin(4)
    pin.input_with_pull("up")
    factory.close()
    assert backend.sim.function(4) == "released"
    assert backend.sim.level(4) == 1  # a released line floats: its pull decides


def test_a_forked_process_sees_and_drives_the_same_board(backend):
    header = SimHeader(backend.sim)
    pid = os.fork()
    if pid == 0:  # child: drive BOARD7 like a pin worker would
        try:
            backend.make_factory().pin(4).output_with_state(1)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert header.value(7) == 1.0 and header.level("GPIO4") == 1


def test_wire_needs_two_lines():
    with pytest.raises(ValueError):
        SimBoard().wire([3])


def test_a_line_tells_its_pwm_frequency_while_an_output_and_none_otherwise(backend):
    board = backend.sim
    pin = backend.make_factory().pin(4)
    pin.function = "input"
    assert board.output_frequency(4) is None
    pin.output_with_state(0)
    assert board.output_frequency(4) == 0.0
    pin.frequency = 100
    assert board.output_frequency(4) == 100.0
    pin.state = 0.25
    assert board.value(4) == 0.25 and board.history(4)[-1][1] == 0.25


def test_a_fresh_board_reads_gpio2_and_gpio3_high_before_anyone_opens_them():
    board = SimBoard()
    try:
        assert [board.level(line) for line in (2, 3, 4)] == [1, 1, 0]   # fixed pull-ups, a floating one
        assert board.pull(2) == board.pull(3) == "up"
    finally:
        board.close()
