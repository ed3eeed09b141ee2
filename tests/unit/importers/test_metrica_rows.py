"""Logs API rows -> anonymous touches (pure), on the TSV shape the API downloads."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.importers.metrica_logs import FIELDS, BadRow, rows, to_touch
from services.importers.mtslink_attendance import Session, attended

MSK = ZoneInfo("Europe/Moscow")


def test_visit_row_is_a_page_view_of_the_landing_page_in_the_counters_time_zone():
    tsv = "\t".join(FIELDS["visits"]) + "\n" + "\t".join([
        "7311112222333", "1727770000123456789", "2026-10-01", "2026-10-01 12:00:00",
        "https://vendor.example/solutions/hr/overview", "4", "[101,202]", "yandex", "cpc", "hr", "", ""]) + "\n"
    [row] = list(rows(tsv))
    touch = to_touch("visits", row, MSK)
    assert touch.event_id == "ym:visit:7311112222333" and touch.person.anonymous_id == "ym:1727770000123456789"
    assert touch.occurred_at == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert touch.content.url == "https://vendor.example/solutions/hr/overview"
    assert touch.properties == {"page_views": "4", "goals": "101,202"}
    assert touch.context.utm == {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "hr"}


def test_pageview_row_and_a_row_without_clientid():
    tsv = "\t".join(FIELDS["hits"]) + "\n" + "\t".join([
        "900001", "1727770000123456789", "2026-10-01", "2026-10-01 12:05:00",
        "https://vendor.example/solutions/hr/leave-automation", "Автоматизация отпусков"]) + "\n" + "\t".join([
        "900002", "0", "2026-10-01", "2026-10-01 12:06:00", "https://vendor.example/", "Главная"]) + "\n"
    hit, anonymous = list(rows(tsv))
    touch = to_touch("hits", hit, MSK)
    assert (touch.event_id, touch.content.title) == ("ym:hit:900001", "Автоматизация отпусков")
    assert to_touch("hits", anonymous, MSK) is None
    with pytest.raises(BadRow, match="dateTime"):
        to_touch("hits", {**hit, "ym:pv:dateTime": "вчера"}, MSK)
    with pytest.raises(BadRow, match="watchID"):
        to_touch("hits", {**hit, "ym:pv:watchID": ""}, MSK)


def test_attendance_only_for_who_visited():
    session = Session(id=8822001, name="Кадровый учёт без бумаги", startsAt="2026-10-06T11:00:00+03:00")
    base = {"id": 1, "name": "Елена", "secondName": "Соколова", "email": "e.sokolova@hr.romashka.ru",
            "additionalFieldValues": [{"label": "Телефон", "value": "+7 916 555-01-23"}]}
    touch = attended(session, {**base, "visited": True})
    assert touch.kind == "webinar_attended" and touch.person.user_id == "tel:+79165550123"
    assert touch.occurred_at == datetime(2026, 10, 6, 8, 0, tzinfo=UTC)
    assert attended(session, {**base, "visited": False}) is None
    assert attended(session, {"id": 2, "visited": True, "email": "no address"}) is None
