"""Role classification from job titles (200+ labelled real-world titles), stated roles, behaviour."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from shared.schemas.roles import BuyingRole, Department, RoleSource

TITLES = Path(__file__).with_name("job_titles.csv")
# The rules were written before the first 260 titles were labelled by principle (roles.yaml's
# header); 48 further titles were then added unseen, and 40 of them (83%) were right before
# the rules were tuned on the misses. The threshold leaves room for edits to the rules.
ACCURACY_THRESHOLD = 0.95


def test_job_title_accuracy(config) -> None:
    rows = list(csv.DictReader(TITLES.open(encoding="utf-8")))
    assert len(rows) >= 200
    assert any(r["title"].isascii() for r in rows) and any(not r["title"].isascii() for r in rows)
    misses = []
    for row in rows:
        found = config.people.roles.classify(row["title"])
        if (found.department.value, found.role.value) != (row["department"], row["role"]):
            misses.append(f"{row['title']!r}: want {row['department']}/{row['role']}, "
                          f"got {found.department.value}/{found.role.value}")
    accuracy = 1 - len(misses) / len(rows)
    print(f"\nrole classification accuracy: {accuracy:.3f} on {len(rows)} titles "
          f"(department and role both right); misses: {misses}")
    assert accuracy >= ACCURACY_THRESHOLD, "\n".join(misses)


@pytest.mark.parametrize(("title", "department", "role"), [
    ("HR-менеджер", Department.hr, BuyingRole.initiator),
    ("IT-директор", Department.it, BuyingRole.technical_validator),
    ("финансовый директор", Department.finance, BuyingRole.budget_holder),
    ("генеральный директор", Department.executive, BuyingRole.decision_maker),
    ("руководитель отдела закупок", Department.procurement, BuyingRole.procurement),
    ("юрист", Department.legal, BuyingRole.legal),
    ("Head of People", Department.hr, BuyingRole.initiator),
])
def test_the_titles_named_in_the_issue(config, title, department, role) -> None:
    found = config.people.roles.classify(title)
    assert (found.department, found.role, found.source) == (department, role, RoleSource.title)


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
    assert roles.classify("Маркетолог", signals={"technical": 3}).role is BuyingRole.initiator


def test_unknown_title_and_no_behaviour_is_the_default(config) -> None:
    found = config.people.roles.classify("Шаман", signals={})
    assert (found.department, found.role, found.source) == (
        Department.other, BuyingRole.influencer, RoleSource.default)
    assert config.people.roles.classify_title("Шаман") is None
