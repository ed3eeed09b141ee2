"""Reading and writing the real topics from tests."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

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


async def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


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
