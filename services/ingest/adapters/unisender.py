"""POST /v1/sources/unisender: Unisender Go webhooks (transactional email status).

The body is `{auth, events_by_user: [{user_id, project_id, events: [{event_name,
event_data: {job_id, metadata, email, status, event_time, url, delivery_info}}]}]}`.
`auth` is the MD5 of the raw body in which the auth value was replaced by the API key
(verify_auth, on the raw bytes: re-serialising would change them). Statuses: sent, delivered,
opened, clicked, unsubscribed, subscribed, soft_bounced, hard_bounced, spam. delivered, opened
and clicked become touches; the rest, and `transactional_spam_block` events, are not touches.
Per-send `metadata` (name, job_title, company, subject, asset_id) travels with the person and
content, as SendGrid's custom args do. Each event stands alone: one that cannot be mapped is
dead-lettered, the others go on.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.ingest.adapters.batch import each_item
from services.ingest.adapters.results import (
    Ignored,
    MapResult,
    PayloadError,
    Unmapped,
    build,
    check_batch_size,
    compact,
)
from services.ingest.auth import same
from shared.schemas.touch import Source, TouchEvent, TouchKind

STATUS_EVENT = "transactional_email_status"
_KINDS = {"delivered": TouchKind.email_delivered, "opened": TouchKind.email_open, "clicked": TouchKind.email_click}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class DeliveryInfo(_Open):
    delivery_status: str | None = None
    destination_response: str | None = None
    user_agent: Annotated[str, Field(max_length=1000)] | None = None
    ip: Annotated[str, Field(max_length=100)] | None = None


class EmailStatus(_Open):
    job_id: Annotated[str, Field(min_length=1, max_length=200)]
    email: Annotated[str, Field(min_length=1, max_length=320)]
    status: Annotated[str, Field(min_length=1, max_length=50)]
    event_time: datetime
    url: Annotated[str, Field(max_length=2000)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    delivery_info: DeliveryInfo | None = None

    @field_validator("event_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Unisender Go writes "2015-11-30 15:09:42" in UTC; an offset, when given, is honoured.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class Event(_Open):
    event_name: Annotated[str, Field(min_length=1, max_length=100)]
    event_data: dict[str, Any]


class StatusEvent(_Open):
    event_name: str
    event_data: EmailStatus


class UserEvents(_Open):
    events: list[Any]


class Webhook(_Open):
    auth: Annotated[str, Field(max_length=200)]  # checked by the API on the raw bytes (verify_auth)
    events_by_user: Annotated[list[UserEvents], Field(min_length=1)]


def expected_auth(raw: bytes, presented: str, api_key: str) -> str:
    """MD5 hex of the raw body with the presented auth value replaced by the API key."""
    needle = b'"' + presented.encode("utf-8", "surrogatepass") + b'"'
    return hashlib.md5(raw.replace(needle, b'"' + api_key.encode() + b'"', 1)).hexdigest()


def verify_auth(raw: bytes, presented: str, api_keys: list[str]) -> bool:
    return any(same(presented.lower(), expected_auth(raw, presented, k)) for k in api_keys)


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _map(item: Any) -> MapResult:
    """One event; raises ValidationError when it does not fit the documented shape."""
    event = Event.model_validate(item)
    if event.event_name != STATUS_EVENT:
        return Ignored(f"unisender event '{event.event_name}' is not a touch")
    e = StatusEvent.model_validate(item).event_data
    kind = _KINDS.get(e.status)
    if kind is None:
        return Ignored(f"unisender status '{e.status}' is not a touch")
    # No event id in Unisender Go's webhook: one status of one email at one time, per link.
    key = "\x1f".join((e.job_id, e.email.lower(), e.status, e.event_time.isoformat(), e.url or ""))
    event_id = "unisender:" + hashlib.sha1(key.encode()).hexdigest()[:32]
    raw = item
    if "@" not in e.email:
        return Unmapped("invalid_email", f"event_data.email: '{e.email[:80]}' is not an email address", raw, event_id)
    meta, info = e.metadata, e.delivery_info or DeliveryInfo()
    return build(lambda: TouchEvent(
        event_id=event_id, occurred_at=e.event_time, source=Source.email, kind=kind, platform="unisender",
        person=compact(email=e.email, name=_str(meta.get("name")), job_title=_str(meta.get("job_title")),
                       company=_str(meta.get("company"))),
        content=compact(url=e.url, title=_str(meta.get("subject") or meta.get("campaign")),
                        asset_id=_str(meta.get("asset_id")), topic=_str(meta.get("topic"))),
        context=compact(ip=info.ip, user_agent=info.user_agent),
        properties=compact(job_id=e.job_id, campaign=_str(meta.get("campaign"))),
    ), raw, event_id)


def parse(body: Any, max_batch: int) -> list[MapResult]:
    """Every event stands alone (batch.each_item): errors read events_by_user.0.events.3.event_data.email."""
    hook = Webhook.model_validate(body)
    check_batch_size("events_by_user.events", sum(len(u.events) for u in hook.events_by_user), max_batch)
    if not any(u.events for u in hook.events_by_user):
        raise PayloadError("events_by_user.events", "no events")
    return [r for n, user in enumerate(hook.events_by_user)
            for r in each_item(user.events, _map, field=f"events_by_user.{n}.events")]
