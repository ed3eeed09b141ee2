"""shared.liveness.Stalls: when a partition is due to be read again."""

from __future__ import annotations

from faust.types import TP

from shared.liveness import Stalls

TP0 = TP("t.bg.person-events.v1", 0)


def test_a_partition_with_records_waiting_and_nothing_in_flight_is_due_after_the_window() -> None:
    stalls = Stalls(after=60)
    assert not stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=0)
    assert not stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=59)
    assert stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=60)
    # Read again once; the next alarm for the same offset waits another window.
    assert not stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=61)
    assert stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=120)


def test_progress_caught_up_or_work_in_flight_is_never_a_stall() -> None:
    stalls = Stalls(after=60)
    stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=0)
    assert not stalls.observe(TP0, committed=170, highwater=210, in_flight=False, now=70)  # moved: window anew
    assert not stalls.observe(TP0, committed=170, highwater=210, in_flight=True, now=200)  # a batch in flight
    assert not stalls.observe(TP0, committed=170, highwater=210, in_flight=False, now=250)
    assert not stalls.observe(TP0, committed=210, highwater=210, in_flight=False, now=400)  # caught up
    assert not stalls.observe(TP0, committed=None, highwater=210, in_flight=False, now=500)  # never committed
    assert not stalls.observe(TP0, committed=None, highwater=210, in_flight=False, now=600)


def test_partitions_no_longer_assigned_are_forgotten() -> None:
    stalls = Stalls(after=60)
    stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=0)
    stalls.keep([])
    # Assigned again later: its window starts when it is seen again, not at the first sighting.
    assert not stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=100)
    assert stalls.observe(TP0, committed=169, highwater=210, in_flight=False, now=160)
