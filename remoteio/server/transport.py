"""One client socket, plain or TLS, as the listener's loop sees it.

Everything is non-blocking. :class:`Transport` hides the difference between
a plain TCP socket and an ``ssl.SSLSocket`` (whose handshake, reads and
writes may each need the socket to be readable *or* writable), so the
listener only ever deals in "bytes in", "bytes out" and "what to wait for".
"""
from __future__ import annotations

import socket
import ssl
from typing import Optional

#: what recv() returns when nothing can be read right now
WOULD_BLOCK = None


class Transport:
    """A connected, non-blocking socket; TLS if *context* is given."""

    __slots__ = ("sock", "tls", "handshaking")

    def __init__(self, sock: socket.socket, context: Optional[ssl.SSLContext] = None):
        sock.setblocking(False)
        self.tls = context is not None
        self.handshaking = self.tls
        self.sock = (context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                     if context is not None else sock)

    def fileno(self) -> int:
        return self.sock.fileno()

    def handshake(self) -> str:
        """Advance the TLS handshake: ``"done"``, or ``"read"``/``"write"``:
        what the socket must become before calling again. Raises OSError
        (ssl.SSLError) if the peer is not speaking TLS we accept."""
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            return "read"
        except ssl.SSLWantWriteError:
            return "write"
        self.handshaking = False
        return "done"

    def recv(self, size: int) -> Optional[bytes]:
        """Bytes read (b"" at end of file), or WOULD_BLOCK."""
        try:
            data = self.sock.recv(size)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return WOULD_BLOCK
        if self.tls and data:
            # TLS may hold decrypted bytes that select() cannot see: take them now
            while self.sock.pending():
                try:
                    more = self.sock.recv(size)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not more:
                    break
                data += more
        return data

    def send(self, data: bytes) -> int:
        """Bytes written (0 when the socket cannot take any now)."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return 0

    def close(self) -> None:
        self.sock.close()


def server_context(cert_file: str, key_file: str,
                   client_ca: Optional[str] = None) -> ssl.SSLContext:
    """TLS 1.2 or later with the server's certificate and key; with
    *client_ca*, every client must show a certificate that CA signed
    (mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def certificate_der(cert_file: str) -> bytes:
    """The server's own certificate (the first of *cert_file*), in DER."""
    with open(cert_file, encoding="ascii") as f:
        pem = f.read()
    end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----"):end])
