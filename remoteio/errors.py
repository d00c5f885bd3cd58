"""Every failure remoteio reports, one class per failure, in one place.

Errors the server reports carry a stable ``code`` (the ``error.code`` field
of a reply on the wire, see docs/protocol.md); :func:`error_for_code` turns a
code back into its class on the client. Failures of the connection itself
(cannot connect, connection lost, no reply in time) are :exc:`LinkError`\\ s.

>>> from remoteio.errors import error_for_code, PinBusy
>>> error_for_code("pin_busy") is PinBusy
True
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Type


class RemoteIOError(Exception):
    """Base of every remoteio error.

    ``detail``, when a server error has one, names the gpiozero exception the
    pin raised on the server (e.g. ``"PinFixedPull"``), so the gpiozero pin
    factory can raise the same type on the client."""

    code = "error"
    #: a batch refused in part: every pin's outcome ({pin: {"ok": ..., "error": ...}})
    results: Optional[Dict[Any, Any]] = None

    def __init__(self, message: str = "", *, code: Optional[str] = None,
                 detail: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code


# --- errors reported by the server (the wire carries their code) ----------

class ServerError(RemoteIOError):
    """The server refused or could not carry out a request."""

    code = "internal_error"


class BadFrame(ServerError):
    """The frame was not a UTF-8 JSON object with a valid ``id``."""

    code = "bad_frame"


class FrameTooLarge(ServerError):
    """The frame was longer than the server's frame-size limit."""

    code = "frame_too_large"


class UnknownOp(ServerError):
    """The ``op`` is not one of the server's operations."""

    code = "unknown_op"


class BadArgument(ServerError, ValueError):
    """A field is missing, of the wrong type, or out of range."""

    code = "bad_argument"


class BadPin(ServerError, ValueError):
    """Not a GPIO pin of the 40-pin header (power, ground, or off the header)."""

    code = "bad_pin"


class PinBusy(ServerError):
    """Another connection holds the pin."""

    code = "pin_busy"


class PinClosed(ServerError):
    """The pin was closed; open it again to use it."""

    code = "pin_closed"


class WrongMode(ServerError):
    """The operation does not fit the pin's mode (e.g. writing an input)."""

    code = "wrong_mode"


class WorkerFailed(ServerError):
    """The process driving the pin died or hung; the pin was made safe."""

    code = "worker_failed"


class ServerBusy(ServerError):
    """A queue or limit is full; try again later."""

    code = "server_busy"


class HelloRequired(ServerError):
    """The first request on a connection must be ``hello``."""

    code = "hello_required"


class AuthRequired(ServerError):
    """The server needs authentication before this operation."""

    code = "auth_required"


class AuthFailed(ServerError):
    """Authentication failed."""

    code = "auth_failed"


class Forbidden(ServerError):
    """The server's pin rules do not allow this operation on this pin."""

    code = "forbidden"


class BusError(ServerError):
    """A bus transfer failed on the Pi (no device answered, a stuck bus...);
    ``detail`` is the errno name (``ENXIO``, ``EREMOTEIO``, ``ETIMEDOUT``)."""

    code = "bus_error"


class NotSupported(ServerError):
    """The server's backend cannot do this (e.g. ``sim`` on real hardware)."""

    code = "not_supported"


class ShuttingDown(ServerError):
    """The server is stopping."""

    code = "shutting_down"


# --- failures of the link itself (raised by the client) -------------------

class LinkError(RemoteIOError, ConnectionError):
    """The connection to the server failed."""

    code = "link_error"


class ConnectFailed(LinkError):
    """Could not connect to (or greet) the server."""

    code = "connect_failed"


class ConnectionLost(LinkError):
    """The connection dropped while a request was outstanding or being sent."""

    code = "connection_lost"


class CallTimeout(LinkError, TimeoutError):
    """No reply came within the call's timeout."""

    code = "call_timeout"


class ProtocolViolation(LinkError):
    """The peer sent something that is not remoteio protocol."""

    code = "protocol_violation"


class TLSVerifyFailed(ConnectFailed):
    """The server's certificate is not the one we trust."""

    code = "tls_verify_failed"


# --- failures that never go on the wire (the server, the CLI and the bridge handle them) ---

class Rejected(Exception):
    """A frame that cannot be carried out, and the error to answer it with."""

    def __init__(self, error: ServerError, id_json: str = "null"):
        super().__init__(error.message)
        self.error = error
        self.id_json = id_json


class ConfigError(ValueError):
    """A mistake in a configuration file (the message says where)."""


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this machine."""


class WorkerEnded(Exception):
    """The worker's reply pipe reached its end: the process is gone."""


class ZygoteGone(OSError):
    """The zygote is not there (it died, or was never started)."""


class ChannelClosed(EOFError):
    """The other end is gone."""


class BadPayload(ValueError):
    """A message the bridge ignores (logged): why, in words."""


class UsageError(Exception):
    """Something the user typed (or set in the environment) is wrong: exit 2."""


class PinListError(ValueError):
    """A pin list that does not read (the message says why)."""


#: the gpiozero exceptions whose names travel in a server error's ``detail``
#: (the server sets it, the gpiozero pin factory raises the same class)
GPIOZERO_DETAILS = (
    "PinFixedPull", "PinInvalidPull", "PinInvalidBounce", "PinInvalidEdges", "PinInvalidState",
    "PinInvalidFunction", "PinSetInput", "PinPWMUnsupported", "PinPWMFixedValue",
    "PinEdgeDetectUnsupported", "GPIOPinInUse",
)

_SERVER_ERRORS = (
    BadFrame, FrameTooLarge, UnknownOp, BadArgument, BadPin, PinBusy,
    PinClosed, WrongMode, WorkerFailed, ServerBusy, HelloRequired,
    AuthRequired, AuthFailed, Forbidden, BusError, NotSupported, ShuttingDown,
    ServerError,
)

#: wire code -> exception class
ERROR_CLASSES: Dict[str, Type[ServerError]] = {cls.code: cls for cls in _SERVER_ERRORS}

#: every code a server may put on the wire
ERROR_CODES = tuple(ERROR_CLASSES)


def error_for_code(code: str) -> Type[ServerError]:
    """The exception class for a wire error code (unknown codes: ServerError)."""
    return ERROR_CLASSES.get(code, ServerError)
