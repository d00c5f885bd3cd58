"""watch: print pin changes as the Pi pushes them (like gpiomon)."""
from __future__ import annotations

import argparse
import datetime
import queue
import sys
import time
from typing import Any, Dict

from . import output
from .common import (EXIT_OK, UsageError, add_connection_options, checked, client_verb,
                     examples, pin_name, positive, unique, without_held)
from .pinlist import EveryPin, flatten, pins_arg

PULLS = ("up", "down", "none", "floating")
EDGES = ("rising", "falling", "both")
#: what --format may name, with what each is
FORMAT_FIELDS = {
    "clock": "this machine's time of day when it arrived (14:02:07.118204)",
    "time": "the same, in seconds since the epoch",
    "name": "the pin, BOARD11 (GPIO17)", "pin": "its board number", "gpio": "its GPIO number",
    "value": "the new value (0/1)", "edge": "rising or falling",
    "ts_ns": "the server's monotonic clock at the edge (ns)",
    "seq": "the pin's event number on the server",
    "missed": "events lost just before this one",
}
DEFAULT_FORMAT = "{clock}  {name}  {value}  {edge:<7}  seq {seq}  missed {missed}"


def _pull(text: Any) -> Any:
    return None if text in (None, "none", "floating") else text


def event_fields(received: float, event: Any, gpio: int) -> Dict[str, Any]:
    return {"clock": datetime.datetime.fromtimestamp(received).strftime("%H:%M:%S.%f"),
            "time": round(received, 6), "name": pin_name(event.pin), "pin": event.pin,
            "gpio": gpio, "value": output.value(event.value), "edge": event.edge,
            "ts_ns": event.ts_ns, "seq": event.seq, "missed": event.missed}


def unescape(text: str) -> str:
    """``\\t``, ``\\n`` and ``\\\\`` in a --format, as a shell user types them."""
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "\\")
            out.append({"t": "\t", "n": "\n", "\\": "\\"}.get(nxt, "\\" + nxt))
        else:
            out.append(char)
    return "".join(out)


def _check(args: argparse.Namespace) -> None:
    args.every = any(isinstance(group, EveryPin) for group in args.pins)
    args.pins = unique(flatten(args.pins))
    if args.bounce_ms and args.pull is None:
        raise UsageError("--bounce-ms goes with --pull (the debounce of an input set up here)")
    if args.format is not None:
        if args.json:
            raise UsageError("--format and --json cannot be combined")
        args.format = unescape(args.format)
        sample = dict.fromkeys(FORMAT_FIELDS, 0)
        sample.update(clock="", name="", edge="")
        try:
            args.format.format(**sample)
        except KeyError as exc:
            raise UsageError(f"--format: no field {exc} (fields: "
                             f"{', '.join(FORMAT_FIELDS)})") from None
        except (ValueError, IndexError) as exc:
            raise UsageError(f"--format: {exc} (e.g. --format '{{clock}} {{pin}} {{edge}}')") \
                from None


def _watch(args: argparse.Namespace, remote: Any) -> int:
    from ..errors import ConnectionLost
    events: "queue.Queue[Any]" = queue.Queue()
    if args.every:  # "all": not the pins a bus holds (they are not GPIOs now)
        args.pins = without_held(remote, args.pins)
    pins = []
    for board in args.pins:
        if args.pull is not None:  # an input of ours, with the pull (and debounce) asked for
            pins.append(remote.pin(board).as_input(pull=_pull(args.pull),
                                                   bounce_ms=args.bounce_ms))
        else:                      # anyone's pin, as it is: nothing claimed or changed
            pins.append(remote.pin(board, claim=False))
    gpio = {pin.board: pin.gpio for pin in pins}
    before = None if args.json else remote.read_pins(args.pins)  # the levels changes start from
    for pin in pins:
        pin.when_changed = lambda event: events.put((time.time(), event))
    remote.when_connection_changed = lambda connected: connected or events.put(None)
    if before is not None:
        shown = ", ".join(f"{pin_name(b)} = {output.value(before[b])}" for b in args.pins)
        edges = "" if args.edge == "both" else f" ({args.edge} edges only)"
        print(f"watching {shown}{edges}; Ctrl-C to stop", file=sys.stderr, flush=True)
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    line_format = args.format if args.format is not None else DEFAULT_FORMAT
    seen = 0
    while args.count is None or seen < args.count:
        wait = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
        if wait <= 0:
            break
        try:
            item = events.get(timeout=wait)
        except queue.Empty:
            item = ()
        if item is None or (item == () and not remote.connected):
            raise ConnectionLost(f"lost the connection to {remote.host}:{remote.port}")
        for pin in pins:
            if not pin.watching:  # its holder closed it (a `closed` event): watch again
                print(f"{pin_name(pin.board)} was closed by its holder; watching it again",
                      file=sys.stderr, flush=True)
                pin.watch()
        if not item:
            continue
        received, event = item
        if args.edge != "both" and event.edge != args.edge:
            continue
        fields = event_fields(received, event, gpio[event.pin])
        if args.json:
            output.emit_json({"time": fields["time"], "pin": event.pin, "gpio": fields["gpio"],
                              "value": event.value, "edge": event.edge, "ts_ns": event.ts_ns,
                              "seq": event.seq, "missed": event.missed})
        else:
            output.emit(line_format.format(**fields))
        seen += 1
    return EXIT_OK


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    from .query_verbs import PIN_LIST_HELP, _bounce
    watch = verbs.add_parser(
        "watch", help="print pin changes as they happen, until Ctrl-C",
        description="Print every change of the pins (pushed by the Pi) until Ctrl-C, or "
                    "--count changes, or --seconds: one line per change (time received, "
                    "pin, value, edge, the pin's event number and events missed before it), "
                    "a line of your own with --format, or JSON lines with --json. Without "
                    "--pull the pins are watched as they are (anyone's, inputs or outputs); "
                    "with --pull they are made inputs of this command.",
        epilog=examples("remoteio watch 11 --pull up", "remoteio watch 7 11 13",
                        "remoteio watch GPIO17 --pull up --bounce-ms 20 --json",
                        ("remoteio watch 11 --pull up --edge falling --count 1",
                         "wait for one press"),
                        ("remoteio watch 11 --count 1 --seconds 10", "wait for one change"),
                        ("remoteio watch 11,13 --format '{pin} {edge} {ts_ns}'",
                         "a line of your own")) + "\n--format fields: " + ", ".join(
            f"{{{name}}}" for name in FORMAT_FIELDS) + "\n")
    watch.add_argument("pins", metavar="PIN", nargs="+", type=pins_arg, help=PIN_LIST_HELP)
    watch.add_argument("--pull", choices=PULLS,
                       help="make the pins inputs with this pull (none: floating)")
    watch.add_argument("--bounce-ms", type=checked(_bounce, "bounce_ms"), default=0.0,
                       metavar="N", help="with --pull: debounce on the Pi (default 0)")
    watch.add_argument("--edge", choices=EDGES, default="both",
                       help="which changes to show (default both), like gpiomon -r/-f")
    watch.add_argument("--json", action="store_true",
                       help="JSON lines: time, pin, gpio, value, edge, ts_ns, seq, missed")
    watch.add_argument("--format", metavar="FORMAT",
                       help="one line per change, e.g. '{clock} {name} {edge}' (fields below; "
                            "\\t and \\n work)")
    watch.add_argument("--count", type=positive("count", integer=True), metavar="N",
                       help="stop after N changes (of the edges shown)")
    watch.add_argument("--seconds", type=positive("seconds"), metavar="S",
                       help="stop after S seconds")
    add_connection_options(watch)
    watch.set_defaults(run=client_verb(_watch, long_lived=True, check=_check))
