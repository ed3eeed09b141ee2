"""Composition root of the scoring worker: faust tables keyed by opportunity, agents that only
move data between Kafka and the pure domain (services.scoring.domain).

    python -m services.scoring            (env: KAFKA_*, BG_TOPIC_NAMESPACE, BG_SCORING_CONFIG)
"""

from __future__ import annotations

import logging
from datetime import datetime

import faust
from faust.types import TP, EventT

from services.scoring.config import load_config
from services.scoring.domain.signals import Step, advance, next_due, step
from services.scoring.domain.state import OpportunityState, PartitionClock
from services.scoring.timers import TimerIndex
from shared import topics
from shared.codec import DecodeError, encode, opportunity_events
from shared.schemas.opportunity import AccountTouch
from shared.streaming import DeadLetterSink, make_app, raw_topic

log = logging.getLogger(__name__)

SERVICE = "scoring"

config = load_config()
app = make_app(SERVICE)
source = raw_topic(app, topics.OPPORTUNITY_EVENTS)
scores_topic = raw_topic(app, topics.SCORES)
signals_topic = raw_topic(app, topics.SIGNALS)
dead_letters = DeadLetterSink(app, SERVICE, topics.SCORING_DLQ)

# Both tables are written while handling a message of input partition P, so faust writes
# their changelog to partition P and restores each entry with the partition it belongs to.
_raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
opportunities = app.Table("scoring-opportunities", schema=_raw)
# Keyed by input partition: the watermark is per partition, so a replay (same keys, same
# partitions, same order within each) reaches the same watermark at the same message.
clocks = app.Table("scoring-clocks", schema=_raw)
timers = TimerIndex()


def _load(key: str) -> OpportunityState | None:
    raw = opportunities.get(key.encode())
    return OpportunityState.model_validate_json(raw) if raw is not None else None


def _save(state: OpportunityState) -> None:
    opportunities[state.opportunity_id.encode()] = state.model_dump_json().encode()
    timers.schedule(state.partition, state.opportunity_id, next_due(state, config))


def _index(partition: int) -> None:
    if timers.knows(partition):
        return
    due = []
    for raw in opportunities.values():
        state = OpportunityState.model_validate_json(raw)
        if state.partition == partition:
            due.append((state.opportunity_id, next_due(state, config)))
    timers.rebuild(partition, due)


def _watermark(partition: int, occurred_at: datetime) -> datetime:
    key = f"p{partition}".encode()
    raw = clocks.get(key)
    clock = PartitionClock.model_validate_json(raw) if raw is not None else PartitionClock()
    clock, watermark = clock.observe(occurred_at, config.timers.allowed_lateness)
    clocks[key] = clock.model_dump_json().encode()
    return watermark


async def _emit(result: Step) -> None:
    for score in result.scores:
        await scores_topic.send(key=score.key().encode(), value=encode(score))
    for signal in result.signals:
        log.info("signal", extra={"signal_id": signal.signal_id, "occurred_at": signal.occurred_at.isoformat()})
        await signals_topic.send(key=signal.key().encode(), value=encode(signal))


async def handle(event: EventT) -> None:
    message = opportunity_events.decode(event.value)
    partition = event.message.partition
    _index(partition)
    watermark = _watermark(partition, message.occurred_at)
    if not isinstance(message, AccountTouch) and message.opportunity_id is not None:
        result = step(_load(message.opportunity_id), message, watermark, partition, config)
        if result.changed:
            _save(result.state)
        await _emit(result)
    # Any event on the partition moves its watermark, and with it the other opportunities' timers.
    for key in timers.pop_due(partition, watermark):
        state = _load(key)
        if state is None:
            continue
        result = advance(state, watermark, message.event_id, config)
        _save(result.state)
        await _emit(result)


@app.agent(source, concurrency=1)
async def score_opportunities(stream):
    async for event in stream.events():
        try:
            await handle(event)
        except DecodeError as exc:
            await dead_letters.send(event, exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - faust would ack it silently; keep it instead
            await dead_letters.crashed(event, exc)


@app.on_partitions_revoked.connect
async def _forget_revoked(sender, revoked: set[TP], **kwargs) -> None:
    timers.forget(tp.partition for tp in revoked if tp.topic == source.get_topic_name())


@app.on_partitions_assigned.connect
async def _forget_assigned(sender, assigned: set[TP], **kwargs) -> None:
    # Another worker may have changed these opportunities while this one did not own them.
    timers.forget(tp.partition for tp in assigned if tp.topic == source.get_topic_name())
