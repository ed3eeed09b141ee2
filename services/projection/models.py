"""Request and response bodies of the read API (they make the published OpenAPI spec)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

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


class OpportunitySummary(BaseModel):
    opportunity_id: str
    account_id: str
    account_name: str | None
    solution: str
    stage: str = Field(description="the CRM's stage; 'identified' until a CRM reports one")
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
    joined_at: datetime
    touches_count: int
    first_touch_at: datetime | None
    last_touch_at: datetime | None
    engagement: float | None = Field(description="decayed, weighted touches, from the latest score")


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
    outcome: Outcome
    amount: float | None
    currency: str | None
    changed_at: datetime
    source: str


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


class StageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                            pattern=NO_CONTROL)]
    outcome: Outcome | None = Field(None, description="default: won or lost when the stage is named so, else open")
    amount: float | None = Field(None, ge=0, le=1e15, allow_inf_nan=False, description="deal value")
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    changed_at: Annotated[AwareDatetime, AfterValidator(to_utc)] | None = Field(
        None, description="when the CRM recorded the change (default: now); the latest change wins")
    source: Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.\-]+$")] = "crm"


class StageAccepted(BaseModel):
    event_id: str
    applied: bool = Field(description="the change is already visible in the read API")
    opportunity: OpportunitySummary | None


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


