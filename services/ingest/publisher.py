"""Writes canonical events and dead letters to Kafka; returns only after the broker acknowledged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest import limits
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
            max_request_size=limits.MAX_MESSAGE_BYTES,
        )
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, events: list[TouchEvent | IdentityEvent],
                      dead: list[tuple[str, str, str, str | None]], service: str = "ingest") -> list[Exception | None]:
        """events to the person-events topic, dead = (reason, detail, payload, key) to the ingest DLQ.

        Returns, per message (the events, then the dead letters, in order), None once the broker
        acknowledged it or the error that kept it from being written: a failure of one message
        never hides that others were written (the caller confirms those, so that a retry counts
        them as duplicates instead of writing them again).
        """
        person_topic, dlq_topic = topics.PERSON_EVENTS.name, topics.INGEST_DLQ.name
        now = datetime.now(UTC)
        messages = [(person_topic, e.key().encode(), encode(e)) for e in events] + [
            (dlq_topic, (key or "").encode(),
             encode(DeadLetter(service=service, reason=reason, detail=detail, failed_at=now, key=key, payload=payload)))
            for reason, detail, payload, key in dead]
        sends: list[asyncio.Future] = []
        for topic, key, value in messages:
            try:
                sends.append(await self.producer.send(topic, key=key, value=value))
            except (KafkaError, OSError, TimeoutError) as exc:
                failed: asyncio.Future = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                sends.append(failed)
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        return [o if isinstance(o, Exception) else None for o in outcomes]

    async def ready(self) -> bool:
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3)
            return True
        except Exception:
            return False
