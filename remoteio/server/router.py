"""The router: owns the pin table and sends each request to its pin's worker.

Routing has two ways in, one set of rules (all state under one lock):

* the **fast path**: the listener thread routes a read's requests itself
  when every pin involved already has a running worker and none of that
  connection's earlier requests is still waiting for the router thread;
  they go straight into the workers' pipes (no thread hop);
* the **router thread** blocks on the inbound queue and takes everything
  else: a pin's first use (it forks the worker), ``info``, connections that
  closed, workers that died, shutdown. A connection's later requests follow
  its queued ones through the thread, so per-pin order is kept.

Requests are batched per worker (one pipe write per worker per batch).
Supervision: a worker whose reply pipe ends has died; its unanswered
requests get ``worker_failed`` and a fresh worker puts the pin in its safe
state.

Sharing rule: the first connection to drive a pin (any task, ``open``,
``input``/``output``, ``close``, ``write``) holds it until it closes the pin
or disconnects; others get ``pin_busy`` for those operations. Anyone may
``read``, ``state``, ``sync`` and ``watch`` any pin. A connection that closed
a pin gets ``pin_closed`` for further tasks on it until it sends ``open``.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing
import queue
import threading
import time
import warnings
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..errors import (NotSupported, PinBusy, PinClosed, ServerBusy, ServerError, ShuttingDown,
                      WorkerFailed)
from ..pins import BOARD_TO_BCM, describe
from ..protocol import writing
from ..protocol.ops import BATCH, SERVER
from ..protocol.reading import Request
from .admin import server_info, sim_operation
from .channel import Channel, channel_pair
from .gather import Gather, GatherPart
from .rules import Rules
from .spawn import worker_main

log = logging.getLogger(__name__)

Outgoing = List[Tuple[Any, bytes]]  # (conn id, conn ids or batch part, frame)

#: requests a worker may have unanswered before new ones get server_busy
MAX_INFLIGHT = 4000


class WorkerHandle:
    """What the server keeps of one pin worker (shared with the listener)."""

    def __init__(self, board: int, generation: int, process, tasks: Channel, replies: Channel):
        self.board = board
        self.generation = generation
        self.process = process
        self.tasks = tasks      # our (writing) end of the worker's task pipe
        self.replies = replies  # our (reading) end of its reply pipe
        #: seq -> (conn, id_json, batch part or None) of requests sent and not
        #: yet answered; added under the router's lock, removed by the listener
        self.inflight: Dict[int, Tuple[int, str, Optional[GatherPart]]] = {}
        #: when the router last asked the worker whether it is alive (None:
        #: answered); the listener clears it when the answer comes
        self.probe_sent: Optional[float] = None


class Router:
    def __init__(self, *, backend, mode: str, status, send: Callable[[Outgoing], None],
                 attach_worker: Callable[[WorkerHandle], None], rules: Rules,
                 disconnect_policy: str = "finish", hang_timeout: float = 10.0):
        self.backend = backend
        self.mode = mode
        self.status = status
        self.send = send
        self.attach_worker = attach_worker
        self.rules = rules
        self.disconnect_policy = disconnect_policy
        self.hang_timeout = hang_timeout
        self.inbound: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.workers: Dict[int, WorkerHandle] = {}
        self.owners: Dict[int, int] = {}
        self.owned: Dict[int, Set[int]] = defaultdict(set)
        self.closed_by: Dict[int, Set[int]] = defaultdict(set)
        self.watching: Dict[int, Set[int]] = defaultdict(set)
        self.peers: Dict[int, str] = {}
        self.sessions: Dict[int, Tuple[str, bool]] = {}
        self.queued: Dict[int, int] = defaultdict(int)  # requests waiting for the thread
        self.started = time.monotonic()
        self.stopping = False
        self._seq = itertools.count(1)
        self._generation = itertools.count(1)
        self._context = multiprocessing.get_context("fork")
        self._batches: Dict[int, List[tuple]] = defaultdict(list)
        self._out: Outgoing = []

    # ---- the listener's ways in ----------------------------------------------------
    def opened(self, conn: int, peer: str) -> None:
        with self.lock:
            self.peers[conn] = peer

    def identify(self, conn: int, session: str, take_over: bool) -> None:
        """The client process a connection comes from (hello's ``session``),
        and whether it may take pins over from that process's older
        connections (a notebook cell run again)."""
        with self.lock:
            self.sessions[conn] = (session, take_over)

    def route(self, conn: int, requests: List[Request]) -> Outgoing:
        """Route what can go straight to running workers; queue the rest for
        the router thread. Returns the replies produced on the way."""
        with self.lock:
            if not self.queued.get(conn):
                for n, req in enumerate(requests):
                    if not self._fast(req):
                        requests = requests[n:]
                        break
                    self._route_one(conn, req)
                else:
                    requests = []
            if requests:
                self.queued[conn] += len(requests)
                self.inbound.put(("requests", conn, requests))
            self._send_batches()
            out, self._out = self._out, []
        return out

    def _fast(self, req: Request) -> bool:
        scope = req.spec.scope
        if scope == SERVER:
            return req.op == "sim"
        if scope == BATCH:
            return all(board in self.workers for board in req.args["pins"])
        return req.pin in self.workers

    # ---- the router thread ---------------------------------------------------------
    def run(self) -> None:
        next_check = time.monotonic() + self.hang_timeout / 2
        while True:
            try:
                item: Optional[tuple] = self.inbound.get(
                    timeout=max(0.0, next_check - time.monotonic()))
            except queue.Empty:
                item = None
            with self.lock:
                while item is not None:
                    if item[0] == "stop":
                        self._shutdown()
                        self._flush()
                        return
                    try:
                        self._handle(item)
                    except Exception:  # the router must outlive any bug
                        log.exception("router: handling %s failed", item[0])
                    try:
                        item = self.inbound.get_nowait()
                    except queue.Empty:
                        item = None
                if time.monotonic() >= next_check:
                    self._probe_workers()
                    next_check = time.monotonic() + self.hang_timeout / 2
                self._flush()

    def _probe_workers(self) -> None:
        """A worker that does not answer a probe within hang_timeout is hung:
        it is killed, and its end of file makes the pin safe (supervision)."""
        now = time.monotonic()
        for handle in self.workers.values():
            if handle.probe_sent is None:
                handle.probe_sent = now
                self._batches[handle.board].append(("probe",))
            elif now - handle.probe_sent > self.hang_timeout:
                log.error("pin %d: worker %d did not answer for %.0f s; killing it",
                          handle.board, handle.process.pid, now - handle.probe_sent)
                handle.process.kill()

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "requests":
            _, conn, requests = item
            for req in requests:
                self._route_one(conn, req)
            self.queued[conn] -= len(requests)
            if not self.queued[conn]:
                del self.queued[conn]
        elif kind == "closed":
            self._connection_closed(item[1])
        elif kind == "worker_eof":
            self._worker_ended(item[1], item[2])

    def _flush(self) -> None:
        self._send_batches()
        if self._out:
            out, self._out = self._out, []
            self.send(out)

    def _send_batches(self) -> None:
        if not self._batches:
            return
        batches, self._batches = self._batches, defaultdict(list)
        for board, batch in batches.items():
            handle = self.workers.get(board)
            if handle is None:
                self._batches[board] += batch  # its worker is being started: keep it
                continue
            try:
                handle.tasks.send(batch)
            except OSError:
                pass  # the worker is dying; its end of file brings the failure replies

    # ---- routing -------------------------------------------------------------------
    def _route_one(self, conn: int, req: Request) -> None:
        try:
            if req.spec.scope == SERVER:
                self._out.append((conn, writing.ok(req.id_json, self._server_op(req))))
            elif req.spec.scope == BATCH:
                self._fan_out(conn, req)
            else:
                self._to_worker(conn, req)
        except ServerError as exc:
            self._out.append((conn, writing.error_from(exc, req.id_json)))
        except Exception:  # a bug: answer it, log it, and keep routing
            log.exception("routing %s failed", req.op)
            self._out.append((conn, writing.error_from(ServerError(
                f"internal error while routing {req.op}; see the server log"), req.id_json)))

    def _to_worker(self, conn: int, req: Request) -> None:
        board, op = req.pin, req.op
        self.rules.check(board, op, req.args)
        if req.spec.claims:
            self._claim(conn, board, op)
        elif op == "watch":
            self.watching[conn].add(board)
        elif op == "unwatch":
            self.watching[conn].discard(board)
        self._dispatch(board, conn, req.id_json, op, req.args, None)

    def _dispatch(self, board: int, conn: int, id_json: str, op: str, args: Dict[str, Any],
                  part: Optional[GatherPart]) -> None:
        handle = self.workers.get(board) or self._spawn(board)
        if len(handle.inflight) >= MAX_INFLIGHT:
            raise ServerBusy(f"{describe(board)} has {MAX_INFLIGHT} requests in progress")
        seq = next(self._seq)
        handle.inflight[seq] = (conn, id_json, part)
        self._batches[board].append(("req", seq, conn, id_json, op, args))

    def _fan_out(self, conn: int, req: Request) -> None:
        """write / read_many: checked for every pin first, then one part per pin."""
        lease = {"lease_ms": req.args.get("lease_ms", 0.0), "revert": req.args.get("revert", "safe")}
        if req.op == "write":
            parts = {}
            for board, level in req.args["pins"].items():
                op = "on" if level == 1.0 else "off" if level == 0.0 else "value"
                args = dict(lease, time_ms=0.0, **({"level": level} if op == "value" else {}))
                self.rules.check(board, op, args)
                self._check_claim(conn, board, "write")
                parts[board] = (op, args)
            for board in parts:  # every claim before any dispatch (a fork lets go of the lock)
                self._claim(conn, board, "write")
            gather = Gather(conn, req.id_json, "write", len(parts))
        else:
            parts = {board: ("read", {}) for board in req.args["pins"]}
            for board in parts:
                self.rules.check(board, "read", {})
            gather = Gather(conn, req.id_json, "read", len(parts))
        for board, (op, args) in parts.items():
            part = GatherPart(gather, board)
            try:
                self._dispatch(board, conn, "0", op, args, part)
            except ServerError as exc:  # this part only (its worker is too busy)
                self._out.append((part, writing.error_from(exc)))

    def _check_claim(self, conn: int, board: int, op: str) -> None:
        owner = self.owners.get(board)
        if owner is None:
            if board in self.closed_by[conn] and op != "open":
                raise PinClosed(f"{describe(board)} was closed by this connection; "
                                "send 'open' to use it again")
        elif owner != conn and not self._may_take_over(conn, owner):
            if self._same_process(conn, owner):
                raise PinBusy(f"{describe(board)} is held by another connection of this same "
                              "program (an earlier RemoteServer: a notebook cell run again?); "
                              "close that one, or connect with take_over=True")
            raise PinBusy(f"{describe(board)} is held by another connection "
                          f"({self.peers.get(owner, '?')})")

    def _same_process(self, conn: int, owner: int) -> bool:
        mine, theirs = self.sessions.get(conn, ("", False)), self.sessions.get(owner, ("", False))
        return bool(mine[0]) and mine[0] == theirs[0]

    def _may_take_over(self, conn: int, owner: int) -> bool:
        return self._same_process(conn, owner) and self.sessions[conn][1]

    def _claim(self, conn: int, board: int, op: str) -> None:
        """Apply the sharing rule (module docstring) for a claiming op."""
        self._check_claim(conn, board, op)
        owner = self.owners.get(board)
        if owner != conn:
            if owner is not None:  # taken over from an older connection of this process
                self.owned[owner].discard(board)
                log.info("%s taken over by a newer connection of the same client",
                         describe(board))
            self.owners[board] = conn
            self.owned[conn].add(board)
            self.closed_by[conn].discard(board)
        if op == "close":
            del self.owners[board]
            self.owned[conn].discard(board)
            self.closed_by[conn].add(board)
            for watchers in self.watching.values():
                watchers.discard(board)

    def _connection_closed(self, conn: int) -> None:
        owned = self.owned.pop(conn, set())
        for board in owned:
            del self.owners[board]
        for board in owned | self.watching.pop(conn, set()):
            if board in self.workers:
                policy = self.rules.rule(board).on_disconnect or self.disconnect_policy
                self._batches[board].append(("gone", conn, board in owned, policy))
        self.closed_by.pop(conn, None)
        self.peers.pop(conn, None)
        self.sessions.pop(conn, None)

    # ---- workers ---------------------------------------------------------------
    def _spawn(self, board: int) -> WorkerHandle:
        tasks_r, tasks_w = channel_pair()
        replies_r, replies_w = channel_pair()
        foreign = [tasks_w.fd, replies_r.fd]
        for other in self.workers.values():
            foreign += [other.tasks.fd, other.replies.fd]
        process = self._context.Process(
            target=worker_main, name=f"remoteio-pin{board}", daemon=True,
            args=(board, BOARD_TO_BCM[board], self.mode, self.backend, self.status,
                  tasks_r, replies_w, self.rules.rule(board), foreign))
        with warnings.catch_warnings():
            # Python >= 3.12 warns of fork with threads; the child runs only
            # our worker code, which takes no lock another thread could hold
            warnings.simplefilter("ignore", DeprecationWarning)
            # a fork takes a millisecond or two: let the listener route to the
            # running workers meanwhile (requests for this pin wait in the
            # inbound queue: it is not in self.workers until it has started)
            self.lock.release()
            try:
                process.start()
            finally:
                self.lock.acquire()
        tasks_r.close()
        replies_w.close()
        handle = WorkerHandle(board, next(self._generation), process, tasks_w, replies_r)
        self.workers[board] = handle
        self.attach_worker(handle)
        log.debug("pin %d: worker %d started", board, process.pid)
        return handle

    def _worker_ended(self, board: int, generation: int) -> None:
        handle = self.workers.get(board)
        if handle is None or handle.generation != generation:
            return
        del self.workers[board]
        handle.process.join(timeout=1.0)
        if handle.process.is_alive():
            handle.process.kill()
            handle.process.join(timeout=1.0)
        handle.tasks.close()
        if self.stopping:
            return
        log.warning("pin %d: worker %s ended (exit code %s); pin made safe",
                    board, handle.process.pid, handle.process.exitcode)
        failure = WorkerFailed(f"the worker of {describe(board)} died; the pin was made safe")
        for conn, id_json, part in list(handle.inflight.values()):
            self._out.append((part or conn, writing.error_from(failure, id_json)))
        handle.inflight.clear()
        told = {conn for conn, boards in self.watching.items() if board in boards}
        for watchers in self.watching.values():
            watchers.discard(board)
        if board in self.owners:
            told.add(self.owners[board])
        if told:
            frame = writing.event("worker_failed", {"pin": board, "message": failure.message})
            self._out.append((tuple(told), frame))
        was_output = (self.status.read(board) or {}).get("mode") == "output"
        self.status.clear(board)
        # the kernel let go of the dead worker's line, but an output may keep
        # its level: a fresh worker drives it off, then releases it
        self._batches[board].append(("safe", was_output))
        self._spawn(board)

    def _shutdown(self) -> None:
        self.stopping = True
        for handle in self.workers.values():
            try:
                handle.tasks.send([("stop",)])
            except OSError:
                pass
        deadline = time.monotonic() + 5.0
        for handle in self.workers.values():
            handle.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if handle.process.is_alive():
                log.warning("pin %d: worker did not stop; killing it", handle.board)
                handle.process.kill()
                handle.process.join(timeout=1.0)
        stopping = ShuttingDown("the server is stopping")
        for handle in self.workers.values():
            for conn, id_json, part in list(handle.inflight.values()):
                self._out.append((part or conn, writing.error_from(stopping, id_json)))
            handle.inflight.clear()
            handle.tasks.close()

    # ---- server-wide operations ---------------------------------------------------
    def _server_op(self, req: Request) -> Optional[Dict[str, Any]]:
        if req.op == "info":
            return server_info(self)
        if req.op == "sim":
            return sim_operation(self.backend, req.args)
        raise NotSupported(f"{req.op} is not a server operation")  # pragma: no cover
