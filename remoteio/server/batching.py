"""The router's batching part: a run of one pin's requests routed in one pass, and batch requests' fan-out.

A mixin of :class:`~.router.Router` (the same object and state, split off by
job). A pipelining client sends long runs of requests for header pins
(``on``, ``off``, ``on``..., for one pin or several in turn):
:meth:`PinBatching._route_span` takes each pin's requests in their order
(different pins' workers run in parallel: nothing orders them across pins)
and :meth:`PinBatching._route_run` looks the pin's rule and worker up once
for the run, but every request still passes the
pin rules (:meth:`~.rules.Rules.check`, skipped only where the pin's rule
has nothing to check, as ``check`` itself does), the in-flight bound
(``MAX_INFLIGHT``, at every request) and the sharing rule, and gets its own
structured error while the others go on, in order. ``write``/``read_many``
(:meth:`PinBatching._fan_out`) are checked for every pin first, then one
part goes to each pin's worker.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Set

from ..errors import ServerBusy, ServerError
from ..pins import describe
from ..protocol import writing
from ..protocol.ops import WATCH
from ..protocol.reading import Request
from .gather import Gather, GatherPart
from .messages import Event, PartReply, Pong, Replies, Reply, encoded_task
from .pool import check_waiting
from .routebuses import MAX_INFLIGHT

if TYPE_CHECKING:  # the attributes a Router has
    from .ownership import Ownership
    from .pool import WorkerHandle, WorkerPool
    from .router import Outlet
    from .rules import Rules

log = logging.getLogger("remoteio.server.router")


class Inflight(NamedTuple):
    """What the router keeps of a request a worker has not answered yet."""
    conn: int
    id_json: str
    part: Optional[GatherPart]


#: ``Inflight(...)`` without the named tuple's Python-level ``__new__`` (the hot path)
_new = tuple.__new__


class PinBatching:
    ownership: "Ownership"
    pool: "WorkerPool"
    rules: "Rules"
    outlet: "Outlet"
    _seq: int
    _batches: Dict["WorkerHandle", List[Any]]
    _feeding: Dict[int, Set["WorkerHandle"]]

    def _route_span(self, conn: int, span: List[Request]) -> None:
        """Requests for header pins (any), each pin's run in its order: two
        pins' workers run in parallel, so nothing orders one pin's requests
        after another's."""
        runs: Dict[int, List[Request]] = {}
        for req in span:
            run = runs.get(req.pin)  # type: ignore[arg-type]
            if run is None:
                runs[req.pin] = [req]  # type: ignore[index]
            else:
                run.append(req)
        for board, run in runs.items():
            self._route_run(conn, board, run)
            if not self.outlet.is_open(conn):
                return

    def _route_run(self, conn: int, board: int, run: List[Request]) -> None:
        """Requests for one header pin, in order; each checked and answered
        on its own (an error for one, the others still run)."""
        outlet, ownership = self.outlet, self.ownership
        handle = self.pool.get(board)
        for n, req in enumerate(run):
            if handle is None or handle.tasks.closed:  # first use (or a dying worker): in full
                self.route(conn, [req])  # type: ignore[attr-defined]
                handle = self.pool.get(board)
                if not outlet.is_open(conn):
                    return
                continue
            rule = self.rules.rule(board)
            plain = rule.access == "write" and rule.max_hold_ms is None and not rule.lease_only
            inflight = handle.inflight
            batch = self._batches.setdefault(handle, [])
            for req in run[n:]:
                op, args = req.op, req.args
                try:
                    if not plain:
                        self.rules.check(board, op, args)
                    ownership.check_bus(board)
                    if len(inflight) >= MAX_INFLIGHT:
                        raise ServerBusy(f"{describe(board)} has {MAX_INFLIGHT} requests in progress")
                    if op == "sync":
                        check_waiting(handle, describe(board), ownership.owner(board) == conn)
                    if req.spec.claims:
                        if op == "close" or ownership.owner(board) != conn:
                            ownership.claim(conn, board, op)
                    elif req.spec.kind == WATCH:
                        ownership.watch(conn, board, op == "watch")
                except Exception as exc:
                    if not isinstance(exc, ServerError):  # a bug: answer it, log it, go on
                        log.exception("routing %s failed", op)
                        exc = ServerError(f"internal error while routing {op}; see the server log")
                    outlet.reply(conn, writing.error_from(exc, req.id_json))
                    if not outlet.is_open(conn):
                        return
                    continue
                self._seq += 1
                inflight[self._seq] = _new(Inflight, (conn, req.id_json, None))
                if op == "sync":
                    handle.waiting.add(self._seq)
                    if ownership.owner(board) == conn:
                        handle.held_waiting.add(self._seq)
                batch.append(encoded_task(self._seq, conn, req.id_json, op, args, False))
            if self.pool.congested(handle):  # inflight and the batch only grew in the run
                self._feeding[conn].add(handle)
            return

    def _deliver(self, handle: "WorkerHandle", messages: List[Any]) -> None:
        """A worker's messages, in order; consecutive replies for one connection
        go to the outlet together (one append to its output)."""
        outlet, inflight, waiting = self.outlet, handle.inflight, handle.waiting
        run: List[bytes] = []
        run_conn = -1
        for message in messages:
            kind = type(message)
            if kind is Reply:
                entry = inflight.pop(message.seq, None)
                if waiting:
                    waiting.discard(message.seq)
                    handle.held_waiting.discard(message.seq)
                if entry is not None:
                    if entry.conn != run_conn and run:
                        outlet.replies(run_conn, run)
                        run = []
                    run_conn = entry.conn
                    run.append(message.frame)
                continue
            if kind is Replies:
                for seq, frame in zip(message.seqs, message.frames):
                    entry = inflight.pop(seq, None)
                    if waiting:
                        waiting.discard(seq)
                        handle.held_waiting.discard(seq)
                    if entry is not None:
                        if entry.conn != run_conn and run:
                            outlet.replies(run_conn, run)
                            run = []
                        run_conn = entry.conn
                        run.append(frame)
                continue
            if run:   # what came before this message goes out before it
                outlet.replies(run_conn, run)
                run = []
            if kind is Event:
                outlet.event(message.targets, message.frame)
            elif kind is PartReply:
                entry = inflight.pop(message.seq, None)
                if entry is not None:
                    self._part_done(entry.part, message.error, message.value)  # type: ignore[attr-defined]
            elif kind is Pong:
                self.pool.pong(handle)
        if run:
            outlet.replies(run_conn, run)

    def _fan_out(self, conn: int, req: Request) -> None:
        """write / read_many: checked for every pin first, then one part per pin."""
        boards = list(req.args["pins"])
        if req.op == "write":
            lease = {"lease_ms": req.args.get("lease_ms", 0.0),
                     "revert": req.args.get("revert", "safe")}
            parts = {}
            for board, level in req.args["pins"].items():
                op = "on" if level == 1.0 else "off" if level == 0.0 else "value"
                args = dict(lease, time_ms=0.0, **({"level": level} if op == "value" else {}))
                self.rules.check(board, op, args)
                parts[board] = (op, args)
        else:
            parts = {board: ("read", {}) for board in boards}
            for board in boards:
                self.rules.check_access(board, "read")
        handles = {board: self._handle(board) for board in boards}  # type: ignore[attr-defined]
        if req.op == "write":
            self.ownership.claim_all(conn, boards, "write")
        gather = Gather(conn, req.id_json, "write" if req.op == "write" else "read", len(parts))
        for board, (op, args) in parts.items():
            self._dispatch(handles[board], conn, "0", op, args,  # type: ignore[attr-defined]
                           GatherPart(gather, board), board)
