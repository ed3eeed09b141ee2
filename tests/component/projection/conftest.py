"""The projection as its own process against the real Kafka and PostgreSQL, each test module
with its own topic namespace and database schema."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.projection import db, schema
from services.projection.consumer import SOURCES
from shared import topics
from shared.settings import kafka_settings
from tests.support.kafka import namespace_with_topics, produce
from tests.support.processes import ROOT, ServiceProcess, free_port
from tests.unit.projection.stories import Log

READ = {"Authorization": "Bearer dev-read-token"}
CRM = {"Authorization": "Bearer dev-crm-token"}


@dataclass
class Env:
    namespace: str
    schema: str
    database_url: str

    def topic(self, topic: topics.Topic | str) -> str:
        return self.namespace + (topic.base_name if isinstance(topic, topics.Topic) else topic)

    @property
    def consumer(self) -> str:
        return f"{self.namespace}bg-projection"

    def process_env(self, **extra: str) -> dict[str, str]:
        return {"BG_TOPIC_NAMESPACE": self.namespace, "PROJECTION_DB_SCHEMA": self.schema,
                "DATABASE_URL": self.database_url, "LOG_LEVEL": "warning", **extra}

    def service(self, name: str, port: int, **extra: str) -> ServiceProcess:
        return ServiceProcess(name, ["-m", "services.projection"], env=self.process_env(BG_API_PORT=str(port), **extra),
                              health_url=f"http://127.0.0.1:{port}/readyz")

    def command(self, *args: str, schema_name: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.process_env()}
        if schema_name:
            env["PROJECTION_DB_SCHEMA"] = schema_name
        return subprocess.run([sys.executable, "-m", "services.projection", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    async def produce(self, log: Log, start: int = 0, order: tuple[topics.Topic, ...] = (
            topics.SCORES, topics.SIGNALS, topics.OPPORTUNITY_EVENTS, topics.CRM_STAGES)) -> int:
        """The log's messages from `start`, topic by topic in `order`: by default scores and signals
        before the opportunity events they refer to, the harder order for the projection."""
        encoded = log.encoded(start)
        for topic in order:
            if encoded.get(topic.base_name):
                await produce(self.topic(topic), encoded[topic.base_name])
        return sum(len(v) for v in encoded.values())


@pytest.fixture(scope="module")
async def env(servers) -> AsyncIterator[Env]:
    name = await namespace_with_topics("p")
    found = Env(name, f"proj_{uuid.uuid4().hex[:8]}", servers.database_url)
    yield found
    engine = db.create_engine(found.database_url, found.schema)
    await db.drop(engine, found.schema)
    await engine.dispose()


@pytest.fixture(scope="module")
async def engine(env: Env) -> AsyncIterator[AsyncEngine]:
    found = db.create_engine(env.database_url, env.schema, pool_size=2)
    yield found
    await found.dispose()


async def end_offsets(env: Env) -> dict[tuple[str, int], int]:
    """The end of every non-empty partition of the projection's source topics."""
    consumer = AIOKafkaConsumer(**kafka_settings().aiokafka_kwargs(), group_id=None)
    await consumer.start()
    try:
        n = kafka_settings().topic_partitions
        partitions = [TopicPartition(env.topic(t), p) for t in SOURCES for p in range(n)]
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): o for tp, o in ends.items() if o > 0}
    finally:
        await consumer.stop()


async def stored_offsets(engine: AsyncEngine, consumer: str) -> dict[tuple[str, int], int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT topic, partition, next_offset FROM consumer_offsets "
                                       "WHERE consumer = :c"), {"c": consumer})
        return {(t, p): o for t, p, o in rows}


async def wait_caught_up(env: Env, engine: AsyncEngine, service: ServiceProcess | None = None,
                         timeout: float = 60.0, settle: float = 2.0) -> None:
    """Until the offsets stored with the rows reach the end of every source partition, and the
    ends stay where they are for `settle` seconds: the projection writes on one of its own
    sources (the qualification rules' stage moves on bg.crm-stage.v2) after applying a batch, so
    a first "caught up" can come just before its own last write."""
    deadline = time.monotonic() + timeout
    caught_up: tuple[dict, float] | None = None  # the ends reached, and when
    while True:
        ends = await end_offsets(env)
        try:
            stored = await stored_offsets(engine, env.consumer)
        except Exception:  # the schema may not exist yet while the service migrates
            stored = {}
        if all(stored.get(tp, 0) >= end for tp, end in ends.items()):
            if caught_up is None or caught_up[0] != ends:
                caught_up = (ends, time.monotonic())
            elif time.monotonic() - caught_up[1] >= settle:
                return
        else:
            caught_up = None
        if time.monotonic() > deadline:
            log = f"\nservice log:\n{service.tail()}" if service else ""
            raise AssertionError(f"projection not caught up in {timeout}s: stored {stored}, ends {ends}{log}")
        await asyncio.sleep(0.2)


async def snapshot(engine: AsyncEngine, schema_name: str, skip_columns: tuple[str, ...] = (),
                   skip_tables: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """Every projected table of `schema_name`, rows sorted by primary key."""
    out = {}
    async with engine.connect() as conn:
        for table in schema.PROJECTED:
            if table.name in skip_tables:
                continue
            keys = ", ".join(c.name for c in table.primary_key.columns)
            rows = await conn.execute(text(f'SELECT * FROM "{schema_name}".{table.name} ORDER BY {keys}'))
            out[table.name] = [{k: v for k, v in row.items() if k not in skip_columns} for row in rows.mappings()]
    return out


def get(url: str, path: str, **params: Any) -> Any:
    response = httpx.get(f"{url}{path}", params=params, headers=READ, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def projection(env: Env) -> Iterator[str]:
    port = free_port()
    service = env.service(f"projection-{env.namespace.rstrip('.')}", port)
    with service:
        yield f"http://127.0.0.1:{port}"
