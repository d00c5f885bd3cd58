"""Newline framing: bytes in, complete frames out. No sockets.

Frames are the bytes between newlines. Any number of frames may arrive in
one read and any frame may be split over many reads. A frame longer than the
limit is reported once as :data:`TOO_LARGE` and its bytes are skipped up to
the next newline, so the stream stays in step and the connection lives on.

>>> buf = FrameBuffer(max_frame=16)
>>> buf.feed(b'{"a":1}\\n{"b"')
[b'{"a":1}']
>>> buf.feed(b':2}\\n')
[b'{"b":2}']
>>> buf.feed(b'x' * 40 + b'\\nok\\n')
[TOO_LARGE, b'ok']
"""
from __future__ import annotations

from typing import List, Union

#: default hard limit of one frame, newline excluded (bytes)
MAX_FRAME = 16384


class _TooLarge:
    __slots__ = ()

    def __repr__(self) -> str:
        return "TOO_LARGE"


#: stands in the output of :meth:`FrameBuffer.feed` for a frame over the limit
TOO_LARGE = _TooLarge()

Frame = Union[bytes, _TooLarge]


class FrameBuffer:
    """Split a byte stream into newline-terminated frames."""

    __slots__ = ("max_frame", "_partial", "_skipping")

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self._partial = b""
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._partial)

    @property
    def between(self) -> bool:
        """Is the stream between frames (nothing held, nothing being skipped)?
        Then bytes ending in a newline and holding no other are one whole frame."""
        return not self._partial and not self._skipping

    def feed(self, data: bytes) -> List[Frame]:
        """Add *data*; return the frames it completes (blank lines dropped)."""
        if self._partial:
            data = self._partial + data
            self._partial = b""
        lines = data.split(b"\n")
        tail = lines.pop()
        frames: List[Frame] = []
        limit = self.max_frame
        for line in lines:
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > limit:
                frames.append(TOO_LARGE)
            elif line and not line.isspace():
                frames.append(line.rstrip(b"\r"))
        if self._skipping:
            return frames
        if len(tail) > limit:
            frames.append(TOO_LARGE)
            self._skipping = True
        else:
            self._partial = tail
        return frames
