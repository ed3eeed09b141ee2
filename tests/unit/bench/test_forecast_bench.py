"""bench/forecast.py on a small market: the stage the rules reach before a cut-off, and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.forecast import errors, evaluate_seed, stage_at
from services.projection.funnel import configured

pytestmark = pytest.mark.unit


def test_a_group_is_staged_on_the_facts_before_the_cut_off_only():
    group = {"group_id": "g1", "account_id": "a.ru", "solution": "hr", "started_at": "2026-09-01T00:00:00Z",
             "formed_at": "2026-09-10T00:00:00Z",
             "members": [{"person_id": "p1", "department": "hr", "role": "initiator",
                          "first_touch_at": "2026-09-01T00:00:00Z"},
                         {"person_id": "p2", "department": "finance", "role": "budget_holder",
                          "first_touch_at": "2026-09-08T00:00:00Z"}]}
    roles = ("initiator", "budget_holder")
    assert stage_at(configured(), group, datetime(2026, 9, 5, tzinfo=UTC), roles)[0] == "cold"
    stage, facts = stage_at(configured(), group, datetime(2026, 9, 20, tzinfo=UTC), roles)
    assert stage == "warm" and len(facts.members) == 2


def test_the_forecast_of_a_small_market_has_truth_and_three_methods():
    run = evaluate_seed(configured(), seed=7, accounts=60, months=4, horizon=2)
    assert run["months"] == ["2026-11", "2026-12"]
    assert sum(run["truth"].values()) > 0 and sum(run["open_deals_by_stage"].values()) > 0
    assert set(run["lead_count"]) == set(run["months"])
    assert all(run["adjusted"][k] <= run["weighted"][k] + 1e-6 for k in run["months"])


def test_wape_and_bias_over_months_and_months_ahead():
    run = {"months": ["m1", "m2"], "truth": {"m1": 100.0, "m2": 100.0}, "f": {"m1": 50.0, "m2": 170.0}}
    assert errors([run], "f") == pytest.approx({"wape": 0.6, "bias": 0.1})
    assert errors([run], "f", ahead=1) == pytest.approx({"wape": 0.5, "bias": -0.5})
