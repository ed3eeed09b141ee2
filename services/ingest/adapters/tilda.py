"""POST /v1/sources/tilda?key=...: Tilda form webhooks (Site settings -> Forms -> Webhook).

Tilda posts one submission per request, application/x-www-form-urlencoded: the form's own
fields under the names given in the block settings (standard ones are Name, Email, Phone),
plus `tranid` (the submission id, our dedupe id) and `formid` (the form block). When the
webhook is connected Tilda sends `test=test`, answered with 200 "ok". Tilda does not sign:
the secret is the `key` in the webhook URL. With "send cookies" on, the visitor's cookies
arrive in the `COOKIES` field; `_ym_uid` there (or a hidden field of that name) is Metrica's
ClientID and ties the visitor's earlier Metrica visits to this person.

Tilda sends no event time: a hidden field `event_time` (ISO 8601), when the page sets one,
is used; otherwise the time the request was received.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from services.ingest.adapters.ids import metrica_anonymous_id, phone_user_id, ym_uid_from_cookies
from services.ingest.adapters.results import MapResult, PayloadError, Unmapped, build, compact
from shared.schemas.touch import Source, TouchEvent, TouchKind

_time: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

# Field names marketers give Tilda fields, in Russian and English (matched case-insensitively).
_ALIASES = {
    "email": ("email", "e-mail", "почта", "электронная почта"),
    "name": ("name", "имя", "фио", "full_name"),
    "phone": ("phone", "телефон", "tel"),
    "company": ("company", "компания", "организация", "organization"),
    "inn": ("inn", "инн", "инн организации", "inn_company"),
    "job_title": ("job_title", "position", "jobtitle", "должность"),
    "role": ("role", "роль", "роль в закупке"),
    "url": ("url", "page", "pageurl", "страница"),
    "asset_id": ("asset_id", "asset", "материал"),
    "ym_uid": ("_ym_uid", "ym_uid", "ym_client_id", "clientid"),
    "form_name": ("formname", "form_name", "form"),
}

# What the form is, from its name (Russian and English), first match wins.
_FORM_KINDS: tuple[tuple[re.Pattern[str], TouchKind, Source], ...] = tuple(
    (re.compile(p, re.I), k, s) for p, k, s in (
        (r"демо|demo", TouchKind.demo_requested, Source.form),
        (r"вебинар|webinar", TouchKind.webinar_registered, Source.webinar),
        (r"конференц|мероприят|форум|conference|event|forum", TouchKind.event_registered, Source.event),
        (r"скача|брошюр|кейс|whitepaper|download|brochure|case", TouchKind.download, Source.web),
    )
)


def form_kind(form_name: str | None) -> tuple[TouchKind, Source]:
    for pattern, kind, source in _FORM_KINDS:
        if form_name and pattern.search(form_name):
            return kind, source
    return TouchKind.form_submitted, Source.form


def is_test(fields: dict[str, str]) -> bool:
    """Tilda's connection check: a POST with test=test and nothing to map."""
    return fields.get("test") == "test" and "tranid" not in fields


def _pick(fields: dict[str, str], what: str) -> str | None:
    lowered = {k.strip().lower(): v for k, v in fields.items()}
    for alias in _ALIASES[what]:
        value = lowered.get(alias)
        if value is not None and value.strip():
            return value.strip()
    return None


def parse(fields: dict[str, str], received_at: datetime) -> list[MapResult]:
    """One Tilda submission -> one touch. Raises PayloadError (422) without tranid or formid."""
    for required in ("tranid", "formid"):
        if not fields.get(required):
            raise PayloadError(required, "Field required")
    event_id = f"tilda:{fields['tranid']}"
    at = received_at
    if fields.get("event_time"):
        try:
            at = _time.validate_python(fields["event_time"])
        except ValidationError:
            raise PayloadError("event_time", "not an ISO 8601 time with a zone") from None
    email = _pick(fields, "email")
    raw_phone = _pick(fields, "phone")
    phone = phone_user_id(raw_phone)
    anonymous = metrica_anonymous_id(_pick(fields, "ym_uid") or ym_uid_from_cookies(fields.get("COOKIES")))
    if not (email or phone or anonymous):
        detail = (f"Phone: '{raw_phone[:40]}' is not a phone number and the form has no email or _ym_uid"
                  if raw_phone else "the form has no email, phone or _ym_uid (Metrica ClientID)")
        return [Unmapped("no_identifier", detail, fields, event_id)]
    form_name = _pick(fields, "form_name")
    kind, source = form_kind(form_name)
    utm = {k: v for k, v in fields.items() if k.startswith("utm_") and v}
    return [build(lambda: TouchEvent(
        event_id=event_id, occurred_at=at, source=source, kind=kind, platform="tilda",
        person=compact(email=email, anonymous_id=anonymous, user_id=phone, name=_pick(fields, "name"),
                       job_title=_pick(fields, "job_title"), company=_pick(fields, "company"),
                       inn=_pick(fields, "inn"), stated_role=_pick(fields, "role")),
        content=compact(url=_pick(fields, "url"), title=form_name, asset_id=_pick(fields, "asset_id")),
        context=compact(utm=utm),
        properties=compact(formid=fields["formid"], tranid=fields["tranid"]),
    ), fields, event_id)]

