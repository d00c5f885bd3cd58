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
