"""POST /v1/sources/sendgrid: SendGrid Event Webhook, a JSON array of events.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event — sg_event_id is
the dedupe id. Engagement events (open, click, delivered) become touches; deliverability
events (bounce, dropped, deferred, processed, spam reports, unsubscribes) are not touches.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from services.ingest.adapters.results import (
    Ignored,
    MapResult,
    Unmapped,
    build,
    check_batch_size,
    compact,
    from_unix,
)
from shared.schemas.touch import Source, TouchEvent, TouchKind

_KINDS = {"open": TouchKind.email_open, "click": TouchKind.email_click, "delivered": TouchKind.email_delivered}


class SendGridEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    email: Annotated[str, Field(min_length=1, max_length=320)]
    timestamp: Annotated[int, Field(ge=0, lt=32503680000)]  # unix seconds, before year 3000
    event: Annotated[str, Field(min_length=1, max_length=50)]
    sg_event_id: Annotated[str, Field(min_length=1, max_length=200)]
    sg_message_id: str | None = None
    url: Annotated[str, Field(max_length=2000)] | None = None
    useragent: Annotated[str, Field(max_length=1000)] | None = None
    ip: Annotated[str, Field(max_length=100)] | None = None
    category: str | list[str] | None = None


_events = TypeAdapter(Annotated[list[SendGridEvent], Field(min_length=1)])


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _map(e: SendGridEvent) -> MapResult:
    kind = _KINDS.get(e.event)
    if kind is None:
        return Ignored(f"sendgrid event '{e.event}' is not a touch")
    extra = e.model_extra or {}
    event_id = f"sendgrid:{e.sg_event_id}"
    raw = e.model_dump(mode="json")
    if "@" not in e.email:
        return Unmapped("invalid_email", f"email: '{e.email[:80]}' is not an email address", raw, event_id)
    category = e.category[0] if isinstance(e.category, list) and e.category else e.category
    return build(lambda: TouchEvent(
        event_id=event_id,
        occurred_at=from_unix(e.timestamp),
        source=Source.email,
        kind=kind,
        platform="sendgrid",
        # Custom args set on the send (unique_args) carry what the email was about.
        person=compact(email=e.email, name=_str(extra.get("name")),
                                job_title=_str(extra.get("job_title")), company=_str(extra.get("company"))),
        content=compact(url=e.url, title=_str(extra.get("subject") or extra.get("campaign")),
                                  asset_id=_str(extra.get("asset_id")), topic=_str(extra.get("topic") or category)),
        context=compact(ip=e.ip, user_agent=e.useragent),
        properties=compact(sg_message_id=e.sg_message_id, campaign=_str(extra.get("campaign"))),
    ), raw, event_id)


def parse(body: Any, max_batch: int) -> list[MapResult]:
    events = _events.validate_python(body if isinstance(body, list) else [body])
    check_batch_size("(body)", len(events), max_batch)
    return [_map(e) for e in events]
