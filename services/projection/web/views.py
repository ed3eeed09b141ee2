"""What the templates show, built from what the Reader returns: pure functions, no I/O, so that
the unit tests can check a page's content without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from services.projection.web import plots
from services.projection.web.i18n import Translator
from shared.schemas.roles import BuyingRole
from shared.schemas.scoring import Signal

PARTS = ("engagement", "breadth", "role_coverage", "departments", "recency")
# Where a department's card sits in the picture: the people who usually start, validate,
# pay and decide first, the rest after.
DEPARTMENT_ORDER = ("hr", "it", "finance", "executive", "procurement", "legal", "operations", "sales",
                    "marketing", "other")
KIND_CLASS = {
    "page_view": "k-view", "download": "k-download", "email_delivered": "k-email", "email_open": "k-email",
    "email_click": "k-email", "webinar_registered": "k-webinar", "webinar_attended": "k-webinar",
    "form_submitted": "k-form", "demo_requested": "k-form", "event_registered": "k-event",
    "event_attended": "k-event", "content_engaged": "k-download", "call": "k-form",
    "webinar_left": "k-webinar", "meeting": "k-event",
}


def opportunity_url(opportunity_id: str) -> str:
    return "/web/opportunities/" + quote(opportunity_id, safe="")


ROLE_ORDER = {role.value: i for i, role in enumerate(BuyingRole)}


def in_role_order(roles: Iterable[str]) -> list[str]:
    """Initiator, technical validator, budget holder, decision maker, ...: the order of the
    buying process, the same on every row so that the strips line up."""
    return sorted(roles, key=lambda r: (ROLE_ORDER.get(r, len(ROLE_ORDER)), r))


def role_cells(covered: Sequence[str], missing: Sequence[str], t: Translator) -> list[tuple[str, bool]]:
    return ([(f"{t.value('role', r)}: {t('roles.covered')}", True) for r in covered]
            + [(f"{t.value('role', r)}: {t('roles.missing')}", False) for r in missing])


@dataclass(frozen=True)
class Row:
    rank: int
    opportunity_id: str
    url: str
    account: str
    account_id: str
    solution: str
    tier: str | None
    score: str
    members: int
    engaged: int
    strip: Markup
    roles_text: str
    covered: list[str]
    missing: list[str]
    stage: str
    status: str
    status_code: str
    activity: str
    activity_exact: str


def priority_rows(rows: Iterable[Mapping[str, Any]], t: Translator, now: datetime) -> list[Row]:
    out = []
    for r in rows:
        covered, missing = in_role_order(r["covered_roles"]), in_role_order(r["missing_roles"])
        out.append(Row(
            rank=r["rank"], opportunity_id=r["opportunity_id"], url=opportunity_url(r["opportunity_id"]),
            account=r["account_name"] or r["account_id"], account_id=r["account_id"],
            solution=t.value("solution", r["solution"]), tier=r["tier"], score=t.number(r["score"]),
            members=r["members_count"], engaged=r["engaged_members"],
            strip=plots.strip(role_cells(covered, missing, t), t("col.roles")),
            roles_text=f"{len(covered)}/{len(covered) + len(missing)}",
            covered=[t.value("role", x) for x in covered], missing=[t.value("role", x) for x in missing],
            stage=t.value("stage", r["stage"]), status=t.value("status", r["status"]), status_code=r["status"],
            activity=t.ago(r["last_activity_at"], now), activity_exact=t.when(r["last_activity_at"]),
        ))
    return out


# ------------------------------------------------------------------ one opportunity


@dataclass(frozen=True)
class Seat:
    name: str
    title: str
    role: str
    role_code: str
    engagement: str
    engagement_share: float  # of the most engaged member, for the bar
    touches: int
    required: bool
    # From people's corrections (member_stance_set, member_note_set) and grouping's MemberRef.why.
    person_id: str = ""
    stance_code: str | None = None
    stance: str = ""
    influence: str = ""
    note: str | None = None
    concerns: tuple[str, ...] = ()
    why: tuple[str, ...] = ()


@dataclass
class Department:
    code: str
    name: str
    seats: list[Seat] = field(default_factory=list)


@dataclass(frozen=True)
class Picture:
    departments: list[Department]
    empty_seats: list[Seat]


def group_picture(detail: Mapping[str, Any], t: Translator) -> Picture:
    members = detail["members"]
    top = max([m["engagement"] or 0 for m in members] + [0])
    required = set(detail["required_roles"])
    by_department: dict[str, Department] = {}
    for m in members:
        code = m["department"]
        dep = by_department.setdefault(code, Department(code, t.value("dept", code)))
        dep.seats.append(Seat(
            name=m["name"] or m["email"] or m["person_id"], title=m["job_title"] or "",
            role=t.value("role", m["role"]), role_code=m["role"], engagement=t.number(m["engagement"]),
            engagement_share=(m["engagement"] or 0) / top if top else 0.0, touches=m["touches_count"],
            required=m["role"] in required, person_id=m["person_id"], stance_code=m.get("stance"),
            stance=t.value("stance", m.get("stance")) if m.get("stance") else "",
            influence=t.value("influence", m.get("influence")) if m.get("influence") else "",
            note=m.get("note"), concerns=tuple(t.value("concern", c) for c in m.get("concerns") or ()),
            why=member_why(m.get("why"), t)))
    order = {code: i for i, code in enumerate(DEPARTMENT_ORDER)}
    departments = sorted(by_department.values(), key=lambda d: (order.get(d.code, len(order)), d.code))
    played = {m["role"] for m in members}
    expected = in_role_order(detail["expected_roles"] or detail["missing_roles"])
    empty = [Seat(name=t("opp.empty_seat"), title="", role=t.value("role", r), role_code=r, engagement="",
                  engagement_share=0.0, touches=0, required=r in required)
             for r in expected if r not in played]
    return Picture(departments, empty)


def member_why(why: Mapping[str, Any] | None, t: Translator) -> tuple[str, ...]:
    """"Why is this person here, in this role?" as lines: for the account, the solution and the
    role, the rule that decided it and what matched, or the correction and its author."""
    lines = []
    for part in ("account", "solution", "role"):
        basis = (why or {}).get(part)
        if not basis:
            continue
        what = [t.value("basis", basis.get("rule"))]
        if basis.get("detail"):
            what.append(str(basis["detail"]))
        if basis.get("author"):
            what.append(t("member_why.by", author=basis["author"]))
        lines.append(f"{t(f'member_why.{part}')}: {' · '.join(what)}")
    return tuple(lines)


def touch_title(touch: Mapping[str, Any], t: Translator) -> str:
    what = touch["title"] or touch["topic"] or touch["asset_id"] or touch["url"] or ""
    return " · ".join(x for x in (t.value("kind", touch["kind"]), t.when(touch["occurred_at"]), what) if x)


def timeline_plot(detail: Mapping[str, Any], t: Translator) -> tuple[Markup, list[tuple[str, str]]]:
    """The plot and its legend (class, label) of the kinds that occur."""
    order = {code: i for i, code in enumerate(DEPARTMENT_ORDER)}
    members = sorted(detail["members"], key=lambda m: (order.get(m["department"], len(order)), m["joined_at"]))
    lanes = [plots.Lane(m["person_id"], m["name"] or m["email"] or m["person_id"],
                        f"{t.value('role', m['role'])} · {t.value('dept', m['department'])}") for m in members]
    points = [plots.Point(x["person_id"], x["occurred_at"], KIND_CLASS.get(x["kind"], "k-other"), touch_title(x, t))
              for x in detail["timeline"]]
    marks = [plots.Mark(s["occurred_at"], t.value("signal", s["signal"])) for s in detail["signals"]]
    legend: dict[str, str] = {}
    for x in detail["timeline"]:
        legend.setdefault(KIND_CLASS.get(x["kind"], "k-other"), t.value("kind", x["kind"]))
    plot = plots.timeline(lanes, points, marks, t("opp.timeline"), t.date, lambda n: t("timeline.count", n=n))
    return plot, sorted(legend.items())


@dataclass(frozen=True)
class Part:
    code: str
    label: str
    points: str
    share: float
    why: str


@dataclass(frozen=True)
class Breakdown:
    score: str
    tier: str | None
    as_of: str
    parts: list[Part]
    bar: Markup
    members: Markup | None


def score_breakdown(detail: Mapping[str, Any], t: Translator) -> Breakdown | None:
    b = detail.get("breakdown")
    if not b:
        return None
    total = sum(max(b.get(p) or 0, 0) for p in PARTS) or 1.0
    covered = ", ".join(t.value("role", r) for r in in_role_order(b.get("covered_roles") or ())) or t("why.none")
    missing = ", ".join(t.value("role", r) for r in in_role_order(b.get("missing_roles") or ())) or t("why.none")
    engaged = b.get("engaged_members")
    if engaged is None:
        engaged = sum(1 for m in b.get("members") or () if (m.get("engagement") or 0) > 0)
    departments = b.get("engaged_departments") or {m.get("department") for m in b.get("members") or ()}
    why = {
        "engagement": t("why.engagement"), "breadth": t("why.breadth", n=engaged),
        "role_coverage": t("why.role_coverage", covered=covered, missing=missing),
        "departments": t("why.departments", n=len(departments)), "recency": t("why.recency"),
    }
    parts = [Part(p, t(f"part.{p}"), t.number(b.get(p)), max(b.get(p) or 0, 0) / total, why[p]) for p in PARTS]
    bar = plots.stacked_hbars(
        [(t("col.score"), [plots.Bar(x.label, max(b.get(x.code) or 0, 0), f"p-{x.code}") for x in parts])],
        t("opp.score"), lambda v: t.number(v), top_value=total)
    ranked = sorted(b.get("members") or (), key=lambda m: -(m.get("engagement") or 0))
    members = [plots.Bar(m.get("name") or m["person_id"], m.get("engagement") or 0, "s1",
                         f"{m.get('name') or m['person_id']} · {t.value('role', m.get('role'))}: "
                         f"{t.number(m.get('engagement'))} ({t('opp.touches_n', n=m.get('touches', 0))})")
               for m in ranked]
    return Breakdown(
        score=t.number(detail["score"]), tier=detail["tier"],
        as_of=t("opp.score_as_of", at=t.when(detail["score_as_of"])) if detail["score_as_of"] else "",
        parts=parts, bar=bar,
        members=plots.hbars(members, t("opp.score_members"), lambda v: t.number(v)) if members else None)


def member_names(members: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """person_id -> the name the projection knows now (a signal may predate it)."""
    return {m["person_id"]: m["name"] for m in members if m.get("name")}


@dataclass(frozen=True)
class SignalCard:
    signal_id: str
    code: str
    label: str
    at: str
    score: str
    tier: str
    covered: list[str]
    missing: list[str]
    people: list[str]
    account: str
    solution: str
    opportunity_id: str
    url: str
    backfill: bool = False

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def signal_card(s: Mapping[str, Any] | Signal, t: Translator, account: str = "", solution: str = "",
                opportunity_id: str = "", names: Mapping[str, str] | None = None) -> SignalCard:
    """From a stored signal (a dict of the Reader) or a live one (the Kafka message). `names`
    (member_names) gives a person's name learnt after the signal, instead of their email."""
    names = names or {}
    if isinstance(s, Signal):
        members: Sequence[Any] = [m.model_dump() for m in s.members]
        s = {**s.model_dump(), "members": members}
        account = s["account_name"] or s["account_id"]
        solution, opportunity_id = s["solution"], s["opportunity_id"]
    return SignalCard(
        signal_id=s["signal_id"], code=s["signal"], label=t.value("signal", s["signal"]), at=t.when(s["occurred_at"]),
        score=t.number(s["score"]), tier=s["tier"],
        covered=[t.value("role", r) for r in in_role_order(s["covered_roles"])],
        missing=[t.value("role", r) for r in in_role_order(s["missing_roles"])],
        people=[m.get("name") or names.get(m.get("person_id", "")) or m.get("person_id", "") for m in s["members"]],
        account=account, solution=t.value("solution", solution) if solution else "",
        opportunity_id=opportunity_id, url=opportunity_url(opportunity_id) if opportunity_id else "",
        backfill=bool(s.get("backfill")))


# ------------------------------------------------------------------ metrics


def buckets(first: datetime, last: datetime, most: int = 16) -> tuple[str, list[tuple[datetime, datetime]]]:
    """Periods covering [first, last]: days for up to three weeks, then weeks, then 30 days;
    at most `most` of them, the latest."""
    span = last - first
    step, name = ((timedelta(days=1), "day") if span <= timedelta(days=21) else
                  (timedelta(days=7), "week") if span <= timedelta(days=7 * most) else (timedelta(days=30), "month"))
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while start <= last:
        out.append((start, start + step))
        start += step
    return name, out[-most:]


@dataclass(frozen=True)
class MetricsView:
    totals: dict[str, str]
    period: str
    over_time: Markup
    per_stage: Markup | None
    per_role: Markup | None
    formation: Markup
    status: Markup | None
    stalled: Markup


def metrics_view(total: Mapping[str, Any], step: str, periods: Sequence[tuple[datetime, datetime]],
                 series: Sequence[Mapping[str, Any]], cumulative: Sequence[Mapping[str, Any]],
                 t: Translator) -> MetricsView:
    """The Reader's metrics: `total` of all time, `series` of each period, `cumulative` up to the
    end of each period. Distinct contacts do not add up over periods, hence the last."""
    labels = [t.date(a) for a, _ in periods]
    count = lambda v: t.number(v, 0 if float(v).is_integer() else 1)  # noqa: E731
    decimal = lambda v: t.number(v, 1)  # noqa: E731
    identified = total["opportunities_identified"]
    totals = {
        "metrics.identified": count(identified), "metrics.contacts": count(total["raw_contacts"]),
        "metrics.per_opp": decimal(total["raw_contacts"] / identified if identified else None),
        "metrics.engaged": decimal(total["engaged_members_per_opportunity"]),
        "metrics.coverage": t.percent(total["role_coverage"]),
        "metrics.formation": f"{decimal(total['days_first_touch_to_formation'])} / "
                             f"{decimal(total['median_days_first_touch_to_formation'])}",
        "metrics.stalled": t.percent(total["stalled_share"]),
    }
    period = t("metrics.period", since=t.date(periods[0][0]), until=t.date(periods[-1][1] - timedelta(seconds=1)),
               step=t(f"metrics.step.{step}")) if periods else t("metrics.no_data")
    over_time = plots.columns(labels, [
        plots.Series(t("metrics.opportunities"), "s1", [m["opportunities_identified"] for m in cumulative]),
        plots.Series(t("metrics.raw_contacts"), "s2", [m["raw_contacts"] for m in cumulative]),
    ], t("metrics.over_time"), count)
    stages = [plots.Bar(t.value("stage", s["stage"]), s["engaged_members"] or 0, "s1",
                        f"{t.value('stage', s['stage'])}: {decimal(s['engaged_members'])} "
                        f"({count(s['opportunities'])} {t('metrics.opportunities')})") for s in total["per_stage"]]
    per_stage = plots.hbars(stages, t("metrics.per_stage"), decimal,
                            benchmarks=[(2.5, "2,5" if t.lang == "ru" else "2.5"),
                                        (4.2, "4,2" if t.lang == "ru" else "4.2"),
                                        (6.3, "6,3" if t.lang == "ru" else "6.3")]) if stages else None
    roles = [(t.value("role", r["role"]), [
        plots.Bar(t("roles.covered"), r["covered"], "s1"), plots.Bar(t("roles.missing"), r["missing"], "s-missing"),
    ]) for r in sorted(total["per_role"], key=lambda r: ROLE_ORDER.get(r["role"], len(ROLE_ORDER)))]
    per_role = plots.stacked_hbars(roles, t("metrics.per_role"), count) if roles else None
    formation = plots.lines(labels, [plots.Series(t("metrics.mean"), "s1",
                                                  [m["days_first_touch_to_formation"] for m in series])],
                            t("metrics.formation_time"), decimal)
    statuses = [plots.Bar(t.value("status", s["status"]), s["opportunities"], f"st-{s['status']}")
                for s in total["per_status"]]
    status = plots.hbars(statuses, t("metrics.status"), count) if statuses else None
    stalled = plots.lines(labels, [plots.Series(t("metrics.stalled_over_time"), "s-stalled",
                                                [m["stalled_share"] for m in series])],
                          t("metrics.stalled_over_time"), t.percent, top_value=1.0)
    return MetricsView(totals, period, over_time, per_stage, per_role, formation, status, stalled)
