"""The vault lives where BG_VAULT_REDIS_URL says (docs/privacy.md): ingest, as its own process,
keeps its dedupe claims in REDIS_URL and its people's keys and pseudonyms in a second, real
Redis server, so flushing the first (meant for dedupe) leaves every person's keys."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from services.grouping.domain.accounts import person_id
from shared.privacy.seal import Identifier
from shared.privacy.settings import vault_in
from shared.settings import RedisSettings
from tests.support.kafka import namespace
from tests.support.processes import ServiceProcess, free_port

API = {"X-API-Key": "dev-api-key"}


@pytest.fixture(scope="module")
def vault_redis_url() -> Iterator[str]:
    """A Redis server of this module's own (no persistence: it lives as long as the test)."""
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline and server.poll() is None, "redis-server did not start"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def ingest_with_own_vault(topic_namespace: str, vault_redis_url: str) -> Iterator[str]:
    port = free_port()
    service = ServiceProcess("ingest-vault", ["-m", "services.ingest"],
                             env={"BG_INGEST_PORT": str(port), "BG_VAULT_REDIS_URL": vault_redis_url},
                             health_url=f"http://127.0.0.1:{port}/readyz")
    with service:
        yield f"http://127.0.0.1:{port}"


async def test_the_vault_is_kept_in_its_own_redis_and_a_flush_of_ingests_leaves_it(
        ingest_with_own_vault: str, vault_redis_url: str, topic_namespace: str):
    tag = uuid.uuid4().hex[:8]
    email = f"Elena.Sokolova{tag}@romashka{tag}.ru"
    event = {"type": "touch", "event_id": f"vault-{tag}", "occurred_at": "2026-10-01T09:00:00Z", "source": "web",
             "kind": "page_view", "person": {"email": email, "name": "Елена Соколова"},
             "content": {"url": "https://vendor.example/solutions/hr"}}
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{ingest_with_own_vault}/v1/events", json={"events": [event]}, headers=API)
    assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
    elena = Identifier("email", person_id(email))
    dedupe, own = RedisSettings().client(), Redis.from_url(vault_redis_url)
    try:
        with namespace(topic_namespace):
            in_own, in_dedupe = vault_in(own), vault_in(dedupe)
        [known] = await in_own.person(elena)
        assert known.kind == "email" and known.pseudonym.endswith(f"@romashka{tag}.ru")
        assert await in_dedupe.person(elena) == []
        # The claims are in REDIS_URL; deleting all of ingest's keys (what a dedupe flush does)
        # leaves her key: the same event again (no claim stops it now) is the same person.
        claims = [k async for k in dedupe.scan_iter(match=f"bg:ingest:*{topic_namespace}*", count=1000)]
        assert claims
        await dedupe.delete(*claims)
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(f"{ingest_with_own_vault}/v1/events", json={"events": [event]}, headers=API)
        assert r.status_code == 202 and r.json()["accepted"] == 1, r.text
        assert await in_own.person(elena) == [known]
    finally:
        await dedupe.aclose()
        await own.aclose()
