"""What the server makes once before the zygote's fork, so that the pin
workers share it instead of each making (and writing into) its own."""
from __future__ import annotations

from typing import List

import pytest
from gpiozero.pins.pi import PiBoardInfo

from remoteio.server import Server
from remoteio.server.backends import SIM_REVISION, header_pins
from remoteio.server.backends.sim import SimBackend
from remoteio.testing import RawClient


def test_the_pin_table_holds_what_gpiozero_finds_for_every_gpio_number():
    info = PiBoardInfo.from_revision(SIM_REVISION)
    table = header_pins(info)
    assert sorted(table) == list(range(28))
    for gpio, pin in table.items():
        assert pin is next(info.find_pin(gpio))[1]


def test_a_worker_finds_its_pin_without_searching_the_board(monkeypatch):
    backend = SimBackend()
    try:
        backend.share_before_fork()

        def searched(self, name):
            raise AssertionError(f"find_pin({name!r}) walked the board")
        monkeypatch.setattr(PiBoardInfo, "find_pin", searched)
        factory = backend.make_factory()
        try:
            pin = factory.pin(4)
            assert pin.info.name == "GPIO4"
            assert factory.pin(4) is pin   # gpiozero's one pin object per line
        finally:
            factory.close()
    finally:
        backend.close()


def test_a_pin_given_by_a_name_is_still_found_by_gpiozero():
    backend = SimBackend()
    try:
        backend.share_before_fork()
        factory = backend.make_factory()
        try:
            assert factory.pin("GPIO17").info.name == "GPIO17"
            assert factory.pin("BOARD7") is factory.pin(4)
        finally:
            factory.close()
    finally:
        backend.close()


class _Recording(SimBackend):
    def __init__(self) -> None:
        super().__init__()
        self.calls: List[str] = []

    def known_pins(self):
        self.calls.append("known_pins")
        return super().known_pins()

    def before_fork(self) -> None:
        self.calls.append("before_fork")


def test_the_server_makes_the_pin_table_before_it_forks_the_zygote():
    backend = _Recording()
    try:
        with Server(host="127.0.0.1", port=0, backend=backend) as server:
            assert backend.calls[:2] == ["known_pins", "before_fork"]
            with RawClient(server.address) as client:
                client.hello()
                assert client.request("open", pin=7)["gpio"] == 4
                client.request("on", pin=7)
                assert server.sim.value(7) == 1
    finally:
        backend.close()


@pytest.mark.parametrize("name", [99, "GPIO99"])
def test_an_unknown_pin_is_refused_as_gpiozero_refuses_it(name):
    from gpiozero.exc import PinInvalidPin
    backend = SimBackend()
    try:
        backend.share_before_fork()
        factory = backend.make_factory()
        try:
            with pytest.raises(PinInvalidPin):
                factory.pin(name)
        finally:
            factory.close()
    finally:
        backend.close()
