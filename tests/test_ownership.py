"""The sharing rule as a pure class (ownership.py)."""
from __future__ import annotations

import pytest

from remoteio.errors import PinBusy, PinClosed
from remoteio.server.ownership import Ownership


@pytest.fixture
def own() -> Ownership:
    own = Ownership()
    own.opened(1, "10.0.0.1:1000")
    own.opened(2, "10.0.0.2:2000")
    return own


def test_the_first_to_drive_a_pin_holds_it(own):
    own.claim(1, 7, "on")
    own.claim(1, 7, "off")
    assert own.owner(7) == 1
    with pytest.raises(PinBusy, match=r"10\.0\.0\.1:1000"):
        own.claim(2, 7, "on")


def test_a_closed_pin_is_closed_for_its_closer_until_it_opens_it(own):
    own.claim(1, 7, "on")
    own.claim(1, 7, "close")
    assert own.owner(7) is None
    with pytest.raises(PinClosed):
        own.claim(1, 7, "on")
    own.claim(2, 7, "on")  # free for the others
    own.claim(2, 7, "close")
    own.claim(1, 7, "open")
    assert own.owner(7) == 1


def test_a_batch_claims_every_pin_or_none(own):
    own.claim(2, 11, "on")
    with pytest.raises(PinBusy):
        own.claim_all(1, [7, 11], "write")
    assert own.owner(7) is None
    own.claim_all(1, [7, 13], "write")
    assert (own.owner(7), own.owner(13)) == (1, 1)


def test_a_newer_connection_of_the_same_program_takes_over_only_when_it_says_so(own):
    own.identify(1, "proc-a", False)
    own.identify(2, "proc-a", False)
    own.claim(1, 7, "on")
    with pytest.raises(PinBusy, match="same program"):
        own.claim(2, 7, "on")
    own.identify(3, "proc-a", True)
    own.opened(3, "10.0.0.1:1001")
    own.claim(3, 7, "on")
    assert own.owner(7) == 3 and 7 not in own.owned[1]


def test_a_connection_that_leaves_frees_its_pins_and_its_watches(own):
    own.claim(1, 7, "on")
    own.watch(1, 11, True)
    left = own.closed(1)
    assert left.owned == {7} and left.watched == {11}
    assert own.owner(7) is None and own.connections == 1


def test_a_dead_worker_is_told_to_its_owner_and_watchers_whose_watch_ends(own):
    own.claim(1, 7, "on")
    own.watch(2, 7, True)
    assert own.worker_died(7) == {1, 2}
    assert own.worker_died(7) == {1}  # the watch ended; the holder still holds
