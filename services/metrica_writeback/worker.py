"""The write-back worker: uploads offline conversions to Yandex Metrica for buying-group members.

Reads bg.person-events.v1 (which ClientIDs belong to whom, domain.links), bg.signal.v1
(`group_formed`, and every signal's members of an opportunity) and bg.crm-stage.v1 (won),
and uploads one conversion per member ClientID with POST
/management/v1/counter/{counterId}/offline_conversions/upload?client_id_type=CLIENT_ID (a
CSV file, Authorization: OAuth). So Yandex Direct can optimise for buying groups, not single
leads. A ClientID that becomes known after the goal was reached (a visitor named by a form a
week later, or a link read after the signal: the topics interleave) gets the goal's conversion
then. The links, the goals reached and the uploads done live in Redis; offsets are committed after a batch is
handled, and an upload is marked done only after Metrica answered, so a restart re-uploads
nothing it had confirmed and loses nothing it had not.

What it cannot use goes to bg.metrica-writeback.dlq.v1 with the reason, and it goes on: a
message that does not decode (`invalid_message`), an upload Metrica refused (4xx,
`upload_refused`, with Metrica's answer), or one still failing after the retries (5xx or
network, `upload_failed`).

    python -m services.metrica_writeback
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from datetime import UTC, datetime

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from services.metrica_writeback.domain import Conversion, Goals, Reached, csv_body, links, reached
from shared import topics
from shared.codec import DecodeError, crm_events, encode, person_log, qualification_events, scoring_messages
from shared.logs import configure_logging
from shared.privacy.settings import vault_for
from shared.privacy.vault import Vault
from shared.schemas.crm import StageChanged, StageMoved
from shared.schemas.deadletter import DeadLetter
from shared.schemas.privacy import PersonErased
from shared.schemas.scoring import Signal
from shared.settings import RedisSettings, kafka_settings

log = logging.getLogger("metrica_writeback")
SERVICE = "metrica-writeback"


class WritebackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METRICA_", extra="ignore")

    api_url: str = "https://api-metrika.yandex.net"
    token: str = ""  # OAuth token with metrika:write
    counter_id: int = 0
    goal_group_formed: str = "bg_group_formed"  # JavaScript-event goal ids created in the counter
    goal_opportunity_won: str = "bg_opportunity_won"
    upload_attempts: int = Field(4, ge=1)
    retry_base_seconds: float = Field(1.0, ge=0)


class UploadRefused(Exception):
    """Metrica refused the file (4xx): retrying the same file cannot help."""


class Uploader:
    def __init__(self, settings: WritebackSettings) -> None:
        self.s = settings
        self.http = httpx.AsyncClient(base_url=f"{settings.api_url}/management/v1/counter/{settings.counter_id}",
                                      headers={"Authorization": f"OAuth {settings.token}"}, timeout=60)

    async def upload(self, batch: list[Conversion]) -> dict:
        """-> Metrica's `uploading` ({id, line_quantity, status, ...}). Raises UploadRefused on 4xx,
        httpx.HTTPError after the last retry of a 5xx or network failure."""
        for attempt in range(self.s.upload_attempts):
            try:
                r = await self.http.post("/offline_conversions/upload", params={"client_id_type": "CLIENT_ID"},
                                         files={"file": ("conversions.csv", csv_body(batch), "text/csv")})
                if 400 <= r.status_code < 500:
                    raise UploadRefused(f"{r.status_code}: {r.text[:500]}")
                r.raise_for_status()
                return r.json()["uploading"]
            except httpx.HTTPError:
                if attempt + 1 == self.s.upload_attempts:
                    raise
                await asyncio.sleep(self.s.retry_base_seconds * 2 ** attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.http.aclose()


class Store:
    """The links and the uploads done, in Redis (prefix per topic namespace)."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.r = redis
        self.p = f"bg:metrica-wb:{namespace}"

    async def add_links(self, event) -> set[str]:
        """Store the event's links; returns the person ids whose ClientIDs may have grown."""
        keys = {"person_client": "pc", "phone_client": "tc", "person_phone": "pp"}
        touched: set[str] = set()
        for link in links(event):
            if await self.r.sadd(f"{self.p}:{keys[link.kind]}:{link.owner}", link.value) == 0:
                continue  # known already
            if link.kind == "person_phone":
                await self.r.sadd(f"{self.p}:tp:{link.value}", link.owner)  # phone -> its people
            if link.kind == "phone_client":
                touched |= {m.decode() for m in await self.r.smembers(f"{self.p}:tp:{link.owner}")}
            else:
                touched.add(link.owner)
        return touched

    async def add_members(self, opportunity_id: str, person_ids: list[str]) -> None:
        if person_ids:
            await self.r.sadd(f"{self.p}:om:{opportunity_id}", *person_ids)
            for pid in person_ids:
                await self.r.sadd(f"{self.p}:po:{pid}", opportunity_id)

    async def opportunities_of(self, pid: str) -> list[str]:
        return sorted(o.decode() for o in await self.r.smembers(f"{self.p}:po:{pid}"))

    async def remember(self, opportunity_id: str, goal: Reached) -> None:
        value = json.dumps({**dataclasses.asdict(goal), "at": goal.at.isoformat()})
        await self.r.hset(f"{self.p}:goals:{opportunity_id}", goal.fact_id, value)

    async def goals_of(self, opportunity_id: str) -> list[Reached]:
        stored = await self.r.hgetall(f"{self.p}:goals:{opportunity_id}")
        out = []
        for value in stored.values():
            data = json.loads(value)
            out.append(Reached(**{**data, "at": datetime.fromisoformat(data["at"])}))
        return sorted(out, key=lambda g: (g.at, g.fact_id))

    async def members(self, opportunity_id: str) -> list[str]:
        return sorted(m.decode() for m in await self.r.smembers(f"{self.p}:om:{opportunity_id}"))

    async def client_ids(self, pid: str) -> set[str]:
        phones = [p.decode() for p in await self.r.smembers(f"{self.p}:pp:{pid}")]
        keys = [f"{self.p}:pc:{pid}"] + [f"{self.p}:tc:{t}" for t in phones]
        return {c.decode() for c in await self.r.sunion(keys)}

    async def not_uploaded(self, batch: list[Conversion]) -> list[Conversion]:
        if not batch:
            return []
        done = await self.r.smismember(f"{self.p}:uploaded", [c.key() for c in batch])
        return [c for c, d in zip(batch, done, strict=True) if not d]

    async def mark_uploaded(self, batch: list[Conversion]) -> None:
        if batch:
            await self.r.sadd(f"{self.p}:uploaded", *(c.key() for c in batch))


class Worker:
    def __init__(self, settings: WritebackSettings, store: Store, uploader: Uploader,
                 producer: AIOKafkaProducer, vault: Vault | None = None) -> None:
        self.vault = vault
        self.goals = Goals(settings.goal_group_formed, settings.goal_opportunity_won)
        self.store = store
        self.uploader = uploader
        self.producer = producer
        self.uploaded = 0

    async def dead_letter(self, reason: str, detail: str, record, payload: bytes | str) -> None:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        letter = DeadLetter(service=SERVICE, reason=reason, detail=detail[:2000], failed_at=datetime.now(UTC),
                            source_topic=record.topic if record else None,
                            source_partition=record.partition if record else None,
                            source_offset=record.offset if record else None,
                            key=(record.key or b"").decode("utf-8", "replace") if record else None, payload=text)
        await self.producer.send_and_wait(topics.METRICA_WRITEBACK_DLQ.name, key=(letter.key or "").encode(),
                                          value=encode(letter))

    async def _raw_ids(self, event):
        """Metrica needs the real ClientIDs and phones: opened from the sealed values (docs/privacy.md);
        the email stays the pseudonym, the person id the members of signals carry."""
        if self.vault is None or event.person.sealed is None:
            return event
        values = (await self.vault.open([event.person.sealed])).get(event.person.sealed) or {}
        raw = {k: values[k] for k in ("anonymous_id", "user_id") if k in values}
        return event.model_copy(update={"person": event.person.model_copy(update=raw)}) if raw else event

    async def handle_batch(self, records: list) -> None:
        """Person events first (links), then signals and stage changes in their order."""
        facts = []
        for record in records:
            if record.topic == topics.PERSON_EVENTS.name:
                try:
                    event = person_log.decode(record.value)
                except DecodeError as exc:
                    await self.dead_letter("invalid_message", f"{exc.reason}: {exc.detail}", record, record.value)
                    continue
                if isinstance(event, PersonErased):
                    continue  # the erase request removed this person's links (services/privacy)
                event = await self._raw_ids(event)
                # A ClientID learnt after a goal was reached (the topics interleave in any order,
                # and a visitor may be named weeks later) still gets that goal's conversion.
                for pid in await self.store.add_links(event):
                    for opportunity_id in await self.store.opportunities_of(pid):
                        for goal in await self.store.goals_of(opportunity_id):
                            owned = await self.store.client_ids(pid)
                            await self.upload(goal.conversions(owned), record, opportunity_id)
            else:
                facts.append(record)
        for record in facts:
            codec = {topics.CRM_STAGES.name: crm_events, topics.QUALIFICATION.name: qualification_events}.get(
                record.topic, scoring_messages)
            try:
                message = codec.decode(record.value)
            except DecodeError as exc:
                await self.dead_letter("invalid_message", f"{exc.reason}: {exc.detail}", record, record.value)
                continue
            await self.handle_fact(message, record)

    async def handle_fact(self, message, record) -> None:
        if isinstance(message, Signal):
            await self.store.add_members(message.opportunity_id, [m.person_id for m in message.members])
        if not isinstance(message, Signal | StageChanged | StageMoved):
            return  # scores, criteria, teams, deal terms: nothing to upload
        goal = reached(message, self.goals)
        if goal is not None:
            await self.store.remember(message.opportunity_id, goal)
        elif not isinstance(message, Signal):
            return
        # Every goal the opportunity reached, for every member known now: a deal won before the
        # signal that names the members was read gets its conversions when they are (not_uploaded
        # keeps each conversion to one upload).
        owned: set[str] = set()
        for pid in await self.store.members(message.opportunity_id):
            owned |= await self.store.client_ids(pid)
        for known in await self.store.goals_of(message.opportunity_id):
            await self.upload(known.conversions(owned), record, message.opportunity_id)

    async def upload(self, conversions: list[Conversion], record, opportunity_id: str) -> None:
        """Upload what was not uploaded yet; a refusal or a failure after the retries is dead-lettered."""
        batch = await self.store.not_uploaded(conversions)
        if not batch:
            return
        try:
            answer = await self.uploader.upload(batch)
        except UploadRefused as exc:
            await self.dead_letter("upload_refused", f"Metrica refused the upload: {exc}", record,
                                   csv_body(batch).decode())
            return
        except httpx.HTTPError as exc:
            await self.dead_letter("upload_failed", f"Metrica did not answer after the retries: {exc!r}", record,
                                   csv_body(batch).decode())
            return
        await self.store.mark_uploaded(batch)
        self.uploaded += len(batch)
        log.info("offline conversions uploaded", extra={"uploading_id": answer.get("id"), "rows": len(batch),
                                                         "opportunity_id": opportunity_id})


async def run(settings: WritebackSettings, stop: asyncio.Event | None = None, instance: str = "") -> None:
    """Consume until `stop` is set. `instance` keeps a separate run apart (its own consumer group
    and Redis keys): the demo's one-off write-back to the loopback server uses it."""
    namespace = os.environ.get("BG_TOPIC_NAMESPACE", "") + instance
    kafka = kafka_settings()
    consumer = AIOKafkaConsumer(topics.PERSON_EVENTS.name, topics.SIGNALS.name, topics.CRM_STAGES.name,
                                topics.QUALIFICATION.name,
                                **kafka.aiokafka_kwargs(), group_id=f"{namespace}bg-metrica-writeback",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True)
    redis = RedisSettings().client()
    uploader = Uploader(settings)
    vault = vault_for()
    worker = Worker(settings, Store(redis, namespace), uploader, producer, vault)
    await producer.start()
    await consumer.start()
    stop = stop or asyncio.Event()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            records = sorted((r for rs in batches.values() for r in rs), key=lambda r: r.timestamp)
            if records:
                await worker.handle_batch(records)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await uploader.close()
        await redis.aclose()
        await vault.aclose()


def main() -> None:
    configure_logging(SERVICE)
    settings = WritebackSettings()
    if not settings.token or not settings.counter_id:
        raise SystemExit("set METRICA_TOKEN and METRICA_COUNTER_ID (the counter to upload conversions to)")
    asyncio.run(run(settings))

