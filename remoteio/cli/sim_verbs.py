"""sim: drive and observe a server's simulated board (refused on real hardware)."""
from __future__ import annotations

import argparse
from typing import Any

from . import output
from .common import (EXIT_OK, ArgParser, UsageError, add_connection_options, client_verb,
                     examples, pin_arg, pin_name, any_pin_arg)
from ..pins import BOARD_TO_BCM


def _sim(args: argparse.Namespace, remote: Any) -> int:
    sim, action = remote.sim, args.action
    if action == "drive":
        sim.drive(args.pin, args.level)
    elif action == "release":
        sim.release(args.pin)
    elif action == "wire":
        if args.pin == args.to:  # checked here as the server would: a usage error
            raise UsageError("a wire joins two different pins")
        sim.wire(args.pin, args.to)
    elif action == "unwire":
        sim.unwire(args.pin)
    elif action == "levels":
        reply = remote.request("sim", action="levels")
        levels, values = reply["levels"], reply.get("values", {})
        if args.json:
            output.emit_json({"levels": levels, "values": values})
        else:
            rows = [(board, gpio, levels.get(str(board), "-"),
                     output.value(values.get(str(board))))
                    for board, gpio in sorted(BOARD_TO_BCM.items())]
            for line in output.table(("PIN", "GPIO", "LEVEL", "DRIVES"), rows):
                output.emit(line)
    elif action == "history":
        history = sim.history(args.pin)
        if args.json:
            output.emit_json([[t, v] for t, v in history])
        elif not history:
            output.emit(f"{pin_name(args.pin)} has not changed")
        else:
            first = history[0][0]
            for t_ns, level in history:
                output.emit(f"{t_ns}  +{(t_ns - first) / 1e9:.6f} s  {output.value(level)}")
    return EXIT_OK


_ACTIONS = {
    "drive": ("apply a level to a pin from outside (a finger on a button)",
              ("remoteio sim drive 11 0      press a button wired to ground",
               "remoteio sim drive GPIO17 1")),
    "release": ("stop driving a pin (its pull, or a wired output, decides again)",
                ("remoteio sim release 11",)),
    "wire": ("join two pins like a jumper wire (an output drives the other)",
             ("remoteio sim wire 15 16", "remoteio sim wire GPIO22 GPIO23")),
    "unwire": ("take a pin off its wire", ("remoteio sim unwire 15",)),
    "levels": ("the level of every header pin, and what each output drives",
               ("remoteio sim levels", "remoteio sim levels --json")),
    "history": ("every change of a pin's output, with the board's timestamps (ns)",
                ("remoteio sim history 7", "remoteio sim history 7 --json")),
}


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    sim = verbs.add_parser(
        "sim", help="drive and watch a simulated board (remoteio serve --sim)",
        description="Drive and observe the server's simulated board: press buttons, join "
                    "pins with wires, see what outputs did. A server on real hardware "
                    "refuses (not_supported, exit 1). Changes made here stay after the "
                    "command ends (they are the board's, not the connection's).",
        epilog=examples("remoteio sim drive 11 0", "remoteio sim release 11",
                        "remoteio sim wire 15 16", "remoteio sim levels",
                        "remoteio sim history 7"))
    actions = sim.add_subparsers(dest="action", metavar="ACTION", parser_class=ArgParser)
    actions.required = True
    for action, (summary, lines) in _ACTIONS.items():
        parser = actions.add_parser(action, help=summary, description=summary[0].upper()
                                    + summary[1:] + ".", epilog=examples(*lines))
        if action != "levels":
            parser.add_argument("pin", metavar="PIN", type=any_pin_arg,
                                help="7, b7, BOARD7 (board numbers) or g4, GPIO4")
        if action == "drive":
            parser.add_argument("level", metavar="LEVEL", type=int, choices=(0, 1),
                                help="0 or 1")
        elif action == "wire":
            parser.add_argument("to", metavar="PIN2", type=pin_arg, help="the other pin")
        if action in ("levels", "history"):
            parser.add_argument("--json", action="store_true", help="print JSON")
        add_connection_options(parser)
        parser.set_defaults(run=client_verb(_sim))
