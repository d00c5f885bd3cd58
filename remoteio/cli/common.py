"""What every verb of the ``remoteio`` command shares: exit codes, one-line
errors, pin and value parsing, and the connection to a server.

A value the user typed is checked here, before anything is sent, with the
same validators the server uses (remoteio/protocol/fields.py): a mistake is
a usage error (exit 2), never a half-done operation.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
import textwrap
from typing import Any, Callable, Iterator, List, Optional

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8509


class UsageError(Exception):
    """Something the user typed (or set in the environment) is wrong: exit 2."""


class ArgParser(argparse.ArgumentParser):
    """argparse, with errors on one line and examples kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if kwargs.get("description"):  # paragraphs filled here; epilogs kept as written
            kwargs["description"] = "\n\n".join(
                textwrap.fill(paragraph, 79) for paragraph in kwargs["description"].split("\n\n"))
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def examples(*lines: Any) -> str:
    """An epilog: ``examples:`` and one line per example, each a command or a
    ``(command, what it does)`` pair (the notes aligned)."""
    pairs = [line if isinstance(line, tuple) else (line, "") for line in lines]
    width = max(len(command) for command, note in pairs if note) if any(
        note for _, note in pairs) else 0
    return "examples:\n" + "".join(
        f"  {command.ljust(width)}  {note}\n" if note else f"  {command}\n"
        for command, note in pairs)


def fail(message: str) -> None:
    print(f"remoteio: {message}", file=sys.stderr)


# ---- pins and values --------------------------------------------------------------
def parse_pin(spec: str) -> int:
    """A board number from ``7``, ``b7``, ``g4``, ``BOARD7``, ``GPIO4``... (UsageError)."""
    from ..errors import BadPin
    from ..pins import board_pin
    try:
        return board_pin(spec)
    except BadPin as exc:
        raise UsageError(str(exc)) from None


def pin_arg(text: str) -> int:
    """argparse ``type=`` for one pin: a bad pin is a usage error (exit 2)."""
    try:
        return parse_pin(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def unique(boards: List[int]) -> List[int]:
    """The pins, each once (UsageError if one is named twice)."""
    for n, board in enumerate(boards):
        if board in boards[:n]:
            raise UsageError(f"BOARD{board} is named twice")
    return boards


def pin_name(board: int) -> str:
    from ..pins import describe
    return describe(board)


def checked(validator: Callable[[str, Any], Any], name: str,
            convert: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """An argparse ``type=``: convert the text, then check it as the server would."""
    from ..errors import BadArgument

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}") from None
        try:
            return validator(name, value)
        except BadArgument as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name  # argparse names the type in some messages
    return parse


def duration_ms(name: str) -> Callable[[str], float]:
    from ..protocol import fields
    return checked(fields.duration_ms(), name)


def phase_s(name: str, allow_zero: bool = False) -> Callable[[str], float]:
    from ..protocol import fields
    make = fields.zero_or_seconds if allow_zero else fields.seconds
    return checked(make(fields.MIN_PHASE_S), name)


def level(text: str) -> float:
    from ..protocol import fields
    return checked(fields.fraction, "level")(text)


def positive(name: str, integer: bool = False) -> Callable[[str], Any]:
    def check(_: str, value: Any) -> Any:
        from ..errors import BadArgument
        if not (math.isfinite(value) and value > 0):
            raise BadArgument(f"{name} must be more than 0, not {value:g}")
        return value
    return checked(check, name, int if integer else float)


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number, not {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, not {port}")
    return port


# ---- the connection ----------------------------------------------------------------
def add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection", textwrap.fill(
            "the server to talk to; authentication and TLS also come from the environment "
            "and the usual token files (docs/cli.md)", 77))
    group.add_argument("--host", help="the server (default $REMOTEIO_HOST, else localhost)")
    group.add_argument("--port", type=port_number,
                       help=f"its port (default $REMOTEIO_PORT, else {DEFAULT_PORT})")
    group.add_argument("--timeout", type=positive("timeout"), default=5.0, metavar="S",
                       help="seconds to wait for the server to answer (default 5)")
    group.add_argument("--token-file", metavar="FILE",
                       help="the token to authenticate with (default: $REMOTEIO_TOKEN, "
                            "$REMOTEIO_TOKEN_FILE, ~/.config/remoteio/token, /etc/remoteio/token)")
    group.add_argument("--tls", action="store_true", default=None,
                       help="use TLS, verified against the system's CA store "
                            "(implied by --fingerprint, --cafile, --tofu; or $REMOTEIO_TLS=1)")
    group.add_argument("--fingerprint", metavar="SHA256",
                       help="use TLS and pin the server's certificate (default "
                            "$REMOTEIO_FINGERPRINT; `remoteio tls-cert` prints it)")
    group.add_argument("--cafile", metavar="FILE",
                       help="use TLS and verify the server with this CA file "
                            "(default $REMOTEIO_CAFILE)")
    group.add_argument("--tofu", action="store_true",
                       help="use TLS and trust the server's certificate on first use "
                            "(kept in ~/.config/remoteio/known_hosts)")


def server_address(args: argparse.Namespace) -> tuple:
    host = args.host or os.environ.get("REMOTEIO_HOST") or DEFAULT_HOST
    port = args.port
    if port is None:
        text = os.environ.get("REMOTEIO_PORT", "").strip()
        try:
            port = port_number(text) if text else DEFAULT_PORT
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"REMOTEIO_PORT: {exc}") from None
    return host, port


def connect(args: argparse.Namespace, *, long_lived: bool = False, reconnect: bool = False) -> Any:
    """A :class:`~remoteio.RemoteServer` for one command: no reconnects (unless
    *reconnect*: ``remoteio mqtt``). A command that stays (``--hold``,
    ``watch``) announces a heartbeat, so each side notices if the other vanishes."""
    from ..client import RemoteServer
    from ..tls import normalize_fingerprint
    from ..tokens import read_token_file
    host, port = server_address(args)
    token = None
    if args.token_file:
        try:
            token = read_token_file(args.token_file)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the token: {exc}") from None
    fingerprint = args.fingerprint or os.environ.get("REMOTEIO_FINGERPRINT") or None
    if fingerprint:
        try:
            normalize_fingerprint(fingerprint)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    cafile = args.cafile or os.environ.get("REMOTEIO_CAFILE") or None
    if cafile and not os.path.isfile(cafile):
        raise UsageError(f"no CA file {cafile}")
    try:
        return RemoteServer(host, port, timeout=args.timeout, token=token,
                            tls=True if args.tls else None, fingerprint=fingerprint,
                            cafile=cafile, tofu=args.tofu,
                            heartbeat=5.0 if long_lived or reconnect else 0,
                            reconnect=reconnect)
    except OSError as exc:  # REMOTEIO_TOKEN_FILE or a token file that cannot be read
        if isinstance(exc, ConnectionError):
            raise
        raise UsageError(f"cannot read the token: {exc}") from None


def close_quickly(remote: Any) -> None:
    """Close after Ctrl-C: do not wait long for replies (a sync may be pending)."""
    remote.close(timeout=min(remote.timeout, 0.2))


@contextlib.contextmanager
def command_settings() -> Iterator[None]:
    """For the time of a command: SIGTERM ends it like Ctrl-C does (cleanly,
    exit 0); warnings come on one line (a token file others can read) and the
    command itself reports a lost connection. Put back afterwards, for callers
    of main() in a longer-lived process."""
    handler = None
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("remoteio: warning: %(message)s"))
        logging.getLogger("remoteio").addHandler(handler)
    client_log = logging.getLogger("remoteio.client")
    level = client_log.level
    client_log.setLevel(logging.ERROR)
    previous = None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except (ValueError, AttributeError):  # not the main thread; no SIGTERM here
        pass
    try:
        yield
    finally:
        client_log.setLevel(level)
        if handler is not None:
            logging.getLogger("remoteio").removeHandler(handler)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def client_verb(function: Callable[..., int], *, long_lived: Any = False,
                check: Optional[Callable[[argparse.Namespace], None]] = None) -> Callable[..., int]:
    """Run *function(args, remote)* with a connection that is always closed;
    *check(args)* first (it raises UsageError before anything is sent)."""
    def run(args: argparse.Namespace) -> int:
        if check is not None:
            check(args)
        with command_settings():
            stays = long_lived(args) if callable(long_lived) else long_lived
            remote = connect(args, long_lived=stays)
            try:
                code = function(args, remote)
            except KeyboardInterrupt:
                close_quickly(remote)
                return EXIT_OK
            except BaseException:
                close_quickly(remote)
                raise
            remote.close()
            return code
    return run
