"""The router's part for buses (I2C, SPI, serial): the gates, starting a bus's worker, its death.

A mixin of :class:`~.router.Router` (the same object and state, split off by
job, as :mod:`.routeexpanders` is): a bus's worker starts on the bus's first
use holding the bus's header pins, and its death frees them, fails what it
had in hand and tells a serial port's receivers.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Tuple

from ..errors import ServerBusy, ShuttingDown, WorkerFailed
from ..protocol import writing
from ..protocol.buses import BUS_PINS, bus_name, request_bus
from ..protocol.reading import Request
from .messages import Task
from .pool import WorkerHandle

if TYPE_CHECKING:  # the attributes a Router has
    from .backends import Backend
    from .busgate import BusGate
    from .expanderroute import Expanders
    from .ownership import Ownership
    from .pool import WorkerPool
    from .router import Outlet
    from .serialgate import SerialGate
    from .spiusers import SpiUsers

log = logging.getLogger("remoteio.server.router")

#: requests a worker (of a pin, a bus or an expander) may have unanswered
#: before new ones get server_busy
MAX_INFLIGHT = 4000


class BusRouting:
    backend: "Backend"
    buses: "BusGate"
    spi: "SpiUsers"
    serial: "SerialGate"
    expanders: "Expanders"
    ownership: "Ownership"
    pool: "WorkerPool"
    outlet: "Outlet"
    stopping: bool

    def _to_bus(self, conn: int, req: Request) -> None:
        """A bus call: the gate, then the bus's worker (started on first use)."""
        if req.op.startswith("serial_"):
            self._to_serial(conn, req)
            return
        key = request_bus(req.op, req.args)
        self.buses.check(key, req.op, req.args)
        if key[0] == "i2c":
            self.expanders.check_address(key, req.op, req.args)
        if key[0] == "spi" and not self.spi.admit(conn, key, req.op, self.backend.sim is not None,
                                                  key in self.pool):
            self.outlet.reply(conn, writing.ok(req.id_json, {}))   # a close that closes nothing
            return
        # I2C holds its pins while its worker runs; SPI while a connection has it open
        handle = self._bus_handle(key, () if key[0] == "spi" else BUS_PINS.get(key, ()),
                                  lambda: self._bus_settings(key))
        self._dispatch(handle, conn, req.id_json, req.op, req.args, None)

    def _bus_settings(self, key: Tuple[Any, ...]) -> Dict[str, Any]:
        """What a bus's worker starts with; a simulated I2C bus's MCP230xx
        chips get their shared slots first (kept when a worker is replaced)."""
        sim = self.backend.sim
        settings = self.buses.settings(key, sim is not None)
        if sim is not None and key[0] == "i2c":
            settings["shared"] = [list(s) for s in sim.chips.declare_bus(key[1])]
        return settings

    def _close_spi(self, key: Any) -> None:
        handle = self.pool.get(key)
        if handle is not None:   # nobody waits for its reply (no in-flight entry)
            self._seq += 1
            self._queue(handle, Task(self._seq, 0, "0", "spi_close",
                                     {"bus": key[1], "device": key[2]}, False))

    def _bus_handle(self, key: Tuple[Any, ...], pins: Iterable[int],
                    settings: Callable[[], Dict[str, Any]]) -> WorkerHandle:
        """The worker of bus *key* (kind ``key[0]``), started on first use holding *pins*."""
        handle = self.pool.get(key)
        if handle is None:
            if self.stopping:
                raise ShuttingDown("the server is stopping")
            self.ownership.hold_for_bus(bus_name(key), pins)
            try:
                handle = self.pool.start(key[0], key, settings())
            except WorkerFailed:
                self.ownership.release_bus(bus_name(key))
                raise
        if len(handle.inflight) >= MAX_INFLIGHT:
            raise ServerBusy(f"{bus_name(key)} has {MAX_INFLIGHT} requests in progress")
        return handle

    def _to_serial(self, conn: int, req: Request) -> None:
        """A serial port's request: the port it names, its access, then its worker."""
        key = self.serial.resolve(req.args["port"])
        self.serial.check(key, req.op, req.args)
        handle = self._bus_handle(key, self.serial.pins(key), lambda: self.serial.settings(key))
        if req.op in ("serial_open", "serial_close"):
            self.serial.opened(conn, key, req.op == "serial_open")
        self._dispatch(handle, conn, req.id_json, req.op, req.args, None)

    def _bus_ended(self, handle: WorkerHandle) -> None:
        """A bus's worker died: its calls fail, its pins are free, a serial port's
        receivers are told (they open it again); its next use starts a fresh one."""
        name = bus_name(handle.key)
        log.warning("%s: worker %s ended (exit status %s)", name, handle.pid, handle.exit_status)
        self._fail_inflight(handle, WorkerFailed(
            f"the worker of {name} died (a stuck bus?); the next call starts a fresh one"))
        self.ownership.release_bus(name)
        if handle.kind == "serial":   # client/serial.py opens it again
            self.outlet.event(self.serial.users(handle.key), writing.event(
                "worker_failed", {"port": handle.key[1], "message": f"the worker of {name} died"}))
