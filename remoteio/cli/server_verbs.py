"""The verbs that run on the server's side: serve, demo, token, tls-cert, check-config."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from ..settings import BACKEND_NAMES, DEFAULT_PORT, DISCONNECT_POLICIES, LOG_LEVELS, MODES
from .common import EXIT_CONNECT, EXIT_OK, EXIT_USAGE, NoTokenOption, examples


def _serve(args: argparse.Namespace) -> int:
    from ..server.config import ConfigError
    from ..server.backends import BackendUnavailable
    from ..server.daemon import Daemon
    from ..server.systemd import Notifier

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _serve_config(args)
        for name, path in (("tls_cert", config.tls_cert), ("tls_key", config.tls_key),
                           ("tls_client_ca", config.tls_client_ca)):  # read at start: say which
            if path is not None:
                try:
                    open(path, "rb").close()
                except OSError as exc:
                    raise ConfigError(f"cannot read {name} {path}: {exc.strerror or exc}") from None
    except (ConfigError, OSError) as exc:
        print(f"remoteio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    notifier = Notifier()
    if config.mqtt is not None:  # the bridge runs in this daemon (docs/mqtt.md)
        from ..bridges.mqtt import require_paho
        try:
            require_paho()
        except RuntimeError as exc:
            print(f"remoteio: [mqtt]: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        from ..server.app import Server
        server = Server.from_config(config, on_housekeeping=notifier.housekeeping)
    except BackendUnavailable as exc:
        print(f"remoteio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as exc:
        print(f"remoteio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    daemon = Daemon(server, config=config, notifier=notifier,
                    load=(lambda: _serve_config(args)) if args.config else None)
    bridge = None
    try:
        if config.mqtt is not None:
            from ..bridges.mqtt import local_bridge
            bridge = local_bridge(server.start(), config.mqtt)
        daemon.run()
    except OSError as exc:
        print(f"remoteio: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return EXIT_CONNECT
    finally:
        if bridge is not None:
            bridge.stop()
    return EXIT_OK


def listen_port(text: str) -> int:
    """argparse ``type=`` for serve's --port: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number, not {text!r}") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"a port to serve on is between 0 and 65535, not {port}")
    return port


def _serve_config(args: argparse.Namespace):  # -> ServerConfig
    """The configuration file (if any) with the command line's options over it;
    read again on SIGHUP."""
    from ..server.config import ServerConfig, load_config
    config = load_config(args.config) if args.config else ServerConfig()
    overrides = {
        "host": args.host, "port": args.port, "mode": args.mode,
        "backend": "sim" if args.sim else args.backend, "chip": args.chip,
        "revision": args.revision, "on_disconnect": args.on_disconnect,
        "tls_cert": args.tls_cert, "tls_key": args.tls_key, "tls_client_ca": args.tls_client_ca,
        "advertise": False if args.no_advertise else None,
        "realtime_priority": args.realtime_priority,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    if args.token_file:
        config.token, config.token_file = None, args.token_file
    elif os.environ.get("REMOTEIO_TOKEN") is not None and not (config.token or config.token_file):
        config.token = os.environ["REMOTEIO_TOKEN"]  # blank or short: refused by Server
    return config


def _token(args: argparse.Namespace) -> int:
    from ..tokens import generate_token, write_token_file
    if args.file:
        if os.path.exists(args.file) and not args.force:
            print(f"remoteio: {args.file} exists (--force replaces it)", file=sys.stderr)
            return EXIT_USAGE
        write_token_file(args.file)
        print(f"wrote a new token to {args.file} (mode 600)")
    else:
        print(generate_token())
    return EXIT_OK


def _tls_cert(args: argparse.Namespace) -> int:
    import socket
    from ..tls import generate_self_signed
    names = args.name or [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    existing = [path for path in (args.cert, args.key) if os.path.exists(path)]
    if existing and not args.force:  # a new key: every client that pinned the old one fails
        print(f"remoteio: {' and '.join(existing)} exist{'s' if len(existing) == 1 else ''} "
              "(--force replaces them; clients that pinned the old fingerprint must pin the new)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.days < 1:
        print(f"remoteio: --days is at least 1, not {args.days}", file=sys.stderr)
        return EXIT_USAGE
    try:
        fingerprint = generate_self_signed(args.cert, args.key, names, days=args.days)
    except RuntimeError as exc:
        print(f"remoteio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"certificate: {args.cert}\nkey:         {args.key} (mode 600)\n"
          f"names:       {', '.join(names)}\nfingerprint: {fingerprint}\n\n"
          f"Clients pin it with RemoteServer(host, fingerprint=\"{fingerprint}\")\n"
          f"or REMOTEIO_FINGERPRINT={fingerprint}")
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from ..server.config import ConfigError, load_config
    try:
        config = load_config(args.file)
    except (ConfigError, OSError) as exc:
        print(f"remoteio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.token_file:  # the token serve would read: a weak one is refused here too
        from ..tokens import check_token, read_token_file
        try:
            check_token(read_token_file(config.token_file), f"the token in {config.token_file}")
        except ValueError as exc:
            print(f"remoteio: {args.file}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:  # another user's file, or a staged root: serve reads it at start
            if not args.json:
                print(f"remoteio: warning: {args.file}: token_file {config.token_file} cannot be "
                      f"read here ({exc.strerror or exc}); serve reads it when it starts",
                      file=sys.stderr)
    if args.json:  # what install.sh reads (the token itself is never printed)
        settings = dataclasses.asdict(config)
        settings["token"] = None
        # a token is required: given inline, or in token_file (read when the server starts)
        settings["token_set"] = config.token is not None or config.token_file is not None
        if settings.get("mqtt"):  # nor the broker's password
            settings["mqtt"]["password_set"] = settings["mqtt"].pop("password", None) is not None
        settings["pins"] = {str(board): rule for board, rule in settings["pins"].items()}
        print(json.dumps(settings, sort_keys=True))
        return EXIT_OK
    mqtt = config.mqtt
    bridge = (f"; MQTT bridge to {mqtt.broker}:{mqtt.broker_port} as "
              f"{mqtt.prefix}/{mqtt.completed().node}, "
              f"{len(mqtt.pins)} pin{'s' if len(mqtt.pins) != 1 else ''}") if mqtt else ""
    print(f"{args.file}: ok ({config.host} port {config.port}, mode {config.mode}, "
          f"{len(config.pins)} pin rule{'s' if len(config.pins) != 1 else ''}{bridge})")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    logging.basicConfig(level=logging.WARNING)
    return run_demo(mode=args.mode)


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    serve = verbs.add_parser(
        "serve", help="serve this machine's pins (a simulated board off a Pi)",
        description="Serve this machine's GPIO pins until SIGTERM or Ctrl-C; every pin is "
                    "made safe on the way out. Logs go to standard error (journald). "
                    "SIGHUP re-reads the pin rules and the token of --config FILE without "
                    "dropping clients. Under systemd (Type=notify) it says READY=1 once it "
                    "listens and feeds the unit's watchdog.",
        epilog=examples(
            "remoteio serve",
            "remoteio serve --port 1234 --mode nowait",
            "remoteio serve --sim --host 127.0.0.1",
            "remoteio serve --config /etc/remoteio/remoteio.toml",
            "remoteio serve --backend lgpio --chip 0 --revision d04170   (a non-Pi board)"))
    serve.add_argument("--config", metavar="FILE",
                       help="a TOML configuration file (remoteio docs security); options given "
                            "here win")
    serve.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=listen_port, metavar="N",
                       help=f"TCP port (default {DEFAULT_PORT}; 0 picks one)")
    serve.add_argument("--mode", choices=MODES,
                       help="wait: tasks on a pin run in order; nowait: a new task cuts the "
                            "running one short (default wait)")
    serve.add_argument("--backend", choices=BACKEND_NAMES,
                       help="what drives the pins (default auto: gpiod, lgpio, RPi.GPIO, then sim)")
    serve.add_argument("--token", dest="no_token", action=NoTokenOption)
    serve.add_argument("--token-file", metavar="FILE",
                       help="require clients to prove they know the token in FILE "
                            "(or set REMOTEIO_TOKEN)")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve TLS with this certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="...and this private key")
    serve.add_argument("--tls-client-ca", metavar="FILE",
                       help="require client certificates signed by this CA (mutual TLS)")
    serve.add_argument("--sim", action="store_true", help="same as --backend sim")
    serve.add_argument("--chip", type=int, default=None, help="gpiochip number (gpiod and lgpio backends)")
    serve.add_argument("--revision", default=None,
                       help="Raspberry Pi board revision code in hex, for boards that do not say")
    serve.add_argument("--on-disconnect", choices=DISCONNECT_POLICIES,
                       help="when a client vanishes: finish its queued work, or make its pins "
                            "safe at once (default finish)")
    serve.add_argument("--realtime-priority", type=int, metavar="N", default=None,
                       help="run the pin workers SCHED_FIFO at priority N (1..99; needs "
                            "CAP_SYS_NICE or LimitRTPRIO: remoteio docs install)")
    serve.add_argument("--no-advertise", action="store_true",
                       help="do not advertise this server on the LAN (mDNS, remoteio docs discovery); "
                            "a server on a loopback address never is")
    serve.add_argument("--log-level", default="info",
                       choices=LOG_LEVELS)
    serve.set_defaults(run=_serve)

    demo = verbs.add_parser(
        "demo", help="start a server on a simulated board and drive some pins",
        description="Start a server on the simulated board, connect a client, run a few "
                    "tasks and draw what the pins did.",
        epilog=examples("remoteio demo", "remoteio demo --mode nowait"))
    demo.add_argument("--mode", choices=MODES, default="wait",
                      help="the server's mode (default wait)")
    demo.set_defaults(run=_demo)

    token = verbs.add_parser(
        "token", help="make a new authentication token",
        description="Print a new random token, or write it to a file readable only by you.",
        epilog=examples("remoteio token", "remoteio token --file ~/.config/remoteio/token"))
    token.add_argument("--file", help="write it here (mode 600) instead of printing it")
    token.add_argument("--force", action="store_true", help="replace an existing file")
    token.set_defaults(run=_token)

    cert = verbs.add_parser(
        "tls-cert", help="make a self-signed TLS certificate for the server",
        description="Write a self-signed certificate and key (EC P-256) and print the "
                    "fingerprint clients pin.",
        epilog=examples(
            "remoteio tls-cert --cert cert.pem --key key.pem",
            "remoteio tls-cert --cert c.pem --key k.pem --name pi.local --name 192.168.1.38"))
    cert.add_argument("--cert", required=True, help="certificate file to write (PEM)")
    cert.add_argument("--key", required=True, help="private key file to write (PEM, mode 600)")
    cert.add_argument("--name", action="append",
                      help="a host name or IP address it is for (repeat; default: this host)")
    cert.add_argument("--days", type=int, default=3650, help="validity (default 3650)")
    cert.add_argument("--force", action="store_true",
                      help="replace an existing certificate and key")
    cert.set_defaults(run=_tls_cert)

    check = verbs.add_parser(
        "check-config", help="validate a server configuration file",
        description="Read a server configuration file and report the first mistake, with "
                    "its line.",
        epilog=examples("remoteio check-config /etc/remoteio/remoteio.toml",
                        "remoteio check-config remoteio.toml --json"))
    check.add_argument("file")
    check.add_argument("--json", action="store_true",
                       help="print every setting as JSON (the token itself left out)")
    check.set_defaults(run=_check_config)
