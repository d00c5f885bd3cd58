"""The bridge's own leases: what ``on_broker_loss = "safe"`` means.

Every untimed write the bridge makes on such a pin carries a lease of
``safe_after_ms``, renewed every third of it while the broker is there.
Without the broker the renewals stop and the Pi itself reverts the pin to
its safe value when the lease runs out; if the bridge dies, too. Pure
bookkeeping: the bridge sends the renewals.

>>> renewals = Renewals()
>>> renewals.add(7, "on", {"lease_ms": 3000.0, "revert": "safe"}, level=1.0, now=100.0)
>>> renewals.next_due()
101.0
>>> [board for board, _ in renewals.due(101.0, {7: 1})]
[7]
>>> renewals.due(101.0, {7: 0})      # the pin is not where the write left it: given up
[]
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger("remoteio.mqtt")


@dataclass
class Renewal:
    op: str
    fields: Dict[str, Any]   # the write, lease_ms included: sent again as it is
    level: float             # what the write drives
    period: float            # seconds between renewals (a third of the lease)
    due: float
    expires: float


class Renewals:
    """Leases to renew, by board pin."""

    def __init__(self) -> None:
        self._by_board: Dict[int, Renewal] = {}

    def add(self, board: int, op: str, fields: Dict[str, Any], level: float, now: float) -> None:
        lease_s = fields["lease_ms"] / 1000.0
        self._by_board[board] = Renewal(op, fields, level, lease_s / 3, now + lease_s / 3,
                                        now + lease_s)

    def drop(self, board: int) -> None:
        self._by_board.pop(board, None)

    def clear(self) -> None:
        self._by_board.clear()

    def next_due(self) -> Optional[float]:
        return min((r.due for r in list(self._by_board.values())), default=None)

    def due(self, now: float, levels: Dict[int, Any]) -> List[Tuple[int, Renewal]]:
        """The renewals to send now. One whose lease has run out or is about
        to (the broker was away a while), or whose pin is no longer at the
        level it wrote (the lease ran out, the server restarted), is given
        up: sending it again would be a new write, not a renewal."""
        ready = []
        for board, renewal in list(self._by_board.items()):
            if now < renewal.due:
                continue
            if now >= renewal.expires - min(renewal.period / 2, 0.1) or levels.get(board) != renewal.level:
                log.info("BOARD%d: its lease ran out or the pin changed; not renewing it", board)
                self.drop(board)
                continue
            ready.append((board, renewal))
        return ready

    def renewed(self, board: int, now: float) -> None:
        renewal = self._by_board.get(board)
        if renewal is not None:
            renewal.due = now + renewal.period
            renewal.expires = now + renewal.fields["lease_ms"] / 1000.0
