"""POST /v1/sources/sendgrid: SendGrid Event Webhook, a JSON array of events.

https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event — sg_event_id is
the dedupe id. Engagement events (open, click, delivered) become touches; deliverability
events (bounce, dropped, deferred, processed, spam reports, unsubscribes) are not touches
and need no more than their `event` name (they may lack sg_event_id: issue 13).

Automated touches are kept but flagged (never engagement):
- `sg_machine_open: true`: SendGrid's mark of an open by a mail client's privacy proxy
  (Apple Mail Privacy Protection prefetches every image), docs "Event Webhook reference".
- a click within `scanner_window` of the message's delivery: mail security gateways
  (Microsoft Defender Safe Links, Mimecast, Proofpoint) follow every link of a message as
  it arrives, before a person could have read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from services.ingest.adapters.batch import each_item
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
    sg_machine_open: bool = False


class _Named(BaseModel):
    """What every SendGrid event has: its name (decides whether the rest is needed)."""

    model_config = ConfigDict(extra="allow")
    event: Annotated[str, Field(min_length=1, max_length=50)]


_envelope = TypeAdapter(Annotated[list[Any], Field(min_length=1)])


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _automation(e: SendGridEvent, kind: TouchKind, delivered_at: Mapping[str, int],
                scanner_window: timedelta) -> dict:
    if kind is TouchKind.email_open and e.sg_machine_open:
        return {"automated": True, "automated_reason": "machine_open"}
    delivered = delivered_at.get(e.sg_message_id or "")
    if (kind is TouchKind.email_click and delivered is not None
            and 0 <= e.timestamp - delivered <= scanner_window.total_seconds()):
        return {"automated": True, "automated_reason": "link_scanner"}
    return {}


def _map(e: SendGridEvent, delivered_at: Mapping[str, int], scanner_window: timedelta) -> MapResult:
    kind = _KINDS[e.event]
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
        **_automation(e, kind, delivered_at, scanner_window),
    ), raw, event_id)


def deliveries(body: Any) -> dict[str, int]:
    """sg_message_id -> unix seconds of its `delivered` event, from a raw webhook body (the
    API remembers them, so that a click in a later request is judged against its delivery)."""
    items = body if isinstance(body, list) else [body]
    return {i["sg_message_id"]: i["timestamp"] for i in items
            if isinstance(i, dict) and i.get("event") == "delivered"
            and isinstance(i.get("sg_message_id"), str) and isinstance(i.get("timestamp"), int)}


def parse(body: Any, max_batch: int, delivered_at: Mapping[str, int] | None = None,
          scanner_window: timedelta = timedelta(seconds=10)) -> list[MapResult]:
    """Every event of the array stands alone (batch.each_item).

    delivered_at: sg_message_id -> unix seconds of delivery known from earlier requests; this
    request's own `delivered` events are added to it. scanner_window: a click this soon after
    delivery is a link scanner's.
    """
    events = _envelope.validate_python(body if isinstance(body, list) else [body])
    check_batch_size("(body)", len(events), max_batch)
    known = {**(delivered_at or {}), **deliveries(events)}

    def one(raw: Any) -> MapResult:
        name = _Named.model_validate(raw).event
        if name not in _KINDS:
            return Ignored(f"sendgrid event '{name}' is not a touch")
        return _map(SendGridEvent.model_validate(raw), known, scanner_window)

    return each_item(events, one, id_field="sg_event_id", id_prefix="sendgrid:")
