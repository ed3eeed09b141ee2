"""What every faust-streaming service shares: the app factory, raw-bytes topics and the DLQ.

Policy, the same in every stream service:
- at-least-once (faust's default); every sink downstream is idempotent (versions, event ids);
- agents run with concurrency=1, since a higher one can commit past an in-flight message
  (faust-streaming issue 606);
- values travel as raw bytes and are decoded by shared.codec inside the agent, so a message
  that does not decode goes to the service's dead-letter topic with the reason instead of
  being dropped by faust's own deserialiser;
- faust acks a message whose agent raised, so agents catch per message and dead-letter;
- a partition the group never committed is re-read from its beginning when faust seeks back
  (`_seek_to_committed_or_beginning`, installed by make_app).
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Generic, TypeVar

import faust
import faust.streams
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.protocol.metadata import MetadataRequest
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Transport
from faust.types import TP, EventT, TopicT
from faust.types.tuples import ack_lock
from pydantic import BaseModel

from shared import liveness
from shared.codec import Codec, encode
from shared.schemas.deadletter import DeadLetter
from shared.settings import KafkaSettings, WorkerSettings, kafka_settings
from shared.topics import Topic

log = logging.getLogger(__name__)


def broker_credentials(settings: KafkaSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    if settings.sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism,
            ssl_context=settings.ssl_context(),
        )
    if ctx := settings.ssl_context():
        return faust.SSLCredentials(ctx)
    return None


# Makes the seek back to committed offsets also cover partitions that have none.
#
# faust drops records fetched around a rebalance, or while its flow is paused, and re-reads
# them by seeking every assigned partition back to its committed offset
# (Consumer.perform_seek -> AIOKafkaConsumer.seek_to_committed). aiokafka skips a partition
# whose committed offset is missing or 0, so on a partition the group never committed (a new or
# sparse topic) those records were never processed: seen with two workers starting together,
# and with a worker restarted before its first commit. Such a partition goes back to its
# beginning instead; reading records again is what at-least-once allows (see the policy above).
#
# This runs on the consumer's own thread, where faust makes the call; faust's Consumer.seek
# does not (it calls aiokafka from the event loop's thread) and races the fetcher.
_seek_to_committed = AIOKafkaConsumer.seek_to_committed


async def _seek_to_committed_or_beginning(self: AIOKafkaConsumer, *partitions: TopicPartition) -> dict:
    committed = await _seek_to_committed(self, *partitions)
    # Changelog partitions are positioned by faust's table recovery, never by commits.
    never = [tp for tp, offset in committed.items() if not offset and not tp.topic.endswith("-changelog")]
    if never:
        await self.seek_to_beginning(*never)
    return committed


# faust's livelock detector reads every assigned partition's position; just after a
# rebalance a partition may have none yet, aiokafka asserts, and the detector's crash took a
# whole scoring worker down (seen with two workers in the pipeline benchmark). The detector
# only logs, so a partition without a position is skipped until it has one.
_verify_event_path = AIOKafkaConsumerThread.verify_event_path


def _verify_positioned_event_path(self: AIOKafkaConsumerThread, now: float, tp) -> None:
    try:
        return _verify_event_path(self, now, tp)
    except AssertionError:
        return None


# faust declares its internal topics (the stages' topics, the tables' changelogs) and then
# subscribes, and the group's leader assigns from its client's metadata. A topic the
# controller has just created may not be in the metadata the broker answers yet (seen on a
# loaded machine); the assignors then skip it ("Ignoring missing topic") and the consumer only
# learns of it at its next metadata refresh, five minutes later: two grouping workers
# started together read their input for that long and never passed it on. So a declared
# topic is waited for until the broker's metadata lists its partitions with leaders.
_create_topic = Transport._create_topic
TOPIC_VISIBLE_SECONDS = 60.0


async def _visible(client: AIOKafkaClient, topic: str, partitions: int) -> bool:
    """True when a broker's metadata lists `partitions` partitions of `topic`, each with a leader."""
    node = client.get_random_node()
    if node is None:
        return False
    try:
        response = await client.send(node, MetadataRequest([topic], allow_auto_topic_creation=False))
    except (TimeoutError, KafkaError):
        return False
    cluster = ClusterMetadata()
    cluster.update_metadata(response)
    return len(cluster.available_partitions_for_topic(topic) or ()) >= partitions


async def _create_topic_and_wait(self: Transport, owner, client: AIOKafkaClient, topic: str,
                                 partitions: int, replication: int, **kwargs) -> None:
    await _create_topic(self, owner, client, topic, partitions, replication, **kwargs)
    deadline = asyncio.get_running_loop().time() + TOPIC_VISIBLE_SECONDS
    while not await _visible(client, topic, partitions):
        if asyncio.get_running_loop().time() > deadline:
            # Going on is what faust did before: the next metadata refresh finds it.
            log.warning("declared topic not in the metadata yet", extra={"topic": topic})
            return
        await asyncio.sleep(0.2)


# faust commits an offset only up to the first offset no stream acknowledged, except at the head:
# its guard lets one missing offset right after the committed one pass (`min(acked) - committed
# > 1`, faust-streaming issue 606, PR 707 open), so with the committed offset at 43 and 44.. acked
# it commits past 43, processed or not. The committed offset is the next one to read: any acked
# offset above it means a message in between is still unacknowledged.
#
# Without a committed offset faust's guard is off and it commits its first run of acknowledged
# offsets, wherever that starts. That happened after a restart (issue 19, item 10): faust's
# recovery resumes the stream partitions, its flow already on, and only then seeks them to their
# committed offsets (Recovery.on_recovery_completed); messages fetched meanwhile were processed
# and committed while the committed offsets were still unknown, past a head message lost in
# between: the group's committed offsets reached the ends with four messages never processed. So the head is known
# before anything is committed: the committed offset, or for a partition the group never committed
# its first offset (`head`; `_heads` is set by each seek to the committed offsets); until the
# first such seek of a worker nothing is committed.
_new_offset = Consumer._new_offset
_perform_seek = Consumer.perform_seek


def head(consumer: faust.types.ConsumerT, tp: TP) -> int | None:
    """The offset `tp` must be read from next: its committed offset; for a partition the group
    never committed, its first offset (`_heads`, kept at each seek to the committed offsets);
    None before the worker's first such seek. Nothing past it is committed; the liveness check
    (shared/liveness.py) reads a partition again from it."""
    committed = consumer._committed_offset.get(tp)
    return committed if committed is not None else getattr(consumer, "_heads", {}).get(tp)


def _new_offset_after_the_head(self: Consumer, tp: TP) -> int | None:
    acked, offset = self._acked[tp], head(self, tp)
    if acked and (offset is None or min(acked) > offset and not self._gap[tp].overlaps(offset)):
        return None
    return _new_offset(self, tp)


async def _perform_seek_knowing_heads(self: Consumer) -> None:
    await _perform_seek(self)
    # Offsets only grow: a head left from an earlier assignment is at most the true one, so it
    # never lets a commit pass a message; the next seek replaces it.
    never = [tp for tp in self.assignment()
             if self.app.topics.acks_enabled_for(tp.topic) and self._committed_offset.get(tp) is None]
    try:
        heads = dict(await self.earliest_offsets(*never)) if never else {}
    except (KafkaError, TimeoutError) as exc:
        # Left unknown, these partitions are not committed until the next seek: read again, not lost.
        log.warning("first offsets of partitions never committed not known", extra={"error": repr(exc)})
        heads = {}
    self._heads = {**getattr(self, "_heads", {}), **heads}


# faust's fetch loop takes a jump in a partition's offsets for a compacted range or transaction
# markers and marks the offsets in between committable though no stream saw them. Our stream
# topics are neither compacted nor transactional: such a jump is a message lost between the
# fetcher and the streams (seen when a seek back to the committed offsets ran while the fetch
# loop was delivering, docs/exactly-once.md), so it is logged, and InOrderBatches reads the
# missing offsets again. Only offsets retention deleted (below the partition's first offset, after
# a group was stopped for longer than the retention) are committable unread, as faust meant.
async def _fill_deleted_offsets_only(self: Consumer, tp: TP, offset_from: int, offset_to: int) -> None:
    log.warning("fetched offsets jump", extra={"topic": tp.topic, "partition": tp.partition,
                                               "from": offset_from, "to": offset_to})
    try:
        first = (await self.earliest_offsets(tp)).get(tp)
    except (KafkaError, TimeoutError):
        return  # nothing is committed over; a restart reads the partition again
    committed = self._committed_offset[tp]
    low = offset_from if committed is None else min(offset_from, committed)
    if first is not None and first > low:
        self._gap[tp].addi(low, min(offset_to, first - 1) + 1)  # intervals exclude their end
        self._gap[tp].merge_overlaps()


def make_app(service: str, **overrides) -> faust.App:
    """A faust App wired from the environment (shared.settings) with the project's policy."""
    AIOKafkaConsumer.seek_to_committed = _seek_to_committed_or_beginning
    AIOKafkaConsumerThread.verify_event_path = _verify_positioned_event_path
    Transport._create_topic = _create_topic_and_wait
    Consumer._new_offset = _new_offset_after_the_head
    Consumer.perform_seek = _perform_seek_knowing_heads
    Consumer._add_gap = _fill_deleted_offsets_only
    settings = kafka_settings()
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    worker = WorkerSettings()
    state_dir = worker.state_dir / f"{namespace}{service}"
    state_dir.mkdir(parents=True, exist_ok=True)
    brokers = ";".join(f"kafka://{b.strip()}" for b in settings.bootstrap_servers.split(","))
    options = dict(
        broker=brokers,
        broker_credentials=broker_credentials(settings),
        store=worker.table_store,
        datadir=str(state_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        producer_acks=-1,
        producer_linger_ms=5,
        consumer_auto_offset_reset="earliest",
        # Offsets are committed by faust's timer, every second, off the delivery path. A
        # commit waits for every pending send to be acknowledged (faust flushes the producer
        # first), and one triggered by a count (broker_commit_every) runs inside the loop that
        # hands fetched messages to every agent of the process: with 500 it stalled delivery
        # for 1 to 2 s every few hundred messages on a busy machine ("Timer commit is
        # overlapping"), which live latency showed. faust's default count, 10,000, is a bound
        # on what a crash re-reads, not a pace.
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        # A SIGKILLed worker keeps its partitions until its session ends: faust's default, 60 s,
        # held a killed scoring worker's partitions for a minute (bench/failover.py). Heartbeats
        # go from the consumer's own thread (AIOKafkaConsumerThread), so a busy stream does not
        # miss them; 15 s leaves room for a loaded machine above the broker's 6 s minimum.
        # faust's BROKER_SESSION_TIMEOUT / BROKER_HEARTBEAT_INTERVAL still override these.
        broker_session_timeout=15.0,
        broker_heartbeat_interval=3.0,
        web_enabled=worker.faust_web,
        web_port=worker.faust_web_port,
        table_cleanup_interval=60.0,
        # No standby copies by default (BG_TABLE_STANDBY_REPLICAS): with them each of two workers
        # read the other's changelogs as they were written, and two workers cost 15 to 49% more CPU
        # per event than one, -5 to +16% without (docs/benchmarks.md, "Two workers: CPU per event").
        # A partition that moves is recovered from its changelog instead, as at every start with
        # the memory store.
        table_standby_replicas=worker.table_standby_replicas,
        logging_config=None,
    )
    if worker.worker_id:
        # Static membership (KIP-345): a worker restarted under the same id takes its
        # partitions back at once, without a rebalance and without waiting out the dead
        # member's session. Each worker of a service needs its own id.
        options["consumer_group_instance_id"] = f"{namespace}bg-{service}-{worker.worker_id}"
    options.update(overrides)
    # The consumer group and the changelog topics follow the topic namespace.
    app = faust.App(f"{namespace}bg-{service}", **options)
    liveness.watch(app, head)  # a partition stalled after an assignment is read again (shared/liveness.py)
    return app


def raw_topic(app: faust.App, topic: Topic) -> TopicT:
    """A topic whose keys and values are bytes: shared.codec does the decoding."""
    return app.topic(topic.name, key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


class DeadLetterSink:
    """Sends what a service could not use, with the reason, to its dead-letter topic."""

    def __init__(self, app: faust.App, service: str, topic: Topic) -> None:
        self.service = service
        self.topic = raw_topic(app, topic)

    async def send(self, event: EventT | None, reason: str, detail: str,
                   payload: bytes | str | None = None, key: str | None = None) -> Awaitable:
        """Queue the dead letter; returns what Kafka's acknowledgement of it resolves."""
        msg = event.message if event is not None else None
        raw = payload if payload is not None else (event.value if event is not None else b"")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        if key is None and msg is not None and msg.key is not None:
            key = msg.key.decode("utf-8", errors="replace") if isinstance(msg.key, bytes) else str(msg.key)
        letter = DeadLetter(
            service=self.service, reason=reason, detail=detail[:4000],
            failed_at=datetime.now(UTC),
            source_topic=msg.topic if msg else None,
            source_partition=msg.partition if msg else None,
            source_offset=msg.offset if msg else None,
            key=key, payload=str(raw),
        )
        log.warning("dead-lettered", extra={"reason": reason, "detail": detail[:300], "key": key})
        return await self.topic.send(key=(key or "").encode(), value=encode(letter))

    async def crashed(self, event: EventT, exc: BaseException) -> Awaitable:
        """A bug, not bad input: keep the message and the traceback for a replay after the fix."""
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.exception("processing failed; message dead-lettered")
        return await self.send(event, "processing_error", detail)


@lru_cache(maxsize=65_536)
def _partition_of(partitioner: Callable[[bytes, list[int], list[int]], int], key: bytes,
                  partitions: tuple[int, ...]) -> int:
    """The partition `partitioner` (aiokafka's DefaultPartitioner: murmur2 of the key, in pure
    Python) gives `key` among `partitions`; cached, since a stage sends to the same keys (a
    person, an account) again and again: the hash was 3% of grouping's CPU."""
    return partitioner(key, list(partitions), list(partitions))


class Outbox:
    """One batch's records for Kafka, packed into one producer batch per partition.

    aiokafka's send() pays, per record, a metadata lookup (which copies the topic's partition
    set), a partitioner call, an accumulator append and a future: about 15% of grouping's
    CPU under a live load (py-spy, docs/benchmarks.md). create_batch/send_batch pay that once
    per partition and batch. A key goes to the partition the producer's own partitioner gives,
    the one send() would have chosen, so tables and topics stay co-partitioned.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._open: dict[tuple[str, int], BatchBuilder] = {}
        self._partitions: dict[str, tuple[int, ...]] = {}
        self.acks: list[asyncio.Future] = []

    async def add(self, topic: str, key: bytes, value: bytes,
                  headers: Sequence[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        """Queue one record; a partition's batch that is full is shipped at once."""
        if partition is None:
            partitions = self._partitions.get(topic)
            if partitions is None:
                # sorted: the order DefaultPartitioner indexes, as list(set) of 0..n-1 gives in send()
                partitions = self._partitions[topic] = tuple(sorted(await self._producer.partitions_for(topic)))
            partition = _partition_of(self._producer._partitioner, key, partitions)
        builder = self._open.get((topic, partition))
        if builder is None:
            builder = self._open[(topic, partition)] = self._producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
            await self._ship(topic, partition, builder)
            builder = self._open[(topic, partition)] = self._producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                raise ValueError(f"a record of {len(value)} bytes does not fit an empty producer batch")

    async def send(self) -> list[asyncio.Future]:
        """Ship every open batch; returns the futures Kafka's acknowledgements resolve."""
        for (topic, partition), builder in self._open.items():
            await self._ship(topic, partition, builder)
        self._open.clear()
        return self.acks

    async def _ship(self, topic: str, partition: int, builder: BatchBuilder) -> None:
        builder.close()  # nothing from producer.send() joins it: the batch is exactly ours
        self.acks.append(await self._producer.send_batch(builder, topic, partition=partition))


class InOrderBatches:
    """Completes a stage's batches in the order taken, one behind the batch being processed.

    The commit order (docs/exactly-once.md) is kept per batch: its outputs acknowledged by
    Kafka, then its states written to the table (so its changelog), then its offsets
    released for faust to commit. Only the waiting moves: batch N waits for its
    acknowledgements while batch N+1 is already being processed, instead of the stage
    sitting idle for a broker round trip per batch. Batch N+1 reads N's states from the
    caches (StateCache keeps snapshots until written), and is completed only after N.

    faust acknowledges a batch of take_events in a `finally` clause: also when the agent is
    stopped in the middle of it (SIGTERM cancels the agent's task), and it commits those
    offsets on its way out; a batch whose effects were not sent, or whose states were not
    written, was lost that way on a graceful stop (issue 19, item 10). So each message gets
    one more reference when its batch is taken, released only when the batch is complete;
    an interrupted or failed batch stays unacknowledged and is read again after the restart
    (at-least-once; effects are idempotent). A completion that failed (Kafka refused an
    output) raises in the agent when the next batch is done.

    A stage also gets each partition's messages without a hole (`hold`): faust can lose a
    message between its fetcher and the stream right after an assignment (docs/exactly-once.md,
    "A message faust did not deliver"), and a stage that applied the later ones would drop the
    missing one as a duplicate once read again (services/grouping/stages.py). A message past
    a hole is not processed and never counts as acknowledged; the partition is sought back to
    the missing offset and read again from there.
    """

    def __init__(self, name: str, app: faust.App) -> None:
        self.name = name
        self._app = app
        self._last: asyncio.Future | None = None
        # Per partition: (consumer generation, next offset expected) of the messages taken.
        self._next: dict[TP, tuple[int | None, int]] = {}
        self._missing: dict[TP, int] = {}  # partitions sought back to a hole, not yet read again
        self.rewinds = 0

    async def hold(self, events: Sequence[EventT]) -> list[EventT]:
        """Take a batch: returns the events to process, each kept unacknowledged until
        `complete` has done its work; call it first. An event past a hole in its partition's
        offsets is left out, and the partition is read again from the missing offset."""
        taken, holes = [], {}
        consumer = self._app.consumer
        for event in events:
            message = event.message
            expected = self._next.get(message.tp)
            if (expected is not None and expected[0] == message.generation_id
                    and message.offset > expected[1]):
                holes.setdefault(message.tp, (expected[1], message.offset))
                with ack_lock:  # never acknowledged: faust neither commits it nor waits for it
                    message.acked = True
                    consumer._unacked_messages.discard(message)
                continue
            # In order, the first of an assignment, or read again after a seek back.
            self._next[message.tp] = (message.generation_id, message.offset + 1)
            self._missing.pop(message.tp, None)
            message.incref()
            taken.append(event)
        for tp, (missing, got) in holes.items():
            where = {"stage": self.name, "topic": tp.topic, "partition": tp.partition, "missing": missing, "got": got}
            if self._missing.get(tp) == missing:
                # Messages fetched before the seek are still being delivered; or the seek was
                # undone by a fetch in flight: seek again until the missing one comes.
                log.warning("still past a message not delivered; seeking back again", extra=where)
            else:
                self.rewinds += 1
                log.error("a message was not delivered; reading its partition again from it", extra=where)
            self._missing[tp] = missing
            # On the consumer's thread, as the fetcher runs there; resets faust's read offset so
            # that its fetch loop does not drop the messages read again (faust's Consumer.seek
            # calls aiokafka from this thread and races the fetcher).
            try:
                await consumer.seek_wait({tp: missing})
            except (KafkaError, TimeoutError) as exc:
                # Moved away in a rebalance: its next owner reads from the committed offset,
                # which never passes the missing message (_new_offset_after_the_head).
                log.warning("seek back not done", extra={"stage": self.name, "error": repr(exc)})
        return taken

    async def complete(self, events: Sequence[EventT], acks: Sequence[Awaitable],
                       writes: Sequence[Callable[[], object]]) -> None:
        """Schedule the completion of a processed batch, after the previous batch's."""
        previous, self._last = self._last, None
        if previous is not None:
            await previous  # re-raises a failed completion; keeps one batch in flight at most
        self._last = asyncio.ensure_future(self._complete(list(events), list(acks), list(writes)))
        self._last.add_done_callback(self._report)

    async def drain(self) -> None:
        """Wait for the batch in flight to complete (tests, a stop)."""
        if self._last is not None:
            await self._last

    @staticmethod
    async def _complete(events: list[EventT], acks: list[Awaitable], writes: list[Callable[[], object]]) -> None:
        await asyncio.gather(*acks)
        for write in writes:
            write()
        for event in events:
            # The last reference: faust marks the offset committable when the count reaches 0,
            # whether its own acknowledgement came first or comes after this.
            event.ack()

    def _report(self, done: asyncio.Future) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("batch not completed; its messages stay unacknowledged", exc_info=done.exception(),
                      extra={"stage": self.name})


S = TypeVar("S", bound=BaseModel)


class StateCache(Generic[S]):
    """Decoded states in front of a changelog-backed table, written back once per batch.

    Decoding and encoding a key's whole state on every message cost the stream services most
    of their CPU. Here a state is decoded once (on first use after a start or a rebalance),
    kept decoded while its key is busy, and encoded to the table once per batch however many
    of the batch's messages touched it. The table, and so its changelog, stays the truth:
    `flush` before the batch is acknowledged, `drop` when partitions move.

    `put` takes the event that changed the state: a faust table writes a key to the changelog
    partition (and RocksDB partition) of the current event, and at flush time that must be
    the key's own event, not whichever the batch ended with.
    """

    def __init__(self, table: MutableMapping[bytes, bytes], codec: Codec[S], max_entries: int = 50_000) -> None:
        self.table = table
        self.codec = codec
        self.max_entries = max_entries
        self._states: OrderedDict[bytes, S] = OrderedDict()
        self._dirty: dict[bytes, EventT | None] = {}
        # Encoded by `snapshot`, not yet written by `write`: newer than the table.
        self._pending: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> S | None:
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
            return state
        raw = self._pending.get(key)
        if raw is None:
            raw = self.table.get(key)
        if raw is None:
            return None
        state = self.codec.decode(raw)
        self._remember(key, state)
        return state

    def put(self, key: bytes, state: S, event: EventT | None = None) -> None:
        self._dirty[key] = event
        self._remember(key, state)

    def discard(self, key: bytes) -> None:
        """Forget a key's decoded state, unwritten changes included: the next get reads the table."""
        self._dirty.pop(key, None)
        self._states.pop(key, None)
        # A snapshot not yet written stays: it is what the table will hold.

    def flush(self) -> int:
        """Encode every state changed since the last flush into the table; returns how many."""
        return self.write(self.snapshot())

    def snapshot(self) -> list[tuple[bytes, EventT | None, bytes]]:
        """Encode every state changed since the last snapshot, for `write` to put in the table
        later: (key, the event it is written under, bytes). Until then `get` reads them here
        rather than the table, also after an eviction or a `discard`."""
        entries = [(key, event, encode(self._states[key])) for key, event in self._dirty.items()]
        self._dirty.clear()
        for key, _, raw in entries:
            self._pending[key] = raw
        return entries

    def write(self, entries: list[tuple[bytes, EventT | None, bytes]]) -> int:
        """Write a snapshot to the table (so to its changelog); returns how many entries."""
        for key, event, raw in entries:
            with current_event(event):
                self.table[key] = raw
            if self._pending.get(key) is raw:  # a later snapshot of the key is still to come
                del self._pending[key]
        return len(entries)

    def drop(self) -> None:
        """Forget the decoded states (partitions moved: the table is read again on next use).

        faust revokes partitions only after every message taken was acknowledged, so every
        snapshot was written by then."""
        self.flush()
        self._states.clear()
        self._pending.clear()

    def _remember(self, key: bytes, state: S) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        # Evict the least recently used clean states; a dirty one waits for the flush.
        while len(self._states) > self.max_entries:
            oldest = next((k for k in self._states if k not in self._dirty), None)
            if oldest is None:
                break
            del self._states[oldest]


@contextmanager
def current_event(event: EventT | None) -> Iterator[None]:
    """Makes `event` faust's current event, which its tables read to pick a key's partition.

    faust sets it only in the task iterating the stream; an agent using take_events runs its
    body in another task, where it is unset.
    """
    if event is None:
        yield
        return
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)
