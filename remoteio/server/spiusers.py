"""Who has each SPI device open, and the header pins held while one does (pure, the router's).

A connection opens an SPI device with its first ``spi_*`` call and closes it
with ``spi_close`` or by going. While any connection has it open the
device's pins are held (:meth:`Ownership.hold_for_bus`): a pin request for
one is ``pin_busy``. When the last one closes it they are free again and its
worker closes the device file (gpiozero's ``MCP3008(...).close()`` gives
GPIO8..11 back to the pins).

>>> from remoteio.server.ownership import Ownership
>>> own = Ownership(); users = SpiUsers(own)
>>> users.admit(1, ("spi", 0, 0), "spi_xfer2"), users.admit(2, ("spi", 0, 1), "spi_xfer2")
(True, True)
>>> try:
...     own.check_bus(19)
... except Exception as e:
...     print(e.message)
BOARD19 (GPIO10) is held by SPI bus 0 device 0 and SPI bus 0 device 1
>>> users.admit(1, ("spi", 0, 0), "spi_close"), users.closed(2)
(True, [('spi', 0, 1)])
>>> own.check_bus(19)
"""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

from ..errors import NotSupported
from ..protocol.buses import BUS_PINS, bus_name
from .ownership import Ownership

Key = Tuple[str, int, int]


class SpiUsers:
    def __init__(self, ownership: Ownership):
        self.ownership = ownership
        self.users: Dict[Key, Set[int]] = {}

    def admit(self, conn: int, key: Key, op: str, sim: bool = True, running: bool = True) -> bool:
        """Before an ``spi_*`` request of *conn* goes on: should it reach the device's
        worker (*running*: is there one)? A close goes on only from its last user
        (the worker then closes the device file); any other call opens the device
        for *conn*, holding its pins if they are not held (PinBusy if a connection
        holds one as a pin). ``spi_sim`` needs the simulated board (*sim*)."""
        if op == "spi_sim":   # the simulated board's controls open nothing, hold nothing
            if not sim:
                raise NotSupported("spi_sim needs the simulated board; this server has real "
                                   "hardware")
            return True
        users = self.users.get(key)
        if op == "spi_close":
            if not users or conn not in users:
                return False
            users.discard(conn)
            if users:
                return False
            self._release(key)
            return running
        name = bus_name(key)
        if not self.ownership.holds(name):
            self.ownership.hold_for_bus(name, BUS_PINS.get(key, ()))
        self.users.setdefault(key, set()).add(conn)
        return True

    def closed(self, conn: int) -> List[Key]:
        """*conn* is gone: the devices it was the last user of (now closed, pins free)."""
        last = []
        for key, users in list(self.users.items()):
            if conn in users:
                users.discard(conn)
                if not users:
                    self._release(key)
                    last.append(key)
        return last

    def _release(self, key: Key) -> None:
        self.users.pop(key, None)
        self.ownership.release_bus(bus_name(key))
