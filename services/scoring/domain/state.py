"""What scoring keeps per opportunity and per partition (stored as JSON in faust tables)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.roles import BuyingRole, Department
from shared.schemas.scoring import SignalType, Tier
from shared.schemas.touch import TouchKind


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TouchRecord(_State):
    event_id: str
    person_id: str
    kind: TouchKind
    at: datetime
    weight: float


class MemberState(_State):
    person_id: str
    name: str | None = None
    department: Department
    role: BuyingRole
    # Touches older than the retention horizon, folded into decayed mass per kind at folded_at.
    folded: dict[TouchKind, float] = Field(default_factory=dict)
    folded_at: datetime | None = None
    folded_touches: int = 0


class EmittedSignal(_State):
    """A signal as it was sent, kept so that a redelivered message can send it again."""

    offset: int  # of the input message whose handling emitted it
    # The encoded signal as a string: re-sent byte for byte, and loading a state does not
    # validate every kept signal again on each of the opportunity's events.
    signal: str


class OpportunityState(_State):
    opportunity_id: str
    account_id: str
    account_name: str | None = None
    account_owner: str | None = None
    solution: str
    # The input partition: timers of this opportunity are driven by that partition's watermark.
    partition: int
    version: int = 0
    expected_roles: tuple[BuyingRole, ...] = ()
    required_roles: tuple[BuyingRole, ...] = ()
    members: dict[str, MemberState] = Field(default_factory=dict)
    touches: list[TouchRecord] = Field(default_factory=list)  # sorted by (at, event_id)
    last_touch_at: datetime | None = None
    tier: Tier | None = None
    forming_at: datetime | None = None
    formation_candidate: datetime | None = None  # when the formation criteria first held
    formed_at: datetime | None = None
    announced_members: list[str] = Field(default_factory=list)
    announced_roles: list[BuyingRole] = Field(default_factory=list)
    role_gap_checked: bool = False
    stalled_since: datetime | None = None
    signal_counts: dict[SignalType, int] = Field(default_factory=dict)
    # The latest event time among this opportunity's own events: its score's as_of.
    scored_at: datetime | None = None
    # What a redelivery of the latest applied event needs (services.scoring.redelivery): its
    # input offset and the signals recent messages emitted.
    applied_offset: int = -1
    emitted: list[EmittedSignal] = Field(default_factory=list)


class PartitionClock(_State):
    """The latest event time seen on one input partition."""

    max_event_time: datetime | None = None

    def observe(self, occurred_at: datetime, lateness: timedelta) -> tuple[PartitionClock, datetime]:
        """The clock after an event, and the watermark: the latest event time minus the lateness."""
        latest = occurred_at if self.max_event_time is None else max(self.max_event_time, occurred_at)
        return PartitionClock(max_event_time=latest), latest - lateness
