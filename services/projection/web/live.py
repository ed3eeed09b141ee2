"""Live signals and changes for the pages: ONE background Kafka consumer (signals) and ONE
change-feed poller (changed opportunities) per process, fanning out to every open page
through in-memory queues.

Why the signals topic and not Redis pub/sub: the projection does not publish to Redis, and
scoring already writes every signal to bg.signal.v1; reading it needs no new moving part.
Why one shared consumer and not one per page: a page connection then costs a queue, not a
Kafka connection, a consumer-group join (seconds of rebalance before the first event) and an
orphaned group on the broker once the tab closes. The consumer has no group and commits
nothing: a page wants what happens from now on, so it starts at the end of every partition.
What happens while a page is disconnected is in the database; the page shows it on reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from services.projection.repository import Reader
from shared.codec import DecodeError, scoring_messages
from shared.privacy.person import open_member_names
from shared.schemas.scoring import Signal
from shared.settings import KafkaSettings

log = logging.getLogger("projection.web.live")

# Opens the sealed member names of a signal (docs/privacy.md).
NameOpener = Callable[[Signal], Awaitable[Signal]]

T = TypeVar("T")
QUEUE_SIZE = 100  # a page that stops reading loses its oldest signals, never the hub's memory


class _Hub(ABC, Generic[T]):
    """One background task per process (`_run`, set `ready` once it follows from now on) fanning
    out what it finds to every subscribed page's queue."""

    name = "web-hub"

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self._subscribers: set[asyncio.Queue[T]] = set()
        self._task: asyncio.Task | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self, ready_timeout: float = 15.0) -> AsyncIterator[asyncio.Queue[T]]:
        """A queue of what is found from now on. Entered only once the task is `ready`, so that
        nothing found after that is missed; TimeoutError when it is not within `ready_timeout` s."""
        # Started by the first page rather than with the app: an API that only CRMs call never
        # opens the connection.
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.name)
        await asyncio.wait_for(self.ready.wait(), ready_timeout)
        queue: asyncio.Queue[T] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _publish(self, item: T) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)

    @abstractmethod
    async def _run(self) -> None:
        """Follow the source for good, retrying after an outage; `ready` while it follows."""


class SignalHub(_Hub[Signal]):
    """Signals written from now on: subscribed once the consumer holds its position at the end of
    every partition. `open_names`: a signal with its members' sealed names opened
    (docs/privacy.md: shared.privacy.person.named_members with the vault); None shows them as
    the log has them."""

    name = "web-signal-hub"

    def __init__(self, kafka: KafkaSettings, topic: str, retry_seconds: float = 2.0,
                 open_names: NameOpener | None = None) -> None:
        super().__init__()
        self.kafka = kafka
        self.topic = topic
        self.open_names = open_names
        self.retry_seconds = retry_seconds

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(**self.kafka.aiokafka_kwargs(), group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="latest")
            try:
                await consumer.start()
                consumer.subscribe([self.topic])
                partitions = await self._assigned(consumer)
                for tp in partitions:
                    await consumer.position(tp)  # resolve "the end" now, not at the first fetch
                self.ready.set()
                log.info("live signals: following %s (%d partitions)", self.topic, len(partitions))
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                    for records in batches.values():
                        for record in records:
                            await self._decode_and_publish(record.value)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning("live signals: Kafka unavailable, retrying", extra={"error": repr(exc)})
            finally:
                self.ready.clear()
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(self.retry_seconds)

    async def _assigned(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Without a group, a subscription is assigned every partition once the metadata is in."""
        waited = 0.0
        while not (partitions := consumer.assignment()):
            await asyncio.sleep(0.05)
            waited += 0.05
            if waited >= 10:
                log.warning("live signals: no partitions of %s yet (does the topic exist?)", self.topic)
                waited = 0.0
        return partitions

    async def _decode_and_publish(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            message = scoring_messages.decode(value)
        except DecodeError:
            return  # the projection dead-letters it; a page has nothing to show
        if not isinstance(message, Signal):
            return
        if self.open_names is not None:
            try:
                message = await self.open_names(message)
            except RedisError as exc:
                # The vault away: the signal still shows, without names (never the sealed text).
                log.warning("live signals: names not opened", extra={"error": repr(exc)})
                message = open_member_names(message, {})
        self._publish(message)


class ChangeHub(_Hub[dict]):
    """Changed opportunities for the pages, from the projection's own change feed (the
    opportunities' change_seq, as GET /v1/changes reads it): ONE poller per process, fanning
    out to every open page. A page told that an opportunity changed fetches its HTML again, so
    it shows what the database holds, the same as a reload would: members, score, tier,
    status, new rows. Why the change feed and not bg.score.v1 / bg.opportunity.v1: a page that
    heard of a change from Kafka before the projection applied it would fetch the old state.
    """

    name = "web-change-hub"

    def __init__(self, reader: Reader, interval: float = 1.0, batch: int = 500) -> None:
        super().__init__()
        self.reader = reader
        self.interval = interval
        self.batch = batch

    async def _run(self) -> None:
        cursor: int | None = None
        while True:
            try:
                if cursor is None:
                    cursor = await self.reader.last_change_seq()
                    self.ready.set()
                rows = await self.reader.changes(cursor, self.batch)
                for row in rows:
                    # Items of the queue: {"opportunity_id", "change_seq"}.
                    self._publish({"opportunity_id": row["opportunity_id"], "change_seq": row["change_seq"]})
                if rows:
                    cursor = rows[-1]["change_seq"]
                if len(rows) < self.batch:
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except (OSError, SQLAlchemyError) as exc:
                log.warning("live changes: database unavailable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(self.interval * 2)
