"""Adapters of the Russian stack on the vendors' documented shapes (tests/fixtures/payloads)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.ingest.adapters import calltouch, mtslink, roistat, tilda, unisender
from services.ingest.adapters.ids import metrica_anonymous_id, phone_user_id, ym_uid_from_cookies
from services.ingest.adapters.results import Ignored, PayloadError, Rejected, Unmapped
from shared.schemas.touch import TouchEvent, TouchKind
from tests.support.payloads import load

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected"), [
    ("+7 (916) 555-01-23", "tel:+79165550123"),
    ("8 916 555-01-23", "tel:+79165550123"),
    ("79165550123", "tel:+79165550123"),  # call tracking drops the plus
    ("9165550123", "tel:+79165550123"),
    ("12125096995", "tel:+12125096995"),
    ("123", None), ("не телефон", None), ("", None), (None, None),
])
def test_phone_numbers_normalise_to_one_identifier(raw, expected):
    assert phone_user_id(raw) == expected


def test_metrica_client_id_becomes_an_anonymous_id():
    assert metrica_anonymous_id("1727770000123456789") == "ym:1727770000123456789"
    assert metrica_anonymous_id(1727770000123456789) == "ym:1727770000123456789"
    assert metrica_anonymous_id("0") is None and metrica_anonymous_id("abc") is None
    assert ym_uid_from_cookies("_ym_uid=1727770000123456789; _ym_d=1727770000") == "1727770000123456789"
    assert ym_uid_from_cookies('broken"cookie; _ym_uid=42') == "42"


def test_tilda_form_is_a_download_of_the_person_with_clientid_and_phone():
    [touch] = tilda.parse(load("tilda_form.json"), NOW)
    assert isinstance(touch, TouchEvent)
    assert touch.event_id == "tilda:3617283:5001001" and touch.occurred_at == NOW
    assert touch.kind == TouchKind.download
    p = touch.person
    assert (p.email, p.anonymous_id, p.user_id) == (
        "e.sokolova@hr.romashka.ru", "ym:1727770000123456789", "tel:+79165550123")
    assert (p.name, p.job_title, p.company) == ("Елена Соколова", "HR-менеджер", "ООО «Красная ромашка»")
    assert touch.content.asset_id == "hr-leave-automation-brochure"
    assert touch.context.utm == {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "hr_system"}


def test_tilda_handshake_event_time_and_faults():
    assert tilda.is_test({"test": "test"})
    fields = load("tilda_form.json")
    [touch] = tilda.parse({**fields, "event_time": "2026-10-01T12:00:00+03:00"}, NOW)
    assert touch.occurred_at == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    with pytest.raises(PayloadError) as exc:
        tilda.parse({k: v for k, v in fields.items() if k != "tranid"}, NOW)
    assert exc.value.field == "tranid"
    anonymous = {k: v for k, v in fields.items() if k not in ("Email", "COOKIES")} | {"Phone": "12"}
    [dead] = tilda.parse(anonymous, NOW)
    assert isinstance(dead, Unmapped) and dead.reason == "no_identifier" and "Phone" in dead.detail


@pytest.mark.parametrize(("name", "kind"), [
    ("Запросить демо", TouchKind.demo_requested), ("Регистрация на вебинар", TouchKind.webinar_registered),
    ("Регистрация на конференцию HR Tech Forum", TouchKind.event_registered),
    ("Скачать кейс", TouchKind.download), ("Обратная связь", TouchKind.form_submitted),
    (None, TouchKind.form_submitted),
])
def test_tilda_form_name_tells_the_touch(name, kind):
    assert tilda.form_kind(name)[0] == kind


def test_mtslink_registration_carries_the_additional_fields():
    [touch] = mtslink.parse(load("mtslink_registration.json"))
    assert touch.kind == TouchKind.webinar_registered and touch.platform == "mtslink"
    assert touch.event_id == "mtslink:registration:8822001:99001"
    assert touch.occurred_at == datetime(2026, 10, 5, 6, 0, tzinfo=UTC)
    p = touch.person
    assert (p.email, p.user_id, p.name, p.job_title, p.company) == (
        "s.volkov@romashka.ru", "tel:+79165550234", "Сергей Волков", "IT-директор", "ООО «Красная ромашка»")
    assert touch.content.topic == "Интеграция HR-системы с 1С и ИТ-ландшафтом"


def test_mtslink_other_events_ignored_and_signature():
    body = {"event": "eventSession.created", "occurredAt": "2026-10-05T09:00:00Z", "data": {}}
    assert isinstance(mtslink.parse(body)[0], Ignored)
    [rejected] = mtslink.parse({"event": "participation.acceptedWebinar", "occurredAt": "2026-10-05T09:00:00Z",
                                "data": {"email": "a@b.ru"}})
    assert isinstance(rejected, Rejected) and rejected.errors[0]["field"] == "data.eventSessionId"
    # The HMAC-SHA256 test vector of RFC 2104's well-known example (key "key").
    assert mtslink.signature("key", b"The quick brown fox jumps over the lazy dog") == \
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"


def _signed(body: dict, api_key: str) -> bytes:
    """Unisender Go's auth: MD5 of the body serialised with the API key in the auth field."""
    with_key = json.dumps({**body, "auth": api_key}, ensure_ascii=False).encode()
    digest = hashlib.md5(with_key).hexdigest()
    return with_key.replace(f'"{api_key}"'.encode(), f'"{digest}"'.encode(), 1)


def test_unisender_auth_is_checked_on_the_raw_bytes():
    raw = _signed(load("unisender_events.json"), "key-1")
    presented = json.loads(raw)["auth"]
    assert unisender.verify_auth(raw, presented, ["other", "key-1"])
    assert not unisender.verify_auth(raw, presented, ["other"])
    tampered = raw.replace("Ольга".encode(), b"Olga")
    assert not unisender.verify_auth(tampered, presented, ["key-1"])


def test_unisender_items_stand_alone():
    results = unisender.parse(load("unisender_events.json"), max_batch=100)
    opened, clicked, bad, bounce, block = results
    assert (opened.kind, clicked.kind) == (TouchKind.email_open, TouchKind.email_click)
    assert opened.occurred_at == datetime(2026, 10, 8, 9, 0, tzinfo=UTC)
    assert opened.person.job_title == "Финансовый директор" and clicked.content.asset_id == "hr-roi-case-study"
    assert opened.event_id != clicked.event_id
    assert isinstance(bad, Unmapped) and bad.reason == "invalid_email"
    assert isinstance(bounce, Ignored) and "soft_bounced" in bounce.reason
    assert isinstance(block, Ignored)
    # The same status of the same email at the same time is the same event (a retried webhook).
    assert unisender.parse(load("unisender_events.json"), 100)[0].event_id == opened.event_id


def test_calltouch_call_links_phone_and_clientid():
    [touch] = calltouch.parse(load("calltouch_call.json"), NOW)
    assert touch.kind == TouchKind.call and touch.source == "phone" and touch.event_id == "calltouch:552200101"
    assert touch.occurred_at == datetime(2026, 10, 8, 9, 0, tzinfo=UTC)
    assert (touch.person.user_id, touch.person.anonymous_id) == ("tel:+79165550234", "ym:1727770000987654321")
    assert touch.properties == {"duration_seconds": 184, "target_call": True, "ct_client_id": "7788990011",
                                "call_phase": "calldisconnected"}
    assert touch.content.url == "https://vendor.example/solutions/hr/integrations/api"
    with pytest.raises(PayloadError):
        calltouch.parse({**load("calltouch_call.json"), "duration": "три минуты"}, NOW)
    [dead] = calltouch.parse({"callId": "1", "callerphone": "unknown"}, NOW)
    assert isinstance(dead, Unmapped) and dead.reason == "no_identifier"


def test_roistat_call_in_the_projects_time_zone():
    [touch] = roistat.parse(load("roistat_call.json"), ZoneInfo("Europe/Moscow"), NOW)
    assert touch.event_id == "roistat:313" and touch.kind == TouchKind.call
    assert touch.occurred_at == datetime(2026, 10, 9, 9, 30, tzinfo=UTC)
    assert (touch.person.user_id, touch.person.anonymous_id) == ("tel:+79165550345", "roistat:123456")
    assert touch.content.url == "https://vendor.example/solutions/hr/roi-case-study"
    assert touch.context.utm == {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "hr_system"}
    with pytest.raises(PayloadError):
        roistat.parse({**load("roistat_call.json"), "date": "вчера"}, ZoneInfo("Europe/Moscow"), NOW)


def test_an_inn_field_of_a_tilda_form_or_an_mts_link_registration_is_the_company_inn():
    form = load("tilda_form.json")
    [touch] = tilda.parse({**form, "ИНН": " 7707083893 "}, NOW)
    assert touch.person.inn == "7707083893"
    body = load("mtslink_registration.json")
    fields = body["data"]["additionalFieldValues"] + [{"label": "ИНН организации", "value": "7707083893"}]
    [touch] = mtslink.parse({**body, "data": {**body["data"], "additionalFieldValues": fields}})
    assert touch.person.inn == "7707083893"
