"""Finding remoteio servers on the LAN: mDNS / DNS-SD (docs/discovery.md).

A server advertises ``_remoteio._tcp`` with python-zeroconf; its TXT record
says what a client needs before it connects:

===============  =======================================================
key              value
===============  =======================================================
``version``      the server's remoteio version
``protocol``     its wire protocol version
``board``        ``Raspberry Pi 5B rev 1.0``
``backend``      ``gpiod``, ``lgpio``, ``rpigpio`` or ``sim``
``auth``         ``1`` if a token is required, else ``0``
``tls``          ``1`` if it speaks only TLS, else ``0``
``fingerprint``  with TLS: the certificate's ``sha256:...`` fingerprint
===============  =======================================================

:func:`browse` (``remoteio discover``, :meth:`RemoteServer.discover`) lists
them. A server bound to a loopback address is never advertised: nobody on
the LAN could reach it.

>>> parse_txt({b"auth": b"1", b"tls": b"0", b"version": b"3.0.0"})["auth"]
'1'
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ..settings import DEFAULT_PORT

if TYPE_CHECKING:
    from ..server.app import Server

log = logging.getLogger("remoteio.discovery")

SERVICE_TYPE = "_remoteio._tcp.local."


def require_zeroconf() -> Any:
    try:
        import zeroconf
    except ImportError:
        raise RuntimeError("discovery needs zeroconf: pip install 'remoteio[discovery]'") from None
    return zeroconf


@dataclass(frozen=True)
class DiscoveredServer:
    """A remoteio server found on the LAN."""
    name: str                      #: its instance name ("remoteio on greenhouse")
    host: str                      #: an address to connect to
    port: int
    addresses: Tuple[str, ...]     #: every address it advertised
    hostname: str                  #: the mDNS name of its addresses ("greenhouse-3fa2c1.local.")
    version: str = ""
    protocol: str = ""
    board: str = ""
    backend: str = ""
    auth: bool = False             #: a token is required
    tls: bool = False              #: only TLS is spoken
    fingerprint: Optional[str] = None  #: the certificate's, as advertised (a hint: see docs)

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "host": self.host, "port": self.port,
                "addresses": list(self.addresses), "hostname": self.hostname,
                "version": self.version, "protocol": self.protocol, "board": self.board,
                "backend": self.backend, "auth": self.auth, "tls": self.tls,
                "fingerprint": self.fingerprint}


# ---- pure parts ------------------------------------------------------------------------
def txt_record(*, version: str, protocol: Any, board: Dict[str, Any], auth: bool, tls: bool,
               fingerprint: Optional[str]) -> Dict[str, str]:
    txt = {"version": str(version), "protocol": str(protocol),
           "board": str(board.get("description", ""))[:100],
           "backend": str(board.get("backend", ""))[:20],
           "auth": "1" if auth else "0", "tls": "1" if tls else "0"}
    if tls and fingerprint:
        txt["fingerprint"] = fingerprint
    return txt


def parse_txt(properties: Dict[Any, Any]) -> Dict[str, str]:
    """A TXT record's keys and values as text (what cannot be decoded is left out)."""
    out = {}
    for key, value in properties.items():
        try:
            name = key.decode("utf-8") if isinstance(key, bytes) else str(key)
            out[name] = value.decode("utf-8") if isinstance(value, bytes) else (value or "")
        except UnicodeDecodeError:
            continue
    return out


def from_service(name: str, port: int, addresses: Sequence[str], hostname: str,
                 properties: Dict[Any, Any]) -> DiscoveredServer:
    txt = parse_txt(properties)
    ordered = sorted(addresses, key=lambda a: (":" in a, a))  # IPv4 first
    return DiscoveredServer(
        name=name[:-len(SERVICE_TYPE) - 1] if name.endswith("." + SERVICE_TYPE) else name,
        host=ordered[0] if ordered else hostname.rstrip("."), port=int(port),
        addresses=tuple(ordered), hostname=hostname, version=txt.get("version", ""),
        protocol=txt.get("protocol", ""), board=txt.get("board", ""),
        backend=txt.get("backend", ""), auth=txt.get("auth") == "1", tls=txt.get("tls") == "1",
        fingerprint=txt.get("fingerprint") or None)


def target_name(host: str, addresses: Sequence[str]) -> str:
    """The mDNS name a server's addresses are published under: its host name
    and a tag of those addresses, so that two Pis with one name (every Pi is
    "raspberrypi" at first) never publish their addresses under one name, where
    a browser would merge them and give each server the other's address.

    >>> target_name("raspberrypi", ["10.0.0.2"]) == target_name("raspberrypi", ["10.0.0.2"])
    True
    >>> target_name("raspberrypi", ["10.0.0.2"]) != target_name("raspberrypi", ["10.0.0.3"])
    True
    >>> target_name("raspberrypi", ["10.0.0.2"]).startswith("raspberrypi-")
    True
    """
    tag = hashlib.sha256(",".join(sorted(addresses)).encode()).hexdigest()[:6]
    return f"{host}-{tag}.local."


def advertised_addresses(host: str) -> List[str]:
    """The addresses a server bound to *host* is reachable at (none for loopback)."""
    wildcard = host in ("", "0.0.0.0", "::")
    if not wildcard:
        try:
            return [] if ipaddress.ip_address(host).is_loopback else [host]
        except ValueError:
            return [] if host == "localhost" else _resolve(host)
    import ifaddr  # comes with zeroconf
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                address = ipaddress.ip_address(ip.ip)
            elif host == "::":
                address = ipaddress.ip_address(ip.ip[0])
            else:
                continue
            if not (address.is_loopback or address.is_link_local and address.version == 6):
                found.append(str(address))
    return sorted(set(found))


def _resolve(name: str) -> List[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)})
    except OSError:
        return []


# ---- advertising -----------------------------------------------------------------------
class Advertiser:
    """Registers one server's service on its own thread (importing zeroconf
    and probing take a second: the server serves meanwhile), and withdraws
    it (goodbye packets) on :meth:`stop`."""

    def __init__(self, server: "Server"):
        self.server = server
        self.name = ""
        self.registered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="remoteio-advertise", daemon=True)

    def start(self) -> "Advertiser":
        self._thread.start()
        return self

    def _run(self) -> None:
        zc = None
        try:
            zeroconf = require_zeroconf()
            server = self.server
            addresses = advertised_addresses(server.host)
            if not addresses:
                log.info("not advertising on the LAN: %s has no address outside loopback",
                         server.host)
                return
            host = socket.gethostname().split(".")[0]
            name = f"remoteio on {host}" + (f" port {server.port}" if server.port != DEFAULT_PORT else "")
            zc = zeroconf.Zeroconf(interfaces=addresses, ip_version=(
                zeroconf.IPVersion.All if any(":" in a for a in addresses)
                else zeroconf.IPVersion.V4Only))
            info = zeroconf.ServiceInfo(
                SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", port=server.port,
                parsed_addresses=addresses, properties=server_txt(server),
                server=target_name(host, addresses))
            zc.register_service(info, allow_name_change=True)
            self.name = info.name[:-len(SERVICE_TYPE) - 1]
            self.registered.set()
            log.info("advertising %r (%s) on %s port %d", self.name, SERVICE_TYPE,
                     ", ".join(addresses), server.port)
            self._stop.wait()
            zc.unregister_service(info)
        except Exception as exc:  # noqa: BLE001 - advertising is a convenience; serving goes on
            log.warning("not advertising on the LAN: %s", exc)
        finally:
            if zc is not None:
                zc.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def certificate_fingerprint(cert_path: str) -> Optional[str]:
    from ..tls import fingerprint_of
    try:
        with open(cert_path, encoding="ascii") as handle:
            return fingerprint_of(ssl.PEM_cert_to_DER_cert(handle.read()))
    except (OSError, ValueError):
        return None


def server_txt(server: "Server") -> Dict[str, str]:
    from .._version import __version__
    from ..protocol.ops import PROTOCOL_VERSION
    return txt_record(version=__version__, protocol=PROTOCOL_VERSION,
                      board=server.backend.board_info(), auth=bool(server.token),
                      tls=bool(server.tls_cert),
                      fingerprint=certificate_fingerprint(server.tls_cert) if server.tls_cert else None)


def advertise_server(server: "Server") -> Optional[Advertiser]:
    """Start advertising a started :class:`~remoteio.server.Server` (None for
    a server on loopback: nobody on the LAN could reach it). Cheap here:
    the rest happens on the advertiser's thread."""
    if server.host not in ("", "0.0.0.0", "::") and not advertised_addresses(server.host):
        log.info("not advertising on the LAN: %s is loopback", server.host)
        return None
    return Advertiser(server).start()


# ---- browsing --------------------------------------------------------------------------
def check_interfaces(interfaces: Sequence[str]) -> List[str]:
    """The interfaces to browse on, each an IPv4 address (ValueError naming
    the one that is not).

    >>> check_interfaces(["192.168.1.20"])
    ['192.168.1.20']
    >>> check_interfaces(["eth0"])
    Traceback (most recent call last):
    ...
    ValueError: interface 'eth0' is not an IPv4 address (name one of this machine's)
    """
    chosen = []
    for interface in interfaces:
        try:
            address = ipaddress.ip_address(str(interface).strip())
        except ValueError:
            address = None
        if not isinstance(address, ipaddress.IPv4Address):
            raise ValueError(f"interface {interface!r} is not an IPv4 address (name one of this "
                             "machine's)")
        chosen.append(str(address))
    return chosen


def browse(timeout: float = 3.0, interfaces: Optional[Sequence[str]] = None) -> List[DiscoveredServer]:
    """The remoteio servers that answer within *timeout* seconds."""
    zeroconf = require_zeroconf()
    names: List[str] = []
    lock = threading.Lock()

    def changed(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        with lock:
            if state_change is removed and name in names:
                names.remove(name)
            elif state_change is not removed and name not in names:
                names.append(name)
    removed = zeroconf.ServiceStateChange.Removed
    chosen = check_interfaces(interfaces) if interfaces else None
    try:
        zc = zeroconf.Zeroconf(interfaces=chosen or zeroconf.InterfaceChoice.All,
                               ip_version=zeroconf.IPVersion.V4Only)
    except OSError as exc:
        if chosen is None:
            raise
        raise ValueError(f"cannot browse on {', '.join(chosen)}: {exc.strerror or exc} (an interface "
                         "is named by an IPv4 address this machine has; `ip -4 addr` lists them)") from None
    try:
        browser = zeroconf.ServiceBrowser(zc, SERVICE_TYPE, handlers=[changed])
        deadline = time.monotonic() + timeout
        threading.Event().wait(timeout)  # listening for answers is the point: the whole timeout
        browser.cancel()
        found = []
        with lock:
            pending = list(names)
        for name in pending:
            remaining_ms = max(200.0, (deadline + 1.0 - time.monotonic()) * 1000)
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=int(remaining_ms))
            if info is None or info.port is None:
                continue
            found.append(from_service(name, info.port, info.parsed_addresses(),
                                      info.server or "", info.properties or {}))
        return sorted(found, key=lambda s: (s.name, s.host, s.port))
    finally:
        zc.close()
