"""MTS Link webinar attendance, pulled from UserAPI v3 (attendance is not a webhook).

For each event session: GET /v3/eventsessions/{id} (its name and start) and
GET /v3/eventsessions/{id}/participations?page&perPage (documented at
https://help.mts-link.ru/article/19666: id, name, secondName, email, userId, registerDate,
additionalFieldValues [{label, value}], visited). Every participant with `visited` becomes a
webinar_attended touch at the session's start, with the traits of the registration form
(organisation, position, phone) as the webhook's registration does. Event ids are
deterministic (session and participation), so pulling a session again writes nothing new.

    python -m services.importers mtslink SESSION_ID [SESSION_ID ...]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.importers.ingest_client import IngestClient, Totals
from services.ingest.adapters.ids import phone_user_id
from services.ingest.adapters.mtslink import FieldValue
from shared.schemas.touch import Source, TouchEvent, TouchKind

PER_PAGE = 250  # one of the documented values: 10, 50, 100, 250, 500

_LABELS = {
    "company": ("компания", "организация", "company", "organization"),
    "job_title": ("должность", "position", "job title", "job_title"),
    "phone": ("телефон", "phone", "номер телефона"),
}


class MtsLinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MTSLINK_", extra="ignore")

    api_url: str = "https://userapi.mts-link.ru"
    token: str = ""  # x-auth-token (Business -> API/Webhooks)
    ingest_url: str = Field("http://127.0.0.1:8081", validation_alias="BG_INGEST_URL")
    ingest_api_key: str = "dev-api-key"


class Session(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | str
    name: str | None = None
    startsAt: AwareDatetime


class Participant(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | str
    name: str | None = None
    secondName: str | None = None
    email: str | None = None
    phone: str | None = None
    organization: str | None = None
    position: str | None = None
    visited: bool | int = False
    additionalFieldValues: list[FieldValue] = Field(default_factory=list)

    def field(self, what: str) -> str | None:
        for fv in self.additionalFieldValues:
            if fv.label and fv.value and fv.label.strip().lower() in _LABELS[what]:
                return fv.value.strip()
        return None


class UserApi:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/v3", timeout=timeout, headers={"x-auth-token": token})

    def session(self, session_id: str) -> dict[str, Any]:
        return self.http.get(f"/eventsessions/{session_id}").raise_for_status().json()

    def participations(self, session_id: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            batch = self.http.get(f"/eventsessions/{session_id}/participations",
                                  params={"page": page, "perPage": PER_PAGE}).raise_for_status().json()
            yield from batch
            if len(batch) < PER_PAGE:
                return
            page += 1

    def close(self) -> None:
        self.http.close()


def attended(session: Session, raw: dict[str, Any]) -> TouchEvent | None:
    """A participant who visited -> webinar_attended; None if they did not or cannot be named."""
    try:
        p = Participant.model_validate(raw)
    except ValidationError:
        return None
    if not p.visited:
        return None
    phone = phone_user_id(p.phone or p.field("phone"))
    email = p.email if p.email and "@" in p.email else None
    if not (email or phone):
        return None
    person = {k: v for k, v in {
        "email": email, "user_id": phone, "name": " ".join(filter(None, (p.name, p.secondName))) or None,
        "job_title": p.position or p.field("job_title"), "company": p.organization or p.field("company"),
    }.items() if v}
    content = {k: v for k, v in {"title": session.name, "topic": session.name,
                                 "asset_id": f"mtslink-session-{session.id}"}.items() if v}
    return TouchEvent(event_id=f"mtslink:attended:{session.id}:{p.id}", occurred_at=session.startsAt,
                      source=Source.webinar, kind=TouchKind.webinar_attended, platform="mtslink",
                      person=person, content=content, properties={"event_session_id": str(session.id)})


def pull(api: UserApi, ingest: IngestClient, session_ids: list[str]) -> tuple[int, Totals]:
    """Send the attendance of each session to ingest. Returns (participants seen, ingest totals)."""
    totals, seen = Totals(), 0
    for session_id in session_ids:
        session = Session.model_validate(api.session(session_id))
        touches: list[TouchEvent] = []
        for raw in api.participations(session_id):
            seen += 1
            if (touch := attended(session, raw)) is not None:
                touches.append(touch)
        ingest.send(touches, totals)
    return seen, totals


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sessions", nargs="+", help="MTS Link event session ids")
    args = parser.parse_args(argv)
    settings = MtsLinkSettings()
    api, ingest = UserApi(settings.api_url, settings.token), IngestClient(settings.ingest_url, settings.ingest_api_key)
    try:
        seen, totals = pull(api, ingest, args.sessions)
    finally:
        api.close()
        ingest.close()
    print(f"MTS Link: {seen} participants, {totals.accepted} attendances new, {totals.duplicates} already known")
    return 0


