"""What tests read from bg.person-events.v1, with the raw values ingest sealed put back.

Ingest writes pseudonyms and a sealed value (docs/privacy.md); a test of an adapter checks the
values the platform sent, so it opens them with the vault the ingest process under test used
(same Redis, same pepper, same topic namespace)."""

from __future__ import annotations

import os
from functools import cache

from redis import Redis

from shared.codec import person_events
from shared.privacy.person import reveal
from shared.privacy.seal import SealError, is_sealed, open_sealed, token_of
from shared.privacy.settings import PrivacySettings
from shared.settings import RedisSettings


@cache
def _redis() -> Redis:
    # Synchronous (the helpers are called from decoders); the vault's Redis, as vault_for finds it.
    return Redis.from_url(PrivacySettings().vault_redis_url or RedisSettings().redis_url)


def revealed(raw: bytes):
    """The person event of `raw` with its person's raw email, ids and name, when their key exists."""
    event = person_events.decode(raw)
    if event.person.sealed is None:
        return event
    person = reveal(event.person, _open(event.person.sealed), _open(event.person.name))
    return event.model_copy(update={"person": person.model_copy(update={"sealed": None})})


def _open(sealed: str | None) -> dict[str, str] | None:
    if sealed is None or not is_sealed(sealed):
        return None
    prefix = f"bg:privacy:{os.environ.get('BG_TOPIC_NAMESPACE', '')}"
    key = _redis().hget(f"{prefix}key:{token_of(sealed)}", "k")
    try:
        return open_sealed(sealed, key) if key else None
    except SealError:
        return None


def opened(sealed: str | None) -> dict[str, str] | None:
    """The raw values a sealed string holds (a member card's `sealed`: email and name), with the
    vault of the ingest process under test; None when it cannot be opened."""
    return _open(sealed)
