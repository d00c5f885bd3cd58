"""read, input, watch, info, state, ping: looking at pins and at the server."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Dict, List, Optional

from . import output
from .common import (EXIT_OK, add_connection_options, checked, client_verb, examples,
                     held_pins, pin_arg, pin_name, positive, unique, without_held)
from .output_verbs import hold
from ..pins import BOARD_TO_BCM
from .pinlist import EveryPin, flatten, pins_arg

PULLS = ("up", "down", "none", "floating")
PIN_HELP = "7, b7, BOARD7 (board numbers) or g4, GPIO4"
PIN_LIST_HELP = PIN_HELP + "; a list 7,11,13, a range 9-11 or GPIO9-11, or all"


def _pull(text: Optional[str]) -> Optional[str]:
    return None if text in (None, "none", "floating") else text


def _check_pins(args: argparse.Namespace) -> None:
    args.every = any(isinstance(group, EveryPin) for group in args.pins)
    args.pins = unique(flatten(args.pins))


# ---- read, input -------------------------------------------------------------------
def _read(args: argparse.Namespace, remote: Any) -> int:
    if args.every:  # "all": not the pins a bus holds (their reads are refused)
        args.pins = without_held(remote, args.pins)
    values = remote.read_pins(args.pins) if args.pins else {}
    if args.json:
        output.emit_json({str(board): values[board] for board in args.pins})
    else:
        for board in args.pins:
            output.emit(f"{pin_name(board)}: {output.value(values[board])}")
    return EXIT_OK


def _input(args: argparse.Namespace, remote: Any) -> int:
    pin = remote.pin(args.pin).as_input(pull=_pull(args.pull), bounce_ms=args.bounce_ms)
    level = pin.read()
    pull = _pull(args.pull) or "floating"
    if args.json:
        output.emit_json({"pin": args.pin, "gpio": pin.gpio, "pull": pull,
                          "bounce_ms": args.bounce_ms, "value": level})
    else:
        output.emit(f"{pin_name(args.pin)}: {output.value(level)} (input, pull {pull})")
    if args.hold:
        print(f"{pin_name(args.pin)} is an input with pull {pull}: holding it until Ctrl-C",
              file=sys.stderr, flush=True)
        hold(remote, None)
    return EXIT_OK


# ---- info, state ---------------------------------------------------------------------
def _states(remote: Any, boards: List[int], owners: Dict[int, Any],
            fallback: Dict[int, Dict[str, Any]],
            held: Dict[int, str]) -> List[Dict[str, Any]]:
    """``state`` of each pin; a pin whose state is refused (a pin rule) keeps
    what ``info`` said of it, one that a bus holds (*held*) says so."""
    from ..errors import ServerError
    states = []
    for board in boards:
        try:
            state = remote.request("state", pin=board)
            state = {k: v for k, v in state.items() if k not in ("id", "ok")}
        except ServerError as exc:
            if board in held:  # a bus's pin: what holds it is its state
                state = {"pin": board, "gpio": BOARD_TO_BCM[board], "mode": "bus"}
            elif board not in fallback:
                raise
            else:
                state = dict(fallback[board], refused=exc.code)
        states.append(dict(state, owner=owners.get(board)))
    return states


def _info(args: argparse.Namespace, remote: Any) -> int:
    if args.pins:
        from .header_verb import show_header
        return show_header(args, remote)
    info = remote.info()
    # the board (from the welcome), and the connections but this command's own
    info["board"] = remote.board
    info["connections"] = max(0, info.get("connections", 1) - 1)
    if args.json:
        output.emit_json(info)
        return EXIT_OK
    entries = {entry["pin"]: entry for entry in info.get("pins", [])}
    board = remote.board
    output.emit(f"remoteio {info.get('server', '?')} at {remote.host}:{remote.port}: "
                f"{board.get('description') or board.get('model', '?')}, backend "
                f"{info.get('backend', '?')}, mode {info.get('mode', '?')}")
    load = info.get("load")
    memory = info.get("memory") or {}
    others = info["connections"]
    output.emit(f"up {output.uptime(info.get('uptime_s', 0))}, {others} other "
                f"connection{'s' if others != 1 else ''}"
                + (f", load {' '.join(f'{x:.2f}' for x in load)}" if load else "")
                + (f", memory {memory['pss_kib'] / 1024:.1f} MiB in {memory['processes']} "
                   "processes" if memory.get("pss_kib") else ""))
    output.emit()
    held = held_pins(info)
    _print_states(_states(remote, sorted(entries), _holders(entries, held), entries, held))
    return EXIT_OK


def _state(args: argparse.Namespace, remote: Any) -> int:
    info = remote.info()
    entries = {entry["pin"]: entry for entry in info.get("pins", [])}
    boards = args.pins or sorted(entries)
    held = held_pins(info)
    states = _states(remote, boards, _holders(entries, held), entries, held)
    if args.json:
        output.emit_json(states)
    else:
        _print_states(states)
    return EXIT_OK


def _holders(entries: Dict[int, Dict[str, Any]], held: Dict[int, str]) -> Dict[int, Any]:
    """Who holds each pin: a connection (``info``'s owner), or a bus, a serial
    port or an expander's worker (*held*: ``info``'s ``held``)."""
    return {**{board: entry.get("owner") for board, entry in entries.items()}, **held}


def _print_states(states: List[Dict[str, Any]]) -> None:
    if not states:
        output.emit("no pins in use")
        return
    for line in output.pin_table([output.pin_row(s) for s in states]):
        output.emit(line)


# ---- ping ----------------------------------------------------------------------------
def _ping(args: argparse.Namespace, remote: Any) -> int:
    samples = []
    for n in range(args.count):
        if n and args.interval:
            time.sleep(args.interval)
        samples.append(remote.ping() * 1e6)
    ordered = sorted(samples)
    stats = {"count": len(samples), "min_us": ordered[0], "median_us": statistics.median(ordered),
             "p99_us": ordered[max(0, -(-99 * len(ordered) // 100) - 1)], "max_us": ordered[-1]}
    if args.json:
        output.emit_json(dict({k: round(v, 1) if k != "count" else v for k, v in stats.items()},
                              samples_us=[round(s, 1) for s in samples]))
        return EXIT_OK
    us = output.micro()
    output.emit(f"{len(samples)} round trip{'s' if len(samples) != 1 else ''} to "
                f"{remote.host}:{remote.port} (remoteio {remote.server_version}): "
                + ", ".join(f"{name} {stats[name + '_us']:.0f} {us}"
                            for name in ("min", "median", "p99", "max")))
    return EXIT_OK


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    read = verbs.add_parser(
        "read", help="read pins (levels read on the Pi)",
        description="Read the level of one or more pins, in one round trip: 0/1, or the "
                    "PWM level of an output. Nothing is claimed: pins held by others can be "
                    "read too.",
        epilog=examples("remoteio read 11", "remoteio read 7 11 GPIO27", "remoteio read 7,11",
                        ("remoteio read 9-11", "BOARD10, BOARD11 (9 is ground)"),
                        ("remoteio read all", "every GPIO of the header"),
                        ("remoteio read 11 13 --json", '{"11": 1, "13": 0}')))
    read.add_argument("pins", metavar="PIN", nargs="+", type=pins_arg, help=PIN_LIST_HELP)
    read.add_argument("--json", action="store_true", help="one JSON object {board: level}")
    add_connection_options(read)
    read.set_defaults(run=client_verb(_read, check=_check_pins))

    inp = verbs.add_parser(
        "input", help="make a pin an input (pull, debounce) and read it",
        description="Make a pin an input with a pull and read it. The pin is released when "
                    "the command ends, unless --hold keeps it until Ctrl-C; `remoteio watch "
                    "PIN --pull ...` configures and watches in one go.",
        epilog=examples("remoteio input 11 --pull up", "remoteio input GPIO17 --pull down --json",
                        "remoteio input 11 --pull up --bounce-ms 20 --hold"))
    inp.add_argument("pin", metavar="PIN", type=pin_arg, help=PIN_HELP)
    inp.add_argument("--pull", choices=PULLS, required=True,
                     help="the pull resistor (none: floating)")
    inp.add_argument("--bounce-ms", type=checked(_bounce, "bounce_ms"), default=0.0,
                     metavar="N", help="debounce on the Pi (default 0)")
    inp.add_argument("--hold", action="store_true", help="keep the input set up until Ctrl-C")
    inp.add_argument("--json", action="store_true", help="print JSON")
    add_connection_options(inp)
    inp.set_defaults(run=client_verb(_input, long_lived=lambda a: a.hold))

    for name in ("info", "state"):
        parser = verbs.add_parser(
            name, help={"info": "the server, and a table of the pins in use",
                        "state": "a table of pins: mode, value, task, time left, revert"}[name],
            description=(
                "The server (version, board, mode, uptime, connections, load, memory) and "
                "a table of the pins in use." if name == "info" else
                "A table of pins (default: every pin in use).")
            + " Columns: PIN (board), GPIO, MODE, VALUE, TASK, LEFT (time left of a timed "
              "task), QUEUE (tasks waiting), REVERT (a lease's pending revert: to what, "
              "in how long), OWNER (the connection holding the pin).",
            epilog=examples(f"remoteio {name}", f"remoteio {name} --json", "remoteio info --pins")
            if name == "info"
            else examples("remoteio state", "remoteio state 7 GPIO17", "remoteio state 7,11 --json"))
        if name == "state":
            parser.add_argument("pins", metavar="PIN", nargs="*", type=pins_arg,
                                help=PIN_LIST_HELP + " (default: every pin in use)")
        parser.add_argument("--json", action="store_true",
                            help="the server's info reply as JSON, with the board" if name == "info"
                            else "a JSON list of the pins' state replies (with owner)")
        if name == "info":
            parser.add_argument("--pins", action="store_true",
                                help="the whole header instead, as `remoteio pins` shows it")
            parser.add_argument("--read", action="store_true", help=argparse.SUPPRESS)
        add_connection_options(parser)
        parser.set_defaults(run=client_verb(_info if name == "info" else _state,
                                            check=_check_pins if name == "state" else None))

    ping = verbs.add_parser(
        "ping", help="round-trip times to the server",
        description="Send --count pings and show the round-trip times: min, median, p99, max.",
        epilog=examples("remoteio ping", "remoteio ping --count 1000",
                        "remoteio ping --count 100 --interval 0.01 --json"))
    ping.add_argument("--count", type=positive("count", integer=True), default=10, metavar="N",
                      help="how many (default 10)")
    ping.add_argument("--interval", type=checked(_non_negative, "interval"), default=0.0,
                      metavar="S", help="seconds between pings (default 0: back to back)")
    ping.add_argument("--json", action="store_true", help="statistics and samples as JSON")
    add_connection_options(ping)
    ping.set_defaults(run=client_verb(_ping))


def _bounce(name: str, value: float) -> float:
    from ..protocol import fields
    return fields.duration_ms(60_000.0)(name, value)


def _non_negative(name: str, value: float) -> float:
    from ..protocol import fields
    return fields.number_in(0, 3600)(name, value)
