"""A batch's way out: outputs packed per partition (Outbox), completed in order behind the next
batch (InOrderBatches), states served from snapshots until written (StateCache)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared.codec import Codec, encode
from shared.schemas.base import Message
from shared.streaming import InOrderBatches, Outbox, StateCache


class Counter(Message):
    n: int


class Consumer:
    """What InOrderBatches uses of faust's consumer when no partition has a hole."""

    _unacked_messages: set = set()


class App:
    consumer = Consumer()


class FakeMessage:
    def __init__(self, offset: int) -> None:
        self.refcount = 1  # faust's own reference, dropped by its acknowledgement
        self.acked = False
        self.tp, self.offset, self.generation_id = ("t", 0), offset, 1

    def incref(self) -> None:
        self.refcount += 1

    def release(self) -> None:
        self.refcount -= 1
        self.acked = self.refcount == 0


class FakeEvent:
    """What InOrderBatches uses of a faust event: message.incref() and ack()."""

    offsets = iter(range(1_000_000))

    def __init__(self) -> None:
        self.message = FakeMessage(next(self.offsets))

    def ack(self) -> None:
        self.message.release()


def test_a_snapshot_is_read_before_the_table_until_written() -> None:
    table: dict[bytes, bytes] = {b"a": encode(Counter(n=1))}
    cache = StateCache(table, Codec(Counter), max_entries=1)
    cache.put(b"a", Counter(n=2))
    first = cache.snapshot()
    cache.discard(b"a")  # a step that raised rebuilds from here
    assert cache.get(b"a").n == 2 and table[b"a"] == encode(Counter(n=1))
    cache.put(b"a", Counter(n=3))
    second = cache.snapshot()
    cache.get(b"other")  # evicts "a" (max_entries=1): the snapshot still answers
    cache.write(first)
    assert cache.get(b"a").n == 3  # the later snapshot, not the table's older write
    cache.write(second)
    assert Codec(Counter).decode(table[b"a"]).n == 3


async def test_batches_complete_in_order_after_their_acks_and_only_then_release_their_events() -> None:
    batches = InOrderBatches("test", App())
    done: list[str] = []
    first_ack, second_ack = asyncio.get_running_loop().create_future(), asyncio.get_running_loop().create_future()
    first, second = [FakeEvent()], [FakeEvent()]
    assert await batches.hold(first) == first
    await batches.complete(first, [first_ack], [lambda: done.append("first")])
    for event in first:
        event.ack()  # faust's acknowledgement after the body: not the last reference
    assert await batches.hold(second) == second
    second_ack.set_result(None)  # the second batch's outputs are acknowledged first
    await asyncio.sleep(0)
    assert done == [] and not first[0].message.acked
    first_ack.set_result(None)
    await batches.complete(second, [second_ack], [lambda: done.append("second")])
    await batches.drain()
    assert done == ["first", "second"]
    assert first[0].message.acked and second[0].message.refcount == 1  # faust's own ack still to come


async def test_a_batch_whose_outputs_failed_stays_unacknowledged_and_the_stage_fails() -> None:
    batches = InOrderBatches("test", App())
    failed = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("broker refused"))
    events, written = [FakeEvent()], []
    assert await batches.hold(events) == events
    await batches.complete(events, [failed], [lambda: written.append(True)])
    with pytest.raises(RuntimeError, match="broker refused"):
        await batches.complete([], [], [])
    assert written == [] and events[0].message.refcount == 2


async def test_outbox_puts_each_key_on_the_partition_send_would_and_splits_full_batches() -> None:
    producer = AIOKafkaProducer(max_batch_size=1024)  # not started: only batches are built
    shipped: list[tuple[str, int, int]] = []

    async def partitions_for(topic: str) -> set[int]:
        return {0, 1, 2, 3}

    async def send_batch(batch, topic, *, partition):
        shipped.append((topic, partition, batch.record_count()))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    producer.partitions_for = partitions_for
    producer.send_batch = send_batch
    outbox = Outbox(producer)
    keys = [f"key-{i}".encode() for i in range(40)]
    for key in keys:
        await outbox.add("t", key, b"x" * 200, [("bg-origin", b"route/0")])
    acks = await outbox.send()
    expected: dict[int, int] = {}
    for key in keys:
        partition = DefaultPartitioner()(key, [0, 1, 2, 3], [0, 1, 2, 3])
        expected[partition] = expected.get(partition, 0) + 1
    per_partition: dict[int, int] = {}
    for _, partition, count in shipped:
        per_partition[partition] = per_partition.get(partition, 0) + count
    assert per_partition == expected
    assert len(shipped) > len(expected)  # 1 KiB batches: several per partition
    assert len(acks) == len(shipped)
