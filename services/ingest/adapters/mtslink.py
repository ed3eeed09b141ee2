"""POST /v1/sources/mtslink: MTS Link (formerly Webinar.ru) webhooks.

A JSON envelope `{event, occurredAt, data}`; when a signing secret is configured the body is
HMAC-SHA256 signed in `X-Webhook-Signature` (hex). Non-200 answers are retried by MTS Link.
`participation.acceptedWebinar` (a registration) carries the person (name, email, userId),
the event session (eventSessionId) and the registration form's extra fields
(`additionalFieldValues`: company, job title, phone), which become the person's traits; the
phone also links the person to calls from that number (see ids.py). Attendance is not a
webhook: it is pulled from UserAPI v3 (services/importers/mtslink_attendance.py) and arrives
through /v1/events. Other events (reminders, session created, ...) are not touches.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.ingest.adapters.batch import each_item
from services.ingest.adapters.ids import phone_user_id
from services.ingest.adapters.results import Ignored, MapResult, Unmapped, build, compact
from shared.schemas.touch import Source, TouchEvent, TouchKind

REGISTRATION = "participation.acceptedWebinar"

# additionalFieldValues labels (the organiser names the fields; Russian and English).
_LABELS = {
    "company": ("компания", "организация", "company", "organization"),
    "inn": ("инн", "инн организации", "inn"),
    "job_title": ("должность", "position", "job title", "job_title"),
    "phone": ("телефон", "phone", "номер телефона"),
    "role": ("роль в закупке", "role", "роль"),
}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldValue(_Open):
    label: Annotated[str, Field(max_length=500)] | None = None
    value: Annotated[str, Field(max_length=2000)] | None = None


class Participation(_Open):
    userId: Annotated[str, Field(max_length=200)] | int | None = None
    eventSessionId: Annotated[str, Field(min_length=1, max_length=200)] | int
    eventId: Annotated[str, Field(max_length=200)] | int | None = None
    name: Annotated[str, Field(max_length=500)] | None = None
    secondName: Annotated[str, Field(max_length=500)] | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=100)] | None = None
    eventName: Annotated[str, Field(max_length=1000)] | None = None
    additionalFieldValues: list[FieldValue] = Field(default_factory=list)


class Envelope(_Open):
    event: Annotated[str, Field(min_length=1, max_length=200)]
    occurredAt: AwareDatetime
    data: dict[str, Any]


class Registration(Envelope):
    data: Participation  # type: ignore[assignment]


def signature(secret: str, body: bytes) -> str:
    """X-Webhook-Signature: hex HMAC-SHA256 of the raw body with the webhook's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _field(p: Participation, what: str) -> str | None:
    for fv in p.additionalFieldValues:
        if fv.label and fv.value and fv.label.strip().lower() in _LABELS[what]:
            return fv.value.strip()
    return None


def parse(body: Any) -> list[MapResult]:
    """One webhook -> one registration touch, or Ignored for events that are not touches.

    A webhook that does not fit the documented shape is one Rejected item (dead-lettered,
    answered 200): MTS Link retries any other answer, and a retry cannot fix it.
    """
    return each_item([body], _one, field=None)


def _one(body: Any) -> MapResult:
    hook = Envelope.model_validate(body)
    if hook.event != REGISTRATION:
        return Ignored(f"mtslink event '{hook.event}' is not a touch")
    p = Registration.model_validate(body).data  # errors read data.eventSessionId
    person_key = str(p.userId) if p.userId is not None else (p.email or "")
    event_id = f"mtslink:registration:{p.eventSessionId}:{person_key}"
    raw_phone = p.phone or _field(p, "phone")
    phone = phone_user_id(raw_phone)
    if not p.email and not phone:
        return Unmapped("no_identifier", "data.email: the participant has no email or valid phone", body, event_id)
    if p.email and "@" not in p.email:
        return Unmapped("invalid_email", f"data.email: '{p.email[:80]}' is not an email address", body, event_id)
    name = " ".join(filter(None, (p.name, p.secondName))) or None
    return build(lambda: TouchEvent(
        event_id=event_id, occurred_at=hook.occurredAt, source=Source.webinar,
        kind=TouchKind.webinar_registered, platform="mtslink",
        person=compact(email=p.email, user_id=phone, name=name, job_title=_field(p, "job_title"),
                       company=_field(p, "company"), inn=_field(p, "inn"), stated_role=_field(p, "role")),
        content=compact(title=p.eventName, topic=p.eventName, asset_id=f"mtslink-session-{p.eventSessionId}"),
        properties=compact(event_session_id=str(p.eventSessionId), mtslink_user_id=str(p.userId or "")),
    ), body, event_id)
