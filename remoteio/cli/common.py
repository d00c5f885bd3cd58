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
import re
import signal
import sys
import textwrap
from typing import Any, Callable, Dict, Iterator, List, Optional

from ..settings import DEFAULT_PORT, port_from_text
from ..errors import UsageError  # noqa: F401 (defined in errors.py)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3
DEFAULT_HOST = "localhost"


class ArgParser(argparse.ArgumentParser):
    """argparse, with errors on one line and examples kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if kwargs.get("description"):  # paragraphs filled here; epilogs kept as written
            kwargs["description"] = "\n\n".join(
                textwrap.fill(paragraph, 79) for paragraph in kwargs["description"].split("\n\n"))
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        argv = getattr(self, "_argv", [])
        hint = did_you_mean(self, message, argv)
        # the top parser reports a command's extra words: point at that command's help
        prog = _command(self, argv).prog if "unrecognized arguments" in message else self.prog
        self.exit(EXIT_USAGE, f"{prog}: {message}{hint} (see '{prog} --help')\n")


def _command(parser: argparse.ArgumentParser, argv: List[str]) -> argparse.ArgumentParser:
    """The (sub)command *argv* names, walked down from *parser*."""
    for word in argv:
        sub = _subcommands(parser).get(word)
        if sub is not None:
            parser = sub
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def did_you_mean(parser: argparse.ArgumentParser, message: str, argv: List[str]) -> str:
    """``; did you mean 'read'?`` for a mistyped command or option, else ""."""
    import difflib
    bad = re.search(r"invalid choice: '?([^'\s]+)'?(?: \(choose from (.*)\))?", message)
    if bad:
        if bad.group(2):  # the argument's own choices (another option's would mislead)
            choices = re.findall(r"'([^']*)'", bad.group(2))
        else:
            choices = [str(c) for a in parser._actions if a.choices for c in a.choices]
        close = difflib.get_close_matches(bad.group(1), [c for c in choices if c != bad.group(1)], n=1)
        return f"; did you mean '{close[0]}'?" if close else ""
    if "unrecognized arguments" not in message:
        return ""
    current, options = parser, set(parser._option_string_actions)
    for word in argv:   # the command (and its action) the options were meant for
        sub = _subcommands(current).get(word)
        if sub is not None:
            current = sub
            options |= set(sub._option_string_actions)
    for word in message.split(":", 1)[1].split():
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            # by the names without their dashes (which every option shares); never itself
            close = difflib.get_close_matches(name[2:], sorted(o[2:] for o in options
                                                               if o.startswith("--") and o != name), n=1)
            if close:
                return f"; did you mean --{close[0]}?"
    return ""


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


def any_pin_arg(text: str) -> Any:
    """:func:`pin_arg`, or an expander pin's name (``mcp0:A3``, docs/expanders.md)."""
    from ..errors import BadPin
    from ..pins import pin_key
    try:
        return pin_key(text)
    except BadPin as exc:
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


def held_pins(info: Dict[str, Any]) -> Dict[int, str]:
    """The header pins a bus, a serial port or an expander's worker holds,
    each with what holds it ("I2C bus 1"), from an ``info`` reply's ``held``."""
    return {entry["pin"]: entry["by"] for entry in info.get("held", [])}


def without_held(remote: Any, boards: List[int]) -> List[int]:
    """*boards* (a list with ``all`` in it) less the pins held as
    :func:`held_pins` says, with a note on standard error of what was left out."""
    held = held_pins(remote.info())
    left_out = [board for board in boards if board in held]
    if left_out:
        print("remoteio: note: leaving out " + ", ".join(
            f"{pin_name(board)} (held by {held[board]})" for board in left_out), file=sys.stderr)
    return [board for board in boards if board not in held]


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
        return port_from_text(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ---- the connection ----------------------------------------------------------------
#: the connection options' names (their dests); also taken before the command
CONNECTION_OPTIONS = ("host", "port", "timeout", "token_file", "without_token", "tls", "fingerprint",
                      "cafile", "tofu")
DEFAULT_TIMEOUT = 5.0


class NoTokenOption(argparse.Action):
    """``--token``: refused with its reason, its value never echoed. Without
    it argparse would read ``--token SECRET`` as ``--token-file SECRET`` and
    quote the secret in its error; and a command line is visible to every
    user of the machine (``ps``), so a token never goes on one."""

    def __init__(self, option_strings: List[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        parser.error("there is deliberately no --token option: a command line is visible to "
                     "every user of the machine (ps); use --token-file FILE or $REMOTEIO_TOKEN")


class NoPasswordOption(NoTokenOption):
    """``--password`` (the MQTT broker's), refused as ``--token`` is."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Optional[str] = None) -> None:
        parser.error("there is deliberately no --password option: a command line is visible "
                     "to every user of the machine (ps); use --password-file FILE or "
                     "$REMOTEIO_MQTT_PASSWORD")


def add_connection_options(parser: argparse.ArgumentParser, *, before_command: bool = False) -> None:
    """The options of every client verb; with *before_command*, the same on
    the top-level parser (``remoteio --host pi.local info``), kept apart as
    ``top_*`` until :func:`merge_connection_options`."""
    prefix = "top_" if before_command else ""
    group = parser.add_argument_group(
        "connection" + (" (before or after the command)" if before_command else ""),
        textwrap.fill(
            "the server to talk to; authentication and TLS also come from the environment "
            "and the usual token files (remoteio docs cli)", 77))
    group.add_argument("--host", dest=prefix + "host", metavar="HOST",
                       help="the server (default $REMOTEIO_HOST, else localhost)")
    group.add_argument("--port", dest=prefix + "port", type=port_number, metavar="N",
                       help=f"its port (default $REMOTEIO_PORT, else {DEFAULT_PORT})")
    group.add_argument("--timeout", dest=prefix + "timeout", type=positive("timeout"),
                       metavar="S", help="seconds to wait for the server to answer (default 5)")
    group.add_argument("--token-file", dest=prefix + "token_file", metavar="FILE",
                       help="the token to authenticate with (default: $REMOTEIO_TOKEN, "
                            "$REMOTEIO_TOKEN_FILE, ~/.config/remoteio/token, /etc/remoteio/token)")
    group.add_argument("--no-token", dest=prefix + "without_token", action="store_true", default=None,
                       help="use no token, even one found in the environment or a token file: "
                            "for a server without authentication (a client with a token "
                            "refuses a server that asks for none)")
    group.add_argument("--token", dest=prefix + "no_token", action=NoTokenOption)
    group.add_argument("--tls", dest=prefix + "tls", action="store_true", default=None,
                       help="use TLS, verified against the system's CA store "
                            "(implied by --fingerprint, --cafile, --tofu; or $REMOTEIO_TLS=1)")
    group.add_argument("--fingerprint", dest=prefix + "fingerprint", metavar="SHA256",
                       help="use TLS and pin the server's certificate (default "
                            "$REMOTEIO_FINGERPRINT; `remoteio tls-cert` prints it)")
    group.add_argument("--cafile", dest=prefix + "cafile", metavar="FILE",
                       help="use TLS and verify the server with this CA file "
                            "(default $REMOTEIO_CAFILE)")
    group.add_argument("--tofu", dest=prefix + "tofu", action="store_true", default=None,
                       help="use TLS and trust the server's certificate on first use "
                            "(kept in ~/.config/remoteio/known_hosts)")


def merge_connection_options(args: argparse.Namespace) -> None:
    """Connection options given before the command count as if given after
    it (after it wins); before a command that has no such option they are a
    usage error. ``serve`` takes --host, --port and --token-file as its own."""
    for name in CONNECTION_OPTIONS:
        value = getattr(args, "top_" + name, None)
        if value is None:
            continue
        if not hasattr(args, name):
            raise UsageError(f"--{name.replace('_', '-')} goes with the commands that talk to "
                             f"a server, not '{args.verb}'")
        if getattr(args, name) in (None, False):
            setattr(args, name, value)


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
    from ..client.client import RemoteServer
    from ..tls import normalize_fingerprint
    from ..tokens import read_token_file
    host, port = server_address(args)
    token: Any = None
    if args.without_token:
        if args.token_file:
            raise UsageError("--no-token and --token-file: give one or the other")
        token = False
    elif args.token_file:
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
        return RemoteServer(host, port, timeout=args.timeout or DEFAULT_TIMEOUT, token=token,
                            tls=True if args.tls else None, fingerprint=fingerprint,
                            cafile=cafile, tofu=bool(args.tofu),
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
    exit 0), and the first of either ends it: a second one, while the first
    unwinds (closing the connection), is ignored (raised inside threading's
    own lock handling it would break it: "release unlocked lock"); warnings
    come on one line (a token file others can read) and the command itself
    reports a lost connection. Put back afterwards, for callers of main() in a
    longer-lived process."""
    handler = None
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("remoteio: warning: %(message)s"))
        logging.getLogger("remoteio").addHandler(handler)
    client_log = logging.getLogger("remoteio.client")
    level = client_log.level
    client_log.setLevel(logging.ERROR)
    previous: dict = {}

    def interrupt(signum: int, frame: Any) -> None:
        for number in previous:
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt
    try:
        for number in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(number) is not signal.SIG_IGN:  # a background job's stays so
                previous[number] = signal.signal(number, interrupt)
    except (ValueError, AttributeError):  # not the main thread; no SIGTERM here
        pass
    try:
        yield
    finally:
        client_log.setLevel(level)
        if handler is not None:
            logging.getLogger("remoteio").removeHandler(handler)
        for number, earlier in previous.items():
            signal.signal(number, earlier)


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
