"""Request and response bodies of the read API (they make the published OpenAPI spec)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.schemas import text
from shared.schemas.scoring import ScoreBreakdown

Status = Literal["forming", "formed", "stalled", "won", "lost"]
Tier = Literal["A", "B", "C"]
Outcome = Literal["open", "won", "lost"]

# No control characters: PostgreSQL cannot store NUL in text, and none belongs in an id or a name.
NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"


def to_utc(value: datetime) -> datetime:
    """Naive times are UTC; a time that cannot be expressed in UTC (year 1 at +01:00) is invalid."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


UtcTime = Annotated[datetime, AfterValidator(to_utc)]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable cause, e.g. unauthorized, not_found, validation_error")
    message: str
    errors: list[FieldError] = []


class CriterionOut(BaseModel):
    code: str
    derived: bool = Field(description="derived from the buying group (else set by a person with evidence)")
    holds: bool
    since: datetime | None = Field(description="event time it started to hold")
    evidence: str | None
    marked_by: str | None


class OpportunitySummary(BaseModel):
    opportunity_id: str
    account_id: str
    account_name: str | None
    solution: str
    stage: str = Field(description="the funnel stage (GET /v1/funnel); target_base until the rules, a person "
                                   "or a CRM move it")
    outcome: Outcome
    status: Status = Field(description="forming -> formed (group_formed signal) <-> stalled; won or lost from the CRM")
    score: float | None
    tier: Tier | None
    origin: str | None = Field(description="auto, or precreated for a target account")
    created_at: datetime | None = Field(description="event time the opportunity was identified")
    formed_at: datetime | None = Field(description="event time its buying group formed")
    first_touch_at: datetime | None
    last_activity_at: datetime | None
    members_count: int
    engaged_members: int = Field(description="members with at least one touch")
    touches_count: int
    departments: list[str]
    covered_roles: list[str]
    missing_roles: list[str]
    amount: float | None
    currency: str | None
    stage_changed_at: datetime | None
    version: int = Field(description="the highest opportunity event version applied (0: known only from scoring)")
    change_seq: int = Field(description="position in the change feed")
    stage_author: str | None = Field(None, description="who set the stage: rules, person or crm")
    crm_stage: str | None = Field(None, description="the CRM's own name of the stage, when a CRM set it")
    expected_close_on: date | None = Field(None, description="expected close date, from a person or the CRM")
    team: dict[str, str] = Field({}, description="the seller's team: {role: person} (roles: GET /v1/funnel)")
    criteria: list[CriterionOut] = Field([], description="exit criteria of the current stage")
    proposed_stage: str | None = Field(None, description="the next stage, proposed when only a person's "
                                                         "criteria miss")
    missing_criteria: list[str] = []
    merged_into: str | None = Field(None, description="set when its account was merged into another: the "
                                                      "opportunity it lives on in (members and touches are there)")


class RankedOpportunity(OpportunitySummary):
    rank: int = Field(description="1-based position in the priority order of this query")


class OpportunityPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[RankedOpportunity]


class Member(BaseModel):
    person_id: str
    name: str | None
    email: str | None
    job_title: str | None
    department: str
    role: str
    role_source: str
    why: dict[str, Any] | None = Field(None, description=(
        "why the person is here, in this role: `account`, `solution` and `role`, each "
        "{rule, detail, correction_id, author}: the rule that decided it (domain, company_name, inn, "
        "content, title, stated, behaviour, default) or the correction and its author"))
    joined_at: datetime
    touches_count: int
    first_touch_at: datetime | None
    last_touch_at: datetime | None
    engagement: float | None = Field(description="decayed, weighted touches, from the latest score")
    # From people's corrections (member_stance_set, member_note_set), for display.
    stance: Literal["champion", "blocker", "neutral"] | None = Field(
        None, description="champion, blocker or neutral, as a person marked it (the latest not undone)")
    influence: Literal["high", "medium", "low"] | None = None
    stance_by: str | None = Field(None, description="who marked the stance")
    note: str | None = Field(None, description="a person's note about the member (the latest not undone)")
    concerns: list[str] = Field([], description="usability, integration_security, tco_roi, strategic_fit")
    note_by: str | None = None


class Touch(BaseModel):
    touch_id: str
    person_id: str
    occurred_at: datetime
    source: str
    kind: str
    url: str | None
    title: str | None
    asset_id: str | None
    topic: str | None


class SignalOut(BaseModel):
    signal_id: str
    signal: str
    occurred_at: datetime
    score: float
    tier: str
    covered_roles: list[str]
    missing_roles: list[str]
    trigger_event_ids: list[str]
    members: list[dict[str, Any]]
    detail: dict[str, Any]


class StageChange(BaseModel):
    event_id: str
    stage: str
    from_stage: str | None = None
    crm_stage: str | None = None
    outcome: Outcome
    amount: float | None
    currency: str | None
    changed_at: datetime
    source: str
    author: str = Field("crm", description="rules, person or crm")
    changed_by: str | None = None
    reason: str | None = None
    criteria: list[str] = Field([], description="the exit criteria that held (a move of the rules)")
    engaged_members: int | None = Field(None, description="members engaged as of the change (recorded with it)")
    members_count: int | None = None


class CorrectionOut(BaseModel):
    """One correction people made (bg.correction.v1): who, when, why, what, and its undo."""

    correction_id: str
    type: str = Field(description="opportunity_opened, member_linked, member_unlinked, member_role_set, "
                                  "member_stance_set, member_note_set, accounts_merged, correction_undone")
    subject: str = Field(description="the opportunity, or for a merge the surviving account")
    opportunity_id: str | None
    person_id: str | None
    author: str = Field(description="the user name of the write token")
    made_at: datetime
    reason: str | None
    detail: dict[str, Any] = Field(description="what the correction says: role, department, stance, influence, "
                                               "note, concerns, into, merged, undoes ...")
    undone_by_id: str | None = Field(description="the correction that undid this one")
    undone_by: str | None
    undone_at: datetime | None
    undo_reason: str | None


class OpportunityDetail(OpportunitySummary):
    account_owner: str | None
    expected_roles: list[str]
    required_roles: list[str]
    score_as_of: datetime | None
    score_version: int | None
    score_breakdown: ScoreBreakdown | None
    members: list[Member]
    timeline: list[Touch] = Field(description="the latest touches, oldest first")
    signals: list[SignalOut]
    stage_history: list[StageChange]
    merged_from: list[str] = Field([], description="opportunities of accounts merged into this one; their "
                                                   "touches are in the timeline")
    corrections: list[CorrectionOut] = Field([], description="corrections of this opportunity and merges of its "
                                                             "account, newest first")
    alert_recipients: list[str] = Field([], description="who alerts about this opportunity go to: its team, "
                                                    "else the account owner")


class Contact(BaseModel):
    person_id: str
    email: str | None
    name: str | None
    job_title: str | None
    department: str | None
    role: str | None
    role_source: str | None
    first_seen_at: datetime | None
    last_activity_at: datetime | None


class Account(BaseModel):
    account_id: str
    name: str | None
    domains: list[str]
    owner: str | None
    first_seen_at: datetime | None
    last_activity_at: datetime | None
    account_touches: int = Field(description="touches of the account that showed no solution")
    opportunities: list[OpportunitySummary]
    contacts: list[Contact]


class ChangePage(BaseModel):
    items: list[OpportunitySummary] = Field(description="changed opportunities (their current state), commit order")
    next_cursor: int = Field(description="pass as ?cursor= to continue; unchanged when there was nothing new")
    has_more: bool


class StageCount(BaseModel):
    stage: str
    opportunities: int
    engaged_members: float | None = Field(description="average engaged members per opportunity at this stage")


class RoleCount(BaseModel):
    role: str
    covered: int = Field(description="opportunities where a member plays this role")
    missing: int = Field(description="opportunities that expect this role and have nobody in it")


class StatusCount(BaseModel):
    status: str
    opportunities: int


class Metrics(BaseModel):
    since: datetime | None
    until: datetime | None
    opportunities_identified: int
    raw_contacts: int = Field(description="distinct people with a touch in the period (what lead systems count)")
    contacts_per_opportunity: float | None
    engaged_members_per_opportunity: float | None
    role_coverage: float | None = Field(description="average share of the expected roles that members cover")
    days_first_touch_to_formation: float | None
    median_days_first_touch_to_formation: float | None
    stalled_share: float | None = Field(description="stalled among formed opportunities")
    per_stage: list[StageCount]
    per_role: list[RoleCount]
    per_status: list[StatusCount]


Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_CONTROL)]
Why = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
                AfterValidator(text.text)]  # the shared text check: a NUL is a 422 here, not a dead letter later
EventTime = Annotated[AwareDatetime, AfterValidator(to_utc)]


class StageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                            pattern=NO_CONTROL)] = Field(
        description="a funnel stage code, or the CRM's own stage name mapped in funnel.yaml (crm_stages)")
    outcome: Outcome | None = Field(None, description="default: won or lost when the stage is so, else open")
    amount: float | None = Field(None, ge=0, le=1e15, allow_inf_nan=False, description="deal value")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    changed_at: EventTime | None = Field(
        None, description="when the change happened (default: now); not in the future; the latest change wins")
    changed_by: Who | None = Field(None, description="the person who changed it (default: the source)")
    reason: Why | None = Field(None, description="why")
    author: Literal["person", "crm"] = Field("crm", description="a person (web page, API) or a CRM")
    source: Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.\-]+$")] = "crm"


Result = Literal["applied", "stale", "duplicate", "pending"]


class Accepted(BaseModel):
    event_id: str
    result: Result = Field(description="applied: the change is the opportunity's state now; stale: it is recorded "
                                       "but a later change holds; duplicate: it was reported before; pending: "
                                       "not yet visible (retry the read)")
    applied: bool = Field(description="true only when the change is the opportunity's state now")
    message: str
    opportunity: OpportunitySummary | None


StageAccepted = Accepted


class CriterionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holds: bool
    evidence: Why | None = Field(None, description="required when holds is true: what shows it")
    marked_by: Who
    marked_at: EventTime | None = Field(None, description="default: now; not in the future")


class TeamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: Who | None = Field(description="the seller (address or name); null: nobody any more")
    assigned_by: Who
    assigned_at: EventTime | None = Field(None, description="default: now; not in the future")


class DealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float | None = Field(None, ge=0, le=1e15, allow_inf_nan=False)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    expected_close_on: date | None = None
    set_by: Who
    set_at: EventTime | None = Field(None, description="default: now; not in the future")


class Team(BaseModel):
    opportunity_id: str
    team: dict[str, str]
    account_owner: str | None
    alert_recipients: list[str] = Field(description="the team, else the account owner")


class FunnelStageOut(BaseModel):
    code: str
    name: dict[str, str]
    description: dict[str, str] | None
    probability: float
    engaged_benchmark: float
    exit: list[str]
    outcome: str | None
    opportunities: int
    amount: float


class FunnelCriterionOut(BaseModel):
    code: str
    name: dict[str, str]
    derived: bool
    rule: str | None


class FunnelOut(BaseModel):
    stages: list[FunnelStageOut]
    criteria: list[FunnelCriterionOut]
    team_roles: list[dict[str, Any]]
    crm_stages: dict[str, str]


class ForecastLineOut(BaseModel):
    period: str = Field(description="2026-10 (month), 2026-Q4 (quarter) or 'undated'")
    group: str | None
    deals: int
    pipeline: float = Field(description="sum of amounts")
    weighted: float = Field(description="amount x stage probability")
    adjusted: float = Field(description="weighted x buying-group health")
    opportunity_ids: list[str]


class LeadForecastOut(BaseModel):
    period: str
    leads: int
    value: float | None


class ForecastDealOut(BaseModel):
    opportunity_id: str
    account: str
    solution: str
    stage: str
    owner: str | None
    amount: float | None
    currency: str | None
    expected_close_on: date | None
    probability: float
    weighted: float
    health: float
    adjusted: float
    role_coverage: float
    required_roles: int
    covered_required_roles: int
    engaged_members: int
    engaged_benchmark: float
    explanation: str


class Forecast(BaseModel):
    period: str
    by: str
    lines: list[ForecastLineOut]
    lead_count: list[LeadForecastOut] = Field(description="the lead-count forecast of the same periods")
    lead_model: dict[str, Any] = Field(description="leads, won, conversion, average_amount, cycle_days")
    deals: list[ForecastDealOut]
    method: str


class CreditedTouch(Touch):
    name: str | None
    role: str | None
    department: str | None
    credit: float = Field(description="share of the deal credited to this touch; the shares sum to 1")
    value: float | None = Field(description="credit x deal amount, when the amount is known")


class CreditGroup(BaseModel):
    key: str | None
    credit: float
    value: float | None
    touches: int


class Attribution(BaseModel):
    opportunity_id: str
    outcome: Outcome
    won_at: datetime | None
    amount: float | None
    currency: str | None
    model: str
    touches: list[CreditedTouch]
    by_member: list[CreditGroup]
    by_content: list[CreditGroup]


class AttributionReport(BaseModel):
    model: str
    group_by: str
    since: datetime | None
    until: datetime | None
    won_opportunities: int
    groups: list[CreditGroup]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    database: str
    consumer: dict[str, Any] | None




class Analytics(BaseModel):
    time_in_stage: list[dict[str, Any]] = Field(description="per open stage: n, mean, median days of completed stays")
    conversion: list[dict[str, Any]] = Field(description="from, to, reached, passed, rate")
    cycle_days: dict[str, dict[str, Any]] = Field(description="won / lost: n, mean, median days from first touch")
    engaged_at_transition: list[dict[str, Any]] = Field(
        description="per stage entered: members engaged at the transition (n, mean, median) and the benchmark")
    stalled: list[dict[str, Any]] = Field(description="per open stage: open, stalled, share")
    finance: dict[str, Any] = Field(description="closed deals whose finance engaged within `days` of the first touch "
                                                "(early), later (late), never: closed, won, win_rate, won cycle")
    won_content_by_role: list[dict[str, Any]] = Field(description="role, content, touches, won opportunities")
