"""The chaos run's checkers of leases and events: pure functions of what was
recorded (the server's pin history and lease polls, the client's events and
the fault schedule), so a failure names exactly which promise broke.

>>> Poll(100, 110, 1500.0).deadline_late  # ns
1500000110.0

Each stretch the pin was high is judged by its own polls (a fall long after
the deadline says which way it was late):

>>> ms = 1_000_000
>>> lease = Poll(0, 10 * ms, 100.0)            # deadline about 100-110 ms
>>> check_leases([(0, 1.0), (1280 * ms, 0.0)], [lease, Poll(1200 * ms, 1210 * ms, 50.0)],
...              100)[0]  # a poll saw the lease again: renewed, the fall on time
[]
>>> check_leases([(0, 1.0), (1500 * ms, 0.0)], [lease, Poll(1200 * ms, 1210 * ms, None)],
...              100)[0][0][:41]
'the lease ended without reverting the pin'
>>> check_leases([(0, 1.0), (110 * ms, 0.0), (900 * ms, 1.0), (1500 * ms, 0.0)],
...              [lease, Poll(1200 * ms, 1210 * ms, None)], 100)[0][0][:47]
'the pin was high from 900000000 to 1500000000 ('
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


class Stretch(NamedTuple):
    """An interval the pin was high (ns): from its rise to its fall (None:
    still high when the history was taken)."""
    rise: int
    fall: Optional[int]


def stretches(history: Sequence[Tuple[int, float]]) -> List[Stretch]:
    """The intervals a sim history is high.

    >>> stretches([(0, 0.0), (10, 1.0), (20, 0.0), (30, 1.0)])
    [Stretch(rise=10, fall=20), Stretch(rise=30, fall=None)]
    """
    out: List[Stretch] = []
    rise: Optional[int] = None
    for t, value in history:
        if value > 0 and rise is None:
            rise = t
        elif value <= 0 and rise is not None:
            out.append(Stretch(rise, t))
            rise = None
    if rise is not None:
        out.append(Stretch(rise, None))
    return out


def _near_a_lost_link(fall: int, losses: Sequence[int]) -> bool:
    """The holder's connection may have ended then: from 0.5 s before the
    client saw its link lost (the RST going out first) to 6 s after (the
    server noticing its silence, the longest reconnect backoff's take-over)."""
    return any(loss - 0.5e9 <= fall <= loss + 6e9 for loss in losses)


def check_leases(history: Sequence[Tuple[int, float]], polls: Sequence[Poll],
                 bound_ms: float, losses: Sequence[int] = (),
                 ) -> Tuple[List[str], List[Tuple[float, float]], int, int]:
    """Each stretch the leased pin was high is judged on its own, by the polls
    made while it lasted (never by an earlier stretch's lease). Only two
    things lower the pin: its lease running out, and its holder's connection
    ending (the disconnect policy makes its pins safe; a take-over on
    reconnect), which may happen only next to a time the holder lost its
    link (*losses*, ns: _near_a_lost_link). A stretch falls

    * at the deadline its last poll saw: never before it, at most *bound_ms*
      after it (its lateness, as far as a poll can tell: at least, at most);
    * before it, or with no poll seeing a lease in it (it rose and fell
      between two polls), only next to a lost link: its connection ended;
    * after it only next to a lost link and with no poll between the one that
      saw the lease and the fall (a renewal the polls never saw moved the
      deadline, and the connection's end cut the lease short). A poll there
      that saw no lease while the pin was high is a lease that ended without
      reverting; otherwise the revert was late.

    A stretch with no poll in the 0.5 s before its fall is not judged (a pause
    in the polls: a server restart), nor one still high at the end.
    (problems, each revert's lateness in ms (at least, at most), stretches
    not judged, stretches ended by their connection)."""
    problems: List[str] = []
    late: List[Tuple[float, float]] = []
    unjudged = ended = 0
    for rise, fall in stretches(history):
        # a poll that saw a lease saw this stretch's (no lease while low)
        leased = [p for p in polls if p.in_ms is not None and p.recv_ns > rise
                  and (fall is None or p.sent_ns < fall)]
        # one that saw none must have looked while the pin was high
        unleased = [p for p in polls if p.in_ms is None and p.sent_ns >= rise
                    and (fall is None or p.recv_ns <= fall)
                    and (not leased or p.sent_ns > leased[-1].recv_ns)]
        if unleased and leased:
            problems.append(f"the lease ended without reverting the pin: no lease from the "
                            f"poll sent at {unleased[0].sent_ns}, the pin high from {rise} "
                            f"until {fall} (the last lease seen: {tuple(leased[-1])})")
            continue
        if fall is None:
            unjudged += 1
            continue
        before = [p for p in polls if p.recv_ns < fall]
        if not before or fall - before[-1].recv_ns > 0.5e9:
            unjudged += 1  # (a pause in the polls: a server restart)
            continue
        if not leased:  # rose and fell between two polls, or high with no lease
            if _near_a_lost_link(fall, losses):
                ended += 1
            else:
                problems.append(f"the pin was high from {rise} to {fall} "
                                f"({(fall - rise) / 1e6:.1f} ms) with no lease seen and no "
                                f"lost link near: nothing should have lowered it"
                                + (f" (polls with no lease: {len(unleased)})" if unleased else ""))
            continue
        last = leased[-1]
        if fall < last.deadline_early - 1e6:
            if _near_a_lost_link(fall, losses):
                ended += 1  # its holder's connection ended: the disconnect policy
            else:
                problems.append(f"the lease reverted {(last.deadline_early - fall) / 1e6:.1f} ms "
                                f"before its deadline (fall at {fall})")
            continue
        lateness = (fall - last.deadline_late) / 1e6  # at least this late...
        if lateness > bound_ms:
            if before[-1] is last and _near_a_lost_link(fall, losses):
                ended += 1  # an unseen renewal, then the connection's end
                continue
            after = [(p.sent_ns, p.recv_ns, p.in_ms) for p in before if p.sent_ns >= last.sent_ns]
            problems.append(f"the lease reverted {lateness:.1f} ms after its deadline "
                            f"(fall at {fall}; polls {after[:12]})")
        late.append((lateness, (fall - last.deadline_early) / 1e6))  # ...at most this
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
    afresh, at most once per restart); none invented (no more events, nor
    events and missed ones together, than the edges driven, + one level
    change per restart: a fresh server's input reads low); a lost edge always
    visible (a gap in seq counted in the next event's `missed`; two events
    in a row with the same level: the second says it missed some); a gap
    only where the schedule can explain it (a fault, or a restart, between
    the two events: *faulty*, the (start, end) ns of each).

    >>> check_events([Seen(1, 1, 1, 0), Seen(2, 4, 0, 2)], 4, 0, [(0, 3)])
    []
    >>> check_events([Seen(1, 1, 1, 0), Seen(2, 4, 0, 1)], 4, 0, [(0, 3)])
    ['seq 1 -> 4: 2 lost, 1 shown missed']
    """
    problems: List[str] = []
    if len(seen) > driven:
        problems.append(f"{len(seen)} events for {driven} edges driven: some invented")
    missed = sum(e.missed for e in seen)
    if len(seen) + missed > driven + restarts:
        problems.append(f"{len(seen)} events and {missed} missed for {driven} edges driven "
                        f"and {restarts} restarts: some invented")
    renumbered = 0
    for before, event in zip(seen, seen[1:]):
        if event.seq <= before.seq:
            renumbered += 1
        elif event.missed < event.seq - before.seq - 1:
            problems.append(f"seq {before.seq} -> {event.seq}: {event.seq - before.seq - 1} lost, "
                            f"{event.missed} shown missed")
        if event.value == before.value and event.missed == 0:
            problems.append(f"seq {before.seq} -> {event.seq}: the same level twice, no gap shown")
        if event.missed and not any(start <= event.at_ns and end >= before.at_ns
                                    for start, end in faulty):
            problems.append(f"seq {before.seq} -> {event.seq}: {event.missed} missed "
                            "with no fault between them")
    if renumbered > restarts:
        problems.append(f"seq went back {renumbered} times for {restarts} server restarts")
    return problems


def check_delivery(seen: Sequence[Seen], drives: Sequence[Tuple[int, int]],
                   up: Sequence[Tuple[int, bool]], faulty: Sequence[Tuple[int, int]],
                   end_ns: int, margin_ns: int) -> Tuple[List[str], int]:
    """Every edge driven in a quiet span of the watcher's connection was
    numbered for it: it came, or a gap counted it missed. A quiet span runs
    from the watch being made (*up*: (ns, True), the first at the start; a
    reconnect's True comes after its rewatch) to the connection's loss
    (ns, False) or *end_ns*; an edge (its drive's (sent, recv) ns) counts if
    no fault window touches the span from its start to *margin_ns* after the
    edge (what a fault may have broken is not asked for: an edge made while
    nobody watched cannot be seen, docs/inputs.md). Judged span by span: the
    events that came in it, and the missed they count, at least its edges.
    (problems, edges that had to come)

    >>> ms = 1_000_000
    >>> up = [(0, True)]
    >>> check_delivery([Seen(10 * ms, 1, 1, 0)], [(5 * ms, 6 * ms)], up, [], 99 * ms, 10 * ms)
    ([], 1)
    >>> check_delivery([], [(5 * ms, 6 * ms)], up, [], 99 * ms, 10 * ms)[0][0][:42]
    '1 edges driven from 0 to 99000000, 0 came '
    >>> check_delivery([], [(5 * ms, 6 * ms)], up, [(10 * ms, 20 * ms)], 99 * ms, 10 * ms)
    ([], 0)
    """
    problems: List[str] = []
    owed = 0
    for i, (start, is_up) in enumerate(up):
        if not is_up:
            continue
        end = next((t for t, u in up[i + 1:] if not u), end_ns)
        edges = sum(1 for sent, recv in drives if start <= sent and recv + margin_ns <= end
                    and not any(a <= recv + margin_ns and b >= start for a, b in faulty))
        if not edges:
            continue
        owed += edges
        came = [e for e in seen if start <= e.at_ns <= end]
        counted = len(came) + sum(e.missed for e in came)
        if counted < edges:
            problems.append(f"{edges} edges driven from {start} to {end}, {len(came)} came "
                            f"and {counted - len(came)} shown missed in that quiet span")
    return problems, owed
