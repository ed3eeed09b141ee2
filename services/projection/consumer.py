"""The projection consumer: Kafka batches -> rows -> one database transaction per batch.

Exactly once into the database without Kafka transactions: the next offset of every partition
is written in the same transaction as the rows, and on assignment the consumer seeks to the
offsets stored there (to the beginning where none are stored: an empty database is rebuilt
from the topics). The offsets are committed to Kafka too, after the database commit, only so
that the usual lag tools see the group's progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.projection.domain import NotApplicable, Row, map_message, reduce_rows, unseal
from services.projection.repository import UnitOfWork
from shared import topics
from shared.codec import (
    DecodeError,
    corrections,
    crm_events,
    encode,
    opportunity_log,
    qualification_events,
    scoring_messages,
)
from shared.privacy.seal import SEALED_IN_JSON
from shared.privacy.vault import Vault
from shared.schemas.deadletter import DeadLetter
from shared.settings import KafkaSettings

log = logging.getLogger("projection.consumer")

SERVICE = "projection"
MESSAGES = Counter("bg_projection_messages_total", "Messages consumed, by topic and outcome", ["topic", "outcome"])
BATCH_SECONDS = Histogram("bg_projection_batch_seconds", "Time to apply one batch, commit included")

SOURCES: dict[topics.Topic, Callable[[bytes], Any]] = {
    topics.OPPORTUNITY_EVENTS: opportunity_log.decode,
    topics.SCORES: scoring_messages.decode,
    topics.SIGNALS: scoring_messages.decode,
    topics.CRM_STAGES: crm_events.decode,
    topics.QUALIFICATION: qualification_events.decode,
    topics.CORRECTIONS: corrections.decode,
}


def source_decoders() -> dict[str, Callable[[bytes], Any]]:
    """By topic name, read when called: the names follow BG_TOPIC_NAMESPACE."""
    return {topic.name: decode for topic, decode in SOURCES.items()}


@dataclass(frozen=True, slots=True)
class Item:
    """One consumed message and what it means for the tables."""

    topic: str
    partition: int
    offset: int
    rows: list[Row]


@dataclass
class Prepared:
    items: list[Item] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def rows(self) -> list[Row]:
        return [row for item in self.items for row in item.rows]


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def dead_letter(record: Any, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(
        service=SERVICE, reason=reason, detail=detail[:2000], failed_at=datetime.now(UTC),
        source_topic=record.topic, source_partition=record.partition, source_offset=record.offset,
        key=_text(record.key), payload=_text(record.value) or "",
    )


def prepare(records: Iterable[Any], decoders: Mapping[str, Callable[[bytes], Any]],
            opened: Mapping[str, Mapping[str, str]] | None = None) -> Prepared:
    """Decode and map; what cannot be used becomes a dead letter. Every offset advances.
    `opened`: the sealed values of the records' members, opened (Opener); members keep no email
    and no name without it."""
    out = Prepared()
    for record in records:
        tp = (record.topic, record.partition)
        out.offsets[tp] = max(out.offsets.get(tp, 0), record.offset + 1)
        try:
            if record.value is None:
                raise DecodeError("invalid_json", "the message has no value (a tombstone)")
            rows = map_message(unseal(decoders[record.topic](record.value), opened or {}))
        except (DecodeError, NotApplicable) as exc:
            out.dead.append(dead_letter(record, exc.reason, exc.detail))
            continue
        out.items.append(Item(record.topic, record.partition, record.offset, rows))
    return out


def sqlstate(exc: BaseException) -> str:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) or ""


def refused(exc: BaseException) -> bool:
    """The database refuses the data itself (class 22 data exception, 23 integrity): retrying
    the same rows cannot help."""
    return isinstance(exc, DBAPIError) and sqlstate(exc)[:2] in ("22", "23")


def _transient(exc: BaseException) -> bool:
    """Worth retrying the same batch: the database or Kafka is away, or two writers collided."""
    if refused(exc):
        return False
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError | KafkaError | RedisError):
        return True
    return sqlstate(exc) in ("40001", "40P01") or sqlstate(exc)[:2] in ("08", "53", "57")


class DeadLetters:
    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Acknowledged before the batch's offsets are stored: a crash in between sends a letter
        twice, never loses it. Corrections go to their own dead-letter topic, where the people
        who made them (and the other services applying them) look."""
        corrections_topic = topics.CORRECTIONS.name
        futures = [await self._producer.send(
            topics.CORRECTIONS_DLQ.name if dl.source_topic == corrections_topic else topics.PROJECTION_DLQ.name,
            key=(dl.key or "").encode(), value=encode(dl)) for dl in letters]
        for future in futures:
            await future


def _undo_refusal(target_id: str, target: tuple[str, bool] | None) -> tuple[str, str] | None:
    """(reason, detail) when the history cannot take an undo of `target` ((type, undone) or None)."""
    if target is None:
        return "unknown_correction", f"no correction {target_id!r} in the history"
    if target[0] == "correction_undone":
        return "not_undoable", f"correction {target_id!r} is itself an undo; make the correction again instead"
    if target[1]:
        return "not_undoable", f"correction {target_id!r} is already undone"
    return None


def vet_undos(prepared: Prepared, stored: Mapping[str, tuple[str, bool]], records: Mapping[tuple[str, int, int], Any]
              ) -> None:
    """Undos the history cannot take become dead letters: one naming no known correction, one
    of an undo, or of a correction already undone. `stored`: {correction id: (type, undone)}
    of the history before this batch; the batch's own corrections count in their order. An
    undo already in the history (a replay) is dropped without a letter."""
    seen = dict(stored)
    kept: list[Item] = []
    for item in prepared.items:
        undo = next((r.values for r in item.rows if r.kind == "correction_undo"), None)
        own = next((r.values for r in item.rows if r.kind == "correction"), None)
        if own is not None and own["correction_id"] in seen:
            if undo is None:
                kept.append(item)  # the history keeps the first; the row is a no-op
            continue
        if undo is not None:
            target_id = undo["correction_id"]
            refusal = _undo_refusal(target_id, seen.get(target_id))
            if refusal is not None:
                prepared.dead.append(dead_letter(records[(item.topic, item.partition, item.offset)], *refusal))
                continue
            seen[target_id] = (seen[target_id][0], True)
        if own is not None:
            seen[own["correction_id"]] = (own["type"], False)
        kept.append(item)
    prepared.items = kept


class DeadLetterSink(Protocol):
    async def send(self, letters: Sequence[DeadLetter]) -> None: ...


@dataclass
class Health:
    batches: int = 0
    messages: int = 0
    dead_lettered: int = 0
    last_batch_at: datetime | None = None
    failing: str | None = None  # the error the current batch keeps retrying on
    assigned: list[str] = field(default_factory=list)
    running: bool = False


class Opener:
    """Opens the sealed member values of a batch with the vault (one Redis round trip); the
    values live only in memory until they are written to the members' rows."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    async def __call__(self, records: Sequence[Any]) -> dict[str, dict[str, str]]:
        sealed = [m.group(1).decode() for r in records if r.value and b'"v1.p' in r.value
                  for m in SEALED_IN_JSON.finditer(r.value)]
        return await self.vault.open(sealed) if sealed else {}


class Projector:
    """Applies batches of records; shared by the live consumer and the rebuild."""

    def __init__(self, uow: UnitOfWork, dead_letters: DeadLetterSink, consumer_name: str,
                 health: Health | None = None, max_backoff: float = 10.0, opener: Opener | None = None) -> None:
        self.opener = opener
        self.uow = uow
        self.dead_letters = dead_letters
        self.consumer_name = consumer_name
        self.health = health or Health()
        self.max_backoff = max_backoff

    async def process(self, records: Sequence[Any]) -> dict[tuple[str, int], int]:
        """Apply the records; returns the next offset of each partition, stored with the rows."""
        started = time.perf_counter()
        opened = await self._retrying(lambda: self.opener(records)) if self.opener is not None else None
        prepared = prepare(records, source_decoders(), opened)
        ids = [r.values["correction_id"] for item in prepared.items for r in item.rows
               if r.kind in ("correction", "correction_undo")]
        if ids:
            stored = await self._retrying(lambda: self.uow.correction_states(ids))
            vet_undos(prepared, stored, {(r.topic, r.partition, r.offset): r for r in records})
        if prepared.dead:
            await self._retrying(lambda: self.dead_letters.send(prepared.dead))
            for dl in prepared.dead:
                log.warning("dead-lettered", extra={"reason": dl.reason, "detail": dl.detail,
                                                    "topic": dl.source_topic, "offset": dl.source_offset})
        try:
            await self._apply(prepared.rows(), prepared.offsets)
        except DBAPIError as exc:
            if not refused(exc):
                raise
            # One message the database refuses (say, a NUL character in a text) would stop the
            # whole batch forever: apply them one by one and dead-letter the refused ones.
            await self._one_by_one(prepared, {(r.topic, r.partition, r.offset): r for r in records})
        self._count(records, prepared)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return prepared.offsets

    async def _one_by_one(self, prepared: Prepared, records: Mapping[tuple[str, int, int], Any]) -> None:
        for item in prepared.items:
            offset = {(item.topic, item.partition): item.offset + 1}
            try:
                await self._apply(item.rows, offset)
            except DBAPIError as exc:
                if not refused(exc):
                    raise
                letter = dead_letter(records[(item.topic, item.partition, item.offset)], "unapplicable",
                                     f"the database refused the message: {exc.orig}")
                prepared.dead.append(letter)
                await self._retrying(lambda letters=[letter]: self.dead_letters.send(letters))
                await self._apply([], offset)
                log.warning("dead-lettered", extra={"reason": letter.reason, "detail": letter.detail,
                                                    "topic": item.topic, "offset": item.offset})
        # Offsets of dead letters found while decoding, and of the batch's last message.
        await self._apply([], prepared.offsets)

    async def _apply(self, rows: list[Row], offsets: dict[tuple[str, int], int]) -> None:
        await self._retrying(lambda: self.uow.apply(self.consumer_name, reduce_rows(rows), offsets))

    async def _retrying(self, action: Callable[[], Any]) -> Any:
        delay = 0.2
        while True:
            try:
                result = await action()
            except Exception as exc:
                if not _transient(exc):
                    raise
                self.health.failing = repr(exc)
                log.warning("retrying after a transient error", extra={"error": repr(exc), "delay": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            self.health.failing = None
            return result

    def _count(self, records: Sequence[Any], prepared: Prepared) -> None:
        dead = {(d.source_topic, d.source_partition, d.source_offset) for d in prepared.dead}
        for r in records:
            MESSAGES.labels(r.topic, "dead_lettered" if (r.topic, r.partition, r.offset) in dead else "applied").inc()
        self.health.batches += 1
        self.health.messages += len(records)
        self.health.dead_lettered += len(prepared.dead)
        self.health.last_batch_at = datetime.now(UTC)


def _flatten(batches: Mapping[TopicPartition, list[Any]]) -> list[Any]:
    return [record for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition)) for record in batches[tp]]


class SeekToStoredOffsets(ConsumerRebalanceListener):
    def __init__(self, consumer: AIOKafkaConsumer, uow: UnitOfWork, consumer_name: str, health: Health) -> None:
        self.consumer = consumer
        self.uow = uow
        self.consumer_name = consumer_name
        self.health = health

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Nothing is in flight between two getmany calls: each batch is committed before the next.
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        stored = await self.uow.stored_offsets(self.consumer_name, {tp.topic for tp in assigned})
        fresh = []
        for tp in assigned:
            if (tp.topic, tp.partition) in stored:
                self.consumer.seek(tp, stored[(tp.topic, tp.partition)])
            else:
                fresh.append(tp)
        if fresh:
            await self.consumer.seek_to_beginning(*fresh)
        self.health.assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)
        log.info("partitions assigned", extra={"assigned": self.health.assigned, "from_start": len(fresh)})


def make_consumer(kafka: KafkaSettings, group_id: str | None, max_records: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **kafka.aiokafka_kwargs(), group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
        max_poll_records=max_records,
    )


async def run_consumer(kafka: KafkaSettings, projector: Projector, group_id: str, stop: asyncio.Event,
                       max_records: int, poll_timeout_ms: int) -> None:
    consumer = make_consumer(kafka, group_id, max_records)
    consumer.subscribe([t.name for t in SOURCES],
                       listener=SeekToStoredOffsets(consumer, projector.uow, projector.consumer_name,
                                                    projector.health))
    await consumer.start()
    projector.health.running = True
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=poll_timeout_ms, max_records=max_records)
            if not batches:
                continue
            offsets = await projector.process(_flatten(batches))
            try:
                await consumer.commit({TopicPartition(t, p): o for (t, p), o in offsets.items()})
            except (CommitFailedError, KafkaError) as exc:
                # The database holds the truth; the group's Kafka offsets only show lag.
                log.info("kafka offset commit skipped", extra={"error": repr(exc)})
    finally:
        projector.health.running = False
        await consumer.stop()


async def _all_partitions(consumer: AIOKafkaConsumer, names: list[str], timeout: float = 30.0
                          ) -> list[TopicPartition]:
    """Without a group, a subscription is assigned every partition once the metadata is in."""
    consumer.subscribe(names)
    deadline = time.monotonic() + timeout
    while {tp.topic for tp in consumer.assignment()} != set(names):
        if time.monotonic() > deadline:
            missing = set(names) - {tp.topic for tp in consumer.assignment()}
            raise RuntimeError(f"topics not found: {sorted(missing)} (create them: python -m shared.topics ensure)")
        await asyncio.sleep(0.1)
    return sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))


async def rebuild(kafka: KafkaSettings, projector: Projector, max_records: int, show_progress: bool) -> int:
    """Replay every source topic from its beginning up to its end at the start; returns the
    number of messages. Later messages are left to the live consumer, which resumes from the
    offsets written here."""
    consumer = make_consumer(kafka, None, max_records)
    await consumer.start()
    try:
        partitions = await _all_partitions(consumer, [t.name for t in SOURCES])
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp] > begins[tp]}
        total = sum(ends[tp] - begins[tp] for tp in partitions)
        done = 0
        columns = (TextColumn("[bold]rebuilding projection"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("messages"), TimeRemainingColumn())
        with Progress(*columns, disable=not show_progress) as progress:
            task = progress.add_task("rebuild", total=total)
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=max_records)
                records = [r for r in _flatten(batches) if r.offset < ends[TopicPartition(r.topic, r.partition)]]
                if records:
                    await projector.process(records)
                    done += len(records)
                    progress.update(task, completed=min(done, total))
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
            progress.update(task, completed=total)
        return done
    finally:
        await consumer.stop()
