"""The chaos run's checkers of leases and events: pure functions of what was
recorded (the server's pin history and lease polls, the client's events and
the fault schedule), so a failure names exactly which promise broke.

>>> falls([(0, 0.0), (10, 1.0), (20, 0.0), (30, 1.0)])
[20]
>>> Poll(100, 110, 1500.0).deadline_late  # ns
1500000110.0

A fall long after the deadline says which way it was late:

>>> ms = 1_000_000
>>> lease = Poll(0, 10 * ms, 100.0)            # deadline about 100-110 ms
>>> check_leases([(0, 1.0), (1280 * ms, 0.0)], [lease, Poll(1200 * ms, 1210 * ms, 50.0)],
...              100)[0]  # a poll saw the lease again: renewed, the fall on time
[]
>>> check_leases([(0, 1.0), (1500 * ms, 0.0)], [lease, Poll(1200 * ms, 1210 * ms, None)],
...              100)[0][0][:41]
'the lease ended without reverting the pin'
>>> check_leases([(0, 1.0), (110 * ms, 0.0), (900 * ms, 1.0), (1500 * ms, 0.0)],
...              [lease, Poll(1200 * ms, 1210 * ms, None)], 100)[0][0][:37]
'the pin was driven high at 900000000 '
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


def rises(history: Sequence[Tuple[int, float]], start: int, end: int) -> List[int]:
    """The times (ns) a sim history goes from low to high within [start, end).

    >>> rises([(0, 0.0), (10, 1.0), (20, 0.0), (30, 1.0)], 5, 40)
    [10, 30]
    """
    out, last = [], None
    for t, value in history:
        if last is not None and last <= 0 < value and start <= t < end:
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
        leased = [p for p in before if p.in_ms is not None]  # 0.0: due, not yet fired
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
            rose = rises(history, last.sent_ns, fall)
            unleased = [p for p in before if p.sent_ns > last.recv_ns and p.in_ms is None]
            if rose:  # not this lease's revert: a drive the polls never saw leased
                problems.append(f"the pin was driven high at {rose[-1]} "
                                f"({(rose[-1] - last.deadline_late) / 1e6:.1f} ms after the "
                                f"deadline) with no lease seen since, and fell at {fall} "
                                f"(polls {after[:12]})")
            elif unleased:  # the lease went, the pin stayed up
                problems.append(f"the lease ended without reverting the pin: no lease from "
                                f"the poll sent at {unleased[0].sent_ns}, the pin high until "
                                f"{fall} ({lateness:.1f} ms after the deadline; polls {after[:12]})")
            else:
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
