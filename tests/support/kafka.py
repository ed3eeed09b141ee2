"""Reading and writing the real topics from tests."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.codec import DecodeError
from shared.settings import kafka_settings


async def produce(topic: str, messages: list[tuple[str, bytes]], timestamp_ms: int | None = None) -> None:
    """`timestamp_ms`: the records' timestamp (the log's wall clock), else the producer's clock."""
    producer = AIOKafkaProducer(**kafka_settings().aiokafka_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key.encode(), value=value, timestamp_ms=timestamp_ms)
        await producer.flush()
    finally:
        await producer.stop()


async def collect(
    topic: str,
    until: Callable[[list[Any]], bool],
    decode: Callable[[bytes], Any] = lambda b: b,
    where: Callable[[Any], bool] = lambda _: True,
    timeout: float = 60.0,
    settle: float = 0.0,
) -> list[Any]:
    """Read `topic` from the beginning; keep decoded values matching `where` until `until(kept)`.

    `settle` keeps reading that many seconds after `until` holds, to catch duplicates that
    must not be there. Fails with what was seen when the timeout passes.
    """
    consumer = AIOKafkaConsumer(
        topic, **kafka_settings().aiokafka_kwargs(),
        group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    kept: list[Any] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while True:
            now = time.monotonic()
            if settle_until is not None and now >= settle_until:
                return kept
            if now >= deadline:
                raise AssertionError(f"timed out after {timeout}s reading {topic}; kept {len(kept)}: {kept[-5:]!r}")
            batches = await consumer.getmany(timeout_ms=300, max_records=1000)
            for records in batches.values():
                for record in records:
                    # Other tests of the session write to the same topics, bad messages included.
                    try:
                        value = decode(record.value)
                    except DecodeError:
                        continue
                    if where(value):
                        kept.append(value)
            if settle_until is None and until(kept):
                if settle <= 0:
                    return kept
                settle_until = time.monotonic() + settle
    finally:
        await consumer.stop()


async def read_to_end(topic: str, decode: Callable[[bytes], Any] = lambda b: b,
                      where: Callable[[Any], bool] = lambda _: True, timeout: float = 60.0,
                      bootstrap: str | None = None) -> list[Any]:
    """Every decoded value of `topic` matching `where`, from the beginning up to the end offsets
    of its partitions as they were when the call began: what was written before is all there,
    without sleeping for stragglers (a write acknowledged before the call is below its end).
    Values that do not decode are skipped (other tests write bad messages on purpose).
    `bootstrap`: another broker than the session's (a test's own)."""
    connection = {"bootstrap_servers": bootstrap} if bootstrap else kafka_settings().aiokafka_kwargs()
    # No group: the consumer assigns itself every partition of the topic.
    consumer = AIOKafkaConsumer(topic, **connection, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise AssertionError(f"no partitions of {topic} assigned in {timeout}s")
            await consumer.getmany(timeout_ms=100)
        partitions = sorted(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        kept: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topic} to its end took over {timeout}s; kept {len(kept)}")
            for records in (await consumer.getmany(*partitions, timeout_ms=300)).values():
                for record in records:
                    if record.offset >= ends[TopicPartition(record.topic, record.partition)]:
                        continue
                    try:
                        value = decode(record.value)
                    except DecodeError:
                        continue
                    if where(value):
                        kept.append(value)
        return kept
    finally:
        await consumer.stop()


async def copy_log(source: str, target: str) -> int:
    """Copy every record of topic `source` into topic `target`: the same partition number, key,
    value and timestamp, in each partition's order (a replay of the same log). Returns how many
    records were copied.

    Reads `source` from the beginning until no record came for 2 s: it must be written to the
    end already (a record written later is not copied). `target` is waited for up to 30 s until
    it is in the metadata (a namespace just created); still missing, the first send raises
    aiokafka's UnknownTopicOrPartitionError, and AssertionError when it lacks one of `source`'s
    partitions. Other broker errors (KafkaError) propagate."""
    consumer = AIOKafkaConsumer(source, **kafka_settings().aiokafka_kwargs(), group_id=f"copy-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(**kafka_settings().aiokafka_kwargs(), acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    copied = 0
    try:
        for _ in range(60):
            if await producer.partitions_for(target):
                break
            await asyncio.sleep(0.5)
        while True:
            batches = await consumer.getmany(timeout_ms=2000, max_records=1000)
            if not batches:
                break
            for tp, records in batches.items():
                for r in records:
                    await producer.send(target, key=r.key, value=r.value, partition=tp.partition,
                                        timestamp_ms=r.timestamp)
                    copied += 1
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    return copied


async def drained(group: str, topic: str, timeout: float = 90.0) -> None:
    """Waits until consumer group `group` has committed, on every partition of `topic`, at least
    the end offset the partition had when the call began.

    A service commits its offsets only after its outputs were acknowledged (docs/exactly-once.md),
    so from then on everything the inputs written before the call make is on its output topics:
    read them to their end (read_to_end) instead of reading on for seconds in case more comes.
    """
    probe = AIOKafkaConsumer(topic, **kafka_settings().aiokafka_kwargs(), enable_auto_commit=False)
    await probe.start()
    deadline = time.monotonic() + timeout
    try:
        while not probe.assignment():
            if time.monotonic() > deadline:
                raise AssertionError(f"no partitions of {topic} assigned in {timeout}s")
            await probe.getmany(timeout_ms=100)
        ends = await probe.end_offsets(sorted(probe.assignment()))
    finally:
        await probe.stop()
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
    await admin.start()
    try:
        while True:
            committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
            behind = {f"{tp.partition}": (getattr(committed.get(tp), "offset", -1), end) for tp, end in ends.items()
                      if getattr(committed.get(tp), "offset", -1) < end and end > 0}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} did not reach the end of {topic} in {timeout}s "
                                     f"(partition: (committed, end)): {behind}")
            await asyncio.sleep(0.25)  # how often to ask, not a guess at when work is done
    finally:
        await admin.close()


async def written(topic: str, count: int, decode: Callable[[bytes], Any],
                  where: Callable[[Any], bool]) -> list[Any]:
    """The values on `topic` matching `where`, asserted to be exactly `count` of them.

    For what a service wrote before it answered (ingest answers after Kafka acknowledged):
    read to the end offsets, the topic holds all of it, and any duplicate, with no sleeping
    for stragglers that cannot come."""
    got = await read_to_end(topic, decode=decode, where=where)
    assert len(got) == count, f"{len(got)} matching on {topic}, expected {count}: {got[-5:]!r}"
    return got


async def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


# Every topic namespace this test session made (new_namespace), deleted at its end.
CREATED_NAMESPACES: set[str] = set()
log = logging.getLogger("tests.kafka")


def _cleanup_problem(message: str) -> None:
    # Both: the log for a live-log run, the warning for pytest's summary at the end of the run.
    log.warning(message)
    warnings.warn(message, stacklevel=2)


def new_namespace(letter: str = "t") -> str:
    """A fresh topic namespace, `<letter><8 hex>.`, remembered so that the session deletes its
    topics (changelogs of the faust apps run in it included) when it ends: left behind, the
    partitions of every run pile up on the broker, which then takes minutes to start."""
    name = f"{letter}{uuid.uuid4().hex[:8]}."
    CREATED_NAMESPACES.add(name)
    return name


async def namespace_with_topics(letter: str = "t") -> str:
    """new_namespace(letter) with every topic of the plan created in it."""
    from shared.topics import ensure_topics

    name = new_namespace(letter)
    with namespace(name):
        await ensure_topics(wait_seconds=30)
    return name


async def delete_namespaces(names: set[str], timeout: float = 60.0) -> list[str]:
    """Delete every topic whose name starts with one of `names`; returns the deleted names.

    Never raises: a cleanup error must not fail a run whose tests passed, so it is logged and
    the topics stay (the next session's cleanup does not know them; see docs/testing.md).
    """
    if not names:
        return []
    admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs(), request_timeout_ms=int(timeout * 1000))
    doomed: list[str] = []
    try:
        await admin.start()
        doomed = sorted(t for t in await admin.list_topics() if t.startswith(tuple(names)))
        # In slices: one request naming hundreds of topics can outlast the request timeout.
        refused: list[str] = []
        for start in range(0, len(doomed), 50):
            response = await admin.delete_topics(doomed[start:start + 50], timeout_ms=int(timeout * 1000))
            refused += [f"{topic} (error {code})" for topic, code, *_ in response.topic_error_codes if code]
        if refused:
            _cleanup_problem(f"the broker did not delete {len(refused)} test topics: {refused[:5]}")
        return doomed
    except Exception as exc:  # any failure here is reported, never raised
        _cleanup_problem(f"could not delete the test session's topics ({len(doomed)} found): {exc!r}")
        return []
    finally:
        try:
            await admin.close()
        except Exception as exc:
            _cleanup_problem(f"closing the admin client after topic cleanup failed: {exc!r}")


@contextmanager
def namespace(name: str) -> Iterator[None]:
    """BG_TOPIC_NAMESPACE for the code in this process (topic names), restored afterwards."""
    previous = os.environ.get("BG_TOPIC_NAMESPACE")
    os.environ["BG_TOPIC_NAMESPACE"] = name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("BG_TOPIC_NAMESPACE", None)
        else:
            os.environ["BG_TOPIC_NAMESPACE"] = previous
