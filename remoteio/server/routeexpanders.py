"""The router's part for I/O expanders: starting an expander's worker, and its death.

A mixin of :class:`~.router.Router` (the same object and state, split off by
job): an expander's pins share one worker, so its start holds the bus's
header pins and its death tells the holders and watchers of every pin.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List

from ..errors import BadArgument, Forbidden, ServerBusy, ShuttingDown, WorkerFailed
from ..pins import BOARD_TO_BCM, describe
from ..protocol import writing
from ..protocol.buses import BUS_PINS
from .expanderconfig import ExpanderSpec, parse_expander
from .pool import WorkerHandle
from .simchips import SLOTS
from .routebuses import MAX_INFLIGHT

if TYPE_CHECKING:  # the attributes a Router has
    from .backends import Backend
    from .busgate import BusGate
    from .expanderroute import Expanders
    from .ownership import Ownership
    from .pool import WorkerPool
    from .router import Outlet
    from .rules import Rules
    from .status import StatusTable

log = logging.getLogger("remoteio.server.router")


class ExpanderRouting:
    buses: "BusGate"
    expanders: "Expanders"
    ownership: "Ownership"
    pool: "WorkerPool"
    rules: "Rules"
    outlet: "Outlet"
    status: "StatusTable"
    backend: "Backend"
    stopping: bool

    def _expanders_info(self) -> List[Dict[str, Any]]:
        """``info``'s ``expanders``: each declared chip, its worker, its pins' status
        (the pins its worker has posted: all of them once it has run)."""
        out = []
        for name in sorted(self.expanders.specs):
            spec = self.expanders.specs[name]
            handle = self.pool.get(spec.key)
            pins = []
            for pin in self.expanders.pins(spec):
                status = self.status.read(pin) if self.status.has(pin) else None
                if status is not None:
                    pins.append({"pin": pin, "gpio": None,
                                 "owner": self.ownership.peer(self.ownership.owner(pin)),
                                 **status})
            out.append({"name": name, "chip": spec.chip, "bus": spec.bus,
                        "address": spec.address, "poll_ms": spec.poll_ms,
                        "interrupt": spec.interrupt,
                        "pid": handle.pid if handle is not None else None, "pins": pins})
        return out

    def _expander_handle(self, pin: str) -> WorkerHandle:
        """The worker of the expander of *pin*, started on first use."""
        spec = self.expanders.spec_of(pin)
        handle = self.pool.get(spec.key)
        if handle is None:
            if self.stopping:
                raise ShuttingDown("the server is stopping")
            # its bus's header pins (I2C1: BOARD3/5) are held as for the bus's own worker,
            # and its interrupt line, which its worker reads
            held = f"expander {spec.name} (I2C bus {spec.bus})"
            line = () if spec.interrupt is None else (spec.interrupt,)
            self.ownership.hold_for_bus(held, BUS_PINS.get(("i2c", spec.bus), ()), listens=line)
            try:
                handle = self.pool.start("expander", spec.key, self._expander_settings(spec))
            except WorkerFailed:
                self.ownership.release_bus(held)
                raise
        if len(handle.inflight) >= MAX_INFLIGHT:
            raise ServerBusy(f"expander {spec.name} has {MAX_INFLIGHT} requests in progress")
        return handle

    def _expander_settings(self, spec: ExpanderSpec) -> Dict[str, Any]:
        settings = self.expanders.settings(spec, self.rules.rule)
        settings["slots"] = self.status.slots(self.expanders.pins(spec))   # info's slots
        return settings

    def _declare_expander(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """The ``expander_declare`` operation: an expander added at run time."""
        if not self.expanders.declarable:
            raise Forbidden("this server's expanders are declared in its configuration only "
                            "([server] declare_expanders = true lets clients add them)")
        table = {key: value for key, value in args.items()
                 if key != "expander" and value is not None}
        spec = parse_expander(args["expander"], table, lambda key, message: BadArgument(
            f"{key}: {message}" if key else message))
        if spec.interrupt is not None and not self.rules.served(spec.interrupt):
            raise Forbidden(f"interrupt: {describe(spec.interrupt)} is not served by this server")
        # refused now, not at its first use: the bus's rule and its header pins' rules
        self.buses.check_expander(spec.name, spec.bus, spec.address)
        self.ownership.check_bus_pins(f"expander {spec.name} (I2C bus {spec.bus})",
                                      BUS_PINS.get(("i2c", spec.bus), ()))
        try:
            self.status.slots(self.expanders.pins(spec))
        except KeyError:
            raise ServerBusy("no room left for another expander's pins") from None
        sim = self.backend.sim
        if sim is not None:   # checked before add: the declaration below cannot fail
            if len(sim.chips.names) >= SLOTS:
                raise ServerBusy(f"a simulated board holds at most {SLOTS} expanders")
        self.expanders.add(spec)
        if sim is not None:
            sim.chips.declare(spec.name, spec.bus, spec.address, spec.chip, None if
                              spec.interrupt is None else BOARD_TO_BCM[spec.interrupt])
        log.info("expander %s declared at run time (%s, I2C bus %d, address 0x%02x)",
                 spec.name, spec.chip, spec.bus, spec.address)
        return {"name": spec.name, "pins": list(self.expanders.pins(spec))}

    def _expander_ended(self, handle: WorkerHandle) -> None:
        """An expander's worker died: its requests fail, its pins' holders and
        watchers are told, and a fresh worker takes the chip (every pin released)."""
        spec = self.expanders.specs[handle.key[1]]
        log.warning("expander %s: worker %s ended (exit status %s); its pins made safe",
                    spec.name, handle.pid, handle.exit_status)
        failure = WorkerFailed(f"the worker of expander {spec.name} died; its pins were made "
                               "safe")
        self._fail_inflight(handle, failure)
        for pin in self.expanders.pins(spec):
            told = self.ownership.worker_died(pin)
            if told:
                self.outlet.event(tuple(told), writing.event(
                    "worker_failed", {"pin": pin, "message": failure.message}))
        try:  # the fresh worker resets the chip: every pin an input, as at the start
            self.pool.start("expander", spec.key, self._expander_settings(spec))
        except WorkerFailed as exc:
            log.error("expander %s: %s", spec.name, exc.message)
