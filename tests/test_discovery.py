"""Finding servers on the LAN (remoteio/bridges/discovery.py, docs/discovery.md).

mDNS is tested between two network namespaces joined by a veth pair, made
(and deleted) by the test, with link-local addresses that exist only inside
them: a server advertises in one, ``remoteio discover`` and
``RemoteServer.discover`` browse from the other. Never on the host's own
network: a server on a loopback address (every other test's) advertises
nothing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from remoteio.bridges.discovery import (SERVICE_TYPE, advertised_addresses, from_service, parse_txt,
                                        txt_record)
from remoteio.server import Server

from remoteio.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent

BOARD = {"model": "5B", "revision": "d04170", "backend": "sim",
         "description": "Raspberry Pi 5B rev 1.0"}


# ---- the pure parts ----------------------------------------------------------------------
def test_the_txt_record_says_version_board_auth_tls_and_the_fingerprint():
    txt = txt_record(version="3.0.0", protocol=1, board=BOARD, auth=True, tls=True,
                     fingerprint="sha256:AB:CD")
    assert txt == {"version": "3.0.0", "protocol": "1", "board": "Raspberry Pi 5B rev 1.0",
                   "backend": "sim", "auth": "1", "tls": "1", "fingerprint": "sha256:AB:CD"}
    plain = txt_record(version="3.0.0", protocol=1, board=BOARD, auth=False, tls=False,
                       fingerprint=None)
    assert plain["auth"] == plain["tls"] == "0" and "fingerprint" not in plain


def test_a_found_service_becomes_a_discovered_server_with_ipv4_first():
    properties = {k.encode(): v.encode() for k, v in txt_record(
        version="3.0.0", protocol=1, board=BOARD, auth=True, tls=False, fingerprint=None).items()}
    properties[b"junk"] = b"\xff"
    found = from_service(f"remoteio on shed.{SERVICE_TYPE}", 8509, ["fe80::1", "192.0.2.7"],
                         "shed.local.", properties)
    assert (found.name, found.host, found.port) == ("remoteio on shed", "192.0.2.7", 8509)
    assert found.auth and not found.tls and found.fingerprint is None and found.backend == "sim"
    assert "junk" not in parse_txt(properties) or parse_txt(properties)["junk"] is not None
    assert json.dumps(found.as_dict())


def test_loopback_servers_are_never_advertised():
    assert advertised_addresses("127.0.0.1") == [] and advertised_addresses("::1") == []
    assert advertised_addresses("localhost") == []
    with Server(host="127.0.0.1", port=0, backend="sim", advertise=True) as server:
        assert server._advertiser is None


def test_a_library_server_does_not_advertise_unless_asked_and_the_daemon_does_unless_told():
    from remoteio.server.config import parse_config
    assert Server(host="127.0.0.1", port=0, backend="sim").advertise is False
    assert parse_config("[server]\n").advertise is True
    assert parse_config("[server]\nadvertise = false\n").advertise is False


# ---- between two network namespaces ---------------------------------------------------------
def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def lan() -> Iterator[tuple]:
    """Two namespaces ("pi" and "laptop") joined by a veth pair: (pi, laptop, pi's address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (CI runs as root)")
    pytest.importorskip("zeroconf", reason="zeroconf is not installed (pip install -e '.[test]')")
    tag = f"rio{os.getpid() % 100000}"
    pi, laptop = f"{tag}p", f"{tag}l"
    made: List[str] = []
    try:
        for name in (pi, laptop):
            ip("netns", "add", name)
            made.append(name)
        ip("link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b")
        ip("link", "set", f"{tag}a", "netns", pi)
        ip("link", "set", f"{tag}b", "netns", laptop)
        for name, dev, address in ((pi, f"{tag}a", "169.254.77.1"), (laptop, f"{tag}b", "169.254.77.2")):
            ip("-n", name, "addr", "add", f"{address}/24", "dev", dev)
            ip("-n", name, "link", "set", dev, "up")
            ip("-n", name, "link", "set", "lo", "up")
        yield pi, laptop, "169.254.77.1"
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def in_namespace(namespace: str, *args: str, **options) -> List[str]:
    return ["ip", "netns", "exec", namespace, sys.executable, *args]


def start_server(namespace: str, tmp_path: Path, *args: str) -> tuple:
    log = tmp_path / f"server-{time.monotonic_ns()}.log"
    proc = subprocess.Popen(in_namespace(namespace, "-m", "remoteio", "serve", "--sim",
                                         "--host", "0.0.0.0", "--port", "0", *args),
                            cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    wanted = r"serving on \S+ port (\d+)" if "--no-advertise" in args else r"advertising .* port (\d+)"
    found = wait_until(lambda: re.search(wanted, log.read_text()), timeout=30)
    assert found, log.read_text()
    return proc, int(found.group(1)), log


def stop_server(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def discover(namespace: str, seconds: float = 3.0) -> list:
    result = subprocess.run(in_namespace(namespace, "-m", "remoteio", "discover", "--json",
                                         "--timeout", str(seconds)),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_server_on_one_host_is_found_from_another_with_what_its_txt_says(lan, tmp_path):
    pytest.importorskip("cryptography", reason="making a certificate needs cryptography")
    from remoteio.tls import generate_self_signed
    pi, laptop, address = lan
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    fingerprint = generate_self_signed(cert, key, [address])
    (tmp_path / "token").write_text("a token of sixteen+\n")
    os.chmod(tmp_path / "token", 0o600)
    advertised, port, log = start_server(pi, tmp_path, "--token-file", str(tmp_path / "token"),
                                         "--tls-cert", cert, "--tls-key", key)
    hidden, hidden_port, _ = start_server(pi, tmp_path, "--no-advertise")
    try:
        found = discover(laptop)
        assert [(s["host"], s["port"]) for s in found] == [(address, port)], (found, log.read_text())
        server = found[0]
        assert server["auth"] is True and server["tls"] is True and server["backend"] == "sim"
        assert server["fingerprint"] == fingerprint and server["board"].startswith("Raspberry Pi")
        # the library finds it too, and what it found is enough to connect
        script = (
            "from remoteio import RemoteServer\n"
            "found = RemoteServer.discover(timeout=3)\n"
            "s = found[0]\n"
            "with RemoteServer(s.host, s.port, token='a token of sixteen+',"
            " fingerprint=s.fingerprint) as r:\n"
            "    print(s.name, r.server_version, round(r.ping() * 1000) >= 0)\n")
        result = subprocess.run(in_namespace(laptop, "-c", script), cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.strip().endswith("True"), result.stderr
        assert result.stdout.startswith("remoteio on ")
    finally:
        assert stop_server(advertised) == 0
        stop_server(hidden)
    assert discover(laptop, seconds=1.5) == []   # withdrawn when it stopped (goodbye packets)


def test_two_servers_of_one_host_name_are_each_found_at_their_own_address(lan, tmp_path):
    """Every Pi is "raspberrypi" at first: two servers with one host name (here
    one namespace, two addresses) must not publish their addresses under one
    mDNS name, where a browser merges them and gives each the other's address."""
    pi, laptop, address = lan
    second = "169.254.77.3"
    dev = subprocess.run(["ip", "-n", pi, "-o", "link", "show", "type", "veth"], check=True,
                         capture_output=True, text=True, timeout=30).stdout.split(":")[1].strip()
    ip("-n", pi, "addr", "add", f"{second}/24", "dev", dev.split("@")[0])
    (tmp_path / "token").write_text("a token of sixteen+\n")
    os.chmod(tmp_path / "token", 0o600)
    servers, expected = [], set()
    try:
        for host, extra in ((address, ("--token-file", str(tmp_path / "token"))), (second, ())):
            log = tmp_path / f"server-{host}.log"
            proc = subprocess.Popen(in_namespace(pi, "-m", "remoteio", "serve", "--sim", "--host",
                                                 host, "--port", "0", *extra),
                                    cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))
            servers.append(proc)
            found = wait_until(lambda: re.search(r"advertising .* port (\d+)", log.read_text()),
                               timeout=30)
            assert found, log.read_text()
            expected.add((host, int(found.group(1)), bool(extra)))
        found = discover(laptop)
        seen = {(s["host"], s["port"], s["auth"]) for s in found}
        assert seen == expected, found
        assert len({s["hostname"] for s in found}) == 2, found
    finally:
        for proc in servers:
            stop_server(proc)


def test_remoteio_discover_says_when_nobody_answered(lan):
    pi, laptop, address = lan
    result = subprocess.run(in_namespace(laptop, "-m", "remoteio", "discover", "--timeout", "1"),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "no remoteio server answered within 1 s" in result.stderr
    # with --json too: the notice on standard error, the list (empty) on standard output
    result = subprocess.run(in_namespace(laptop, "-m", "remoteio", "discover", "--timeout", "1",
                                         "--json"),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert "no remoteio server answered within 1 s" in result.stderr


def test_an_interface_that_is_no_address_is_refused_by_name():
    pytest.importorskip("zeroconf")
    from remoteio import RemoteServer
    with pytest.raises(ValueError, match="'eth0' is not an IPv4 address"):
        RemoteServer.discover(timeout=0.1, interfaces=["eth0"])


def test_an_address_this_machine_lacks_is_named_in_the_error_and_the_exit_is_a_usage_one():
    pytest.importorskip("zeroconf")
    from remoteio import RemoteServer
    lacking = "192.0.2.77"  # TEST-NET-1: documentation only, on no machine's interface
    with pytest.raises(ValueError, match=r"cannot browse on 192\.0\.2\.77"):
        RemoteServer.discover(timeout=0.1, interfaces=[lacking])
    result = subprocess.run([sys.executable, "-m", "remoteio", "discover", "--timeout", "0.1",
                             "--interface", lacking],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "192.0.2.77" in result.stderr and "ip -4 addr" in result.stderr
