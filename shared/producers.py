"""Closing a Kafka producer that a failed or overdue write retired (docs/exactly-once.md, "A
broker restart": an idempotent producer whose numbered batch failed refuses every later batch
of that partition, so the services that write on a request start a new one instead)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError


async def close_retired(producer: AIOKafkaProducer, timeout: float) -> None:
    """Stop `producer` within `timeout` seconds, whatever the broker does.

    stop() flushes first, which never ends while the broker is away: it gets `timeout` seconds,
    then the sender and the connections are closed without the flush (aiokafka has no public
    call for that), so that the retired producer sends nothing more. Writes it still held stay
    unanswered; the caller has already told its client to retry them."""
    try:
        await asyncio.wait_for(producer.stop(), timeout=timeout)
    except (TimeoutError, KafkaError, OSError):
        await producer._sender.close()
        await producer.client.close()
