"""Duplicate suppression by event id in Redis, safe against loss.

A claim is taken (SET NX, short TTL) before producing and confirmed (long TTL) only after
Kafka acknowledged, so a failed produce releases the claim and the platform's retry is not
mistaken for a duplicate. A second copy arriving while the first is still in flight is not
acknowledged either: the caller answers 503 and the platform retries later.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

PENDING = b"pending"
DONE = b"done"
CLAIM_TTL_SECONDS = 60


@dataclass(frozen=True)
class Claims:
    new: list[str]
    duplicates: list[str]
    in_flight: list[str]


class Deduper:
    def __init__(self, redis: Redis, ttl_seconds: int, prefix: str = "bg:ingest:seen:") -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self.prefix = prefix

    async def claim(self, ids: list[str]) -> Claims:
        """ids must be unique; SET NX GET (Redis >= 7) claims and reads in one round trip."""
        unique = ids
        if not unique:
            return Claims([], [], [])
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in unique:
                pipe.set(self.prefix + i, PENDING, nx=True, ex=CLAIM_TTL_SECONDS, get=True)
            previous = await pipe.execute()
        new = [i for i, p in zip(unique, previous, strict=True) if p is None]
        duplicates = [i for i, p in zip(unique, previous, strict=True) if p == DONE]
        in_flight = [i for i, p in zip(unique, previous, strict=True) if p == PENDING]
        return Claims(new, duplicates, in_flight)

    async def confirm(self, ids: list[str]) -> None:
        if ids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.set(self.prefix + i, DONE, ex=self.ttl)
                await pipe.execute()

    async def release(self, ids: list[str]) -> None:
        if ids:
            await self.redis.delete(*(self.prefix + i for i in ids))
