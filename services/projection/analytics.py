"""Funnel analytics, pure: from the stage history (who moved what when) and the opportunities.

- time in each stage: completed stays only (entered, then left), in days;
- conversion between stages: of the opportunities that reached a stage, the share that reached
  the next one (reaching a later stage, or winning, counts as passing it);
- cycle length: first touch (else creation) to won / to lost, in days;
- members engaged at each transition: recorded with the transition (stage_changes.engaged_members,
  the group as of the transition's event time), per stage entered, next to the stage's benchmark;
- stalled share per stage: open opportunities now in the stage whose group stalled;
- won-deal insights: closed opportunities whose finance people engaged within N days of the
  first touch vs later vs never: how many, win rate, cycle of the won ones.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from services.projection.funnel import Funnel

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Spread:
    n: int
    mean: float | None
    median: float | None

    @staticmethod
    def of(values: Sequence[float]) -> Spread:
        return Spread(len(values), statistics.fmean(values) if values else None,
                      statistics.median(values) if values else None)


def _start(o: Mapping[str, Any]) -> datetime | None:
    return o.get("first_touch_at") or o.get("created_at")


def _stays(funnel: Funnel, o: Mapping[str, Any], changes: Sequence[Mapping[str, Any]]) -> list[tuple[str, datetime]]:
    """(stage, entered at) in order, from the first stage at the opportunity's start."""
    start = _start(o)
    stays = [(funnel.first.code, start)] if start is not None else []
    for c in sorted(changes, key=lambda c: (c["changed_at"], c["event_id"])):
        if not stays or stays[-1][0] != c["stage"]:
            stays.append((c["stage"], c["changed_at"]))
    return stays


def funnel_analytics(funnel: Funnel, opportunities: Sequence[Mapping[str, Any]],
                     history: Sequence[Mapping[str, Any]], finance_first: Mapping[str, datetime],
                     finance_days: int) -> dict[str, Any]:
    """opportunities: opportunity_id, created_at, first_touch_at, stage, outcome, status;
    history: opportunity_id, event_id, stage, changed_at, engaged_members;
    finance_first: first touch of a finance member per opportunity."""
    by_opp: dict[str, list[Mapping[str, Any]]] = {}
    for c in history:
        by_opp.setdefault(c["opportunity_id"], []).append(c)
    open_codes = [s.code for s in funnel.open_stages]
    beyond = len(open_codes)  # won counts as past every open stage
    durations: dict[str, list[float]] = {code: [] for code in open_codes}
    reached = [0] * (beyond + 1)
    cycles: dict[str, list[float]] = {"won": [], "lost": []}
    for o in opportunities:
        stays = _stays(funnel, o, by_opp.get(o["opportunity_id"], ()))
        for (stage, entered), (_, left) in zip(stays, stays[1:], strict=False):
            if stage in durations and left >= entered:
                durations[stage].append((left - entered).total_seconds() / DAY)
        furthest = max((funnel.index(s) for s, _ in stays), default=0)
        if o["outcome"] == "won":
            furthest = beyond
        for i in range(furthest + 1):
            reached[i] += 1
        start = _start(o)
        if o["outcome"] in cycles and start is not None and stays and stays[-1][1] is not None:
            cycles[o["outcome"]].append((stays[-1][1] - start).total_seconds() / DAY)
    conversion = [{"from": open_codes[i], "to": open_codes[i + 1] if i + 1 < beyond else "won",
                   "reached": reached[i], "passed": reached[i + 1],
                   "rate": reached[i + 1] / reached[i] if reached[i] else None} for i in range(beyond)]

    engaged: dict[str, list[float]] = {}
    for c in history:
        if c.get("engaged_members") is not None:
            engaged.setdefault(c["stage"], []).append(float(c["engaged_members"]))
    at_transition = [{"stage": s.code, "benchmark": s.engaged_benchmark,
                      **asdict(Spread.of(engaged.get(s.code, [])))}
                     for s in funnel.stages if s.code != funnel.first.code]

    stalled = []
    for code in open_codes:
        here = [o for o in opportunities if o["outcome"] == "open" and o["stage"] == code]
        n_stalled = sum(1 for o in here if o["status"] == "stalled")
        stalled.append({"stage": code, "open": len(here), "stalled": n_stalled,
                        "share": n_stalled / len(here) if here else None})

    cohorts: dict[str, dict[str, Any]] = {k: {"closed": 0, "won": 0, "cycles": []} for k in ("early", "late", "never")}
    for o in opportunities:
        if o["outcome"] not in ("won", "lost"):
            continue
        start, finance = _start(o), finance_first.get(o["opportunity_id"])
        if finance is None or start is None:
            cohort = "never"
        else:
            cohort = "early" if (finance - start).total_seconds() <= finance_days * DAY else "late"
        entry = cohorts[cohort]
        entry["closed"] += 1
        if o["outcome"] == "won":
            entry["won"] += 1
            stays = _stays(funnel, o, by_opp.get(o["opportunity_id"], ()))
            if start is not None and stays:
                entry["cycles"].append((stays[-1][1] - start).total_seconds() / DAY)
    finance = [{"cohort": k, "closed": v["closed"], "won": v["won"],
                "win_rate": v["won"] / v["closed"] if v["closed"] else None,
                "won_cycle_days": asdict(Spread.of(v["cycles"]))} for k, v in cohorts.items()]

    return {
        "time_in_stage": [{"stage": code, **asdict(Spread.of(durations[code]))} for code in open_codes],
        "conversion": conversion,
        "cycle_days": {k: asdict(Spread.of(v)) for k, v in cycles.items()},
        "engaged_at_transition": at_transition,
        "stalled": stalled,
        "finance": {"days": finance_days, "cohorts": finance},
    }
