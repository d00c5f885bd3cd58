"""The typed messages of the server's pipes (messages.py)."""
from __future__ import annotations

import marshal

import pytest

from remoteio.server import messages as m

EXAMPLES = [
    m.Task(1, 2, '"x"', "on", {"time_ms": 5.0}, False), m.Gone(3, True, "finish"),
    m.MakeSafe(True), m.Probe(), m.Stop(), m.Reply(4, b"{}\n"),
    m.PartReply(5, ("bad_pin", "no", None), None), m.PartReply(6, None, 1),
    m.Event((1, 2), b"{}\n"), m.Pong(), m.Spawn("pin", 7, 1, {"rule": {"access": "read"}}),
    m.Settings({}), m.Kill(123), m.Quit(),
    m.Spawned(7, 1, 123), m.Exited(123, -9),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda msg: type(msg).__name__)
def test_every_message_survives_marshal_as_its_own_type(message):
    back = m.decode(marshal.loads(marshal.dumps(m.encode(message))))
    assert type(back) is type(message) and back == message


def test_the_wire_form_is_a_plain_tuple():
    assert type(m.encode(m.Probe())) is tuple
