"""POST /v1/sources/roistat?key=...: Roistat call-tracking webhooks.

Roistat posts a JSON object when it dials a call (and again after it): `id` (the call,
our dedupe id), `caller` (the subscriber's number, without "+"), `callee`, `visit_id`
(Roistat's visit), `google_client_id`, `date` ("2019-02-19 00:00:00", in the project's time
zone: INGEST_ROISTAT_TIMEZONE), `landing_page`, `domain`, `referrer`, `utm_*`, `marker`.
Roistat does not sign; the secret is the `key` in the webhook URL. The caller's number is the
person (tel:+E164); the Roistat visit id is kept as an anonymous id ("roistat:<visit_id>").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from services.ingest.adapters.ids import phone_user_id
from services.ingest.adapters.results import MapResult, PayloadError, Unmapped, build, compact
from shared.schemas.touch import Source, TouchEvent, TouchKind

Str = Annotated[str, Field(max_length=2000)]


class RoistatCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Annotated[str, Field(min_length=1, max_length=200)] | int
    caller: Annotated[str, Field(max_length=100)] | int | None = None
    callee: Annotated[str, Field(max_length=100)] | int | None = None
    visit_id: Annotated[str, Field(max_length=200)] | int | None = None
    google_client_id: Str | None = None
    date: Str | None = None
    landing_page: Str | None = None
    domain: Str | None = None
    referrer: Str | None = None
    marker: Str | None = None
    utm_source: Str | None = None
    utm_medium: Str | None = None
    utm_campaign: Str | None = None
    utm_term: Str | None = None
    utm_content: Str | None = None


def _page_url(call: RoistatCall) -> str | None:
    page = call.landing_page
    if not page:
        return None
    # Roistat writes the landing page without a scheme ("test.com/new").
    return page if "://" in page else f"https://{page}"


def parse(body: Any, timezone: ZoneInfo, received_at: datetime) -> list[MapResult]:
    call = RoistatCall.model_validate(body)
    event_id = f"roistat:{call.id}"
    at = received_at
    if call.date:
        try:
            at = datetime.strptime(call.date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone)
        except ValueError:
            raise PayloadError("date", "expected 'YYYY-MM-DD HH:MM:SS'") from None
    phone = phone_user_id(call.caller)
    if phone is None:
        return [Unmapped("no_identifier", f"caller: '{str(call.caller or '')[:40]}' is not a phone number",
                         body, event_id)]
    utm = {k: v for k in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
           if (v := getattr(call, k))}
    return [build(lambda: TouchEvent(
        event_id=event_id, occurred_at=at, source=Source.phone, kind=TouchKind.call, platform="roistat",
        person=compact(user_id=phone, anonymous_id=f"roistat:{call.visit_id}" if call.visit_id else None),
        content=compact(url=_page_url(call)),
        context=compact(utm=utm),
        properties=compact(visit_id=str(call.visit_id or ""), google_client_id=call.google_client_id,
                           marker=call.marker, callee=str(call.callee or "")),
    ), body, event_id)]
