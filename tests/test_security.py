"""Authentication, TLS and pin rules: refused means refused, and no pin is touched."""
import json
import logging
import os
from pathlib import Path
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from remoteio import RemoteServer
from remoteio.errors import AuthFailed, AuthRequired, ConnectFailed, Forbidden
from remoteio.protocol import auth
from remoteio.server import Server
from remoteio.tls import KnownHosts, TLSVerifyFailed, generate_self_signed

from remoteio.testing import RawClient

ROOT = Path(__file__).resolve().parent.parent

TOKEN = "correct horse battery staple"


@pytest.fixture
def secured():
    with Server(host="127.0.0.1", port=0, backend="sim", token=TOKEN) as server:
        yield server


def untouched(server):
    return all(server.sim.function(pin) == "released" for pin in (7, 11, 12))


def test_the_right_token_gets_in(secured, monkeypatch):
    monkeypatch.delenv("REMOTEIO_TOKEN", raising=False)
    with RemoteServer(*secured.address, token=TOKEN) as remote:
        remote.pin(7).on()
        assert remote.board["backend"] == "sim"   # the welcome comes after auth
        # inside the block: on leaving it the client is gone and the pin goes safe
        assert secured.sim.value(7) == 1.0


def test_no_token_is_refused(secured, monkeypatch, tmp_path):
    monkeypatch.delenv("REMOTEIO_TOKEN", raising=False)
    monkeypatch.delenv("REMOTEIO_TOKEN_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(AuthRequired, match="needs a token"):
        RemoteServer(*secured.address)
    assert untouched(secured)


def test_a_wrong_token_is_refused_and_the_connection_closed(secured):
    with pytest.raises(AuthFailed):
        RemoteServer(*secured.address, token="wrong")
    conn = RawClient(secured.address)
    offer = conn.call({"id": 1, "op": "hello"})["auth"]
    nonce = auth.new_nonce()
    reply = conn.call({"id": 2, "op": "auth", "nonce": nonce,
                       "mac": auth.proof("wrong", "client", offer["nonce"], nonce)})
    assert reply["error"]["code"] == "auth_failed"
    conn.send({"id": 3, "op": "on", "pin": 7})
    with pytest.raises(ConnectionError):
        conn.recv()
    assert untouched(secured)


@pytest.mark.parametrize("before", [
    ({"id": 1, "op": "on", "pin": 7}, {"id": 2, "op": "ping"}, {"id": 3, "op": "info"}),
    ({"id": 4, "op": "write", "pins": {"7": 1}},
     {"id": 5, "op": "sim", "action": "drive", "pin": 11, "level": 1}),
])
def test_nothing_but_hello_and_auth_before_authentication(secured, before):
    conn = RawClient(secured.address)
    for frame in before:
        assert conn.call(frame)["error"]["code"] in ("hello_required", "auth_required")
    conn.close()
    conn = RawClient(secured.address)
    hello = conn.call({"id": 6, "op": "hello"})
    assert set(hello) == {"id", "ok", "protocol", "auth"}   # nothing about the board yet
    for frame in ({"id": 7, "op": "on", "pin": 7}, {"id": 8, "op": "read", "pin": 7},
                  {"id": 9, "op": "sim", "action": "drive", "pin": 11, "level": 1}):
        assert conn.call(frame)["error"]["code"] == "auth_required"
    assert untouched(secured) and secured.sim.level(11) == 0
    conn.close()


def test_a_replayed_handshake_is_refused(secured):
    first = RawClient(secured.address)
    offer = first.call({"id": 1, "op": "hello"})["auth"]
    nonce = auth.new_nonce()
    captured = {"id": 2, "op": "auth", "nonce": nonce,
                "mac": auth.proof(TOKEN, "client", offer["nonce"], nonce)}
    assert first.call(captured)["ok"]
    first.close()
    replay = RawClient(secured.address)
    replay.call({"id": 1, "op": "hello"})
    assert replay.call(captured)["error"]["code"] == "auth_failed"
    assert untouched(secured)


def test_repeated_failures_are_slowed_down_not_tried_at_full_speed(secured):
    started = time.monotonic()
    refused = 0
    for _ in range(5):
        with pytest.raises(AuthFailed) as failure:
            RemoteServer(*secured.address, token="a guess of sixteen+")
        refused += "too many failed attempts" in failure.value.message
    assert refused >= 4  # one guess, then the penalty refuses the rest without counting
    with pytest.raises(AuthFailed, match="too many failed attempts"):
        RemoteServer(*secured.address, token=TOKEN)
    assert time.monotonic() - started < 5


def test_the_client_refuses_a_server_that_does_not_know_the_token():
    """Mutual authentication: a fake server cannot pass for the real one."""
    fake = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = fake.accept()
        reader = conn.makefile("rb")
        hello = json.loads(reader.readline())
        conn.sendall(json.dumps({"id": hello["id"], "ok": True, "protocol": 1, "auth": {
            "method": auth.METHOD, "nonce": auth.new_nonce()}}).encode() + b"\n")
        request = json.loads(reader.readline())
        conn.sendall(json.dumps({"id": request["id"], "ok": True, "mac": "00" * 32}).encode() + b"\n")
        conn.recv(100)
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(AuthFailed, match="could not prove"):
        RemoteServer(*fake.getsockname(), token=TOKEN, timeout=5)
    fake.close()


def test_token_from_the_environment_and_files(secured, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("REMOTEIO_TOKEN", TOKEN)
    RemoteServer(*secured.address).close()
    monkeypatch.delenv("REMOTEIO_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    monkeypatch.setenv("REMOTEIO_TOKEN_FILE", str(token_file))
    with caplog.at_level(logging.WARNING):
        RemoteServer(*secured.address).close()
    assert "can be read by others" in caplog.text


def test_token_command_writes_a_private_file(tmp_path):
    path = tmp_path / "sub" / "token"
    result = subprocess.run([sys.executable, "-m", "remoteio", "token", "--file", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_text().strip()) >= 43
    again = subprocess.run([sys.executable, "-m", "remoteio", "token", "--file", str(path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr


def test_serving_without_a_token_on_the_network_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="remoteio.server"):
        with Server(host="127.0.0.1", port=0, backend="sim"):
            pass
        assert "WITHOUT AUTHENTICATION" not in caplog.text
        with Server(host="0.0.0.0", port=0, backend="sim"):
            pass
        assert "WITHOUT AUTHENTICATION" in caplog.text


def test_a_reload_that_drops_the_token_of_a_server_on_the_network_warns(caplog):
    with Server(host="0.0.0.0", port=0, backend="sim", token="a token of sixteen+") as server:
        with caplog.at_level(logging.WARNING, logger="remoteio.server"):
            server.reload_token("another of sixteen+")
            assert "WITHOUT AUTHENTICATION" not in caplog.text
            server.reload_token(None)
            assert "after the reload, remoteio serves 0.0.0.0" in caplog.text
            assert "WITHOUT AUTHENTICATION" in caplog.text


# ---- TLS -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    fingerprint = generate_self_signed(cert, key, ["localhost", "127.0.0.1"])
    return cert, key, fingerprint


@pytest.fixture
def tls_server(certificate):
    cert, key, _ = certificate
    with Server(host="127.0.0.1", port=0, backend="sim", tls_cert=cert, tls_key=key,
                token=TOKEN) as server:
        yield server


def test_tls_with_the_pinned_fingerprint(tls_server, certificate):
    with RemoteServer(*tls_server.address, token=TOKEN, fingerprint=certificate[2]) as remote:
        assert remote._link.sock.version() in ("TLSv1.2", "TLSv1.3")
        remote.pin(7).blink(on_time=0.01, off_time=0.01)
        for _ in range(50):
            assert remote.ping() < 5
    assert tls_server.sim.function(7) == "released" or tls_server.sim.history(7)


def test_tls_with_a_ca_file_checks_the_host_name(tls_server, certificate):
    with RemoteServer("127.0.0.1", tls_server.port, token=TOKEN, cafile=certificate[0]) as remote:
        assert remote.ping() < 5
    with pytest.raises(ConnectFailed):
        RemoteServer("127.0.0.1", tls_server.port, token=TOKEN, tls=True)  # no CA knows it


def test_a_wrong_fingerprint_is_refused(tls_server):
    with pytest.raises(TLSVerifyFailed, match="not the trusted"):
        RemoteServer(*tls_server.address, token=TOKEN, fingerprint="sha256:" + "00" * 32)
    assert untouched(tls_server)


def test_a_fingerprint_beside_a_ca_file_is_checked_with_it(tls_server, certificate, tmp_path):
    other_cert, other_key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    other_fingerprint = generate_self_signed(other_cert, other_key, ["127.0.0.1"])
    with pytest.raises(ConnectFailed):      # the right fingerprint, a CA that does not know it
        RemoteServer(*tls_server.address, token=TOKEN, fingerprint=certificate[2],
                     cafile=other_cert)
    with pytest.raises(TLSVerifyFailed, match="not the trusted"):   # the right CA only
        RemoteServer(*tls_server.address, token=TOKEN, fingerprint=other_fingerprint,
                     cafile=certificate[0])
    with RemoteServer(*tls_server.address, token=TOKEN, fingerprint=certificate[2],
                      cafile=certificate[0]) as remote:
        assert remote.ping() < 5
    assert untouched(tls_server)


def test_plain_tcp_to_a_tls_server_is_refused_with_a_hint_to_use_tls(tls_server):
    with pytest.raises(ConnectFailed, match="if the server serves TLS, connect with TLS"):
        RemoteServer(*tls_server.address, token=TOKEN, tls=False, timeout=2)
    assert untouched(tls_server)


def test_tls_to_a_plain_server_says_the_server_answered_without_tls():
    with Server(host="127.0.0.1", port=0, backend="sim") as plain:
        with pytest.raises(TLSVerifyFailed, match="answered without TLS"):
            RemoteServer(*plain.address, tls=True, timeout=2)
        with RemoteServer(*plain.address) as remote:    # and it goes on serving
            remote.pin(7).on()
            assert plain.sim.value(7) == 1.0


def test_trust_on_first_use_only_when_asked(tls_server, tmp_path, monkeypatch, certificate):
    monkeypatch.setenv("HOME", str(tmp_path))
    RemoteServer(*tls_server.address, token=TOKEN, tofu=True).close()
    stored = KnownHosts().get(f"127.0.0.1:{tls_server.port}")
    assert stored == certificate[2]
    RemoteServer(*tls_server.address, token=TOKEN, tofu=True).close()
    other_cert, other_key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    generate_self_signed(other_cert, other_key, ["localhost"])
    with Server(host="127.0.0.1", port=0, backend="sim", tls_cert=other_cert,
                tls_key=other_key) as impostor:
        KnownHosts().add(f"127.0.0.1:{impostor.port}", certificate[2])
        with pytest.raises(TLSVerifyFailed):
            RemoteServer(*impostor.address, tofu=True)


def test_a_stalled_handshake_does_not_block_other_clients(tls_server, certificate):
    stalled = [socket.create_connection(tls_server.address) for _ in range(5)]
    stalled[0].sendall(b"\x16\x03\x01")  # half a TLS record, then nothing
    with RemoteServer(*tls_server.address, token=TOKEN, fingerprint=certificate[2]) as remote:
        remote.pin(7).on()
        assert remote.pin(7).read() == 1
    for sock in stalled:
        sock.close()


# ---- pin rules -------------------------------------------------------------------

@pytest.fixture
def ruled():
    rules = {7: {"access": "none"}, 11: {"access": "read"},
             12: {"max_hold_ms": 500}, 13: {"lease_only": True, "safe_value": 0}}
    with Server(host="127.0.0.1", port=0, backend="sim", pins=rules) as server:
        yield server


@pytest.mark.parametrize("frame", [
    {"op": "on", "pin": 7}, {"op": "read", "pin": 7}, {"op": "state", "pin": 7},
    {"op": "watch", "pin": 7}, {"op": "open", "pin": 7}, {"op": "input", "pin": 7},
    {"op": "write", "pins": {"15": 1, "7": 1}}, {"op": "read_many", "pins": [15, 7]},
    {"op": "on", "pin": 11}, {"op": "output", "pin": 11}, {"op": "set", "pin": 11, "state": 0},
    {"op": "write", "pins": {"11": 0}},
    {"op": "on", "pin": 12}, {"op": "blink", "pin": 12}, {"op": "value", "pin": 12, "level": 0.5},
    {"op": "on", "pin": 12, "time_ms": 501}, {"op": "on", "pin": 12, "lease_ms": 2000},
    {"op": "write", "pins": {"12": 1}},
    {"op": "on", "pin": 13}, {"op": "on", "pin": 13, "time_ms": 100},
    {"op": "write", "pins": {"13": 1}},
])
def test_rules_refuse_with_forbidden_and_touch_nothing(ruled, raw_ruled, frame):
    reply = raw_ruled.call(dict(frame, id=1))
    assert reply["error"]["code"] == "forbidden", reply
    assert all(ruled.sim.function(pin) != "output" for pin in (7, 11, 12, 13, 15))


@pytest.mark.parametrize("frame", [
    {"op": "read", "pin": 11}, {"op": "state", "pin": 11}, {"op": "watch", "pin": 11},
    {"op": "read_many", "pins": [11, 12]}, {"op": "open", "pin": 11},
    {"op": "input", "pin": 11, "pull": "up"}, {"op": "close", "pin": 11},
    {"op": "on", "pin": 12, "time_ms": 500}, {"op": "on", "pin": 12, "lease_ms": 500},
    {"op": "off", "pin": 12}, {"op": "write", "pins": {"12": 0}},
    {"op": "on", "pin": 13, "lease_ms": 1000}, {"op": "off", "pin": 13},
    {"op": "write", "pins": {"13": 1}, "lease_ms": 1000},
])
def test_rules_let_through_what_they_allow(ruled, raw_ruled, frame):
    reply = raw_ruled.call(dict(frame, id=1))
    assert reply["ok"], reply


@pytest.fixture
def raw_ruled(ruled):
    conn = RawClient(ruled.address)
    conn.hello()
    yield conn
    conn.close()


def test_rule_messages_name_the_rule(ruled):
    with RemoteServer(*ruled.address) as remote:
        with pytest.raises(Forbidden, match="not served"):
            remote.pin(7)
        with pytest.raises(Forbidden, match="read-only"):
            remote.pin(11).on()
        with pytest.raises(Forbidden, match="at most 500 ms"):
            remote.pin(12).on()
        with pytest.raises(Forbidden, match="lease"):
            remote.pin(13).on()
