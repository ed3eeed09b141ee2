"""Duplicate suppression by event id in Redis, safe against loss.

A claim is taken (SET NX, short TTL) before producing and confirmed (long TTL) only after
Kafka acknowledged, so a failed produce releases the claim and the platform's retry is not
mistaken for a duplicate. A second copy arriving while the first is still in flight is not
acknowledged either: the caller answers 503 and the platform retries later.

Each step is one Lua call for the whole request, not a command per event: a pipeline of 500
SETs cost more of ingest's CPU in redis-py's command packing than the Kafka produce did.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

PENDING = b"pending"
DONE = b"done"
CLAIM_TTL_SECONDS = 60

# Returns, per key, what it held before: false when the claim was taken now.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, ARGV[1], 'NX', 'GET', 'EX', ARGV[2])
end
return out
"""
_CONFIRM = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return #KEYS
"""


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
        self._claim = redis.register_script(_CLAIM)
        self._confirm = redis.register_script(_CONFIRM)

    async def claim(self, ids: list[str]) -> Claims:
        """ids must be unique. Claims the new ones and reads the others in one round trip."""
        if not ids:
            return Claims([], [], [])
        previous = await self._claim(keys=[self.prefix + i for i in ids], args=[PENDING, CLAIM_TTL_SECONDS])
        new = [i for i, p in zip(ids, previous, strict=True) if p is None]
        duplicates = [i for i, p in zip(ids, previous, strict=True) if p == DONE]
        in_flight = [i for i, p in zip(ids, previous, strict=True) if p == PENDING]
        return Claims(new, duplicates, in_flight)

    async def confirm(self, ids: list[str]) -> None:
        if ids:
            await self._confirm(keys=[self.prefix + i for i in ids], args=[DONE, self.ttl])

    async def release(self, ids: list[str]) -> None:
        if ids:
            await self.redis.delete(*(self.prefix + i for i in ids))
