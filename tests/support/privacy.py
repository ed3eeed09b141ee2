"""What tests read from bg.person-events.v1, with the raw values ingest sealed put back.

Ingest writes pseudonyms and a sealed value (docs/privacy.md); a test of an adapter checks the
values the platform sent, so it opens them with the vault the ingest process under test used
(same Redis, same pepper, same topic namespace)."""

from __future__ import annotations

import json
import os
import re
from functools import cache

from redis import Redis

from shared.codec import dead_letters, person_events
from shared.privacy.person import reveal
from shared.privacy.seal import SealError, is_sealed, open_sealed, token_of
from shared.privacy.settings import PrivacySettings
from shared.schemas.deadletter import DeadLetter
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


_SEALED_TEXT = re.compile(r"v1\.p[0-9a-f]{20}\.[A-Za-z0-9_-]+")


def unsealed(payload: str) -> str:
    """A dead letter's payload (JSON text) with every sealed value in it opened, as an operator
    reads it through the vault (shared/privacy/dead_letters.py); one that no longer opens stays."""
    def opened_text(match: re.Match) -> str:
        values = _open(match.group(0))
        return json.dumps(values["v"], ensure_ascii=False)[1:-1] if values else match.group(0)
    return _SEALED_TEXT.sub(opened_text, payload)


def unsealed_letter(raw: bytes) -> DeadLetter:
    """The dead letter of `raw` with its payload, detail and key unsealed (as `revealed` for events)."""
    letter = dead_letters.decode(raw)
    return letter.model_copy(update={"payload": unsealed(letter.payload), "detail": unsealed(letter.detail),
                                     "key": None if letter.key is None else unsealed(letter.key)})
