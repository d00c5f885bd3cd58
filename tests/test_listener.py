"""The listener's turns (server/listener.py): a flood on one connection,
handed to the router in chunks, does not starve another connection."""
from __future__ import annotations

from remoteio.server import Server
from remoteio.testing import RawClient, frame, wait_until


def test_a_ping_on_a_quiet_connection_is_answered_before_a_flood_on_another_is_done():
    with Server(host="127.0.0.1", port=0, backend="sim", mode="nowait") as server, \
            RawClient(server.address, timeout=30) as flood, RawClient(server.address) as quiet:
        flood.hello()
        quiet.hello()
        flood.request("open", pin=7)
        count = 20_000   # on/off alternating: the pin changes with every one
        flood.sock.sendall(b"".join(frame(n, "off" if n % 2 else "on", pin=7) for n in range(count)))
        pinged = quiet.call({"id": 1, "op": "ping"})["time_ns"]
        replies = [flood.recv() for _ in range(count)]
        assert all(reply["ok"] for reply in replies)
        assert wait_until(lambda: server.sim.value(7) == 0.0, timeout=5)
        last_change = server.sim.history(7)[-1][0]
        assert pinged < last_change, "the ping waited for the whole flood"
