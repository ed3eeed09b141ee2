"""The touch-event contract: what ingest writes and grouping reads (topic bg.person-events.v1).

Two message types share one topic so that one person's touches and identity links keep
their order on one partition: TouchEvent (a marketing touch) and IdentityEvent (an
anonymous id, user id and email linked, with traits about the person and the company).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, StringConstraints, Tag, model_validator

from shared.hosts import host_of
from shared.schemas.base import (
    Email,
    Hostname,
    Identifier,
    JsonObject,
    Message,
    NonEmptyStr,
    ShortStr,
    Text,
    UtcDatetime,
)

SCHEMA_VERSION = 1


class Source(StrEnum):
    web = "web"
    email = "email"
    webinar = "webinar"
    form = "form"
    event = "event"
    phone = "phone"  # call tracking (Calltouch, Roistat)
    sales = "sales"  # a salesperson's call or meeting with the person (CRM logs, offline import)


class TouchKind(StrEnum):
    page_view = "page_view"
    download = "download"
    email_delivered = "email_delivered"
    email_open = "email_open"
    email_click = "email_click"
    webinar_registered = "webinar_registered"
    webinar_attended = "webinar_attended"
    # The end of one session of an attendance (properties.session_seconds): how long, not
    # another attendance.
    webinar_left = "webinar_left"
    form_submitted = "form_submitted"
    event_registered = "event_registered"
    event_attended = "event_attended"
    demo_requested = "demo_requested"
    content_engaged = "content_engaged"
    call = "call"  # an inbound call to a tracked number, or a call logged in a CRM
    meeting = "meeting"  # a meeting with sales, logged in a CRM (offline import)


class TimeAdjustment(StrEnum):
    """What ingest did to the platform's event time (the original is kept in original_occurred_at)."""

    # The platform's time had no offset: taken as UTC (Segment's rule), value unchanged.
    assumed_utc = "assumed_utc"
    # The client's clock was off: corrected from the platform's own fields (Segment:
    # receivedAt - (sentAt - originalTimestamp)).
    skew_corrected = "skew_corrected"
    # Still ahead of ingest's clock by more than the allowed skew: set to the time ingest
    # received it, so that no event pushes a stream clock past the present.
    clamped_to_receipt = "clamped_to_receipt"


class _Timed(Message):
    """Event time and, when ingest changed or assumed something about it, what and from what."""

    occurred_at: UtcDatetime
    original_occurred_at: UtcDatetime | None = None  # the platform's value before correction
    time_adjustments: tuple[TimeAdjustment, ...] = ()


class Person(Message):
    """Who made the touch. At least one identifier: email, user_id or anonymous_id."""

    email: Email | None = None
    anonymous_id: ShortStr | None = None
    user_id: ShortStr | None = None
    name: NonEmptyStr | None = None
    job_title: NonEmptyStr | None = None
    company: NonEmptyStr | None = None
    # The company's taxpayer number (ИНН) as a form or webinar field gave it; consumers check its
    # checksum (shared/inn.py) and ignore a wrong one.
    inn: ShortStr | None = None
    # A role the person stated themselves (Zoom's role_in_purchase_process, a form field).
    stated_role: NonEmptyStr | None = None
    # Set by ingest (docs/privacy.md): the raw email, ids, name and IP address, encrypted under
    # the person's key in the vault ("v1.<token>.<base64url>"); the fields above then hold
    # pseudonyms and no name. Opened only by who holds the vault; unreadable once erased.
    sealed: Annotated[str, StringConstraints(min_length=1, max_length=8000)] | None = None

    @model_validator(mode="after")
    def _identified(self) -> Person:
        if not (self.email or self.anonymous_id or self.user_id):
            raise ValueError("person needs at least one of email, user_id, anonymous_id")
        return self

    def key(self) -> str:
        """Partition key that keeps one person's events in order.

        The anonymous id comes first: a web session's touches and the identify call that
        names it carry it, so they land on one partition and stitch in order.
        """
        if self.anonymous_id:
            return f"anon:{self.anonymous_id}"
        if self.user_id:
            return f"user:{self.user_id}"
        return f"email:{self.email}"


class Content(Message):
    url: Annotated[Identifier, Field(max_length=2000)] | None = None
    title: NonEmptyStr | None = None
    asset_id: ShortStr | None = None
    topic: NonEmptyStr | None = None


class Context(Message):
    ip: ShortStr | None = None
    user_agent: Annotated[Identifier, Field(max_length=1000)] | None = None
    utm: dict[Identifier, Annotated[Text, Field(max_length=500)]] = Field(default_factory=dict)


class TouchEvent(_Timed):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["touch"] = "touch"
    event_id: ShortStr
    source: Source
    kind: TouchKind
    platform: ShortStr = "api"
    person: Person
    content: Content = Field(default_factory=Content)
    context: Context = Field(default_factory=Context)
    # Free-form JSON; depth and text checked (shared/schemas/text.py), not its keys.
    properties: JsonObject = Field(default_factory=dict)
    # Made by a machine, not a person (a mail client's privacy proxy fetching the pixel, a
    # link scanner, a crawler): kept for the record, never counted as engagement.
    automated: bool = False
    automated_reason: ShortStr | None = None  # e.g. machine_open, bot_user_agent, link_scanner

    @model_validator(mode="after")
    def _automated_has_reason(self) -> TouchEvent:
        if self.automated != (self.automated_reason is not None):
            raise ValueError("automated and automated_reason go together")
        return self

    def key(self) -> str:
        return self.person.key()


def _host_form(value: Any) -> Any:
    return host_of(value) if isinstance(value, str) else value


class CompanyTraits(Message):
    name: NonEmptyStr | None = None
    # The company's domain or website in any URL or host form ("https://www.berkut.ru/"),
    # kept as its host; grouping reduces it to the registrable domain (issue 13).
    domain: Annotated[Hostname | None, BeforeValidator(_host_form)] = None
    group_id: ShortStr | None = None
    inn: ShortStr | None = None  # taxpayer number (ИНН), checked by consumers (shared/inn.py)


class IdentityEvent(_Timed):
    """Links identifiers of one person (Segment identify/group, a form fill) and carries traits."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["identity"] = "identity"
    event_id: ShortStr
    platform: ShortStr = "api"
    person: Person
    company: CompanyTraits | None = None

    def key(self) -> str:
        return self.person.key()


def _person_event_type(value: Any) -> str:
    # "type" may be left out of a touch: it is the common case for API clients.
    if isinstance(value, dict):
        return value.get("type", "touch")
    return getattr(value, "type", "touch")


PersonEvent = Annotated[
    Annotated[TouchEvent, Tag("touch")] | Annotated[IdentityEvent, Tag("identity")],
    Discriminator(_person_event_type),
]
