"""POST /v1/sources/segment: Segment-spec page, track, identify and group calls, single or batch.

https://segment.com/docs/connections/spec/ — messageId is the dedupe id; anonymousId and
userId are stitched to the email by identify (grouping does the stitching; ingest keeps
the ids and keys every call by the anonymous id first, so a session stays in order).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator

from services.ingest.adapters.batch import each_item
from services.ingest.adapters.results import MapResult, build, check_batch_size, compact
from services.ingest.timing import EventTime, segment_time
from shared.schemas.touch import IdentityEvent, Source, TouchEvent, TouchKind


def _empty_is_none(value: Any) -> Any:
    # RudderStack and some Segment libraries send "" for "no user id" (anonymous visitors).
    return None if isinstance(value, str) and not value.strip() else value


Id = Annotated[str, Field(min_length=1, max_length=200)] | Annotated[int, Field(ge=0)]
OptionalId = Annotated[Id | None, BeforeValidator(_empty_is_none)]
# Segment's timestamps are ISO 8601; one without an offset is UTC (marked as assumed, timing.py).
Time = Annotated[datetime | None, BeforeValidator(_empty_is_none)]


class _Call(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    messageId: Annotated[str, Field(min_length=1, max_length=200)]
    anonymousId: OptionalId = None
    userId: OptionalId = None
    timestamp: Time = None
    originalTimestamp: Time = None
    receivedAt: Time = None
    sentAt: Time = None
    context: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _identified(self):
        if self.anonymousId is None and self.userId is None:
            raise ValueError("a Segment call needs anonymousId or userId")
        return self

    def event_time(self, received_at: datetime) -> EventTime:
        """Segment's corrected time (timing.segment_time); received_at = ingest's clock."""
        return segment_time(self.timestamp, self.originalTimestamp, self.sentAt, self.receivedAt, received_at)


class PageCall(_Call):
    type: Literal["page", "screen"]
    name: str | None = None


class TrackCall(_Call):
    type: Literal["track"]
    event: Annotated[str, Field(min_length=1, max_length=200)]


class IdentifyCall(_Call):
    type: Literal["identify"]


class GroupCall(_Call):
    type: Literal["group"]
    groupId: Id


SegmentCall = Annotated[PageCall | TrackCall | IdentifyCall | GroupCall, Field(discriminator="type")]


class SegmentBatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    batch: Annotated[list[SegmentCall], Field(min_length=1)]


# Track event names (Segment's B2B spec and common custom names) -> touch kind and source.
_TRACK_RULES: tuple[tuple[re.Pattern[str], TouchKind, Source], ...] = tuple(
    (re.compile(p, re.I), k, s) for p, k, s in (
        (r"webinar.*(attend|join)", TouchKind.webinar_attended, Source.webinar),
        (r"webinar.*regist", TouchKind.webinar_registered, Source.webinar),
        (r"(event|conference).*(attend|check)", TouchKind.event_attended, Source.event),
        (r"(event|conference).*regist", TouchKind.event_registered, Source.event),
        (r"demo", TouchKind.demo_requested, Source.form),
        (r"form|sign.?up|contact", TouchKind.form_submitted, Source.form),
        (r"download|brochure|whitepaper|case.?study|ebook", TouchKind.download, Source.web),
        (r"email.*click", TouchKind.email_click, Source.email),
        (r"email.*open", TouchKind.email_open, Source.email),
    )
)


def track_kind(event_name: str) -> tuple[TouchKind, Source]:
    for pattern, kind, source in _TRACK_RULES:
        if pattern.search(event_name):
            return kind, source
    return TouchKind.content_engaged, Source.web


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _obj(value: Any) -> dict[str, Any]:
    """A nested object of the spec (context.traits, context.page, context.campaign); one of
    another shape is left out rather than failing the call."""
    return value if isinstance(value, dict) else {}


def _company(value: Any) -> str | None:
    if isinstance(value, dict):
        return _str(value.get("name"))
    return _str(value)


def _person(call: _Call) -> dict:
    traits = {**_obj(call.context.get("traits")), **call.traits}
    name = traits.get("name") or " ".join(filter(None, (_str(traits.get("firstName")), _str(traits.get("lastName")))))
    return compact(
        email=_str(traits.get("email") or call.properties.get("email")),
        anonymous_id=_str(call.anonymousId),
        user_id=_str(call.userId),
        name=_str(name),
        job_title=_str(traits.get("title") or traits.get("jobTitle") or traits.get("job_title")),
        company=_company(traits.get("company")),
        stated_role=_str(traits.get("role_in_purchase_process") or traits.get("buyingRole")),
    )


def _context(call: _Call) -> dict:
    campaign = _obj(call.context.get("campaign"))
    utm = {f"utm_{k}": str(v) for k, v in campaign.items() if isinstance(v, (str, int))}
    return compact(ip=_str(call.context.get("ip")), user_agent=_str(call.context.get("userAgent")), utm=utm)


def _content(call: _Call, title: str | None) -> dict:
    props, page = call.properties, _obj(call.context.get("page"))
    return compact(
        url=_str(props.get("url") or page.get("url")),
        title=_str(props.get("title") or title or page.get("title")),
        asset_id=_str(props.get("asset_id") or props.get("assetId") or props.get("content_id")),
        topic=_str(props.get("topic") or props.get("category")),
    )


def _map(call: _Call, received_at: datetime) -> MapResult:
    event_id = f"segment:{call.messageId}"
    common = dict(event_id=event_id, platform="segment", **call.event_time(received_at).fields())
    if isinstance(call, PageCall):
        return build(lambda: TouchEvent(**common, source=Source.web, kind=TouchKind.page_view,
                                        person=_person(call), content=_content(call, call.name),
                                        context=_context(call)), call.model_dump(mode="json"), event_id)
    if isinstance(call, TrackCall):
        kind, source = track_kind(call.event)
        return build(lambda: TouchEvent(**common, source=source, kind=kind, person=_person(call),
                                        content=_content(call, call.event), context=_context(call),
                                        properties={"event": call.event}), call.model_dump(mode="json"), event_id)
    if isinstance(call, GroupCall):
        company = compact(
            name=_str(call.traits.get("name")),
            # domain or website in any URL or host form: the schema keeps the host.
            domain=_str(call.traits.get("domain") or call.traits.get("website")),
            group_id=_str(call.groupId),
        )
        return build(lambda: IdentityEvent(**common, person=_person(call), company=company),
                     call.model_dump(mode="json"), event_id)
    return build(lambda: IdentityEvent(**common, person=_person(call)), call.model_dump(mode="json"), event_id)


_call: TypeAdapter[_Call] = TypeAdapter(SegmentCall)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    batch: Annotated[list[Any], Field(min_length=1)]
    sentAt: Annotated[str, Field(max_length=100)] | None = None


def parse(body: Any, received_at: datetime, max_batch: int) -> list[MapResult]:
    """One call, or {"batch": [...]} whose calls stand alone (batch.each_item)."""
    def one(raw: Any) -> MapResult:
        return _map(_call.validate_python(raw), received_at)

    if isinstance(body, dict) and "batch" in body:
        envelope = _Envelope.model_validate(body)
        check_batch_size("batch", len(envelope.batch), max_batch)
        calls = envelope.batch
        if envelope.sentAt is not None:
            # Libraries stamp sentAt once on the batch: it is every call's sending clock.
            calls = [{"sentAt": envelope.sentAt, **c} if isinstance(c, dict) else c for c in calls]
        return each_item(calls, one, field="batch", id_field="messageId", id_prefix="segment:")
    return [one(body)]
