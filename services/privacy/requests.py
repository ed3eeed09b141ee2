"""A person's data requests, for the API and the command alike: export, erase, suppress.

A subject is one identifier as a platform gave it: an email, a user id or an anonymous id. The
vault finds every identifier linked to it (seen together in one event) and so every pseudonym
the person has on the log and in the projection.

Erase, in this order (docs/privacy.md, "How erase works"):
1. an erasure (PersonErased) on bg.person-events.v1, after everything the person did: grouping
   removes them from every opportunity (member_removed on bg.opportunity.v1), scoring scores
   again without them, the projection deletes their rows; a replay does the same;
2. the projection's rows deleted now, not when the log gets there;
3. what Redis holds about them: ingest's memory and dedupe keys that name them, the Metrica
   write-back's links;
4. their keys and vault entries destroyed: every sealed value of theirs, on every topic and in
   every backup of a topic, can no longer be opened.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.grouping.domain.accounts import person_id
from services.privacy import store
from shared import topics
from shared.codec import encode
from shared.privacy.seal import Identifier, normalise
from shared.privacy.vault import Known, Vault
from shared.schemas.privacy import PersonErased

SubjectKind = Literal["email", "user_id", "anonymous_id"]
KIND: dict[SubjectKind, Literal["email", "user", "anon"]] = {"email": "email", "user_id": "user",
                                                             "anonymous_id": "anon"}
Progress = Callable[[str, int, int], None]  # (step, done, of)
STEPS = ("find", "log", "projection", "redis", "keys")


class UnknownSubject(LookupError):
    """No one is known by this identifier (never seen, or erased already)."""


@dataclass(frozen=True)
class Subject:
    kind: SubjectKind
    value: str

    def identifier(self) -> Identifier:
        kind = KIND[self.kind]
        return Identifier(kind, normalise(kind, self.value, person_id))


def ids_of(known: list[Known]) -> tuple[list[str], list[str]]:
    """(grouping's person ids, "anon:"/"user:" identifiers) of a person's pseudonyms."""
    person_ids = sorted({person_id(k.pseudonym) for k in known if k.kind == "email"})
    identifiers = sorted({f"{k.kind}:{k.pseudonym}" for k in known if k.kind in ("anon", "user")})
    return person_ids, identifiers


def _glob(value: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in value)


class Privacy:
    """Export, erase and suppress against the vault, the projection's database, Redis and Kafka."""

    def __init__(self, vault: Vault, engine: AsyncEngine, redis: Redis, producer: AIOKafkaProducer) -> None:
        self.vault = vault
        self.engine = engine
        self.redis = redis
        self.producer = producer
        self.namespace = os.environ.get("BG_TOPIC_NAMESPACE", "")

    async def export(self, subject: Subject) -> dict[str, Any]:
        """Everything kept about the person: their identifiers (as pseudonyms, with what the vault
        knows), suppression, and every projection row naming them. UnknownSubject when no one is
        known by the identifier and it is not suppressed."""
        known = await self.vault.person(subject.identifier())
        suppressed = await self.vault.suppression(subject.identifier())
        if not known and suppressed is None:
            raise UnknownSubject(f"no one is known by this {subject.kind}")
        person_ids, identifiers = ids_of(known)
        async with self.engine.connect() as conn:
            rows = await store.rows_about(conn, person_ids)
        return {
            "subject": {"kind": subject.kind, "value": subject.value},
            "identifiers": [{"kind": k.kind, "pseudonym": k.pseudonym, "last_seen": k.last_seen} for k in known],
            "person_ids": person_ids,
            "suppressed": suppressed,
            **rows,
        }

    async def erase(self, subject: Subject, now: datetime, suppress: bool = False,
                    progress: Progress | None = None) -> dict[str, Any]:
        """Erase the person everywhere (the module's docstring). UnknownSubject when no one is known
        by the identifier. With `suppress`, the identifier is also put on the suppression list, so
        that later touches are dropped at ingest (Segment's "delete and suppress")."""
        step = progress or (lambda *_: None)
        step("find", 0, 1)
        known = await self.vault.person(subject.identifier())
        if not known:
            raise UnknownSubject(f"no one is known by this {subject.kind}")
        person_ids, identifiers = ids_of(known)
        step("find", 1, 1)
        request = hashlib.sha256("|".join(sorted(k.token for k in known)).encode()).hexdigest()[:16]
        erasure = PersonErased(event_id=f"erase:{request}", occurred_at=now, person_ids=tuple(person_ids),
                               identifiers=tuple(identifiers))
        step("log", 0, 1)
        await self.producer.send_and_wait(topics.PERSON_EVENTS.name, key=erasure.key().encode(), value=encode(erasure))
        step("log", 1, 1)
        step("projection", 0, 1)
        async with self.engine.begin() as conn:
            # The raw emails the projection opened: Redis keys may name them (below).
            contacts = (await store.rows_about(conn, person_ids))["contacts"]
            rows = await store.erase_rows(conn, person_ids)
        step("projection", 1, 1)
        raw = sorted({subject.value, *(c["email"] for c in contacts if c.get("email"))})
        redis_keys = await self._erase_redis(raw, person_ids, step)
        if suppress:
            await self.vault.suppress(subject.identifier(), "erase_and_suppress", "api", now)
        step("keys", 0, len(known))
        shredded = await self.vault.shred(known)
        step("keys", len(known), len(known))
        return {"event_id": erasure.event_id, "person_ids": person_ids, "identifiers": identifiers,
                "projection_rows": rows, "redis_keys": redis_keys, "keys_destroyed": shredded,
                "suppressed": suppress}

    async def _erase_redis(self, raw: list[str], person_ids: list[str], step: Progress) -> int:
        """Delete ingest's memory and dedupe keys that name a raw identifier, and the write-back's
        links of the person ids. Returns the number of keys deleted."""
        patterns = [f"bg:ingest:seen:{self.namespace}*{_glob(v)}*" for v in raw] + [
            f"bg:metrica-wb:{self.namespace}*:{kind}:{_glob(p)}" for p in person_ids for kind in ("pc", "pp", "po")]
        deleted = 0
        step("redis", 0, len(patterns) + 1)
        for done, pattern in enumerate(patterns, 1):
            async for key in self.redis.scan_iter(match=pattern, count=1000):
                deleted += await self.redis.delete(key)
            step("redis", done, len(patterns) + 1)
        # Ingest's memory holds platform records (Zoom registrants) by their own ids: found by value.
        needles = [v.encode() for v in raw] + [v.lower().encode() for v in raw]
        async for key in self.redis.scan_iter(match=f"bg:ingest:mem:{self.namespace}*", count=1000):
            value = await self.redis.get(key)
            if value is not None and any(n in value for n in needles):
                deleted += await self.redis.delete(key)
        step("redis", len(patterns) + 1, len(patterns) + 1)
        return deleted

    async def suppress(self, subject: Subject, reason: str, source: str, now: datetime) -> bool:
        """Put the identifier on the suppression list; False when it was there already."""
        return await self.vault.suppress(subject.identifier(), reason, source, now)

    async def unsuppress(self, subject: Subject) -> bool:
        return await self.vault.unsuppress(subject.identifier())


def now() -> datetime:
    return datetime.now(UTC)
