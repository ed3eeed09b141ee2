"""Forecast quality: the opportunity-based forecast and the lead-count forecast against the
synthetic market's truth (demo/market.py: won deals, their amounts and close dates).

    .venv/bin/python -m bench.forecast [--accounts 150] [--months 6] [--horizon 3] [--seeds 7 11 13 17 19]

For every seed: the market runs `months`; the forecast is made at the cut-off, `horizon` months
before the end, for each of the following months, from what was known at the cut-off only:
- opportunity-based (services/projection/forecast.py, the same code as GET /v1/forecast): every
  group that had started, was still open and had been reported to the CRM by the cut-off; its
  stage is where the qualification rules (services/projection/qualification.py, the default
  funnel) take it on the facts before the cut-off (members' first touches and roles, formation);
  the amount and expected close date are what the CRM was told; weight = amount x stage
  probability x buying-group health ("adjusted"), and without the health ("weighted");
- lead-count: leads (every person identified before the cut-off, as a lead system counts them)
  one sales cycle before the month x conversion (won deals / leads, before the cut-off) x the
  average won amount (forecast.lead_model / lead_forecast, the same code as the API's).
Truth: the amounts of the deals won in each month.

Error per method over all seeds and months: WAPE = sum |forecast - truth| / sum truth, and bias
= sum (forecast - truth) / sum truth. Not through the running services: the facts come from the
market's truth (what grouping and scoring would find; bench/quality.py measures how well they
do), so this measures the forecasting method alone. The market's truth has no touch content,
so "technical validation" never holds here: the rules take a group up to warm at most, as the
person-set criteria beyond are not simulated either.

Results: bench-results/forecast.json; headline figures into docs/benchmarks.json.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from bench.common import record, save
from demo.market import START, add_months, generate
from services.projection import forecast as fc
from services.projection.funnel import Funnel, configured
from services.projection.qualification import Facts, MemberFact, evaluate

console = Console()
PROFILES = Path(__file__).resolve().parents[1] / "services" / "grouping" / "config" / "profiles.yaml"
COMMAND = ".venv/bin/python -m bench.forecast"


def parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def required_roles() -> dict[str, tuple[str, ...]]:
    """Per solution, the roles a deal needs (grouping's profiles.yaml)."""
    data = yaml.safe_load(PROFILES.read_text(encoding="utf-8"))
    default = tuple(data["default"].get("required", ()))
    return {slug: tuple(p.get("required", default)) for slug, p in (data.get("solutions") or {}).items()} | {
        "_default": default}


def stage_at(funnel: Funnel, group: dict[str, Any], cut: datetime, required: tuple[str, ...]) -> tuple[str, Facts]:
    """Where the rules take the group on the facts before `cut`."""
    members = tuple(MemberFact(m["person_id"], m["department"], m["role"], parse(m["first_touch_at"]))
                    for m in group["members"] if parse(m["first_touch_at"]) < cut)
    formed = parse(group["formed_at"])
    facts = Facts(opportunity_id=group["group_id"], account_id=group["account_id"], solution=group["solution"],
                  stage=funnel.first.code, stage_changed_at=None, stage_author=None, outcome="open",
                  created_at=parse(group["started_at"]), formed_at=formed if formed and formed < cut else None,
                  required_roles=required, members=members, technical_touch_at=None)
    while (move := evaluate(funnel, facts).move) is not None:
        facts = dataclasses.replace(facts, stage=move.stage, stage_changed_at=move.at, stage_author="rules")
    return facts.stage, facts


def month_key(at: datetime | date) -> str:
    return f"{at.year}-{at.month:02d}"


def evaluate_seed(funnel: Funnel, seed: int, accounts: int, months: int, horizon: int) -> dict[str, Any]:
    truth = generate(accounts, months, seed).truth
    cut = add_months(START, months - horizon)
    keys = [month_key(add_months(START, months - horizon + i)) for i in range(horizon)]
    roles = required_roles()
    actual = dict.fromkeys(keys, 0.0)
    adjusted = dict.fromkeys(keys, 0.0)
    weighted = dict.fromkeys(keys, 0.0)
    stages: dict[str, int] = {}
    won_before: list[tuple[datetime, datetime, float | None]] = []
    for g in truth["groups"]:
        deal = g["deal"]
        closed = parse(deal["closed_at"])
        if deal["outcome"] == "won" and closed is not None:
            if closed < cut:
                won_before.append((parse(g["started_at"]), closed, deal["amount"]))
            elif month_key(closed) in actual:
                actual[month_key(closed)] += deal["amount"]
        started, reported = parse(g["started_at"]), parse(deal["crm"]["reported_at"])
        if started >= cut or reported >= cut or (closed is not None and closed < cut):
            continue  # not known at the cut-off, or already closed
        stage, facts = stage_at(funnel, g, cut, roles.get(g["solution"], roles["_default"]))
        stages[stage] = stages.get(stage, 0) + 1
        engaged = [m for m in facts.members if m.first_touch_at is not None]
        expected = date.fromisoformat(deal["crm"]["expected_close_on"])
        w = fc.weigh(funnel, fc.Deal(g["group_id"], g["account_id"], g["solution"], stage, deal["crm"]["amount"],
                                     "RUB", expected, None, facts.required_roles,
                                     tuple(sorted({m.role for m in engaged})), len(engaged)))
        if month_key(expected) in adjusted:
            adjusted[month_key(expected)] += w.adjusted
            weighted[month_key(expected)] += w.weighted
    leads = [t for p in truth["persons"] if (t := parse(p["identified_at"])) is not None and t < cut]
    model = fc.lead_model(leads, won_before)
    lead = {k: fc.lead_forecast(model, leads, k)[1] or 0.0 for k in keys}
    return {"seed": seed, "cut": cut.isoformat(), "months": keys, "truth": actual, "adjusted": adjusted,
            "weighted": weighted, "lead_count": lead, "open_deals_by_stage": stages,
            "lead_model": dataclasses.asdict(model)}


def errors(runs: list[dict[str, Any]], method: str, ahead: int | None = None) -> dict[str, float]:
    """Over every seed and month (or only the month `ahead` months after the cut-off, 1-based)."""
    pairs = [(run[method][k], run["truth"][k]) for run in runs for i, k in enumerate(run["months"])
             if ahead is None or i + 1 == ahead]
    total = sum(t for _, t in pairs) or 1.0
    return {"wape": sum(abs(f - t) for f, t in pairs) / total, "bias": sum(f - t for f, t in pairs) / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=150)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--horizon", type=int, default=3, help="months forecast after the cut-off")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 13, 17, 19])
    parser.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.json")
    args = parser.parse_args()
    if not 0 < args.horizon < args.months:
        parser.error("--horizon must be between 1 and --months - 1")
    funnel = configured()
    runs = [evaluate_seed(funnel, seed, args.accounts, args.months, args.horizon) for seed in args.seeds]
    methods = {"adjusted": "opportunities: amount x probability x health",
               "weighted": "opportunities: amount x probability",
               "lead_count": "leads x conversion x average won amount"}
    summary = {m: errors(runs, m) for m in methods}
    by_ahead = {m: {str(a): errors(runs, m, a) for a in range(1, args.horizon + 1)} for m in methods}
    table = Table(title=f"forecast of each of {args.horizon} months after the cut-off, "
                        f"{len(args.seeds)} markets of {args.accounts} accounts")
    for column in ("seed", "month", "truth", "adjusted", "weighted", "lead count"):
        table.add_column(column, justify="right")
    for run in runs:
        for k in run["months"]:
            table.add_row(str(run["seed"]), k, *(f"{run[m][k] / 1e6:.2f}M" for m in ("truth", *methods)))
    console.print(table)
    for m, label in methods.items():
        ahead = "  ".join(f"{a} mo ahead {e['wape']:.0%}" for a, e in by_ahead[m].items())
        console.print(f"{label:<48} WAPE {summary[m]['wape']:.1%}  bias {summary[m]['bias']:+.1%}   ({ahead})")
    path = save("forecast", {"accounts": args.accounts, "months": args.months, "horizon": args.horizon,
                             "seeds": args.seeds, "summary": summary, "by_months_ahead": by_ahead, "runs": runs,
                             "when": datetime.now(UTC).isoformat(timespec="seconds")})
    console.print(f"results: {path}")
    if not args.no_record:
        record("forecast_wape_opportunities", summary["adjusted"]["wape"] * 100, "% of won amount",
               summary["lead_count"]["wape"] * 100, COMMAND)
        record("forecast_wape_lead_count", summary["lead_count"]["wape"] * 100, "% of won amount", None, COMMAND)
        record("forecast_wape_opportunities_next_month", by_ahead["adjusted"]["1"]["wape"] * 100, "% of won amount",
               by_ahead["lead_count"]["1"]["wape"] * 100, COMMAND)


if __name__ == "__main__":
    main()
