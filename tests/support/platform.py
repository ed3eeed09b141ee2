"""A marketing platform posting canonical events to the running ingest service, and retrying the
way platforms do, for the tests of ingest under faults."""

from __future__ import annotations

import asyncio
import time

import httpx

API = {"X-API-Key": "dev-api-key"}
BATCH = 3
# Longer than ingest's own bound on a write (publisher.SEND_TIMEOUT_SECONDS, 8 s).
CLIENT_TIMEOUT = 30


def batch(tag: str) -> list[dict]:
    """BATCH new canonical events whose ids start with `tag`."""
    return [{"event_id": f"{tag}-{i}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web", "kind": "page_view",
             "person": {"email": f"p{i}@romashka-{tag}.ru"}} for i in range(BATCH)]


async def post(client: httpx.AsyncClient, url: str, body: list[dict]) -> httpx.Response:
    return await client.post(f"{url}/v1/events", json=body, headers=API, timeout=CLIENT_TIMEOUT)


def assert_unavailable(r: httpx.Response, error: str) -> None:
    """A 503 with `error` (unavailable: Kafka or Redis failed; in_flight: a copy is being written)
    and a Retry-After, which the platforms follow."""
    assert (r.status_code, r.json().get("error")) == (503, error), r.text
    assert int(r.headers["retry-after"]) > 0, r.headers


async def retry_until_accepted(client: httpx.AsyncClient, url: str, body: list[dict], allowed: set[str],
                               timeout: float) -> tuple[httpx.Response, list[str]]:
    """Posts `body` again until 202; every other answer must be a 503 whose error is in
    `allowed`. Returns the 202 and the errors of the 503s before it."""
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        r = await post(client, url, body)
        if r.status_code == 202:
            return r, errors
        assert r.status_code == 503 and r.json().get("error") in allowed, (r.status_code, r.text, errors)
        errors.append(r.json()["error"])
        assert time.monotonic() < deadline, f"still refused after {timeout}s: {errors}"
        await asyncio.sleep(0.5)  # sooner than Retry-After: the test is short


def claim_key(namespace: str, event_id: str) -> str:
    """Ingest's dedupe key of an event id (services/ingest/main.py)."""
    return f"bg:ingest:seen:{namespace}{event_id}"
