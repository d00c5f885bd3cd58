"""The chaos run's checkers (chaoscheck.check_leases, check_events) on made-up
histories: each stretch the pin was high judged by its own polls. Pure: runs
on the host too (`python -m pytest -c tests/net/pytest.ini tests/net/test_chaoscheck.py`).

Times in ms, turned into the ns the checker takes; the lease of the chaos
run is 1500 ms, its polls come every 50-100 ms, the bound here is 100 ms."""
from __future__ import annotations

from chaoscheck import Poll, Seen, check_delivery, check_events, check_leases

MS = 1_000_000
BOUND_MS = 100


def history(*edges):
    """(ms, level) pairs -> the server's history (ns, level), low at 0."""
    return [(0, 0.0)] + [(int(t * MS), float(v)) for t, v in edges]


def poll(sent_ms, in_ms, rtt_ms=5):
    return Poll(int(sent_ms * MS), int((sent_ms + rtt_ms) * MS), in_ms)


def polls_every(start_ms, end_ms, deadline_ms, step_ms=50):
    """Polls that see a lease due at *deadline_ms* (no lease once it is past)."""
    out, t = [], start_ms
    while t < end_ms:
        out.append(poll(t, max(0.0, deadline_ms - t) if t < deadline_ms else None))
        t += step_ms
    return out


def judge(edges, polls, losses_ms=()):
    return check_leases(history(*edges), polls, BOUND_MS, [int(t * MS) for t in losses_ms])


def test_a_revert_at_its_deadline_is_on_time_and_its_lateness_measured():
    # on at 100 ms, lease due at 1600 ms, the fall 3 ms after it
    problems, late, unjudged, ended = judge([(100, 1), (1603, 0)], polls_every(110, 1600, 1600))
    assert problems == [] and unjudged == 0 and ended == 0
    [(at_least, at_most)] = late
    assert -10 < at_least <= 3 <= at_most < 15


def test_a_revert_before_its_deadline_is_reported_unless_the_link_was_lost():
    edges, polls = [(100, 1), (900, 0)], polls_every(110, 900, 1600)
    problems, late, _, ended = judge(edges, polls)
    assert len(problems) == 1 and "before its deadline" in problems[0] and ended == 0
    problems, late, _, ended = judge(edges, polls, losses_ms=[800])
    assert problems == [] and ended == 1 and late == []


def test_a_revert_cut_short_by_the_links_end_is_not_late():
    """The polls last saw the lease due in 100 ms (its renewals lost in a
    partition); a late renewal moved the deadline between two polls and the
    link's end then lowered the pin, 350 ms after the deadline the polls saw.
    (The old checker judged it against that deadline: "a late revert".)"""
    polls = polls_every(110, 1500, 1600) + [poll(1500, 100.0)]
    problems, late, _, ended = judge([(100, 1), (1950, 0)], polls, losses_ms=[1900])
    assert problems == [] and ended == 1 and late == []


def test_a_revert_really_late_is_reported():
    polls = polls_every(110, 1500, 1600) + [poll(1500, 100.0)]
    problems, late, _, ended = judge([(100, 1), (1950, 0)], polls)
    assert len(problems) == 1 and "after its deadline" in problems[0], problems
    assert ended == 0
    # with polls after the deadline that still show the pin high: the lease went, the pin did not
    polls = polls_every(110, 1950, 1600)
    problems, *_ = judge([(100, 1), (1950, 0)], polls, losses_ms=[1900])
    assert len(problems) == 1 and "ended without reverting" in problems[0], problems


def test_a_write_between_two_polls_cut_short_by_the_links_end_is_judged_on_its_own():
    """The first lease reverts on time at 1600 ms; the holder's next renewal
    raises the pin again at 1620 ms and its connection's end lowers it at
    1640 ms, both between two polls. (The old checker judged that fall by the
    first lease's deadline: late, "driven high with no lease seen".)"""
    polls = polls_every(110, 1600, 1600) + [poll(1660, None), poll(1710, None)]
    problems, late, _, ended = judge([(100, 1), (1602, 0), (1620, 1), (1640, 0)], polls,
                                     losses_ms=[1630])
    assert problems == [] and ended == 1 and len(late) == 1


def test_a_write_between_two_polls_with_no_lost_link_near_is_reported():
    polls = polls_every(110, 1600, 1600) + [poll(1660, None), poll(1710, None)]
    problems, late, _, ended = judge([(100, 1), (1602, 0), (1620, 1), (1640, 0)], polls)
    assert len(problems) == 1 and "no lease seen and no lost link" in problems[0], problems
    assert ended == 0 and len(late) == 1


def test_a_lease_gone_while_the_pin_stays_high_is_reported_even_when_its_link_ends_later():
    """The polls see the lease (due at 1600 ms), then none at 700 ms while the
    pin is still high; the link's end lowers it at 800 ms, before the
    deadline. (The old checker counted it as the disconnect policy's and
    never looked at the polls between.)"""
    polls = polls_every(110, 700, 1600) + [poll(700, None), poll(750, None)]
    problems, late, _, ended = judge([(100, 1), (800, 0)], polls, losses_ms=[790])
    assert len(problems) == 1 and "ended without reverting" in problems[0], problems


def test_a_fall_after_a_pause_in_the_polls_is_not_judged():
    # the last poll 0.9 s before the fall (a server restart): nothing to judge it by
    problems, late, unjudged, _ = judge([(100, 1), (2500, 0)], polls_every(110, 1600, 1600))
    assert problems == [] and late == [] and unjudged == 1


# ---- events -------------------------------------------------------------------------------

def seen(*events):
    """(ms, seq, value, missed) -> Seen events, in the order they came."""
    return [Seen(int(t * MS), seq, float(value), missed) for t, seq, value, missed in events]


FAULT = [(int(1000 * MS), int(2000 * MS))]


def test_events_with_a_gap_shown_across_a_fault_pass():
    events = seen((0, 1, 1, 0), (500, 2, 0, 0), (2500, 5, 1, 2), (3000, 6, 0, 0))
    assert check_events(events, 6, 0, FAULT) == []


def test_a_gap_in_seq_not_counted_in_missed_is_named():
    events = seen((0, 1, 1, 0), (2500, 4, 0, 0))
    assert check_events(events, 4, 0, FAULT) == ["seq 1 -> 4: 2 lost, 0 shown missed"]


def test_missed_events_beyond_the_edges_driven_are_named_invented():
    events = seen((0, 1, 1, 0), (2500, 2, 0, 5))
    problems = check_events(events, 4, 0, FAULT)
    assert problems == ["2 events and 5 missed for 4 edges driven and 0 restarts: some invented"]


def test_a_gap_with_no_fault_between_is_named():
    events = seen((0, 1, 1, 0), (500, 3, 1, 1))
    assert check_events(events, 4, 0, FAULT) == ["seq 1 -> 3: 1 missed with no fault between them"]


def test_seq_going_back_more_often_than_the_server_restarted_is_named():
    events = seen((0, 5, 1, 0), (2500, 1, 0, 0))
    assert check_events(events, 6, 0, FAULT) == ["seq went back 1 times for 0 server restarts"]
    assert check_events(events, 6, 1, FAULT) == []


def test_an_edge_driven_in_a_quiet_span_that_never_came_is_named():
    up = [(0, True), (int(3000 * MS), False), (int(5000 * MS), True)]
    drives = [(int(t * MS), int((t + 5) * MS)) for t in (100, 200, 5100, 5200)]
    came = seen((110, 1, 1, 0), (210, 2, 0, 0), (5110, 3, 1, 0))
    problems, owed = check_delivery(came, drives, up, [], int(9000 * MS), int(1000 * MS))
    assert owed == 4
    assert problems == [f"2 edges driven from {5000 * MS} to {9000 * MS}, 1 came and 0 shown "
                        "missed in that quiet span"]


def test_edges_a_fault_may_have_broken_are_not_asked_for():
    up = [(0, True)]
    drives = [(int(t * MS), int((t + 5) * MS)) for t in (100, 1500, 2500)]
    problems, owed = check_delivery(seen((110, 1, 1, 0)), drives, up, FAULT, int(9000 * MS),
                                    int(500 * MS))
    assert (problems, owed) == ([], 1)  # 1500 is in the fault; 2500 comes after it on the same link
