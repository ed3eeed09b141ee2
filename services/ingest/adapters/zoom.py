"""POST /v1/sources/zoom: Zoom webinar webhooks.

https://developers.zoom.us/docs/api/webhooks/ — webinar.registration_created,
webinar.participant_joined and webinar.participant_left become touches; the registrant's
job_title, org and role_in_purchase_process travel with the person.

One attendance per person per webinar occurrence (a reconnect is the same attendance). A
join is resolved to its registrant through registrant_id, which ingest remembers from the
registration (memory.py): the registrant id, not a Redis-free identifier carried to
grouping, because grouping stitches people by email and Segment ids, and a registrant id is
only meaningful within one webinar. Each leave gives the session's duration (join to leave).

endpoint.url_validation is answered by the API (see url_validation_response); signatures are
checked there too (x-zm-signature).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.ingest.adapters.batch import each_item
from services.ingest.adapters.results import Ignored, MapResult, Unmapped, build, compact, from_unix
from shared.schemas.touch import Source, TouchEvent, TouchKind

URL_VALIDATION = "endpoint.url_validation"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Registrant(_Open):
    id: str | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    org: str | None = None
    role_in_purchase_process: str | None = None
    create_time: AwareDatetime | None = None


class Participant(_Open):
    id: str | None = None
    user_name: str | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    registrant_id: str | None = None
    participant_uuid: str | None = None
    join_time: AwareDatetime | None = None
    leave_time: AwareDatetime | None = None


class WebinarObject(_Open):
    id: Annotated[str, Field(min_length=1)] | int
    uuid: str | None = None
    topic: str | None = None
    registrant: Registrant | None = None
    participant: Participant | None = None


class WebinarPayload(_Open):
    object: WebinarObject


class ZoomWebhook(_Open):
    event: Annotated[str, Field(min_length=1, max_length=100)]
    event_ts: Annotated[int, Field(ge=0)]
    payload: dict[str, Any]


class WebinarWebhook(ZoomWebhook):
    payload: WebinarPayload  # type: ignore[assignment]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """x-zm-signature: v0=HMAC-SHA256(secret, 'v0:{x-zm-request-timestamp}:{raw body}')."""
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def url_validation_response(secret: str, plain_token: str) -> dict[str, str]:
    encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}


def _webinar_content(obj: WebinarObject) -> dict:
    return compact(title=obj.topic, topic=obj.topic, asset_id=f"zoom-webinar-{obj.id}")


@dataclass(frozen=True)
class Known:
    """What ingest remembers from earlier webhooks (services/ingest/memory.py), by lookups() keys.

    registrants: registrant_key -> the registrant as registered (email, names, title, org).
    joined_at: session_key -> unix seconds of the person's latest join to that occurrence.
    """

    registrants: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    joined_at: Mapping[str, float] = field(default_factory=dict)


def registrant_key(webinar_id: str | int, registrant_id: str) -> str:
    # Registrant ids are issued per webinar (all its occurrences share them).
    return f"{webinar_id}:{registrant_id}"


def _occurrence(obj: WebinarObject) -> str:
    # uuid names one occurrence of a (recurring) webinar; id the webinar.
    return str(obj.uuid or obj.id)


def _registrant(r: Registrant) -> dict[str, Any]:
    name = " ".join(filter(None, (r.first_name, r.last_name))) or None
    return compact(email=r.email, name=name, job_title=r.job_title, company=r.org,
                   stated_role=r.role_in_purchase_process)


def _map_registration(hook: ZoomWebhook, obj: WebinarObject, raw: dict, known: Known) -> MapResult:
    r = obj.registrant
    if r is None or not r.email:
        return Unmapped("no_identifier", "payload.object.registrant.email: the registrant has no email", raw)
    event_id = f"zoom:registration:{obj.uuid or obj.id}:{r.id or r.email}"
    return build(lambda: TouchEvent(
        event_id=event_id,
        occurred_at=r.create_time or from_unix(hook.event_ts / 1000),
        source=Source.webinar, kind=TouchKind.webinar_registered, platform="zoom",
        person=_registrant(r),
        content=_webinar_content(obj),
        properties=compact(webinar_id=str(obj.id)),
    ), raw, event_id)


def _attendee(obj: WebinarObject, known: Known) -> tuple[str | None, dict[str, Any]]:
    """(the person's key within the occurrence, the person) for a join or a leave.

    The registrant, when known, is who attended: a join may come with an empty email, or with
    an email whose local part Zoom or the client hashed, at the real domain (issue 13). The
    key is the registrant id, else the email, else Zoom's participant uuid, so that a
    reconnect is the same person.
    """
    p = obj.participant
    registered = known.registrants.get(registrant_key(obj.id, p.registrant_id)) if p.registrant_id else None
    person = {**compact(email=p.email or None, name=p.user_name), **(registered or {})}
    key = p.registrant_id or person.get("email") or p.participant_uuid
    return (str(key) if key else None), person


def _mapped_attendee(obj: WebinarObject, raw: dict, known: Known) -> tuple[str, dict[str, Any]] | Unmapped:
    """_attendee of a join or a leave to map; Unmapped (no_identifier) when the participant is
    missing or has no email, even through its registrant (the key is then never None)."""
    p = obj.participant
    if p is None:
        return Unmapped("no_identifier", "payload.object.participant: missing", raw)
    key, person = _attendee(obj, known)
    if key is None or not person.get("email"):
        return Unmapped("no_identifier", "payload.object.participant.email: empty, and no known registrant "
                        f"for registrant_id {p.registrant_id!r}", raw)
    return key, person


def session_key(obj: WebinarObject, person_key: str) -> str:
    return f"{_occurrence(obj)}:{person_key}"


def _map_join(hook: ZoomWebhook, obj: WebinarObject, raw: dict, known: Known) -> MapResult:
    if isinstance(found := _mapped_attendee(obj, raw, known), Unmapped):
        return found
    key, person = found
    p = obj.participant
    joined = p.join_time or from_unix(hook.event_ts / 1000)
    # One attendance per person per occurrence: a reconnect has the same id, so it is a duplicate.
    event_id = f"zoom:attended:{session_key(obj, key)}"
    return build(lambda: TouchEvent(
        event_id=event_id, occurred_at=joined,
        source=Source.webinar, kind=TouchKind.webinar_attended, platform="zoom",
        person=person, content=_webinar_content(obj),
        properties=compact(webinar_id=str(obj.id), registrant_id=p.registrant_id),
    ), raw, event_id)


def _map_leave(hook: ZoomWebhook, obj: WebinarObject, raw: dict, known: Known) -> MapResult:
    if isinstance(found := _mapped_attendee(obj, raw, known), Unmapped):
        return found
    key, person = found
    p = obj.participant
    left = p.leave_time or from_unix(hook.event_ts / 1000)
    joined = known.joined_at.get(session_key(obj, key))
    if joined is None:
        return Unmapped("unknown_session", f"payload.object.participant: no join known for {key!r} in "
                        f"occurrence {_occurrence(obj)!r}, so no duration", raw)
    seconds = max(0, int(left.timestamp() - joined))
    event_id = f"zoom:left:{session_key(obj, key)}:{int(left.timestamp())}"
    return build(lambda: TouchEvent(
        event_id=event_id, occurred_at=left,
        source=Source.webinar, kind=TouchKind.webinar_left, platform="zoom",
        person=person, content=_webinar_content(obj),
        properties=compact(webinar_id=str(obj.id), registrant_id=p.registrant_id, session_seconds=seconds,
                           joined_at=from_unix(joined).isoformat()),
    ), raw, event_id)


_MAPPERS = {
    "webinar.registration_created": _map_registration,
    "webinar.participant_joined": _map_join,
    "webinar.participant_left": _map_leave,
}


def lookups(body: Any) -> tuple[list[str], list[str]]:
    """(registrant keys, session keys) that parse() may need from memory, from a raw body.

    Session keys need the person key, which may itself come from the registrant: both
    forms (by registrant id and by email) are asked for.
    """
    try:
        hook = WebinarWebhook.model_validate(body)
    except ValidationError:
        return [], []
    obj, p = hook.payload.object, hook.payload.object.participant
    if p is None:
        return [], []
    registrants = [registrant_key(obj.id, p.registrant_id)] if p.registrant_id else []
    sessions = [session_key(obj, k) for k in (p.registrant_id, p.email, p.participant_uuid) if k]
    return registrants, sessions


def remember(body: Any, known: Known) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """(registrants, join times) this webhook teaches: a registration's registrant, a join's
    start of session. Idempotent: a retried webhook writes the same values."""
    try:
        hook = WebinarWebhook.model_validate(body)
    except ValidationError:
        return {}, {}
    obj = hook.payload.object
    if hook.event == "webinar.registration_created" and obj.registrant and obj.registrant.id:
        return {registrant_key(obj.id, obj.registrant.id): _registrant(obj.registrant)}, {}
    if hook.event == "webinar.participant_joined" and obj.participant:
        key, _ = _attendee(obj, known)
        joined = obj.participant.join_time or from_unix(hook.event_ts / 1000)
        if key:
            return {}, {session_key(obj, key): joined.timestamp()}
    return {}, {}


def parse(body: Any, known: Known | None = None) -> list[MapResult]:
    """One webhook is one item: one that does not fit is Rejected (dead-lettered), since Zoom
    stops notifying an endpoint that keeps failing (batch.py). known: see Known, lookups()."""
    memory = known or Known()

    def one(raw: Any) -> MapResult:
        mapper = _MAPPERS.get(ZoomWebhook.model_validate(raw).event)
        if mapper is None:
            return Ignored(f"zoom event '{raw['event']}' is not a touch")
        hook = WebinarWebhook.model_validate(raw)
        return mapper(hook, hook.payload.object, raw, memory)

    return each_item([body], one, field=None)
