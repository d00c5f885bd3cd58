"""The sharing rule: who holds which pin, who watches it, as a pure class.

The first connection to drive a pin (any task, ``open``, ``input``/
``output``, ``setup``, ``close``, ``write``) holds it until it closes the
pin or disconnects; others get ``pin_busy`` for those operations. Anyone
may ``read``, ``state``, ``sync`` and ``watch`` any pin. A connection that
closed a pin gets ``pin_closed`` for further claims until it sends
``open``. A newer connection of the same client process (the same hello
``session``) that says ``take_over`` may take a pin back (a notebook cell
run again).

>>> own = Ownership()
>>> own.opened(1, "10.0.0.5:4000"); own.opened(2, "10.0.0.6:4000")
>>> own.claim(1, 7, "on")
>>> try:
...     own.claim(2, 7, "on")
... except Exception as e:
...     print(e.code, e.message)
pin_busy BOARD7 (GPIO4) is held by another connection (10.0.0.5:4000)
>>> sorted(own.closed(1).owned)
[7]
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from ..errors import Forbidden, PinBusy, PinClosed
from ..pins import describe

log = logging.getLogger(__name__)


class Left(NamedTuple):
    """What a closed connection leaves behind."""
    owned: Set[int]       # pins it held (now free)
    watched: Set[int]     # pins it watched


class Ownership:
    """*show_peers*: may a client learn another client's address (in
    ``pin_busy`` and ``info``)? The server says yes when it requires
    authentication (its clients are trusted) or serves only its own machine."""

    def __init__(self, show_peers: bool = True) -> None:
        self.show_peers = show_peers
        self.owners: Dict[int, int] = {}
        self.owned: Dict[int, Set[int]] = defaultdict(set)
        self.closed_by: Dict[int, Set[int]] = defaultdict(set)
        self.watching: Dict[int, Set[int]] = defaultdict(set)
        self.peers: Dict[int, str] = {}
        self.sessions: Dict[int, Tuple[str, bool]] = {}
        self.bus_held: Dict[int, List[str]] = {}   # board -> the buses that hold it
        #: board -> its pin rule's access ("write", "read", "none"): the router's rules
        self.access: Callable[[int], str] = lambda board: "write"

    # ---- connections ---------------------------------------------------------------
    def opened(self, conn: int, peer: str) -> None:
        self.peers[conn] = peer

    def identify(self, conn: int, session: str, take_over: bool) -> None:
        """The client process a connection comes from (hello's ``session``)."""
        self.sessions[conn] = (session, take_over)

    def closed(self, conn: int) -> Left:
        owned = self.owned.pop(conn, set())
        for board in owned:
            del self.owners[board]
        watched = self.watching.pop(conn, set())
        self.closed_by.pop(conn, None)
        self.peers.pop(conn, None)
        self.sessions.pop(conn, None)
        return Left(owned, watched)

    def peer(self, conn: Optional[int]) -> Optional[str]:
        """What others may know of *conn*: its address, or just "a client"."""
        if conn is None:
            return None
        return self.peers.get(conn, "?") if self.show_peers else "a client"

    def owner(self, board: int) -> Optional[int]:
        return self.owners.get(board)

    @property
    def connections(self) -> int:
        return len(self.peers)

    # ---- pins a bus holds (I2C1's GPIO2/3, SPI0's...) --------------------------------------
    def hold_for_bus(self, bus: str, boards: Iterable[int], listens: Iterable[int] = ()) -> None:
        """*bus* starts: its header pins are its own (PinBusy if a connection holds one).
        Buses may share pins (SPI0's CE0 and CE1 devices share MOSI/MISO/SCLK): a pin
        is free again when the last bus holding it lets go. The pin rules bind a bus as
        they bind a pin: it drives *boards* (Forbidden unless their access is "write")
        and only reads *listens* (an interrupt line: Forbidden if not served)."""
        boards, listens = tuple(boards), tuple(listens)
        self.check_bus_pins(bus, boards, listens)
        boards += listens
        for board in boards:
            if self.owners.get(board) is not None:
                raise PinBusy(f"{bus} needs {describe(board)}, which a connection holds as a pin")
        for board in boards:
            holders = self.bus_held.setdefault(board, [])
            if bus not in holders:
                holders.append(bus)

    def check_bus_pins(self, bus: str, boards: Iterable[int], listens: Iterable[int] = ()) -> None:
        """Forbidden unless the pin rules let *bus* drive *boards* and read
        *listens* (what :meth:`hold_for_bus` checks, holding nothing)."""
        listens = tuple(listens)
        for board in tuple(boards) + listens:
            access = self.access(board)
            if access == "none" or (access == "read" and board not in listens):
                raise Forbidden(f"{bus} needs {describe(board)}, which the pin rules make "
                                + ("not served" if access == "none" else "read-only"))

    def release_bus(self, bus: str) -> None:
        for board, holders in list(self.bus_held.items()):
            if bus in holders:
                holders.remove(bus)
                if not holders:
                    del self.bus_held[board]

    def bus_holders(self) -> Dict[int, List[str]]:
        """The header pins buses hold now, each with its buses (``info``'s ``held``)."""
        return {board: list(holders) for board, holders in self.bus_held.items()}

    def holds(self, bus: str) -> bool:
        """Does *bus* hold pins now?"""
        return any(bus in holders for holders in self.bus_held.values())

    def check_bus(self, board: int) -> None:
        """PinBusy if a bus holds *board* (every pin operation asks)."""
        holders = self.bus_held.get(board)
        if holders:
            raise PinBusy(f"{describe(board)} is held by {' and '.join(holders)}")

    # ---- the rule ----------------------------------------------------------------------
    def check(self, conn: int, board: int, op: str) -> None:
        """Raise PinBusy/PinClosed if *conn* may not claim *board* with *op*."""
        owner = self.owners.get(board)
        if owner is None:
            if board in self.closed_by.get(conn, ()) and op != "open":
                raise PinClosed(f"{describe(board)} was closed by this connection; "
                                "send 'open' to use it again")
        elif owner != conn and not self._may_take_over(conn, owner):
            if self._same_process(conn, owner) and owner > conn:   # ids grow: a newer one
                raise PinBusy(f"{describe(board)} is held by a newer connection of this same "
                              "program (one that took it over, or claimed it first); use the "
                              "pin through that one, or close it")
            if self._same_process(conn, owner):
                raise PinBusy(f"{describe(board)} is held by another connection of this same "
                              "program (an earlier RemoteServer: a notebook cell run again?); "
                              "close that one, or connect with take_over=True")
            raise PinBusy(f"{describe(board)} is held by another connection"
                          + (f" ({self.peers.get(owner, '?')})" if self.show_peers else ""))

    def _same_process(self, conn: int, owner: int) -> bool:
        mine, theirs = self.sessions.get(conn, ("", False)), self.sessions.get(owner, ("", False))
        return bool(mine[0]) and mine[0] == theirs[0]

    def _may_take_over(self, conn: int, owner: int) -> bool:
        return self._same_process(conn, owner) and self.sessions[conn][1]

    def claim(self, conn: int, board: int, op: str) -> None:
        """Apply the rule for a claiming *op* (check first, then hold or let go)."""
        self.check(conn, board, op)
        owner = self.owners.get(board)
        if owner != conn:
            if owner is not None:
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

    def claim_all(self, conn: int, boards: Iterable[int], op: str) -> None:
        """Claim several pins, or none of them (a batch)."""
        boards = list(boards)
        for board in boards:
            self.check(conn, board, op)
        for board in boards:
            self.claim(conn, board, op)

    def watch(self, conn: int, board: int, on: bool) -> None:
        if on:
            self.watching[conn].add(board)
        else:
            self.watching[conn].discard(board)

    def worker_died(self, board: int) -> Set[int]:
        """The connections to tell: the pin's owner and watchers (whose watch ends)."""
        told = {conn for conn, boards in self.watching.items() if board in boards}
        for boards in self.watching.values():
            boards.discard(board)
        if board in self.owners:
            told.add(self.owners[board])
        return told
