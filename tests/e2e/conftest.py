"""The whole pipeline, each service its own process, against the real Kafka, PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from shared.topics import ensure_topics
from tests.support.kafka import namespace, new_namespace
from tests.support.processes import ServiceProcess, free_port

TOKEN = {"Authorization": "Bearer dev-read-token"}


@dataclass
class Pipeline:
    ingest_url: str
    api_url: str
    db_schema: str
    services: dict[str, ServiceProcess]

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers=TOKEN, timeout=15)


@pytest.fixture(scope="module")
async def topic_namespace(servers) -> AsyncIterator[str]:
    """Each e2e module's own namespace: clock ticks other tests' grouping wrote into the
    session's topics (their clock at today) would age this module's October stories."""
    name = new_namespace("e")
    with namespace(name):
        await ensure_topics(wait_seconds=30)
        yield name


@pytest.fixture(scope="module")
def pipeline(topic_namespace: str) -> Iterator[Pipeline]:
    ingest_port, api_port = free_port(), free_port()
    schema = f"e2e_{uuid.uuid4().hex[:8]}"
    # The DOMAIN.md stories are dated October 2026 and are read as of their own time: grouping's
    # idle clock (docs/time.md) is held for the module, or after 30 quiet seconds it would age
    # every story to today (stalled, decayed), which the live-time tests check elsewhere.
    env = {"BG_INGEST_PORT": str(ingest_port), "BG_API_PORT": str(api_port), "PROJECTION_DB_SCHEMA": schema,
           "LOG_LEVEL": "info", "BG_CLOCK_IDLE_SECONDS": "3600", "BG_TOPIC_NAMESPACE": topic_namespace}
    services = {
        "ingest": ServiceProcess("e2e-ingest", ["-m", "services.ingest"], env,
                                 health_url=f"http://127.0.0.1:{ingest_port}/readyz"),
        "grouping": ServiceProcess("e2e-grouping", ["-m", "services.grouping"], env),
        "scoring": ServiceProcess("e2e-scoring", ["-m", "services.scoring"], env),
        "projection": ServiceProcess("e2e-projection", ["-m", "services.projection"], env,
                                     health_url=f"http://127.0.0.1:{api_port}/readyz"),
    }
    try:
        for service in services.values():
            service.start(timeout=90)
        yield Pipeline(f"http://127.0.0.1:{ingest_port}", f"http://127.0.0.1:{api_port}", schema, services)
    finally:
        for service in services.values():
            service.stop()
