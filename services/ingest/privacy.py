"""Ingest's side of docs/privacy.md: pseudonyms and sealed values before anything is written,
touches of suppressed people dropped, and opt-outs from the platforms put on the list.

One vault round trip per request (shared/privacy/vault.py), whatever the number of events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.grouping.domain.accounts import person_id
from services.ingest.adapters.unisender import EmailStatus
from shared.privacy import dead_letters
from shared.privacy.person import identifiers, protect
from shared.privacy.seal import Identifier, normalise, pseudonym
from shared.privacy.settings import PrivacySettings
from shared.privacy.vault import Vault
from shared.schemas.touch import IdentityEvent, TouchEvent

PersonEvent = TouchEvent | IdentityEvent


class Guard:
    def __init__(self, vault: Vault, settings: PrivacySettings) -> None:
        self.vault = vault
        self.settings = settings

    async def protect(self, source: str, events: Sequence[PersonEvent]) -> tuple[list[PersonEvent], list[PersonEvent]]:
        """(events as the log may carry them, events dropped because their person is suppressed).

        An event is dropped when an identifier of its person was suppressed at or before the
        event's time (an opt-out stops what comes after it, not what came before), and only for
        the sources BG_PRIVACY_SUPPRESS_SOURCES names; elsewhere it is written like anyone's.
        Raises redis.exceptions.RedisError when the vault is unavailable (the caller answers 503)."""
        wanted, links, spans = [], [], []
        for event in events:
            ids = identifiers(event.person, person_id)
            start = len(wanted)
            wanted += ids
            links += [(start, start + i) for i in range(1, len(ids))]
            spans.append((start, start + len(ids)))
        entries = await self.vault.ensure(wanted, links)
        applies = self.settings.suppresses(source)
        kept, dropped = [], []
        for event, (a, b) in zip(events, spans, strict=True):
            mine = entries[a:b]
            if applies and any(e.suppressed_at is not None and e.suppressed_at <= event.occurred_at for e in mine):
                dropped.append(event)
            else:
                kept.append(protect(event, mine))
        return kept, dropped

    async def seal_dead_letters(self, letters: Sequence[tuple[str, str, Any, str | None]]
                                ) -> list[tuple[str, str, Any, str | None]]:
        """Each (reason, detail, item, key) of a dead letter with the personal values of its item,
        detail and key sealed (shared/privacy/dead_letters.py), in one vault round trip: under
        each email's own key and the item's person's, or, when the item names nobody the vault
        can know, a key of the letter's own (kept as an anonymous identifier that nothing else
        names, so retention destroys it with the idle ones). Raises redis.exceptions.RedisError
        when the vault is unavailable (the caller answers 503)."""
        wanted, spans = [], []
        for _, _, item, _ in letters:
            found = dead_letters.identifiers(item, person_id)
            if not found:
                own = f"dlq:{uuid.uuid4().hex}"
                found = [(Identifier("anon", own), pseudonym("anon", own, "{token}"))]
            spans.append((len(wanted), found))
            wanted += found
        entries = await self.vault.ensure(wanted)
        sealed = []
        for (reason, detail, item, key), (start, found) in zip(letters, spans, strict=True):
            mine = entries[start:start + len(found)]
            emails = {i.value: e for (i, _), e in zip(found, mine, strict=True) if i.kind == "email"}
            item, detail, key = dead_letters.seal_dead_letter(item, detail, key, emails, mine[0], person_id)
            sealed.append((reason, detail, item, key))
        return sealed

    async def opt_outs(self, source: str, optouts: Sequence[tuple[str, str, datetime | None]]) -> int:
        """Put each (email, reason, when) on the suppression list; the number newly suppressed."""
        added = 0
        for email, reason, at in optouts:
            added += await self.vault.suppress(Identifier("email", normalise("email", email, person_id)), reason,
                                               source, at or datetime.now(UTC))
        return added


def sendgrid_opt_outs(body: Any, events: Sequence[str]) -> list[tuple[str, str, datetime | None]]:
    """(email, event name, time) of each SendGrid item in `events` (unsubscribe, spamreport, ...)
    with an email; anything malformed is left to the adapter, which names the field."""
    out = []
    for item in body if isinstance(body, list) else [body]:
        if not isinstance(item, dict) or item.get("event") not in events:
            continue
        email, ts = item.get("email"), item.get("timestamp")
        if isinstance(email, str) and "@" in email:
            at = datetime.fromtimestamp(ts, UTC) if isinstance(ts, int | float) and 0 < ts < 2**32 else None
            out.append((email, item["event"], at))
    return out


def unisender_opt_outs(body: Any, statuses: Sequence[str]) -> list[tuple[str, str, datetime | None]]:
    """(email, status, time) of each Unisender Go email status in `statuses` (unsubscribed, spam);
    a malformed item is left to the adapter, which names the field."""
    out = []
    users = body.get("events_by_user") if isinstance(body, dict) else None
    for user in users if isinstance(users, list) else []:
        events = user.get("events") if isinstance(user, dict) else None
        for event in events if isinstance(events, list) else []:
            data = event.get("event_data") if isinstance(event, dict) else None
            if not isinstance(data, dict) or data.get("status") not in statuses:
                continue
            email = data.get("email")
            if isinstance(email, str) and "@" in email:
                try:
                    at = EmailStatus.model_validate(data).event_time
                except ValidationError:
                    at = None
                out.append((email, data["status"], at))
    return out
