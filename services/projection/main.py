"""Composition root of the projection: settings, engine, consumer, API and the commands.

    python -m services.projection [run]     migrate, then consume and serve the API (one process)
    python -m services.projection consume   migrate, then consume only
    python -m services.projection api       migrate, then serve the API only
    python -m services.projection migrate   upgrade the schema to the latest migration
    python -m services.projection openapi   print the OpenAPI spec of the read API (JSON)
    python -m services.projection rebuild [--reset] [--no-progress] [--publish-dead-letters]
                                            replay the topics into an empty schema, then exit

Environment: DATABASE_URL, PROJECTION_DB_SCHEMA (default "projection"), KAFKA_*,
BG_TOPIC_NAMESPACE, BG_API_PORT (8082), BG_API_TOKENS, BG_API_WRITE_TOKENS (see settings.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence

import uvicorn
from aiokafka import AIOKafkaProducer

from services.privacy.api import create_privacy_router
from services.privacy.requests import Privacy
from services.projection import db
from services.projection.api import create_app
from services.projection.consumer import DeadLetters, Health, Opener, Projector, rebuild, run_consumer
from services.projection.correction_api import CorrectionPublisher, sealing_notes
from services.projection.funnel import configured
from services.projection.qualifying import Qualifier
from services.projection.repository import Reader, UnitOfWork
from services.projection.settings import ProjectionSettings
from shared import http, topics
from shared.codec import encode
from shared.logs import configure_logging
from shared.privacy.person import named_members
from shared.privacy.settings import PrivacySettings, vault_for
from shared.runtime import tune_gc
from shared.schemas.crm import CriterionMarked, DealTermsSet, StageMoved, TeamAssigned
from shared.schemas.deadletter import DeadLetter
from shared.settings import (
    DatabaseSettings,
    DevelopmentSecretsError,
    KafkaSettings,
    RedisSettings,
    kafka_settings,
    require_production_secrets,
)

log = logging.getLogger("projection")

QualificationMessage = StageMoved | CriterionMarked | TeamAssigned | DealTermsSet


class QualificationPublisher:
    """Writes qualification messages to bg.crm-stage.v2 (acks=all): what people and CRMs report
    through the API, and the qualification rules' moves; the consumer applies them."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, event: QualificationMessage) -> None:
        await asyncio.wait_for(self._producer.send_and_wait(
            topics.QUALIFICATION.name, key=event.key().encode(), value=encode(event)), timeout=15)

    async def publish_many(self, events: Sequence[QualificationMessage]) -> None:
        name = topics.QUALIFICATION.name
        futures = [await self._producer.send(name, key=e.key().encode(), value=encode(e)) for e in events]
        await asyncio.wait_for(asyncio.gather(*futures), timeout=30)


class LoggedDeadLetters:
    """For a rebuild: the live consumer has already dead-lettered these messages once."""

    def __init__(self) -> None:
        self.count = 0

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        self.count += len(letters)


async def serve(settings: ProjectionSettings, database_url: str, kafka: KafkaSettings,
                consume: bool, api: bool) -> int:
    privacy = PrivacySettings()
    if api:
        require_production_secrets("projection API", settings.dev_tokens_in_use() + privacy.dev_secrets_in_use())
    engine = db.create_engine(database_url, settings.db_schema)
    redis = RedisSettings().client()
    vault = vault_for(privacy)
    await db.migrate(engine, settings.db_schema)
    health = Health() if consume else None
    stop = asyncio.Event()
    tasks: dict[str, asyncio.Task] = {}
    server: uvicorn.Server | None = None
    dead_letters = DeadLetters(kafka)
    publisher = QualificationPublisher(kafka)
    corrections = CorrectionPublisher(kafka)
    # Erasures go on bg.person-events.v1 (services/privacy/requests.py).
    person_log = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    funnel = configured()
    try:
        await publisher.start()
        await person_log.start()
        if consume:
            await dead_letters.start()
            uow = UnitOfWork(engine, Qualifier(funnel, publisher.publish_many))
            projector = Projector(uow, dead_letters, settings.group_id, health, opener=Opener(vault))
            tasks["consumer"] = asyncio.create_task(run_consumer(
                kafka, projector, settings.group_id, stop, settings.batch_max_records, settings.poll_timeout_ms))
        if api:
            app = create_app(settings, Reader(engine), publisher.publish, health, funnel=funnel,
                             publish_correction=sealing_notes(vault, corrections.publish),
                             open_names=lambda signal: named_members(vault, signal))
            app.include_router(create_privacy_router(Privacy(vault, engine, redis, person_log), settings))
            # Header and body deadlines, connection limit: shared/http.py.
            server = http.server(app, settings.host, settings.port)
            # uvicorn handles SIGTERM and SIGINT itself; when it stops, the consumer stops too.
            tasks["api"] = asyncio.create_task(server.serve())
        else:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            tasks["stop"] = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        if server is not None:
            server.should_exit = True
        await asyncio.wait(tasks.values(), timeout=30)
        failed = [(name, t.exception()) for name, t in tasks.items() if t.done() and t.exception()]
        for name, exc in failed:
            log.error(f"{name} failed", exc_info=exc)
        return 1 if failed else 0
    finally:
        for task in tasks.values():
            task.cancel()
        if consume:
            await dead_letters.stop()
        await corrections.stop()
        await publisher.stop()
        await person_log.stop()
        await redis.aclose()
        await vault.aclose()
        await engine.dispose()


def openapi_spec(settings: ProjectionSettings | None = None) -> dict:
    """The read API's spec, without connecting to anything (the engine connects lazily)."""
    settings = settings or ProjectionSettings()
    engine = db.create_engine(DatabaseSettings().database_url, settings.db_schema)

    async def _no_publisher(event: QualificationMessage) -> None:
        raise RuntimeError("the spec-only app does not publish")

    app = create_app(settings, Reader(engine), _no_publisher)
    app.include_router(create_privacy_router(None, settings))
    return app.openapi()


async def migrate_command(settings: ProjectionSettings, database_url: str) -> int:
    engine = db.create_engine(database_url, settings.db_schema)
    try:
        await db.migrate(engine, settings.db_schema)
    finally:
        await engine.dispose()
    print(f"schema {settings.db_schema!r} is at the latest migration")
    return 0


async def rebuild_command(settings: ProjectionSettings, database_url: str, kafka: KafkaSettings,
                          reset: bool, progress: bool, publish_dead_letters: bool) -> int:
    engine = db.create_engine(database_url, settings.db_schema)
    try:
        if not await db.is_empty(engine, settings.db_schema):
            if not reset:
                print(f"schema {settings.db_schema!r} is not empty: rebuild into an empty schema "
                      "(PROJECTION_DB_SCHEMA=...) or pass --reset to drop this one first", file=sys.stderr)
                return 2
            await db.drop(engine, settings.db_schema)
        await db.migrate(engine, settings.db_schema)
        sink = DeadLetters(kafka) if publish_dead_letters else LoggedDeadLetters()
        if isinstance(sink, DeadLetters):
            await sink.start()
        vault = vault_for()
        try:
            # The moves the rules made live are on the topic: replayed, not made again.
            uow = UnitOfWork(engine, Qualifier(configured(), publish=None))
            projector = Projector(uow, sink, settings.group_id, opener=Opener(vault))
            count = await rebuild(kafka, projector, settings.batch_max_records, progress)
        finally:
            if isinstance(sink, DeadLetters):
                await sink.stop()
            await vault.aclose()
        print(f"rebuilt schema {settings.db_schema!r} from {count} messages "
              f"({projector.health.dead_lettered} not applicable)")
        return 0
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.projection", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    for name in ("run", "consume", "api", "migrate", "openapi"):
        sub.add_parser(name)
    rb = sub.add_parser("rebuild", help="replay the topics into an empty schema")
    rb.add_argument("--reset", action="store_true", help="drop the schema first if it holds rows")
    rb.add_argument("--no-progress", action="store_true", help="no progress bar")
    rb.add_argument("--publish-dead-letters", action="store_true",
                    help="send unusable messages to the DLQ again (the live consumer already did)")
    args = parser.parse_args(argv)
    command = args.command or "run"

    if command == "openapi":
        print(json.dumps(openapi_spec(), ensure_ascii=False, indent=2))
        return 0
    configure_logging("projection")
    settings = ProjectionSettings()
    database_url = DatabaseSettings().database_url
    kafka = kafka_settings()
    if command == "migrate":
        coro = migrate_command(settings, database_url)
    elif command == "rebuild":
        coro = rebuild_command(settings, database_url, kafka, args.reset, not args.no_progress,
                               args.publish_dead_letters)
    else:
        coro = serve(settings, database_url, kafka, consume=command in ("run", "consume"),
                     api=command in ("run", "api"))
    tune_gc()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(coro)
    except DevelopmentSecretsError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    return 130
