"""`python -m services.scoring.alerts`: consume bg.signal.v1 and deliver alerts.

Env: KAFKA_*, REDIS_URL, BG_TOPIC_NAMESPACE, BG_ALERTS_CONFIG (else the shipped
services/scoring/config/alerts.yaml, which reads BG_ALERTS_WEBHOOK_URL and BG_ALERTS_SECRET).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal as signals
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from redis.asyncio import Redis

from services.scoring.alerts.config import load_alerts_config
from services.scoring.alerts.dispatcher import Dispatcher, Source
from shared import topics
from shared.codec import DecodeError, encode, scoring_messages
from shared.logs import configure_logging
from shared.schemas.deadletter import DeadLetter
from shared.schemas.scoring import Signal
from shared.settings import RedisSettings, kafka_settings

log = logging.getLogger("services.scoring.alerts")


async def run(stop: asyncio.Event) -> None:
    config = load_alerts_config()
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    settings = kafka_settings()
    consumer = AIOKafkaConsumer(
        topics.SIGNALS.name, **settings.aiokafka_kwargs(), group_id=f"{namespace}bg-alerts",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    redis = Redis.from_url(RedisSettings().redis_url)
    await producer.start()
    await consumer.start()

    async def dead_letter(letter: DeadLetter) -> None:
        await producer.send_and_wait(topics.ALERTS_DLQ.name, key=(letter.key or "").encode(), value=encode(letter))

    async with httpx.AsyncClient() as http:
        dispatcher = Dispatcher(config, redis, http, dead_letter, namespace)

        async def handle(record: ConsumerRecord) -> None:
            source = Source(record.topic, record.partition, record.offset)
            try:
                message = scoring_messages.decode(record.value)
            except DecodeError as exc:
                await dead_letter(DeadLetter(
                    service="alerts", reason=exc.reason, detail=exc.detail, failed_at=datetime.now(UTC),
                    source_topic=record.topic, source_partition=record.partition,
                    source_offset=record.offset, payload=record.value.decode("utf-8", errors="replace")))
                return
            if isinstance(message, Signal):
                await dispatcher.dispatch(message, source)

        async def partition(tp: TopicPartition, records: list[ConsumerRecord]) -> None:
            # In order within a partition (one opportunity's alerts keep their order);
            # partitions proceed side by side, so a dead receiver delays only its own.
            for record in records:
                await handle(record)
                await consumer.commit({tp: record.offset + 1})

        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                await asyncio.gather(*(partition(tp, rs) for tp, rs in batches.items()))
        finally:
            await consumer.stop()
            await producer.stop()
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
