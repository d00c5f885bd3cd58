"""mqtt, discover: a server's pins on an MQTT broker, and servers on the LAN."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import sys
from dataclasses import fields as dataclass_fields
from typing import Any, Dict

from ..settings import LOG_LEVELS
from . import output
from .common import (EXIT_CONNECT, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, NoPasswordOption,
                     UsageError, add_connection_options, connect, examples, pin_arg, port_number,
                     positive, server_address)

ENTITY_OPTIONS = (("switch", "switch"), ("light", "light"), ("binary_sensor", "binary-sensor"),
                  ("button", "button"))


def _settings(args: argparse.Namespace) -> Any:
    """The bridge's settings: the file's [mqtt] table, then the options."""
    from ..bridges.settings import SLUG, MqttSettings, PinSettings, slug
    from ..server.config import ConfigError, load_config
    values: Dict[str, Any] = {}
    pins: Dict[int, Any] = {}
    if args.config:
        try:
            config = load_config(args.config)
        except (ConfigError, OSError) as exc:
            raise UsageError(str(exc)) from None
        if config.mqtt is None:
            raise UsageError(f"{args.config} has no [mqtt] section (remoteio docs mqtt)")
        values = {f.name: getattr(config.mqtt, f.name) for f in dataclass_fields(config.mqtt)}
        pins = dict(values.pop("pins"))
    options = {"broker": args.broker, "port": args.broker_port, "username": args.username,
               "password_file": args.password_file, "cafile": args.broker_cafile,
               "prefix": args.prefix, "node": args.node, "discovery_prefix": args.discovery_prefix}
    values.update({k: v for k, v in options.items() if v is not None})
    if args.broker_tls or args.broker_cafile:
        values["tls"] = True
    if args.no_discovery:
        values["discovery"] = False
    password = os.environ.get("REMOTEIO_MQTT_PASSWORD")
    if password and not values.get("password_file"):
        values["password"] = password
    for entity, option in ENTITY_OPTIONS:
        for board in getattr(args, entity) or ():
            if board in pins:
                raise UsageError(f"BOARD{board} is given twice")
            pins[board] = PinSettings(board, entity=entity, id=f"pin{board}", name=f"Pin {board}")
    if not pins:
        raise UsageError("no pins to bridge: give --switch/--light/--binary-sensor/--button PIN "
                         "or a --config FILE with [mqtt.pins.N] tables")
    host = server_address(args)[0]
    local = host in ("localhost", "127.0.0.1", "::1")
    server_name = "" if local else slug(host if host[:1].isdigit() else host.split(".")[0])
    for key in ("node", "prefix", "discovery_prefix"):
        value = values.get(key)
        if value and not all(SLUG.match(level) for level in value.split("/")):
            raise UsageError(f"--{key.replace('_', '-')}: letters, digits, _ and - only, "
                             f"not {value!r}")
    return MqttSettings(**values, pins=pins).completed(server_name)


def _mqtt(args: argparse.Namespace) -> int:
    from ..bridges.mqtt import MqttBridge, require_paho
    from ..errors import AuthFailed, AuthRequired, LinkError
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(args)
    try:
        require_paho()
        settings.read_password()
    except (RuntimeError, OSError) as exc:
        raise UsageError(str(exc)) from None

    # SIGTERM only sets an event: an exception raised into the middle of a
    # lock's wait or of the bridge's shutdown could leave the process hanging
    asked = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: asked.set())
    bridge = MqttBridge(settings, lambda: connect(args, reconnect=True)).start()
    try:
        while not (asked.wait(0.5) or bridge.finished.is_set()):
            pass  # until the bridge fails, or Ctrl-C / SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        bridge.stop()
        signal.signal(signal.SIGTERM, previous)
    failure = bridge.failure
    if failure is None:
        return EXIT_OK
    if isinstance(failure, UsageError):
        raise failure
    print(f"remoteio: {failure}", file=sys.stderr)
    if isinstance(failure, (AuthFailed, AuthRequired)):
        return EXIT_REFUSED
    return EXIT_CONNECT if isinstance(failure, (LinkError, OSError)) else EXIT_USAGE


def _discover(args: argparse.Namespace) -> int:
    from ..client.client import RemoteServer
    try:
        servers = RemoteServer.discover(timeout=args.timeout, interfaces=args.interface)
    except RuntimeError as exc:  # zeroconf is not installed
        raise UsageError(str(exc)) from None
    if not servers:  # on standard error: `--json` output stays a list
        print(f"no remoteio server answered within {args.timeout:g} s", file=sys.stderr)
    if args.json:
        output.emit_json([server.as_dict() for server in servers])
        return EXIT_OK
    if not servers:
        return EXIT_OK
    rows = [("NAME", "ADDRESS", "VERSION", "BOARD", "AUTH", "TLS")] + [
        (s.name, f"{s.host}:{s.port}", s.version,
         s.board + (" (simulated)" if s.backend == "sim" else ""),
         "token" if s.auth else "none", "yes" if s.tls else "no") for s in servers]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        output.emit("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    mqtt = verbs.add_parser(
        "mqtt", help="bridge a server's pins to an MQTT broker (Home Assistant discovery)",
        description="Put a remoteio server's pins on an MQTT broker until Ctrl-C or SIGTERM: "
                    "commands on <prefix>/<node>/<pin>/set..., states as the Pi reports them, "
                    "availability with a Last Will, and Home Assistant discovery. The bridge is "
                    "a client of the server, so its pin rules, timing and leases apply. The "
                    "pins come from --config FILE ([mqtt.pins.N], remoteio docs mqtt) or the "
                    "--switch/--light/--binary-sensor/--button options.",
        epilog=examples(
            "remoteio mqtt --host pi.local --broker hass.local --switch 7 --binary-sensor 11",
            "remoteio mqtt --host pi.local --config bridge.toml      (names, icons, leases)",
            "remoteio mqtt --broker hass.local --username remoteio --password-file pw --light 12",
            "remoteio serve --config /etc/remoteio/remoteio.toml     (an [mqtt] section: same)"))
    add_connection_options(mqtt)
    broker = mqtt.add_argument_group("the broker")
    broker.add_argument("--config", metavar="FILE",
                        help="a TOML file with an [mqtt] section (the server's own works too)")
    broker.add_argument("--broker", metavar="HOST", help="the MQTT broker (default localhost)")
    broker.add_argument("--broker-port", type=port_number, metavar="N",
                        help="its port (default 1883, or 8883 with TLS)")
    broker.add_argument("--username", help="the broker's user name")
    broker.add_argument("--password", dest="no_password", action=NoPasswordOption)
    broker.add_argument("--password-file", metavar="FILE",
                        help="its password, the first line of FILE (or $REMOTEIO_MQTT_PASSWORD)")
    broker.add_argument("--broker-tls", action="store_true",
                        help="TLS to the broker, verified against the system's CA store")
    broker.add_argument("--broker-cafile", metavar="FILE",
                        help="TLS to the broker, verified with this CA file")
    broker.add_argument("--node", help="this Pi's name in topics and in Home Assistant "
                                       "(default: the server's host name)")
    broker.add_argument("--prefix", help="topic prefix (default remoteio)")
    broker.add_argument("--discovery-prefix", help="Home Assistant's (default homeassistant)")
    broker.add_argument("--no-discovery", action="store_true",
                        help="publish no Home Assistant discovery")
    pins = mqtt.add_argument_group("pins (repeat each option for more pins)")
    for entity, option in ENTITY_OPTIONS:
        pins.add_argument(f"--{option}", dest=entity, action="append", type=pin_arg,
                          metavar="PIN", help=f"bridge PIN as a {entity.replace('_', ' ')}")
    mqtt.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    mqtt.set_defaults(run=_mqtt)

    discover = verbs.add_parser(
        "discover", help="list the remoteio servers on the LAN (mDNS)",
        description="Browse the LAN for servers advertising _remoteio._tcp (mDNS / DNS-SD) "
                    "and list them with what their advertisement says: version, board, "
                    "whether they want a token and TLS (remoteio docs discovery).",
        epilog=examples("remoteio discover", "remoteio discover --timeout 5 --json",
                        "remoteio discover --interface 192.168.1.20"))
    discover.add_argument("--timeout", type=positive("timeout"), default=3.0, metavar="S",
                          help="how long to listen for answers (default 3)")
    discover.add_argument("--interface", action="append", metavar="ADDRESS",
                          help="browse only on the interface with this address (repeat)")
    discover.add_argument("--json", action="store_true", help="a JSON list")
    discover.set_defaults(run=_discover)
