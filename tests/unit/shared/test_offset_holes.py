"""A message faust lost between its fetcher and a stream is read again, never committed over.

faust's own consumer bookkeeping (acks, commit offsets) with its own message and event types;
only the seek, which needs a running consumer, is recorded instead of sent.
"""

from __future__ import annotations

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from shared.streaming import InOrderBatches, make_app

TOPIC = "holes"
tp = TP(TOPIC, 2)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("BG_STATE_DIR", str(tmp_path))
    app = make_app("offset-holes")  # installs the commit rules under test
    app.topics._acking_topics.add(TOPIC)  # what subscribing an agent to the topic does
    app.seeks = []

    async def seek_wait(partitions):
        app.seeks.append(dict(partitions))

    app.consumer.seek_wait = seek_wait
    app.first_offset = 0

    async def earliest_offsets(*partitions):
        return {tp: app.first_offset for tp in partitions}

    app.consumer.earliest_offsets = earliest_offsets
    return app


def events(app, *offsets: int, generation: int = 1) -> list:
    taken = []
    for offset in offsets:
        message = ConsumerMessage(TOPIC, tp.partition, offset, 0.0, 0, None, b"k", b"v", None,
                                  generation_id=generation)
        message.incref()  # the stream's reference, released by faust's acknowledgement
        app.consumer.track_message(message)
        taken.append(app.create_event(b"k", b"v", None, message))
    return taken


async def process(app, batches: InOrderBatches, taken: list) -> list[int]:
    """A stage's loop: hold, complete, then faust's own acknowledgement; returns the offsets processed."""
    held = await batches.hold(taken)
    await batches.complete(held, [], [])
    await batches.drain()
    for event in taken:
        event.ack()
    return [event.message.offset for event in held]


async def test_a_message_past_a_hole_waits_for_the_hole_to_be_read_again(app) -> None:
    batches = InOrderBatches("test", app)
    app.consumer._committed_offset[tp] = 40
    assert await process(app, batches, events(app, 40, 41, 42)) == [40, 41, 42]
    # 43 never reached the stream (seen after a kill -9, docs/exactly-once.md).
    assert await process(app, batches, events(app, 44, 45)) == []
    assert app.seeks == [{tp: 43}] and batches.rewinds == 1
    assert app.consumer._new_offset(tp) == 43  # committed up to the hole, not past it
    app.consumer._committed_offset[tp] = 43
    assert not app.consumer._unacked_messages  # a rebalance does not wait for the left-out ones
    # Read again from the seek: a message fetched before it still arrives, then the hole.
    assert await process(app, batches, events(app, 46)) == []
    assert await process(app, batches, events(app, 43, 44, 45, 46)) == [43, 44, 45, 46]
    assert app.consumer._new_offset(tp) == 47


async def test_a_new_assignment_or_a_read_again_is_no_hole(app) -> None:
    batches = InOrderBatches("test", app)
    assert await process(app, batches, events(app, 10, 11)) == [10, 11]
    assert await process(app, batches, events(app, 5, 6)) == [5, 6]  # sought back: read again
    assert await process(app, batches, events(app, 30, generation=2)) == [30]  # another owner was here
    assert app.seeks == []


def test_no_commit_passes_an_unacknowledged_message_right_after_the_committed_offset(app) -> None:
    # faust's guard let exactly one missing offset at the head pass (faust-streaming issue 606).
    app.consumer._committed_offset[tp] = 43
    app.consumer._acked[tp] = [44, 45]
    app.consumer._acked_index[tp] = {44, 45}
    assert app.consumer._new_offset(tp) is None
    app.consumer._acked[tp].append(43)
    app.consumer._acked_index[tp].add(43)
    assert app.consumer._new_offset(tp) == 46


async def test_a_jump_in_fetched_offsets_is_not_committed_over(app) -> None:
    # faust took the offsets between as a compacted range and committed them unprocessed.
    app.consumer._committed_offset[tp] = 10
    await app.consumer._add_gap(tp, 11, 20)
    app.consumer._acked[tp] = [10, 20]
    app.consumer._acked_index[tp] = {10, 20}
    assert app.consumer._new_offset(tp) == 11


async def test_offsets_retention_deleted_are_committed_over(app) -> None:
    # The group was stopped longer than the retention: its committed offset is gone from the log.
    app.first_offset = 150
    app.consumer._committed_offset[tp] = 100
    await app.consumer._add_gap(tp, 101, 150)  # faust's read offset was the committed one
    app.consumer._acked[tp] = [150, 151]
    app.consumer._acked_index[tp] = {150, 151}
    assert app.consumer._new_offset(tp) == 152


def acknowledge(app, *offsets: int) -> None:
    for offset in offsets:
        app.consumer._acked[tp].append(offset)
        app.consumer._acked_index[tp].add(offset)


def seeks_to(app, committed: int | None) -> None:
    """The recovery's seek to the committed offsets, answering `committed` for the partition."""
    async def seek_to_committed():
        return {tp: committed}

    app.consumer.seek_to_committed = seek_to_committed
    app.consumer.assignment = lambda: {tp}


async def test_nothing_is_committed_before_the_committed_offsets_are_known(app) -> None:
    # The restart test's failing run (SIGTERM case, 19:49 UTC): faust's recovery resumed the stream
    # partitions before it sought them to their committed offsets; 7..14 were fetched, processed
    # and acknowledged meanwhile, head 6 lost, and faust, with no committed offset to guard, committed 15.
    acknowledge(app, *range(7, 15))
    assert app.consumer._new_offset(tp) is None
    seeks_to(app, 6)
    await app.consumer.perform_seek()
    assert app.consumer._new_offset(tp) is None  # 6 still missing
    acknowledge(app, 6)
    assert app.consumer._new_offset(tp) == 15


@pytest.mark.parametrize("first", [0, 20])  # 20: retention deleted the partition's first records
async def test_a_partition_the_group_never_committed_is_committed_from_its_first_offset(app, first: int) -> None:
    app.first_offset = first
    seeks_to(app, None)
    await app.consumer.perform_seek()
    acknowledge(app, first + 1, first + 2)
    assert app.consumer._new_offset(tp) is None  # its first message lost
    acknowledge(app, first)
    assert app.consumer._new_offset(tp) == first + 3
