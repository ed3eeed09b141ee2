"""What ingest remembers across requests (Redis, with a TTL), for adapters that need it.

- SendGrid: when each message was delivered (sg_message_id -> unix seconds), to tell a mail
  link scanner's click (seconds after delivery) from a person's.
- Zoom: each webinar's registrants (webinar id:registrant id -> the registrant) and the start
  of each open session (occurrence:person -> unix seconds of the latest join), to resolve a
  join with an empty or hashed email and to give a leave its duration.

Adapters stay pure: the API reads what a request may need before parsing and writes what it
teaches after. Every write is idempotent (a platform's retry writes the same values).
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis


class Memory:
    def __init__(self, redis: Redis, ttl_seconds: int, prefix: str = "bg:ingest:mem:") -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self.prefix = prefix

    def _keys(self, kind: str, keys: list[str]) -> list[str]:
        return [f"{self.prefix}{kind}:{k}" for k in keys]

    async def get(self, kind: str, keys: list[str]) -> dict[str, Any]:
        """The remembered values of `kind` for the keys that have one (JSON-decoded)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        values = await self.redis.mget(self._keys(kind, keys))
        return {k: orjson.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def put(self, kind: str, values: dict[str, Any]) -> None:
        if not values:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, value in zip(self._keys(kind, list(values)), values.values(), strict=True):
                pipe.set(key, orjson.dumps(value), ex=self.ttl)
            await pipe.execute()
