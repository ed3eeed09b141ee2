"""What the funnel board, the qualification page, the forecast and the analytics show, built
from what the Reader and services/projection/reports.py return: pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from services.projection.funnel import Funnel
from services.projection.web import plots
from services.projection.web.funnel_text import FunnelTranslator
from services.projection.web.views import opportunity_url


def qualify_url(opportunity_id: str) -> str:
    return "/web/funnel/" + quote(opportunity_id, safe="")


def money(t: FunnelTranslator, amount: float | None, currency: str | None = None) -> str:
    if amount is None:
        return "—"
    return f"{t.number(amount, 0)} {currency or ''}".strip()


@dataclass(frozen=True)
class CriterionView:
    code: str
    label: str
    holds: bool
    derived: bool
    since: str
    evidence: str | None
    marked_by: str | None


def criteria_views(t: FunnelTranslator, criteria: Sequence[Mapping[str, Any]]) -> list[CriterionView]:
    """`since` is an ISO string (the stored JSON) or a datetime."""
    out = []
    for c in criteria:
        since = c.get("since")
        since_text = since[:10] if isinstance(since, str) else (t.date(since) if since else "")
        out.append(CriterionView(c["code"], t.criterion(c["code"]), bool(c["holds"]), bool(c["derived"]), since_text,
                                 c.get("evidence"), c.get("marked_by")))
    return out


@dataclass(frozen=True)
class Card:
    opportunity_id: str
    url: str
    opportunity_url: str
    account: str
    solution: str
    amount: str
    close_on: str
    engaged: int
    owner: str | None
    status: str
    criteria: list[CriterionView]
    proposed: str | None


@dataclass
class Column:
    code: str
    name: str
    probability: str
    cards: list[Card] = field(default_factory=list)
    amount: float = 0.0


@dataclass(frozen=True)
class Board:
    columns: list[Column]
    closed: list[tuple[str, str, int]]  # (code, name, count)


def board(funnel: Funnel, rows: Sequence[Mapping[str, Any]], t: FunnelTranslator) -> Board:
    """Open opportunities in the column of their stage (a stage the funnel does not know goes
    to the first column), with their exit criteria; won and lost counted apart."""
    columns = {s.code: Column(s.code, s.name(t.lang), t.percent(s.probability)) for s in funnel.open_stages}
    closed = {s.code: 0 for s in funnel.stages if s.outcome}
    for r in rows:
        if r["outcome"] in ("won", "lost"):
            closed[funnel.outcome_stage(r["outcome"]).code] += 1
            continue
        column = columns.get(r["stage"]) or columns[funnel.first.code]
        column.amount += r["amount"] or 0.0
        column.cards.append(Card(
            opportunity_id=r["opportunity_id"], url=qualify_url(r["opportunity_id"]),
            opportunity_url=opportunity_url(r["opportunity_id"]), account=r["account_name"] or r["account_id"],
            solution=t.value("solution", r["solution"]), amount=money(t, r["amount"], r["currency"]),
            close_on=t.date(r["expected_close_on"]) if r["expected_close_on"] else "",
            engaged=r["engaged_members"], owner=(r["team"] or {}).get(funnel.team.forecast_role),
            status=r["status"], criteria=criteria_views(t, r["criteria"] or []),
            proposed=t.stage(r["proposed_stage"]) if r["proposed_stage"] else None))
    return Board(list(columns.values()),
                 [(code, funnel.by_code[code].name(t.lang), n) for code, n in closed.items()])


@dataclass(frozen=True)
class HistoryRow:
    when: str
    move: str
    author: str
    who: str
    why: str
    engaged: str


def history(t: FunnelTranslator, rows: Sequence[Mapping[str, Any]]) -> list[HistoryRow]:
    """Newest first."""
    out = []
    for h in reversed(rows):
        move = f"{t.stage(h['from_stage'])} → {t.stage(h['stage'])}" if h.get("from_stage") else (
            f"→ {t.stage(h['stage'])}")
        if h.get("crm_stage") and h["crm_stage"] != h["stage"]:
            move += f" ({h['crm_stage']})"
        why = h.get("reason") or ""
        if h.get("criteria"):
            why = ", ".join(t.criterion(c) for c in h["criteria"])
        engaged = "" if h.get("engaged_members") is None else f"{h['engaged_members']} / {h.get('members_count')}"
        out.append(HistoryRow(t.when(h["changed_at"]), move, t(f"funnel.by_{h.get('author') or 'crm'}"),
                              h.get("changed_by") or h.get("source") or "", why, engaged))
    return out


# ------------------------------------------------------------------ forecast


@dataclass(frozen=True)
class ForecastPage:
    plot: Markup | None
    lines: list[dict[str, str]]
    deals: list[dict[str, str]]
    lead_model: str
    totals: dict[str, str]


def forecast_page(found: Mapping[str, Any], t: FunnelTranslator) -> ForecastPage:
    periods = sorted({line["period"] for line in found["lines"]}, key=lambda p: (p == "undated", p))
    sums: dict[str, dict[str, float]] = {p: {"weighted": 0.0, "adjusted": 0.0} for p in periods}
    for line in found["lines"]:
        sums[line["period"]]["weighted"] += line["weighted"]
        sums[line["period"]]["adjusted"] += line["adjusted"]
    leads = {x["period"]: x["value"] for x in found["lead_count"]}
    label = lambda p: t("fc.undated") if p == "undated" else p  # noqa: E731
    short = lambda v: t.number(v / 1e6, 1)  # noqa: E731  (millions: the axis' unit is in the title)
    plot = plots.columns([label(p) for p in periods], [
        plots.Series(t("fc.weighted"), "s2", [sums[p]["weighted"] for p in periods]),
        plots.Series(t("fc.adjusted"), "s1", [sums[p]["adjusted"] for p in periods]),
        plots.Series(t("fc.lead_count"), "s-lead", [leads.get(p) for p in periods]),
    ], t("fc.plot"), short) if periods else None
    by = found["by"]

    def group_name(g: str | None) -> str:
        if g is None:
            return "—"
        return t.stage(g) if by == "stage" else t.value("solution", g) if by == "solution" else g

    lines = [{"period": label(x["period"]), "group": group_name(x["group"]), "deals": str(x["deals"]),
              "pipeline": money(t, x["pipeline"]), "weighted": money(t, x["weighted"]),
              "adjusted": money(t, x["adjusted"]),
              "lead": money(t, leads.get(x["period"])) if x["period"] in leads else "—"} for x in found["lines"]]
    deals = [{"url": qualify_url(d["opportunity_id"]), "account": d["account"],
              "solution": t.value("solution", d["solution"]), "stage": t.stage(d["stage"]),
              "owner": d["owner"] or "—", "amount": money(t, d["amount"], d["currency"]),
              "close": t.date(d["expected_close_on"]) if d["expected_close_on"] else t("fc.undated"),
              "probability": t.percent(d["probability"]), "weighted": money(t, d["weighted"]),
              "health": "×" + t.number(d["health"], 2), "adjusted": money(t, d["adjusted"]),
              "why": t("fc.why", covered=d["covered_required_roles"], required=d["required_roles"],
                       engaged=d["engaged_members"], benchmark=t.number(d["engaged_benchmark"], 1))}
             for d in sorted(found["deals"], key=lambda d: -(d["adjusted"] or 0))]
    m = found["lead_model"]
    lead_model = t("fc.lead_model_none") if m["conversion"] is None else t(
        "fc.lead_model", leads=m["leads"], won=m["won"], conversion=t.percent(m["conversion"]),
        amount=money(t, m["average_amount"]), cycle=t.number(m["cycle_days"], 0))
    totals = {"fc.pipeline": money(t, sum(x["pipeline"] for x in found["lines"])),
              "fc.weighted": money(t, sum(x["weighted"] for x in found["lines"])),
              "fc.adjusted": money(t, sum(x["adjusted"] for x in found["lines"])),
              "fc.lead_count": money(t, sum(v for v in leads.values() if v is not None)) if leads else "—"}
    return ForecastPage(plot, lines, deals, lead_model, totals)


# ------------------------------------------------------------------ analytics


@dataclass(frozen=True)
class AnalyticsPage:
    time_in_stage: Markup
    conversion: Markup
    engaged: Markup
    stalled: Markup
    finance_win: Markup
    finance_cycle: Markup
    cycle: list[str]
    content: list[dict[str, str]]
    finance_days: int


def analytics_page(found: Mapping[str, Any], funnel: Funnel, t: FunnelTranslator) -> AnalyticsPage:
    days = lambda v: t.number(v, 1)  # noqa: E731
    time_in = plots.hbars([plots.Bar(t.stage(x["stage"]), x["median"] or 0, "s1",
                                     f"{t.stage(x['stage'])}: {days(x['median'])} ({x['n']})")
                           for x in found["time_in_stage"]], t("an.time_in_stage"), days)
    conversion = plots.hbars([plots.Bar(f"{t.stage(x['from'])} → {t.stage(x['to'])}", x["rate"] or 0, "s1",
                                        f"{x['passed']} / {x['reached']}") for x in found["conversion"]],
                             t("an.conversion"), t.percent)
    # The benchmark of the stages past the first (2.5 / 4.2 / 6.3 by default).
    bench = [(b, t.number(b, 1)) for b in sorted({s.engaged_benchmark for s in funnel.stages
                                                  if s.engaged_benchmark and s.code != funnel.first.code})]
    engaged = plots.hbars([plots.Bar(t.stage(x["stage"]), x["mean"] or 0, "s1",
                                     f"{t.stage(x['stage'])}: {days(x['mean'])} ({x['n']})")
                           for x in found["engaged_at_transition"] if x["n"]],
                          t("an.engaged"), days, benchmarks=bench)
    stalled = plots.hbars([plots.Bar(t.stage(x["stage"]), x["share"] or 0, "s-stalled",
                                     f"{x['stalled']} / {x['open']}") for x in found["stalled"]],
                          t("an.stalled"), t.percent)
    cohorts = found["finance"]["cohorts"]
    names = [t(f"an.cohort.{c['cohort']}") for c in cohorts]
    finance_win = plots.hbars([plots.Bar(n, c["win_rate"] or 0, "s1", f"{c['won']} / {c['closed']}")
                               for n, c in zip(names, cohorts, strict=True)], t("an.win_rate"), t.percent)
    finance_cycle = plots.hbars([plots.Bar(n, c["won_cycle_days"]["mean"] or 0, "s2")
                                 for n, c in zip(names, cohorts, strict=True)], t("an.won_cycle"), days)
    cycle = [t("an.cycle_won", n=found["cycle_days"]["won"]["n"], mean=days(found["cycle_days"]["won"]["mean"]),
               median=days(found["cycle_days"]["won"]["median"])),
             t("an.cycle_lost", n=found["cycle_days"]["lost"]["n"], mean=days(found["cycle_days"]["lost"]["mean"]),
               median=days(found["cycle_days"]["lost"]["median"]))]
    content = [{"role": t.value("role", x["role"]), "content": x["content"], "touches": str(x["touches"]),
                "won": str(x["opportunities"])} for x in found["won_content_by_role"]]
    return AnalyticsPage(time_in, conversion, engaged, stalled, finance_win, finance_cycle, cycle, content,
                         found["finance"]["days"])
