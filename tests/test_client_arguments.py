"""The client's own checks of what it sends: a None where a number goes,
a level that is neither 0 nor 1, and what a batch refused in part tells
(docs/reliability.md, docs/inputs.md, docs/simulated-board.md)."""
from __future__ import annotations

import asyncio

import pytest

from remoteio.aio import AsyncRemoteServer
from remoteio.errors import BadArgument, WrongMode
from remoteio.testing import wait_until


@pytest.mark.parametrize("call", [
    lambda pin: pin.value(level=None),
    lambda pin: pin.on(time_ms=None),
    lambda pin: pin.on(lease_ms=None),
    lambda pin: pin.blink(on_time=None),
    lambda pin: pin.pulse(fade_in_time=None),
])
def test_a_task_argument_given_as_none_is_refused_not_taken_as_its_default(server, client, call):
    pin = client.pin(7)
    with pytest.raises(BadArgument, match="not None"):
        call(pin)  # on the wire, null is the default: value(level=None) would drive it on
    assert server.sim.value(7) == 0.0
    pin.on()  # the pin and the connection go on
    assert server.sim.value(7) == 1.0


def test_wait_for_value_takes_only_0_or_1_and_a_pwm_level_is_neither(server, client):
    button = client.pin(11).as_input(pull="up")
    for wrong in (5, "0", None, 0.5):
        with pytest.raises(BadArgument):
            button.wait_for_value(wrong, timeout=0.1)
    assert button.wait_for_value(True, timeout=5)
    dimmed = client.pin(12)
    dimmed.value(level=0.3)
    assert not dimmed.wait_for_value(1, timeout=0.3)  # 0.3 reads neither 1 nor 0
    assert not dimmed.wait_for_value(0, timeout=0.3)


def test_sim_drive_refuses_a_level_that_is_not_0_or_1_and_none_lets_go(server, client):
    button = client.pin(11).as_input(pull="up")
    for wrong in ("0", 0.4, -1, 2, float("nan")):
        with pytest.raises(BadArgument):
            client.sim.drive(11, wrong)
    client.sim.drive(11, 0)
    assert wait_until(lambda: button.read() == 0, timeout=5)
    client.sim.drive(11, None)  # let go: the pull-up wins
    assert wait_until(lambda: button.read() == 1, timeout=5)


def test_a_batch_refused_in_part_gives_every_pins_outcome_on_the_exception(server, client):
    client.pin(11).as_input(pull="up")
    with pytest.raises(WrongMode) as refused:
        client.write({7: 1, 11: 1, 13: 0.5})
    results = refused.value.results
    assert results[7] == {"ok": True} and results[13] == {"ok": True}
    assert results[11]["ok"] is False and results[11]["error"]["code"] == "wrong_mode"
    assert (server.sim.value(7), server.sim.value(13)) == (1.0, 0.5)  # the others applied


def test_the_asyncio_client_makes_the_same_checks(server):
    async def run() -> None:
        async with AsyncRemoteServer(*server.address) as remote:
            pin = await remote.pin(7)
            with pytest.raises(BadArgument, match="not None"):
                await pin.value(level=None)
            with pytest.raises(BadArgument):
                await remote.sim.drive(11, "0")
            button = await remote.pin(11)
            await button.as_input(pull="up")
            with pytest.raises(BadArgument):
                await button.wait_for_value(5, timeout=0.1)
            with pytest.raises(WrongMode) as refused:
                await remote.write({13: 1, 11: 1})
            assert refused.value.results[13] == {"ok": True}
            assert refused.value.results[11]["ok"] is False
    asyncio.run(asyncio.wait_for(run(), 30))
    assert server.sim.value(7) == 0.0
