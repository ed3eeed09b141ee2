"""The quality benchmark reads what the read API really answers (its response models, no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.quality import parse_weights, to_opportunity
from bench.quality_metrics import DEFAULT_WEIGHTS, Member
from services.projection.models import OpportunityDetail

pytestmark = pytest.mark.unit

AT = "2026-09-10T09:00:00Z"


def detail(signals: list[dict], formed_at: str | None) -> dict:
    member = {"person_id": "olgapetrova@gmail.com", "name": "Ольга", "email": "olga.petrova@gmail.com",
              "job_title": "CFO", "department": "finance", "role": "budget_holder", "role_source": "title",
              "joined_at": AT, "touches_count": 2, "first_touch_at": AT, "last_touch_at": AT, "engagement": 1.5}
    body = {
        "opportunity_id": "name:ромашка:hr", "account_id": "name:ромашка", "account_name": "Ромашка",
        "solution": "hr", "stage": "identified", "outcome": "open", "status": "formed", "score": 51.0,
        "tier": "B", "origin": "auto", "created_at": AT, "formed_at": formed_at, "first_touch_at": AT,
        "last_activity_at": AT, "members_count": 1, "engaged_members": 1, "touches_count": 2,
        "departments": ["finance"], "covered_roles": ["budget_holder"], "missing_roles": [], "amount": None,
        "currency": None, "stage_changed_at": None, "version": 3, "change_seq": 7, "account_owner": None,
        "expected_roles": [], "required_roles": [], "score_as_of": AT, "score_version": 3, "score_breakdown": None,
        "members": [member], "timeline": [], "signals": signals, "stage_history": [],
    }
    # Through the API's own response model, as FastAPI would serialise it.
    return OpportunityDetail.model_validate(body).model_dump(mode="json")


def signal(kind: str, at: str) -> dict:
    return {"signal_id": f"x:{kind}:1", "signal": kind, "occurred_at": at, "score": 50.0, "tier": "B",
            "covered_roles": [], "missing_roles": [], "trigger_event_ids": [], "members": [], "detail": {}}


def test_formed_at_is_the_group_formed_signal_time() -> None:
    opp = to_opportunity(detail([signal("group_forming", "2026-09-05T10:00:00Z"),
                                 signal("group_formed", "2026-09-08T10:00:00Z")], formed_at=AT))
    assert opp.formed_at == datetime(2026, 9, 8, 10, tzinfo=UTC)
    assert (opp.account_id, opp.solution) == ("name:ромашка", "hr")
    assert opp.members == (Member("olgapetrova@gmail.com", "finance", "budget_holder"),)


def test_without_a_signal_the_opportunity_formed_at_counts_and_forming_is_not_formed() -> None:
    assert to_opportunity(detail([], formed_at=AT)).formed_at == datetime(2026, 9, 10, 9, tzinfo=UTC)
    assert to_opportunity(detail([signal("group_forming", AT)], formed_at=None)).formed_at is None


def test_baseline_weights_can_be_overridden_by_kind() -> None:
    assert parse_weights(["webinar_attended=15", "page_view=0.5"]) == {
        **DEFAULT_WEIGHTS, "webinar_attended": 15.0, "page_view": 0.5}
    with pytest.raises(SystemExit):
        parse_weights(["webinar=10"])
