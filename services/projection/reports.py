"""Reader queries -> the pure forecast and analytics: what GET /v1/forecast, GET /v1/analytics
and their web pages show (one function each, so that the pages and the API agree)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from services.projection import forecast as fc
from services.projection.analytics import funnel_analytics
from services.projection.funnel import Funnel
from services.projection.repository import Reader

WON_CONTENT_PER_ROLE = 5


def to_deal(funnel: Funnel, row: dict[str, Any]) -> fc.Deal:
    return fc.Deal(
        opportunity_id=row["opportunity_id"], account=row["account_name"] or row["account_id"],
        solution=row["solution"], stage=row["stage"], amount=row["amount"], currency=row["currency"],
        expected_close_on=row["expected_close_on"],
        owner=(row["team"] or {}).get(funnel.team.forecast_role) or row["account_owner"],
        required_roles=tuple(row["required_roles"] or ()), engaged_roles=tuple(row["engaged_roles"] or ()),
        engaged_members=row["engaged_members"])


async def forecast_view(reader: Reader, funnel: Funnel, period: fc.Period, by: fc.GroupBy) -> dict[str, Any]:
    deals = [to_deal(funnel, row) for row in await reader.deals()]
    lines, weighted = fc.opportunity_forecast(funnel, deals, period, by)
    leads, won = await reader.lead_history()
    model = fc.lead_model(leads, won)
    periods = sorted({line.period for line in lines if line.period != fc.UNDATED})
    lead_count = []
    for key in periods:
        n, value = fc.lead_forecast(model, leads, key)
        lead_count.append({"period": key, "leads": n, "value": value})
    return {
        "period": period, "by": by, "lines": [line.__dict__ for line in lines], "lead_count": lead_count,
        "lead_model": asdict(model),
        "deals": [{
            "opportunity_id": w.deal.opportunity_id, "account": w.deal.account, "solution": w.deal.solution,
            "stage": w.deal.stage, "owner": w.deal.owner, "amount": w.deal.amount, "currency": w.deal.currency,
            "expected_close_on": w.deal.expected_close_on, "probability": w.probability, "weighted": w.weighted,
            "health": w.health.factor, "adjusted": w.adjusted, "role_coverage": w.health.coverage,
            "required_roles": w.health.required, "covered_required_roles": w.health.covered,
            "engaged_members": w.health.engaged, "engaged_benchmark": w.health.benchmark,
            "explanation": w.health.explain()} for w in weighted],
        "method": fc.__doc__ or "",
    }


async def analytics_view(reader: Reader, funnel: Funnel, finance_days: int | None) -> dict[str, Any]:
    opportunities, history, finance = await reader.funnel_facts()
    days = finance_days or funnel.forecast.finance_early_days
    out = funnel_analytics(funnel, opportunities, history, finance, days)
    out["won_content_by_role"] = await reader.won_content_by_role(WON_CONTENT_PER_ROLE)
    return out
