"""The chaos run's checkers of leases and events: pure functions of what was
recorded (the server's pin history and lease polls, the client's events and
the fault schedule), so a failure names exactly which promise broke.

>>> falls([(0, 0.0), (10, 1.0), (20, 0.0), (30, 1.0)])
[20]
>>> Poll(100, 110, 1500.0).deadline_late  # ns
1500000110.0
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple


class Poll(NamedTuple):
    """The observer's look at the leased pin's state: sent, answered (ns), and
    the lease's time left then (ms; None: no lease pending)."""
    sent_ns: int
    recv_ns: int
    in_ms: Optional[float]

    @property
    def deadline_early(self) -> float:
        return self.sent_ns + (self.in_ms or 0) * 1e6

    @property
    def deadline_late(self) -> float:
        return self.recv_ns + (self.in_ms or 0) * 1e6


def falls(history: Sequence[Tuple[int, float]]) -> List[int]:
    """The times (ns) a sim history goes from high to low."""
    out, last = [], None
    for t, value in history:
        if last is not None and last > 0 and value <= 0:
            out.append(t)
        last = value
    return out


def check_leases(history: Sequence[Tuple[int, float]], polls: Sequence[Poll],
                 bound_ms: float, losses: Sequence[int] = (),
                 ) -> Tuple[List[str], List[Tuple[float, float]], int, int]:
    """Every fall of the leased pin is at the deadline the Pi last reported
    before it: never before it, at most *bound_ms* after it. Only two things
    lower the pin: the lease running out, and its holder's connection ending
    (the disconnect policy makes its pins safe; a take-over on reconnect): an
    early fall must be next to a time the holder lost its link (*losses*, ns:
    from 0.5 s before it, the RST going out first, to 6 s after, the longest
    reconnect backoff and then some).
    (problems, each fall's lateness in ms as far as a poll can tell: at
    least, at most; falls without a poll close enough before them to judge;
    early falls next to a lost link)."""
    problems: List[str] = []
    late: List[Tuple[float, float]] = []
    unjudged = ended = 0
    for fall in falls(history):
        before = [p for p in polls if p.recv_ns < fall]
        leased = [p for p in before if p.in_ms]
        if not leased or fall - before[-1].recv_ns > 0.5e9:
            unjudged += 1  # (a pause in the polls: a server restart)
            continue
        last = leased[-1]
        if fall < last.deadline_early - 1e6:
            if any(loss - 0.5e9 <= fall <= loss + 6e9 for loss in losses):
                ended += 1  # its holder's connection ended: the disconnect policy
            else:
                problems.append(f"the lease reverted {(last.deadline_early - fall) / 1e6:.1f} ms "
                                f"before its deadline (fall at {fall})")
            continue
        lateness = (fall - last.deadline_late) / 1e6  # at least this late...
        late.append((lateness, (fall - last.deadline_early) / 1e6))  # ...at most this
        if lateness > bound_ms:  # with the polls from the last that saw the lease
            after = [(p.sent_ns, p.recv_ns, p.in_ms) for p in before if p.sent_ns >= last.sent_ns]
            problems.append(f"the lease reverted {lateness:.1f} ms after its deadline "
                            f"(fall at {fall}; polls {after[:12]})")
    return problems, late, unjudged, ended


class Seen(NamedTuple):
    """An event as the watching client got it, and when (client clock, ns)."""
    at_ns: int
    seq: int
    value: float
    missed: int


def check_events(seen: Sequence[Seen], driven: int, restarts: int,
                 faulty: Sequence[Tuple[int, int]]) -> List[str]:
    """In order (seq increasing, except where a restarted server numbers
    afresh, at most once per restart); none invented (no more than the edges
    driven); a lost edge always visible (two events in a row with the same
    level: the second says it missed some); a gap only where the schedule can
    explain it (a fault, or a restart, between the two events: *faulty*, the
    (start, end) ns of each)."""
    problems: List[str] = []
    if len(seen) > driven:
        problems.append(f"{len(seen)} events for {driven} edges driven: some invented")
    renumbered = 0
    for before, event in zip(seen, seen[1:]):
        if event.seq <= before.seq:
            renumbered += 1
        if event.value == before.value and event.missed == 0:
            problems.append(f"seq {before.seq} -> {event.seq}: the same level twice, no gap shown")
        if event.missed and not any(start <= event.at_ns and end >= before.at_ns
                                    for start, end in faulty):
            problems.append(f"seq {before.seq} -> {event.seq}: {event.missed} missed "
                            "with no fault between them")
    if renumbered > restarts:
        problems.append(f"seq went back {renumbered} times for {restarts} server restarts")
    return problems
