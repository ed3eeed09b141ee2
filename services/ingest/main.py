"""Composition root of the ingest service: settings, clients, the app, the server."""

from __future__ import annotations

import os

import uvicorn
from redis.asyncio import Redis

from services.ingest.app import create_app
from services.ingest.dedupe import Deduper
from services.ingest.memory import Memory
from services.ingest.publisher import Publisher
from services.ingest.settings import IngestSettings
from shared.logs import configure_logging
from shared.settings import RedisSettings, kafka_settings


def build_app():
    settings = IngestSettings()
    redis = Redis.from_url(RedisSettings().redis_url)
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    deduper = Deduper(redis, settings.dedupe_ttl_seconds, prefix=f"bg:ingest:seen:{namespace}")
    memory = Memory(redis, settings.memory_ttl_seconds, prefix=f"bg:ingest:mem:{namespace}")
    return settings, create_app(settings, Publisher(kafka_settings()), deduper, redis, memory)


def main() -> None:
    configure_logging("ingest")
    settings, app = build_app()
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
