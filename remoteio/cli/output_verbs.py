"""on, off, value, blink, pulse: tasks on an output, and how long the command stays.

A server soft-closes a client's pins when the client disconnects (queued
work completes, then the pin is made safe). So a command that exited as soon
as the server accepted ``on`` would switch the pin on and, a moment later,
off. What each command does instead (docs/cli.md):

* a timed task (``--time-ms N``) stays connected until the task has ended,
  then exits: the pin does exactly what was asked, in either server mode and
  whatever the server's disconnect policy;
* an untimed ``on``/``value``/``blink``/``pulse`` holds the pin until Ctrl-C
  or SIGTERM (like gpioset), then the pin is made safe;
* ``--hold`` holds the pin after a timed task too (or after ``off``: the pin
  stays driven off rather than released);
* ``--detach`` returns as soon as the server accepted the task and leaves it
  to the soft close: a wait-mode server with the default "finish" policy runs
  a timed task to its end; anything untimed is released at once.

With ``--lease-ms`` the command renews the lease while it stays, so the pin
reverts on the Pi if this machine or the network goes away.
"""
from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, Callable, Dict, Optional

from ..errors import ServerError
from .common import (EXIT_OK, UsageError, add_connection_options, client_verb, duration_ms,
                     examples, level, phase_s, unique, without_held)
from .pinlist import EveryPin, flatten, names, pins_arg

TASKS = ("on", "off", "value", "blink", "pulse")


class Renewer(threading.Thread):
    """Sends the leased task again every third of its lease (a heartbeat)."""

    def __init__(self, send: Callable[[], Any], lease_ms: float):
        super().__init__(name="remoteio-lease", daemon=True)
        self.send = send
        self.interval = max(0.01, lease_ms / 3000.0)
        self.stopped = threading.Event()
        self.failed = threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        from ..errors import RemoteIOError
        while not self.stopped.wait(self.interval):
            try:
                self.send()
            except RemoteIOError as exc:
                self.error = exc
                self.failed.set()
                return

    def stop(self) -> None:
        self.stopped.set()


def hold(remote: Any, renewer: Optional[Renewer]) -> None:
    """Stay connected until Ctrl-C/SIGTERM (KeyboardInterrupt: the signal
    interrupts the wait), or fail when the connection or a lease renewal does."""
    from ..errors import ConnectionLost
    ended = renewer.failed if renewer is not None else threading.Event()
    remote.when_connection_changed = lambda connected: connected or ended.set()
    while not ended.wait(5.0) and remote.connected:
        pass
    if renewer is not None and renewer.error is not None:
        raise renewer.error
    raise ConnectionLost(f"lost the connection to {remote.host}:{remote.port}; "
                         "the server makes the pin safe")


def _doing(op: str, fields: Dict[str, Any]) -> str:
    if op == "value":
        return f"at {fields['level']:g}"
    return {"on": "on", "off": "off", "blink": "blinking", "pulse": "pulsing"}[op]


def _task(args: argparse.Namespace, remote: Any) -> int:
    op = args.verb
    fields: Dict[str, Any] = {"time_ms": args.time_ms}
    if op == "value":
        fields["level"] = args.level
    elif op == "blink":
        fields.update(on_time=args.on_time, off_time=args.off_time)
    elif op == "pulse":
        fields.update(fade_in_time=args.fade_in, fade_out_time=args.fade_out)
    if args.every:  # "all" is every GPIO a pin may be now: not one a bus holds
        args.pins = without_held(remote, args.pins)
        if not args.pins:
            return EXIT_OK
    # every pin claimed first (PinBusy if someone holds one), then driven
    pins = [remote.pin(board) for board in args.pins]
    tasks = [{"on": pin.on, "off": pin.off, "value": pin.value, "blink": pin.blink,
              "pulse": pin.pulse}[op] for pin in pins]

    def send() -> None:
        for index, task in enumerate(tasks):
            try:
                task(**fields, lease_ms=args.lease_ms, revert=args.revert)
            except ServerError as exc:  # the rules are judged pin by pin: say what already runs
                if not index:
                    raise
                driven = names(args.pins[:index])
                raise type(exc)(f"{exc.message}; {driven} {'was' if index == 1 else 'were'} driven "
                                "already (pins are driven in the order given): a timed task runs "
                                "to its end, anything else is made safe as this command ends",
                                code=exc.code, detail=exc.detail) from None

    send()
    timed = args.time_ms > 0
    name = names(args.pins)
    if args.detach:
        if not timed and op != "off":
            print(f"remoteio: note: {name} {'is' if len(pins) == 1 else 'are'} released as "
                  f"soon as this command ends, so {'it is' if len(pins) == 1 else 'they are'} "
                  f"{_doing(op, fields)} only for a moment; without --detach it is held "
                  "until Ctrl-C (or give --time-ms)", file=sys.stderr)
        return EXIT_OK
    renewer = Renewer(send, args.lease_ms) if args.lease_ms else None
    if renewer is not None:
        renewer.start()
    try:
        if timed:
            for pin in pins:
                pin.sync(timeout=remote.timeout + args.time_ms / 1000.0)
        if args.hold or (not timed and op != "off"):
            lease = (f"; lease {args.lease_ms:g} ms, renewed while this command runs"
                     if args.lease_ms else "")
            one = len(pins) == 1
            print(f"{name} {_doing(op, fields) if not timed else 'done'}{lease}: holding "
                  f"{'it' if one else 'them'} until Ctrl-C (the {'pin is' if one else 'pins are'} "
                  "made safe when this command ends)", file=sys.stderr, flush=True)
            hold(remote, renewer)
    finally:
        if renewer is not None:
            renewer.stop()
    return EXIT_OK


#: the shortest lease a command can keep renewed (every third of it, from a
#: process the machine may keep off the CPU for a few ms)
MIN_COMMAND_LEASE_MS = 100.0


def lease_ms(text: str) -> float:
    """argparse ``type=`` for --lease-ms: a duration of at least
    :data:`MIN_COMMAND_LEASE_MS` (a usage error below: the renewals could not
    keep up and the pin would flap; 0, which would be no lease, too)."""
    value = duration_ms("lease_ms")(text)
    if value < MIN_COMMAND_LEASE_MS:
        raise argparse.ArgumentTypeError(
            f"--lease-ms {value:g} is too short for a command to keep renewed (every third of "
            f"it); give at least {MIN_COMMAND_LEASE_MS:g}, or use the Python API")
    return value


def _check(args: argparse.Namespace) -> None:
    args.every = any(isinstance(group, EveryPin) for group in args.pins)
    args.pins = unique(flatten(args.pins))
    if args.detach and (args.hold or args.wait):
        raise UsageError("--detach cannot go with --hold or --wait")
    if args.revert is not None and not args.lease_ms:
        raise UsageError("--revert goes with --lease-ms (what the lease reverts to)")
    args.revert = args.revert or "safe"
    if args.verb == "pulse" and args.fade_in == 0 and args.fade_out == 0:
        raise UsageError("--fade-in and --fade-out cannot both be 0")


_DESCRIPTIONS = {
    "on": "Switch an output on.",
    "off": "Switch an output off (with --time-ms: hold it off that long, in wait mode "
           "ahead of later tasks).",
    "value": "Drive a PWM level between 0 and 1.",
    "blink": "Blink an output (timed on the Pi).",
    "pulse": "Fade an output in and out with PWM (timed on the Pi).",
}
_STAYS = (
    "\n\nA timed task (--time-ms) runs on the Pi; this command stays until it has ended. "
    "An untimed task holds the pin until Ctrl-C or SIGTERM: the server makes a pin safe "
    "(off, released) when the command that drives it ends. --detach returns at once and "
    "leaves the task to the server (remoteio docs cli).")
_EXAMPLES = {
    "on": (("remoteio on 7 --time-ms 2000", "on for 2 s, then off (returns after 2 s)"),
           ("remoteio on GPIO4", "on until Ctrl-C"),
           ("remoteio on 7,11,13 --time-ms 500", "three pins on for 0.5 s"),
           ("remoteio on 7 --lease-ms 3000",
            "on until Ctrl-C; off within 3 s if this machine vanishes"),
           ("remoteio on 7 --time-ms 60000 --detach",
            "return at once (a wait-mode server finishes it)"),
           ("remoteio on 7 --time-ms 500 --hold", "on for 0.5 s, then keep the pin until Ctrl-C")),
    "off": ("remoteio off 7",
            ("remoteio off all", "every GPIO of the header off (and released)"),
            ("remoteio off 7 --hold", "keep it driven off until Ctrl-C"),
            ("remoteio off b7 --time-ms 1000", "hold it off for 1 s")),
    "value": (("remoteio value 12 0.25", "25 % until Ctrl-C"),
              ("remoteio value GPIO18 0.5 --time-ms 3000", "50 % for 3 s")),
    "blink": (("remoteio blink 7", "1 s on, 1 s off, until Ctrl-C"),
              ("remoteio blink 7 --on-time 0.1 --off-time 0.4 --time-ms 5000", "for 5 s")),
    "pulse": (("remoteio pulse 12", "until Ctrl-C"),
              ("remoteio pulse 12 --fade-in 0.5 --fade-out 2 --time-ms 10000", "for 10 s")),
}


def add_parsers(verbs: "argparse._SubParsersAction") -> None:
    for op in TASKS:
        parser = verbs.add_parser(
            op, help={"on": "switch an output on", "off": "switch an output off",
                      "value": "drive a PWM level 0..1", "blink": "blink an output",
                      "pulse": "fade an output in and out"}[op],
            description=_DESCRIPTIONS[op] + _STAYS, epilog=examples(*_EXAMPLES[op]))
        parser.add_argument("pins", metavar="PIN", nargs="+", type=pins_arg,
                            help="7, b7, BOARD7 (board numbers) or g4, GPIO4; a list "
                                 "7,11,13 (or 7 11 13), a range 9-11 or GPIO9-11, or all")
        if op == "value":
            parser.add_argument("level", metavar="LEVEL", type=level, help="0..1")
        elif op == "blink":
            parser.add_argument("--on-time", type=phase_s("on_time"), default=1.0, metavar="S",
                                help="seconds on (default 1)")
            parser.add_argument("--off-time", type=phase_s("off_time"), default=1.0,
                                metavar="S", help="seconds off (default 1)")
        elif op == "pulse":
            parser.add_argument("--fade-in", type=phase_s("fade_in", True), default=1.0,
                                metavar="S", help="seconds to fade in (default 1)")
            parser.add_argument("--fade-out", type=phase_s("fade_out", True), default=1.0,
                                metavar="S", help="seconds to fade out (default 1)")
        parser.add_argument("--time-ms", type=duration_ms("time_ms"), default=0.0, metavar="N",
                            help="run for N ms (timed on the Pi), then off; the command "
                                 "returns when it has ended")
        parser.add_argument("--lease-ms", type=lease_ms, default=0.0,
                            metavar="N", help="a dead-man switch: the Pi reverts the pin "
                                              "unless renewed within N ms (this command "
                                              "renews it while it runs)")
        parser.add_argument("--revert", choices=("safe", "previous"), default=None,
                            help="with --lease-ms: what the lease reverts to (default safe)")
        parser.add_argument("--wait", action="store_true",
                            help="stay until the task has ended (the default)")
        parser.add_argument("--hold", action="store_true",
                            help="keep the pin until Ctrl-C, also after a timed task or off")
        parser.add_argument("--detach", action="store_true",
                            help="return once the server accepted the task; the server's "
                                 "soft close decides the rest")
        add_connection_options(parser)
        parser.set_defaults(run=client_verb(_task, long_lived=lambda a: not a.detach,
                                            check=_check))
