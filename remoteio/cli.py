"""The ``remoteio`` command.

Exit codes: 0 ok, 1 the server refused an operation, 2 usage error,
3 cannot connect.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from ._version import __version__

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3


def _serve(args: argparse.Namespace) -> int:
    from .server import run_server
    from .server.backends import BackendUnavailable, parse_revision

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    backend = "sim" if args.sim else args.backend
    try:
        run_server(port=args.port, mode=args.mode, host=args.host, backend=backend,
                   revision=parse_revision(args.revision), chip=args.chip,
                   disconnect_policy=args.on_disconnect)
    except BackendUnavailable as exc:
        print(f"remoteio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"remoteio: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    logging.basicConfig(level=logging.WARNING)
    return run_demo(mode=args.mode)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remoteio",
        description="Remote control of Raspberry Pi GPIO pins over the network.",
        epilog="examples:\n"
               "  remoteio demo                      try it on a simulated board\n"
               "  remoteio serve                     serve this Pi's pins on port 8509\n"
               "  remoteio serve --sim --port 1234   serve a simulated board\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"remoteio {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")

    serve = verbs.add_parser(
        "serve", help="serve this machine's pins (a simulated board off a Pi)",
        description="Serve this machine's GPIO pins until SIGTERM or Ctrl-C; every pin is "
                    "made safe on the way out. Logs go to standard error (journald).",
        epilog="examples:\n"
               "  remoteio serve\n"
               "  remoteio serve --port 1234 --mode nowait\n"
               "  remoteio serve --sim --host 127.0.0.1\n"
               "  remoteio serve --backend lgpio --chip 0 --revision d04170   (a non-Pi board)\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=8509, help="TCP port (default 8509; 0 picks one)")
    serve.add_argument("--mode", choices=("wait", "nowait"), default="wait",
                       help="wait: tasks on a pin run in order; nowait: a new task cuts the "
                            "running one short (default wait)")
    serve.add_argument("--backend", choices=("auto", "sim", "lgpio", "rpigpio"), default="auto",
                       help="what drives the pins (default auto: lgpio, RPi.GPIO, then sim)")
    serve.add_argument("--sim", action="store_true", help="same as --backend sim")
    serve.add_argument("--chip", type=int, default=None, help="gpiochip number (lgpio backend)")
    serve.add_argument("--revision", default=None,
                       help="Raspberry Pi board revision code in hex, for boards that do not say")
    serve.add_argument("--on-disconnect", choices=("finish", "safe"), default="finish",
                       help="when a client vanishes: finish its queued work, or make its pins "
                            "safe at once (default finish)")
    serve.add_argument("--log-level", default="info",
                       choices=("debug", "info", "warning", "error"))
    serve.set_defaults(run=_serve)

    demo = verbs.add_parser(
        "demo", help="start a server on a simulated board and drive some pins",
        description="Start a server on the simulated board, connect a client, run a few "
                    "tasks and draw what the pins did.",
        epilog="examples:\n  remoteio demo\n  remoteio demo --mode nowait\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--mode", choices=("wait", "nowait"), default="wait",
                      help="the server's mode (default wait)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
