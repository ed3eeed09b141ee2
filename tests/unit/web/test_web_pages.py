"""The web pages' pure parts: translations, plots, what the templates are given, access."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from starlette.requests import Request

from services.projection.models import Status
from services.projection.settings import ProjectionSettings
from services.projection.web import plots, views
from services.projection.web.access import Access, safe_next
from services.projection.web.funnel_text import FUNNEL_TEXT
from services.projection.web.i18n import LANGS, TEXT, Translator
from shared.schemas.roles import BuyingRole, Department
from shared.schemas.scoring import MemberContribution, Signal, SignalType
from shared.schemas.touch import TouchKind

pytestmark = pytest.mark.unit

WEB = Path(views.__file__).parent
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ru, en = Translator("ru"), Translator("en")


def test_every_text_the_pages_ask_for_exists_in_both_languages():
    sources = [p.read_text() for p in (*WEB.glob("templates/*.html"), *WEB.glob("*.py"))]
    used = {key for text in sources for key in re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""", text)}
    used |= {f"part.{p}" for p in views.PARTS} | {f"metrics.step.{s}" for s in ("day", "week", "month")}
    assert len(used) > 60
    assert sorted(used - TEXT.keys() - FUNNEL_TEXT.keys()) == []  # the funnel pages' own block: funnel_text.py
    assert all(entry.get(lang) for entry in (*TEXT.values(), *FUNNEL_TEXT.values()) for lang in LANGS)


@pytest.mark.parametrize(("prefix", "codes"), [
    ("role", [r.value for r in BuyingRole]), ("dept", [d.value for d in Department]),
    ("kind", [k.value for k in TouchKind]), ("signal", list(get_args(SignalType))), ("status", get_args(Status)),
])
def test_every_code_of_the_data_has_words(prefix, codes):
    assert [c for c in codes if f"{prefix}.{c}" not in TEXT] == []


def test_unknown_codes_and_languages_fall_back_rather_than_fail():
    assert ru.value("stage", "Коммерческое предложение") == "Коммерческое предложение"
    assert Translator("de").lang == "ru" and Translator(None)("nav.metrics") == "Метрики"


def test_russian_plurals_and_number_format():
    ago = {days: ru.ago(NOW - timedelta(days=days, hours=1), NOW) for days in (1, 2, 5, 11, 21, 73)}
    assert ago == {1: "1 день назад", 2: "2 дня назад", 5: "5 дней назад", 11: "11 дней назад",
                   21: "21 день назад", 73: "73 дня назад"}
    assert en.ago(NOW - timedelta(hours=3), NOW) == "3 hours ago"
    assert ru.number(81.5) == "81,5" and en.number(1234.5) == "1\u202f234.5" and ru.percent(0.68) == "68\u202f%"


def test_plots_escape_every_label():
    svg = plots.hbars([plots.Bar('<script>alert("x")</script>', 3.0)], "a & b", str)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and 'aria-label="a &amp; b"' in svg


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (11, 20), (81.5, 100)])
def test_axis_maxima_are_round(value, ceiling):
    assert plots.nice_ceiling(value) == ceiling


def test_lines_break_where_a_period_has_no_value():
    svg = plots.lines(["a", "b", "c", "d"], [plots.Series("s", "s1", [1.0, None, 2.0, 3.0])], "l", str)
    assert svg.count("<polyline") == 1 and svg.count('class="dot s1"') == 3


@pytest.mark.parametrize(("days", "step", "count"), [
    (9.5, "day", 10), (60, "week", 9), (400, "month", 14), (600, "month", 16),
])
def test_metric_periods(days, step, count):
    first = datetime(2026, 1, 1, 9, tzinfo=UTC)
    name, periods = views.buckets(first, first + timedelta(days=days))
    assert (name, len(periods)) == (step, count)
    assert periods[-1][0] <= first + timedelta(days=days) < periods[-1][1]
    assert all(a[1] == b[0] for a, b in zip(periods, periods[1:], strict=False))


def member(person_id: str, name: str, department: str, role: str, engagement: float | None) -> dict:
    return {"person_id": person_id, "name": name, "email": None, "job_title": "t", "department": department,
            "role": role, "engagement": engagement, "touches_count": 1,
            "joined_at": datetime(2026, 9, 1, tzinfo=UTC)}


def test_the_group_picture_seats_members_by_department_and_leaves_missing_roles_empty():
    detail = {
        "members": [member("c", "Иван", "executive", "decision_maker", 1.0),
                    member("a", "Елена", "hr", "initiator", 4.0), member("b", "Пётр", "hr", "influencer", None)],
        "expected_roles": ["initiator", "technical_validator", "budget_holder", "decision_maker"],
        "required_roles": ["budget_holder", "decision_maker"],
        "missing_roles": ["technical_validator", "budget_holder"],
    }
    picture = views.group_picture(detail, ru)
    assert [(d.name, [s.name for s in d.seats]) for d in picture.departments] == [
        ("HR", ["Елена", "Пётр"]), ("Руководство", ["Иван"])]
    assert [s.engagement_share for s in picture.departments[0].seats] == [1.0, 0.0]
    assert [(s.role, s.required) for s in picture.empty_seats] == [
        ("Технический эксперт", False), ("Владелец бюджета", True)]


def test_priority_rows_list_roles_in_the_order_of_the_buying_process():
    row = {"rank": 1, "opportunity_id": "romashka.ru:hr", "account_name": "Красная ромашка",
           "account_id": "romashka.ru", "solution": "hr", "tier": "A", "score": 81.5, "members_count": 4,
           "engaged_members": 4, "covered_roles": ["decision_maker", "initiator"],
           "missing_roles": ["budget_holder", "technical_validator"], "stage": "identified", "status": "formed",
           "last_activity_at": NOW - timedelta(days=2)}
    [r] = views.priority_rows([row], ru, NOW)
    assert r.url == "/web/opportunities/romashka.ru%3Ahr" and r.solution == "HR-система" and r.score == "81,5"
    assert r.covered == ["Инициатор", "Принимает решение"]
    assert r.missing == ["Технический эксперт", "Владелец бюджета"]
    assert r.roles_text == "2/4" and r.strip.count('class="cell on"') == 2 and r.activity == "2 дня назад"


def test_a_live_signal_and_a_stored_one_make_the_same_card():
    signal = Signal(signal_id="s1", signal="group_formed", opportunity_id="romashka.ru:hr",
                    account_id="romashka.ru", account_name="Красная ромашка", solution="hr",
                    occurred_at=datetime(2026, 9, 10, 9, tzinfo=UTC), score=81.5, tier="A",
                    members=(MemberContribution(person_id="p", name="Ольга Петрова", department="finance",
                                                role="budget_holder", engagement=1.0, touches=1),),
                    covered_roles=("budget_holder", "initiator"), missing_roles=())
    live = views.signal_card(signal, en)
    stored = views.signal_card({**signal.model_dump(), "members": [m.model_dump() for m in signal.members]}, en,
                               "Красная ромашка", "hr", "romashka.ru:hr")
    assert live == stored
    assert live.label == "Group formed" and live.covered == ["Initiator", "Budget holder"]
    assert live.people == ["Ольга Петрова"] and live.url == "/web/opportunities/romashka.ru%3Ahr"


def request(path: str, query: str = "", headers: dict[str, str] | None = None) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "scheme": "http",
                    "server": ("test", 80), "headers": [(k.lower().encode(), v.encode())
                                                        for k, v in (headers or {}).items()]})


def test_pages_are_open_only_while_the_development_tokens_are_accepted():
    assert Access(ProjectionSettings()).allowed(request("/web/"))
    prod = Access(ProjectionSettings(BG_API_TOKENS="secret", BG_API_WRITE_TOKENS="crm",
                                     BG_API_CORRECTION_TOKENS={"Мария": "m-secret"}))
    assert not prod.allowed(request("/web/"))
    assert not prod.allowed(request("/web/", headers={"Cookie": "bg_web_token=dev-read-token"}))
    assert prod.allowed(request("/web/", headers={"Cookie": "bg_web_token=secret"}))
    assert prod.allowed(request("/web/", headers={"Authorization": "Bearer crm"}))


def test_a_token_in_a_link_becomes_a_cookie_and_leaves_the_address():
    prod = Access(ProjectionSettings(BG_API_TOKENS="secret", BG_API_WRITE_TOKENS="crm",
                                     BG_API_CORRECTION_TOKENS={"Мария": "m-secret"}))
    assert prod.from_link(request("/web/", "token=wrong")) is None
    moved = prod.from_link(request("/web/", "status=formed&token=secret&q=%D1%80"))
    assert moved is not None and moved.status_code == 303
    assert moved.headers["location"] == "/web/?status=formed&q=%D1%80"
    assert "bg_web_token=secret" in moved.headers["set-cookie"] and "HttpOnly" in moved.headers["set-cookie"]


@pytest.mark.parametrize(("target", "safe"), [
    ("/web/metrics?lang=en", "/web/metrics?lang=en"), ("https://evil.example/", "/web/"),
    ("//evil.example/", "/web/"), ("/\\evil.example", "/web/"), (None, "/web/"),
])
def test_login_only_returns_to_this_site(target, safe):
    assert safe_next(target) == safe


def test_timeline_labels_never_overlap_and_one_days_signals_share_a_line():
    at = datetime(2026, 10, 1, 9, tzinfo=UTC)
    marks = [plots.Mark(at, "Группа формируется"), plots.Mark(at + timedelta(hours=6), "Приоритет изменился"),
             plots.Mark(at + timedelta(hours=6), "Группа расширилась"),
             plots.Mark(at + timedelta(days=1), "Группа сформирована"), plots.Mark(at + timedelta(days=20), "Итог")]
    svg = plots.timeline([plots.Lane("p", "Елена", "HR")], [plots.Point("p", at, "k-view", "просмотр")], marks,
                         "Касания", lambda d: d.date().isoformat())
    found = re.findall(r'x="([\d.]+)" y="([\d.]+)" class="mark-label" text-anchor="(\w+)">([^<]+)<', svg)
    labels = {text: (float(x), float(y), anchor) for x, y, anchor, text in found}
    assert set(labels) == {"Группа формируется +2", "Группа сформирована", "Итог"}
    assert svg.count('<g class="mark">') == 3 and "Приоритет изменился · 2026-10-01" in svg

    def extent(text: str) -> tuple[float, float, float]:
        x, y, anchor = labels[text]
        w = plots.CHAR_PX * len(text)
        return (x - w, x, y) if anchor == "end" else (x, x + w, y)

    boxes = [extent(t) for t in labels]
    for i, (a0, a1, ay) in enumerate(boxes):
        for b0, b1, by in boxes[i + 1:]:
            assert ay != by or a1 <= b0 or b1 <= a0  # same row: apart


def test_timeline_aggregates_dense_touches_with_counts():
    at = datetime(2026, 10, 1, 9, tzinfo=UTC)
    lanes = [plots.Lane("p", "Елена", "HR"), plots.Lane("q", "Сергей", "ИТ")]
    # Fifty touches minutes apart, and two on the next day: two dots with their counts.
    points = [plots.Point("p", at + timedelta(minutes=i), "k-view", f"просмотр {i}") for i in range(50)]
    points += [plots.Point("p", at + timedelta(days=1), "k-download", "скачивание"),
               plots.Point("q", at + timedelta(days=1, hours=1), "k-email", "клик")]
    svg = plots.timeline(lanes, points, [], "Касания", lambda d: d.date().isoformat(), lambda n: f"касаний: {n}")
    counts = sorted(int(n) for n in re.findall(r'data-count="(\d+)"', svg))
    assert counts == [1, 1, 50]
    assert 'class="touch-count" text-anchor="middle">50</text>' in svg and "касаний: 50" in svg

    # Two hundred days of daily touches: weekly dots, never closer than a bucket.
    year = [plots.Point("p", at + timedelta(days=d), "k-view", "просмотр") for d in range(200)]
    svg = plots.timeline(lanes[:1], year, [], "Касания", lambda d: d.date().isoformat())
    xs = sorted(float(x) for x in re.findall(r'<circle class="touch [^"]+" cx="([\d.]+)"', svg))
    assert 28 <= len(xs) <= 30 and min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= plots.MIN_BUCKET_PX
    assert sum(int(n) for n in re.findall(r'data-count="(\d+)"', svg)) == 200


def test_long_names_are_shown_whole_in_the_timeline_and_the_contribution_chart():
    name = "Константин Константинопольский-Преображенский"
    at = datetime(2026, 10, 1, 9, tzinfo=UTC)
    svg = plots.timeline([plots.Lane("p", name, "Технический эксперт · ИТ")], [plots.Point("p", at, "k-view", "x")], [],
                         "Касания", lambda d: d.date().isoformat())
    assert f'<tspan class="lane-label">{name}</tspan>' in svg
    x = float(re.search(r'<text x="([\d.]+)" y="[\d.]+" class="lane-text">', svg).group(1))
    assert x >= 0  # starts inside the picture, written to the right
    bars = plots.hbars([plots.Bar(name, 3.0), plots.Bar("Ольга", 1.0)], "Вклад", str)
    assert f">{name}</text>" in bars
    left = float(re.search(r'<rect class="bar s1" x="([\d.]+)"', bars).group(1))
    assert left >= plots.BAR_CHAR_PX * len(name)


def test_a_card_names_a_person_once_known_and_marks_history():
    signal = Signal(signal_id="s2", signal="group_forming", opportunity_id="romashka.ru:hr", account_id="romashka.ru",
                    solution="hr", occurred_at=datetime(2026, 9, 10, 9, tzinfo=UTC), score=40.0, tier="B",
                    members=(MemberContribution(person_id="olga@romashka.ru", name=None, department="finance",
                                                role="budget_holder", engagement=1.0, touches=1),), backfill=True)
    stored = {**signal.model_dump(), "members": [m.model_dump() for m in signal.members]}
    assert views.signal_card(stored, ru).people == ["olga@romashka.ru"]
    named = views.signal_card(stored, ru, names=views.member_names(
        [{"person_id": "olga@romashka.ru", "name": "Ольга Петрова"}, {"person_id": "x", "name": None}]))
    assert named.people == ["Ольга Петрова"]
    assert views.signal_card(signal, ru).backfill is True and ru("signal.backfill") == "из истории"


def test_the_csv_exports_use_the_pages_words_and_defuse_formulas():
    import csv
    import io

    from services.projection.web import export
    row = {"opportunity_id": "romashka.ru:hr", "account_name": "=HYPERLINK(\"http://evil\")",
           "account_id": "romashka.ru", "solution": "hr", "tier": "A", "score": 81.54, "members_count": 4,
           "engaged_members": 3,
           "covered_roles": ["decision_maker", "initiator"], "missing_roles": ["budget_holder"], "stage": "qualified",
           "status": "formed", "last_activity_at": NOW, "formed_at": None}
    text = export.opportunities_csv([row], ru)
    assert text.startswith("\ufeff")
    header, line = list(csv.reader(io.StringIO(text[1:])))
    assert header[:3] == ["№", "opportunity_id", "Компания"]
    assert line[2] == "'=HYPERLINK(\"http://evil\")"  # a spreadsheet shows it as text
    assert line[5:7] == ["A", "81.5"] and line[9] == "Инициатор, Принимает решение"
    assert line[11:13] == ["квалифицирована", "сформирована"] and line[13] == NOW.isoformat()
    group = export.group_csv({"members": [{**member("a", "Елена", "hr", "initiator", 4.0), "email": "@elena",
                                           "job_title": "HR", "role_source": "title", "touches_count": 3}]}, en)
    header, line = list(csv.reader(io.StringIO(group[1:])))
    assert header[0] == "Person" and line[:5] == ["Елена", "'@elena", "HR", "HR", "Initiator"]
