"""A Kafka broker restart under load: ingest takes events again afterwards, none lost or doubled.

Before the fix, batches that expired while the restarting broker led no partition had burnt
their sequence numbers, and the idempotent producer's every later write was refused with
OutOfOrderSequenceNumber: ingest answered 503 for good (docs/exactly-once.md, "A broker
restart"). The test runs a broker of its own (deploy/stack.sh on free ports, its own
BG_STACK_DIR) so that restarting it disturbs nobody else.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from shared import topics
from shared.codec import person_events
from tests.support.processes import ROOT, ServiceProcess, free_port

API = {"X-API-Key": "dev-api-key"}
BATCH = 10


def _kafka_libs() -> dict[str, str]:
    """Share the running stack's broker jars when they are there: fetching them takes a minute."""
    for libs in (os.environ.get("BG_KAFKA_LIBS"),
                 str(Path(os.environ.get("BG_STACK_DIR", ROOT / ".stack")) / "kafka" / "libs")):
        if libs and any(Path(libs).glob(".complete-*")):
            return {"BG_KAFKA_LIBS": libs}
    return {}


class OwnBroker:
    def __init__(self, namespace: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="bg-broker-restart-")
        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        # Every port its own, so that `down` stops nothing but this stack.
        self.env = {**os.environ, **_kafka_libs(), "BG_STACK_DIR": self.dir, "BG_KAFKA_PORT": str(port),
                    "BG_KAFKA_CONTROLLER_PORT": str(free_port()), "BG_PG_PORT": str(free_port()),
                    "BG_REDIS_PORT": str(free_port()), "BG_KAFKA_HEAP": "384m",
                    "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "BG_TOPIC_NAMESPACE": namespace}

    def stack(self, *args: str) -> None:
        subprocess.run(["bash", str(ROOT / "deploy" / "stack.sh"), *args], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, timeout=300)

    def close(self) -> None:
        try:
            self.stack("down")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_broker(topic_namespace: str) -> Iterator[OwnBroker]:
    broker = OwnBroker(topic_namespace)
    try:
        broker.stack("restart", "kafka")  # starts it and creates the namespaced topics
        yield broker
    finally:
        broker.close()


class Platform:
    """Posts batches of new events, each retried until ingest answers 202, as the platforms do."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.tag = uuid.uuid4().hex[:8]
        self.sent: list[str] = []
        self.statuses: Counter = Counter()
        self.stop = threading.Event()
        self.failure: str | None = None

    def batch(self, n: int) -> list[dict]:
        return [{"event_id": f"{self.tag}-{n}-{i}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
                 "kind": "page_view", "person": {"email": f"p{i}@romashka{self.tag}.ru"}} for i in range(BATCH)]

    def deliver(self, client: httpx.Client, n: int, deadline: float) -> None:
        body = self.batch(n)
        while time.monotonic() < deadline:
            try:
                r = client.post(f"{self.url}/v1/events", json=body, headers=API)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 202:
                assert r.json()["accepted"] + r.json()["duplicates"] == BATCH, r.text
                self.sent += [e["event_id"] for e in body]
                return
            assert r.status_code == 503 and r.headers.get("retry-after"), r.text
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


async def read_person_events(bootstrap: str, tag: str) -> list[str]:
    """Every event id of this run on the person-events topic, each as often as it is there."""
    # No group: the consumer takes every partition itself, from the beginning.
    consumer = AIOKafkaConsumer(topics.PERSON_EVENTS.name, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        ids: list[str] = []
        ends: dict | None = None
        while ends is None or any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                ids += [e.event_id for e in map(person_events.decode, (r.value for r in records))
                        if e.event_id.startswith(tag)]
            if ends is None and consumer.assignment():
                ends = await consumer.end_offsets(list(consumer.assignment()))
        return ids
    finally:
        await consumer.stop()


async def test_ingest_takes_events_again_after_a_broker_restart_with_none_lost_or_doubled(own_broker):
    port = free_port()
    ingest = ServiceProcess("ingest-broker-restart", ["-m", "services.ingest"],
                            env={"BG_INGEST_PORT": str(port), "KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap},
                            health_url=f"http://127.0.0.1:{port}/readyz")
    with ingest:
        platform = Platform(f"http://127.0.0.1:{port}")
        poster = threading.Thread(target=platform.run, args=(time.monotonic() + 240,))
        poster.start()
        try:
            while len(platform.sent) < 5 * BATCH and poster.is_alive():
                await asyncio.sleep(0.2)
            await asyncio.to_thread(own_broker.stack, "restart", "kafka")
            restarted = len(platform.sent)
            while len(platform.sent) < restarted + 5 * BATCH and poster.is_alive():
                await asyncio.sleep(0.2)
        finally:
            platform.stop.set()
            await asyncio.to_thread(poster.join)
        assert platform.failure is None, platform.failure
        assert len(platform.sent) >= restarted + 5 * BATCH  # new events after the restart landed

    on_topic = Counter(await read_person_events(own_broker.bootstrap, platform.tag))
    lost, unexpected = set(platform.sent) - set(on_topic), set(on_topic) - set(platform.sent)
    assert (sorted(lost), sorted(unexpected)) == ([], [])
    assert [i for i, n in on_topic.items() if n > 1] == []
