import pytest

from remoteio.errors import BadArgument
from remoteio.protocol.session import Session


def test_only_hello_and_ping_before_hello():
    session = Session({"server": "x"})
    assert session.gate("ping") is None
    assert session.gate("hello") is None
    for op in ("on", "info", "read", "auth"):
        assert session.gate(op).code == "hello_required"


def test_hello_welcomes_and_opens_the_session():
    session = Session({"server": "x", "mode": "wait"})
    welcome = session.hello({"protocol": 1, "client": "test"})
    assert welcome["protocol"] == 1 and welcome["auth"] is None and welcome["mode"] == "wait"
    assert session.ready and session.client == "test"


def test_hello_from_an_older_protocol_is_refused():
    with pytest.raises(BadArgument, match="protocol"):
        Session({}).hello({"protocol": 0, "client": ""})
