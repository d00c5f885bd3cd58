"""The messages that cross the server's pipes, as named types in one place.

Three channels carry them: the router's task pipe into each worker
(:data:`ToWorker`), the worker's reply pipe back (:data:`FromWorker`), and
the zygote's socket (:data:`ToZygote`, :data:`FromZygote`). On the wire they
are plain tuples (``marshal`` takes no subclasses), tagged with their kind.

>>> decode(encode(Task(3, 1, "7", "on", {"time_ms": 0.0}, False)))
Task(seq=3, conn=1, id_json='7', op='on', args={'time_ms': 0.0}, part=False)
>>> decode(encode(Probe()))
Probe()
"""
from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union


# ---- router -> worker --------------------------------------------------------------
class Task(NamedTuple):
    """A validated request for the worker's resource; answered by one reply."""
    seq: int                 # the router's number for it (matches the reply)
    conn: int                # the connection that asked
    id_json: str             # the request's id, as JSON text
    op: str                  # an operation of the whitelist (protocol.ops)
    args: Dict[str, Any]     # its validated fields
    part: bool               # one pin of a batch: answered with a PartReply


class Gone(NamedTuple):
    """A connection closed: its watches end; the resource follows *policy*."""
    conn: int
    owned: bool              # did the connection hold the resource?
    policy: str              # "finish" or "safe"


class MakeSafe(NamedTuple):
    """Sent to a fresh worker whose predecessor died."""
    was_output: bool


class Probe(NamedTuple):
    """Are you alive? (answered with a Pong)"""


class Stop(NamedTuple):
    """The server is stopping: make the resource safe and exit."""


class Settings(NamedTuple):
    """New settings for a running worker (the rules were reloaded)."""
    settings: Dict[str, Any]


class ForPin(NamedTuple):
    """A message for one pin of a worker that owns several (an expander's)."""
    pin: str                 # the pin's name ("mcp0:A3")
    message: tuple           # the message, encoded (a Task, Gone, Settings...)


# ---- worker -> router ----------------------------------------------------------------
class Reply(NamedTuple):
    """The answer to a Task: a frame for the connection that asked."""
    seq: int
    frame: bytes


class Replies(NamedTuple):
    """Answers to several Tasks, in order (a worker's consecutive replies, sent as one)."""
    seqs: List[int]
    frames: List[bytes]


class PartReply(NamedTuple):
    """The answer to one part of a batch (the router gathers the parts)."""
    seq: int
    error: Optional[Tuple[str, str, Optional[str]]]   # (code, message, detail) or None
    value: Any


class Event(NamedTuple):
    """A frame pushed to connections (watchers, a lease's holder)."""
    targets: Tuple[int, ...]
    frame: bytes


class Pong(NamedTuple):
    """The answer to a Probe."""


# ---- server <-> zygote ----------------------------------------------------------------
class Spawn(NamedTuple):
    """Fork a worker of *kind* for *key*; its two pipe ends travel as fds."""
    kind: str
    key: Any
    generation: int
    settings: Dict[str, Any]  # what the worker needs to know (plain data: its pin's rule)


class Kill(NamedTuple):
    """SIGKILL a worker (only a live child of the zygote)."""
    pid: int


class Quit(NamedTuple):
    """Kill what is left, reap it, exit."""


class Spawned(NamedTuple):
    key: Any
    generation: int
    pid: int


class Exited(NamedTuple):
    pid: int
    status: int              # the exit code, or -signal


ToWorker = Union[Task, Gone, MakeSafe, Probe, Stop, Settings, ForPin]
FromWorker = Union[Reply, Replies, PartReply, Event, Pong]
ToZygote = Union[Spawn, Kill, Quit]
FromZygote = Union[Spawned, Exited]

_KINDS = (Task, Gone, MakeSafe, Probe, Stop, Reply, PartReply, Event, Pong,
          Spawn, Kill, Quit, Spawned, Exited, Settings, ForPin, Replies)
_TAG = {kind: n for n, kind in enumerate(_KINDS)}
_MAKE = tuple(kind._make for kind in _KINDS)


_TASK = _TAG[Task]
#: the zygote reads its requests as the tuples :func:`encode` makes (see zygote._loop)
SPAWN, KILL, QUIT, SPAWNED = _TAG[Spawn], _TAG[Kill], _TAG[Quit], _TAG[Spawned]


def encoded_task(seq: int, conn: int, id_json: str, op: str, args: Dict[str, Any],
                 part: bool) -> tuple:
    """``encode(Task(...))``, made without the named tuple (the router's hot path).

    >>> decode(encoded_task(1, 2, "7", "on", {}, False)) == Task(1, 2, "7", "on", {}, False)
    True
    """
    return (_TASK, seq, conn, id_json, op, args, part)


def encoded_spawned(key: Any, generation: int, pid: int) -> tuple:
    """``encode(Spawned(...))``, made without the named tuple (the zygote's loop).

    >>> decode(encoded_spawned(7, 2, 99))
    Spawned(key=7, generation=2, pid=99)
    """
    return (SPAWNED, key, generation, pid)


def encode(message: NamedTuple) -> tuple:
    """A plain tuple for marshal: the kind's tag, then the fields."""
    return (_TAG[type(message)], *message)


def decode(data: tuple) -> Any:
    """The named message of a tuple made by :func:`encode`."""
    return _MAKE[data[0]](data[1:])
