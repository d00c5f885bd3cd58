"""The ``remoteio`` command (docs/cli.md; ``remoteio docs cli``).

Exit codes: 0 ok, 1 the server refused an operation, 2 usage error,
3 cannot connect (or the connection was lost, or the server did not answer).

The verbs live in: server_verbs.py (serve, demo, token, tls-cert,
check-config), output_verbs.py (on, off, value, blink, pulse), query_verbs.py
(read, input, info, state, ping), watch_verb.py (watch), header_verb.py
(pins), sim_verbs.py (sim ...), docs_verb.py (docs, systemd-unit),
bridge_verbs.py (mqtt, discover); common.py has what they share, pinlist.py
pin lists, output.py how things are shown.
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional

from .._version import __version__
from . import (bridge_verbs, docs_verb, header_verb, output_verbs, query_verbs, server_verbs,
               sim_verbs, watch_verb)
from .common import (EXIT_CONNECT, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, ArgParser, UsageError,
                     add_connection_options, examples, fail, merge_connection_options)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "EXIT_CONNECT"]

_EPILOG = examples(
    "remoteio demo                       try it all on a simulated board",
    "remoteio serve                      serve this Pi's pins on port 8509",
    "remoteio serve --sim --port 1234    serve a simulated board",
    "remoteio on 7 --time-ms 2000        BOARD7 on for 2 s (timed on the Pi)",
    "remoteio blink GPIO4                blink until Ctrl-C",
    "remoteio read 11 13                 read two pins",
    "remoteio read all                   read every GPIO of the header",
    "remoteio watch 11 --pull up         print each press of a button",
    "remoteio pins                       the whole header: names, functions, levels",
    "remoteio --host pi.local info       the server and its pins in use",
    "remoteio docs cli                   the command's manual (remoteio docs lists all)",
    "remoteio discover                   the remoteio servers on the LAN",
    "remoteio mqtt --switch 7            BOARD7 on an MQTT broker, in Home Assistant",
) + """
pins: 7, b7, BOARD7, J8:7 (board numbers, the default) or g4, GPIO4, BCM4;
  lists 7,11,13, ranges 9-11 or GPIO9-11, and all, where a command takes pins.

environment: REMOTEIO_HOST, REMOTEIO_PORT (the server; default localhost:8509),
  REMOTEIO_TOKEN or REMOTEIO_TOKEN_FILE (else ~/.config/remoteio/token, then
  /etc/remoteio/token), REMOTEIO_FINGERPRINT, REMOTEIO_CAFILE, REMOTEIO_TLS=1.

exit codes: 0 ok, 1 the server refused (the reason is printed), 2 usage error,
  3 cannot connect (or the connection was lost). `remoteio COMMAND --help` for more;
  `remoteio docs cli` for everything (the documentation comes with the package).
"""


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="remoteio",
        description="Remote control of Raspberry Pi GPIO pins over the network: serve a "
                    "Pi's pins, or drive, read and watch them from anywhere.",
        epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"remoteio {__version__}")
    add_connection_options(parser, before_command=True)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=ArgParser)
    output_verbs.add_parsers(verbs)
    query_verbs.add_parsers(verbs)
    watch_verb.add_parsers(verbs)
    header_verb.add_parsers(verbs)
    sim_verbs.add_parsers(verbs)
    server_verbs.add_parsers(verbs)
    docs_verb.add_parsers(verbs)
    bridge_verbs.add_parsers(verbs)
    return parser


def _refusal(exc: Exception) -> str:
    from ..errors import AuthRequired
    if isinstance(exc, AuthRequired) and "needs a token" in str(exc):
        where = str(exc).split(" needs a token", 1)[0]
        return (f"{where} needs a token: use --token-file FILE, set REMOTEIO_TOKEN or "
                "REMOTEIO_TOKEN_FILE, or put it in ~/.config/remoteio/token")
    return str(exc) or getattr(exc, "code", type(exc).__name__)


def main(argv: Optional[List[str]] = None) -> int:
    from ..errors import LinkError, RemoteIOError, ServerError, ShuttingDown
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        merge_connection_options(args)
        return args.run(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except UsageError as exc:
        fail(str(exc))
        return EXIT_USAGE
    except LinkError as exc:           # before OSError: a LinkError is a ConnectionError
        fail(str(exc) or type(exc).__name__)
        return EXIT_CONNECT
    except ShuttingDown as exc:        # the server going away, as a lost connection is
        fail(f"lost the connection ({exc})")
        return EXIT_CONNECT
    except ServerError as exc:         # before ValueError: BadPin, BadArgument are both
        fail(_refusal(exc))
        return EXIT_REFUSED
    except RemoteIOError as exc:
        fail(str(exc))
        return EXIT_REFUSED
    except BrokenPipeError:            # `remoteio watch 11 | head -1`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except ValueError as exc:
        fail(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        fail(str(exc))
        return EXIT_CONNECT


if __name__ == "__main__":
    sys.exit(main())
