"""What a connector remembers, in Redis under `bg:crm:<namespace>:<crm>:` (REDIS_URL).

Nothing here is the truth about a deal: the CRM is (the opportunity id in the deal's field), and
the read API is about opportunities. This is what makes repeated work cheap and each effect
once: the change-feed cursor, webhooks not yet handled, the last stage state reported per deal,
the digest of what was last published per record, the deal of each opportunity, the contacts
the connector attached, and the signals whose task exists.
"""

from __future__ import annotations

from datetime import datetime

from redis.asyncio import Redis


class State:
    def __init__(self, redis: Redis, namespace: str, crm: str) -> None:
        self.r = redis
        self.p = f"bg:crm:{namespace}:{crm}"

    async def _get(self, key: str) -> str | None:
        value = await self.r.get(f"{self.p}:{key}")
        return value.decode() if value is not None else None

    async def _hget(self, key: str, field: str) -> str | None:
        value = await self.r.hget(f"{self.p}:{key}", field)
        return value.decode() if value is not None else None

    # change feed and reconciliation
    async def cursor(self) -> int:
        return int(await self._get("cursor") or 0)

    async def set_cursor(self, cursor: int) -> None:
        await self.r.set(f"{self.p}:cursor", cursor)

    async def reconciled_until(self) -> datetime | None:
        value = await self._get("reconciled_until")
        return datetime.fromisoformat(value) if value else None

    async def set_reconciled_until(self, at: datetime) -> None:
        await self.r.set(f"{self.p}:reconciled_until", at.isoformat())

    # webhooks received, not yet handled ("deal:123")
    async def add_pending(self, items: list[str]) -> None:
        if items:
            await self.r.sadd(f"{self.p}:pending", *items)

    async def pending(self, limit: int = 100) -> list[str]:
        return sorted(m.decode() for m in await self.r.srandmember(f"{self.p}:pending", limit) or [])

    async def done_pending(self, item: str) -> None:
        await self.r.srem(f"{self.p}:pending", item)

    # inbound: what was reported / published
    async def reported(self, deal_id: str) -> str | None:
        return await self._hget("reported", deal_id)

    async def set_reported(self, deal_id: str, state: str) -> None:
        await self.r.hset(f"{self.p}:reported", deal_id, state)

    async def published(self, key: str) -> str | None:
        return await self._hget("published", key)

    async def set_published(self, key: str, event_id: str) -> None:
        await self.r.hset(f"{self.p}:published", key, event_id)

    # outbound
    async def deal_of(self, opportunity_id: str) -> str | None:
        return await self._hget("deal_of", opportunity_id)

    async def set_deal_of(self, opportunity_id: str, deal_id: str) -> None:
        await self.r.hset(f"{self.p}:deal_of", opportunity_id, deal_id)

    async def fingerprint(self, opportunity_id: str) -> str | None:
        return await self._hget("fingerprint", opportunity_id)

    async def set_fingerprint(self, opportunity_id: str, value: str) -> None:
        await self.r.hset(f"{self.p}:fingerprint", opportunity_id, value)

    async def attached(self, deal_id: str) -> set[str]:
        return {m.decode() for m in await self.r.smembers(f"{self.p}:attached:{deal_id}")}

    async def add_attached(self, deal_id: str, contact_ids: list[str]) -> None:
        if contact_ids:
            await self.r.sadd(f"{self.p}:attached:{deal_id}", *contact_ids)

    async def task_done(self, signal_id: str) -> bool:
        return bool(await self.r.sismember(f"{self.p}:tasks", signal_id))

    async def set_task_done(self, signal_id: str) -> None:
        await self.r.sadd(f"{self.p}:tasks", signal_id)

    # amoCRM's rotating OAuth tokens
    async def tokens(self) -> tuple[str, str] | None:
        found = await self.r.hmget(f"{self.p}:oauth", ["access", "refresh"])
        return (found[0].decode(), found[1].decode()) if all(found) else None

    async def set_tokens(self, access: str, refresh: str) -> None:
        await self.r.hset(f"{self.p}:oauth", mapping={"access": access, "refresh": refresh})
