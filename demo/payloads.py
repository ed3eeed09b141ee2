"""Builders of source-platform payloads (Segment, SendGrid, Zoom) in their documented formats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Platform = Literal["segment", "sendgrid", "zoom", "api", "tilda", "mtslink", "unisender", "calltouch", "roistat"]
PATHS: dict[Platform, str] = {
    "segment": "/v1/sources/segment", "sendgrid": "/v1/sources/sendgrid",
    "zoom": "/v1/sources/zoom", "api": "/v1/events",
    "tilda": "/v1/sources/tilda", "mtslink": "/v1/sources/mtslink", "unisender": "/v1/sources/unisender",
    "calltouch": "/v1/sources/calltouch", "roistat": "/v1/sources/roistat",
}


@dataclass(frozen=True)
class Request:
    """One POST to the ingest API; `at` orders the requests by event time."""

    platform: Platform
    body: Any
    at: datetime

    @property
    def path(self) -> str:
        return PATHS[self.platform]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _traits(email: str | None, name: str | None, title: str | None, company: str | None) -> dict:
    traits: dict[str, Any] = {}
    if email:
        traits["email"] = email
    if name:
        first, _, last = name.partition(" ")
        traits.update(firstName=first, lastName=last)
    if title:
        traits["title"] = title
    if company:
        traits["company"] = {"name": company}
    return traits


def segment_page(msg_id: str, at: datetime, url: str, title: str, anonymous_id: str | None = None,
                 user_id: str | None = None, email: str | None = None) -> Request:
    body: dict[str, Any] = {"type": "page", "messageId": msg_id, "timestamp": iso(at), "name": title,
                            "properties": {"url": url, "title": title}}
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    if user_id:
        body["userId"] = user_id
    if email:
        body["context"] = {"traits": {"email": email}}
    return Request("segment", body, at)


def segment_track(msg_id: str, at: datetime, event: str, anonymous_id: str | None = None,
                  user_id: str | None = None, email: str | None = None, **properties: Any) -> Request:
    body: dict[str, Any] = {"type": "track", "messageId": msg_id, "timestamp": iso(at), "event": event,
                            "properties": properties}
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    if user_id:
        body["userId"] = user_id
    if email:
        body["context"] = {"traits": {"email": email}}
    return Request("segment", body, at)


def segment_identify(msg_id: str, at: datetime, email: str, name: str | None = None, title: str | None = None,
                     company: str | None = None, anonymous_id: str | None = None,
                     user_id: str | None = None) -> Request:
    body: dict[str, Any] = {"type": "identify", "messageId": msg_id, "timestamp": iso(at),
                            "traits": _traits(email, name, title, company)}
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    body["userId"] = user_id or email
    return Request("segment", body, at)


def sendgrid(event_id: str, at: datetime, email: str, event: Literal["open", "click", "delivered"],
             url: str | None = None, **custom_args: str) -> Request:
    body: dict[str, Any] = {"email": email, "timestamp": int(at.timestamp()), "event": event,
                            "sg_event_id": event_id, "sg_message_id": f"msg-{event_id}", **custom_args}
    if url:
        body["url"] = url
    return Request("sendgrid", [body], at)


def zoom_registration(webinar_id: str, topic: str, at: datetime, email: str, name: str,
                      job_title: str | None = None, org: str | None = None, role: str | None = None) -> Request:
    first, _, last = name.partition(" ")
    registrant: dict[str, Any] = {"id": f"reg-{webinar_id}-{email}", "email": email,
                                  "first_name": first, "last_name": last, "create_time": iso(at)}
    for key, value in (("job_title", job_title), ("org", org), ("role_in_purchase_process", role)):
        if value:
            registrant[key] = value
    body = {"event": "webinar.registration_created", "event_ts": int(at.timestamp() * 1000),
            "payload": {"account_id": "vendor", "object": {
                "uuid": f"uuid-{webinar_id}", "id": webinar_id, "topic": topic, "type": 5,
                "registrant": registrant}}}
    return Request("zoom", body, at)


def zoom_joined(webinar_id: str, topic: str, at: datetime, email: str, name: str) -> Request:
    body = {"event": "webinar.participant_joined", "event_ts": int(at.timestamp() * 1000),
            "payload": {"account_id": "vendor", "object": {
                "uuid": f"uuid-{webinar_id}", "id": webinar_id, "topic": topic, "type": 5,
                "participant": {"user_name": name, "email": email, "join_time": iso(at),
                                "participant_uuid": f"p-{webinar_id}-{email}"}}}}
    return Request("zoom", body, at)
