"""Composition root of the scoring worker: a faust table keyed by opportunity and an agent that
only moves data between Kafka and the processor (services.scoring.processor).

    python -m services.scoring            (env: KAFKA_*, BG_TOPIC_NAMESPACE, BG_SCORING_CONFIG)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from faust.streams import _current_event
from faust.types import TP, EventT

from services.scoring.config import load_config
from services.scoring.processor import Processor
from shared import topics
from shared.codec import DecodeError, encode, opportunity_log
from shared.schemas.scoring import Signal
from shared.streaming import DeadLetterSink, acknowledged_when_done, make_app, raw_topic

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
state = app.Table("scoring-state", key_type=bytes, value_type=bytes)
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


@app.agent(source, concurrency=1)
async def score_opportunities(stream):
    # The commit policy (docs/exactly-once.md): outputs acknowledged by Kafka, then the states
    # written, then the offsets committed; a batch interrupted by a stop is never acknowledged.
    async for events in stream.take_events(BATCH, WITHIN):
        async with acknowledged_when_done(events):
            await score_batch(events)


async def score_batch(events: list[EventT]) -> None:
    """Process, send and wait for Kafka's acknowledgements, then write the states."""
    last_of: dict[int, EventT] = {}
    sent = []
    for event in events:
        last_of[event.message.partition] = event
        try:
            message = opportunity_log.decode(event.value)
            outputs = processor.process(event.message.partition, message, record_time(event))
            for output in outputs:
                target = signals_topic if isinstance(output, Signal) else scores_topic
                sent.append(await target.send(key=output.key().encode(), value=encode(output)))
        except DecodeError as exc:
            await dead_letters.send(event, exc.reason, exc.detail)
        except Exception as exc:  # faust would ack it silently; keep it instead
            await dead_letters.crashed(event, exc)
    await asyncio.gather(*sent)
    await flush(last_of)


def record_time(event: EventT) -> datetime | None:
    """The record's timestamp: when its writer sent it, kept in the log (the log's wall clock)."""
    timestamp = event.message.timestamp
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


async def flush(last_of: dict[int, EventT]) -> None:
    """Write what the batch changed, each partition under its last event, before take_events
    acknowledges the batch: the table then holds what the committed offsets skip. A coroutine
    so that tests/component/scoring/crashing_worker.py can crash right after it."""
    for partition, event in last_of.items():
        with writing_as(event):
            processor.flush(partition)


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
