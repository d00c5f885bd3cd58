"""How long a worker sleeps in ``select`` so that it wakes at its deadline, not after it.

Linux lets a ``select``, ``poll`` or ``epoll_wait`` of *t* seconds wake up
to *t*/1000 late (its timer slack: ``select_estimate_accuracy`` in
fs/select.c, at least the thread's own slack, 50 µs by default), so that
timers can be grouped: 100 µs on every 100 ms pulse, for any process not
real-time. A worker therefore sleeps a long wait in two parts: most of it,
ending early by more than that slack, then the short rest, whose slack is
0.1 % of it, or the thread's own, which :func:`tighten_timer_slack` makes
1 µs. One extra wake-up per deadline more than 20 ms away, never a spin; a
shorter wait (a 100 Hz blink's 5 ms) is slept whole, its slack at most
20 µs, less than a wake-up would cost.

>>> sleep_for(None, 5.0) is None       # nothing due: sleep until a message
True
>>> round(sleep_for(10.1, 10.0), 6)    # 100 ms: all but 0.3 ms first ...
0.0997
>>> round(sleep_for(10.1, 10.0997), 6) # ... then the rest in one short wait
0.0003
>>> round(sleep_for(10.005, 10.0), 6)  # 5 ms: slept whole
0.005
>>> sleep_for(9.0, 10.0)               # already due
0.0
"""
from __future__ import annotations

import ctypes
import logging
from typing import Optional

log = logging.getLogger(__name__)

#: the part of a wait the kernel may add to it (0.1 %), twice for margin
_SLACK_MARGIN = 2 / 1000
#: and a fixed margin for the wake-up itself (a VM's scheduler is slow to run us)
_EARLY = 100e-6
#: waits up to this long are slept whole: their slack (at most 20 µs) costs
#: less than the wake-up that would save it
WHOLE_UP_TO = 20e-3
#: the thread's own timer slack, ns (prctl PR_SET_TIMERSLACK); inherited by forks
TIMER_SLACK_NS = 1000
_PR_SET_TIMERSLACK = 29


def sleep_for(wake_at: Optional[float], now: float) -> Optional[float]:
    """Seconds to pass to ``select`` at *now* to be awake by *wake_at*
    (``time.monotonic()`` seconds; None: no deadline). A wait of more than
    :data:`WHOLE_UP_TO` ends early; the caller's loop sleeps again for the
    rest."""
    if wake_at is None:
        return None
    left = wake_at - now
    if left <= WHOLE_UP_TO:
        return max(0.0, left)
    return left - left * _SLACK_MARGIN - _EARLY


def tighten_timer_slack(slack_ns: int = TIMER_SLACK_NS) -> bool:
    """Make this thread's timer slack *slack_ns* (Linux; its forks inherit
    it): the short end of a :func:`sleep_for` wait then wakes within about a
    microsecond of its time. False where the system has no ``prctl``."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.restype = ctypes.c_int
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                          ctypes.c_ulong]
    except (OSError, AttributeError):
        return False
    if prctl(_PR_SET_TIMERSLACK, slack_ns, 0, 0, 0) != 0:
        log.debug("timer slack left as it was (errno %d)", ctypes.get_errno())
        return False
    return True
