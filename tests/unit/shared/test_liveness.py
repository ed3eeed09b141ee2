"""shared.liveness: when a partition is due to be read again, and what counts as in flight."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from weakref import WeakSet

from faust.transport.consumer import Consumer
from faust.types import TP, Message

from shared.liveness import Stalls, in_flight, unfetched
from shared.streaming import head

TP0 = TP("t.bg.person-events.v1", 0)


def test_a_partition_with_records_waiting_and_nothing_in_flight_is_due_after_the_window() -> None:
    stalls = Stalls(after=60)
    assert not stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=0)
    assert not stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=59)
    assert stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=60)
    # Read again once; the next alarm for the same offset waits another window.
    assert not stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=61)
    assert stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=120)


def test_progress_caught_up_or_work_in_flight_is_never_a_stall() -> None:
    stalls = Stalls(after=60)
    stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=0)
    assert not stalls.observe(TP0, head=170, highwater=210, in_flight=False, now=70)  # moved: window anew
    assert not stalls.observe(TP0, head=170, highwater=210, in_flight=True, now=200)  # a batch in flight
    assert not stalls.observe(TP0, head=170, highwater=210, in_flight=False, now=250)
    assert not stalls.observe(TP0, head=210, highwater=210, in_flight=False, now=400)  # caught up
    assert not stalls.observe(TP0, head=None, highwater=210, in_flight=False, now=500)  # head not known yet
    assert not stalls.observe(TP0, head=None, highwater=210, in_flight=False, now=600)


def test_partitions_no_longer_assigned_are_forgotten() -> None:
    stalls = Stalls(after=60)
    stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=0)
    stalls.keep([])
    # Assigned again later: its window starts when it is seen again, not at the first sighting.
    assert not stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=100)
    assert stalls.observe(TP0, head=169, highwater=210, in_flight=False, now=160)


def _message(tp: TP, offset: int) -> Message:
    return Message(tp.topic, tp.partition, offset, timestamp=0.0, timestamp_type=0, headers=None,
                   key=b"k", value=b"v", checksum=None, tp=tp, generation_id=3)


def _faust_consumer(committed: int) -> SimpleNamespace:
    """What faust's Consumer.ack reads and writes, for one partition committed at `committed`."""
    return SimpleNamespace(
        app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True)),
        _committed_offset=defaultdict(lambda: None, {TP0: committed}), _acked_index=defaultdict(set),
        _acked=defaultdict(list), _unacked_messages=WeakSet(), _n_acked=0, _waiting_for_ack=None)


def test_messages_delivered_again_and_acknowledged_are_not_in_flight() -> None:
    # The restart test's failing run (SIGTERM case): head 21 lost, 22..32 delivered and acked,
    # then faust's recovery seek delivered 22..32 again and they were acked again. faust's ack
    # leaves such a second delivery in its pending set; counted as in flight, the partition
    # never looked stalled and sat at 21 of 33 for 150 s.
    consumer = _faust_consumer(committed=21)
    first = [_message(TP0, offset) for offset in range(22, 33)]
    again = [_message(TP0, offset) for offset in range(22, 33)]
    for message in first + again:
        consumer._unacked_messages.add(message)  # faust's track_message, at delivery
        Consumer.ack(consumer, message)
    assert all(message.acked for message in again)
    assert set(consumer._unacked_messages) == set(again)  # faust kept them as pending
    busy = in_flight(consumer._unacked_messages)
    assert TP0 not in busy
    stalls = Stalls(after=10)
    assert not stalls.observe(TP0, head=21, highwater=33, in_flight=TP0 in busy, now=0)
    assert stalls.observe(TP0, head=21, highwater=33, in_flight=TP0 in busy, now=10)


def test_a_message_not_acknowledged_yet_is_in_flight() -> None:
    other = TP("t.bg.person-events.v1", 1)
    waiting, done = _message(other, 5), _message(TP0, 22)
    done.acked = True
    assert in_flight([waiting, done]) == {other}


def test_partitions_not_fetched_or_without_a_highwater_are_asked_of_the_broker() -> None:
    tp1, tp2, tp3 = (TP("t.bg.person-events.v1", p) for p in (1, 2, 3))
    highwater = {TP0: 33, tp1: None, tp2: 12, tp3: 0}
    # tp1: assigned, never fetched (no high-water mark); tp2: fetched once, then no longer
    # active in faust (paused and never resumed); TP0 and tp3: fetched and active.
    assert unfetched([TP0, tp1, tp2, tp3], highwater, active={TP0, tp1, tp3}) == [tp1, tp2]


def test_the_head_of_a_partition_never_committed_is_its_first_offset() -> None:
    # A never-committed partition whose first message was lost: no commit passes it (its head is
    # its first offset, shared.streaming), so the check must see it as stalled from there.
    consumer = _faust_consumer(committed=21)
    never = TP("t.bg.person-events.v1", 1)
    assert head(consumer, TP0) == 21
    assert head(consumer, never) is None  # before the worker's first seek to the committed offsets
    consumer._heads = {never: 0}
    assert head(consumer, never) == 0
    stalls = Stalls(after=10)
    assert not stalls.observe(never, head=head(consumer, never), highwater=7, in_flight=False, now=0)
    assert stalls.observe(never, head=head(consumer, never), highwater=7, in_flight=False, now=10)
