"""Ingest throughput against a bare aiokafka producer on the same broker, in the same run.

    .venv/bin/python -m bench.ingest_throughput [--events 20000] [--batch 500] [--concurrency 16]

Needs the local stack (bash deploy/stack.sh up). Starts its own ingest process in a fresh
topic namespace, then measures, one after the other:
  1. baseline: aiokafka producer, acks=all, idempotent, pre-encoded canonical events;
  2. ingest, batch requests of --batch events (POST /v1/events);
  3. ingest, single-event requests with --concurrency requests in flight.
Each figure is events acknowledged by Kafka per second of wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from bench.common import fresh_namespace, peak_rss_mib, run, save
from shared import topics
from shared.codec import encode
from shared.schemas.touch import TouchEvent
from shared.settings import kafka_settings
from tests.support.processes import ServiceProcess, free_port

console = Console()
HEADERS = {"X-API-Key": "dev-api-key"}


def events(n: int, run_id: str) -> list[dict]:
    return [{
        "event_id": f"bench-{run_id}-{i}", "occurred_at": "2026-10-01T10:00:00Z", "source": "web",
        "kind": "page_view", "platform": "bench",
        "person": {"email": f"p{i % 5000}@company{i % 700}.ru", "job_title": "IT-директор"},
        "content": {"url": f"https://vendor.example/solutions/hr/page-{i % 40}", "title": "HR-система"},
    } for i in range(n)]


async def baseline(payloads: list[dict]) -> float:
    models = [TouchEvent.model_validate(p) for p in payloads]
    encoded = [(m.key().encode(), encode(m)) for m in models]
    producer = AIOKafkaProducer(**kafka_settings().aiokafka_kwargs(), acks="all", enable_idempotence=True,
                                linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topics.PERSON_EVENTS.name, key=k, value=v) for k, v in encoded]
        await asyncio.gather(*futures)
        return len(encoded) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def ingest_batches(url: str, payloads: list[dict], batch: int, concurrency: int) -> float:
    """POST the payloads in chunks of `batch`, `concurrency` requests in flight.

    aiohttp, not httpx, drives the load: httpx's client was itself the bottleneck at 16
    requests in flight (about 200 requests/s, where wrk measured about 860 on the same service).
    """
    chunks = [orjson.dumps({"events": payloads[i:i + batch]}) for i in range(0, len(payloads), batch)]
    limit = asyncio.Semaphore(concurrency)
    headers = {**HEADERS, "content-type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, headers=headers, connector=connector) as client:
        async def post(body: bytes, size: int) -> None:
            async with limit, client.post("/v1/events", data=body) as r:
                answer = await r.json()
                assert r.status == 202 and answer["accepted"] == size, answer
        started = time.perf_counter()
        await asyncio.gather(*(post(c, min(batch, len(payloads) - i * batch)) for i, c in enumerate(chunks)))
        return len(payloads) / (time.perf_counter() - started)


async def main(n: int, batch: int, concurrency: int) -> None:
    namespace = await fresh_namespace("bench-ingest-")
    port = free_port()
    service = ServiceProcess("bench-ingest", ["-m", "services.ingest"],
                             env={"BG_INGEST_PORT": str(port), "LOG_LEVEL": "WARNING"},
                             health_url=f"http://127.0.0.1:{port}/readyz").start()
    url = f"http://127.0.0.1:{port}"
    try:
        console.print(f"namespace {namespace}: {n} events, batch {batch}, concurrency {concurrency}")
        # Warm-up: first connections and metadata, not counted.
        await ingest_batches(url, events(200, uuid.uuid4().hex[:6]), 100, 2)
        rows = [
            ("bare aiokafka producer (ceiling)", await baseline(events(n, uuid.uuid4().hex[:6]))),
            (f"ingest, batches of {batch}", await ingest_batches(url, events(n, uuid.uuid4().hex[:6]), batch, 4)),
            (f"ingest, single events ({concurrency} in flight)",
             await ingest_batches(url, events(n // 4, uuid.uuid4().hex[:6]), 1, concurrency)),
        ]
        rss = peak_rss_mib(service.proc.pid)
    finally:
        service.stop()
    ceiling = rows[0][1]
    table = Table(title="Ingest throughput (events acknowledged by Kafka per second)")
    for col in ("path", "events/s", "vs ceiling"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, rate in rows:
        table.add_row(name, f"{rate:,.0f}", f"{rate / ceiling:.1%}")
    console.print(table)
    console.print(f"ingest peak RSS: {rss:.0f} MiB")
    path = save("ingest_throughput", {"events": n, "batch": batch, "concurrency": concurrency,
                                      "rates": {name: round(rate) for name, rate in rows},
                                      "ingest_peak_rss_mib": round(rss)})
    console.print(f"saved {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    run(main(args.events, args.batch, args.concurrency))
