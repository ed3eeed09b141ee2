"""POST /v1/sources/calltouch?key=...: Calltouch call webhooks ("Вебхуки по лидам").

Calltouch sends the parameters chosen in its webhook settings, URL-encoded (GET or POST),
from its subnet 92.118.66.0/23, without a signature: the API checks the sender's address
against INGEST_CALLTOUCH_SUBNETS and the `key` in the URL. A call carries the caller's
number (`callerphone`), `duration` in seconds, `targetCall` (the call met the target
conditions), UTM tags, the page (`url`, `callUrl`), Calltouch's own visitor id `ctClientId`
and Metrica's ClientID `yaClientId`. The caller's number is the person (tel:+E164); the
ClientID links the caller's earlier Metrica visits to them. `callId` is the dedupe id, so a
call reported at its start and again at its end is written once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.ingest.adapters.ids import metrica_anonymous_id, phone_user_id
from services.ingest.adapters.results import MapResult, PayloadError, Unmapped, build, compact
from shared.schemas.touch import Source, TouchEvent, TouchKind

# Calltouch spells some parameters differently in webhooks and in its calls-diary API.
_NAMES = {
    "call_id": ("callId", "callid", "call_id"),
    "caller": ("callerphone", "callerNumber", "callerphonenumber"),
    "target": ("targetCall", "targetcall"),
    "timestamp": ("timestamp", "unixtime", "callTime"),
    "url": ("callUrl", "url"),
}
_TRUE = {"true", "1", "yes", "да"}


def _get(fields: dict[str, str], what: str) -> str | None:
    for name in _NAMES[what]:
        if fields.get(name):
            return fields[name].strip()
    return None


def parse(fields: dict[str, str], received_at: datetime) -> list[MapResult]:
    """One Calltouch call -> one call touch. Raises PayloadError (422) without a call id."""
    call_id = _get(fields, "call_id")
    if not call_id:
        raise PayloadError("callId", "Field required")
    event_id = f"calltouch:{call_id}"
    at = received_at
    if ts := _get(fields, "timestamp"):
        if not (ts.isascii() and ts.isdigit()) or not 0 < int(ts) < 32503680000:
            raise PayloadError("timestamp", "unix seconds expected")
        at = datetime.fromtimestamp(int(ts), UTC)
    duration = fields.get("duration", "").strip()
    if duration and not (duration.isascii() and duration.isdigit()):
        raise PayloadError("duration", "whole seconds expected")
    raw_phone = _get(fields, "caller")
    phone = phone_user_id(raw_phone)
    anonymous = metrica_anonymous_id(fields.get("yaClientId"))
    if not (phone or anonymous):
        return [Unmapped("no_identifier", f"callerphone: '{(raw_phone or '')[:40]}' is not a phone number "
                         "and the call has no yaClientId", fields, event_id)]
    utm = {k: v for k, v in fields.items() if k.startswith("utm_") and v}
    target = _get(fields, "target")
    return [build(lambda: TouchEvent(
        event_id=event_id, occurred_at=at, source=Source.phone, kind=TouchKind.call, platform="calltouch",
        person=compact(anonymous_id=anonymous, user_id=phone),
        content=compact(url=_get(fields, "url"), title=fields.get("subPoolName") or None),
        context=compact(utm=utm),
        properties=compact(
            duration_seconds=int(duration) if duration else None,
            target_call=(target.lower() in _TRUE) if target else None,
            ct_client_id=fields.get("ctClientId") or None, call_phase=fields.get("callphase") or None,
        ),
    ), fields, event_id)]
