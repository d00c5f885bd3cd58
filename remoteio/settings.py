"""The settings both sides share: the default port, the server's modes, disconnect policies and backends.

>>> DEFAULT_PORT
8509
>>> "nowait" in MODES
True
"""

#: the TCP port a server listens on and a client connects to unless told otherwise
DEFAULT_PORT = 8509
#: ``wait``: a request's reply comes when the pin has done it; ``nowait``: at once
MODES = ("wait", "nowait")
#: what a pin does when its client goes: ``finish`` what it was doing, or go ``safe`` now
DISCONNECT_POLICIES = ("finish", "safe")
#: the server's backends (``auto`` picks the first of gpiod, lgpio, rpigpio that works)
BACKEND_NAMES = ("auto", "sim", "gpiod", "lgpio", "rpigpio")
#: the levels ``--log-level`` takes
LOG_LEVELS = ("debug", "info", "warning", "error")


def port_from_text(text: str) -> int:
    """A TCP port from its text (a command line, ``$REMOTEIO_PORT``), or a ValueError that says why.

    >>> port_from_text(" 8509 ")
    8509
    >>> port_from_text("abc")
    Traceback (most recent call last):
    ...
    ValueError: a port is a number, not 'abc'
    """
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"a port is a number, not {text.strip()!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"a port is between 1 and 65535, not {port}")
    return port
