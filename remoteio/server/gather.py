"""Batch requests: one request fanned out to several pin workers, one reply.

The router splits ``write``/``read_many`` into one part per pin; each part's
reply comes back from its worker to the listener, which adds it to the
:class:`Gather`; the last part completes the batch and its single reply goes
to the client. Only the listener thread touches a gather after dispatch.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from ..protocol import writing


class Gather:
    __slots__ = ("conn", "id_json", "kind", "remaining", "results")

    def __init__(self, conn: int, id_json: str, kind: str, parts: int):
        self.conn = conn
        self.id_json = id_json
        self.kind = kind          # "write" or "read"
        self.remaining = parts
        self.results: Dict[int, Dict[str, Any]] = {}

    def add(self, board: int, frame: bytes) -> Optional[bytes]:
        """Add one pin's reply; the batch's reply once every pin has answered."""
        self.results[board] = json.loads(frame)
        self.remaining -= 1
        return self._reply() if self.remaining == 0 else None

    def _reply(self) -> bytes:
        failed = {b: r["error"] for b, r in sorted(self.results.items()) if not r.get("ok")}
        if failed:
            first = next(iter(failed.values()))
            message = "; ".join(f"BOARD{b}: {e.get('message')}" for b, e in failed.items())
            frame = json.loads(writing.error(self.id_json, first.get("code", "internal_error"), message))
            frame["results"] = {str(b): ({"ok": True} if b not in failed else
                                         {"ok": False, "error": failed[b]})
                                for b in sorted(self.results)}
            return (json.dumps(frame, separators=(",", ":")) + "\n").encode()
        if self.kind == "read":
            values = {str(b): r.get("value") for b, r in sorted(self.results.items())}
            return writing.ok(self.id_json, {"values": values})
        return writing.ok(self.id_json)


class GatherPart:
    """Where a part's reply goes: into its gather, under its pin."""

    __slots__ = ("gather", "board")

    def __init__(self, gather: Gather, board: int):
        self.gather = gather
        self.board = board
