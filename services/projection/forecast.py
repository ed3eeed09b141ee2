"""The forecast, pure: from real opportunities (amount x stage probability, adjusted by the health
of the buying group), next to what a lead-count forecast (leads x conversion) says on the same
data. Source of the method: ../shared/DOMAIN.md, "Stages, qualification and forecast".

Health of a deal (explained with every deal):
    coverage  = required roles with an engaged member / required roles        (1 when none)
    engaged   = min(1, engaged members / the stage's engaged_benchmark)       (2.5 / 4.2 / 6.3)
    health    = floor + (1 - floor) x (coverage + engaged) / 2                (floor: funnel.yaml)
    adjusted  = amount x probability(stage) x health

Lead-count forecast of a period [start, end), the lead-centric way:
    leads first seen in [start - cycle, end - cycle) x conversion x average won amount
where conversion = won deals / leads ever seen, cycle = median days from first touch to won,
both learnt from the same data. No won deal yet: no lead forecast (nothing to learn from).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from services.projection.funnel import Funnel

Period = Literal["month", "quarter"]
GroupBy = Literal["none", "member", "solution", "stage"]
UNDATED = "undated"


@dataclass(frozen=True, slots=True)
class Deal:
    opportunity_id: str
    account: str
    solution: str
    stage: str
    amount: float | None
    currency: str | None
    expected_close_on: date | None
    owner: str | None  # the team member of funnel.team.forecast_role, else the account owner
    required_roles: tuple[str, ...]
    engaged_roles: tuple[str, ...]  # roles with at least one engaged member
    engaged_members: int


@dataclass(frozen=True, slots=True)
class Health:
    factor: float
    coverage: float
    covered: int
    required: int
    engaged: int
    benchmark: float
    engaged_ratio: float

    def explain(self) -> str:
        return (f"x{self.factor:.2f}: required roles {self.covered}/{self.required} engaged; "
                f"{self.engaged} engaged members vs {self.benchmark:g} expected at this stage")


def health(funnel: Funnel, deal: Deal) -> Health:
    stage = funnel.by_code.get(deal.stage) or funnel.first
    required = set(deal.required_roles)
    covered = len(required & set(deal.engaged_roles))
    coverage = covered / len(required) if required else 1.0
    ratio = min(1.0, deal.engaged_members / stage.engaged_benchmark) if stage.engaged_benchmark > 0 else 1.0
    floor = funnel.forecast.health_floor
    return Health(floor + (1 - floor) * (coverage + ratio) / 2, coverage, covered, len(required),
                  deal.engaged_members, stage.engaged_benchmark, ratio)


def period_of(day: date | None, period: Period) -> str:
    """'2026-10' for a month, '2026-Q4' for a quarter; 'undated' without a close date."""
    if day is None:
        return UNDATED
    return f"{day.year}-{day.month:02d}" if period == "month" else f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def period_bounds(key: str) -> tuple[datetime, datetime]:
    """[start, end) of a period key, in UTC."""
    year, part = key.split("-")
    if part.startswith("Q"):
        first_month, months = (int(part[1:]) - 1) * 3 + 1, 3
    else:
        first_month, months = int(part), 1
    start = datetime(int(year), first_month, 1, tzinfo=UTC)
    end_month = first_month + months
    end = datetime(int(year) + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True, slots=True)
class WeightedDeal:
    deal: Deal
    probability: float
    health: Health
    weighted: float  # amount x probability
    adjusted: float  # weighted x health


def weigh(funnel: Funnel, deal: Deal) -> WeightedDeal:
    stage = funnel.by_code.get(deal.stage) or funnel.first
    amount = deal.amount or 0.0
    h = health(funnel, deal)
    return WeightedDeal(deal, stage.probability, h, amount * stage.probability, amount * stage.probability * h.factor)


@dataclass
class Line:
    period: str
    group: str | None
    deals: int = 0
    pipeline: float = 0.0  # sum of amounts
    weighted: float = 0.0
    adjusted: float = 0.0
    opportunity_ids: list[str] = field(default_factory=list)


def group_key(funnel: Funnel, deal: Deal, by: GroupBy) -> str | None:
    if by == "member":
        return deal.owner
    if by == "solution":
        return deal.solution
    if by == "stage":
        return deal.stage
    return None


def opportunity_forecast(funnel: Funnel, deals: Iterable[Deal], period: Period, by: GroupBy = "none"
                         ) -> tuple[list[Line], list[WeightedDeal]]:
    """Lines per (period, group), by period then group; and every weighted deal (the explanation).
    Deals without an amount count in `deals` but add nothing."""
    lines: dict[tuple[str, str | None], Line] = {}
    weighted = []
    for deal in deals:
        w = weigh(funnel, deal)
        weighted.append(w)
        key = (period_of(deal.expected_close_on, period), group_key(funnel, deal, by))
        line = lines.setdefault(key, Line(*key))
        line.deals += 1
        line.pipeline += deal.amount or 0.0
        line.weighted += w.weighted
        line.adjusted += w.adjusted
        line.opportunity_ids.append(deal.opportunity_id)
    order = sorted(lines, key=lambda k: (k[0] == UNDATED, k[0], k[1] or ""))
    return [lines[k] for k in order], weighted


@dataclass(frozen=True, slots=True)
class LeadModel:
    leads: int  # distinct contacts ever seen
    won: int
    conversion: float | None  # won / leads
    average_amount: float | None
    cycle_days: float | None  # median, first touch -> won


def lead_model(lead_first_seen: Sequence[datetime], won: Sequence[tuple[datetime, datetime, float | None]]
               ) -> LeadModel:
    """`won`: (first touch or creation, won at, amount) of each won deal."""
    amounts = [a for _, _, a in won if a is not None]
    cycles = [(at - start).total_seconds() / 86400 for start, at, _ in won]
    return LeadModel(
        leads=len(lead_first_seen), won=len(won),
        conversion=len(won) / len(lead_first_seen) if lead_first_seen and won else None,
        average_amount=statistics.fmean(amounts) if amounts else None,
        cycle_days=statistics.median(cycles) if cycles else None)


def lead_forecast(model: LeadModel, lead_first_seen: Sequence[datetime], period_key: str) -> tuple[int, float | None]:
    """(leads counted, forecast value) of a period; value None when the model learnt nothing."""
    if period_key == UNDATED or model.conversion is None or model.average_amount is None or model.cycle_days is None:
        return 0, None
    start, end = period_bounds(period_key)
    shift = timedelta(days=model.cycle_days)
    leads = sum(1 for t in lead_first_seen if start - shift <= t < end - shift)
    return leads, leads * model.conversion * model.average_amount
