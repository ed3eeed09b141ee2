"""Delivers signals to webhooks: signed, retried with backoff, deduplicated in Redis,
dead-lettered after the last try, with a cooldown per opportunity, kind and level.

It runs as its own process (python -m services.scoring.alerts), not as an agent of the
scoring worker: a webhook that is slow or down holds a delivery for up to
`delivery.worst_case_seconds()`, and inside the scoring worker that would stall scoring
(its agent runs with concurrency=1) and tie scoring's offsets to a receiver's health. Apart,
it scales, restarts and lags on its own, and replays bg.signal.v1 without re-scoring.

Delivery guarantee, per (webhook, signal id):
- the signal's offset is committed only after every delivery of it ended (2xx, suppressed,
  or dead-lettered), so a crash never loses an alert: the restarted dispatcher sees it again;
- the id is marked delivered in Redis only after a 2xx, and checked before sending, so a
  redelivered or replayed signal is not sent again while the mark lives (dedupe_ttl);
- an in-flight claim (SET NX with an expiry longer than the longest delivery) keeps two
  dispatchers (a rebalance) from sending the same alert at once;
- what remains: a crash, or a lost response, between the receiver's 2xx and the mark
  resends that alert ONCE more, with the same X-BG-Signal-Id, which the receiver can drop.
  So: at least once, and exactly once unless the dispatcher dies in that window.

Cooldown: a repeat of the same kind at the same level (the tier reached) within
`cooldown_seconds` is held back; a tier upgrade (priority_changed to a better tier) never is.

Logs and dead letters name the webhook, never its URL: URLs carry secrets (a Telegram bot
token, a Slack webhook path).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import httpx
from redis.asyncio import Redis

from services.scoring.alerts import format as fmt
from services.scoring.alerts.config import AlertsConfig, Webhook
from services.scoring.alerts.team import TeamBook
from shared.codec import encode
from shared.privacy.person import named_members
from shared.privacy.settings import vault_for
from shared.schemas.deadletter import DeadLetter
from shared.schemas.scoring import Signal

log = logging.getLogger(__name__)

Outcome = Literal["delivered", "duplicate", "suppressed", "dead_lettered"]
TIER_RANK = {"A": 0, "B": 1, "C": 2}

# Statuses worth trying again; any other 4xx is the receiver refusing this request for good.
RETRYABLE = {408, 425, 429}


def cooldown_level(signal: Signal) -> str | None:
    """The level whose repeats the cooldown holds back: the tier reached. None for a tier
    upgrade (priority_changed from C to B, or B to A), which always goes out."""
    if signal.signal == "priority_changed":
        old, new = str(signal.detail.get("from")), str(signal.detail.get("to", signal.tier))
        if TIER_RANK.get(new, 9) < TIER_RANK.get(old, 9):
            return None
        return new
    return signal.tier


def redact(text: str, hook: Webhook, name: str) -> str:
    """`text` without the webhook's URL or its path (where tokens live), named instead."""
    parts = httpx.URL(hook.url)
    # The path's segments too: a Telegram token is one (bot<token>), a Slack path is three.
    secret_parts = [hook.url, str(parts.copy_with(query=None, fragment=None)), parts.path, parts.query.decode(),
                    *(seg for seg in parts.path.split("/") if len(seg) >= 8)]
    for part in sorted((p for p in secret_parts if p and len(p) > 1), key=len, reverse=True):
        text = text.replace(part, f"<webhook {name}>")
    return text


@dataclass(frozen=True)
class Source:
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


class Dispatcher:
    def __init__(self, config: AlertsConfig, redis: Redis, http: httpx.AsyncClient,
                 dead_letter: Callable[[DeadLetter], Awaitable[None]], namespace: str = "") -> None:
        self.config = config
        self.redis = redis
        self.http = http
        self.dead_letter = dead_letter
        self.prefix = f"{config.redis_prefix}{namespace}"
        self.teams = TeamBook(redis, self.prefix)
        self.vault = vault_for()
        self.claim_ms = int((config.delivery.worst_case_seconds() + 30) * 1000)

    async def dispatch(self, signal: Signal, source: Source = Source()) -> dict[str, Outcome]:
        # Members' names are sealed on the log (docs/privacy.md): opened here, or none once erased.
        signal = await named_members(self.vault, signal)
        # The seller's team as known now (bg.crm-stage.v2 read so far): its people's webhooks.
        names = self.config.route(signal, await self.teams.team(signal.opportunity_id))
        outcomes = await asyncio.gather(*(self.deliver(signal, n, source) for n in names))
        return dict(zip(names, outcomes, strict=True))

    async def deliver(self, signal: Signal, name: str, source: Source = Source()) -> Outcome:
        delivered = f"{self.prefix}delivered:{name}:{signal.signal_id}"
        if await self.redis.exists(delivered):
            return "duplicate"
        level = cooldown_level(signal)
        cooldown = f"{self.prefix}cooldown:{name}:{signal.opportunity_id}:{signal.signal}:{level}"
        if (self.config.cooldown_seconds and level is not None
                and not await self._cooldown_allows(cooldown, signal.signal_id)):
            # Remembered like a delivery, so that a replay after the cooldown stays quiet too.
            await self.redis.set(delivered, "suppressed", ex=self.config.dedupe_ttl_seconds)
            log.info("alert suppressed by cooldown", extra={"signal_id": signal.signal_id, "webhook": name})
            return "suppressed"
        claim = f"{self.prefix}inflight:{name}:{signal.signal_id}"
        token = uuid.uuid4().hex
        while not await self.redis.set(claim, token, nx=True, px=self.claim_ms):
            await asyncio.sleep(0.2)  # another dispatcher is sending it: wait for its outcome
            if await self.redis.exists(delivered):
                return "duplicate"
        try:
            error = await self._send(signal, name)
            if error is None:
                await self.redis.set(delivered, "1", ex=self.config.dedupe_ttl_seconds)
                return "delivered"
            await self._dead_letter(signal, name, error, source)
            if await self.redis.get(cooldown) == signal.signal_id.encode():
                await self.redis.delete(cooldown)  # an alert nobody got must not silence the next
            return "dead_lettered"
        finally:
            if await self.redis.get(claim) == token.encode():
                await self.redis.delete(claim)

    async def _cooldown_allows(self, key: str, signal_id: str) -> bool:
        if await self.redis.set(key, signal_id, nx=True, ex=self.config.cooldown_seconds):
            return True
        # The same signal again (a retry after a crash) is not a flood.
        return await self.redis.get(key) == signal_id.encode()

    async def _send(self, signal: Signal, name: str) -> str | None:
        """None once the receiver answered 2xx; else the last error (URL redacted) after the last try."""
        hook = self.config.webhooks[name]
        delivery = self.config.delivery
        content = fmt.body(signal, hook.format, hook.chat_id, hook.lang, self.config.web_base_url)
        error = "no attempt"
        for attempt in range(1, delivery.attempts + 1):
            headers = fmt.headers(signal, content, hook.secret, int(time.time()))
            try:
                response = await self.http.post(hook.url, content=content, headers=headers,
                                                 timeout=delivery.timeout)
                if response.is_success:
                    return None
                error = redact(f"HTTP {response.status_code}: {response.text[:200]}", hook, name)
                if 400 <= response.status_code < 500 and response.status_code not in RETRYABLE:
                    return error
            except httpx.HTTPError as exc:
                error = redact(f"{type(exc).__name__}: {exc}", hook, name)
            log.warning("alert delivery failed", extra={"signal_id": signal.signal_id, "webhook": name,
                                                        "attempt": attempt, "error": error})
            if attempt < delivery.attempts:
                await asyncio.sleep(delivery.backoff(attempt))
        return error

    async def _dead_letter(self, signal: Signal, name: str, error: str, source: Source) -> None:
        await self.dead_letter(DeadLetter(
            service="alerts", reason="delivery_failed",
            detail=f"webhook {name}: {error} after {self.config.delivery.attempts} attempts"[:4000],
            failed_at=datetime.now(UTC), source_topic=source.topic, source_partition=source.partition,
            source_offset=source.offset, key=signal.opportunity_id, payload=encode(signal).decode(),
        ))
