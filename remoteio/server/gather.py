"""Batch requests: one request fanned out to several workers, one reply.

The router splits ``write``/``read_many`` into one part per pin; each part's
answer comes back from its worker as a typed :class:`~.messages.PartReply`
(an error triple or a value, never a frame to parse again), and the last
part completes the batch: its single reply goes to the client.

>>> g = Gather(1, "5", "read", 2)
>>> g.add(7, None, 1) is None
True
>>> g.add(11, None, 0)
b'{"id":5,"ok":true,"values":{"7":1,"11":0}}\\n'
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ..pins import pin_order
from ..protocol import writing

PartError = Optional[Tuple[str, str, Optional[str]]]  # (code, message, detail)


class Gather:
    __slots__ = ("conn", "id_json", "kind", "remaining", "errors", "values")

    def __init__(self, conn: int, id_json: str, kind: str, parts: int):
        self.conn = conn
        self.id_json = id_json
        self.kind = kind          # "write" or "read"
        self.remaining = parts
        self.errors: Dict[int, Tuple[str, str, Optional[str]]] = {}
        self.values: Dict[int, Any] = {}

    def add(self, board: Any, error: PartError, value: Any = None) -> Optional[bytes]:
        """Add one pin's answer; the batch's reply once every pin has answered."""
        if error is not None:
            self.errors[board] = error
        else:
            self.values[board] = value
        self.remaining -= 1
        return self._reply() if self.remaining == 0 else None

    def _reply(self) -> bytes:
        if self.errors:
            boards = sorted(set(self.errors) | set(self.values), key=pin_order)
            code = self.errors[min(self.errors, key=pin_order)][0]
            message = "; ".join(f"{_label(b)}: {self.errors[b][1]}"
                                for b in sorted(self.errors, key=pin_order))
            results = {str(b): {"ok": True} if b not in self.errors else
                       {"ok": False, "error": _error(self.errors[b])} for b in boards}
            return writing.error(self.id_json, code, message, extra={"results": results})
        if self.kind == "read":
            return writing.ok(self.id_json, {"values": {
                str(b): self.values[b] for b in sorted(self.values, key=pin_order)}})
        return writing.ok(self.id_json)


def _label(board: Any) -> str:
    return board if isinstance(board, str) else f"BOARD{board}"


def _error(error: Tuple[str, str, Optional[str]]) -> Dict[str, Any]:
    code, message, detail = error
    return {"code": code, "message": message, **({"detail": detail} if detail else {})}


class GatherPart:
    """Where a part's answer goes: into its gather, under its pin."""

    __slots__ = ("gather", "board")

    def __init__(self, gather: Gather, board: int):
        self.gather = gather
        self.board = board
