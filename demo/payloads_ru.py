"""Builders of the Russian stack's payloads in the vendors' documented formats (see the adapters'
docstrings and tests/fixtures/payloads): Tilda forms, MTS Link webhooks and UserAPI rows,
Unisender Go events, Calltouch calls, Metrica Logs API visit rows."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from demo.payloads import Request, iso

MSK = ZoneInfo("Europe/Moscow")  # the counter's time zone in the demo (METRICA_TIMEZONE)


def tilda_form(tranid: str, at: datetime, form_name: str, email: str, name: str, job_title: str, company: str,
               url: str, asset_id: str | None = None, ym_uid: str | None = None, phone: str | None = None) -> Request:
    """One Tilda submission: the form's fields, tranid, formid, the visitor's cookies."""
    fields: dict[str, str] = {"Name": name, "Email": email, "company": company, "position": job_title,
                              "formname": form_name, "url": url, "event_time": iso(at),
                              "tranid": tranid, "formid": f"form{zlib.crc32(form_name.encode())}"}
    if asset_id:
        fields["asset_id"] = asset_id
    if phone:
        fields["Phone"] = phone
    if ym_uid:
        fields["COOKIES"] = f"_ym_uid={ym_uid}; _ym_d={int(at.timestamp())}; tildauid={int(at.timestamp())}000.1"
    return Request("tilda", fields, at)


def mtslink_registration(session_id: str, webinar: str, at: datetime, email: str, name: str, job_title: str,
                         company: str, phone: str | None = None, role: str | None = None) -> Request:
    first, _, last = name.partition(" ")
    extra = [{"label": "Компания", "value": company}, {"label": "Должность", "value": job_title}]
    if phone:
        extra.append({"label": "Телефон", "value": phone})
    if role:
        extra.append({"label": "Роль в закупке", "value": role})
    body = {"event": "participation.acceptedWebinar", "occurredAt": iso(at), "data": {
        "eventSessionId": session_id, "eventName": webinar, "userId": f"u-{email}", "name": first,
        "secondName": last, "email": email, "additionalFieldValues": extra}}
    return Request("mtslink", body, at)


def mtslink_participant(n: int, email: str, name: str, visited: bool = True) -> dict[str, Any]:
    """A row of GET /v3/eventsessions/{id}/participations."""
    first, _, last = name.partition(" ")
    return {"id": n, "name": first, "secondName": last, "email": email, "isAccepted": 1, "role": "GUEST",
            "userId": n, "registerStatus": "REGISTERED", "visited": visited, "additionalFieldValues": []}


def unisender_event(job_id: str, at: datetime, email: str, status: str, url: str | None = None,
                    **metadata: str) -> Request:
    data: dict[str, Any] = {"job_id": job_id, "metadata": metadata, "email": email, "status": status,
                            "event_time": at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                            "delivery_info": {"user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
                                              "ip": "203.0.113.10"}}
    if url:
        data["url"] = url
    body = {"auth": "", "events_by_user": [{"user_id": 456123, "project_id": "vendor", "project_name": "vendor",
                                             "events": [{"event_name": "transactional_email_status",
                                                         "event_data": data}]}]}
    return Request("unisender", body, at)


def calltouch_call(call_id: str, at: datetime, caller: str, url: str, ya_client_id: str | None = None,
                   duration: int = 240) -> Request:
    fields = {"callId": call_id, "callerphone": caller, "phonenumber": "74951234567", "duration": str(duration),
              "targetCall": "true", "callphase": "calldisconnected", "timestamp": str(int(at.timestamp())),
              "url": url, "callUrl": url, "hostname": "vendor.example", "utm_source": "yandex", "utm_medium": "cpc",
              "ctClientId": f"ct{call_id}"}
    if ya_client_id:
        fields["yaClientId"] = ya_client_id
    return Request("calltouch", fields, at)


def metrica_visit(visit_id: int, client_id: str, at: datetime, url: str) -> dict[str, str]:
    """A row of the Logs API's `visits` source (dateTime in the counter's time zone)."""
    local = at.astimezone(MSK)
    return {"ym:s:visitID": str(visit_id), "ym:s:clientID": client_id, "ym:s:date": local.date().isoformat(),
            "ym:s:dateTime": local.strftime("%Y-%m-%d %H:%M:%S"), "ym:s:startURL": url, "ym:s:pageViews": "1",
            "ym:s:goalsID": "[]", "ym:s:UTMSource": "yandex", "ym:s:UTMMedium": "cpc", "ym:s:UTMCampaign": "hr",
            "ym:s:UTMContent": "", "ym:s:UTMTerm": ""}


def session(session_id: str, name: str, starts: datetime) -> dict[str, Any]:
    """GET /v3/eventsessions/{id}."""
    return {"id": session_id, "name": name, "startsAt": iso(starts), "status": "STOP",
            "endsAt": iso(starts + timedelta(hours=1))}
