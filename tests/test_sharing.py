"""The sharing rule: the first connection to drive a pin holds it until it
closes the pin or disconnects; anyone may read, query and watch any pin."""
import pytest

from remoteio import RemoteServer
from remoteio.errors import PinBusy

from remoteio.testing import wait_until


def test_a_held_pin_is_not_taken_over(server):
    with RemoteServer(*server.address) as alice, RemoteServer(*server.address) as bob:
        alice.pin(7).on()
        with pytest.raises(PinBusy, match="held by another connection"):
            bob.pin(7)
        with pytest.raises(PinBusy):
            bob.pin(7, claim=False).off()
        with pytest.raises(PinBusy):
            bob.write({7: 0, 11: 1})
        assert server.sim.value(7) == 1.0
        assert server.sim.function(11) != "output"  # batch refused as a whole


def test_others_may_read_query_and_watch(server):
    with RemoteServer(*server.address) as alice, RemoteServer(*server.address) as bob:
        alice.pin(7).on()
        view = bob.pin(7, claim=False)
        assert view.read() == 1
        assert view.state()["task"] == "on"
        view.watch()
        assert bob.read_pins([7]) == {7: 1}


def test_closing_or_disconnecting_frees_the_pin(server):
    alice = RemoteServer(*server.address)
    with RemoteServer(*server.address) as bob:
        pin = alice.pin(7)
        pin.on()
        pin.close()
        bob.pin(7).on()              # free after close
        bob.pin(7).close()
        alice.pin(11).on()
        alice.close()                # and after a disconnect
        assert wait_until(lambda: server.sim.function(11) == "released")
        bob.pin(11).on()
        assert server.sim.value(11) == 1.0


def test_a_connection_that_ends_while_its_sync_waits_lets_its_pin_go_at_once(server):
    """Its end of file is its disconnect (policy finish: the timed task runs on),
    not the moment its last question is answered: another may queue behind."""
    from remoteio.testing import RawClient, pulses
    gone = RawClient(server.address, timeout=10.0)
    gone.hello()
    assert gone.call({"id": 1, "op": "on", "pin": 7, "time_ms": 1500})["ok"]
    gone.send({"id": 2, "op": "sync", "pin": 7})     # answered only when the task ends
    gone.sock.close()                                 # Ctrl-C of `remoteio on 7 --time-ms`
    with RemoteServer(*server.address) as other:
        pin = other.pin(7)
        assert wait_until(lambda: pin.state()["queue"] == 1, timeout=5)   # its close, queued
        pin.on(time_ms=100)                           # not pin_busy: queued behind the task
        pin.sync(timeout=10)
    widths = [width for _, width in pulses(server.sim.history(7))]
    assert len(widths) == 2 and widths[0] >= 1490 and 90 <= widths[1] <= 1000, widths


def test_same_connection_may_reopen_what_it_closed(raw):
    assert raw.call({"id": 1, "op": "on", "pin": 7})["ok"]
    assert raw.call({"id": 2, "op": "close", "pin": 7})["ok"]
    refused = raw.call({"id": 3, "op": "on", "pin": 7})
    assert refused["error"]["code"] == "pin_closed"
    assert raw.call({"id": 4, "op": "open", "pin": 7})["ok"]
    assert raw.call({"id": 5, "op": "on", "pin": 7})["ok"]


def test_a_notebook_cell_run_again_may_take_its_pins_over(server):
    """The same program, a newer RemoteServer: refused by default with a
    message that says how, and taken over with take_over=True."""
    first = RemoteServer(*server.address)         # the cell's first run, never closed
    first.pin(7).on()
    with RemoteServer(*server.address) as refused:
        with pytest.raises(PinBusy, match="same program"):
            refused.pin(7)
    with RemoteServer(*server.address, take_over=True) as again:
        again.pin(7).off()
        assert server.sim.value(7) == 0.0
        with pytest.raises(PinBusy, match="held by a newer connection of this same program"):
            first.pin(7).on()                     # the older connection lost it, and is told so
        first.close()                             # and its leaving does not close the pin
        again.pin(7).on()
        assert server.sim.value(7) == 1.0


def test_another_program_cannot_take_a_pin_over(server):
    import subprocess
    import sys
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom remoteio import RemoteServer\n"
         f"s = RemoteServer('127.0.0.1', {server.port}); s.pin(7).on(); print('held', flush=True)\n"
         "time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        with RemoteServer(*server.address, take_over=True) as other:
            with pytest.raises(PinBusy, match="held by another connection \\("):
                other.pin(7)
    finally:
        holder.kill()
        holder.wait(10)
