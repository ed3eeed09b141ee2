"""Composition root of a CRM connector: `python -m services.crm bitrix24|amocrm`.

One process per CRM: the webhook receiver (CRM_HOST:CRM_PORT) and four loops: pending webhooks,
reconciliation, the read API's change feed, and bg.signal.v1 for tasks. Each loop survives an
outage of the CRM or the read API by waiting and trying again (the work stays where it was).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.exceptions import RedisError

from services.crm.adapters.amocrm import AmoCrm
from services.crm.adapters.base import CrmClient
from services.crm.adapters.bitrix24 import Bitrix24
from services.crm.app import create_app
from services.crm.domain.inbound import load_stage_map
from services.crm.readapi import ReadApi
from services.crm.settings import AmoCrmSettings, Bitrix24Settings, ConnectorSettings
from services.crm.state import State
from services.crm.sync import RETRYABLE, Connector
from shared import http, topics
from shared.codec import DecodeError, scoring_messages
from shared.logs import configure_logging
from shared.privacy.person import named_members
from shared.privacy.settings import vault_for
from shared.privacy.vault import Vault
from shared.schemas.scoring import Signal
from shared.settings import DevelopmentSecretsError, RedisSettings, kafka_settings, require_production_secrets

log = logging.getLogger("crm")
OUTAGE_PAUSE_SECONDS = 5.0


def build_client(name: str, s: ConnectorSettings) -> tuple[CrmClient, str]:
    """(client, host for logs). Exits naming the missing settings."""
    if name == "bitrix24":
        b = Bitrix24Settings()
        if missing := b.missing():
            raise SystemExit(f"set {', '.join(missing)}")
        return (Bitrix24(b, s.attempts, s.retry_base_seconds, s.http_timeout_seconds),
                urlsplit(b.webhook_url.get_secret_value()).hostname or "?")
    a = AmoCrmSettings()
    if missing := a.missing():
        raise SystemExit(f"set {', '.join(missing)}")
    return AmoCrm(a, s.attempts, s.retry_base_seconds, s.http_timeout_seconds), urlsplit(a.base_url).hostname or "?"


async def _forever(name: str, step, pause: float, wake: asyncio.Event | None = None) -> None:
    """Run `step` again and again; after an outage wait OUTAGE_PAUSE_SECONDS; between idle
    steps wait `pause` (or until `wake`)."""
    while True:
        try:
            busy = await step()
        except RETRYABLE as exc:
            log.warning("outage, will retry", extra={"loop": name, "error": repr(exc)[:300]})
            await asyncio.sleep(OUTAGE_PAUSE_SECONDS)
            continue
        except Exception:
            log.exception("loop step failed", extra={"loop": name})
            await asyncio.sleep(OUTAGE_PAUSE_SECONDS)
            continue
        if busy:
            continue
        if wake is None:
            await asyncio.sleep(pause)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), pause)
            wake.clear()


async def _signals(connector: Connector, consumer: AIOKafkaConsumer, vault: Vault) -> None:
    """Tasks from bg.signal.v1; offsets committed after the batch's tasks exist. On an outage the
    batch is read again from the committed offsets."""
    while True:
        batches = await consumer.getmany(timeout_ms=1000, max_records=200)
        records = [r for rs in batches.values() for r in rs]
        if not records:
            continue
        try:
            for record in records:
                try:
                    message = scoring_messages.decode(record.value)
                except DecodeError as exc:
                    await connector.dead_letter("invalid_message", f"{exc.reason}: {exc.detail}",
                                                (record.key or b"").decode("utf-8", "replace"),
                                                record.value.decode("utf-8", "replace"))
                    continue
                if isinstance(message, Signal):
                    # Members' names are sealed on the log (docs/privacy.md): opened for the task.
                    message = await named_members(vault, message)
                    await connector.guarded(message.signal_id, connector.on_signal(message))
            await consumer.commit()
        except (*RETRYABLE, RedisError) as exc:
            log.warning("outage, signals read again", extra={"error": repr(exc)[:300]})
            await consumer.seek_to_committed()
            await asyncio.sleep(OUTAGE_PAUSE_SECONDS)


async def run(name: str) -> None:
    settings = ConnectorSettings()
    require_production_secrets(f"crm-{name}", settings.dev_secrets_in_use())
    client, host = build_client(name, settings)
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")
    redis = RedisSettings().client()
    state = State(redis, namespace, name)
    if isinstance(client, AmoCrm):
        if tokens := await state.tokens():
            client.use_tokens(*tokens)
        client.on_tokens = state.set_tokens
    kafka = kafka_settings()
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(topics.SIGNALS.name, **kafka.aiokafka_kwargs(), group_id=f"{namespace}bg-crm-{name}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    api = ReadApi(settings.read_api_url, settings.read_api_token.get_secret_value())
    await producer.start()
    await consumer.start()
    vault = vault_for()
    connector = Connector(client, api, state, producer, settings, load_stage_map(name, settings.stage_map), vault)
    wake = asyncio.Event()
    server = http.server(create_app(client, connector.receive, wake.set), settings.host, settings.port)
    log.info("connector started", extra={"crm": name, "crm_host": host, "create_deals_from": settings.create_deals_from,
                                         "webhooks": f"{settings.public_url}/webhooks/{name}"})
    loops = [
        asyncio.create_task(_forever("webhooks", connector.drain, 1.0, wake)),
        asyncio.create_task(_forever("reconcile", lambda: _idle(connector.reconcile()), settings.reconcile_seconds)),
        asyncio.create_task(_forever("feed", connector.follow_feed, settings.feed_poll_seconds)),
        asyncio.create_task(_signals(connector, consumer, vault)),
    ]
    try:
        await server.serve()  # handles SIGTERM/SIGINT; the loops stop with it
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        await api.close()
        await client.close()
        await redis.aclose()
        await vault.aclose()


async def _idle(step) -> bool:
    """A step whose work does not call for an immediate repeat (reconciliation)."""
    await step
    return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.crm")
    parser.add_argument("crm", choices=["bitrix24", "amocrm"])
    args = parser.parse_args(argv)
    configure_logging(f"crm-{args.crm}")
    # httpx logs every request's URL at INFO; Bitrix24's incoming-webhook URL holds its secret.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        asyncio.run(run(args.crm))
    except DevelopmentSecretsError as exc:
        sys.exit(f"refusing to start: {exc}")
