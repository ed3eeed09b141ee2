"""Which platform events are a person's opt-out (services/ingest/privacy.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from services.ingest.privacy import sendgrid_opt_outs, unisender_opt_outs
from shared.privacy.settings import PrivacySettings

SETTINGS = PrivacySettings()


def test_sendgrid_unsubscribes_and_spam_reports_are_opt_outs_dated_by_their_timestamp():
    body = [
        {"email": "o.petrova@romashka.ru", "timestamp": 1764061300, "event": "group_unsubscribe", "asm_group_id": 42},
        {"email": "s.volkov@romashka.ru", "timestamp": 1764061400, "event": "spamreport"},
        {"email": "e.sokolova@romashka.ru", "timestamp": 1764061200, "event": "click"},
        {"email": "not-an-email", "timestamp": 1764061500, "event": "unsubscribe"},
        {"email": "i.mikhailov@romashka.ru", "timestamp": "soon", "event": "unsubscribe"},
        "not an object",
    ]
    assert sendgrid_opt_outs(body, SETTINGS.sendgrid_suppress_events) == [
        ("o.petrova@romashka.ru", "group_unsubscribe", datetime.fromtimestamp(1764061300, UTC)),
        ("s.volkov@romashka.ru", "spamreport", datetime.fromtimestamp(1764061400, UTC)),
        ("i.mikhailov@romashka.ru", "unsubscribe", None),  # no usable time: suppressed as of now
    ]
    assert sendgrid_opt_outs({"event": "unsubscribe"}, SETTINGS.sendgrid_suppress_events) == []


def test_unisender_unsubscribed_and_spam_statuses_are_opt_outs():
    def status(email: str, value: str, at: str = "2026-10-01 09:21:00") -> dict:
        return {"event_name": "transactional_email_status",
                "event_data": {"job_id": "1a", "email": email, "status": value, "event_time": at}}

    body = {"auth": "x", "events_by_user": [{"events": [
        status("o.petrova@romashka.ru", "unsubscribed"), status("s.volkov@romashka.ru", "spam", "later"),
        status("e.sokolova@romashka.ru", "clicked"), {"event_name": "transactional_spam_block"}]}, "junk"]}
    assert unisender_opt_outs(body, SETTINGS.unisender_suppress_statuses) == [
        ("o.petrova@romashka.ru", "unsubscribed", datetime(2026, 10, 1, 9, 21, tzinfo=UTC)),
        ("s.volkov@romashka.ru", "spam", None),
    ]
    assert unisender_opt_outs([], SETTINGS.unisender_suppress_statuses) == []


def test_suppression_applies_to_the_configured_sources_only():
    assert SETTINGS.suppresses("zoom")
    only = PrivacySettings(suppress_sources=["sendgrid", "segment"])
    assert only.suppresses("sendgrid") and not only.suppresses("zoom")
