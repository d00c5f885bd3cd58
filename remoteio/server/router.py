"""The router: sends each request to the worker that owns its resource.

It runs on the listener's thread, called for each read's requests and for
each readiness of a worker's pipes: no lock, no thread hop, and nothing in
it blocks. Its collaborators each own one piece of state: the sharing rule
(:class:`~.ownership.Ownership`), the pin rules (:class:`~.rules.Rules`,
access and the standalone check here; the worker judges every change again),
the processes (:class:`~.pool.WorkerPool`), ``info`` (:class:`~.info.InfoService`).
The router itself owns the in-flight table of each worker (what it must
still answer, and for whom) and the batches being built.

Requests are batched per worker: one pipe write per worker for each chunk
the listener hands over and at the end of each turn (:meth:`Router.flush`).
When a worker is behind the router says so (:meth:`Router.congested`) and
the listener stops reading from the connections that fed it until it
drains; other pins and connections go on.

Replies and events leave through the :class:`Outlet` the listener gives it,
one append at a time (a worker's consecutive replies for one connection are
one), so that every bound on a connection's output holds at every append.
"""
from __future__ import annotations

import logging
import os
import selectors
import time
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Optional, Set

try:
    from typing import Protocol
except ImportError:  # Python < 3.8
    Protocol = object  # type: ignore

from ..errors import NotSupported, ServerBusy, ServerError, ShuttingDown, WorkerFailed
from ..pins import BOARD_TO_BCM, bus_chip_pin, describe, is_bus_chip_spec, pin_key
from ..protocol import writing
from ..protocol.ops import BATCH, BUS, PIN, SERVER
from ..protocol.reading import Request
from .admin import sim_operation
from .batching import Inflight, PinBatching
from .backends import Backend
from .busgate import BusGate
from .expanderroute import Expanders
from .routebuses import MAX_INFLIGHT, BusRouting
from .routeexpanders import ExpanderRouting
from .gather import GatherPart, PartError
from .info import InfoService
from .messages import Gone, MakeSafe, Settings, Task, ToWorker
from .ownership import Ownership
from .pool import WorkerEnded, WorkerHandle, WorkerPool, check_waiting
from .rules import Rules
from .serialgate import SerialGate
from .spawn import pin_settings
from .spiusers import SpiUsers
from .status import StatusTable

log = logging.getLogger(__name__)

#: pin tasks that run on the worker's clock with no end posted (a blink goes on
#: until something replaces it): a worker running one is probed
CLOCKED_TASKS = ("blink", "pulse")


class Outlet(Protocol):
    """Where the router's output goes (the listener)."""

    def reply(self, conn: int, frame: bytes) -> None:
        """The answer to one request of *conn*."""

    def replies(self, conn: int, frames: List[bytes]) -> None:
        """The answers to several requests of *conn*, in order."""

    def event(self, targets: Iterable[int], frame: bytes) -> None:
        """A pushed frame for each of *targets* (droppable for a slow reader)."""

    def is_open(self, conn: int) -> bool:
        """Is *conn* still there (a closed one's later requests are dropped)?"""


class Router(BusRouting, ExpanderRouting, PinBatching):
    def __init__(self, *, backend: Backend, mode: str, status: StatusTable, rules: Rules, pool: WorkerPool,
                 outlet: Outlet, selector: selectors.BaseSelector, version: str, started: float,
                 disconnect_policy: str = "finish", show_peers: bool = True,
                 buses: Optional[BusGate] = None, expanders: Optional[Expanders] = None):
        self.backend = backend
        self.mode = mode
        self.status = status
        self.rules = rules
        self.pool = pool
        self.outlet = outlet
        self.version = version
        self.started = started
        self.disconnect_policy = disconnect_policy
        self.ownership = Ownership(show_peers)
        self.ownership.access = lambda board: self.rules.rule(board).access  # as reloaded
        self.buses = buses or BusGate()
        self.spi = SpiUsers(self.ownership)
        self.serial = SerialGate(self.buses.default.access, self.buses.rules,
                                 sim=backend.sim is not None)
        self.expanders = expanders if expanders is not None else Expanders({})
        self.info = InfoService(self._snapshot, outlet.reply)
        selector.register(self.info.fileno(), selectors.EVENT_READ, ("info", None))
        self.stopping = False
        self._seq = 0
        self._batches: Dict[WorkerHandle, List[ToWorker]] = {}
        self._feeding: Dict[int, Set[WorkerHandle]] = defaultdict(set)  # conn -> congested workers

    # ---- connections (the listener's calls) ---------------------------------------------
    def opened(self, conn: int, peer: str) -> None:
        self.ownership.opened(conn, peer)

    def identify(self, conn: int, session: str, take_over: bool) -> None:
        self.ownership.identify(conn, session, take_over)

    def closed(self, conn: int) -> None:
        """A connection is gone: its pins follow their disconnect policy."""
        left = self.ownership.closed(conn)
        self._feeding.pop(conn, None)
        holders = []
        for board in left.owned | left.watched:
            handle = self.pool.get(self._worker_key(board))
            if handle is not None:
                policy = self.rules.rule(board).on_disconnect or self.disconnect_policy
                self._queue(handle, self._for(handle, board, Gone(conn, board in left.owned,
                                                                  policy)))
                if board in left.owned:
                    holders.append(handle)
        for key in self.spi.closed(conn):   # its last user went: the worker closes the device
            self._close_spi(key)
        for key in self.serial.closed(conn):   # the ports it received from stop pushing to it
            handle = self.pool.get(key)
            if handle is not None:
                self._queue(handle, Gone(conn, False, "finish"))
        self._send_batches()
        now = time.monotonic()
        for handle in holders:  # an idle pin's hung worker is found, and the pin made safe anyway
            self.pool.probe_now(handle, now)

    def route(self, conn: int, requests: List[Request]) -> None:
        """Route one read's requests (replies go to the outlet); a span of
        header pins' requests one pin's run at a time (batching.py)."""
        outlet, n, count = self.outlet, 0, len(requests)
        while n < count:
            if not outlet.is_open(conn):
                break  # closed on the way (its output ran over): nothing more for it
            req, end = requests[n], n + 1
            board = req.pin
            if req.spec.scope == PIN and type(board) is int:   # a span of header pins' requests
                while end < count and type(requests[end].pin) is int \
                        and requests[end].spec.scope == PIN:
                    end += 1
                if end - n > 1:
                    self._route_span(conn, requests[n:end])
                    n = end
                    continue
            n = end
            try:
                scope = req.spec.scope
                if scope == SERVER:
                    self._server_op(conn, req)
                elif scope == BATCH:
                    self._fan_out(conn, req)
                elif scope == BUS:
                    self._to_bus(conn, req)
                else:
                    self._to_worker(conn, req)
            except ServerError as exc:
                outlet.reply(conn, writing.error_from(exc, req.id_json))
            except Exception:  # a bug: answer it, log it, and keep routing
                log.exception("routing %s failed", req.op)
                outlet.reply(conn, writing.error_from(ServerError(
                    f"internal error while routing {req.op}; see the server log"), req.id_json))

    def flush(self) -> None:
        """Send each worker what was routed to it since the last flush, in one
        write per worker (the listener calls it after each chunk of a
        connection's requests and at the end of every turn)."""
        self._send_batches()
        self.info.moment_ended()

    def congested(self, conn: int) -> bool:
        """Should the listener stop reading *conn* for now (a worker it feeds is full)?"""
        feeding = self._feeding.get(conn)
        if not feeding:
            return False
        for handle in list(feeding):
            if handle.tasks.closed or self.pool.drained(handle):
                feeding.discard(handle)
        if not feeding:
            del self._feeding[conn]
            return False
        return True

    # ---- routing ----------------------------------------------------------------------
    def _to_worker(self, conn: int, req: Request) -> None:
        board, op = req.pin, req.op
        self.rules.check(board, op, req.args)
        handle = self._handle(board)
        if req.spec.claims:
            self.ownership.claim(conn, board, op)
        elif op in ("watch", "unwatch"):
            self.ownership.watch(conn, board, op == "watch")
        self._dispatch(handle, conn, req.id_json, op, req.args, None, board)

    def _worker_key(self, board: Any) -> Any:
        """The pool's key of the worker that runs *board* (an expander's pin: its chip's)."""
        return self.expanders.spec_of(board).key if isinstance(board, str) else board

    def _for(self, handle: WorkerHandle, board: Any, message: ToWorker) -> ToWorker:
        """*message* as *board*'s worker takes it (an expander's: for one of its pins)."""
        return self.expanders.wrap(board, message) if handle.kind == "expander" else message

    def _handle(self, board: Any) -> WorkerHandle:
        if isinstance(board, str):
            return self._expander_handle(board)
        self.ownership.check_bus(board)
        handle = self.pool.get(board)
        if handle is None:
            if self.stopping:
                raise ShuttingDown("the server is stopping")
            handle = self.pool.start("pin", board, pin_settings(self.rules.rule(board)))
        if len(handle.inflight) >= MAX_INFLIGHT:
            raise ServerBusy(f"{describe(board)} has {MAX_INFLIGHT} requests in progress")
        return handle

    def _dispatch(self, handle: WorkerHandle, conn: int, id_json: str, op: str,
                  args: Dict[str, Any], part: Optional[GatherPart], board: Any = None) -> None:
        if op == "sync":
            holder = self.ownership.owner(board) == conn
            check_waiting(handle, describe(board) if isinstance(board, int) else str(board), holder)
        self._seq += 1
        handle.inflight[self._seq] = Inflight(conn, id_json, part)
        if op == "sync":
            handle.waiting.add(self._seq)
            if holder:
                handle.held_waiting.add(self._seq)
        task = Task(self._seq, conn, id_json, op, args, part is not None)
        self._queue(handle, self._for(handle, board, task))
        if self.pool.congested(handle):
            self._feeding[conn].add(handle)

    def _queue(self, handle: WorkerHandle, message: ToWorker) -> None:
        batch = self._batches.get(handle)
        if batch is None:
            self._batches[handle] = [message]
        else:
            batch.append(message)

    def _send_batches(self) -> None:
        if self._batches:
            batches, self._batches = self._batches, {}
            for handle, batch in batches.items():
                self.pool.send(handle, batch)

    def _server_op(self, conn: int, req: Request) -> None:
        if req.op == "info":
            self.info.ask(conn, req.id_json)
        elif req.op == "sim":
            args = req.args
            for spec in (args["pin"], args["to"]):
                if is_bus_chip_spec(spec):   # "i2c1@0x20:A3": the bus's rule
                    self.buses.check_sim(*bus_chip_pin(spec)[:2], args["action"])
                elif spec is not None:
                    self.rules.check_sim(pin_key(spec), args["action"])
            self.outlet.reply(conn, writing.ok(req.id_json, sim_operation(
                self.backend, args, self.rules.served)))
        elif req.op == "expander_declare":
            self.outlet.reply(conn, writing.ok(req.id_json, self._declare_expander(req.args)))
        else:  # pragma: no cover - the whitelist has no other server op
            raise NotSupported(f"{req.op} is not a server operation")

    def _snapshot(self):
        """``info`` without its memory figure (the info thread adds it)."""
        pins = []
        for board in sorted(key for key in self.pool.handles if isinstance(key, int)):
            status = self.status.read(board) or {}
            pins.append({"pin": board, "gpio": BOARD_TO_BCM[board],
                         "owner": self.ownership.peer(self.ownership.owner(board)), **status})
        pids = [os.getpid()] + [h.pid for h in self.pool if h.pid is not None]
        fields = {"server": self.version, "uptime_s": round(time.monotonic() - self.started, 3),
                  "mode": self.mode, "backend": self.backend.name,
                  "connections": self.ownership.connections, "pins": pins,
                  "held": [{"pin": board, "gpio": BOARD_TO_BCM[board], "by": " and ".join(buses)}
                           for board, buses in sorted(self.ownership.bus_holders().items())]}
        if self.expanders:
            fields["expanders"] = self._expanders_info()
        return fields, pids

    # ---- workers (the listener's calls, when their pipes are ready) ---------------------
    def ready(self, kind: str, handle: Optional[WorkerHandle]) -> None:
        """A descriptor of ours in the listener's selector is ready."""
        if kind == "replies":
            self._read_worker(handle)
        elif kind == "tasks":
            self.pool.writable(handle)
        elif kind == "zygote":
            self.pool.zygote_ready()
        elif kind == "info":
            self.info.ready()

    def _read_worker(self, handle: WorkerHandle) -> None:
        try:
            messages = self.pool.read(handle)
        except WorkerEnded:
            self._worker_ended(handle)
            return
        self._deliver(handle, messages)

    def _part_done(self, part: GatherPart, error: PartError, value: Any = None) -> None:
        frame = part.gather.add(part.board, error, value)
        if frame is not None:
            self.outlet.reply(part.gather.conn, frame)

    def _fail_inflight(self, handle: WorkerHandle, error: ServerError) -> None:
        entries, handle.inflight = list(handle.inflight.values()), {}
        handle.waiting.clear()
        handle.held_waiting.clear()
        for entry in entries:
            if entry.part is not None:
                self._part_done(entry.part, (error.code, error.message, None))
            else:
                self.outlet.reply(entry.conn, writing.error_from(error, entry.id_json))

    def _worker_ended(self, handle: WorkerHandle) -> None:
        if not self.pool.ended(handle):
            return
        board = handle.key
        if self.stopping:
            self._fail_inflight(handle, ShuttingDown("the server is stopping"))
            return
        if handle.kind == "expander":
            self._expander_ended(handle)
            return
        if handle.kind != "pin":  # a bus: its next use starts a fresh worker
            self._bus_ended(handle)
            return
        log.warning("%s: worker %s ended (exit status %s); a fresh worker makes the pin safe",
                    describe(board), handle.pid, handle.exit_status)
        failure = WorkerFailed(f"the worker of {describe(board)} died; the pin was made safe")
        self._fail_inflight(handle, failure)
        told = self.ownership.worker_died(board)
        if told:
            self.outlet.event(tuple(told), writing.event(
                "worker_failed", {"pin": board, "message": failure.message}))
        was_output = (self.status.read(board) or {}).get("mode") == "output"
        self.status.clear(board)
        # the kernel let go of the dead worker's line, but an output may keep
        # its level: a fresh worker drives it safe, then releases it
        try:
            fresh = self.pool.start(handle.kind, board, pin_settings(self.rules.rule(board)))
        except WorkerFailed as exc:
            log.error("%s: the pin could not be made safe: %s", describe(board), exc.message)
            return
        self._queue(fresh, MakeSafe(was_output))
        self._send_batches()

    def reload_rules(self, rules: Rules) -> None:
        """New pin rules: checked from the next request on, and told to every
        running worker (each judges its next change by them)."""
        self.rules = rules
        for handle in self.pool:
            if handle.kind == "pin":
                self._queue(handle, Settings(pin_settings(rules.rule(handle.key))))
            elif handle.kind == "expander":
                for pin in self.expanders.pins(self.expanders.specs[handle.key[1]]):
                    self._queue(handle, self.expanders.wrap(
                        pin, Settings(pin_settings(rules.rule(pin)))))
        self._send_batches()

    # ---- time and the end ------------------------------------------------------------------
    def next_deadline(self) -> float:
        return self.pool.next_deadline()

    def tick(self, now: float) -> None:
        """Supervision on the clock (hung workers)."""
        self.pool.probe(now, needed=self._supervised)

    def _supervised(self, handle: WorkerHandle) -> bool:
        """Does this worker run anything on its clock or for a watcher (so that a
        hang would go unnoticed without a probe)? A steady or released pin does not."""
        if handle.kind != "pin":
            return True
        status = self.status.read(handle.key)
        return status is None or bool(
            status["remaining_ms"] is not None or status["lease_ms"] is not None
            or status["watchers"] or status["queue"] or status["task"] in CLOCKED_TASKS)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Every worker makes its resource safe and exits; what they still
        answer goes out; what they cannot answer gets shutting_down."""
        self.stopping = True
        self._send_batches()
        handles = list(self.pool)
        self.pool.stop(timeout, self._deliver)
        for handle in handles:
            self._fail_inflight(handle, ShuttingDown("the server is stopping"))
        self.info.close()
