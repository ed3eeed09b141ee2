"""Who is who: department and level from job titles (554 labelled RU/EN titles), stated roles, behaviour."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.schemas.roles import BuyingRole, Department, Level, RoleSource

UNTUNED = Path(__file__).with_name("titles_untuned.csv")
TUNED = Path(__file__).with_name("titles_tuned.csv")


def _accuracy(config, path: Path) -> tuple[float, float, list[str]]:
    """(department accuracy, level accuracy, misses) of the rules on a labelled title set."""
    roles = config.people.roles
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    departments = levels = 0
    misses = []
    for row in rows:
        found = roles.classify_title(row["title"])
        department = found[0].value if found else "other"
        level = roles.level(row["title"]).value
        departments += department == row["department"]
        levels += level == row["level"]
        if (department, level) != (row["department"], row["level"]):
            misses.append(f"{row['title']!r}: want {row['department']}/{row['level']}, got {department}/{level}")
    return departments / len(rows), levels / len(rows), misses


def test_the_labelled_titles_are_500_in_both_languages_and_the_halves_are_apart() -> None:
    untuned = [r["title"].lower() for r in csv.DictReader(UNTUNED.open(encoding="utf-8"))]
    tuned = [r["title"].lower() for r in csv.DictReader(TUNED.open(encoding="utf-8"))]
    assert len(untuned) + len(tuned) >= 500 and len(untuned) >= 250
    assert not set(untuned) & set(tuned)  # tuning on one half never touches a title of the other
    for titles in (untuned, tuned):
        assert sum(t.isascii() for t in titles) >= 60 and sum(not t.isascii() for t in titles) >= 120


def test_department_and_level_on_the_untuned_titles(config) -> None:
    # titles_untuned.csv was written and committed before the rules' output was looked at and
    # is never used to tune them; the first measurement was 97.2% department, 97.9% level.
    department, level, misses = _accuracy(config, UNTUNED)
    print(f"\nuntuned titles: department {department:.3f}, level {level:.3f}; misses: {misses}")
    assert department >= 0.95, misses
    assert level >= 0.90, misses


def test_department_and_level_on_the_tuned_titles(config) -> None:
    department, level, misses = _accuracy(config, TUNED)
    print(f"\ntuned titles: department {department:.3f}, level {level:.3f}; misses: {misses}")
    assert department >= 0.98 and level >= 0.97, misses


@pytest.mark.parametrize(("title", "department", "level"), [
    ("HR-менеджер", Department.hr, Level.staff),
    ("IT-директор", Department.it, Level.top),
    ("финансовый директор", Department.finance, Level.top),
    ("генеральный директор", Department.executive, Level.top),
    ("руководитель отдела закупок", Department.procurement, Level.head),
    ("юрист", Department.legal, Level.staff),
    ("Head of People", Department.hr, Level.head),
    # Issue 15: owners of a product, process or business role are not the company's owners;
    # an Account Executive sells, an Executive Director runs the company.
    ("Product Owner", Department.it, Level.staff),
    ("Process Owner", Department.operations, Level.staff),
    ("Business Owner", Department.other, Level.staff),
    ("Account Executive", Department.sales, Level.staff),
    ("Executive Director", Department.executive, Level.top),
    # Abbreviations and Russian case forms (pymorphy3).
    ("ГД", Department.executive, Level.top),
    ("ФД", Department.finance, Level.top),
    ("зам. ГД по ИТ", Department.it, Level.top),
    ("нач. ОМТС", Department.procurement, Level.head),
    ("Начальник АХО", Department.operations, Level.head),
    ("рук. отдела продаж", Department.sales, Level.head),
    ("начальника отдела закупок", Department.procurement, Level.head),
    ("Генеральным директором", Department.executive, Level.top),
    ("главного бухгалтера", Department.finance, Level.head),
    ("Ассистент финансового директора", Department.other, Level.staff),
])
def test_titles_named_in_the_issues(config, title, department, level) -> None:
    assert config.people.roles.classify_title(title) == (department, level)


def test_owners_of_a_product_process_or_business_role_never_decide_by_title(config) -> None:
    for title in ("Product Owner", "Process Owner", "Business Owner"):
        found = config.people.roles.classify(title)
        assert found.department is not Department.executive and found.role is not BuyingRole.decision_maker


def test_stated_role_wins_over_the_title_but_the_department_stays(config) -> None:
    found = config.people.roles.classify("финансовый директор", stated="Decision Maker")
    assert (found.department, found.role, found.source) == (
        Department.finance, BuyingRole.decision_maker, RoleSource.stated)


def test_zoom_statements_map_to_roles(config) -> None:
    roles = config.people.roles
    assert roles.stated_role("Evaluator/Recommender") is BuyingRole.technical_validator
    assert roles.stated_role("Influencer") is BuyingRole.influencer
    assert roles.stated_role("ЛПР") is BuyingRole.decision_maker
    assert roles.stated_role("Not involved") is None
    assert roles.classify("HR-менеджер", stated="Not involved").source is RoleSource.title


def test_reading_api_docs_makes_a_technical_validator_when_the_title_is_unknown(config) -> None:
    roles = config.people.roles
    found = roles.classify(None, signals={"technical": 1})
    assert (found.department, found.role, found.source) == (
        Department.it, BuyingRole.technical_validator, RoleSource.behaviour)
    # A generic title says less than what the person reads; a functional one says more.
    assert roles.classify("Специалист отдела", signals={"technical": 3}).role is BuyingRole.technical_validator
    assert roles.classify("Специалист отдела").source is RoleSource.title
    marketer = roles.classify("Маркетолог", signals={"technical": 3})
    assert (marketer.department, marketer.source) == (Department.marketing, RoleSource.title)


def test_unknown_title_and_no_behaviour_is_the_default(config) -> None:
    found = config.people.roles.classify("Шаман", signals={})
    assert (found.department, found.role, found.source) == (
        Department.other, BuyingRole.influencer, RoleSource.default)
    assert config.people.roles.classify_title("Шаман") is None
