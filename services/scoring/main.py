"""Composition root of the scoring worker: a faust table keyed by opportunity and an agent that
only moves data between Kafka and the processor (services.scoring.processor).

    python -m services.scoring            (env: KAFKA_*, BG_TOPIC_NAMESPACE, BG_SCORING_CONFIG)
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from faust.streams import _current_event
from faust.types import TP, EventT

from services.scoring.config import load_config
from services.scoring.processor import Processor
from shared import topics
from shared.codec import DecodeError, encode, opportunity_log
from shared.schemas.scoring import Signal
from shared.streaming import DeadLetterSink, InOrderBatches, Outbox, make_app, raw_topic
from shared.table_store import table_options

SERVICE = "scoring"
log = logging.getLogger("services.scoring")
# Messages per batch, and how long a batch waits to fill (seconds). A batch writes each
# opportunity it touched once; its messages are acknowledged after it (faust's take_events).
BATCH = 500
WITHIN = 0.05

config = load_config()
app = make_app(SERVICE)
source = raw_topic(app, topics.OPPORTUNITY_EVENTS)
scores_topic = raw_topic(app, topics.SCORES)
signals_topic = raw_topic(app, topics.SIGNALS)
dead_letters = DeadLetterSink(app, SERVICE, topics.SCORING_DLQ)

# Opportunities and partition clocks (services.scoring.processor). Written while handling a
# message of input partition P, so faust writes the changelog to partition P and restores
# each entry with the partition it belongs to; one table, so that a crash keeps a prefix of
# a message's writes. bytes types, not only a raw schema: faust picks the changelog's
# serializers from the types, and JSON could not restore the raw entries after a restart.
state = app.Table("scoring-state", key_type=bytes, value_type=bytes, options=table_options())
processor = Processor(config, state)


@contextmanager
def writing_as(event: EventT) -> Iterator[None]:
    """Make `event` faust's current event: a table write goes to the changelog partition of
    the current event, and inside take_events faust sets none for the loop body."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


batches = InOrderBatches("scoring", app)


@app.agent(source, concurrency=1)
async def score_opportunities(stream):
    # The commit policy (docs/exactly-once.md): outputs acknowledged by Kafka, then the states
    # written, then the offsets committed; a batch interrupted by a stop is never acknowledged.
    async for taken in stream.take_events(BATCH, WITHIN):
        await score_batch(await batches.hold(taken))


async def score_batch(events: list[EventT]) -> None:
    """Process the batch and send its outputs (one producer batch per partition); its states
    are written once Kafka acknowledged the outputs, then its offsets released
    (shared.streaming.InOrderBatches), before the next batch."""
    last_of: dict[int, EventT] = {}
    outbox = Outbox(app.producer._ensure_producer())
    letters = []
    for event in events:
        last_of[event.message.partition] = event
        try:
            message = opportunity_log.decode(event.value)
            outputs = processor.process(event.message.partition, message, record_time(event))
            for output in outputs:
                target = signals_topic if isinstance(output, Signal) else scores_topic
                await outbox.add(target.get_topic_name(), output.key().encode(), encode(output))
        except DecodeError as exc:
            letters.append(await dead_letters.send(event, exc.reason, exc.detail))
        except Exception as exc:  # faust would ack it silently; keep it instead
            letters.append(await dead_letters.crashed(event, exc))
    acks = [*await outbox.send(), *letters]
    await batches.complete(events, acks, [snapshot(last_of)])
    # Scoring completes each batch before taking the next (no overlap): measured at live pacing,
    # half the sustained rate, p99 396 and 762 ms without the overlap against 832 and 991 ms
    # (and 4.7 s once) with it (docs/benchmarks.md, live latency); scoring is not the throughput
    # bottleneck (0.5 CPU-ms per event against grouping's 1.25).
    await batches.drain()


def record_time(event: EventT) -> datetime | None:
    """The record's timestamp: when its writer sent it, kept in the log (the log's wall clock)."""
    timestamp = event.message.timestamp
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def snapshot(last_of: dict[int, EventT]) -> Callable[[], None]:
    """Encode what the batch changed now; the call returned writes it, each partition under its
    last event, once the batch's outputs are acknowledged and before its offsets are: the
    table then holds what the committed offsets skip."""
    writes = {partition: (event, processor.snapshot(partition)) for partition, event in last_of.items()}
    return lambda: write(writes)


def write(writes: dict[int, tuple[EventT, Callable[[], None]]]) -> None:
    """Write the batch's states to the table. A function of its own so that
    tests/component/scoring/crashing_worker.py can crash right before it."""
    for event, write_partition in writes.values():
        with writing_as(event):
            write_partition()


def _input_partitions(tps: set[TP]) -> list[int]:
    return [tp.partition for tp in tps if tp.topic == source.get_topic_name()]


@app.on_partitions_revoked.connect
async def _forget_revoked(sender, revoked: set[TP], **kwargs) -> None:
    # faust sends this after waiting for the in-flight batch to be acknowledged, so it was
    # flushed: nothing processed is lost with the decoded states.
    processor.forget(_input_partitions(revoked))


@app.on_partitions_assigned.connect
async def _forget_assigned(sender, assigned: set[TP], **kwargs) -> None:
    # Another worker may have changed these opportunities while this one did not own them,
    # and the partition's uncommitted tail comes again: the processor rebuilds its indexes
    # from the recovered table at the partition's next message, the first one redelivered.
    processor.forget(_input_partitions(assigned))
    # The moment a (re)started worker owns its partitions: bench/chaos.py measures failover by it.
    log.info("partitions assigned", extra={"partitions": sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned
                                                                 if not tp.topic.endswith("-changelog"))})
