"""Giving memory back: big connection buffers go to the system when freed.

glibc's malloc serves big blocks from ``mmap`` and unmaps them when freed,
but raises that threshold each time a mapped block is freed, so after one
abusive connection the next big buffers come from the heap, where a freed
block between live ones stays with the process. Fixing the threshold keeps
every buffer over it mapped; :func:`give_back` trims what is left. Both do
nothing where the C library is not glibc.

>>> keep_big_blocks_mapped() in (True, False)
True
"""
from __future__ import annotations

import ctypes
import logging
from typing import Any, Optional

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
#: blocks at least this big are mapped and unmapped on their own
MMAP_THRESHOLD = 256 << 10

_libc: Optional[Any] = None


def _glibc() -> Optional[Any]:
    global _libc
    if _libc is None:
        try:
            # the process's own symbols: the C library it runs on, found without
            # ctypes.util.find_library (which runs ldconfig and loads shutil)
            libc = ctypes.CDLL(None)
            libc.mallopt, libc.malloc_trim  # glibc has both
            _libc = libc
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def keep_big_blocks_mapped() -> bool:
    """Fix malloc's mmap threshold (True if it could)."""
    libc = _glibc()
    return bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def give_back() -> None:
    """Return the heap's free memory to the system (after a big buffer went)."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
