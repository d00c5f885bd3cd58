"""TLS for the client, and certificates for the server.

The client verifies the server one of three ways, never none:

* a pinned certificate fingerprint (``fingerprint="sha256:AB:CD:..."``),
  printed by ``remoteio tls-cert`` on the Pi: the simplest safe choice;
* a CA file (``cafile=...``), with the host name checked as on the web;
* trust on first use (``tofu=True``, only if asked for): the first
  fingerprint seen is stored in ``~/.config/remoteio/known_hosts`` and every
  later connection must show the same one.

A CA file given beside a fingerprint (or trust on first use) adds its check:
both must hold.

:class:`SecureSocket` runs TLS over memory buffers under a lock, because the
client reads on one thread while other threads send, and an ``SSLSocket``
must not be used from two threads at once.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Iterable, NamedTuple, Optional

from .errors import TLSVerifyFailed

log = logging.getLogger(__name__)

KNOWN_HOSTS = "~/.config/remoteio/known_hosts"


def normalize_fingerprint(text: str) -> str:
    """``sha256:AB:CD...``, ``abcd...`` -> ``abcd...`` (64 lowercase hex digits)."""
    digest = text.strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[7:]
    digest = digest.replace(":", "")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a SHA-256 fingerprint: {text!r}")
    return digest


def fingerprint_of(der: bytes) -> str:
    """``sha256:AB:CD:...`` of a DER certificate."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(digest[i:i + 2] for i in range(0, 64, 2))


def client_context(cafile: Optional[str] = None, pinned: bool = False,
                   cert: Optional[str] = None, key: Optional[str] = None) -> ssl.SSLContext:
    """A client context: CA verification, or none at the TLS layer when the
    certificate is checked against a pinned fingerprint right after the
    handshake (see :func:`connect`); with *cert* (and *key*), the client's
    own certificate for a server that asks for one (mutual TLS)."""
    if pinned:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # replaced by the fingerprint check
    else:
        context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key)
    return context


class KnownHosts:
    """``host:port fingerprint`` lines, for trust on first use."""

    def __init__(self, path: str = KNOWN_HOSTS):
        self.path = Path(os.path.expanduser(path))

    def get(self, address: str) -> Optional[str]:
        if not self.path.exists():
            return None
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == address:
                return parts[1]
        return None

    def add(self, address: str, fingerprint: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(f"{address} {fingerprint}\n")


class SecureSocket:
    """A client TLS connection over a connected socket (thread-safe)."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, server_hostname: Optional[str],
                 timeout: float = 5.0):
        self.raw = raw
        self.family = raw.family
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=False,
                                     server_hostname=server_hostname)
        self._lock = threading.Lock()       # guards the TLS state
        self._send_lock = threading.Lock()  # keeps records in order on the wire
        self._handshake(timeout)

    def _handshake(self, timeout: float) -> None:
        """The whole handshake within *timeout* s, however the peer dribbles."""
        deadline = time.monotonic() + timeout
        previous = self.raw.gettimeout()
        try:
            while True:
                try:
                    with self._lock:
                        self._tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout(f"the TLS handshake took more than {timeout:g} s")
                    self.raw.settimeout(left)
                    if not self._feed():
                        raise ConnectionResetError(
                            "the peer closed the connection during the TLS handshake")
            self._flush()
        finally:
            self.raw.settimeout(previous)

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                data = self._outgoing.read()
            if data:
                self.raw.sendall(data)

    def _feed(self) -> bool:
        data = self.raw.recv(65536)
        if not data:
            return False
        with self._lock:
            self._incoming.write(data)
        return True

    def recv(self, size: int) -> bytes:
        while True:
            try:
                with self._lock:
                    data = self._tls.read(size)
            except ssl.SSLWantReadError:
                data = None
            except ssl.SSLZeroReturnError:
                return b""
            self._flush()  # a read can produce records to send (key updates)
            if data is not None:
                return data
            if not self._feed():
                return b""

    def recv_buffered(self, size: int) -> Optional[bytes]:
        """Decrypted bytes from what already arrived (never waits): None when
        no whole record is in yet (wait for :meth:`fileno`, then :meth:`fill`),
        b"" at the end. A reader that selects on the raw socket must look here
        first: records read off the socket together wait here, unseen by select."""
        try:
            with self._lock:
                data = self._tls.read(size)
        except ssl.SSLWantReadError:
            return None
        except ssl.SSLZeroReturnError:
            return b""
        self._flush()  # a read can produce records to send (key updates)
        return data

    def fill(self) -> bool:
        """One read of the raw socket into the TLS buffer (select said it is
        readable); False at the end of the stream."""
        return self._feed()

    def fileno(self) -> int:
        return self.raw.fileno()

    def sendall(self, data: bytes) -> None:
        with self._send_lock:
            with self._lock:
                self._tls.write(data)
                records = self._outgoing.read()
            self.raw.sendall(records)

    def getpeercert(self, binary_form: bool = False):
        return self._tls.getpeercert(binary_form)

    def version(self) -> Optional[str]:
        return self._tls.version()

    def settimeout(self, timeout: Optional[float]) -> None:
        self.raw.settimeout(timeout)

    def setsockopt(self, *args) -> None:
        self.raw.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        self.raw.shutdown(how)

    def close(self) -> None:
        self.raw.close()


#: what OpenSSL says when the peer's first answer is not a TLS record
_NOT_TLS = ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
            "HTTP_REQUEST")
#: said beside a plain connection's failure to greet, where TLS may be what was missing
PLAIN_HINT = ("if the server serves TLS, connect with TLS: a fingerprint, a CA file or "
              "tls=True (--fingerprint, --cafile or --tls on the command line)")


def handshake_failed(where: str, exc: ssl.SSLError) -> TLSVerifyFailed:
    """The error for a failed handshake, with a hint when the server answered without TLS.

    >>> error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    >>> error.reason = "WRONG_VERSION_NUMBER"
    >>> "without TLS" in str(handshake_failed("pi:8509", error))
    True
    """
    text = f"TLS with {where} failed: {exc}"
    if getattr(exc, "reason", None) in _NOT_TLS:
        text += " (the server answered without TLS: is it a plain server? connect without TLS)"
    return TLSVerifyFailed(text)


class ClientTLS(NamedTuple):
    """A client's TLS settings, its arguments completed from the environment."""
    enabled: bool
    fingerprint: Optional[str]
    cafile: Optional[str]
    cert: Optional[str]
    key: Optional[str]

    @classmethod
    def resolve(cls, tls: Optional[bool], fingerprint: Optional[str], cafile: Optional[str],
                tofu: bool, cert: Optional[str], key: Optional[str]) -> "ClientTLS":
        """REMOTEIO_FINGERPRINT, _CAFILE, _CERT, _KEY fill what is not given;
        TLS is on when asked, or when anything of it is set (or REMOTEIO_TLS)."""
        fingerprint = fingerprint or os.environ.get("REMOTEIO_FINGERPRINT") or None
        cafile = cafile or os.environ.get("REMOTEIO_CAFILE") or None
        cert = cert or os.environ.get("REMOTEIO_CERT") or None
        key = key or os.environ.get("REMOTEIO_KEY") or None
        if tls is None:
            tls = bool(fingerprint or cafile or tofu or cert or
                       os.environ.get("REMOTEIO_TLS", "") not in ("", "0"))
        return cls(tls, fingerprint, cafile, cert, key)


class Trust:
    """What a client trusts at one address: the TLS context to use, the name to
    check (None when a fingerprint is pinned and no CA file given), and :meth:`check` of the
    certificate the server showed (the sync and the asyncio client share it)."""

    def __init__(self, host: str, port: int, *, cafile: Optional[str] = None,
                 fingerprint: Optional[str] = None, tofu: bool = False,
                 known_hosts: str = KNOWN_HOSTS, cert: Optional[str] = None,
                 key: Optional[str] = None):
        self.address = f"{host}:{port}"
        self._store = KnownHosts(known_hosts) if tofu and not fingerprint else None
        self._pinned = fingerprint or (self._store.get(self.address) if self._store else None)
        # with a CA file as well, the CA is checked too: both must hold
        pinned = (bool(self._pinned) or bool(self._store)) and not cafile
        try:
            self.context = client_context(cafile, pinned=pinned, cert=cert, key=key)
        except ssl.SSLError as exc:
            raise TLSVerifyFailed(f"TLS with {self.address} failed: {exc}") from None  # the context
        self.server_hostname = None if pinned else host

    def check(self, der: bytes) -> None:
        """Raise TLSVerifyFailed unless the certificate *der* is the pinned one
        (trust on first use stores it)."""
        seen = fingerprint_of(der)
        if self._pinned:
            if normalize_fingerprint(seen) != normalize_fingerprint(self._pinned):
                raise TLSVerifyFailed(f"{self.address} showed certificate {seen}, not the "
                                      f"trusted {self._pinned}: refusing it")
        elif self._store is not None:
            log.warning("trusting %s on first use: certificate %s (stored in %s)",
                        self.address, seen, self._store.path)
            self._store.add(self.address, seen)


def connect(raw: socket.socket, host: str, port: int, *, cafile: Optional[str] = None,
            fingerprint: Optional[str] = None, tofu: bool = False,
            known_hosts: str = KNOWN_HOSTS, cert: Optional[str] = None,
            key: Optional[str] = None, timeout: float = 5.0) -> SecureSocket:
    """Run the TLS handshake on *raw* (within *timeout* s) and verify the
    server, or raise :exc:`TLSVerifyFailed` (or OSError: the peer closed,
    or took too long); the socket is then closed."""
    try:
        trust = Trust(host, port, cafile=cafile, fingerprint=fingerprint, tofu=tofu,
                      known_hosts=known_hosts, cert=cert, key=key)
        secure = SecureSocket(raw, trust.context, trust.server_hostname, timeout)
    except ssl.SSLError as exc:
        raw.close()
        raise handshake_failed(f"{host}:{port}", exc) from None
    except (OSError, TLSVerifyFailed):
        raw.close()
        raise
    try:
        trust.check(secure.getpeercert(binary_form=True))
    except TLSVerifyFailed:
        secure.close()
        raise
    return secure


def generate_self_signed(cert_path: str, key_path: str, names: Iterable[str],
                         days: int = 3650) -> str:
    """Write a self-signed certificate and key (EC P-256) for *names* (host
    names and IP addresses); returns the certificate's fingerprint."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise RuntimeError("making certificates needs the cryptography package: "
                           "pip install 'remoteio[tls]'") from None
    names = list(dict.fromkeys(names))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternatives = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    der = cert.public_bytes(serialization.Encoding.DER)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint_of(der)
