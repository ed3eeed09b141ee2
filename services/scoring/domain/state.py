"""What scoring keeps per opportunity and per partition (stored as JSON in faust tables)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from shared.schemas.correction import Influence, Stance
from shared.schemas.roles import BuyingRole, Department
from shared.schemas.scoring import Tier
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
    stance: Stance | None = None  # set by hand (champion / blocker / neutral)
    influence: Influence | None = None
    # Touches older than the retention horizon, folded into decayed mass per kind at folded_at.
    folded: dict[TouchKind, float] = Field(default_factory=dict)
    folded_at: datetime | None = None
    folded_touches: int = 0


class OpportunityState(_State):
    opportunity_id: str
    account_id: str
    account_name: str | None = None
    account_owner: str | None = None
    solution: str
    # The input partition: this opportunity's timers follow that partition's clock.
    partition: int
    version: int = 0
    expected_roles: tuple[BuyingRole, ...] = ()
    required_roles: tuple[BuyingRole, ...] = ()
    members: dict[str, MemberState] = Field(default_factory=dict)
    touches: list[TouchRecord] = Field(default_factory=list)  # sorted by (at, event_id)
    last_touch_at: datetime | None = None
    tier: Tier | None = None  # of the latest score sent
    # Facts, each recomputed over the full touch set as touches arrive (late ones included),
    # and whether it was announced: a fact is announced once, under its own id.
    forming_at: datetime | None = None
    forming_announced: bool = False
    formed_at: datetime | None = None
    formed_announced: bool = False
    announced_members: list[str] = Field(default_factory=list)
    announced_roles: list[BuyingRole] = Field(default_factory=list)
    role_gap_checked: bool = False
    announced_blocked: list[str] = Field(default_factory=list)  # role_blocked facts announced
    stalled_since: datetime | None = None  # set while the group is stalled
    # The latest event time among this opportunity's own events.
    scored_at: datetime | None = None
    # The as_of of the latest score sent: a rescore moves it past scored_at.
    score_as_of: datetime | None = None
    # Its account was merged into another (opportunity_merged): the opportunity it lives on in.
    # While set it announces nothing and no timer of it fires; the merge's undo clears it.
    merged_into: str | None = None

    def fork(self) -> OpportunityState:
        """A copy a step may change in place while this one stays as it was.

        Cheaper than a deep copy (which took a tenth of scoring's CPU, py-spy): the containers
        and the members are copied (folding old touches updates a member in place), the touch
        records are shared, as nothing changes a record once made."""
        return self.model_copy(update={
            "members": {person: member.model_copy() for person, member in self.members.items()},
            "touches": list(self.touches),
            "announced_members": list(self.announced_members),
            "announced_roles": list(self.announced_roles),
            "announced_blocked": list(self.announced_blocked),
        })


# How far an event time may run ahead of the log's wall clock (ingest's own limit, 5 minutes).
FUTURE_SKEW = timedelta(minutes=5)


class PartitionClock(_State):
    """The log's clock of one input partition of bg.opportunity.v1.

    `max_event_time`: the latest event time read from the partition. `watermarks`: the latest
    clock tick's watermark per partition of grouping's input (a tick may come from any worker;
    each input partition has one owner at a time). `wall`: the latest writer wall clock read
    (record timestamps and ticks). All of it comes from the log, so a replay rebuilds it.
    """

    max_event_time: datetime | None = None
    watermarks: dict[int, datetime] = Field(default_factory=dict)
    wall: datetime | None = None

    def now(self) -> datetime | None:
        """The partition's clock: the latest event time, or the slowest input partition's
        watermark when the ticks are ahead of it (a quiet partition)."""
        ticked = min(self.watermarks.values()) if self.watermarks else None
        known = [t for t in (self.max_event_time, ticked) if t is not None]
        return max(known) if known else None

    def observe_event(self, occurred_at: datetime, wall: datetime | None) -> PartitionClock:
        """The clock after an event. An event time further ahead of its record's timestamp than
        FUTURE_SKEW moves the clock only that far: ingest corrects client clocks, and this
        keeps a clock that slipped through from firing every timer of the partition."""
        if wall is not None:
            occurred_at = min(occurred_at, wall + FUTURE_SKEW)
        latest = occurred_at if self.max_event_time is None else max(self.max_event_time, occurred_at)
        return self.model_copy(update={"max_event_time": latest, "wall": _later(self.wall, wall)})

    def observe_tick(self, watermarks: dict[int, datetime], wall: datetime) -> PartitionClock:
        merged = dict(self.watermarks)
        for partition, at in watermarks.items():
            merged[partition] = at if partition not in merged else max(merged[partition], at)
        return self.model_copy(update={"watermarks": merged, "wall": _later(self.wall, wall)})


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
