"""Scores and signals: what scoring writes (bg.score.v1, bg.signal.v1) and projection reads.

Both are keyed by opportunity_id. A score's version is the opportunity version it reflects,
so a replay or duplicate never regresses a projected score.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.schemas.base import Identifier, Message, ShortStr, Text, UtcDatetime
from shared.schemas.correction import Influence, Stance
from shared.schemas.roles import BuyingRole, Department

SCHEMA_VERSION = 1

Tier = Literal["A", "B", "C"]
Lifecycle = Literal["forming", "formed", "stalled"]
SignalType = Literal[
    "group_forming", "group_formed", "group_expanded", "role_gap",
    "priority_changed", "stalled", "reactivated",
    # A risk: a required role is held only by members marked blocker (bg.correction.v1 stance).
    "role_blocked",
]


class MemberContribution(Message):
    person_id: ShortStr
    name: Text | None = None
    department: Department
    role: BuyingRole
    engagement: float  # decayed, weighted touches of this member at as_of
    touches: int
    by_kind: dict[Identifier, float] = Field(default_factory=dict)  # engagement per touch kind (optional)
    # Champion / blocker set by hand, and the points it adds to (or takes from) the score.
    stance: Stance | None = None
    influence: Influence | None = None
    stance_points: float = 0.0


class ScoreBreakdown(Message):
    engagement: float  # aggregate of the members' engagement
    breadth: float  # distinct engaged members
    role_coverage: float  # expected roles covered
    departments: float  # distinct departments
    recency: float  # recency / velocity
    # Champions add, blockers subtract (score.stance in scoring.yaml); 0 when nobody is marked.
    stance: float = 0.0
    members: tuple[MemberContribution, ...] = ()
    covered_roles: tuple[BuyingRole, ...] = ()
    missing_roles: tuple[BuyingRole, ...] = ()
    engaged_members: int | None = None  # how many members count as engaged (optional)
    engaged_departments: tuple[Department, ...] = ()  # their departments (optional)


class OpportunityScore(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["score"] = "score"
    opportunity_id: ShortStr
    account_id: ShortStr
    solution: ShortStr
    version: int = Field(ge=1)
    # The moment the score is computed at: the latest of the opportunity's own events, or a
    # later moment of the log's clock when time alone moved it (decay, a stall: "rescores").
    # (version, as_of) orders an opportunity's scores.
    as_of: UtcDatetime
    score: float
    tier: Tier
    breakdown: ScoreBreakdown
    # The lifecycle as of as_of, computed over the opportunity's full touch set: a late touch
    # corrects formed_at, and the next score carries the corrected value.
    status: Lifecycle = "forming"
    formed_at: UtcDatetime | None = None
    stalled_since: UtcDatetime | None = None

    def key(self) -> str:
        return self.opportunity_id


class Signal(Message):
    schema_version: Literal[1] = SCHEMA_VERSION
    type: Literal["signal"] = "signal"
    # The fact's own id ("<opportunity>:group_formed", "<opportunity>:stalled:<since>"): the
    # same fact always gets the same id, whichever message, replay or restart announces it.
    signal_id: ShortStr
    signal: SignalType
    opportunity_id: ShortStr
    account_id: ShortStr
    account_name: Text | None = None
    account_owner: Text | None = None
    solution: ShortStr
    occurred_at: UtcDatetime  # event time
    score: float
    tier: Tier
    members: tuple[MemberContribution, ...] = ()
    covered_roles: tuple[BuyingRole, ...] = ()
    missing_roles: tuple[BuyingRole, ...] = ()
    trigger_event_ids: tuple[ShortStr, ...] = ()
    breakdown: ScoreBreakdown | None = None
    detail: dict[Identifier, Text | int | float | None] = Field(default_factory=dict)
    # True when the fact is history at the moment it is announced: its occurred_at trails the
    # log's clock by more than scoring's `timers.backfill_after` (a backfill of old touches, a
    # replay). Pages show it; the alert dispatcher sends only live signals unless told otherwise.
    backfill: bool = False

    def key(self) -> str:
        return self.opportunity_id


ScoringMessage = Annotated[OpportunityScore | Signal, Field(discriminator="type")]
