"""Ingest with a Kafka broker of the module's own (tests/support/ownbroker.py) that the tests stop,
hang and restart, disturbing nobody else (issue 20). Each asserts what the platform is told and
what ends up on the topic: never a 202 without the write, never an event lost or written twice.

- Kafka unreachable (the broker killed): 503 with Retry-After; once it is back, the retry is
  written once.
- A write that times out after Redis claimed the ids (the broker hangs, SIGSTOP): 503; its claims
  stay while its fate is open, so a retry meanwhile is told the copy is in flight; after it
  lands, the retry is told it is a duplicate.
- Two copies racing: the second arrives while the first one's write is held; it is told to
  retry, the first is written, the retry is a duplicate.
- Redis lost between the claim and its confirmation (the write held, Redis cut through a proxy,
  the write let go): 202, since the events were written; the claims end with their TTL.
- Redis's connections dropped and Redis back at once: the next requests are served (the client
  reconnects and retries), not 503.
- A broker restart under load: ingest takes events again afterwards, none lost or doubled.
  Before the fix, batches that expired while the restarting broker led no partition had burnt
  their sequence numbers, and the idempotent producer's every later write was refused with
  OutOfOrderSequenceNumber: ingest answered 503 for good (docs/exactly-once.md, "A broker
  restart").
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from redis.asyncio import Redis

from services.grouping.domain.accounts import person_id
from services.ingest.dedupe import PENDING
from shared import topics
from shared.codec import person_events
from shared.privacy.seal import Identifier
from shared.privacy.settings import vault_in
from tests.support.kafka import namespace, read_to_end, wait_for
from tests.support.ownbroker import OwnBroker
from tests.support.platform import (
    API,
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

LOAD_BATCH = 10  # events per post of the restart test's load


@pytest.fixture(scope="module")
def own_broker(topic_namespace: str) -> Iterator[OwnBroker]:
    broker = OwnBroker(topic_namespace)
    try:
        broker.start()  # with the namespace's topics
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="module")
def own_ingest(own_broker: OwnBroker, servers) -> Iterator[tuple[str, TcpProxy]]:
    """Ingest writing to the own broker, and reaching Redis through a proxy a test can cut."""
    redis_at = urlsplit(servers.redis_url)
    with TcpProxy(redis_at.hostname, redis_at.port or 6379) as proxy:
        port = free_port()
        service = ServiceProcess("ingest-own-broker", ["-m", "services.ingest"], env={
            "BG_INGEST_PORT": str(port), "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap,
            "REDIS_URL": urlunsplit(redis_at._replace(netloc=f"{redis_at.hostname}:{proxy.port}"))},
            health_url=f"http://127.0.0.1:{port}/readyz")
        with service:
            yield f"http://127.0.0.1:{port}", proxy


@pytest.fixture
async def ready(own_broker: OwnBroker, own_ingest: tuple[str, TcpProxy], servers,
                topic_namespace: str) -> AsyncIterator[Ready]:
    """Each test starts with the broker up, Redis reachable and ingest ready, whatever the test
    before it did."""
    url, proxy = own_ingest
    proxy.restore()
    if not own_broker.alive():
        await asyncio.to_thread(own_broker.start)
    own_broker.resume()
    await wait_for(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, timeout=90)
    redis = Redis.from_url(servers.redis_url)
    try:
        yield Ready(url, own_broker, proxy, redis, topic_namespace)
    finally:
        proxy.restore()
        await redis.aclose()


@dataclass
class Ready:
    url: str
    broker: OwnBroker
    proxy: TcpProxy  # between ingest and Redis
    redis: Redis  # the claims, read directly
    namespace: str

    async def claims(self, body: list[dict]) -> list[bytes | None]:
        return [await self.redis.get(claim_key(self.namespace, e["event_id"])) for e in body]

    async def on_topic(self, tag: str) -> Counter:
        """How often each event id of this test is on the own broker's topic, read to its end."""
        found = await read_to_end(topics.PERSON_EVENTS.name, decode=person_events.decode,
                                  where=lambda e: e.event_id.startswith(tag), bootstrap=self.broker.bootstrap)
        return Counter(e.event_id for e in found)


async def test_kafka_unreachable_is_503_and_the_retry_once_it_is_back_is_written_once(ready: Ready):
    tag = f"down-{uuid.uuid4().hex[:8]}"
    first, second = batch(f"{tag}-a"), batch(f"{tag}-b")
    ready.broker.kill()
    async with httpx.AsyncClient() as client:
        # Whether the producer finds the broker gone at once (the claims are released) or only
        # when the write is overdue (the claims stay, since a write it still holds may land, and
        # end with their TTL): 503.
        assert_unavailable(await post(client, ready.url, first), "unavailable")
        assert await ready.claims(first) in ([PENDING] * BATCH, [None] * BATCH)
        # From then on, while no new producer can start: 503 at once, the claims released.
        assert_unavailable(await post(client, ready.url, second), "unavailable")
        assert await ready.claims(second) == [None] * BATCH
        answer = await client.get(f"{ready.url}/readyz", timeout=CLIENT_TIMEOUT)
        assert (answer.status_code, answer.json()["checks"]["kafka"]) == (503, False)
        await asyncio.to_thread(ready.broker.start)
        r, refusals = await retry_until_accepted(client, ready.url, second, allowed={"unavailable"}, timeout=90)
    assert (r.json()["accepted"], r.json()["duplicates"]) == (BATCH, 0), (r.text, refusals)
    on_topic = await ready.on_topic(tag)
    assert {i: n for i, n in on_topic.items() if i.startswith(f"{tag}-b")} == {e["event_id"]: 1 for e in second}
    # The first batch's write died with the broker and its producer: never on the topic, and
    # not lost either, since the platform was told 503 and retries once the claims end.
    assert {i: n for i, n in on_topic.items() if i.startswith(f"{tag}-a")} == {}


async def test_a_write_overdue_after_the_claim_is_503_and_lands_once(ready: Ready):
    tag = f"overdue-{uuid.uuid4().hex[:8]}"
    body = batch(tag)
    async with httpx.AsyncClient() as client:
        ready.broker.pause()
        try:
            assert_unavailable(await post(client, ready.url, body), "unavailable")
            # The write may still land: its claims stay, and a retry meanwhile is not written again.
            assert await ready.claims(body) == [PENDING] * BATCH
            assert_unavailable(await post(client, ready.url, body), "in_flight")
        finally:
            ready.broker.resume()
        r, refusals = await retry_until_accepted(client, ready.url, body, allowed={"in_flight", "unavailable"},
                                                 timeout=90)
    # Whether the held write landed (the retry is then told duplicates) or died with the
    # retired producer (the retry then writes it once the claims end): on the topic once.
    assert r.json()["accepted"] + r.json()["duplicates"] == BATCH, (r.text, refusals)
    assert await ready.on_topic(tag) == Counter({e["event_id"]: 1 for e in body})


async def test_two_copies_racing_one_is_written_the_other_told_to_retry(ready: Ready):
    tag = f"race-{uuid.uuid4().hex[:8]}"
    body = batch(tag)
    async with httpx.AsyncClient() as client:
        ready.broker.pause()  # holds the first copy's write
        try:
            first = asyncio.create_task(post(client, ready.url, body))
            await wait_for(is_claimed(ready, body), timeout=10, interval=0.05)
            assert_unavailable(await post(client, ready.url, body), "in_flight")
            assert not first.done()  # the second copy was answered while the first was in flight
        finally:
            ready.broker.resume()
        r = await first
        assert r.status_code == 202, r.text
        assert r.json().get("accepted") == BATCH, r.text
        again = await post(client, ready.url, body)
    assert (again.status_code, again.json()["accepted"], again.json()["duplicates"]) == (202, 0, BATCH), again.text
    assert await ready.on_topic(tag) == Counter({e["event_id"]: 1 for e in body})


async def test_redis_lost_after_the_claim_the_written_events_are_still_202_and_once(ready: Ready):
    tag = f"redislost-{uuid.uuid4().hex[:8]}"
    body = batch(tag)
    async with httpx.AsyncClient() as client:
        ready.broker.pause()  # holds the write after the claim
        try:
            first = asyncio.create_task(post(client, ready.url, body))
            await wait_for(is_claimed(ready, body), timeout=10, interval=0.05)
            await wait_for(is_pseudonymised(ready, body), timeout=10, interval=0.05)
            ready.proxy.cut()  # Redis gone before the claims can be confirmed
        finally:
            ready.broker.resume()
        r = await first
        ready.proxy.restore()
    # Kafka acknowledged the write: 202 (a 5xx would have the platform send it again), and the
    # unconfirmed claims end with their TTL.
    assert r.status_code == 202 and r.json()["accepted"] == BATCH, r.text
    assert await ready.claims(body) == [PENDING] * BATCH
    assert await ready.on_topic(tag) == Counter({e["event_id"]: 1 for e in body})


async def test_redis_connections_dropped_and_back_the_next_requests_are_served(ready: Ready):
    """Redis restarted (or a proxy between dropped every connection): each pooled connection is
    dead, and the first command on it fails. The client reconnects and retries
    (RedisSettings.client); before, the next requests were 503 "Connection closed by server"
    although Redis was back (a CI failure, the test after the Redis-lost one)."""
    tag = f"dropped-{uuid.uuid4().hex[:8]}"
    bodies = [batch(f"{tag}-{i}") for i in range(4)]
    async with httpx.AsyncClient() as client:
        # Concurrent requests: several connections in ingest's pool, all of which the cut kills.
        warm = await asyncio.gather(*(post(client, ready.url, batch(f"{tag}-warm{i}")) for i in range(4)))
        assert [r.status_code for r in warm] == [202] * 4
        ready.proxy.cut()
        ready.proxy.restore()
        served = await asyncio.gather(*(post(client, ready.url, body) for body in bodies))
    assert [(r.status_code, r.json().get("accepted")) for r in served] == [(202, BATCH)] * 4, [r.text for r in served]
    on_topic = await ready.on_topic(tag)
    assert {i: n for i, n in on_topic.items() if "warm" not in i} == {e["event_id"]: 1 for b in bodies for e in b}


def is_claimed(ready: Ready, body: list[dict]):
    async def claimed() -> bool:
        return await ready.claims(body) == [PENDING] * BATCH
    return claimed


def is_pseudonymised(ready: Ready, body: list[dict]):
    """Ingest has its people's pseudonyms from the vault: the last Redis call before the write
    (docs/privacy.md), so a Redis cut after this finds the write under way."""
    with namespace(ready.namespace):
        vault = vault_in(ready.redis)

    async def known() -> bool:
        found = [await vault.person(Identifier("email", person_id(e["person"]["email"]))) for e in body]
        return all(found)
    return known


class Platform:
    """Posts batches of new events, each retried until ingest answers 202, as the platforms do."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tag = uuid.uuid4().hex[:8]
        self.sent: list[str] = []
        self.retried: set[str] = set()  # events of a batch whose first answer was not a 202
        self.statuses: Counter = Counter()
        self.stop = threading.Event()
        self.failure: str | None = None

    def batch(self, n: int) -> list[dict]:
        return [{"event_id": f"{self.tag}-{n}-{i}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
                 "kind": "page_view", "person": {"email": f"p{i}@romashka{self.tag}.ru"}} for i in range(LOAD_BATCH)]

    def deliver(self, client: httpx.Client, n: int, deadline: float) -> None:
        body = self.batch(n)
        while time.monotonic() < deadline:
            try:
                r = client.post(f"{self.url}/v1/events", json=body, headers=API)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                self.retried.update(e["event_id"] for e in body)
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 202:
                assert r.json()["accepted"] + r.json()["duplicates"] == LOAD_BATCH, r.text
                self.sent += [e["event_id"] for e in body]
                return
            assert r.status_code == 503 and r.headers.get("retry-after"), r.text
            self.retried.update(e["event_id"] for e in body)
            time.sleep(0.2)  # sooner than Retry-After: the test is short
        raise AssertionError(f"batch {n} never accepted; answers so far: {dict(self.statuses)}")

    def run(self, deadline: float) -> None:
        try:
            # Ingest answers within its own bound (8 s), so a hang shows as a client timeout.
            with httpx.Client(timeout=20) as client:
                n = 0
                while not self.stop.is_set():
                    self.deliver(client, n, deadline)
                    n += 1
        except AssertionError as exc:
            self.failure = str(exc)


async def test_ingest_takes_events_again_after_a_broker_restart_with_none_lost_or_doubled(ready, own_broker):
    """None lost; none doubled that ingest acknowledged. A write whose acknowledgement the
    broker's death took away is answered 503 although it landed, and the platform's retry
    writes it again through a new producer (idempotence holds per producer only): such a
    double is allowed, and only for events the platform had to send again; grouping counts a
    touch written twice once (tests/component/grouping/test_ingest_field_cases.py,
    docs/exactly-once.md)."""
    port = free_port()
    ingest = ServiceProcess("ingest-broker-restart", ["-m", "services.ingest"],
                            env={"BG_INGEST_PORT": str(port), "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap},
                            health_url=f"http://127.0.0.1:{port}/readyz")
    with ingest:
        platform = Platform(f"http://127.0.0.1:{port}")
        poster = threading.Thread(target=platform.run, args=(time.monotonic() + 240,))
        poster.start()
        try:
            while len(platform.sent) < 5 * LOAD_BATCH and poster.is_alive():
                await asyncio.sleep(0.2)
            await asyncio.to_thread(own_broker.start)
            restarted = len(platform.sent)
            while len(platform.sent) < restarted + 5 * LOAD_BATCH and poster.is_alive():
                await asyncio.sleep(0.2)
        finally:
            platform.stop.set()
            await asyncio.to_thread(poster.join)
        assert platform.failure is None, platform.failure
        assert len(platform.sent) >= restarted + 5 * LOAD_BATCH  # new events after the restart landed

    on_topic = Counter(e.event_id for e in await read_to_end(
        topics.PERSON_EVENTS.name, decode=person_events.decode, where=lambda e: e.event_id.startswith(platform.tag),
        bootstrap=own_broker.bootstrap))
    lost, unexpected = set(platform.sent) - set(on_topic), set(on_topic) - set(platform.sent)
    assert (sorted(lost), sorted(unexpected)) == ([], [])
    assert {i for i, n in on_topic.items() if n > 1} <= platform.retried
