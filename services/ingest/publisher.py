"""Writes canonical events and dead letters to Kafka; returns only after the broker acknowledged.

The idempotent producer cannot heal a gap in its own sequence numbers: aiokafka numbers a batch
when it leaves the accumulator, and a numbered batch that then fails without reaching the log
(it expired while the partition had no leader during a broker restart, or its request failed)
leaves every later batch of that partition refused with OutOfOrderSequenceNumber, for good
(docs/exactly-once.md, "A broker restart"). So any failed or overdue write retires the producer
and a new one (a new producer id, sequences from 0) takes over; until it is up, publish()
reports every message as not written and ingest answers 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest import limits
from shared import topics
from shared.codec import encode
from shared.producers import close_retired
from shared.schemas.deadletter import DeadLetter
from shared.schemas.touch import IdentityEvent, TouchEvent
from shared.settings import KafkaSettings

log = logging.getLogger("ingest.publisher")

# How long a request waits for Kafka's acknowledgements before it answers 503: below the
# platforms' own webhook timeouts (10 s and more), above a healthy acks=all round trip.
SEND_TIMEOUT_SECONDS = 8.0
# Between attempts to start a new producer while the broker does not answer.
RESTART_BACKOFF_SECONDS = 1.0


class ProducerUnavailable(KafkaError):
    """No producer can write now: the last one failed and its successor is not up yet."""


class Overdue(KafkaError):
    """Kafka did not acknowledge in time; the write may still land (the outcome is settled later)."""

    def __init__(self, future: asyncio.Future) -> None:
        super().__init__("Kafka did not acknowledge in time")
        self.future = future

    def settle(self, callback: Callable[[bool], None]) -> None:
        """callback(written) once the write's fate is known: True when the broker acknowledged it,
        False when it failed. Never called when the retired producer dropped the write unanswered."""
        def done(f: asyncio.Future) -> None:
            if not f.cancelled():
                callback(f.exception() is None)
        self.future.add_done_callback(done)


def _outcome(sent: asyncio.Future) -> Exception | None:
    if not sent.done():
        return Overdue(sent)
    if sent.cancelled():
        return KafkaError("the write was cancelled")
    return sent.exception()


class Publisher:
    def __init__(self, settings: KafkaSettings, send_timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.send_timeout = send_timeout
        self.producer: AIOKafkaProducer | None = None
        self._replacing: asyncio.Task | None = None
        self._retired: set[asyncio.Task] = set()

    def _new_producer(self) -> AIOKafkaProducer:
        # acks=all with the idempotent producer: a retried send is written once per partition.
        # Created here because aiokafka binds to the running event loop.
        return AIOKafkaProducer(
            **self.settings.aiokafka_kwargs(), acks="all", enable_idempotence=True,
            linger_ms=2, max_batch_size=256 * 1024, request_timeout_ms=15000,
            max_request_size=limits.MAX_MESSAGE_BYTES,
        )

    async def start(self) -> None:
        producer = self._new_producer()
        await producer.start()
        self.producer = producer

    async def stop(self) -> None:
        if self._replacing is not None:
            self._replacing.cancel()
        if self.producer is not None:
            await self.producer.stop()
        for task in list(self._retired):
            task.cancel()

    def _retire(self, failed: AIOKafkaProducer) -> None:
        """Take `failed` out of service (once) and start its successor in the background."""
        if self.producer is not failed:
            return
        self.producer = None
        log.warning("retiring the Kafka producer after a failed or overdue write; starting a new one")
        task = asyncio.create_task(self._close(failed))
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)
        self._replacing = asyncio.create_task(self._replace())

    async def _close(self, failed: AIOKafkaProducer) -> None:
        # Writes it still held stay unanswered: their claims end with the claim's TTL (dedupe.py).
        await close_retired(failed, self.send_timeout)

    async def _replace(self) -> None:
        while True:
            producer = self._new_producer()
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                log.warning(f"new Kafka producer did not start ({exc!r}); retrying")
                await producer.stop()
                await asyncio.sleep(RESTART_BACKOFF_SECONDS)
                continue
            self.producer = producer
            self._replacing = None
            log.info("new Kafka producer is up")
            return

    async def publish(self, events: list[TouchEvent | IdentityEvent],
                      dead: list[tuple[str, str, str, str | None]], service: str = "ingest") -> list[Exception | None]:
        """events to the person-events topic, dead = (reason, detail, payload, key) to the ingest DLQ.

        Returns, per message (the events, then the dead letters, in order), None once the broker
        acknowledged it, an Overdue when it did not within send_timeout seconds (its fate comes
        later, Overdue.settle), or the error that kept it from being written: a failure of one
        message never hides that others were written (the caller confirms those, so that a retry
        counts them as duplicates instead of writing them again).
        """
        person_topic, dlq_topic = topics.PERSON_EVENTS.name, topics.INGEST_DLQ.name
        now = datetime.now(UTC)
        messages = [(person_topic, e.key().encode(), encode(e)) for e in events] + [
            (dlq_topic, (key or "").encode(),
             encode(DeadLetter(service=service, reason=reason, detail=detail, failed_at=now, key=key, payload=payload)))
            for reason, detail, payload, key in dead]
        producer = self.producer
        if producer is None:
            return [ProducerUnavailable("a new Kafka producer is starting") for _ in messages]
        loop = asyncio.get_running_loop()
        sends: list[asyncio.Future] = []
        for topic, key, value in messages:
            try:
                # send() waits only for room in the accumulator; bounded all the same.
                sends.append(await asyncio.wait_for(producer.send(topic, key=key, value=value), self.send_timeout))
            except (KafkaError, OSError, TimeoutError) as exc:
                failed: asyncio.Future = loop.create_future()
                failed.set_exception(exc)
                sends.append(failed)
        if sends:
            await asyncio.wait(sends, timeout=self.send_timeout)
        outcomes = [_outcome(f) for f in sends]
        if any(o is not None for o in outcomes):
            self._retire(producer)
        return outcomes

    async def ready(self) -> bool:
        if self.producer is None:
            return False
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=3)
            return True
        except Exception:
            return False
