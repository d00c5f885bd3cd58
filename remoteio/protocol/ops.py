"""The fixed whitelist of operations and the fields each one accepts.

An operation is only ever looked up in :data:`OPS`; nothing on the wire
names code. Each :class:`OpSpec` says who answers it (``scope``), what kind
of pin operation it is (``kind``) and how every field is validated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ..errors import BadArgument
from . import buses as b
from . import fields as f
from . import spi as s
from . import serial as serial_ops

REQUIRED = object()

#: protocol version spoken by this package
PROTOCOL_VERSION = 1

# scopes: who answers an operation
CONNECTION = "connection"   # the listener, per connection (hello, ping, auth)
SERVER = "server"           # the router, about the whole server (info)
PIN = "pin"                 # the pin's worker process
BATCH = "batch"             # several pins in one request (router fans out)
BUS = "bus"                 # a bus's worker process (protocol.buses)

# kinds of pin operation
TASK = "task"      # changes the output; queued in wait mode
QUERY = "query"    # answered at once by the worker, never queued
CONFIG = "config"  # reconfigures the pin (input/output, pull, ...)
CLOSE = "close"    # releases the pin
OPEN = "open"      # claims the pin for this connection
WATCH = "watch"    # (un)subscribes to change events
SIM = "sim"        # drives the simulated board


@dataclass(frozen=True)
class OpSpec:
    name: str
    scope: str
    kind: str = ""
    fields: Mapping[str, Tuple[Callable[[str, Any], Any], Any]] = field(default_factory=dict)
    #: does the connection have to hold the pin? (tasks, config, close)
    claims: bool = False
    #: extra check over the cleaned fields, raises BadArgument
    check: Optional[Callable[[Dict[str, Any]], None]] = None


_TIME_MS = ("time_ms", (f.duration_ms(), 0.0))
#: a dead-man switch on a task: revert unless the same task is sent again in time
_LEASE = {"lease_ms": (f.duration_ms(), 0.0),
          "revert": (f.one_of(("safe", "previous")), "safe")}


def _pulse_check(args: Dict[str, Any]) -> None:
    if args["fade_in_time"] == 0 and args["fade_out_time"] == 0:
        raise BadArgument("fade_in_time and fade_out_time cannot both be 0")


def _spec(name: str, scope: str, kind: str = "", claims: bool = False,
          check: Optional[Callable[[Dict[str, Any]], None]] = None,
          **fields: Tuple[Callable[[str, Any], Any], Any]) -> OpSpec:
    return OpSpec(name, scope, kind, dict(fields), claims, check)


_OP_LIST = (
    _spec("hello", CONNECTION,
          protocol=(f.integer_in(1, 1000), PROTOCOL_VERSION),
          client=(f.text(200), ""),
          heartbeat=(f.number_in(0, 3600), 0.0),
          session=(f.text(64), ""), take_over=(f.boolean, False)),
    _spec("auth", CONNECTION,
          nonce=(f.hex_string(32, 128), REQUIRED), mac=(f.hex_string(64, 64), REQUIRED)),
    _spec("ping", CONNECTION, data=(f.text(1000), None)),
    _spec("info", SERVER),
    _spec("open", PIN, OPEN, claims=True),
    _spec("on", PIN, TASK, claims=True, **dict([_TIME_MS]), **_LEASE),
    _spec("off", PIN, TASK, claims=True, **dict([_TIME_MS]), **_LEASE),
    _spec("value", PIN, TASK, claims=True,
          level=(f.fraction, 1.0), **dict([_TIME_MS]), **_LEASE),
    _spec("blink", PIN, TASK, claims=True,
          on_time=(f.seconds(f.MIN_PHASE_S), 1.0),
          off_time=(f.seconds(f.MIN_PHASE_S), 1.0), **dict([_TIME_MS]), **_LEASE),
    _spec("pulse", PIN, TASK, claims=True, check=_pulse_check,
          fade_in_time=(f.zero_or_seconds(f.MIN_PHASE_S), 1.0),
          fade_out_time=(f.zero_or_seconds(f.MIN_PHASE_S), 1.0), **dict([_TIME_MS]), **_LEASE),
    _spec("close", PIN, CLOSE, claims=True),
    _spec("read", PIN, QUERY),
    _spec("state", PIN, QUERY),
    _spec("sync", PIN, QUERY),
    _spec("input", PIN, CONFIG, claims=True,
          # null or absent: the line's fixed resistor's pull (GPIO2/3), else floating
          pull=(f.one_of(("up", "down", "floating", None), aliases={"none": "floating"}), None),
          bounce_ms=(f.duration_ms(60_000.0), 0.0)),
    _spec("output", PIN, CONFIG, claims=True),
    # gpiozero-level pin access (the gpiozero pin factory): every field optional,
    # applied in this order; one round trip for output_with_state/input_with_pull
    _spec("setup", PIN, CONFIG, claims=True,
          function=(f.one_of(("input", "output")), None),
          pull=(f.one_of(("up", "down", "floating")), None),
          frequency=(f.number_in(0, 1_000_000), None),
          state=(f.fraction, None),
          bounce_ms=(f.duration_ms(60_000.0), None),
          edges=(f.one_of(("both", "rising", "falling", "none")), None)),
    _spec("set", PIN, TASK, claims=True, state=(f.fraction, REQUIRED)),
    _spec("watch", PIN, WATCH),
    _spec("unwatch", PIN, WATCH),
    _spec("write", BATCH, TASK, claims=True, pins=(f.pin_levels, REQUIRED), **_LEASE),
    _spec("read_many", BATCH, QUERY, pins=(f.pin_list, REQUIRED)),
    _spec("sim", SERVER, SIM,
          action=(f.one_of(("drive", "release", "wire", "unwire", "echo", "levels", "history")),
                  REQUIRED),
          pin=(f.any_json, None), to=(f.any_json, None),
          width_us=(f.number_in(1, 1_000_000), None),
          level=(f.integer_in(0, 1), None),
          since_ns=(f.integer_in(0, 2**63 - 1), 0)),
    # an I/O expander declared at run time, if the server allows it (docs/expanders.md)
    _spec("expander_declare", SERVER,
          expander=(f.text(16), REQUIRED), chip=(f.text(16), REQUIRED),
          bus=(f.integer_in(0, 255), None), address=(f.integer_in(0, 127), None),
          poll_ms=(f.number_in(1, 60_000), None), interrupt=(f.integer_in(1, 40), None)),
)

_BUS = {"bus": (b.BUS_NUMBER, 1)}
_OP_LIST += tuple(_spec("i2c_" + call, BUS, QUERY, **_BUS, **b.call_fields(call))
                  for call in b.I2C_CALLS) + (
    _spec("i2c_rdwr", BUS, QUERY, **_BUS, msgs=(b.messages, REQUIRED)),
    _spec("i2c_transaction", BUS, QUERY, **_BUS, calls=(b.transaction, REQUIRED)),
)
_OP_LIST += tuple(_spec("spi_" + op, BUS, QUERY, **s.spi_fields(op)) for op in s.SPI_OPS)
_OP_LIST += tuple(_spec(name, BUS, QUERY, **fields) for name, fields in serial_ops.serial_ops(REQUIRED))

#: op name -> spec; the whole whitelist
OPS: Dict[str, OpSpec] = {spec.name: spec for spec in _OP_LIST}


def operation_names() -> Tuple[str, ...]:
    """The operations a server offers, in a stable order (for ``hello``)."""
    return tuple(OPS)
