"""Writes canonical events and dead letters to Kafka; returns only after the broker acknowledged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from shared import topics
from shared.codec import encode
from shared.schemas.deadletter import DeadLetter
from shared.schemas.touch import IdentityEvent, TouchEvent
from shared.settings import KafkaSettings


class Publisher:
    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # acks=all with the idempotent producer: a retried send is written once per partition.
        # Created here because aiokafka binds to the running event loop.
        self.producer = AIOKafkaProducer(
            **self.settings.aiokafka_kwargs(), acks="all", enable_idempotence=True,
            linger_ms=2, max_batch_size=256 * 1024, request_timeout_ms=15000,
        )
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, events: list[TouchEvent | IdentityEvent],
                      dead: list[tuple[str, str, str, str | None]], service: str = "ingest") -> None:
        """events to the person-events topic, dead = (reason, detail, payload, key) to the ingest DLQ."""
        person_topic, dlq_topic = topics.PERSON_EVENTS.name, topics.INGEST_DLQ.name
        sends = [await self.producer.send(person_topic, key=e.key().encode(), value=encode(e)) for e in events]
        now = datetime.now(UTC)
        for reason, detail, payload, key in dead:
            letter = DeadLetter(service=service, reason=reason, detail=detail, failed_at=now,
                                key=key, payload=payload)
            sends.append(await self.producer.send(dlq_topic, key=(key or "").encode(), value=encode(letter)))
        await asyncio.gather(*sends)

    async def ready(self) -> bool:
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3)
            return True
        except Exception:
            return False
