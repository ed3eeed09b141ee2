"""POST /v1/sources/zoom: Zoom webinar webhooks.

https://developers.zoom.us/docs/api/webhooks/ — webinar.registration_created and
webinar.participant_joined become touches; the registrant's job_title, org and
role_in_purchase_process travel with the person. endpoint.url_validation is answered by the
API (see url_validation_response); signatures are checked there too (x-zm-signature).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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


def _map_registration(hook: ZoomWebhook, obj: WebinarObject, raw: dict) -> MapResult:
    r = obj.registrant
    if r is None or not r.email:
        return Unmapped("no_identifier", "payload.object.registrant.email: the registrant has no email", raw)
    event_id = f"zoom:registration:{obj.uuid or obj.id}:{r.id or r.email}"
    name = " ".join(filter(None, (r.first_name, r.last_name))) or None
    return build(lambda: TouchEvent(
        event_id=event_id,
        occurred_at=r.create_time or from_unix(hook.event_ts / 1000),
        source=Source.webinar, kind=TouchKind.webinar_registered, platform="zoom",
        person=compact(email=r.email, name=name, job_title=r.job_title, company=r.org,
                                stated_role=r.role_in_purchase_process),
        content=_webinar_content(obj),
        properties=compact(webinar_id=str(obj.id)),
    ), raw, event_id)


def _map_join(hook: ZoomWebhook, obj: WebinarObject, raw: dict) -> MapResult:
    p = obj.participant
    if p is None or not p.email:
        return Unmapped("no_identifier", "payload.object.participant.email: the participant has no email", raw)
    joined = p.join_time or from_unix(hook.event_ts / 1000)
    event_id = f"zoom:joined:{obj.uuid or obj.id}:{p.participant_uuid or p.email}:{int(joined.timestamp())}"
    return build(lambda: TouchEvent(
        event_id=event_id, occurred_at=joined,
        source=Source.webinar, kind=TouchKind.webinar_attended, platform="zoom",
        person=compact(email=p.email, name=p.user_name),
        content=_webinar_content(obj),
        properties=compact(webinar_id=str(obj.id)),
    ), raw, event_id)


_MAPPERS = {
    "webinar.registration_created": _map_registration,
    "webinar.participant_joined": _map_join,
}


def _one(body: Any) -> MapResult:
    mapper = _MAPPERS.get(ZoomWebhook.model_validate(body).event)
    if mapper is None:
        return Ignored(f"zoom event '{body['event']}' is not a touch")
    hook = WebinarWebhook.model_validate(body)
    return mapper(hook, hook.payload.object, body)


def parse(body: Any) -> list[MapResult]:
    """One webhook is one item: one that does not fit is Rejected (dead-lettered), since Zoom
    stops notifying an endpoint that keeps failing (batch.py)."""
    return each_item([body], _one, field=None)
