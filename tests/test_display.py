"""Rich display: what a notebook shows of servers, pins, the gpiozero factory, info() and traces."""
from __future__ import annotations

import asyncio

import pytest

from remoteio import RemoteServer
from remoteio.aio import AsyncRemoteServer


class Printer:
    """What IPython hands _repr_pretty_: text() collects."""

    def __init__(self):
        self.out = ""

    def text(self, text):
        self.out += text


def pretty(obj) -> str:
    printer = Printer()
    obj._repr_pretty_(printer, False)
    return printer.out


def test_a_server_shows_its_board_connection_and_a_table_of_the_pins_in_use(server, client):
    client.pin(7).on(time_ms=5000, lease_ms=4000)
    client.pin(11).as_input(pull="up")
    html = client._repr_html_()
    assert "Raspberry Pi 5B" in html and "connected" in html and "<table" in html
    for heading in ("mode", "value", "task", "time left", "lease", "holder"):
        assert f"<th>{heading}</th>" in html
    assert "BOARD7 (GPIO4)" in html and "BOARD11 (GPIO17)" in html and "<td>on</td>" in html
    text = pretty(client)
    assert "TLS off" in text and "auth none" in text
    assert any(line.startswith("BOARD7") and " on " in line and "s" in line
               for line in text.splitlines())


def test_a_pin_shows_what_it_does(client):
    led = client.pin(7)
    led.blink(on_time=1, off_time=1)
    assert "blink" in led._repr_html_() and "output" in led._repr_html_()
    assert pretty(led).startswith("RemotePin BOARD7 (GPIO4): mode output")
    led.close()
    assert "closed" in pretty(led)


def test_info_is_a_dict_that_shows_as_a_table(client):
    client.pin(13).value(level=0.5)
    info = client.info()
    assert isinstance(info, dict) and info["pins"][0]["pin"] == 13
    assert "BOARD13 (GPIO27)" in info._repr_html_() and "0.50" in info._repr_html_()
    assert pretty(info).startswith("remoteio server")


def test_a_server_that_is_gone_still_shows(server):
    remote = RemoteServer(*server.address, reconnect=False)
    remote.close()
    assert "not connected" in remote._repr_html_() and "closed" in repr(remote)


def test_the_gpiozero_factory_shows_its_server_and_pins(server):
    pytest.importorskip("gpiozero")
    from gpiozero import LED
    from remoteio.gpiozero_factory import RemoteIOFactory
    factory = RemoteIOFactory(*server.address)
    try:
        led = LED(17, pin_factory=factory)
        led.on()
        html = factory._repr_html_()
        assert "RemoteIOFactory" in html and "BOARD11 (GPIO17)" in html
        assert "0x" not in repr(factory)
        led.close()
    finally:
        factory.close()


def test_the_async_server_shows_its_pins_as_of_the_last_info(server):
    async def scenario():
        async with AsyncRemoteServer(*server.address) as remote:
            await (await remote.pin(7)).on()
            assert "await server.info()" in remote._repr_html_()
            await remote.info()
            assert "BOARD7 (GPIO4)" in remote._repr_html_()
            assert "AsyncRemoteServer" in pretty(remote)
    asyncio.run(scenario())
