"""The touch-event contract: what ingest writes and grouping reads (topic bg.person-events.v1).

Two message types share one topic so that one person's touches and identity links keep
their order on one partition: TouchEvent (a marketing touch) and IdentityEvent (an
anonymous id, user id and email linked, with traits about the person and the company).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from shared.schemas.base import Email, Message, NonEmptyStr, ShortStr, UtcDatetime

SCHEMA_VERSION = 1


class Source(StrEnum):
    web = "web"
    email = "email"
    webinar = "webinar"
    form = "form"
    event = "event"


class TouchKind(StrEnum):
    page_view = "page_view"
    download = "download"
    email_delivered = "email_delivered"
    email_open = "email_open"
    email_click = "email_click"
    webinar_registered = "webinar_registered"
    webinar_attended = "webinar_attended"
    form_submitted = "form_submitted"
    event_registered = "event_registered"
    event_attended = "event_attended"
    demo_requested = "demo_requested"
    content_engaged = "content_engaged"


class Person(Message):
    """Who made the touch. At least one identifier: email, user_id or anonymous_id."""

    email: Email | None = None
    anonymous_id: ShortStr | None = None
    user_id: ShortStr | None = None
    name: NonEmptyStr | None = None
    job_title: NonEmptyStr | None = None
    company: NonEmptyStr | None = None
    # A role the person stated themselves (Zoom's role_in_purchase_process, a form field).
    stated_role: NonEmptyStr | None = None

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
    url: Annotated[str, Field(max_length=2000)] | None = None
    title: NonEmptyStr | None = None
    asset_id: ShortStr | None = None
    topic: NonEmptyStr | None = None


class Context(Message):
    ip: ShortStr | None = None
    user_agent: Annotated[str, Field(max_length=1000)] | None = None
    utm: dict[str, Annotated[str, Field(max_length=500)]] = Field(default_factory=dict)


class TouchEvent(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["touch"] = "touch"
    event_id: ShortStr
    occurred_at: UtcDatetime
    source: Source
    kind: TouchKind
    platform: ShortStr = "api"
    person: Person
    content: Content = Field(default_factory=Content)
    context: Context = Field(default_factory=Context)
    properties: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return self.person.key()


class CompanyTraits(Message):
    name: NonEmptyStr | None = None
    domain: ShortStr | None = None
    group_id: ShortStr | None = None


class IdentityEvent(Message):
    """Links identifiers of one person (Segment identify/group, a form fill) and carries traits."""

    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["identity"] = "identity"
    event_id: ShortStr
    occurred_at: UtcDatetime
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
