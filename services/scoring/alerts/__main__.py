"""`python -m services.scoring.alerts`: consume bg.signal.v1 and deliver alerts.

It also follows bg.crm-stage.v2 from its beginning (consumer group `bg-alerts-team`) for the
seller team of each opportunity (services/scoring/alerts/team.py), so that an opportunity's
alerts go to its team's webhooks (`routing.owners`); it reads that topic to its end before the
first alert, so that a restart never sends an alert to the default route for want of a team.

Env: KAFKA_*, REDIS_URL, BG_TOPIC_NAMESPACE, BG_ALERTS_CONFIG (else the shipped
services/scoring/config/alerts.yaml, which reads BG_ALERTS_WEBHOOK_URL and BG_ALERTS_SECRET),
BG_ALERTS_START (latest|earliest), BG_ALERTS_INCLUDE_BACKFILL, BG_WEB_BASE_URL.

A record it cannot use (it does not decode, or handling it raised) is dead-lettered to
bg.alerts.dlq.v1 with the reason, and the next one is handled: one poison record must never
stop every alert behind it. Redis or Kafka being away is not the record's fault: that error
ends the process, which restarts at the last committed offset.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal as signals
import traceback
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.scoring.alerts.config import load_alerts_config
from services.scoring.alerts.dispatcher import Dispatcher, Source
from shared import topics
from shared.codec import DecodeError, encode, qualification_events, scoring_messages
from shared.logs import configure_logging
from shared.schemas.crm import TeamAssigned
from shared.schemas.deadletter import DeadLetter
from shared.schemas.scoring import Signal
from shared.settings import RedisSettings, kafka_settings

log = logging.getLogger("services.scoring.alerts")

# Failures of the services the dispatcher needs, not of the record: never dead-letter on them.
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError)
# How long the first alert waits for bg.crm-stage.v2 to be read to its end.
TEAM_CATCH_UP_SECONDS = 30


class PinStart(ConsumerRebalanceListener):
    """Commits the starting position of every assigned partition the group never committed, so
    that `start: latest` means the first start's present: a dispatcher restarted before its
    first alert resumes there instead of skipping what was written while it was down."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        return None

    async def on_partitions_assigned(self, assigned) -> None:
        # The moment a (re)started dispatcher owns its partitions: bench/chaos.py measures failover by it.
        log.info("partitions assigned", extra={"partitions": sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)})
        fresh = {}
        for tp in assigned:
            if await self.consumer.committed(tp) is None:
                fresh[tp] = await self.consumer.position(tp)
        if fresh:
            await self.consumer.commit(fresh)
            log.info("alerts start", extra={"start": {f"{tp.topic}:{tp.partition}": o for tp, o in fresh.items()}})


async def run(stop: asyncio.Event) -> None:
    config = load_alerts_config()
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    settings = kafka_settings()
    consumer = AIOKafkaConsumer(
        **settings.aiokafka_kwargs(), group_id=f"{namespace}bg-alerts",
        enable_auto_commit=False, auto_offset_reset=config.start,
    )
    consumer.subscribe([topics.SIGNALS.name], listener=PinStart(consumer))
    team_consumer = AIOKafkaConsumer(
        **settings.aiokafka_kwargs(), group_id=f"{namespace}bg-alerts-team",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    team_consumer.subscribe([topics.QUALIFICATION.name])
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    redis = RedisSettings().client()
    await producer.start()
    await consumer.start()
    await team_consumer.start()

    async def dead_letter(letter: DeadLetter) -> None:
        await producer.send_and_wait(topics.ALERTS_DLQ.name, key=(letter.key or "").encode(), value=encode(letter))

    async with httpx.AsyncClient() as http:
        dispatcher = Dispatcher(config, redis, http, dead_letter, namespace)

        async def refuse(record: ConsumerRecord, reason: str, detail: str) -> None:
            log.warning("alerts: record dead-lettered", extra={"reason": reason, "detail": detail[:300],
                                                                "offset": record.offset})
            await dead_letter(DeadLetter(
                service="alerts", reason=reason, detail=detail[:4000], failed_at=datetime.now(UTC),
                source_topic=record.topic, source_partition=record.partition, source_offset=record.offset,
                key=(record.key or b"").decode("utf-8", errors="replace") or None,
                payload=(record.value or b"").decode("utf-8", errors="replace")))

        async def handle(record: ConsumerRecord) -> None:
            source = Source(record.topic, record.partition, record.offset)
            try:
                message = scoring_messages.decode(record.value or b"")
            except DecodeError as exc:
                await refuse(record, exc.reason, exc.detail)
                return
            if not isinstance(message, Signal):
                return
            try:
                await dispatcher.dispatch(message, source)
            except UNAVAILABLE:
                raise
            except Exception as exc:  # a bug meeting this record: keep it for a replay after the fix
                log.exception("alerts: handling a signal failed")
                await refuse(record, "processing_error",
                             "".join(traceback.format_exception_only(type(exc), exc)).strip())

        async def apply_team(record: ConsumerRecord) -> None:
            try:
                message = qualification_events.decode(record.value or b"")
            except DecodeError as exc:
                await refuse(record, exc.reason, exc.detail)
                return
            if isinstance(message, TeamAssigned):
                await dispatcher.teams.apply(message)

        async def follow_teams(caught_up: asyncio.Event) -> None:
            while not stop.is_set():
                batches = await team_consumer.getmany(timeout_ms=500, max_records=500)
                for tp, records in batches.items():
                    for record in records:
                        await apply_team(record)
                    await team_consumer.commit({tp: records[-1].offset + 1})
                assigned = team_consumer.assignment()
                if not caught_up.is_set() and assigned:
                    ends = await team_consumer.end_offsets(list(assigned))
                    if all([await team_consumer.position(tp) >= ends[tp] for tp in assigned]):
                        caught_up.set()

        async def partition(tp: TopicPartition, records: list[ConsumerRecord]) -> None:
            # In order within a partition (one opportunity's alerts keep their order);
            # partitions proceed side by side, so a dead receiver delays only its own.
            for record in records:
                await handle(record)
                await consumer.commit({tp: record.offset + 1})

        caught_up = asyncio.Event()
        teams = asyncio.create_task(follow_teams(caught_up))
        try:
            # Teams first; a rebalance that never assigns this instance a team partition (more
            # dispatchers than partitions) must not hold alerts back for good.
            try:
                await asyncio.wait_for(caught_up.wait(), timeout=TEAM_CATCH_UP_SECONDS)
            except TimeoutError:
                log.warning("alerts: seller teams not read to the end; alerts go out with the teams known")
            while not stop.is_set():
                if teams.done():
                    teams.result()  # Kafka or Redis away: end the process (see the module's docstring)
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                await asyncio.gather(*(partition(tp, rs) for tp, rs in batches.items()))
        finally:
            teams.cancel()
            await team_consumer.stop()
            await consumer.stop()
            # stop() flushes, which never ends while the broker is away: the process must exit
            # (a producer refused for good, docs/exactly-once.md) for its supervisor to restart it.
            await asyncio.wait_for(producer.stop(), timeout=15)
            await redis.aclose()


def main() -> None:
    configure_logging("alerts")

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(amain())


if __name__ == "__main__":
    main()
