"""Ingest's promises under faults, through the running service, the real Kafka and the real Redis
(issue 20): 202 only after Kafka acknowledged the write, and dedupe that never loses an event
nor writes one twice. Each test asserts what the platform is told and what is on the topic.

The faults are real ones, on a namespace of the module's own so that no other test sees them:
- Kafka refusing: the person-events topic's `max.message.bytes` below an event's size; the
  broker answers MESSAGE_TOO_LARGE, which no retry heals.
- Redis unreachable: ingest reaches Redis through a proxy the test cuts (tests/support/tcpproxy.py).
The faults that need a broker to stop or hang (Kafka unreachable, a write that times out after
Redis claimed the ids, two copies racing while the first one's write is held) are in
test_broker_faults.py, with a broker of its own.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from redis.asyncio import Redis

from shared import topics
from shared.codec import person_events
from shared.settings import kafka_settings
from tests.support.kafka import namespace_with_topics, read_to_end
from tests.support.platform import (
    BATCH,
    CLIENT_TIMEOUT,
    assert_unavailable,
    batch,
    claim_key,
    post,
    retry_until_accepted,
)
from tests.support.processes import ServiceProcess, free_port
from tests.support.tcpproxy import TcpProxy


@dataclass
class Faulty:
    url: str
    namespace: str
    proxy: TcpProxy
    redis: Redis  # direct, not through the proxy: the test reads the claims

    @property
    def person_topic(self) -> str:
        return self.namespace + topics.PERSON_EVENTS.base_name

    def claim_key(self, event_id: str) -> str:
        return claim_key(self.namespace, event_id)

    async def set_topic_config(self, configs: dict[str, str]) -> None:
        """The person-events topic's overrides become exactly `configs` ({} removes them all)."""
        admin = AIOKafkaAdminClient(**kafka_settings().aiokafka_kwargs())
        await admin.start()
        try:
            [response] = await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, self.person_topic, configs=configs)])
            assert [code for code, *_ in response.resources] == [0], response
        finally:
            await admin.close()

    async def on_topic(self, tag: str) -> Counter:
        """How often each event id of this test is on the person-events topic, read to its end."""
        found = await read_to_end(self.person_topic, decode=person_events.decode,
                                  where=lambda e: e.event_id.startswith(tag))
        return Counter(e.event_id for e in found)


@pytest.fixture(scope="module")
async def faulty(servers) -> AsyncIterator[Faulty]:
    name = await namespace_with_topics("f")
    redis_at = urlsplit(servers.redis_url)
    with TcpProxy(redis_at.hostname, redis_at.port or 6379) as proxy:
        proxied = urlunsplit(redis_at._replace(netloc=f"{redis_at.hostname}:{proxy.port}"))
        port = free_port()
        service = ServiceProcess("ingest-faults", ["-m", "services.ingest"],
                                 env={"BG_INGEST_PORT": str(port), "BG_TOPIC_NAMESPACE": name, "REDIS_URL": proxied},
                                 health_url=f"http://127.0.0.1:{port}/readyz")
        redis = Redis.from_url(servers.redis_url)
        with service:
            here = Faulty(f"http://127.0.0.1:{port}", name, proxy, redis)
            try:
                yield here
            finally:
                proxy.restore()
                await here.set_topic_config({})
                await redis.aclose()


@pytest.fixture
async def clean(faulty: Faulty) -> AsyncIterator[Faulty]:
    """Each test starts and ends with a healthy topic and Redis reachable, whatever the order."""
    faulty.proxy.restore()
    await faulty.set_topic_config({})
    yield faulty
    faulty.proxy.restore()
    await faulty.set_topic_config({})


async def test_kafka_refusing_the_write_is_503_and_the_retry_is_written_once(clean: Faulty):
    tag = f"refused-{uuid.uuid4().hex[:8]}"
    body = batch(tag)
    await clean.set_topic_config({"max.message.bytes": "128"})  # an event is ~400 bytes
    async with httpx.AsyncClient() as client:
        assert_unavailable(await post(client, clean.url, body), "unavailable")
        assert await clean.on_topic(tag) == Counter()  # told 503, and nothing was written
        # The failed write released its claims (else they would hold off the retry as a copy
        # in flight until their TTL, 60 s, ran out).
        assert await clean.redis.exists(*(clean.claim_key(e["event_id"]) for e in body)) == 0
        await clean.set_topic_config({})
        # The retry is written now (a new producer may still be starting: 503 unavailable).
        r, refusals = await retry_until_accepted(client, clean.url, body, allowed={"unavailable"}, timeout=30)
    assert (r.json()["accepted"], r.json()["duplicates"]) == (BATCH, 0), (r.text, refusals)
    assert await clean.on_topic(tag) == Counter({e["event_id"]: 1 for e in body})


async def test_redis_unreachable_is_503_and_nothing_is_written(clean: Faulty):
    tag = f"noredis-{uuid.uuid4().hex[:8]}"
    body = batch(tag)
    clean.proxy.cut()
    async with httpx.AsyncClient() as client:
        assert_unavailable(await post(client, clean.url, body), "unavailable")
        ready = await client.get(f"{clean.url}/readyz", timeout=CLIENT_TIMEOUT)
        assert (ready.status_code, ready.json()["checks"]) == (503, {"kafka": True, "redis": False})
        # Without a claim a write could not be told from its retry: none was made.
        assert await clean.on_topic(tag) == Counter()
        clean.proxy.restore()
        r, refusals = await retry_until_accepted(client, clean.url, body, allowed={"unavailable"}, timeout=30)
    assert (r.json()["accepted"], r.json()["duplicates"]) == (BATCH, 0), (r.text, refusals)
    assert await clean.on_topic(tag) == Counter({e["event_id"]: 1 for e in body})
