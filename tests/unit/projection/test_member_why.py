"""Projection keeps each member's basis ("why is this person here, in this role?", issue 16)."""

from __future__ import annotations

from pathlib import Path

from services.projection.domain import map_message
from shared.codec import opportunity_log

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "examples"


def _member_row(example: str) -> dict:
    message = opportunity_log.decode((EXAMPLES / example).read_bytes())
    [row] = [r for r in map_message(message) if r.kind == "member"]
    return row.values


def test_the_member_row_carries_the_basis_of_account_solution_and_role() -> None:
    row = _member_row("opportunity.member_added.v1.json")
    assert row["why"]["account"] == {"rule": "domain", "detail": "romashka.ru", "correction_id": None, "author": None}
    assert row["why"]["solution"]["rule"] == "content"
    assert row["why"]["role"]["rule"] == "title"


def test_a_stance_change_updates_the_member_row_under_its_version() -> None:
    row = _member_row("opportunity.member_stance_changed.v1.json")
    assert (row["person_id"], row["version"], row["role"]) == ("o.petrova@romashka.ru", 9, "budget_holder")
    assert row["why"]["role"]["detail"] == "finance/top: Финансовый директор"
