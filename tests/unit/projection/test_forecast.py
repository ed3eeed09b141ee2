"""Forecast, analytics and alert routing, pure (services/projection/forecast.py, analytics.py,
shared/alert_routing.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.projection import forecast as fc
from services.projection.analytics import funnel_analytics
from services.projection.funnel import configured
from shared.alert_routing import alert_recipients

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def deal(oid: str, stage: str, amount: float | None, close: date | None, engaged: int = 4,
         roles: tuple[str, ...] = ("budget_holder", "decision_maker"), owner: str | None = "ivanov") -> fc.Deal:
    return fc.Deal(oid, oid, "hr", stage, amount, "RUB", close, owner, ("budget_holder", "decision_maker"), roles,
                   engaged)


def test_health_explains_role_coverage_and_engagement_against_the_stage_benchmark():
    f = configured()
    healthy = fc.health(f, deal("a", "warm", 100.0, None, engaged=5))
    assert healthy.factor == pytest.approx(1.0) and healthy.benchmark == 4.2
    thin = fc.health(f, deal("b", "closing", 100.0, None, engaged=3, roles=("budget_holder",)))
    # floor 0.5 + 0.5 x (1/2 coverage + 3/6.3 engagement) / 2
    assert thin.factor == pytest.approx(0.5 + 0.5 * (0.5 + 3 / 6.3) / 2)
    assert thin.explain().startswith("x0.74: required roles 1/2 engaged; 3 engaged members vs 6.3")


def test_forecast_per_period_and_group_weighs_amount_by_probability_and_health():
    f = configured()
    deals = [deal("a", "warm", 1000.0, date(2026, 10, 5), engaged=5),
             deal("b", "closing", 2000.0, date(2026, 11, 20), engaged=7),
             deal("c", "cold", 500.0, date(2026, 10, 30), engaged=1, roles=(), owner="petrova"),
             deal("d", "warm", None, None)]
    lines, weighted = fc.opportunity_forecast(f, deals, "quarter", "member")
    assert [(x.period, x.group, x.deals) for x in lines] == [
        ("2026-Q4", "ivanov", 2), ("2026-Q4", "petrova", 1), ("undated", "ivanov", 1)]
    assert lines[0].weighted == pytest.approx(1000 * 0.3 + 2000 * 0.75)
    assert lines[0].adjusted == pytest.approx(lines[0].weighted)  # both healthy
    cold = next(w for w in weighted if w.deal.opportunity_id == "c")
    assert cold.adjusted == pytest.approx(500 * 0.1 * (0.5 + 0.5 * (0 + 1 / 2.5) / 2))
    months, _ = fc.opportunity_forecast(f, deals, "month", "stage")
    assert [(x.period, x.group) for x in months] == [("2026-10", "cold"), ("2026-10", "warm"),
                                                      ("2026-11", "closing"), ("undated", "warm")]


def test_lead_forecast_is_leads_one_cycle_earlier_times_conversion_times_average_amount():
    leads = [T0 + timedelta(days=d) for d in (0, 1, 2, 30, 31, 32, 33, 60)]
    won = [(T0, T0 + timedelta(days=30), 1000.0), (T0 + timedelta(days=1), T0 + timedelta(days=31), 3000.0)]
    model = fc.lead_model(leads, won)
    assert (model.conversion, model.average_amount, model.cycle_days) == (2 / 8, 2000.0, 30.0)
    n, value = fc.lead_forecast(model, leads, "2026-10")  # October: leads of [Sep 1, Oct 2), 30 days earlier
    assert n == 4 and value == pytest.approx(4 * 0.25 * 2000)
    assert fc.lead_forecast(fc.lead_model(leads, []), leads, "2026-10") == (0, None)
    assert fc.period_bounds("2026-Q4") == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_analytics_time_in_stage_conversion_cycle_transitions_stalled_and_finance_cohorts():
    f = configured()
    day = lambda d: T0 + timedelta(days=d)  # noqa: E731
    opportunities = [
        {"opportunity_id": "a", "created_at": day(0), "first_touch_at": day(0), "stage": "won", "outcome": "won",
         "status": "won"},
        {"opportunity_id": "b", "created_at": day(0), "first_touch_at": day(0), "stage": "lost", "outcome": "lost",
         "status": "lost"},
        {"opportunity_id": "c", "created_at": day(0), "first_touch_at": day(0), "stage": "cold", "outcome": "open",
         "status": "stalled"},
    ]
    history = [
        {"opportunity_id": "a", "event_id": "1", "stage": "cold", "changed_at": day(2), "engaged_members": 1},
        {"opportunity_id": "a", "event_id": "2", "stage": "warm", "changed_at": day(10), "engaged_members": 4},
        {"opportunity_id": "a", "event_id": "3", "stage": "won", "changed_at": day(40), "engaged_members": 6},
        {"opportunity_id": "b", "event_id": "4", "stage": "cold", "changed_at": day(4), "engaged_members": 2},
        {"opportunity_id": "b", "event_id": "5", "stage": "lost", "changed_at": day(20), "engaged_members": 2},
        {"opportunity_id": "c", "event_id": "6", "stage": "cold", "changed_at": day(1), "engaged_members": 1},
    ]
    out = funnel_analytics(f, opportunities, history, {"a": day(3), "b": day(19)}, finance_days=14)
    time_in = {x["stage"]: x for x in out["time_in_stage"]}
    assert time_in["target_base"]["n"] == 3 and time_in["target_base"]["median"] == pytest.approx(2)
    assert time_in["cold"]["mean"] == pytest.approx((8 + 16) / 2)
    conversion = {x["from"]: x for x in out["conversion"]}
    assert (conversion["cold"]["reached"], conversion["cold"]["passed"]) == (3, 1)
    assert conversion["closing"]["rate"] == pytest.approx(1.0)  # a won deal passed every stage
    assert out["cycle_days"]["won"]["mean"] == pytest.approx(40) and out["cycle_days"]["lost"]["n"] == 1
    at_warm = next(x for x in out["engaged_at_transition"] if x["stage"] == "warm")
    assert (at_warm["mean"], at_warm["benchmark"]) == (4.0, 4.2)
    assert next(x for x in out["stalled"] if x["stage"] == "cold")["share"] == 1.0
    cohorts = {c["cohort"]: c for c in out["finance"]["cohorts"]}
    assert (cohorts["early"]["won"], cohorts["early"]["win_rate"]) == (1, 1.0)
    assert (cohorts["late"]["closed"], cohorts["late"]["win_rate"]) == (1, 0.0)


def test_alerts_go_to_the_team_in_role_order_else_to_the_account_owner():
    roles = ["ae", "se", "pm", "kam", "csm"]
    assert alert_recipients({"se": "sidorov", "ae": "ivanov", "csm": None}, "owner", roles) == ["ivanov", "sidorov"]
    assert alert_recipients({"ae": "ivanov", "kam": "ivanov"}, "owner", roles) == ["ivanov"]
    assert alert_recipients({}, "owner", roles) == ["owner"]
    assert alert_recipients({}, None, roles) == []
